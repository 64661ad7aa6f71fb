"""Training and evaluation runs: config -> dataset -> folds -> Lightning -> run directory.

``moodscope train --config FILE [--set key=value ...]`` calls :func:`run_experiment`. For each fold it

1. splits the tracks by song (:mod:`moodscope.datasets.splits`), carving a validation set out of the training
   songs (``split.val_fraction``, at least one song);
2. sets the model's input normalisation from the training songs' features;
3. trains with Lightning: Adam (``train.lr``, ``train.weight_decay``), optional step decay (``train.milestones``,
   ``train.gamma``), early stopping on the validation score (mean CCC for dynamic models, mean R² or accuracy for
   static ones, minus the log loss for taggers) with ``train.patience``, keeping the best checkpoint;
4. evaluates the best weights on the fold's test songs exactly as ``predict`` would (whole songs, sliding window);
5. writes ``fold_<k>/model.safetensors`` and ``fold_<k>/metrics.json``.

The run directory then holds ``config.yaml`` (resolved), ``results.json`` (per fold and mean ± std) and
``results.md`` (a table, with the paper's published numbers beside ours when the config has them).
``--resume`` skips finished folds and continues an interrupted one from its last Lightning checkpoint.

Fixed splits (``deam2015``, ``mer1101``, ``holdout``, ``predefined``) with ``split.folds = N > 1`` repeat the
training N times with seeds ``seed + k`` (and a different validation carve-out); the papers' "5-fold
cross-validation" on DEAM2015, whose test set is fixed, can only mean this.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from .classical import NAME as CLASSICAL
from .config import SEGMENT_S, FeatureConfig
from .errors import ConfigError, MoodscopeError
from .experiment import dump_config, load_config
from .fileio import cache_root, write_atomic
from .inference import resolve_device
from .precision import lightning_precision
from .precision import resolve as resolve_precision
from .tasks import Item, labelled_for, make_task

log = logging.getLogger("moodscope")


# ------------------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------------------
def synthetic_root(opts: dict, base: Path | None = None) -> Path:
    """Render (once) the built-in synthetic corpus with ``opts`` and return its folder.

    It lives under ``<base>/corpora``; ``base`` defaults to moodscope's cache root (:func:`cache_root`).
    """
    from .corpus import GENERATOR_VERSION, synthesize

    base = Path(base) if base else cache_root()
    n, d, s = int(opts.get("n_clips", 48)), float(opts.get("duration", 45.0)), int(opts.get("seed", 0))
    root = base / "corpora" / f"synthetic-v{GENERATOR_VERSION}-n{n}-d{d:g}-s{s}"
    if not (root / "dataset.yaml").is_file():
        synthesize(root, n_clips=n, duration=d, seed=s)
    return root


def load_tracks(cfg: dict):
    """The dataset named by ``cfg['data']`` as a :class:`moodscope.datasets.Dataset`."""
    from .datasets import load_dataset

    data = cfg["data"]
    name, root = data["dataset"], data.get("root")
    if name == "synthetic":
        root = Path(root) if root else synthetic_root(data.get("synthetic") or {})
        name = "folder"
    if not root:
        raise ConfigError(f"data.root is not set for dataset {name!r} (use --set data.root=DIR)")
    return load_dataset(name, root, **(data.get("options") or {}))


def tracks_to_items(tracks, features: FeatureConfig, *, cache=True, tag_names=None, progress=True):
    """Features and grid-aligned labels of every track with readable audio.

    Returns ``(items, failures)`` where ``failures`` lists ``(track_id, message)`` for unreadable audio.
    """
    from tqdm import tqdm

    from .features import FeatureCache, file_features

    cache_obj = FeatureCache() if cache is True else (cache or False)
    items, failures = [], []
    fps_seg = features.frames_per_segment
    for tr in tqdm(tracks, desc="features", unit="track", disable=not progress, leave=False):
        if tr.audio is None:
            failures.append((tr.id, "no audio file"))
            continue
        try:
            feats = file_features(tr.audio, features, cache=cache_obj)
        except MoodscopeError as e:
            failures.append((tr.id, str(e)))
            continue
        dyn = None
        if tr.dynamic is not None and len(tr.dynamic.times_s):
            n_seg = max(feats.shape[0] // fps_seg, int(np.max(np.round(tr.dynamic.times_s / SEGMENT_S))) + 1)
            dyn = np.full((n_seg, 2), np.nan, dtype=np.float32)
            idx = np.round(tr.dynamic.times_s / SEGMENT_S).astype(int)
            ok = idx >= 0
            dyn[idx[ok], 0] = tr.dynamic.valence[ok]
            dyn[idx[ok], 1] = tr.dynamic.arousal[ok]
        static = np.array([tr.valence, tr.arousal], np.float32) if tr.has_static else None
        tags = None
        if tag_names and tr.tags:
            tags = np.array([float(tr.tags.get(t, 0.0)) for t in tag_names], np.float32)
        segs = []
        if tag_names and tr.segments:
            segs = [
                (s.start_s, s.end_s, np.array([float(s.tags.get(t, 0.0)) for t in tag_names], np.float32))
                for s in tr.segments
            ]
        items.append(Item(id=tr.id, feats=feats, dynamic=dyn, static=static, tags=tags, segments=segs))
    return items, failures


def input_stats(items: list[Item], max_frames: int = 200_000, seed: int = 0):
    """Per-band mean and std of the items' features (a random subset of at most ``max_frames`` frames)."""
    rng = np.random.default_rng(seed)
    total = sum(it.n_frames for it in items)
    take = min(1.0, max_frames / max(total, 1))
    parts = []
    for it in items:
        n = it.n_frames
        k = max(1, int(n * take))
        idx = np.sort(rng.choice(n, size=k, replace=False)) if k < n else np.arange(n)
        parts.append(np.asarray(it.feats[idx], dtype=np.float64))
    x = np.concatenate(parts)
    return x.mean(0).astype(np.float32), x.std(0).astype(np.float32)


