"""What every task shares: the :class:`Item` a track becomes, training examples, the masked losses, the registry."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import FeatureConfig, Setting, check_settings
from ..inference.sliding import autocast_context
from ..registry import Registry

TASKS: Registry[type] = Registry("task")


@dataclass
class Item:
    """One track ready for learning.

    Attributes
    ----------
    id : str
    feats : np.ndarray [shape=(frames, n_bins)]
        Log-Mel dB (or waveform) features of the whole track.
    dynamic : np.ndarray [shape=(n_segments, 2)] or None
        V-A per 0.5 s segment from the track start, NaN where unlabelled.
    static : np.ndarray [shape=(2,)] or None
        Static (valence, arousal).
    tags : np.ndarray [shape=(n_tags,)] or None
    segments : list of (start_s, end_s, tags (n_tags,)) for segment-level tags.
    """

    id: str
    feats: np.ndarray
    dynamic: np.ndarray | None = None
    static: np.ndarray | None = None
    tags: np.ndarray | None = None
    segments: list = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.feats.shape[0])


def pad_value(model) -> np.ndarray:
    """Padding frame for features: the model's input-normalisation mean, so padded frames normalise to zero."""
    return model.norm.mean.detach().cpu().numpy().astype(np.float32)


def crop_frames(feats: np.ndarray, start: int, length: int, pad: np.ndarray | float) -> np.ndarray:
    """``feats[start:start+length]``, padded with ``pad`` frames where the span leaves the array."""
    n, d = feats.shape
    out = np.empty((length, d), dtype=np.float32)
    out[:] = pad
    lo, hi = max(start, 0), min(start + length, n)
    if hi > lo:
        out[lo - start : hi - start] = feats[lo:hi]
    return out


@torch.inference_mode()
def run_windows(model, wins: np.ndarray, *, device="cpu", batch_size: int = 16) -> np.ndarray:
    """Model outputs ``(n_windows, n_out)`` for windows ``(n_windows, frames, n_bins)``, in batches."""
    outs = []
    for b in range(0, len(wins), batch_size):
        x = torch.from_numpy(wins[b : b + batch_size])[:, None].to(device)  # (batch, 1, frames, n_bins)
        outs.append(model(x).float().cpu().numpy())
    return np.concatenate(outs)


class WindowExamples(Dataset):
    """A list of ``(item_index, start_frame, target, mask)`` tuples materialised lazily as tensors.

    ``reuse``: the task batches these windows with shared segments (:class:`SharedSegmentBatches`).
    """

    def __init__(self, items, entries, length, pad, *, reuse: bool = False):
        self.items, self.entries, self.length, self.pad = items, entries, length, pad
        self.reuse = reuse

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        idx, start, target, mask = self.entries[i]
        x = crop_frames(self.items[idx].feats, start, self.length, self.pad)
        return (
            torch.from_numpy(x)[None],  # (1, frames, n_bins)
            torch.as_tensor(target, dtype=torch.float32),
            torch.as_tensor(mask, dtype=torch.float32),
        )


def _masked_ccc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6):
    """1 - CCC per sequence over the valid (mask=1) steps, averaged over sequences with >= 2 valid steps.

    Shapes: ``(batch, time)`` each.
    """
    n = mask.sum(1)
    keep = n >= 2
    if not bool(keep.any()):
        return pred.sum() * 0.0
    pred, target, mask, n = pred[keep], target[keep], mask[keep], n[keep]
    mp = (pred * mask).sum(1) / n
    mt = (target * mask).sum(1) / n
    dp, dt = (pred - mp[:, None]) * mask, (target - mt[:, None]) * mask
    vp, vt = (dp**2).sum(1) / n, (dt**2).sum(1) / n
    cov = (dp * dt).sum(1) / n
    ccc = 2 * cov / (vp + vt + (mp - mt) ** 2 + eps)
    return (1 - ccc).mean()


def _masked_movement_ccc_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6
):
    """1 - CCC of the *movement*: each sequence's prediction and target minus their own mean over the valid
    steps, so the level does not enter (``2 cov / (var_p + var_t)``), averaged over sequences with >= 2 valid
    steps. For a model whose level comes from elsewhere (``musicnn_va``'s clip head): with the level in the
    loss, a level off by ``d`` makes the best movement swing by ``sqrt(var_t + d^2)`` -- far more than the
    listeners' (within-piece std about 0.06 on VGMIDI, against level errors of 0.15) -- while here the best
    amplitude is the listeners' own."""
    n = mask.sum(1)
    keep = n >= 2
    if not bool(keep.any()):
        return pred.sum() * 0.0
    pred, target, mask, n = pred[keep], target[keep], mask[keep], n[keep]
    dp = (pred - ((pred * mask).sum(1) / n)[:, None]) * mask
    dt = (target - ((target * mask).sum(1) / n)[:, None]) * mask
    cov = (dp * dt).sum(1) / n
    return (1 - 2 * cov / ((dp**2).sum(1) / n + (dt**2).sum(1) / n + eps)).mean()


def _masked_rmse_loss(pred, target, mask, eps: float = 1e-8):
    """Root of the masked mean squared error over the whole batch."""
    se = ((pred - target) ** 2 * mask).sum()
    return torch.sqrt(se / mask.sum().clamp_min(1.0) + eps)


def _masked_mse_loss(pred, target, mask):
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp_min(1.0)


LOSSES = {
    "ccc": _masked_ccc_loss,
    "movement_ccc": _masked_movement_ccc_loss,
    "rmse": _masked_rmse_loss,
    "mse": _masked_mse_loss,
}


