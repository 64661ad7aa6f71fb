"""The ``mood`` kind: everything ``predict`` promises from one network -- curve, static point, quadrant, tags.

A ``mood`` model gives valence and arousal every 0.5 s (as a ``dynamic`` model); the static point is the
curve's mean, the quadrant its signs, and the tags come from the pretrained front end's own tag outputs
(``FeatureConfig(kind="musicnn")``: MSD last.fm tags, of which :data:`MOOD_TAGS` are about mood).

It learns from two kinds of labels at once, each where a dataset has it:

- **2 Hz curves** (``Item.dynamic``: the synthetic corpus, DEAM, PMEmo): the dynamic losses per window;
- **signs of valence and arousal** of a whole clip: EMOPIA's quadrant tags ``Q1``..``Q4`` (Q1 V+A+,
  Q2 V-A+, Q3 V-A-, Q4 V+A-) or the signs of static labels. The clip's static point ``s`` (the mean of the
  curve over its steps) gives ``P(sign > 0) = sigmoid(sign_scale * s)``; the loss is the binary cross-entropy
  of both dimensions. So a clip the annotators put in Q2 pulls the mean valence of its curve below zero and
  the mean arousal above, without saying where inside the clip.

Evaluation reports what each kind of label allows: quadrant accuracy and macro-F1, per-dimension sign
accuracy and ROC-AUC of the static value (clips with sign labels), and CCC/PCC/RMSE of the curve (tracks with
curves), under the same names as the dynamic task.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import MUSICNN_BINS, SEGMENT_S, FeatureConfig, SettingError, number, text_list
from ..emotion import quadrant_index
from ..metrics import evaluate_dynamic
from .base import TASKS, Item, crop_frames, logistic, pad_value
from .dynamic import DynamicTask

#: The quadrant tag names a dataset may carry (EMOPIA), in quadrant order.
QUADRANT_TAGS = ("Q1", "Q2", "Q3", "Q4")

#: (valence sign, arousal sign) of quadrants 1-4.
_QUADRANT_SIGNS = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float32)

#: The MSD last.fm tags of MusiCNN that describe mood; ``predict`` reports these (mean over the track).
MOOD_TAGS = (
    "happy",
    "sad",
    "beautiful",
    "Mellow",
    "chill",
    "chillout",
    "easy listening",
    "party",
    "sexy",
    "catchy",
)


class _MoodExamples(Dataset):
    """``(x, curve target, curve mask, sign target, sign mask, step mask)`` per window (see MoodTask.examples)."""

    def __init__(self, items, entries, length: int, pad):
        self.items, self.entries, self.length, self.pad = items, entries, length, pad

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        idx, start, y, m, sign, sign_mask, steps = self.entries[i]
        x = crop_frames(self.items[idx].feats, start, self.length, self.pad)
        valid = np.zeros(self.length, dtype=np.float32)
        valid[:steps] = 1.0
        return (
            torch.from_numpy(x)[None],
            torch.from_numpy(y),
            torch.from_numpy(m),
            torch.from_numpy(sign),
            torch.from_numpy(sign_mask),
            torch.from_numpy(valid),
        )


@TASKS.register("mood")
class MoodTask(DynamicTask):
    """Curve + clip signs (see the module docstring). Options of the dynamic task (the sliding-window hops
    default to 5 s: the head is a recurrent layer over a 30 s window, and six overlapping windows per step
    give a smooth curve at a tenth of the cost of 0.5 s hops), plus:

    Parameters
    ----------
    sign_scale : float
        ``P(positive) = sigmoid(sign_scale * static)``: a static value of 0.5 is 88 % sure at the default 4.
    sign_weight, curve_weight : float
        Weights of the sign and curve losses in the optimised sum.
    tag_names : sequence of str
        The dataset's tag names (its ``Q1``..``Q4`` columns are the quadrant labels; other tags are unused).
    mood_tags : sequence of str
        The front end's tags reported by ``predict`` (default :data:`MOOD_TAGS`).
    """

    kind = "mood"
    streams = False  # the MusiCNN features are computed on the whole file
    option_settings = {
        **{k: v for k, v in DynamicTask.option_settings.items() if k != "train_reuse"},
        "sign_scale": number(0, 1000, lo_open=True),
        "sign_weight": number(0, 1000),
        "curve_weight": number(0, 1000),
        "tag_names": text_list(max_len=10000),
        "mood_tags": text_list(max_len=50, unique=True),  # MSD tags: checked by the constructor
    }

    def __init__(
        self,
        features: FeatureConfig,
        *,
        window_s: float = 30.0,
        train_hop_s: float = 10.0,
        losses: dict | None = None,
        hop_valence: float = 5.0,
        hop_arousal: float = 5.0,
        sign_scale: float = 4.0,
        sign_weight: float = 1.0,
        curve_weight: float = 1.0,
        tag_names=(),
        mood_tags=MOOD_TAGS,
    ):
        super().__init__(
            features,
            window_s=window_s,
            train_hop_s=train_hop_s,
            losses={"valence": "ccc", "arousal": "ccc", **(losses or {})},
            hop_valence=hop_valence,
            hop_arousal=hop_arousal,
        )
        self.sign_scale, self.sign_weight, self.curve_weight = (
            float(sign_scale),
            float(sign_weight),
            float(curve_weight),
        )
        self.tag_names = list(tag_names or [])
        self._q_cols = (
            [self.tag_names.index(q) for q in QUADRANT_TAGS]
            if set(QUADRANT_TAGS) <= set(self.tag_names)
            else None
        )
        self.mood_tags = list(mood_tags)
        from ..models.musicnn import MSD_TAGS

        unknown = [t for t in self.mood_tags if t not in MSD_TAGS]
        if unknown:
            raise SettingError("mood_tags", unknown[0], "not one of the front end's MSD tags")

    @classmethod
    def for_training(cls, features: FeatureConfig, options: dict | None, model_args: dict, tag_names=None):
        return cls(features, **{**dict(options or {}), "tag_names": list(tag_names or [])})

    @classmethod
    def for_prediction(cls, features: FeatureConfig, options: dict, **overrides):
        keep = {
            k: v
            for k, v in options.items()
            if k in ("window_s", "hop_valence", "hop_arousal", "sign_scale", "mood_tags")
        }
        return cls(features, **{**keep, **{k: v for k, v in overrides.items() if v is not None}})

    def info(self) -> dict:
        return {**super().info(), "sign_scale": self.sign_scale, "mood_tags": self.mood_tags}

    # -- labels ---------------------------------------------------------------------------------------------
    def signs(self, item: Item) -> np.ndarray | None:
        """``(valence sign, arousal sign)`` in {-1, +1} of a clip, from its quadrant tags or static labels."""
        if self._q_cols is not None and item.tags is not None:
            q = np.asarray(item.tags)[self._q_cols]
            if q.max() > 0:
                return _QUADRANT_SIGNS[int(np.argmax(q))]
        if item.static is not None and not np.isnan(item.static).any():
            return np.where(np.asarray(item.static) >= 0, 1.0, -1.0).astype(np.float32)
        return None

    def quadrant_labelled(self, item: Item) -> bool:
        """Whether the clip's signs come from its quadrant tags (a listener's quadrant, as in EMOPIA and 4Q)."""
        return (
            self._q_cols is not None
            and item.tags is not None
            and float(np.max(np.asarray(item.tags)[self._q_cols])) > 0
        )

    def has_labels(self, item: Item) -> bool:
        return item.dynamic is not None or self.signs(item) is not None

    # -- training -------------------------------------------------------------------------------------------
    def examples(self, items: list[Item], model, *, seed: int = 0) -> Dataset:
        """Windows of ``window_s`` every ``train_hop_s``: with the curve where a track has one, with the
        clip's signs where it has them (a clip shorter than the window is one window, padded and masked)."""
        w = self.window_segments
        hop = max(1, int(round(self.train_hop_s / SEGMENT_S)))
        no_curve = (np.zeros((w, 2), np.float32), np.zeros((w, 2), np.float32))
        entries = []
        for i, it in enumerate(items):
            n_audio = it.n_frames // self.fps_seg
            sign = self.signs(it)
            if it.dynamic is not None:
                for s in self.window_starts(it):
                    y = np.full((w, 2), np.nan, dtype=np.float32)
                    seg = it.dynamic[s : s + w]
                    y[: len(seg)] = seg
                    if s + w > n_audio:
                        y[max(0, n_audio - s) :] = np.nan
                    m = (~np.isnan(y)).astype(np.float32)
                    steps = max(1, min(w, n_audio - s))
                    entries.append((i, s * self.fps_seg, np.nan_to_num(y), m, *_sign_arrays(sign), steps))
            elif sign is not None:
                starts = list(range(0, max(1, n_audio - w + 1), hop))
                if n_audio > w and starts[-1] != n_audio - w:
                    starts.append(n_audio - w)
                for s in starts:
                    steps = max(1, min(w, n_audio - s))
                    entries.append((i, s * self.fps_seg, *no_curve, *_sign_arrays(sign), steps))
        return _MoodExamples(items, entries, w * self.fps_seg, pad_value(model))

    def train_loader(self, examples: Dataset, *, batch_size: int, seed: int, num_workers: int = 0):
        return super(DynamicTask, self).train_loader(
            examples, batch_size=batch_size, seed=seed, num_workers=num_workers
        )

    def training_losses(self, model, batch) -> tuple[dict, int]:
        x, y, m, sign, sign_mask, valid = batch
        pred = model(x)  # (batch, steps, 2)
        out = {}
        if bool(m.any()):
            curve = self.loss(pred, y, m)
            out["loss_curve"] = curve["loss"]
        else:
            out["loss_curve"] = pred.sum() * 0.0
        static = (pred * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp_min(1.0)  # (batch, 2)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            self.sign_scale * static, (sign > 0).float(), reduction="none"
        )
        out["loss_sign"] = (bce * sign_mask).sum() / sign_mask.sum().clamp_min(1.0)
        out["loss"] = self.curve_weight * out["loss_curve"] + self.sign_weight * out["loss_sign"]
        logits = getattr(model, "last_quadrant_logits", None)
        if logits is not None:  # a model with a quadrant classifier: cross-entropy where both signs are known
            both = (sign_mask > 0).all(1)
            if bool(both.any()):
                vpos, apos = sign[both, 0] > 0, sign[both, 1] > 0
                target = torch.where(apos, torch.where(vpos, 0, 1), torch.where(vpos, 3, 2))  # Q1 Q2 Q3 Q4
                ce = torch.nn.functional.cross_entropy(logits[both], target)
            else:
                ce = logits.sum() * 0.0
            out["loss_quadrant"] = ce
            out["loss"] = out["loss"] + self.sign_weight * ce
        return out, len(x)

    # -- whole tracks -----------------------------------------------------------------------------------------
    def sliding_curve(self, model, feats: np.ndarray, *, device="cpu") -> np.ndarray:
        """``(steps, 2)``: the curve of the sliding window alone (before a model's track-level movement)."""
        return super().predict(model, feats, device=device)

    def predict(self, model, feats: np.ndarray, *, device="cpu") -> np.ndarray:
        """``(steps, 2 + n_front_end_tags)``: the curve (sliding window, then the model's track-level movement
        where it has one: ``musicnn_va``'s ``movement_past_s``) then the front end's tag probabilities."""
        curve = self.sliding_curve(model, feats, device=device)
        n = len(curve)
        if getattr(model, "motion", None) is not None:
            curve = model.track_curve(np.asarray(feats[:n]), curve).astype(np.asarray(curve).dtype)
        parts = [curve, logistic(np.asarray(feats[:n, 200:MUSICNN_BINS], dtype=np.float64))]
        if getattr(model, "mood_head", None) is not None:
            self.mood_names = list(model.moods)
            parts.append(self._mood_steps(model, feats, n, device))
        return np.concatenate(parts, axis=1)

    def _mood_steps(self, model, feats: np.ndarray, n: int, device) -> np.ndarray:
        """``(n, n_moods)``: each step gets the mood probabilities of its window (consecutive ``window_s``
        windows; the last one ends at the track's end, reaching back into the one before)."""
        w = self.window_segments
        starts = list(range(0, max(1, n - w + 1), w))
        if starts[-1] + w < n:
            starts.append(n - w)
        out = np.zeros((n, len(model.moods)))
        x = torch.as_tensor(np.asarray(feats[:n], dtype=np.float32))
        with torch.no_grad():
            for s in starts:
                p = model.mood_probabilities(x[s : s + w][None, None].to(device))[0]
                out[s : s + w] = p.double().cpu().numpy()
        return out

    def predict_blocks(self, model, blocks, *, device="cpu", autocast=None) -> np.ndarray:
        return super(DynamicTask, self).predict_blocks(model, blocks, device=device, autocast=autocast)

    def result_fields(self, out: np.ndarray, duration_s: float) -> dict:
        """The dynamic fields from the curve, the static point its mean, ``tags`` the mood tags' mean
        probability over the track, and ``extra.quadrant_probabilities`` from the static point's signs."""
        from ..models.musicnn import MSD_TAGS

        out = np.asarray(out)
        fields = super().result_fields(out[:, :2], duration_s)
        n = len(fields["dynamic"]["valence"])
        probs = out[:n, 2:].mean(0)
        fields["tags"] = {t: float(probs[MSD_TAGS.index(t)]) for t in self.mood_tags}
        moods = getattr(self, "mood_names", None)
        pv, pa = (logistic(self.sign_scale * fields["static"][d]) for d in ("valence", "arousal"))
        q = {"Q1": pv * pa, "Q2": (1 - pv) * pa, "Q3": (1 - pv) * (1 - pa), "Q4": pv * (1 - pa)}
        fields["extra"] = {"quadrant_probabilities": {k: round(float(v), 4) for k, v in q.items()}}
        if moods and out.shape[1] == 2 + len(MSD_TAGS) + len(moods):
            fields["extra"]["moods"] = {m: round(float(p), 4) for m, p in zip(moods, probs[len(MSD_TAGS) :])}
        return fields

    def evaluate(self, items: list[Item], preds: list[np.ndarray]) -> OrderedDict:
        """Sign metrics on clips with signs, curve metrics on tracks with curves (whichever are present)."""
        metrics = OrderedDict()
        signed = [
            (self.signs(it), np.asarray(p)[:, :2].mean(0))
            for it, p in zip(items, preds)
            if self.signs(it) is not None
        ]
        if signed:
            metrics.update(sign_metrics(np.stack([s for s, _ in signed]), np.stack([v for _, v in signed])))
        curves = [(it, np.asarray(p)[:, :2]) for it, p in zip(items, preds) if it.dynamic is not None]
        if curves:
            refs, ests = [], []
            for it, p in curves:
                n = min(len(it.dynamic), len(p))
                ok = ~np.isnan(it.dynamic[:n]).any(1)
                if ok.sum() >= 2:
                    refs.append(it.dynamic[:n][ok])
                    ests.append(p[:n][ok])
            if refs:
                metrics.update(evaluate_dynamic(refs, ests))
        if not metrics:
            raise ValueError("no track carries signs or a curve with at least two labelled steps to evaluate")
        return metrics

    @staticmethod
    def score(metrics: dict) -> float:
        """Early stopping: the mean of what is there -- quadrant accuracy, and the curve's mean CCC."""
        parts = [metrics[k] for k in ("quadrant_accuracy",) if k in metrics]
        if "valence_ccc" in metrics:
            parts.append(0.5 * (metrics["valence_ccc"] + metrics["arousal_ccc"]))
        return float(np.mean(parts))

    # -- the classical reference: clip statistics, a logistic regression per sign ----------------------------
    def classical_examples(self, item: Item, ref):
        sign = self.signs(item)
        if sign is None:
            return None
        return ref.clip_stats(item.feats)[None], (sign[None] > 0).astype(int)

    def classical_estimator(self, ref):
        return ref.classifier(2)

    def classical_predict(self, estimator, item: Item, ref) -> np.ndarray:
        p = estimator.predict_proba(ref.clip_stats(item.feats)[None])[0]  # (V-, V+, A-, A+)
        return np.array([[p[1] - p[0], p[3] - p[2]]])  # one step whose mean is the static value


