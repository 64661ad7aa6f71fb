"""Tolerant reading of dataset releases as they are distributed: text and CSV files (header spaces, stray
tabs, ragged rows), columns found by name, ids, and the audio files beside the labels.
"""

from __future__ import annotations

import codecs
import csv
import math
import os
import re
import stat
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..audio.decode import AUDIO_EXTENSIONS
from ..errors import DatasetError
from ..tracks import Track
from .base import IssueLog
from .limits import (
    MAX_CSV_BYTES,
    MAX_CSV_CELLS,
    MAX_SAMPLES_PER_TRACK,
    MAX_TIME_S,
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    check_inside,
    excerpt,
)

# ----------------------------------------------------------------------------------------------------------
# Reading files
# ----------------------------------------------------------------------------------------------------------
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "an unusual file")


def read_bytes(path: Path, *, max_bytes: int | None = None, what: str = "label file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, inside the dataset root (see :mod:`.limits`).

    The file is opened without blocking and checked to be a regular file before anything is read, so a
    FIFO, a device or a folder is refused at once (:class:`DatasetError`), as is a file over the limit.
    """
    path = Path(path)
    max_bytes = MAX_CSV_BYTES if max_bytes is None else max_bytes
    check_inside(path)
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError:  # a NUL character in the name
        raise DatasetError(
            f"{excerpt(str(path), 200)}: not a valid path (it holds a NUL character)"
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DatasetError(f"{path}: {_kind(st.st_mode)}, not a regular file (expected a {what})")
        if st.st_size > max_bytes:
            raise DatasetError(f"{path}: {st.st_size} bytes, over the {max_bytes} bytes a {what} may have")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise DatasetError(f"{path}: over the {max_bytes} bytes a {what} may have")
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(
    path: Path, log: IssueLog | None = None, *, max_bytes: int | None = None, what: str = "text file"
) -> str:
    """Read a text file (:func:`read_bytes`) as UTF-8 (BOM allowed) or UTF-16 with a BOM, falling back to
    Latin-1 (recorded in ``log``). A NUL character (binary data, UTF-16 without a BOM) is a :class:`DatasetError`.
    """
    path = Path(path)
    data = read_bytes(path, max_bytes=max_bytes, what=what)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise DatasetError(
                f"{path}: starts with a UTF-16 byte-order mark but is not UTF-16 ({e.reason})"
            ) from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if log is not None:
                log.note(path.name, "not valid UTF-8; read as Latin-1")
            text = data.decode("latin-1")
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DatasetError(
            f"{path}: not a text file (NUL character on line {line}; binary data, or UTF-16 without a byte-order mark?)"
        )
    return text


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def text_lines(text: str) -> list[str]:
    """Lines split at ``\\n``, ``\\r\\n`` or ``\\r`` only (a Latin-1 ``\\x85`` or a form feed stays in its line)."""
    return _LINE_BREAK.split(text)


def _clean_cell(cell: str) -> str:
    return cell.strip().strip("\ufeff").strip()


def read_csv(
    path: Path, log: IssueLog | None = None, *, header: bool = True, delimiter: str | None = None
) -> tuple[list[str], list[list[str]]]:
    """Read a small CSV tolerantly.

    Cells (header included) are stripped of surrounding whitespace, tabs and BOMs; blank lines are
    dropped; the delimiter (``,`` ``;`` or tab) is taken from the first line unless given. The file is read
    with :func:`read_text` (size, type and root checks) and may hold at most :data:`MAX_CSV_CELLS` cells; a
    header without data rows is noted in ``log``.

    Returns
    -------
    header : list[str]
        Column names (empty when ``header=False``).
    rows : list[list[str]]
        Remaining rows; lengths may differ (ragged files).
    """
    text = read_text(path, log, what="CSV file")
    lines = [ln for ln in text_lines(text) if ln.strip()]
    del text
    if not lines:
        raise DatasetError(f"{path}: file is empty (expected a CSV file with a header row)")
    if delimiter is None:
        first = lines[0]
        delimiter = max((",", ";", "\t"), key=lambda d: (first.count(d), d == ","))
        if first.count(delimiter) == 0:
            delimiter = ","
    # an upper bound of the cells (quoted delimiters count too), checked before any row is parsed
    if sum(ln.count(delimiter) for ln in lines) + len(lines) > MAX_CSV_CELLS:
        raise DatasetError(f"{path}: more than {MAX_CSV_CELLS} cells (the most a CSV file may have)")
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        rows = [[_clean_cell(c) for c in r] for r in reader]
    except csv.Error as e:
        raise DatasetError(f"{path}: row {reader.line_num}: not readable as CSV ({excerpt(e, 80)})") from None
    if header:
        if len(rows) == 1 and log is not None:
            log.note(path.name, "header only: no data rows")
        return rows[0], rows[1:]
    return [], rows


def load_yaml(path: Path, log: IssueLog | None = None, *, what: str = "YAML file"):
    """Parse a small YAML file safely: at most :data:`MAX_YAML_BYTES` bytes and :data:`MAX_YAML_DEPTH` levels
    of nesting, ``yaml.safe_load`` (no Python objects), at most :data:`MAX_YAML_NODES` values once aliases
    are expanded, no recursive alias.

    Any problem is a :class:`DatasetError` naming the file and the cause (with the line where the parser
    stopped); nothing of the file is quoted but the parser's own short description.
    """
    import yaml

    text = read_text(path, log, max_bytes=MAX_YAML_BYTES, what=what)
    try:
        # the event stream first (iterative, cheap): refuse deep nesting before the recursive composer sees it
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise DatasetError(f"{path}: YAML nested deeper than {MAX_YAML_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DatasetError(f"{path}: invalid YAML{where} ({excerpt(problem, 80)})") from None
    except RecursionError:
        raise DatasetError(f"{path}: invalid YAML (nested too deeply)") from None
    except (ValueError, OverflowError) as e:  # e.g. an integer of more than 4300 digits, a bad date
        raise DatasetError(f"{path}: invalid YAML value ({excerpt(e, 80)})") from None
    _check_yaml_size(data, path)
    return data


def _children(obj) -> list:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    return list(obj)


def _check_yaml_size(data, path: Path) -> None:
    """Refuse a YAML value with more than :data:`MAX_YAML_NODES` values once its aliases are expanded, or
    one that contains itself (``&a [*a]``). Iterative and memoised: the cost is that of the parsed graph."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[object, bool]] = [(data, False)]
    while stack:
        obj, done = stack.pop()
        if not isinstance(obj, (list, dict)):
            continue
        key = id(obj)
        if done:
            open_.discard(key)
            n = 1 + sum(size.get(id(c), 1) for c in _children(obj))
            if n > MAX_YAML_NODES:
                raise DatasetError(
                    f"{path}: more than {MAX_YAML_NODES} values once its aliases are expanded "
                    "(a YAML alias bomb?)"
                )
            size[key] = n
            continue
        if key in size:
            continue
        if key in open_:
            raise DatasetError(f"{path}: a YAML alias that contains itself (recursive structure)")
        open_.add(key)
        stack.append((obj, True))
        stack.extend((c, False) for c in _children(obj) if isinstance(c, (list, dict)) and id(c) not in size)


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
            f"{path}: missing column {label!r} (expected one of {list(candidates)} in the header row, "
            f"which reads {excerpt(','.join(header[:50]))!r})"
        )
    return None