def loss_fn(name: str):
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}") from None


class Task:
    """What every task kind provides; the kinds override what is theirs (``kind``, examples, loss, ...)."""

    kind = ""
    #: whether :meth:`predict_blocks` consumes a track block by block (memory independent of its length);
    #: a task that needs the whole track at once gets it as one block
    streams = False
    #: What each constructor option (all but ``features``) may be: type and sanity bounds, checked by
    #: :meth:`check_options` before a model file's task is built; checks between options stay in the constructor.
    option_settings: dict[str, Setting] = {}

    @classmethod
    def check_options(cls, options: dict) -> None:
        """Raise :class:`~moodscope.config.SettingError` (naming the key) for an option this kind does not
        take or a value outside its :attr:`option_settings`."""
        check_settings(options, cls.option_settings, what=f"option of task {cls.kind!r}")

    def check_model(self, model) -> None:
        """Raise ``ValueError`` unless ``model``'s outputs are what this task reads (nothing to check by
        default). ``model`` may be a skeleton on the ``meta`` device (shapes, no values)."""

    # -- an experiment's task (moodscope.training) ---------------------------------------------------------
    @classmethod
    def for_training(cls, features: FeatureConfig, options: dict | None, model_args: dict, tag_names=None):
        """The task of an experiment from the config's ``task`` section, the model's arguments and the tag
        names the dataset adapter read (each kind takes what it needs)."""
        return cls(features, **dict(options or {}))

    @classmethod
    def model_args(cls, args: dict, tag_names=None) -> dict:
        """The model's constructor arguments completed for this task (e.g. one output per tag)."""
        return dict(args)

    def has_labels(self, item: Item) -> bool:
        """Whether ``item`` carries the labels this task is trained and scored on."""
        raise NotImplementedError

    def labelled(self, items: list[Item]) -> list[Item]:
        """The items carrying this task's labels. A dataset may label tracks unevenly (static labels only,
        tags only, audio without any label); such tracks are kept out of validation and test scoring."""
        return [it for it in items if self.has_labels(it)]

    def calibrate(self, val_items: list[Item], predict) -> None:
        """Fit what the task decides on validation tracks after training (``predict(item)`` as
        :meth:`predict_item`); nothing by default."""

    def fold_extras(self, items: list[Item], preds: list) -> dict:
        """Extra entries of a fold's ``metrics.json`` beside ``metrics``; none by default."""
        return {}

    def train_loader(self, examples: Dataset, *, batch_size: int, seed: int, num_workers: int = 0):
        """The training batches: ``batch_size`` shuffled examples, the last partial batch dropped."""
        return torch.utils.data.DataLoader(
            examples,
            batch_size=batch_size,
            shuffle=True,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(seed),
            drop_last=len(examples) > batch_size,
        )

    def training_losses(self, model, batch) -> tuple[dict, int]:
        """Named losses (``loss`` is the one optimised) of one training batch, and its number of examples."""
        x, y, m = batch
        return self.loss(model(x), y, m), len(x)

    # -- prediction of whole tracks (moodscope.inference.predictor) --------------------------------------
    @classmethod
    def for_prediction(cls, features: FeatureConfig, options: dict, **overrides):
        """The task as a model file records it (``info["task"]`` less ``kind``), with ``overrides`` (not None)."""
        return cls(features, **{**options, **{k: v for k, v in overrides.items() if v is not None}})

    def predict_blocks(self, model, blocks, *, device="cpu", autocast=None) -> np.ndarray:
        """Whole-track output from the track's features in consecutive blocks (one block: the whole track).

        By default the blocks are joined and :meth:`predict` runs under ``autocast`` (a dtype or None).
        """

        feats = np.concatenate(list(blocks)) if not isinstance(blocks, np.ndarray) else blocks
        with autocast_context(torch.device(device), autocast):
            return self.predict(model, feats, device=device)

    def result_fields(self, out: np.ndarray, duration_s: float) -> dict:
        """The fields of a :class:`~moodscope.inference.predictor.Result` for a track's output ``out``:
        ``static`` ``{valence, arousal}`` (NaN where the task has none) and optionally ``dynamic``, ``tags``
        and ``extra``."""
        raise NotImplementedError

    def predict_item(self, model, item: Item, *, device="cpu"):
        """What :meth:`evaluate` scores for one item (by default the whole-track prediction)."""
        return self.predict(model, item.feats, device=device)

    # -- the hand-crafted reference (moodscope.training.classical) ---------------------------------------
    def classical_examples(self, item: Item, ref) -> tuple[np.ndarray, np.ndarray] | None:
        """Rows ``(X, Y)`` the classical reference ``ref`` fits on for ``item`` (None without labels).

        ``ref`` offers the statistics (``clip_stats``, ``span_stats``, ``segment_stats``)."""
        raise NotImplementedError

    def classical_estimator(self, ref):
        """A fresh estimator (``fit(X, Y)``) for :meth:`classical_examples`'s rows, one of ``ref``'s
        (``regressor()``, ``tagger()``, ``classifier(n_classes)``)."""
        raise NotImplementedError

    def classical_predict(self, estimator, item: Item, ref) -> np.ndarray:
        """What :meth:`evaluate` scores for ``item``, from the fitted estimator (as :meth:`predict_item`)."""
        raise NotImplementedError


def logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_task(kind: str, features: FeatureConfig, **options):
    """Build the task for a model output kind (``dynamic``, ``static``, ``tags``)."""
    return TASKS.get(kind)(features, **options)
