"""Tolerant reading of dataset releases as they are distributed: text and CSV files (header spaces, stray
tabs, ragged rows), columns found by name, ids, and the audio files beside the labels.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..audio.decode import AUDIO_EXTENSIONS
from ..errors import DatasetError
from ..tracks import Track
from .base import IssueLog


# ----------------------------------------------------------------------------------------------------------
# Reading files
# ----------------------------------------------------------------------------------------------------------
def read_text(path: Path, log: IssueLog | None = None) -> str:
    """Read a text file as UTF-8 (BOM allowed), falling back to Latin-1 (recorded in ``log``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if log is not None:
            log.note(path.name, "not valid UTF-8; read as Latin-1")
        return data.decode("latin-1")


def _clean_cell(cell: str) -> str:
    return cell.strip().strip("\ufeff").strip()


def read_csv(
    path: Path, log: IssueLog | None = None, *, header: bool = True, delimiter: str | None = None
) -> tuple[list[str], list[list[str]]]:
    """Read a small CSV tolerantly.

    Cells (header included) are stripped of surrounding whitespace, tabs and BOMs; blank lines are
    dropped; the delimiter (``,`` ``;`` or tab) is taken from the first line unless given.

    Returns
    -------
    header : list[str]
        Column names (empty when ``header=False``).
    rows : list[list[str]]
        Remaining rows; lengths may differ (ragged files).
    """
    text = read_text(path, log)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DatasetError(f"{path}: file is empty")
    if delimiter is None:
        first = lines[0]
        delimiter = max((",", ";", "\t"), key=lambda d: (first.count(d), d == ","))
        if first.count(delimiter) == 0:
            delimiter = ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    rows = [[_clean_cell(c) for c in r] for r in reader]
    if header:
        return rows[0], rows[1:]
    return [], rows


def norm_name(name: str) -> str:
    """Normalise a column name for matching: lower case, only letters and digits."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_column(
    header: Sequence[str], candidates: Sequence[str], path: Path, *, required: bool = True, what: str = ""
) -> int | None:
    """Index of the first header column matching one of ``candidates`` (compared with :func:`norm_name`)."""
    normed = [norm_name(h) for h in header]
    for c in candidates:
        n = norm_name(c)
        if n in normed:
            return normed.index(n)
    if required:
        label = what or candidates[0]
        raise DatasetError(
            f"{path}: missing column {label!r} (expected one of {list(candidates)}; found {list(header)})"
        )
    return None


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{path}: missing file ({what})")
    return path


def parse_float(cell: str | None) -> float:
    """Parse a numeric cell; empty, ``NA`` or non-numeric text gives NaN."""
    if cell is None:
        return math.nan
    cell = cell.strip()
    if not cell:
        return math.nan
    try:
        return float(cell)
    except ValueError:
        return math.nan


def normalize_id(raw: str) -> str:
    """Track ids as strings; numeric ids written as ``"12.0"`` become ``"12"``."""
    s = raw.strip()
    if re.fullmatch(r"[+-]?\d+\.0*", s):
        s = s.split(".")[0]
    return s


def cell(row: Sequence[str], j: int | None) -> str | None:
    """Cell ``j`` of a (possibly short, ragged) row; ``None`` when ``j`` is ``None`` or past the row's end."""
    return row[j] if j is not None and j < len(row) else None


def float_cell(row: Sequence[str], j: int | None) -> float:
    """Cell ``j`` of a row parsed with :func:`parse_float` (NaN when absent, empty or not a number)."""
    return parse_float(cell(row, j))


def iter_id_rows(
    rows: Iterable[Sequence[str]],
    i_id: int,
    log: IssueLog,
    where: str,
    *,
    id_name: str,
    seen: set[str] | None = None,
) -> Iterator[tuple[str, Sequence[str]]]:
    """``(id, row)`` for the rows of a one-row-per-track table, first row of each id only.

    Rows without an id (``"rows without a <id_name> skipped"``) and rows repeating an id already in
    ``seen`` (``"duplicate ids (first row kept)"``) are skipped and counted under ``where``. Pass ``seen``
    to carry the ids over several files; it is updated in place. Line numbers count the header as line 1.
    """
    seen = set() if seen is None else seen
    for n, row in enumerate(rows, start=2):
        tid = normalize_id(cell(row, i_id) or "")
        if not tid:
            log.add(where, f"rows without a {id_name} skipped", f"line {n}")
            continue
        if tid in seen:
            log.add(where, "duplicate ids (first row kept)", tid)
            continue
        seen.add(tid)
        yield tid, row


def iter_known_rows(
    rows: Iterable[Sequence[str]], i_id: int, tracks: dict[str, Track], log: IssueLog, where: str, what: str
) -> Iterator[tuple[Track, Sequence[str]]]:
    """``(track, row)`` for the rows of a side table (metadata) whose id is already in ``tracks``.

    Rows with an id not in ``tracks`` are counted under ``where`` as ``what``; rows without an id are
    passed over silently.
    """
    for row in rows:
        tid = normalize_id(cell(row, i_id) or "")
        t = tracks.get(tid)
        if t is None:
            if tid:
                log.add(where, what, tid)
            continue
        yield t, row


def copy_meta(track: Track, row: Sequence[str], columns: dict[str, int | None]) -> None:
    """Set ``track.meta[key]`` to the cell of each ``key -> column`` that is present and non-empty."""
    for key, j in columns.items():
        value = cell(row, j)
        if value:
            track.meta[key] = value


def attach_audio(tracks: dict[str, Track], folder: Path, log: IssueLog) -> None:
    """Set ``Track.audio`` from the audio files of ``folder`` (:func:`index_audio`), ids from file stems
    (:func:`normalize_id`); a file whose id has no track yet gets a new, unlabelled track."""
    for stem, path in index_audio(folder, log).items():
        track_of(tracks, normalize_id(stem)).audio = path


def track_of(tracks: dict[str, Track], track_id: str) -> Track:
    """The track ``track_id`` of ``tracks``, created (without labels) if absent."""
    if track_id not in tracks:
        tracks[track_id] = Track(id=track_id)
    return tracks[track_id]


def index_audio(folder: Path, log: IssueLog, *, recursive: bool = False) -> dict[str, Path]:
    """Map file stem -> audio path for the audio files in ``folder``.

    When one stem has several files (``a.wav`` and ``a.mp3``) the first in :data:`AUDIO_EXTENSIONS`
    order is kept and the others are counted in ``log``.
    """
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    files = folder.rglob("*") if recursive else folder.iterdir()
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    for p in sorted(files):
        ext = p.suffix.lower()
        if ext not in rank or not p.is_file():
            continue
        stem = p.stem
        if stem in out:
            keep, drop = (p, out[stem]) if rank[ext] < rank[out[stem].suffix.lower()] else (out[stem], p)
            out[stem] = keep
            log.add(folder.name, "audio files sharing an id with another file ignored", drop.name)
        else:
            out[stem] = p
    return out


def find_dirs(root: Path, names: Sequence[str], max_depth: int = 4) -> list[Path]:
    """Directories below ``root`` (itself included, at most ``max_depth`` levels down) whose name is one
    of ``names`` (case-insensitive), in sorted walk order."""
    wanted = {n.lower() for n in names}
    out = []
    base_depth = len(root.parts)
    for dirpath, dirnames, _ in os.walk(root):
        p = Path(dirpath)
        if p.name.lower() in wanted:
            out.append(p)
        if len(p.parts) - base_depth >= max_depth:
            dirnames[:] = []
        dirnames.sort()
    return out


def find_child(folder: Path, *names: str) -> Path | None:
    """The entry of ``folder`` named like one of ``names`` (case-insensitive), or ``None``."""
    if not folder.is_dir():
        return None
    wanted = [n.lower() for n in names]
    entries = {p.name.lower(): p for p in sorted(folder.iterdir())}
    for w in wanted:
        if w in entries:
            return entries[w]
    return None


def read_long_dynamic(
    path: Path,
    header: Sequence[str],
    rows: list[list[str]],
    log: IssueLog,
    *,
    id_columns: Sequence[str],
    time_columns: Sequence[str] = ("time_s",),
    ms_columns: Sequence[str] = ("time_ms",),
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Group a long-format dynamic table (one row per track and time) by track.

    Rows without an id or a time are skipped, repeated (id, time) rows keep the first; both counted.

    Returns
    -------
    dict
        ``id -> (times_s, valence, arousal)``, native values, NaN where a cell is empty.
    """
    i_id = find_column(header, id_columns, path)
    i_t = find_column(header, time_columns, path, required=False)
    factor = 1.0
    if i_t is None:
        i_t = find_column(header, ms_columns, path, required=False)
        factor = 1e-3
    if i_t is None:
        raise DatasetError(
            f"{path}: missing column {time_columns[0]!r} (expected one of {list(time_columns)})"
        )
    i_v = find_column(
        header, ("valence", "valence_mean", "valence(mean)", "mean_valence"), path, what="valence"
    )
    i_a = find_column(
        header, ("arousal", "arousal_mean", "arousal(mean)", "mean_arousal"), path, what="arousal"
    )

    per: dict[str, dict[float, tuple[float, float]]] = {}
    for n, row in enumerate(rows, start=2):
        tid = normalize_id(cell(row, i_id) or "")
        if not tid:
            log.add(path.name, "rows without a track id skipped", f"line {n}")
            continue
        t = float_cell(row, i_t) * factor
        if not math.isfinite(t) or t < 0:
            log.add(path.name, "rows with a missing or negative time skipped", f"{tid} (line {n})")
            continue
        t = round(t, 6)
        pts = per.setdefault(tid, {})
        if t in pts:
            log.add(path.name, "duplicate (track id, time) rows (first kept)", f"{tid}@{t:g}s")
            continue
        pts[t] = (float_cell(row, i_v), float_cell(row, i_a))
    out = {}
    for tid, pts in per.items():
        va = np.array(list(pts.values()), dtype=np.float64).reshape(-1, 2)
        out[tid] = (np.array(list(pts.keys()), dtype=np.float64), va[:, 0], va[:, 1])
    return out
