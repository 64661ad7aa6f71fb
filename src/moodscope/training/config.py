"""Experiment configuration: YAML files in ``configs/`` plus ``--set key=value`` overrides.

A config is a nested mapping; everything not given takes the defaults below (:data:`DEFAULTS`). Keys:

``name``            run name (the run directory is ``<output_dir>/<name>``)
``seed``            global seed (model init, data order, random crops)
``model``           ``{name: damff, args: {...}}``: a registered model and its constructor arguments
``features``        overrides of :class:`moodscope.config.FeatureConfig` (papers' log-Mel by default)
``data``            ``{dataset: folder, root: DIR, options: {...}, synthetic: {...}, max_duration_s, min_duration_s}``;
                    ``root: null`` with ``dataset: synthetic`` renders the built-in synthetic corpus into the cache
``task``            options of the model kind's task (:mod:`moodscope.tasks`): window/hops/losses, seg_len, ...
``split``           ``{kind: kfold|holdout|deam2015|mer1101|predefined, folds, seed, test_fraction, val_fraction, ...}``
``train``           ``{epochs, batch_size, lr, weight_decay, milestones, gamma, patience, device, devices, strategy,
                    precision (auto|float32|bf16), num_workers, max_time_s, fast_dev_run, limit_train_batches}``
``paper``           the published numbers this experiment reproduces: ``{source, table, row, results: {metric: value}}``
``compare``         for ``moodscope compare``: ``{args: {model: {...}}, paper: {model: {metric: value}}}``
``sweep``           ``{row label: {dotted.key: value}}``: one run per row, one table (see :func:`moodscope.training.experiment.run_experiment`)
``output_dir``      where run directories go (default ``runs``)
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..precision import normalize as normalize_precision

DEFAULTS: dict = {
    "name": "experiment",
    "seed": 0,
    "model": {"name": "damff", "args": {}},
    "features": {},
    "data": {
        "dataset": "folder",
        "root": None,
        "options": {},
        "synthetic": {"n_clips": 48, "duration": 45.0, "seed": 0},
        "min_duration_s": None,
        "cache": True,
    },
    "task": {},
    "split": {
        "kind": "kfold",
        "folds": 5,
        "seed": 0,
        "test_fraction": 0.2,
        "val_fraction": 0.1,
        "only_fold": None,
    },
    "train": {
        "epochs": 100,
        "batch_size": 32,
        "lr": 3.0e-4,
        "weight_decay": 0.0,
        "milestones": None,
        "gamma": 0.5,
        "patience": 10,
        "device": "auto",
        "devices": 1,
        "strategy": "auto",
        # auto | float32 | bf16 (moodscope.precision); float32 gives the same numbers on every machine
        "precision": "float32",
        "num_workers": 0,
        "max_time_s": None,
        "fast_dev_run": False,
        "limit_train_batches": None,
        "val_every": 1,
    },
    "paper": {},
    "compare": {},
    "sweep": {},
    "output_dir": "runs",
}


def deep_merge(base: dict, over: dict) -> dict:
    """``base`` updated recursively with ``over`` (a new dict; neither input is changed)."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if (
            isinstance(v, dict)
            and isinstance(out.get(k), dict)
            and k not in ("args", "options", "results", "compare", "sweep")
        ):
            out[k] = deep_merge(out[k], v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **copy.deepcopy(v)}
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[list[str], object]:
    """``"train.lr=1e-4"`` -> ``(["train", "lr"], 0.0001)``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value (e.g. train.epochs=5)")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({e})") from None
    if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string; a number is meant
        try:
            value = float(value)
        except ValueError:
            pass
    return keys, value


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    cfg = copy.deepcopy(cfg)
    for text in overrides or []:
        keys, value = parse_override(text)
        node = cfg
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return cfg


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, base: dict | None = None
) -> dict:
    """Read a YAML config (or start from ``base``), merge it over :data:`DEFAULTS`, apply ``--set`` overrides."""
    user: dict = copy.deepcopy(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config must be a mapping at the top level")
        user = deep_merge(user, loaded)
    cfg = deep_merge(DEFAULTS, user)
    cfg = apply_overrides(cfg, overrides)
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown top-level config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    for section in ("data", "split", "train"):
        extra = set(cfg[section]) - set(DEFAULTS[section])
        if extra:
            raise ConfigError(
                f"unknown keys in '{section}': {sorted(extra)}; known: {sorted(DEFAULTS[section])}"
            )
    try:
        cfg["train"]["precision"] = normalize_precision(cfg["train"].get("precision"))
    except ConfigError as e:
        raise ConfigError(f"train.precision: {e}") from None
    return cfg


def dump_config(cfg: dict, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