# ------------------------------------------------------------------------------------------------------------
# splits
# ------------------------------------------------------------------------------------------------------------
def make_folds(cfg: dict, dataset, items: list[Item]) -> list[tuple[list[str], list[str]]]:
    """``[(train_ids, test_ids), ...]`` for the configured protocol, restricted to usable items."""
    from .datasets import splits

    sp = cfg["split"]
    kind, k, seed = sp["kind"], int(sp.get("folds") or 1), int(sp.get("seed", 0))
    ids = [it.id for it in items]
    have = set(ids)
    if kind == "kfold":
        if k < 2:
            raise ConfigError("split.folds must be >= 2 for k-fold (use split.kind=holdout for one split)")
        folds = splits.kfold_by_song(ids, k=k, seed=seed)
    else:
        if kind == "holdout":
            rng = np.random.default_rng(seed)
            perm = list(rng.permutation(ids))
            n_test = max(1, int(round(len(ids) * float(sp.get("test_fraction", 0.2)))))
            one = (sorted(perm[n_test:]), sorted(perm[:n_test]))
        elif kind == "deam2015":
            one = splits.deam2015_split(dataset, dev_ids_file=sp.get("dev_ids_file"))
        elif kind == "mer1101":
            durations = {it.id: it.n_frames / dataset_fps(cfg) for it in items}
            one = splits.mer1101_split([t for t in dataset.tracks if t.id in have], durations, seed=seed)
        elif kind == "predefined":
            tr = [
                t.id
                for t in dataset.tracks
                if (t.split or "").lower() in ("train", "training", "development")
            ]
            te = [t.id for t in dataset.tracks if (t.split or "").lower() in ("test", "evaluation", "eval")]
            one = (tr, te)
        else:
            raise ConfigError(
                f"unknown split.kind {kind!r}; known: kfold, holdout, deam2015, mer1101, predefined"
            )
        folds = [one] * k
    out = []
    for tr, te in folds:
        tr2, te2 = [i for i in tr if i in have], [i for i in te if i in have]
        if not tr2 or not te2:
            raise MoodscopeError(
                f"split {kind!r} leaves {len(tr2)} training and {len(te2)} test tracks with audio"
            )
        out.append((tr2, te2))
    return out


def dataset_fps(cfg: dict) -> float:
    return FeatureConfig.from_dict(cfg["features"]).frames_per_second


