"""One fold: train, choose the best checkpoint on validation, evaluate on the test tracks, write the model file."""

from __future__ import annotations

import shutil
import signal
import time
import warnings
from pathlib import Path

import torch

from ..config import FeatureConfig
from ..errors import ConfigError, MoodscopeError
from ..modelfile import save_model
from ..models import MODELS, build, resolve_args
from ..precision import lightning_precision, resolve_device
from ..precision import resolve as resolve_precision
from ..tasks import TASKS, Item
from .classical import NAME as CLASSICAL
from .classical import ClassicalReference
from .data import carve_validation, input_stats, log
from .reports import write_json
from .rundir import warn
from .system import IndexDataset, import_lightning, make_system


def experiment_task(cfg: dict, kind: str, features: FeatureConfig, model_args: dict, tag_names=None):
    """The task of kind ``kind`` for an experiment ``cfg`` (see :meth:`moodscope.tasks.base.Task.for_training`)."""
    return TASKS.get(kind).for_training(features, cfg.get("task"), model_args, tag_names)


def model_features(cfg: dict, model_name: str) -> FeatureConfig:
    """Feature settings for a model: config overrides, plus the model class's own needs (waveform models)."""

    feats = dict(cfg.get("features") or {})
    cls = None if model_name == CLASSICAL else MODELS.get(model_name)
    if hasattr(cls, "feature_config"):  # a model on a pretrained network's features says which
        return cls.feature_config(resolve_args(model_name, dict(cfg["model"].get("args") or {})))
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
    val_ids: list[str] | None = None,
    aux_ids: list[str] = (),
) -> dict:
    """Train one fold of any model, the classical reference included, and evaluate it.

    The same steps for every learner: take the validation tracks the split names (``val_ids``) or carve
    them out of the training tracks, fit, let the task calibrate on the validation tracks (per-tag
    thresholds), predict the test tracks, score them, save the model file (deep models), and write
    ``metrics.json`` into ``fold_dir``. ``aux_ids`` are tracks of the config's ``data.also`` datasets: they
    are split into training and validation tracks the same way (``split.val_fraction``) and never tested.
    """
    seed = int(cfg["seed"]) + fold
    fold_dir.mkdir(parents=True, exist_ok=True)
    learner_cls = ClassicalLearner if cfg["model"]["name"] == CLASSICAL else DeepLearner
    learner = learner_cls(cfg, tag_names, seed=seed, fold_dir=fold_dir, resume=resume, progress=progress)
    task = learner.task
    fraction = float(cfg["split"].get("val_fraction", 0.1))
    if val_ids is None:
        tr_ids, val_ids = carve_validation(train_ids, fraction, seed)
    else:
        tr_ids, val_ids = list(train_ids), list(val_ids)
    if aux_ids:
        aux_tr, aux_val = carve_validation(list(aux_ids), fraction, seed)
        tr_ids, val_ids = tr_ids + aux_tr, val_ids + aux_val
    tr_items = [items_by_id[i] for i in tr_ids]
    val_items = task.labelled([items_by_id[i] for i in val_ids])
    test_items = task.labelled([items_by_id[i] for i in test_ids])
    t0 = time.time()
    learner.fit(tr_items, val_items, fold=fold)
    train_s = time.time() - t0
    task.calibrate(val_items, learner.predict_item)
    preds = [learner.predict_item(it) for it in test_items]
    metrics = task.evaluate(test_items, preds)
    counts = {"n_train": len(tr_items), "n_val": len(val_items), "n_test": len(test_items)}
    learner.save(
        fold_dir / "model.safetensors",
        {
            "description": cfg.get("name"),
            "task": task.info(),
            "trained_on": cfg["data"].get("dataset"),
            "fold": fold,
            "test_metrics": dict(metrics),
            **counts,
            "epochs": learner.epochs,
            "seed": seed,
        },
    )
    result = {
        "fold": fold,
        "metrics": dict(metrics),
        **counts,
        "epochs": learner.epochs,
        "train_seconds": round(train_s, 1),
        "best_val_score": learner.best_val_score,
        "test_ids": list(test_ids),
    }
    if getattr(learner, "clip_fit", None):
        result["clip_fit"] = learner.clip_fit
    if getattr(learner, "movement_fit", None):
        result["movement_fit"] = learner.movement_fit
    if getattr(learner, "level_fit", None):
        result["level_fit"] = learner.level_fit
    return fold_done(fold_dir, result, task, test_items, preds)


