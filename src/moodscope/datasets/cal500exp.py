"""CAL500exp (Wang et al. 2014): 3,223 time-stamped segments (3-16 s) of the CAL500 songs, 67 tags.

::

    CAL500_noAudioFeatures/vocab.txt            (optional; used when the segment files have no header)
    SegLabelHard/SegLabelHard/<song>.csv        Start_Time,End_Time,<tag columns...>
    SegLabelSoft/SegLabelSoft/<song>.csv

``<song>`` is the CAL500 song name (``artist-title``, the CAL500 mp3 stem); the exact naming is unverified,
so any ``*.csv`` in the label folder is one song, named by its file stem. The label folder may be nested
(``SegLabelHard/SegLabelHard/``) or flat. Each row becomes a :class:`~moodscope.tracks.Segment` of its song
(start and end in seconds); ``Track.tags`` stays empty. A file without a header row takes its tag names from
``vocab.txt`` (which must then have ``columns - 2`` names). Rows with a missing time, or an end not after
the start, are skipped and counted.

The audio is CAL500's: the adapter looks for a folder named ``mp3`` (or ``audio``) below ``root`` or beside
it (``../CAL500/mp3``); pass ``audio_dir`` to point elsewhere.

Tag selection (option ``tags``): ``None`` (default) keeps the ``Emotion-*`` columns that are not ``NOT-*``
(the emotion task); ``"all"`` every column; a list, those names (``Emotion-`` prefix optional).
"""

from __future__ import annotations

from bisect import bisect_left
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..tracks import Segment, Track
from .base import DATASETS, UNIT, Dataset, DatasetAdapter, IssueLog, convert_tags
from .cal500 import read_lines, select_tags
from .limits import MAX_TIME_S
from .reading import find_child, find_dirs, float_cell, index_audio, parse_float, read_csv


def _label_dir(root: Path, name: str) -> Path | None:
    """The deepest folder called ``name`` (case-insensitive) below ``root`` that holds .csv files."""
    best = None
    for p in find_dirs(root, (name,), max_depth=3):
        if any(not f.is_dir() and f.name.lower().endswith(".csv") for f in p.iterdir()):
            if best is None or len(p.parts) > len(best.parts):
                best = p
    return best


def _audio_dir(root: Path) -> Path | None:
    for base in (root, root.parent / "CAL500", root.parent):
        for name in ("mp3", "audio"):
            d = find_child(base, name)
            if d is not None and d.is_dir():
                return d
        for sub in ("CAL500", "CAL500_noAudioFeatures"):
            s = find_child(base, sub)
            if s is not None:
                d = find_child(s, "mp3")
                if d is not None and d.is_dir():
                    return d
    return None


def _is_number(cell: str) -> bool:
    return np.isfinite(parse_float(cell))


