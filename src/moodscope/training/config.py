"""Experiment configuration: YAML files in ``configs/`` plus ``--set key=value`` overrides.

A config is a nested mapping; everything not given takes the defaults below (:data:`DEFAULTS`). Keys:

``name``            run name (the run directory is ``<output_dir>/<name>``)
``seed``            global seed (model init, data order, random crops)
``model``           ``{name: damff, args: {...}}``: a registered model and its constructor arguments
``features``        overrides of :class:`moodscope.config.FeatureConfig` (papers' log-Mel by default)
``data``            ``{dataset: folder, root: DIR, options: {...}, synthetic: {...}, max_duration_s, min_duration_s}``;
                    ``root: null`` with ``dataset: synthetic`` renders the built-in synthetic corpus into the cache
``task``            options of the model kind's task (:mod:`moodscope.tasks`): window/hops/losses, seg_len, ...
``split``           ``{kind: kfold|group_kfold|holdout|deam2015|mer1101|predefined, folds, seed, group, test_fraction, ...}``
``train``           ``{epochs, batch_size, lr, weight_decay, milestones, gamma, patience, device, devices, strategy,
                    precision (auto|float32|bf16), num_workers, max_time_s, fast_dev_run, limit_train_batches}``
``paper``           the published numbers this experiment reproduces: ``{source, table, row, results: {metric: value}}``
``compare``         for ``moodscope compare``: ``{args: {model: {...}}, paper: {model: {metric: value}}}``
``sweep``           ``{row label: {dotted.key: value}}``: one run per row, one table (see :func:`moodscope.training.experiment.run_experiment`)
``output_dir``      where run directories go (default ``runs``)
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..errors import ConfigError, shown_path
from ..fileio import write_atomic
from ..precision import normalize as normalize_precision

#: the split kinds :func:`moodscope.training.data.make_folds` knows
SPLIT_KINDS = ("kfold", "group_kfold", "holdout", "deam2015", "mer1101", "predefined")


@dataclass(frozen=True)
class DataSection:
    """``data``: which dataset, where, and how it is read."""

    dataset: str = "folder"
    root: str | None = None
    options: dict = field(default_factory=dict)
    synthetic: dict = field(default_factory=lambda: {"n_clips": 48, "duration": 45.0, "seed": 0})
    min_duration_s: float | None = None
    cache: bool = True
    # training-only datasets: [{dataset, root, options, synthetic, splits}] (``splits``: keep only the tracks
    # of these release splits, e.g. [train] for another rendering of the main dataset's training clips)
    also: list = field(default_factory=list)

    def check(self) -> None:
        for i, entry in enumerate(self.also):
            if not isinstance(entry, dict) or not entry.get("dataset"):
                raise ConfigError(
                    f"data.also[{i}]: expected a mapping with 'dataset' (and 'root'), got {entry!r}"
                )
            unknown = set(entry) - {"dataset", "root", "options", "synthetic", "splits"}
            if unknown:
                raise ConfigError(f"data.also[{i}]: unknown key(s) {sorted(unknown)}")


@dataclass(frozen=True)
class SplitSection:
    """``split``: the evaluation protocol (``kind`` one of :data:`SPLIT_KINDS`)."""

    kind: str = "kfold"
    folds: int = 5
    seed: int = 0
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    only_fold: int | None = None
    dev_ids_file: str | None = None  # deam2015: the development ids (default: ids <= 2000)
    group: str | None = None  # group_kfold: the Track.meta field no fold shares (default "artist")

    def check(self) -> None:
        if self.kind not in SPLIT_KINDS:
            raise ConfigError(f"split.kind: {self.kind!r} is not one of {', '.join(SPLIT_KINDS)}")
        _at_least("split.folds", self.folds, 1)
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"split.test_fraction: expected a number in (0, 1), got {self.test_fraction!r}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"split.val_fraction: expected a number in [0, 1), got {self.val_fraction!r}")


@dataclass(frozen=True)
class TrainSection:
    """``train``: optimiser, schedule, stopping, devices and precision (:mod:`moodscope.precision`)."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 3.0e-4
    weight_decay: float = 0.0
    milestones: list | None = None  # epochs of the step decay (ADFF §3.2)
    # a model with a clip head (musicnn_va clip_head=true): refit it after training as an L2 logistic
    # regression of inverse strength clip_fit_c on the training windows (None: keep what Adam learnt);
    # clip_fit_balance gives each data source (the main dataset, each data.also entry) the same total weight
    clip_fit_c: float | None = None
    clip_fit_balance: bool = True
    # relative weight of a source in that refit (after balancing), by name: "main" for the main dataset, the
    # dataset's name for a data.also entry (e.g. {emopia: 0.5}: EMOPIA's windows weigh half as much in total)
    clip_fit_weights: dict | None = None
    # a model with a track-level movement (musicnn_va movement_past_s): fit it after training in closed form,
    # {alpha: ridge strength, gain: multiplier of the fitted map, sources: [names] whose curves it learns
    # ("main" or a data.also dataset's name; default every source with curves), gate: [names] of synthetic audio}
    movement_fit: dict | None = None
    # a model with a piano level (musicnn_va piano_level): fit it after training in closed form,
    # {sources: [names] of solo-piano sources, alpha: ridge strength, quadrant_scale: the level of a quadrant
    # clip's signs, gate_c: the gate's inverse regularisation}
    level_fit: dict | None = None
    gamma: float = 0.5
    patience: int = 10
    # which weights a fold keeps: "best" (the epoch of the best validation score) or "last" (the end of
    # training: with a decayed learning rate, the settled weights; the best of many epochs scored on a few
    # validation songs is partly the luck of that selection)
    keep: str = "best"
    device: str = "auto"
    devices: object = 1  # Lightning's devices: a count, a list of indices or "auto"
    strategy: str = "auto"
    # auto | float32 | bf16 (moodscope.precision); float32 gives the same numbers on every machine
    precision: str = "float32"
    num_workers: int = 0
    max_time_s: float | None = None  # opt-in: a time limit makes results depend on the machine's speed
    fast_dev_run: bool = False
    limit_train_batches: int | float | None = None  # Lightning: a number of batches or a fraction
    val_every: int = 1

    def check(self) -> None:
        for key in ("epochs", "batch_size", "val_every"):
            _at_least(f"train.{key}", getattr(self, key), 1)
        for key in ("patience", "num_workers"):
            _at_least(f"train.{key}", getattr(self, key), 0)
        if not self.lr > 0:
            raise ConfigError(f"train.lr: expected a positive number, got {self.lr!r}")
        if self.max_time_s is not None and not self.max_time_s > 0:
            raise ConfigError(
                f"train.max_time_s: expected a positive number of seconds, got {self.max_time_s!r}"
            )
        if self.clip_fit_weights is not None and not (
            isinstance(self.clip_fit_weights, dict)
            and all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                for k, v in self.clip_fit_weights.items()
            )
        ):
            raise ConfigError(
                "train.clip_fit_weights: expected a mapping of source names to weights >= 0, e.g. {emopia: 0.5}, "
                f"got {self.clip_fit_weights!r}"
            )
        if self.movement_fit is not None:
            mf = self.movement_fit
            ok = isinstance(mf, dict) and set(mf) <= {"alpha", "gain", "sources", "gate", "net_epochs"}
            ok = ok and (
                mf.get("net_epochs") is None
                or (
                    isinstance(mf["net_epochs"], int)
                    and not isinstance(mf["net_epochs"], bool)
                    and mf["net_epochs"] > 0
                )
            )
            ok = ok and all(
                isinstance(mf.get(k, 1.0), (int, float))
                and not isinstance(mf.get(k, 1.0), bool)
                and mf.get(k, 1.0) > 0
                for k in ("alpha", "gain")
            )
            ok = ok and all(
                mf.get(k) is None or (isinstance(mf[k], list) and all(isinstance(x, str) for x in mf[k]))
                for k in ("sources", "gate")
            )
            if not ok:
                raise ConfigError(
                    "train.movement_fit: expected {alpha: > 0, gain: > 0, sources: [names], gate: [names], net_epochs: > 0}, e.g. "
                    f"{{alpha: 10000, gain: 2, sources: [vgmidi], gate: [synthetic]}}, got {mf!r}"
                )
        if self.level_fit is not None:
            lf = self.level_fit
            ok = isinstance(lf, dict) and set(lf) <= {"alpha", "quadrant_scale", "sources", "gate_c"}
            ok = ok and isinstance(lf.get("sources"), list) and bool(lf["sources"])
            ok = ok and all(isinstance(x, str) for x in lf["sources"])
            ok = ok and all(
                isinstance(lf.get(k, 1.0), (int, float))
                and not isinstance(lf.get(k, 1.0), bool)
                and lf.get(k, 1.0) > 0
                for k in ("alpha", "quadrant_scale", "gate_c")
            )
            if not ok:
                raise ConfigError(
                    "train.level_fit: expected {sources: [names], alpha: > 0, quadrant_scale: > 0, gate_c: > 0}, "
                    f"e.g. {{sources: [vgmidi, emopia], alpha: 100, quadrant_scale: 0.2, gate_c: 1.0}}, got {lf!r}"
                )
        if self.keep not in ("best", "last"):
            raise ConfigError(f"train.keep: expected 'best' or 'last', got {self.keep!r}")
        if self.milestones is not None and not all(isinstance(m, int) for m in self.milestones):
            raise ConfigError(f"train.milestones: expected a list of epochs, got {self.milestones!r}")


