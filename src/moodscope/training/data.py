"""From a config to training items: the dataset, its features, input statistics and the folds."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..audio.cache import FeatureCache, file_features
from ..config import SEGMENT_S, FeatureConfig
from ..datasets import load_dataset, splits
from ..datasets.corpus import GENERATOR_VERSION, synthesize
from ..errors import ConfigError, MoodscopeError, shown_path
from ..fileio import cache_root
from ..tasks.base import Item

log = logging.getLogger("moodscope")


# ------------------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------------------
def synthetic_root(opts: dict, base: Path | None = None) -> Path:
    """Render (once) the built-in synthetic corpus with ``opts`` and return its folder.

    It lives under ``<base>/corpora``; ``base`` defaults to moodscope's cache root (:func:`cache_root`).
    """

    base = Path(base) if base else cache_root()
    n, d, s = int(opts.get("n_clips", 48)), float(opts.get("duration", 45.0)), int(opts.get("seed", 0))
    root = base / "corpora" / f"synthetic-v{GENERATOR_VERSION}-n{n}-d{d:g}-s{s}"
    if not (root / "dataset.yaml").is_file():
        synthesize(root, n_clips=n, duration=d, seed=s)
    return root


def load_tracks(cfg: dict):
    """The dataset named by ``cfg['data']`` as a :class:`moodscope.datasets.Dataset`."""

    data = cfg["data"]
    name, root = data["dataset"], data.get("root")
    if name == "synthetic":
        root = Path(root) if root else synthetic_root(data.get("synthetic") or {})
        name = "folder"
    if not root:
        raise ConfigError(f"data.root is not set for dataset {name!r} (use --set data.root=DIR)")
    return load_dataset(name, root, **(data.get("options") or {}))


def dataset_repairs(dataset, label: str = "") -> list[str]:
    """What the dataset's loader repaired or skipped, one line per kind with its count and example ids: the
    lines ``moodscope datasets check`` lists under "issues" (:attr:`moodscope.datasets.Dataset.issues`),
    each prefixed with ``label`` (the ``data.also`` entry they come from) when given."""
    return [f"{label}: {line}" if label else line for line in dataset.issues]


def announce_repairs(lines: list[str]) -> None:
    """Print the dataset repairs (:func:`dataset_repairs`) on stderr, one warning line each."""
    for line in lines:
        print(f"warning: data repaired: {shown_path(line)}", file=sys.stderr)


def tracks_to_items(tracks, features: FeatureConfig, *, cache=True, tag_names=None, progress=True):
    """Features and grid-aligned labels of every track with readable audio.

    Returns ``(items, failures)`` where ``failures`` lists ``(track_id, message)`` for unreadable audio.
    """
    from tqdm import tqdm

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
class Fold(NamedTuple):
    """One fold's track ids: ``val`` is None unless the split names validation tracks (``predefined``
    with a ``val`` split, as EMOPIA's); ``aux`` are the ``data.also`` tracks (training only)."""

    train: list[str]
    test: list[str]
    val: list[str] | None = None
    aux: list[str] = []


def make_folds(cfg: dict, dataset, items: list[Item]) -> list[Fold]:
    """The folds of the configured protocol, restricted to usable items."""

    sp = cfg["split"]
    kind, k, seed = sp["kind"], int(sp.get("folds") or 1), int(sp.get("seed", 0))
    ids = [it.id for it in items]
    have = set(ids)
    if kind == "kfold":
        if k < 2:
            raise ConfigError("split.folds must be >= 2 for k-fold (use split.kind=holdout for one split)")
        folds = splits.kfold_by_song(ids, k=k, seed=seed)
    elif kind == "group_kfold":
        # no group (by default the artist) in two folds: a model is never tested on an artist it trained on
        if k < 2:
            raise ConfigError("split.folds must be >= 2 for group_kfold")
        tracks = [t for t in dataset.tracks if t.id in have]
        folds = splits.kfold_by_group(tracks, k=k, seed=seed, group=sp.get("group") or "artist")
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
            va = [t.id for t in dataset.tracks if (t.split or "").lower() in ("val", "validation")]
            one = (tr, te, va) if va else (tr, te)
        else:
            raise ConfigError(
                f"unknown split.kind {kind!r}; known: kfold, group_kfold, holdout, deam2015, mer1101, predefined"
            )
        folds = [one] * k
    out = []
    for tr, te, *va in folds:
        tr2, te2 = [i for i in tr if i in have], [i for i in te if i in have]
        if not tr2 or not te2:
            raise MoodscopeError(
                f"split {kind!r} leaves {len(tr2)} training and {len(te2)} test tracks with audio"
            )
        va2 = [i for i in va[0] if i in have] if va else None
        out.append(Fold(tr2, te2, va2 or None))
    return out