def refit_clip_head(
    model, task, items, *, c: float, balance: bool, seed: int, source_weights: dict | None = None
) -> dict:
    """Refit a model's clip head on the training windows of the ``items`` whose quadrant a listener gave
    (quadrant tags: 4Q, EMOPIA; not the signs of a curve's mean, such as the synthetic corpus's)
    (:func:`moodscope.models.musicnn_va.fit_clip_head`); with ``balance`` each source (ids ``<dataset>:...`` of
    ``data.also``, the main dataset without a prefix) weighs the same in total, times its ``source_weights``
    entry (by dataset name, ``"main"`` for the main dataset; 1 where absent)."""
    from ..models.musicnn_va import fit_clip_head
    from .data import source_of

    items = [it for it in items if task.quadrant_labelled(it)]
    ds = task.examples(items, model, seed=seed)
    windows, sources = [], []
    for i in range(len(ds)):
        x, _, _, sign, sign_mask, _ = ds[i]
        if not bool((sign_mask > 0).all()):
            continue
        vpos, apos = bool(sign[0] > 0), bool(sign[1] > 0)
        windows.append((x.numpy(), (0 if vpos else 1) if apos else (3 if vpos else 2)))
        item_id = items[ds.entries[i][0]].id
        sources.append(source_of(item_id))
    weights = None
    if (balance or source_weights) and windows:
        count = {s: sources.count(s) for s in set(sources)}
        extra = {s: float((source_weights or {}).get(s, 1.0)) for s in count}
        if balance:
            weights = [extra[s] * len(sources) / (len(count) * count[s]) for s in sources]
        else:
            weights = [extra[s] for s in sources]
    out = fit_clip_head(model, windows, c=c, weights=weights)
    out["sources"] = {s: sources.count(s) for s in sorted(set(sources))}
    return out


def refit_movement(
    model,
    task,
    items,
    *,
    alpha: float = 1e4,
    gain: float = 1.0,
    sources=None,
    gate=None,
    net_epochs: int | None = None,
    seed: int = 0,
) -> dict:
    """Fit a model's track-level movement (:func:`moodscope.models.musicnn_va.fit_track_movement`) on the
    training tracks with a curve whose source (``"main"``, or the dataset of a ``data.also`` entry) is in
    ``sources`` (every source with curves when ``None``; each source weighs the same in total), against the
    model's own sliding-window curve of each track. ``gate``: the sources of synthetic audio (e.g.
    ``["synthetic"]``): the gate learns them against every other labelled training track. A model with a
    ``movement_net`` then trains its members on the same tracks' curves (:func:`fit_movement_net`, seeds from
    ``seed``; ``net_epochs`` overrides its epochs)."""
    import numpy as np

    from ..models.movement_net import fit_movement_net
    from ..models.musicnn_va import fit_track_movement
    from .data import source_of

    keep = None if sources is None else set(sources)
    picked = [it for it in items if it.dynamic is not None and (keep is None or source_of(it.id) in keep)]
    if not picked:
        raise ValueError(f"train.movement_fit: no training track with a curve from {sorted(keep or [])}")
    names = [source_of(it.id) for it in picked]
    count = {n: names.count(n) for n in set(names)}
    weights = [len(names) / (len(count) * count[n]) for n in names]
    with torch.no_grad():
        tracks = [(it.feats, np.asarray(task.sliding_curve(model, it.feats)), it.dynamic) for it in picked]
    pairs = None
    if gate:
        pairs = [(it.feats, source_of(it.id) in set(gate)) for it in items if task.has_labels(it)]
    out = fit_track_movement(model, tracks, alpha=alpha, gain=gain, weights=weights, gate=pairs)
    out["sources"] = count
    if getattr(model, "motion_nets", None) is not None:
        ordered = sorted(
            picked, key=lambda it: it.id
        )  # its fit depends on the order: one, whatever the split's
        out["net"] = fit_movement_net(
            model, [(it.feats, it.dynamic) for it in ordered], seed=seed, epochs=net_epochs
        )
    return out