#: the typed sections of a config
SECTIONS = {"data": DataSection, "split": SplitSection, "train": TrainSection}

DEFAULTS: dict = {
    "name": "experiment",
    "seed": 0,
    "model": {"name": "damff", "args": {}},
    "features": {},
    "data": asdict(DataSection()),
    "task": {},
    "split": asdict(SplitSection()),
    "train": asdict(TrainSection()),
    "paper": {},
    "compare": {},
    "sweep": {},
    "output_dir": "runs",
}


def _at_least(key: str, value, low: int) -> None:
    if not value >= low:
        raise ConfigError(f"{key}: expected an integer >= {low}, got {value!r}")


def _coerce(key: str, value, annotation: str):
    """``value`` as the field's type (``int``, ``float``, ``bool``, ``str``, optionally ``| None``), or a
    :class:`ConfigError` naming ``key``. Numbers written as strings (YAML 1.1 reads ``1e-5`` as a string)
    are converted; an integral float is accepted for an integer."""
    optional = annotation.endswith("| None")
    base = annotation.replace("| None", "").strip()
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: a value is required (expected {base})")
    if base == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if base in ("int", "float"):
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if base == "int":
            if float(number) != int(number):
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
            return int(number)
        return float(number)
    if base == "str":
        if isinstance(value, (str, Path)):
            return str(value)
        raise ConfigError(f"{key}: expected text, got {value!r}")
    if base == "dict":
        if isinstance(value, dict):
            return value
        raise ConfigError(f"{key}: expected a mapping, got {value!r}")
    if base == "list":
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(f"{key}: expected a list, got {value!r}")
    return value  # object: passed through (e.g. Lightning's devices)