def source_of(item_id: str) -> str:
    """The data source of a training item: ``"main"``, or the dataset of its ``data.also`` entry (the prefix of
    ``<dataset>:<id>``)."""
    return item_id.split(":", 1)[0] if ":" in item_id else "main"


def source_names(cfg: dict) -> set[str]:
    """The names a config's data sources go by (:func:`source_of`): ``"main"`` and each ``data.also`` entry's
    dataset (``<dataset>#2`` for a dataset's second entry)."""
    names, seen = {"main"}, {}
    for entry in cfg["data"].get("also") or []:
        name = entry["dataset"]
        seen[name] = seen.get(name, 0) + 1
        names.add(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return names


def load_aux_items(
    cfg: dict, features: FeatureConfig, tag_names, *, progress=True, repairs: list[str] | None = None
) -> list[Item]:
    """Items of the config's ``data.also`` datasets (training-only data), ids prefixed ``<dataset>:``.

    Each entry is a ``data``-like mapping (``dataset``, ``root``, ``options``, ``synthetic``) with an
    optional ``splits`` list (only tracks of those release splits, e.g. ``[train]``); labels are read as for
    the main dataset (its tag names; a main dataset without tags -- VGMIDI's curves -- takes, in place in
    ``tag_names``, those of the first entry that has some, e.g. 4Q's quadrants) and ``data.min_duration_s``
    applies. An entry of the main dataset without
    ``root`` reads the main root (e.g. another rendering of EMOPIA's MIDI). A dataset named twice (two
    renderings of EMOPIA) gets ``<dataset>#2:`` for its second entry. The loaders' repairs
    (:func:`dataset_repairs`, labelled ``data.also[i]``) are appended to ``repairs`` when given."""
    out, seen = [], {}
    min_d = cfg["data"].get("min_duration_s")
    for i, entry in enumerate(cfg["data"].get("also") or []):
        name = entry["dataset"]
        seen[name] = seen.get(name, 0) + 1
        prefix = (
            name if seen[name] == 1 else f"{name}#{seen[name]}"
        )  # two renderings of one dataset stay apart
        keep = {s.lower() for s in entry.get("splits") or []}
        data = {k: v for k, v in entry.items() if k != "splits"}
        if not data.get("root") and name == cfg["data"]["dataset"]:  # another reading of the main dataset
            data["root"] = cfg["data"].get("root")
        try:
            ds = load_tracks({"data": data})
        except ConfigError as e:
            raise ConfigError(f"data.also[{i}]: {e}") from None
        if repairs is not None:
            repairs.extend(dataset_repairs(ds, f"data.also[{i}]"))
        tracks = [t for t in ds.tracks if not keep or (t.split or "").lower() in keep]
        if tag_names is not None and not tag_names and getattr(ds, "tag_names", None):
            tag_names.extend(ds.tag_names)
        items, failures = tracks_to_items(
            tracks,
            features,
            cache=bool(cfg["data"].get("cache", True)),
            tag_names=tag_names,
            progress=progress,
        )
        for tid, msg in failures:
            log.warning("skipped track %s:%s: %s", prefix, tid, msg)
        if min_d:
            items = [it for it in items if it.n_frames / features.frames_per_second > float(min_d)]
        for it in items:
            it.id = f"{prefix}:{it.id}"
        out.extend(items)
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