def _sign_arrays(sign) -> tuple[np.ndarray, np.ndarray]:
    if sign is None:
        return np.zeros(2, np.float32), np.zeros(2, np.float32)
    return np.asarray(sign, np.float32), np.ones(2, np.float32)


def sign_metrics(signs: np.ndarray, values: np.ndarray) -> OrderedDict:
    """Quadrant accuracy / macro-F1 and per-dimension sign accuracy / ROC-AUC.

    ``signs`` ``(n, 2)`` true (valence, arousal) signs in {-1, +1}; ``values`` ``(n, 2)`` predicted static
    values (their signs are the predicted quadrant; a zero counts as positive, as :mod:`moodscope.emotion`).
    Macro-F1 averages over the quadrants present in the truth or the prediction."""
    from sklearn.metrics import f1_score, roc_auc_score

    true_q = quadrant_index(signs[:, 0], signs[:, 1])
    pred_q = quadrant_index(values[:, 0], values[:, 1])
    out = OrderedDict()
    out["quadrant_accuracy"] = float(np.mean(true_q == pred_q))
    out["quadrant_macro_f1"] = float(
        f1_score(true_q, pred_q, average="macro", labels=np.union1d(true_q, pred_q), zero_division=0)
    )
    for d, name in enumerate(("valence", "arousal")):
        pos = signs[:, d] > 0
        out[f"{name}_sign_accuracy"] = float(np.mean(pos == (values[:, d] >= 0)))
        out[f"{name}_auc"] = (
            float(roc_auc_score(pos, values[:, d])) if 0 < pos.sum() < len(pos) else float("nan")
        )
    return out