def check_sections(cfg: dict) -> dict:
    """Validate and normalise the typed sections of a merged config in place (types, ranges, precision);
    every error is a :class:`ConfigError` that names the key."""
    for name, cls in SECTIONS.items():
        section = cfg[name]
        values = {}
        for f in fields(cls):
            values[f.name] = _coerce(f"{name}.{f.name}", section.get(f.name), str(f.type))
        typed = cls(**values)
        if hasattr(typed, "check"):
            typed.check()
        cfg[name] = {**section, **asdict(typed)}
    try:
        cfg["train"]["precision"] = normalize_precision(cfg["train"]["precision"])
    except ConfigError as e:
        raise ConfigError(f"train.precision: {e}") from None
    return cfg


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
        for i, k in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(node, list):  # a list entry by its index: data.also.0.root=...
                if not (k.isdigit() and int(k) < len(node)):
                    where = ".".join(keys[:i])
                    raise ConfigError(f"--set {text}: {where} has {len(node)} entries, no entry {k!r}")
                k = int(k)
                if last:
                    node[k] = value
                else:
                    if not isinstance(node[k], (dict, list)):
                        node[k] = {}
                    node = node[k]
                continue
            if last:
                node[k] = value
            else:
                if not isinstance(node.get(k), (dict, list)):
                    node[k] = {}
                node = node[k]
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
    return check_sections(cfg)