def carve_validation(train_ids: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    perm = list(rng.permutation(sorted(train_ids)))
    n_val = max(1, int(round(len(perm) * fraction))) if len(perm) > 1 else 0
    if n_val == 0:
        return perm, perm
    return sorted(perm[n_val:]), sorted(perm[:n_val])


# ------------------------------------------------------------------------------------------------------------
# Lightning system
# ------------------------------------------------------------------------------------------------------------
def _lightning():
    """Import Lightning quietly (its INFO banners and tips are noise for a CLI user; -v shows them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lightning as L
    level = logging.INFO if log.isEnabledFor(logging.INFO) else logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(level)
    return L


def make_system(model, task, train_cfg: dict, val_items: list[Item]):
    L = _lightning()

    class MoodSystem(L.LightningModule):
        """model + task loss + Adam (+ step decay); validation predicts whole songs as at test time."""

        def __init__(self):
            super().__init__()
            self.model = model
            self.task = task
            self.cfg = train_cfg
            self.val_items = val_items
            self._val_preds: dict[int, np.ndarray] = {}
            self.last_val_metrics: dict = {}

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, batch_idx):
            losses, n = self.task.training_losses(self.model, batch)
            aux = getattr(self.model, "auxiliary_loss", None)
            if aux is not None:  # e.g. BCRSN's sparsity penalty
                losses["loss_aux"] = aux()
                losses["loss"] = losses["loss"] + losses["loss_aux"]
            for k, v in losses.items():
                self.log(f"train_{k}", v, prog_bar=(k == "loss"), on_step=False, on_epoch=True, batch_size=n)
            return losses["loss"]

        def validation_step(self, batch, batch_idx):
            i = int(batch if not hasattr(batch, "__getitem__") else batch[0])
            self._val_preds[i] = self.task.predict_item(self.model, self.val_items[i], device=self.device)

        def on_validation_epoch_end(self):
            if not self._val_preds:
                return
            order = sorted(self._val_preds)
            metrics = self.task.evaluate(
                [self.val_items[i] for i in order], [self._val_preds[i] for i in order]
            )
            score = self.task.score(metrics)
            if math.isnan(score):
                score = -1.0
            self.last_val_metrics = dict(metrics)
            self.log("val_score", float(score), prog_bar=True)
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not math.isnan(v):
                    self.log(f"val_{k}", float(v))
            self._val_preds = {}

        def configure_optimizers(self):
            opt = torch.optim.Adam(
                self.model.parameters(),
                lr=float(self.cfg["lr"]),
                weight_decay=float(self.cfg["weight_decay"] or 0),
            )
            if self.cfg.get("milestones"):
                sched = torch.optim.lr_scheduler.MultiStepLR(
                    opt, milestones=list(self.cfg["milestones"]), gamma=float(self.cfg.get("gamma", 0.5))
                )
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
            return opt

    return MoodSystem()


class _IndexDataset(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def task_options(cfg: dict, output: str, model_args: dict, tag_names=None) -> dict:
    """The task's options for a model of kind ``output``: the config's ``task`` section, plus the static head
    (the model's ``task`` argument) or the tag names the dataset adapter read."""
    opts = dict(cfg.get("task") or {})
    if output == "static":
        opts.setdefault("head", model_args.get("task", "multitask"))
    if output == "tags":
        opts.setdefault("tag_names", list(tag_names or []))
    return opts


def model_features(cfg: dict, model_name: str) -> FeatureConfig:
    """Feature settings for a model: config overrides, plus the model class's own needs (waveform models)."""
    from .models import MODELS

    feats = dict(cfg.get("features") or {})
    cls = None if model_name == CLASSICAL else MODELS.get(model_name)
    if getattr(cls, "feature_kind", "logmel") == "waveform":
        feats.setdefault("kind", "waveform")
        sr = (cfg["model"].get("args") or {}).get("sr") or getattr(cls, "default_sr", 16000)
        feats.setdefault("sr", int(sr))
    return FeatureConfig.from_dict(feats)


def train_fold(
    cfg: dict,
    items_by_id: dict[str, Item],
    train_ids: list[str],
    test_ids: list[str],
    fold_dir: Path,
    *,
    fold: int,
    resume: bool = False,
    tag_names=None,
    progress: bool = True,
) -> dict:
    """Train one fold and evaluate it; writes ``model.safetensors`` and ``metrics.json`` into ``fold_dir``."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from .modelfile import save_model
    from .models import build

    L = _lightning()
    tc = cfg["train"]
    seed = int(cfg["seed"]) + fold
    L.seed_everything(seed, workers=True, verbose=False)
    if not resume:  # a fresh run must not meet an earlier run's checkpoints or logs
        import shutil

        for sub in ("checkpoints", "logs"):
            shutil.rmtree(fold_dir / sub, ignore_errors=True)
    fold_dir.mkdir(parents=True, exist_ok=True)
    features = model_features(cfg, cfg["model"]["name"])

    tr_ids, val_ids = carve_validation(train_ids, float(cfg["split"].get("val_fraction", 0.1)), seed)
    tr_items = [items_by_id[i] for i in tr_ids]
    val_items = [items_by_id[i] for i in val_ids]
    test_items = [items_by_id[i] for i in test_ids]

    from .models import MODELS

    args = dict(cfg["model"].get("args") or {})
    if MODELS.get(cfg["model"]["name"]).output == "tags" and tag_names:
        args["n_tags"] = len(tag_names)  # one output per tag the adapter read
    model = build(cfg["model"]["name"], **args)
    val_items, test_items = labelled_for(model.output, val_items), labelled_for(model.output, test_items)
    model.set_input_stats(*input_stats(tr_items, seed=seed))
    task = make_task(model.output, features, **task_options(cfg, model.output, model.model_args, tag_names))
    train_ds = task.examples(tr_items, model, seed=seed)
    if len(train_ds) == 0:
        raise MoodscopeError(
            f"fold {fold}: no training examples (are the training tracks labelled for this task?)"
        )
    device = resolve_device(tc.get("device"))
    loader = task.train_loader(
        train_ds, batch_size=int(tc["batch_size"]), seed=seed, num_workers=int(tc.get("num_workers") or 0)
    )
    val_loader = torch.utils.data.DataLoader(_IndexDataset(len(val_items)), batch_size=None)
    system = make_system(model, task, tc, val_items)
    ckpt = ModelCheckpoint(
        dirpath=fold_dir / "checkpoints", filename="best", monitor="val_score", mode="max", save_last=True
    )
    callbacks = [ckpt, EarlyStopping(monitor="val_score", mode="max", patience=int(tc["patience"]))]
    max_time = tc.get("max_time_s")
    trainer = L.Trainer(
        max_epochs=int(tc["epochs"]),
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=tc.get("devices", 1) if device.startswith("cuda") else 1,
        strategy=tc.get("strategy", "auto"),
        precision=lightning_precision(resolve_precision(tc.get("precision"), device, warn=False)),
        callbacks=callbacks,
        logger=L.pytorch.loggers.CSVLogger(str(fold_dir), name="logs", version=""),
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=False,
        max_time={"seconds": float(max_time)} if max_time else None,
        fast_dev_run=bool(tc.get("fast_dev_run")),
        limit_train_batches=tc.get("limit_train_batches"),
        check_val_every_n_epoch=int(tc.get("val_every", 1)),
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    last = fold_dir / "checkpoints" / "last.ckpt"
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        warnings.filterwarnings("ignore", ".*litlogger.*")
        trainer.fit(system, loader, val_loader, ckpt_path=str(last) if resume and last.is_file() else None)
    train_s = time.time() - t0
    best = ckpt.best_model_path
    if best and Path(best).is_file() and not tc.get("fast_dev_run"):
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(
            {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
        )
    model.eval().to(device)

    if model.output == "tags":
        task.thresholds = tag_thresholds(
            task, val_items, lambda it: task.predict_item(model, it, device=device)
        )
    preds = [task.predict_item(model, it, device=device) for it in test_items]
    metrics = task.evaluate(test_items, preds)
    model.cpu()
    info = {
        "description": cfg.get("name"),
        "task": task.info(),
        "trained_on": cfg["data"].get("dataset"),
        "fold": fold,
        "test_metrics": dict(metrics),
        "n_train": len(tr_items),
        "n_val": len(val_items),
        "n_test": len(test_items),
        "epochs": int(trainer.current_epoch),
        "seed": seed,
    }
    save_model(fold_dir / "model.safetensors", model, features, info)
    result = {
        "fold": fold,
        "metrics": dict(metrics),
        "n_train": len(tr_items),
        "n_val": len(val_items),
        "n_test": len(test_items),
        "epochs": int(trainer.current_epoch),
        "train_seconds": round(train_s, 1),
        "best_val_score": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
        "test_ids": list(test_ids),
    }
    return _fold_done(fold_dir, result, task, test_items, preds)


def _fold_done(fold_dir: Path, result: dict, task, test_items, preds) -> dict:
    """Add per-tag scores (tag tasks) to a fold's result and write its ``metrics.json``."""
    if task.kind == "tags":
        result["per_tag"] = task.per_tag(test_items, preds)
    _write_json(fold_dir / "metrics.json", result)
    return result


def tag_thresholds(task, val_items, predict) -> np.ndarray | None:
    """Per-tag thresholds maximising F1 on the validation tracks (0.5 where a tag has no positives).

    ``predict(item)`` gives an item's probabilities as ``task.predict_item`` does.
    """
    from .tagging import choose_thresholds

    try:
        y, probs = task.gather(val_items, [predict(it) for it in val_items])
    except ValueError:  # no validation track carries tags
        return None
    return np.asarray(choose_thresholds(y, probs), dtype=np.float32)


def _guess_output(task_opts: dict, tag_names) -> str:
    """The output kind a config's ``task`` options belong to (for ``model.name: classical`` without ``output``)."""
    if {"window_s", "train_hop_s", "losses", "hop_valence", "hop_arousal"} & set(task_opts):
        return "dynamic"
    if {"dataset", "head"} & set(task_opts):
        return "static"
    if tag_names:
        return "tags"
    raise ConfigError("model.name=classical: set model.args.output to dynamic, static or tags")


def train_fold_classical(
    cfg: dict,
    items_by_id: dict[str, Item],
    train_ids: list[str],
    test_ids: list[str],
    fold_dir: Path,
    *,
    fold: int,
    tag_names=None,
) -> dict:
    """One fold of the classical reference (:class:`moodscope.classical.ClassicalReference`).

    Same validation carve-out, test tracks and metrics as :func:`train_fold`. The validation tracks are used as
    the deep models use them: to choose per-tag thresholds (their labels are otherwise not trained on, so both
    see the same training tracks). No model file is written: the reference is a scikit-learn pipeline.
    """
    from .classical import ClassicalReference

    seed = int(cfg["seed"]) + fold
    fold_dir.mkdir(parents=True, exist_ok=True)
    args = dict(cfg["model"].get("args") or {})
    kind = args.pop("output", None) or _guess_output(cfg.get("task") or {}, tag_names)
    task = make_task(kind, model_features(cfg, CLASSICAL), **task_options(cfg, kind, args, tag_names))
    args.pop("task", None)  # the static head: task_options has used it
    tr_ids, val_ids = carve_validation(train_ids, float(cfg["split"].get("val_fraction", 0.1)), seed)
    tr_items = [items_by_id[i] for i in tr_ids]
    val_items = labelled_for(kind, [items_by_id[i] for i in val_ids])
    test_items = labelled_for(kind, [items_by_id[i] for i in test_ids])
    known = {k: args.pop(k) for k in ("C", "alpha", "context_s") if k in args}
    if args:  # a deep model's arguments (width, seg_num, ...) have no meaning here
        log.info("classical reference: ignoring model arguments %s", sorted(args))
    t0 = time.time()
    ref = ClassicalReference(kind, task, **known).fit(tr_items)
    if kind == "tags":
        task.thresholds = tag_thresholds(task, val_items, ref.predict_item)
    train_s = time.time() - t0
    preds = [ref.predict_item(it) for it in test_items]
    result = {
        "fold": fold,
        "metrics": dict(task.evaluate(test_items, preds)),
        "n_train": len(tr_items),
        "n_val": len(val_items),
        "n_test": len(test_items),
        "epochs": 0,
        "train_seconds": round(train_s, 1),
        "best_val_score": None,
        "test_ids": list(test_ids),
    }
    return _fold_done(fold_dir, result, task, test_items, preds)


def _write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=_json_default))


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