def present_columns(columns: Sequence[int], row: Sequence[str]) -> Sequence[int]:
    """The indices of ``columns`` (ascending) that ``row`` has cells for: the work per row stays proportional
    to the row's own cells, however wide the header."""
    return columns[: bisect_left(columns, len(row))]


def require_file(path: Path, what: str) -> Path:
    if not os.path.lexists(path):
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
        if ext not in rank:
            continue
        if not p.is_file():
            log.add(folder.name, "audio entries that are not regular files ignored", p.name)
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

    Rows without an id, or whose time is missing, not finite, negative or beyond :data:`MAX_TIME_S`, are
    skipped, as are the rows of a track past its :data:`MAX_SAMPLES_PER_TRACK`-th; repeated (id, time) rows
    keep the first. All are counted in ``log``.

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
        if not math.isfinite(t):
            log.add(path.name, "rows with a missing, NaN or infinite time skipped", f"{tid} (line {n})")
            continue
        if t < 0:
            log.add(path.name, "rows with a negative time skipped", f"{tid} (line {n})")
            continue
        if t > MAX_TIME_S:
            log.add(
                path.name, f"rows with a time beyond {MAX_TIME_S:g} s (24 h) skipped", f"{tid} (line {n})"
            )
            continue
        t = round(t, 6)
        pts = per.setdefault(tid, {})
        if len(pts) >= MAX_SAMPLES_PER_TRACK:
            log.add(path.name, f"rows past {MAX_SAMPLES_PER_TRACK} per track skipped", tid)
            continue
        if t in pts:
            log.add(path.name, "duplicate (track id, time) rows (first kept)", f"{tid}@{t:g}s")
            continue
        pts[t] = (float_cell(row, i_v), float_cell(row, i_a))
    out = {}
    for tid, pts in per.items():
        va = np.array(list(pts.values()), dtype=np.float64).reshape(-1, 2)
        out[tid] = (np.array(list(pts.keys()), dtype=np.float64), va[:, 0], va[:, 1])
    return out