def refit_piano_level(
    model,
    task,
    items,
    *,
    sources,
    alpha: float = 100.0,
    quadrant_scale: float = 0.2,
    gate_c: float = 1.0,
) -> dict:
    """Fit a model's piano level (``musicnn_va`` ``piano_level``,
    :func:`moodscope.models.piano_level.fit_piano_level`) on the training ``items`` of the solo-piano
    ``sources`` (``"main"`` or a ``data.also`` dataset's name): a track with a listeners' curve gives the
    curve's mean, a clip with a listener's quadrant ``quadrant_scale`` times its signs; each source weighs the
    same in total. The gate learns those sources' tracks against every other labelled training track."""
    import numpy as np

    from ..models.piano_level import fit_piano_level
    from .data import source_of

    keep = set(sources)
    level = []
    for it in sorted(items, key=lambda it: it.id):
        if source_of(it.id) not in keep:
            continue
        if it.dynamic is not None and not np.isnan(it.dynamic).all():
            level.append((it, np.nanmean(np.asarray(it.dynamic, np.float64), 0)))
        elif task.quadrant_labelled(it):
            level.append((it, float(quadrant_scale) * np.asarray(task.signs(it), np.float64)))
    names = [source_of(it.id) for it, _ in level]
    missing = sorted(keep - set(names))
    if missing:  # a misspelt source would also teach the gate that its tracks are not piano
        raise ValueError(
            f"train.level_fit: no training track with a curve or a quadrant from {missing} (sources are 'main' "
            "or a data.also dataset's name)"
        )
    count = {n: names.count(n) for n in set(names)}
    tracks = [(it.feats, t, len(names) / (len(count) * count[n])) for (it, t), n in zip(level, names)]
    labelled = sorted(
        (it for it in items if task.has_labels(it)), key=lambda it: it.id
    )  # one order, any split's
    gate = [(it.feats, source_of(it.id) in keep) for it in labelled]
    out = fit_piano_level(model, tracks, gate, alpha=alpha, gate_c=gate_c)
    out["sources"] = count
    return out


def _check_level_fit(cfg: dict, model) -> None:
    """``train.level_fit`` against the model and the data, before any training (its fit runs after it)."""
    from .data import source_names

    lf = cfg["train"].get("level_fit")
    if not lf:
        return
    if getattr(model, "piano", None) is None:
        raise ConfigError(
            "train.level_fit: the model has no piano level to fit (model.args.piano_level is 0)"
        )
    names = source_names(cfg)
    unknown = sorted(set(lf["sources"]) - names)
    if unknown:
        raise ConfigError(
            f"train.level_fit.sources: {unknown} name no data source of this config (it has {sorted(names)})"
        )