@DATASETS.register("cal500exp")
class CAL500expDataset(DatasetAdapter):
    """CAL500exp: segment-level tags with start/end times (``Track.segments``).

    Parameters
    ----------
    tags : None, "all", "emotion" or list of str
        Which tag columns to keep (default: the positive ``Emotion-*`` columns).
    annotations : {"hard", "soft"}
    audio_dir : str or Path, optional
        Folder of the CAL500 mp3 files (default: searched near ``root``).
    """

    name = "cal500exp"
    description = "CAL500exp: 3,223 labelled segments (3-16 s) of CAL500 songs, 67 tags, time-varying"

    def __init__(self, tags=None, annotations: str = "hard", audio_dir: str | Path | None = None):
        if annotations not in ("hard", "soft"):
            raise DatasetError(f"cal500exp: annotations must be 'hard' or 'soft', not {annotations!r}")
        self.tags = tags
        self.annotations = annotations
        self.audio_dir = None if audio_dir is None else Path(audio_dir).expanduser()

    def load(self, root: Path) -> Dataset:
        folder = "SegLabelHard" if self.annotations == "hard" else "SegLabelSoft"
        labels = _label_dir(root, folder)
        if labels is None:
            raise DatasetError(f"{root}: missing {folder}/{folder}/<song>.csv (CAL500exp segment labels)")
        log = IssueLog()
        vocab_path = None
        for base in (root, find_child(root, "CAL500_noAudioFeatures")):
            if base is not None and find_child(base, "vocab.txt") is not None:
                vocab_path = find_child(base, "vocab.txt")
                break
        vocab = read_lines(vocab_path, log) if vocab_path is not None else None

        tracks: dict[str, Track] = {}
        tag_names: list[str] | None = None
        for f in sorted(labels.glob("*.csv")):
            song = f.stem
            if f.is_file() and f.stat().st_size == 0:
                log.add(labels.name, "empty label files skipped", f.name)
                continue
            _, rows = read_csv(f, log, header=False)
            first = rows[0]
            line0 = 1
            if len(first) >= 2 and not (_is_number(first[0]) and _is_number(first[1])):
                names, rows, line0 = first[2:], rows[1:], 2
            else:
                if vocab is None:
                    raise DatasetError(
                        f"{f}: no header row (Start_Time,End_Time,<tags>) and no vocab.txt to name the columns"
                    )
                if len(first) - 2 != len(vocab):
                    raise DatasetError(
                        f"{f}: {len(first) - 2} tag columns but {len(vocab)} names in {vocab_path}"
                    )
                names = vocab
            if tag_names is None:
                tag_names = [names[i] for i in select_tags(names, self.tags, f)]
            try:
                file_cols = select_tags(names, tag_names, f)
            except DatasetError:
                log.add(labels.name, "files lacking some selected tag columns skipped", f.name)
                continue
            order = sorted(range(len(file_cols)), key=file_cols.__getitem__)
            sorted_cols = [file_cols[k] for k in order]
            segments = []
            for n, row in enumerate(rows, start=line0):
                start = float_cell(row, 0)
                end = float_cell(row, 1)
                if not (np.isfinite(start) and np.isfinite(end)) or end <= start or start < 0:
                    log.add(
                        labels.name,
                        "segments with missing or invalid start/end times skipped",
                        f"{song} line {n}",
                    )
                    continue
                if end > MAX_TIME_S:
                    log.add(
                        labels.name,
                        f"segments ending beyond {MAX_TIME_S:g} s (24 h) skipped",
                        f"{song} line {n}",
                    )
                    continue
                # only the cells the row has: a short row under a wide header costs its own length
                have = sorted(order[: bisect_left(sorted_cols, len(row) - 2)])
                raw = [float_cell(row, 2 + file_cols[k]) for k in have]
                tags = convert_tags(
                    [tag_names[k] for k in have],
                    raw,
                    log,
                    labels.name,
                    song,
                    missing=len(file_cols) - len(have),
                )
                segments.append(Segment(start_s=float(start), end_s=float(end), tags=tags))
            if not segments:
                log.add(labels.name, "songs without a valid segment", song)
            segments.sort(key=lambda s: s.start_s)
            for a, b in zip(segments, segments[1:]):
                if b.start_s < a.end_s - 1e-6:
                    log.add(labels.name, "songs with overlapping segments (kept)", song)
                    break
            tracks[song] = Track(id=song, segments=segments)
        if tag_names is None:
            raise DatasetError(f"{labels}: no readable segment label file (*.csv)")

        audio = self.audio_dir if self.audio_dir is not None else _audio_dir(root)
        if audio is None or not audio.is_dir():
            log.note(root.name, "no CAL500 mp3/ folder found (pass audio_dir=...; all tracks without audio)")
        else:
            for stem, path in index_audio(audio, log).items():
                if stem in tracks:
                    tracks[stem].audio = path
                else:
                    log.add(audio.name, "CAL500 audio files without segment labels (not used)", stem)
        return self.finish(
            root,
            tracks,
            log,
            tag_names=tag_names,
            native_scale={"tags": UNIT.as_tuple()},
            description=f"{self.description} ({self.annotations}, {len(tag_names)} tags)",
        )