def dump_config(cfg: dict, path: str | Path) -> None:
    """Write a resolved config as YAML (atomically: an interrupted run never leaves half of it)."""
    write_atomic(path, yaml.safe_dump(cfg, sort_keys=False))


#: Config keys that may differ between a run directory's stored config and a ``--resume`` of it: they name
#: or place the run (``name``, ``output_dir``), annotate its tables (``paper``, ``compare``: the models'
#: own arguments are compared through ``model.args``), say where and how fast it runs (``train.device``,
#: ``train.devices``, ``train.strategy``, ``train.num_workers``, ``data.cache``) or which folds this
#: invocation runs (``split.only_fold``), not what a fold computes. Every other key matters for the result:
#: the data, split, model, task, features and training schedule, and also ``train.epochs``,
#: ``train.max_time_s``, ``train.fast_dev_run`` and the *resolved* ``train.precision`` (bf16 and float32
#: give other numbers), since finished folds are kept as they are and a run must not mix settings.
RESUME_FREE_KEYS = (
    "name",
    "output_dir",
    "paper",
    "compare",
    "data.cache",
    "train.device",
    "train.devices",
    "train.strategy",
    "train.num_workers",
    "split.only_fold",
)

#: a key present in one config and not in the other
UNSET = object()


def _flatten(node, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves, an empty mapping is a leaf ``{}``."""
    if not isinstance(node, dict) or (not node and prefix):
        return {prefix: node}
    out = {}
    for k, v in node.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_differences(old: dict, new: dict, free=RESUME_FREE_KEYS) -> list[tuple[str, object, object]]:
    """The dotted keys whose values differ between two resolved configs, as ``(key, old, new)`` sorted by key
    (:data:`UNSET` where a key is missing), leaving out the keys in ``free`` and below them.

    Both are compared as YAML stores them (``new`` is dumped and read back), so a tuple equals a list. A key of
    a typed section (``data``, ``split``, ``train``) missing from ``old`` -- a setting added to moodscope after
    that run was made, such as ``train.level_fit`` -- is compared as its default, so it does not stop the run
    resuming unless this run sets it; a key missing anywhere else is a difference (``null`` there may mean
    something else than unset: a renderer's ``program: null`` keeps the MIDI's own instruments)."""
    new = yaml.safe_load(yaml.safe_dump(new, sort_keys=False))
    old = copy.deepcopy(old or {})
    for name, cls in SECTIONS.items():  # settings the older run did not know of: their defaults
        if isinstance(old.get(name), dict):
            defaults = yaml.safe_load(yaml.safe_dump(asdict(cls())))
            old[name] = {**defaults, **old[name]}
    a, b = _flatten(old), _flatten(new or {})
    # an empty mapping on one side and keys below it on the other: compare the keys, not the mapping
    a = {k: v for k, v in a.items() if not (v == {} and any(x.startswith(k + ".") for x in b))}
    b = {k: v for k, v in b.items() if not (v == {} and any(x.startswith(k + ".") for x in a))}
    out = []
    for key in sorted(set(a) | set(b)):
        if any(key == f or key.startswith(f + ".") for f in free):
            continue
        va, vb = a.get(key, UNSET), b.get(key, UNSET)
        if va != vb:
            out.append((key, va, vb))
    return out


def show_value(value, limit: int = 60) -> str:
    """A config value for a one-line message: YAML flow style, shortened, control characters escaped."""
    if value is UNSET:
        return "(unset)"
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return shown_path(text)