class DeepLearner:
    """A registered model trained with Lightning: Adam (+ step decay), early stopping on the validation
    score, the best checkpoint kept; ``resume`` continues from the fold's last checkpoint.

    On resume an unreadable ``last.ckpt`` (truncated, corrupt) is not fatal: the fold continues from the
    newest readable checkpoint beside it (``best.ckpt``), else it is trained from the start; either way
    with a warning naming the file, which is removed. The interrupted attempt's ``logs/metrics.csv`` is
    kept as ``logs/metrics.<n>.csv`` (Lightning would delete it).
    """

    def __init__(self, cfg: dict, tag_names, *, seed: int, fold_dir: Path, resume: bool, progress: bool):
        self.L = import_lightning()
        self.cfg, self.seed, self.fold_dir, self.resume, self.progress = cfg, seed, fold_dir, resume, progress
        self.L.seed_everything(seed, workers=True, verbose=False)
        if not resume:  # a fresh run must not meet an earlier run's checkpoints or logs
            self._clear_attempt()
        name = cfg["model"]["name"]
        kind = MODELS.get(name).output
        args = TASKS.get(kind).model_args(dict(cfg["model"].get("args") or {}), tag_names)
        try:
            self.model = build(name, **args)
        except (TypeError, ValueError) as e:  # arguments the architecture refuses: the config's fault
            raise ConfigError(f"model.args of {name!r}: {e}") from None
        self.features = model_features(cfg, name)
        self.task = experiment_task(cfg, kind, self.features, self.model.model_args, tag_names)
        _check_level_fit(cfg, self.model)
        self.device = resolve_device(cfg["train"].get("device"))
        self.epochs, self.best_val_score = 0, None
        self.clip_fit: dict | None = None
        self.movement_fit: dict | None = None
        self.level_fit: dict | None = None

    def fit(self, tr_items: list[Item], val_items: list[Item], *, fold: int) -> None:
        from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

        L, tc, model, task, seed = self.L, self.cfg["train"], self.model, self.task, self.seed
        model.set_input_stats(*input_stats(tr_items, seed=seed))
        train_ds = task.examples(tr_items, model, seed=seed)
        if len(train_ds) == 0:
            raise MoodscopeError(
                f"fold {fold}: no training examples (are the training tracks labelled for this task?)"
            )
        loader = task.train_loader(
            train_ds, batch_size=int(tc["batch_size"]), seed=seed, num_workers=int(tc.get("num_workers") or 0)
        )
        val_loader = torch.utils.data.DataLoader(IndexDataset(len(val_items)), batch_size=None)
        system = make_system(model, task, tc, val_items)
        ckpt = ModelCheckpoint(
            dirpath=self.fold_dir / "checkpoints",
            filename="best",
            monitor="val_score",
            mode="max",
            save_last=True,
        )
        callbacks = [ckpt, EarlyStopping(monitor="val_score", mode="max", patience=int(tc["patience"]))]
        max_time = tc.get("max_time_s")
        device = self.device
        resume_from = self._resume_checkpoint(fold) if self.resume else None
        if resume_from:
            self._keep_log()
        trainer = L.Trainer(
            max_epochs=int(tc["epochs"]),
            accelerator="gpu" if device.startswith("cuda") else "cpu",
            devices=tc.get("devices", 1) if device.startswith("cuda") else 1,
            strategy=tc.get("strategy", "auto"),
            precision=lightning_precision(resolve_precision(tc.get("precision"), device, warn=False)),
            callbacks=callbacks,
            logger=L.pytorch.loggers.CSVLogger(str(self.fold_dir), name="logs", version=""),
            enable_progress_bar=self.progress,
            enable_model_summary=False,
            deterministic=False,
            max_time={"seconds": float(max_time)} if max_time else None,
            fast_dev_run=bool(tc.get("fast_dev_run")),
            limit_train_batches=tc.get("limit_train_batches"),
            check_val_every_n_epoch=int(tc.get("val_every", 1)),
            num_sanity_val_steps=0,
            log_every_n_steps=1,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*GPU available but not used.*")
            warnings.filterwarnings("ignore", ".*LeafSpec.*")
            warnings.filterwarnings("ignore", ".*litlogger.*")
            # a resumed fold: its old log is kept aside (_keep_log), its checkpoint folder is expected to
            # hold checkpoints, and a run directory may have been moved since
            warnings.filterwarnings("ignore", ".*Experiment logs directory.*")
            warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
            warnings.filterwarnings("ignore", ".*The dirpath has changed from.*")
            _fit(trainer, system, loader, val_loader, resume_from)
        best = ckpt.best_model_path if tc.get("keep", "best") == "best" else None
        if best and Path(best).is_file() and not tc.get("fast_dev_run"):
            state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
            model.load_state_dict(
                {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
            )
        if tc.get("clip_fit_c") is not None and getattr(model, "clip", None) is not None:
            self.clip_fit = refit_clip_head(
                model.cpu().eval(),
                task,
                tr_items + list(val_items),
                c=float(tc["clip_fit_c"]),
                balance=bool(tc.get("clip_fit_balance", True)),
                seed=seed,
                source_weights=tc.get("clip_fit_weights"),
            )
        if tc.get("movement_fit") and getattr(model, "motion", None) is not None:
            self.movement_fit = refit_movement(
                model.cpu().eval(), task, tr_items + list(val_items), seed=seed, **tc["movement_fit"]
            )
        if tc.get("level_fit") and getattr(model, "piano", None) is not None:
            self.level_fit = refit_piano_level(
                model.cpu().eval(), task, tr_items + list(val_items), **tc["level_fit"]
            )
        model.eval().to(device)
        self.epochs = int(trainer.current_epoch)
        self.best_val_score = float(ckpt.best_model_score) if ckpt.best_model_score is not None else None

    def _clear_attempt(self) -> None:
        for sub in ("checkpoints", "logs"):
            shutil.rmtree(self.fold_dir / sub, ignore_errors=True)

    def _resume_checkpoint(self, fold: int) -> str | None:
        """The checkpoint an interrupted fold continues from: ``last.ckpt``, else the newest other readable
        one. Unreadable checkpoints are removed, each with a warning; with none left the fold starts over."""
        ckdir = self.fold_dir / "checkpoints"
        if not ckdir.is_dir():
            return None
        others = sorted(
            (p for p in ckdir.glob("*.ckpt") if p.name != "last.ckpt"),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        good, bad = [], []
        for path in [ckdir / "last.ckpt", *others]:
            if not path.is_file():
                continue
            problem = _checkpoint_problem(path)
            if problem is None:
                good.append(path)
            else:
                bad.append((path, problem))
        choice = good[0] if good else None
        if bad:
            then = (
                f"fold {fold} resumes from {choice.name}"
                if choice
                else f"no usable checkpoint: fold {fold} is trained from the start"
            )
            for i, (path, problem) in enumerate(bad):
                path.unlink()
                warn(f"{path}: {problem}, removed" + (f"; {then}" if i == 0 else ""))
            if choice is None:
                self._clear_attempt()
        return str(choice) if choice else None

    def _keep_log(self) -> None:
        """Move the interrupted attempt's ``logs/metrics.csv`` to ``logs/metrics.<n>.csv`` (the first free n)."""
        log_csv = self.fold_dir / "logs" / "metrics.csv"
        if log_csv.is_file():
            n = 1
            while (log_csv.parent / f"metrics.{n}.csv").exists():
                n += 1
            log_csv.rename(log_csv.parent / f"metrics.{n}.csv")

    def predict_item(self, item: Item):
        return self.task.predict_item(self.model, item, device=self.device)

    def save(self, path: Path, info: dict) -> None:
        self.model.cpu()
        save_model(path, self.model, self.features, info)


class ClassicalLearner:
    """The hand-crafted reference (:class:`moodscope.training.classical.ClassicalReference`) as a learner.

    It solves the task of ``model.args.output`` (guessed from the ``task`` options when absent). The
    validation tracks serve as they serve the deep models: to calibrate (per-tag thresholds); their labels
    are not trained on, so both see the same training tracks. No model file is written: the reference is a
    scikit-learn pipeline.
    """

    def __init__(self, cfg: dict, tag_names, *, seed: int, fold_dir: Path, resume: bool, progress: bool):
        args = dict(cfg["model"].get("args") or {})
        self.kind = args.pop("output", None) or _guess_output(cfg.get("task") or {}, tag_names)
        self.task = experiment_task(cfg, self.kind, model_features(cfg, CLASSICAL), args, tag_names)
        args.pop("task", None)  # the static head: the task has used it
        self.options = {k: args.pop(k) for k in ("C", "alpha", "context_s") if k in args}
        if args:  # a deep model's arguments (width, seg_num, ...) have no meaning here
            log.info("classical reference: ignoring model arguments %s", sorted(args))
        self.ref = None
        self.epochs, self.best_val_score = 0, None

    def fit(self, tr_items: list[Item], val_items: list[Item], *, fold: int) -> None:
        self.ref = ClassicalReference(self.task, **self.options).fit(tr_items)

    def predict_item(self, item: Item):
        return self.ref.predict_item(item)

    def save(self, path: Path, info: dict) -> None:
        """Nothing to save (a scikit-learn pipeline, not a model file)."""


def _fit(trainer, system, loader, val_loader, resume_from: str | None) -> None:
    """``trainer.fit``, with Ctrl-C given back as :class:`KeyboardInterrupt`: Lightning turns it into
    ``sys.exit(1)`` and ignores further Ctrl-C; the caller's cleanup (the run directory's lock) and the exit
    status of an interrupted command (130) expect the interrupt itself."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(system, loader, val_loader, ckpt_path=resume_from)
    except SystemExit:
        if not trainer.interrupted:
            raise
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
        raise KeyboardInterrupt from None


def _checkpoint_problem(path: Path) -> str | None:
    """Why a Lightning checkpoint cannot be resumed from (``None`` if it can): read with ``weights_only``
    (tensors and plain data only, nothing executed), it must hold the model's state and the training loops'."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch.load makes of a damaged file, the checkpoint is unusable
        return "unreadable checkpoint (truncated or corrupt)"
    if not isinstance(ckpt, dict) or not {"state_dict", "loops", "epoch"} <= set(ckpt):
        return "not a training checkpoint"
    return None


def fold_done(fold_dir: Path, result: dict, task, test_items, preds) -> dict:
    """Add the task's extras (per-tag scores) to a fold's result and write its ``metrics.json``."""
    result.update(task.fold_extras(test_items, preds))
    write_json(fold_dir / "metrics.json", result)
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
