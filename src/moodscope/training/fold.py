"""One fold: train, choose the best checkpoint on validation, evaluate on the test tracks, write the model file."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import torch

from ..config import FeatureConfig
from ..errors import ConfigError, MoodscopeError
from ..inference.sliding import resolve_device
from ..precision import lightning_precision
from ..precision import resolve as resolve_precision
from ..tasks import TASKS, Item
from .classical import NAME as CLASSICAL
from .data import carve_validation, input_stats, log
from .reports import _write_json
from .system import _IndexDataset, _lightning, make_system


def experiment_task(cfg: dict, kind: str, features: FeatureConfig, model_args: dict, tag_names=None):
    """The task of kind ``kind`` for an experiment ``cfg`` (see :meth:`moodscope.tasks.base._Task.for_training`)."""
    return TASKS.get(kind).for_training(features, cfg.get("task"), model_args, tag_names)


def model_features(cfg: dict, model_name: str) -> FeatureConfig:
    """Feature settings for a model: config overrides, plus the model class's own needs (waveform models)."""
    from ..models import MODELS

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

    from ..modelfile import save_model
    from ..models import build

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

    from ..models import MODELS

    kind = MODELS.get(cfg["model"]["name"]).output
    args = TASKS.get(kind).model_args(dict(cfg["model"].get("args") or {}), tag_names)
    try:
        model = build(cfg["model"]["name"], **args)
    except (TypeError, ValueError) as e:  # arguments the architecture refuses: the config's fault
        raise ConfigError(f"model.args of {cfg['model']['name']!r}: {e}") from None
    model.set_input_stats(*input_stats(tr_items, seed=seed))
    task = experiment_task(cfg, kind, features, model.model_args, tag_names)
    val_items, test_items = task.labelled(val_items), task.labelled(test_items)
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

    task.calibrate(val_items, lambda it: task.predict_item(model, it, device=device))
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
    """Add the task's extras (per-tag scores) to a fold's result and write its ``metrics.json``."""
    result.update(task.fold_extras(test_items, preds))
    _write_json(fold_dir / "metrics.json", result)
    return result


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
    """One fold of the classical reference (:class:`moodscope.training.classical.ClassicalReference`).

    Same validation carve-out, test tracks and metrics as :func:`train_fold`. The validation tracks are used as
    the deep models use them: to choose per-tag thresholds (their labels are otherwise not trained on, so both
    see the same training tracks). No model file is written: the reference is a scikit-learn pipeline.
    """
    from .classical import ClassicalReference

    seed = int(cfg["seed"]) + fold
    fold_dir.mkdir(parents=True, exist_ok=True)
    args = dict(cfg["model"].get("args") or {})
    kind = args.pop("output", None) or _guess_output(cfg.get("task") or {}, tag_names)
    task = experiment_task(cfg, kind, model_features(cfg, CLASSICAL), args, tag_names)
    args.pop("task", None)  # the static head: the task has used it
    tr_ids, val_ids = carve_validation(train_ids, float(cfg["split"].get("val_fraction", 0.1)), seed)
    tr_items = [items_by_id[i] for i in tr_ids]
    val_items = task.labelled([items_by_id[i] for i in val_ids])
    test_items = task.labelled([items_by_id[i] for i in test_ids])
    known = {k: args.pop(k) for k in ("C", "alpha", "context_s") if k in args}
    if args:  # a deep model's arguments (width, seg_num, ...) have no meaning here
        log.info("classical reference: ignoring model arguments %s", sorted(args))
    t0 = time.time()
    ref = ClassicalReference(kind, task, **known).fit(tr_items)
    task.calibrate(val_items, ref.predict_item)
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
