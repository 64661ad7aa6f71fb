"""Protocol splits: which songs train and which test, for each paper's protocol.

All splits are *by song*: every item derived from one track (30 s training segments, CAL500exp segments)
stays on the side of its track. All are deterministic for a given ``seed`` and independent of the order
in which the ids are given (ids are sorted with :func:`~moodscope.datasets.base.natural_key` first).

Every function returns :class:`Split` records, which unpack as ``train, test = split``.

- :func:`kfold_by_song` -- k-fold cross-validation (ADFF on PMEmo: 5 folds).
- :func:`deam2015_split` -- DAMFF's DEAM2015: train on the 2015 development clips, test on the 58 full songs.
- :func:`mer1101_split` -- DAMFF's MER1101: songs longer than 30 s, 80/20 by song.
- :func:`cal500_kfold` -- k-fold by song for CAL500 / CAL500exp (10 folds by default).
- :func:`emopia_split` -- EMOPIA's official song-disjoint train / val / test split (from ``Track.split``).
- :func:`kfold_by_group` -- k-fold with every group (artist) in one fold, e.g. for 4Q's real songs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

from ..config import WINDOW_S
from ..errors import DatasetError
from ..tracks import Track
from .base import Dataset, natural_key
from .limits import excerpt
from .reading import read_text

#: DEAM ids above this are the 58 full-length songs of the MediaEval 2015 evaluation set.
DEAM_LAST_DEV_ID = 2000


@dataclass(frozen=True)
class Split:
    """One train/test division of a dataset's song ids.

    Unpacks as ``train, test = split``. ``notes`` says what was left out and why (e.g. songs too short).
    ``val`` holds a protocol's own validation ids where it has them (EMOPIA), else it is empty and the
    trainer carves validation songs out of ``train``.
    """

    train: list[str]
    test: list[str]
    name: str = ""
    notes: tuple[str, ...] = field(default=())
    val: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[list[str]]:
        return iter((self.train, self.test))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> list[str]:
        return (self.train, self.test)[i]


def _ids(items: Dataset | Iterable[Track | str]) -> list[str]:
    """Unique ids (sorted naturally) from a Dataset, Tracks or plain ids."""
    if isinstance(items, Dataset):
        items = items.tracks
    out = {it.id if isinstance(it, Track) else str(it) for it in items}
    return sorted(out, key=natural_key)


def kfold_by_song(track_ids: Iterable[str | Track], k: int = 5, seed: int = 0) -> list[Split]:
    """K-fold cross-validation over songs.

    The unique ids are sorted, shuffled with ``seed`` and cut into ``k`` test folds of sizes differing by at
    most one (scikit-learn's ``KFold(shuffle=True, random_state=seed)``). Test folds are disjoint and cover
    every id; each fold trains on all other ids. Repeated ids count once.

    Parameters
    ----------
    track_ids : iterable of str or Track
    k : int
        Number of folds (2 <= k <= number of songs).
    seed : int

    Returns
    -------
    list[Split]
        ``k`` splits, each unpacking as ``(train_ids, test_ids)``, ids in natural order.
    """
    ids = _ids(track_ids)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    if len(ids) < k:
        raise ValueError(f"{len(ids)} songs cannot be split into {k} folds")
    arr = np.array(ids, dtype=object)
    out = []
    for f, (tr, te) in enumerate(KFold(n_splits=k, shuffle=True, random_state=seed).split(arr)):
        train = sorted(arr[tr].tolist(), key=natural_key)
        test = sorted(arr[te].tolist(), key=natural_key)
        out.append(Split(train, test, name=f"fold{f}"))
    return out


def read_id_file(path: str | Path) -> list[str]:
    """Ids from a text file: one per line, or separated by commas / whitespace; ``#`` starts a comment.

    A header word such as ``song_id`` and ids written ``12.0`` or ``12.mp3`` are tolerated.
    """
    path = Path(path).expanduser()
    if not os.path.lexists(path):
        raise DatasetError(f"{path}: id file not found")
    text = read_text(path)
    out: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for tok in re.split(r"[,\s;]+", line):
            tok = tok.strip().strip("\"'")
            if not tok or tok.lower() in ("song_id", "id", "track_id", "songid", "musicid"):
                continue
            tok = re.sub(r"\.(mp3|wav|flac|ogg)$", "", tok, flags=re.IGNORECASE)
            tok = re.sub(r"^(\d+)\.0*$", r"\1", tok)
            out.append(tok)
    if not out:
        raise DatasetError(f"{path}: no ids found (expected one id per line, or comma/space separated)")
    return list(dict.fromkeys(out))


def deam2015_split(dataset: Dataset | Iterable[Track | str], dev_ids_file: str | Path | None = None) -> Split:
    """DAMFF's DEAM2015 protocol.

    Test: the MediaEval 2015 evaluation set, ids 2001-2058 (58 full-length songs, evaluated whole).
    Train: by default every id <= 2000 (the 2013-2014 45 s clips); with ``dev_ids_file``, only the ids it
    lists (the 431 clips of the 2015 development set, whose list the user supplies; see :func:`read_id_file`).

    Ids in the file that the dataset lacks are left out and counted in ``notes``; an id above 2000 in the
    file, a file matching no id, or a dataset without any id in 2001-2058 raises :class:`DatasetError`.
    """
    ids = _ids(dataset)
    numeric = {i: int(i) for i in ids if i.isdigit()}
    notes: list[str] = []
    non_numeric = [i for i in ids if i not in numeric]
    if non_numeric:
        notes.append(f"{len(non_numeric)} non-numeric ids ignored (e.g. {', '.join(non_numeric[:3])})")
    test = [i for i in ids if i in numeric and numeric[i] > DEAM_LAST_DEV_ID]
    if not test:
        raise DatasetError(
            "DEAM2015 split: no song with id 2001-2058 (the full-song evaluation set) in the dataset"
        )
    if dev_ids_file is None:
        train = [i for i in ids if i in numeric and numeric[i] <= DEAM_LAST_DEV_ID]
    else:
        listed = read_id_file(dev_ids_file)
        bad = [i for i in listed if i.isdigit() and int(i) > DEAM_LAST_DEV_ID]
        if bad:
            raise DatasetError(
                f"{dev_ids_file}: lists evaluation-set ids (> {DEAM_LAST_DEV_ID}) as development clips: "
                f"{excerpt(', '.join(bad[:5]))}"
            )
        have = set(ids)
        train = sorted((i for i in listed if i in have), key=natural_key)
        missing = [i for i in listed if i not in have]
        if not train:
            raise DatasetError(f"{dev_ids_file}: none of its {len(listed)} ids is in the dataset")
        if missing:
            notes.append(f"{len(missing)} development ids from {Path(dev_ids_file).name} not in the dataset")
    return Split(train, test, name="deam2015", notes=tuple(notes))


def _durations(durations: Mapping[str, float] | Sequence[float], ids_in_order: list[str]) -> dict[str, float]:
    if isinstance(durations, Mapping):
        return {str(k): float(v) for k, v in durations.items()}
    if len(durations) != len(ids_in_order):
        raise ValueError(f"{len(durations)} durations for {len(ids_in_order)} tracks")
    return {i: float(d) for i, d in zip(ids_in_order, durations)}


def _mer1101_pool(tracks, durations, min_duration_s) -> tuple[list[str], list[str]]:
    given = [
        t.id if isinstance(t, Track) else str(t)
        for t in (tracks.tracks if isinstance(tracks, Dataset) else tracks)
    ]
    dur = _durations(durations, given)
    notes = []
    unknown = [i for i in given if i not in dur]
    short = [i for i in given if i in dur and not dur[i] > min_duration_s]
    if unknown:
        notes.append(f"{len(unknown)} songs without a known duration left out")
    if short:
        notes.append(f"{len(short)} songs of {min_duration_s:g} s or less left out")
    pool = sorted({i for i in given if i in dur and dur[i] > min_duration_s}, key=natural_key)
    return pool, notes


def mer1101_split(
    tracks: Dataset | Iterable[Track | str],
    durations: Mapping[str, float] | Sequence[float],
    seed: int = 0,
    *,
    test_fraction: float = 0.2,
    min_duration_s: float = WINDOW_S,
) -> Split:
    """DAMFF's MER1101 protocol: songs longer than 30 s, split 80/20 at random by song.

    The trainer cuts the training songs into 30 s segments and evaluates the test songs whole with a sliding
    window; this function only chooses the ids. Songs of 30 s or less, or without a duration, are left out
    (counted in ``notes``). ``round(test_fraction * n)`` songs (at least one) go to the test side.

    Parameters
    ----------
    tracks : Dataset or iterable of Track or str
    durations : mapping id -> seconds, or a sequence aligned with ``tracks``
    seed : int
    """
    pool, notes = _mer1101_pool(tracks, durations, min_duration_s)
    if len(pool) < 2:
        raise DatasetError(
            f"MER1101 split: {len(pool)} songs longer than {min_duration_s:g} s; need at least 2"
        )
    perm = np.random.default_rng(seed).permutation(len(pool))
    n_test = min(len(pool) - 1, max(1, int(round(test_fraction * len(pool)))))
    test = sorted((pool[j] for j in perm[:n_test]), key=natural_key)
    train = sorted((pool[j] for j in perm[n_test:]), key=natural_key)
    return Split(train, test, name="mer1101", notes=tuple(notes))


def cal500_kfold(dataset: Dataset | Iterable[Track | str], k: int = 10, seed: int = 0) -> list[Split]:
    """K-fold cross-validation by song for CAL500 and CAL500exp (10 folds by default, the usual CAL500
    protocol). For CAL500exp the segments of a song follow their song, so no song is on both sides.
    Tracks without any tag or segment label are left out when a :class:`Dataset` or Tracks are given."""
    if isinstance(dataset, Dataset):
        dataset = dataset.tracks
    items = [t for t in dataset if not isinstance(t, Track) or t.tags or t.segments]
    return [Split(s.train, s.test, name=f"cal500_{s.name}") for s in kfold_by_song(items, k, seed)]


def emopia_split(dataset: Dataset | Iterable[Track]) -> Split:
    """EMOPIA's official split (Hung et al. 2021): the release's ``split/{train,val,test}_clip.csv``, disjoint
    by song (876 / 114 / 88 clips), as the ``emopia`` adapter puts it in ``Track.split``.

    Returns
    -------
    Split
        ``train``, ``test`` and ``val`` clip ids in natural order; tracks without a split are left out and
        counted in ``notes``.

    Raises
    ------
    DatasetError
        No track has a split, or the train or test side is empty.
    """
    tracks = dataset.tracks if isinstance(dataset, Dataset) else list(dataset)
    sides: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    unset = []
    for t in tracks:
        side = (t.split or "").lower()
        if side in sides:
            sides[side].append(t.id)
        else:
            unset.append(t.id)
    if not sides["train"] or not sides["test"]:
        raise DatasetError(
            f"EMOPIA split: {len(sides['train'])} train and {len(sides['test'])} test clips "
            "(Track.split comes from split/{train,val,test}_clip.csv)"
        )
    notes = (f"{len(unset)} clips without a split left out",) if unset else ()
    train, val, test = (sorted(sides[k], key=natural_key) for k in ("train", "val", "test"))
    return Split(train, test, name="emopia", notes=notes, val=val)


def group_key(track: Track, group: str = "artist") -> tuple[str, str]:
    """The group of a track for :func:`kfold_by_group`: ``("group", name)`` with ``Track.meta[group]``
    compared without case and with runs of spaces as one, or ``("id", track id)`` when the track has none
    (its own group)."""
    value = track.meta.get(group)
    text = " ".join(str(value).split()).casefold() if value is not None else ""
    return ("group", text) if text else ("id", track.id)


def _stratum(track: Track, stratify: str | None):
    if not stratify:
        return None
    value = track.meta.get(stratify)
    if value is None and track.tags:  # e.g. a quadrant one-hot without the meta field
        value = max(track.tags, key=lambda k: track.tags[k])
    return value


def kfold_by_group(
    dataset: Dataset | Iterable[Track],
    k: int = 5,
    seed: int = 0,
    *,
    group: str = "artist",
    stratify: str | None = "quadrant",
) -> list[Split]:
    """K-fold cross-validation in which no group (by default the artist, ``Track.meta["artist"]``) is in two
    folds, so a model is never tested on an artist it trained on.

    Groups are assigned greedily, largest first (groups of one size in an order drawn with ``seed``), each to
    the fold with the fewest tracks so far; among folds of equal size, to the one whose ``stratify`` classes
    (``Track.meta[stratify]``, by default the quadrant; the top tag when absent) are furthest below their
    share. Test folds thus differ in size by at most the largest group, and classes are roughly stratified.
    Names are compared without case or extra spaces; a track without the field is its own group (counted in
    ``notes``). The result does not depend on the order of the tracks.

    Parameters
    ----------
    dataset : Dataset or iterable of Track
        Pass :meth:`Dataset.select` for only the usable tracks. A repeated id counts once (first kept).
    k : int
        Number of folds (2 <= k <= number of groups).
    seed : int
    group : str
        The ``Track.meta`` field naming the group.
    stratify : str or None
        The ``Track.meta`` field of the classes to balance across folds; ``None`` balances sizes only.

    Returns
    -------
    list[Split]
        ``k`` splits named ``<group>_fold<i>``, ids in natural order.
    """
    tracks = dataset.tracks if isinstance(dataset, Dataset) else list(dataset)
    by_id: dict[str, Track] = {}
    for t in tracks:
        if not isinstance(t, Track):
            raise TypeError(
                f"kfold_by_group needs Tracks (their meta names the group), got {type(t).__name__}"
            )
        by_id.setdefault(t.id, t)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    groups: dict[tuple[str, str], list[str]] = {}
    for tid in sorted(by_id, key=natural_key):
        groups.setdefault(group_key(by_id[tid], group), []).append(tid)
    if len(groups) < k:
        raise ValueError(f"{len(groups)} groups ({group}) cannot be split into {k} folds")
    strata = {tid: _stratum(t, stratify) for tid, t in by_id.items()}
    classes = sorted({repr(s) for s in strata.values()})
    total = {c: sum(repr(s) == c for s in strata.values()) for c in classes}

    keys = sorted(groups)
    draw = np.random.default_rng(seed).permutation(len(keys))
    order = sorted(range(len(keys)), key=lambda j: (-len(groups[keys[j]]), int(draw[j])))
    sizes = [0] * k
    counts = [dict.fromkeys(classes, 0) for _ in range(k)]
    members: list[list[str]] = [[] for _ in range(k)]
    n = len(by_id)
    for j in order:
        ids = groups[keys[j]]
        mine = [repr(strata[i]) for i in ids]
        # among the smallest folds, the one furthest below its share of this group's classes
        smallest = min(sizes)
        need = {
            f: sum((sizes[f] + len(ids)) / n * total[c] - counts[f][c] for c in mine)
            for f in range(k)
            if sizes[f] == smallest
        }
        f = max(need, key=lambda f: (need[f], -f))
        sizes[f] += len(ids)
        for c in mine:
            counts[f][c] += 1
        members[f].extend(ids)

    own = sum(1 for key in keys if key[0] == "id")
    notes = (f"{own} tracks without {group!r} (each its own group)",) if own else ()
    out = []
    all_ids = set(by_id)
    for f in range(k):
        test = sorted(members[f], key=natural_key)
        train = sorted(all_ids - set(test), key=natural_key)
        out.append(Split(train, test, name=f"{group}_fold{f}", notes=notes))
    return out