# ------------------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------------------
def summarize(fold_results: list[dict]) -> OrderedDict:
    from .metrics import summarize_folds

    return summarize_folds([r["metrics"] for r in fold_results])


def per_tag_table(folds: list[dict]) -> tuple[str, str]:
    """Per-tag scores averaged over folds: a markdown table and CSV text (one row per tag).

    ``folds`` holds each fold's ``tag -> {precision, recall, f1, roc_auc, pr_auc, support}``. The mean skips
    folds where a metric is undefined (NaN AUC for a tag with one class in that fold's test tracks);
    ``support`` is summed, so it counts the tag's positive test examples over all folds.
    """
    tags = list(folds[0])
    keys = ["precision", "recall", "f1", "roc_auc", "pr_auc"]
    md = [
        f"Per tag, mean over {len(folds)} fold(s) (test tracks); support: positive test examples, all folds.",
        "",
        "| tag | " + " | ".join(keys) + " | support |",
        "|---|" + "---|" * (len(keys) + 1),
    ]
    csv_lines = ["tag," + ",".join(keys) + ",support"]
    for t in tags:
        vals = []
        for k in keys:
            v = np.array([f[t][k] for f in folds if t in f], dtype=np.float64)
            vals.append(float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"))
        sup = int(sum(f[t]["support"] for f in folds if t in f))
        md.append(f"| {t} | " + " | ".join("—" if np.isnan(v) else f"{v:.3f}" for v in vals) + f" | {sup} |")
        csv_lines.append(f"{t}," + ",".join("" if np.isnan(v) else f"{v:.6f}" for v in vals) + f",{sup}")
    return "\n".join(md) + "\n", "\n".join(csv_lines) + "\n"


def results_table(summary: dict, paper: dict | None = None, title: str = "") -> str:
    """Markdown table: metric, ours (mean ± std over folds), the paper's number where the config gives it."""
    paper_res = (paper or {}).get("results") or {}
    lines = []
    if title:
        lines.append(f"### {title}\n")
    if paper:
        src = " — ".join(str(paper[k]) for k in ("source", "table", "row") if paper.get(k))
        if src:
            lines.append(f"Paper: {src}\n")
    lines.append("| metric | ours (mean ± std) | paper |")
    lines.append("|---|---|---|")
    for k, (m, s) in summary.items():
        p = paper_res.get(k)
        lines.append(f"| {k} | {m:.4f} ± {s:.4f} | {'' if p is None else f'{p:.4f}'} |")
    return "\n".join(lines) + "\n"


def run_experiment(
    config: str | Path | dict | None = None,
    overrides: list[str] | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Run a whole experiment (all folds). Returns the results dict also written to ``results.json``.

    Two config forms expand into several runs:

    - ``sweep``: an ordered mapping ``{row label: {dotted.key: value, ...}}``; each row is run with its
      overrides into ``<run_dir>/<label>/`` and ``results.md`` gets one row per label, with the paper's numbers
      from ``paper.results[label]`` beside ours (e.g. ADFF Table 3 over ``task.seg_len_s``).
    - ``model.args.task: [valence, arousal]`` (static models): the papers' *single-task* setting, one model per
      dimension; the fold metrics of the heads are merged.
    """
    cfg = (
        load_config(None, overrides, base=config)
        if isinstance(config, dict)
        else load_config(config, overrides)
    )
    run_dir = Path(out_dir) if out_dir else Path(cfg["output_dir"]) / cfg["name"]
    # the precision actually used, decided (and warned about) once, before any work
    cfg["train"]["precision"] = resolve_precision(
        cfg["train"]["precision"], resolve_device(cfg["train"].get("device"))
    )
    if cfg.get("sweep"):
        return _run_sweep(cfg, run_dir, resume=resume, progress=progress)
    heads = (cfg["model"].get("args") or {}).get("task")
    if isinstance(heads, list):
        return _run_heads(cfg, heads, run_dir, resume=resume, progress=progress)
    return _run_single(cfg, out_dir=run_dir, resume=resume, progress=progress)


def _run_heads(cfg: dict, heads: list[str], run_dir: Path, *, resume: bool, progress: bool) -> dict:
    """One single-task model per head; fold metrics merged (fold k of every head uses the same split)."""
    import copy

    parts = []
    for h in heads:
        c = copy.deepcopy(cfg)
        c["model"]["args"]["task"] = h
        parts.append(_run_single(c, out_dir=run_dir / h, resume=resume, progress=progress))
    folds = []
    for k in range(len(parts[0]["folds"])):
        merged = OrderedDict()
        for p in parts:
            merged.update(p["folds"][k]["metrics"])
        folds.append(
            {"fold": k, "metrics": dict(merged), "heads": {h: p["folds"][k] for h, p in zip(heads, parts)}}
        )
    return _finish(cfg, run_dir, folds, extra={"heads": heads, "n_tracks": parts[0]["n_tracks"]})


#: config keys that change only the evaluation of trained models, not their training
EVALUATION_KEYS = frozenset({"task.hop_valence", "task.hop_arousal"})


def _run_sweep(cfg: dict, run_dir: Path, *, resume: bool, progress: bool) -> dict:
    from .experiment import apply_overrides

    rows = OrderedDict()
    paper_rows = ((cfg.get("paper") or {}).get("results")) or {}
    lines = [f"### {cfg['name']}: sweep of {len(cfg['sweep'])} settings", ""]
    metric_names: list[str] = []
    # rows that change only how trained models are evaluated share one training run (the first row's)
    eval_only = all(set(over or {}) <= EVALUATION_KEYS for over in cfg["sweep"].values())
    trained = prepared = None
    if eval_only:
        lines[-1:] = ["Rows change evaluation only: the models of the first row are re-evaluated.", ""]
    for label, over in cfg["sweep"].items():
        sub = apply_overrides(
            {k: v for k, v in cfg.items() if k != "sweep"},
            [f"{k}={_yaml_value(v)}" for k, v in (over or {}).items()],
        )
        sub["paper"] = {
            **(cfg.get("paper") or {}),
            "results": paper_rows.get(label) or paper_rows.get(str(label)) or {},
        }
        if trained is None:
            res = run_experiment(sub, out_dir=run_dir / _slug(label), resume=resume, progress=progress)
            if eval_only and "folds" in res:  # (a run of single-task heads has no fold models of its own)
                trained = Path(res["run_dir"])
        else:
            prepared = prepared or _prepare(sub, progress)
            res = _evaluate_trained(sub, trained, prepared, out_dir=run_dir / _slug(label))
        rows[str(label)] = res
        for m in res["summary"]:
            if m not in metric_names:
                metric_names.append(m)
    lines.append("| setting | " + " | ".join(metric_names) + " |")
    lines.append("|---|" + "---|" * len(metric_names))
    for label, res in rows.items():
        pub = paper_rows.get(label) or paper_rows.get(_maybe_number(label)) or {}
        cells = []
        for m in metric_names:
            s = res["summary"].get(m)
            cell = "" if s is None else f"{s['mean']:.4f} ± {s['std']:.4f}"
            if m in pub:
                cell += f" (paper {pub[m]:.4f})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.md").write_text(table, encoding="utf-8")
    out = {
        "name": cfg["name"],
        "sweep": {k: {"summary": v["summary"], "run_dir": v["run_dir"]} for k, v in rows.items()},
    }
    _write_json(run_dir / "results.json", out)
    out["table"] = table
    out["run_dir"] = str(run_dir)
    return out


def _yaml_value(v) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def _slug(label) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(label)).strip("_") or "row"


def _maybe_number(label: str):
    try:
        return int(label)
    except ValueError:
        try:
            return float(label)
        except ValueError:
            return label


def _finish(cfg: dict, run_dir: Path, results: list[dict], extra: dict | None = None) -> dict:
    """Write ``results.json`` / ``results.md`` for a list of fold results."""
    summary = summarize(results)
    out = {
        "name": cfg["name"],
        "model": cfg["model"],
        "dataset": cfg["data"].get("dataset"),
        **(extra or {}),
        "folds": results,
        "summary": {k: {"mean": m, "std": s} for k, (m, s) in summary.items()},
        "paper": cfg.get("paper") or {},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / "results.json", out)
    table = results_table(summary, cfg.get("paper"), title=f"{cfg['name']} ({len(results)} fold(s))")
    if any(r.get("per_tag") for r in results):
        per_tag_md, per_tag_csv = per_tag_table([r["per_tag"] for r in results if r.get("per_tag")])
        (run_dir / "per_tag.csv").write_text(per_tag_csv, encoding="utf-8")
        (run_dir / "per_tag.md").write_text(per_tag_md, encoding="utf-8")
        table += "\n" + per_tag_md
    (run_dir / "results.md").write_text(table, encoding="utf-8")
    out["table"] = table
    out["run_dir"] = str(run_dir)
    return out


def _prepare(cfg: dict, progress: bool):
    """Features of the config's dataset and its folds: ``(items_by_id, folds, tag_names, extra)``."""
    features = model_features(cfg, cfg["model"]["name"])
    dataset = load_tracks(cfg)
    tracks = dataset.tracks
    min_d = cfg["data"].get("min_duration_s")
    tag_names = list(getattr(dataset, "tag_names", None) or [])
    items, failures = tracks_to_items(
        tracks, features, cache=bool(cfg["data"].get("cache", True)), tag_names=tag_names, progress=progress
    )
    for tid, msg in failures:
        log.warning("skipped track %s: %s", tid, msg)
    if min_d:
        items = [it for it in items if it.n_frames / features.frames_per_second > float(min_d)]
    if not items:
        raise MoodscopeError(f"{dataset.root}: no usable tracks (all {len(tracks)} failed or were filtered)")
    items_by_id = {it.id: it for it in items}
    folds = make_folds(cfg, dataset, items)
    extra = {"n_tracks": len(items), "skipped_tracks": [{"id": t, "error": m} for t, m in failures]}
    return items_by_id, folds, tag_names, extra


def _run_single(cfg: dict, *, out_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    """All folds of one resolved configuration (no sweep, one model head)."""
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    items_by_id, folds, tag_names, extra = _prepare(cfg, progress)
    only = cfg["split"].get("only_fold")
    results = []
    for k, (tr, te) in enumerate(folds):
        if only is not None and k != int(only):
            continue
        fold_dir = run_dir / f"fold_{k}"
        done = fold_dir / "metrics.json"
        if resume and done.is_file():
            results.append(json.loads(done.read_text()))
            continue
        log.info("fold %d/%d: %d train, %d test tracks", k + 1, len(folds), len(tr), len(te))
        if cfg["model"]["name"] == CLASSICAL:
            results.append(
                train_fold_classical(cfg, items_by_id, tr, te, fold_dir, fold=k, tag_names=tag_names)
            )
            continue
        results.append(
            train_fold(
                cfg,
                items_by_id,
                tr,
                te,
                fold_dir,
                fold=k,
                resume=resume,
                tag_names=tag_names,
                progress=progress,
            )
        )
    return _finish(cfg, run_dir, results, extra)


def _evaluate_trained(cfg: dict, trained_dir: Path, prepared, *, out_dir: Path) -> dict:
    """Score the fold models of an earlier run (``trained_dir``) under ``cfg``'s evaluation settings.

    Used by sweeps whose rows change evaluation only (the sliding-window hops of DAMFF Figure 3): the models
    are trained once and each row re-evaluates them on the same test tracks. ``prepared`` is
    :func:`_prepare`'s result for ``cfg`` (the rows share their data, so the sweep prepares it once).
    """
    from .modelfile import load_model

    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    items_by_id, folds, tag_names, extra = prepared
    device = resolve_device(cfg["train"].get("device"))
    results = []
    for k, (_, te) in enumerate(folds):
        src = trained_dir / f"fold_{k}" / "metrics.json"
        if not src.is_file():
            continue  # a fold the trained run skipped (split.only_fold)
        bundle = load_model(trained_dir / f"fold_{k}" / "model.safetensors", device=device)
        opts = task_options(cfg, bundle.model.output, bundle.model.model_args, tag_names)
        task = make_task(bundle.model.output, bundle.features, **opts)
        test_items = labelled_for(task.kind, [items_by_id[i] for i in te])
        preds = [task.predict_item(bundle.model, it, device=device) for it in test_items]
        trained = json.loads(src.read_text())
        result = {
            **{
                key: trained[key] for key in ("n_train", "n_val", "epochs", "train_seconds", "best_val_score")
            },
            "fold": k,
            "metrics": dict(task.evaluate(test_items, preds)),
            "n_test": len(test_items),
            "test_ids": list(te),
            "trained_in": str(trained_dir / f"fold_{k}"),
        }
        (run_dir / f"fold_{k}").mkdir(parents=True, exist_ok=True)
        results.append(_fold_done(run_dir / f"fold_{k}", result, task, test_items, preds))
    if not results:
        raise MoodscopeError(f"{trained_dir}: no trained fold to evaluate")
    return _finish(cfg, run_dir, results, extra)


def evaluate_model_on_dataset(
    model_path, dataset: str, root, *, ids=None, device: str = "cpu", progress=True
):
    """Score a model file on the labelled tracks of a dataset; returns ``(metrics, n_tracks)``."""
    from .datasets import load_dataset
    from .predict import Predictor

    pred = Predictor.from_file(model_path, device=device)
    ds = load_dataset(dataset, root)
    tracks = [t for t in ds.tracks if ids is None or t.id in set(ids)]
    tag_names = pred.task.tag_names if pred.task.kind == "tags" else None
    items, failures = tracks_to_items(tracks, pred.features, tag_names=tag_names, progress=progress)
    for tid, msg in failures:
        log.warning("skipped track %s: %s", tid, msg)
    kind = pred.task.kind
    items = labelled_for(kind, items)
    if not items:
        raise MoodscopeError(f"{root}: no track has the labels a {kind} model is scored on")
    preds = [pred.task.predict_item(pred.model, it, device=pred.device) for it in items]
    return pred.task.evaluate(items, preds), len(items)
