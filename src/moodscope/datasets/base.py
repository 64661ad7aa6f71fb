"""Shared machinery of the dataset adapters: the :class:`Dataset` record, the ``DATASETS`` registry,
tolerant CSV reading, scale conversion and resampling of V-A curves to the 2 Hz grid.

Conventions every adapter follows (see ``docs/datasets.md`` for each release's format):

- **Scale.** Valence and arousal are mapped from the release's native range ``[lo, hi]`` to the
  canonical ``[-1, 1]`` with ``x -> 2 (x - lo) / (hi - lo) - 1``. :attr:`Dataset.native_scale`
  records the native range per label kind so reports can convert back.
- **Out-of-range values.** A value at most 5 % of the native span outside the range is clipped to it
  (annotation tools overshoot slightly); a value further out, NaN, or an empty cell is treated as
  missing. Both are counted in :attr:`Dataset.issues`.
- **Time.** A V-A value sampled at time *t* describes the 0.5 s segment starting at *t*, so DEAM's
  ``sample_15000ms`` becomes the segment ``[15.0, 15.5)`` and PMEmo's first ``frameTime`` of 15.5 s the
  segment ``[15.5, 16.0)``. Curves at another step are resampled by :func:`resample_to_grid`.
- **Nothing is dropped silently.** Every skipped or repaired row, file or value is counted in
  :attr:`Dataset.issues`; a missing required file or column raises :class:`~moodscope.errors.DatasetError`
  naming the file and what was expected.
- **Tracks without audio** are kept (``Track.audio is None``) and counted; so are audio files without
  labels (a track with no labels). Use :meth:`Dataset.select` to get the tracks usable for a task.
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.decode import AUDIO_EXTENSIONS
from ..config import SEGMENT_S
from ..errors import DatasetError
from ..registry import Registry
from ..tracks import Dynamic, Track

#: Fraction of the native span by which a value may overshoot the range and still be clipped.
CLIP_TOLERANCE = 0.05

#: Label kinds a dataset can carry.
KINDS = ("static", "dynamic", "tags", "segments")

DATASETS: Registry[type[DatasetAdapter]] = Registry("dataset")


# ----------------------------------------------------------------------------------------------------------
# Issue log
# ----------------------------------------------------------------------------------------------------------
class IssueLog:
    """Collects repaired or skipped items, grouped by (file, what happened), with counts and examples.

    >>> log = IssueLog()
    >>> log.add("static.csv", "rows with NaN labels skipped", "7")
    >>> log.add("static.csv", "rows with NaN labels skipped", "9")
    >>> log.lines()
    ['static.csv: 2 rows with NaN labels skipped (e.g. 7, 9)']
    """

    max_examples = 5

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._examples: dict[tuple[str, str], list[str]] = {}

    def add(self, where: str, what: str, example: object = None, *, count: int = 1) -> None:
        key = (str(where), what)
        self._counts[key] = self._counts.get(key, 0) + count
        ex = self._examples.setdefault(key, [])
        if example is not None and len(ex) < self.max_examples and str(example) not in ex:
            ex.append(str(example))

    def note(self, where: str, what: str) -> None:
        """Record a one-off remark (no count), e.g. an encoding fallback."""
        key = (str(where), what)
        self._counts.setdefault(key, 0)
        self._examples.setdefault(key, [])

    def count(self, what_contains: str) -> int:
        """Total count of the entries whose description contains ``what_contains`` (for tests/reports)."""
        return sum(n for (_, what), n in self._counts.items() if what_contains in what)

    def lines(self) -> list[str]:
        out = []
        for (where, what), n in self._counts.items():
            text = f"{where}: {n} {what}" if n else f"{where}: {what}"
            ex = self._examples[(where, what)]
            if ex:
                more = ", ..." if n > len(ex) else ""
                text += f" (e.g. {', '.join(ex)}{more})"
            out.append(text)
        return out


# ----------------------------------------------------------------------------------------------------------
# Scale
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """A native label range ``[lo, hi]`` and its affine map to the canonical ``[-1, 1]``."""

    lo: float
    hi: float

    def __post_init__(self):
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.hi <= self.lo:
            raise ValueError(f"invalid scale [{self.lo}, {self.hi}]: need finite min < max")

    def to_canonical(self, x):
        """Native -> canonical: ``2 (x - lo) / (hi - lo) - 1`` (scalar or array).

        Computed as ``(2 x - (lo + hi)) / (hi - lo)``, which is exact for [-1, 1] (identity) and [0, 1].
        """
        return (2.0 * np.asarray(x, dtype=np.float64) - (self.lo + self.hi)) / (self.hi - self.lo)

    def to_native(self, y):
        """Canonical -> native (inverse of :meth:`to_canonical`)."""
        return (np.asarray(y, dtype=np.float64) * (self.hi - self.lo) + (self.lo + self.hi)) / 2.0

    def validate(self, x: np.ndarray) -> tuple[np.ndarray, int, int]:
        """Apply the out-of-range policy to native values.

        Returns
        -------
        values : np.ndarray [shape=x.shape]
            ``x`` with slight overshoots clipped to ``[lo, hi]`` and invalid values set to NaN.
        n_clipped, n_invalid : int
            How many finite values were clipped, and how many values were set to NaN because they were
            further than :data:`CLIP_TOLERANCE` of the span outside the range (NaN inputs not counted).
        """
        x = np.array(x, dtype=np.float64, copy=True)
        tol = CLIP_TOLERANCE * (self.hi - self.lo)
        finite = np.isfinite(x)
        far = finite & ((x < self.lo - tol) | (x > self.hi + tol))
        near = finite & ~far & ((x < self.lo) | (x > self.hi))
        x[far] = np.nan
        x[~np.isfinite(x)] = np.nan
        x[near] = np.clip(x[near], self.lo, self.hi)
        return x, int(near.sum()), int(far.sum())

    def as_tuple(self) -> tuple[float, float]:
        return (float(self.lo), float(self.hi))


CANONICAL = Scale(-1.0, 1.0)
UNIT = Scale(0.0, 1.0)


def convert_pair(
    valence: float, arousal: float, scale: Scale, log: IssueLog, where: str, track_id: str
) -> tuple[float | None, float | None]:
    """Validate and convert one static (valence, arousal) pair; ``None`` for a missing/invalid value."""
    raw = np.array([valence, arousal], dtype=np.float64)
    nan_in = ~np.isfinite(raw)
    vals, n_clip, n_bad = scale.validate(raw)
    if nan_in.any():
        log.add(where, "static labels missing or NaN (label left unset)", track_id, count=int(nan_in.sum()))
    if n_bad:
        log.add(where, "static labels far outside the scale (label left unset)", track_id, count=n_bad)
    if n_clip:
        log.add(where, "static labels slightly outside the scale clipped", track_id, count=n_clip)
    out = scale.to_canonical(vals)
    v, a = (None if not np.isfinite(u) else float(u) for u in out)
    return v, a


def convert_tags(
    names: Sequence[str], raw: Sequence[float], log: IssueLog, where: str, track_id: str
) -> dict[str, float]:
    """Validate tag values on [0, 1] (:data:`UNIT`) into ``{name: value}``; a missing/invalid value is left out.

    Slight overshoots are clipped and counted; NaN or far-out values are counted and left unset.
    """
    raw = np.asarray(raw, dtype=np.float64)
    vals, n_clip, n_bad = UNIT.validate(raw)
    n_nan = int((~np.isfinite(raw)).sum())
    if n_clip:
        log.add(where, "tag values slightly outside [0, 1] clipped", track_id, count=n_clip)
    if n_bad or n_nan:
        log.add(where, "tag values missing/NaN/out of range (tag left unset)", track_id, count=n_bad + n_nan)
    return {name: float(x) for name, x in zip(names, vals) if np.isfinite(x)}


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


def natural_key(track_id: str) -> tuple:
    """Sort key that orders numeric ids by value (``"2" < "10"``) and others alphabetically after them."""
    s = str(track_id)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


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


# ----------------------------------------------------------------------------------------------------------
# Time grid
# ----------------------------------------------------------------------------------------------------------
def resample_to_grid(
    times_s: np.ndarray, values: np.ndarray, *, step: float = SEGMENT_S
) -> tuple[np.ndarray, np.ndarray]:
    """Put samples of a curve on the 0.5 s segment grid.

    Segment *k* is ``[k step, (k + 1) step)``. A segment takes the mean of the samples whose time falls
    inside it; a segment without a sample (between the first and the last sample) takes the linear
    interpolation of the samples at the segment's start. Samples already on the grid (one per segment,
    as in DEAM and PMEmo) pass through unchanged. Times within 1 µs below a grid point count as on it.

    Parameters
    ----------
    times_s : np.ndarray [shape=(n,)]
        Sample times in seconds (any order; NaN values must be removed beforehand).
    values : np.ndarray [shape=(n,)] or [shape=(n, d)]
        Sample values.

    Returns
    -------
    grid_s : np.ndarray [shape=(m,)]
        Segment start times, ``step`` apart, from the segment of the first sample to that of the last.
    out : np.ndarray [shape=(m,)] or [shape=(m, d)]
        Values per segment.

    Examples
    --------
    >>> g, v = resample_to_grid(np.array([0.0, 0.25, 1.0]), np.array([1.0, 3.0, 5.0]))
    >>> g.tolist(), v.tolist()
    ([0.0, 0.5, 1.0], [2.0, 3.6666666666666665, 5.0])
    """
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    squeeze = v.ndim == 1
    if squeeze:
        v = v[:, None]
    if t.ndim != 1 or len(t) != len(v):
        raise ValueError("times_s and values must have the same length")
    if len(t) == 0:
        return np.zeros(0), np.zeros((0,) if squeeze else (0, v.shape[1]))
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    k = np.floor(t / step + 1e-6).astype(np.int64)
    k0 = int(k[0])
    m = int(k[-1]) - k0 + 1
    idx = k - k0
    counts = np.bincount(idx, minlength=m)
    out = np.empty((m, v.shape[1]))
    grid = (k0 + np.arange(m)) * step
    for j in range(v.shape[1]):
        sums = np.bincount(idx, weights=v[:, j], minlength=m)
        col = np.divide(sums, counts, out=np.zeros(m), where=counts > 0)
        empty = counts == 0
        if empty.any():
            col[empty] = np.interp(grid[empty], t, v[:, j])
        out[:, j] = col
    return grid, (out[:, 0] if squeeze else out)


def build_dynamic(
    times_v: np.ndarray,
    valence: np.ndarray,
    times_a: np.ndarray,
    arousal: np.ndarray,
    scale: Scale,
    log: IssueLog,
    where: str,
    track_id: str,
) -> Dynamic | None:
    """Validate, convert and grid a valence and an arousal curve into one :class:`Dynamic`.

    Missing/invalid values inside a curve are filled by interpolation (counted); the curve is cut to
    the span both dimensions cover (counted when they differ). Returns ``None`` (counted) when no
    valid value is left.
    """
    curves = []
    for name, t, x in (("valence", times_v, valence), ("arousal", times_a, arousal)):
        t = np.asarray(t, dtype=np.float64)
        raw = np.asarray(x, dtype=np.float64)
        nan_in = ~np.isfinite(raw)
        vals, n_clip, n_bad = scale.validate(raw)
        if n_clip:
            log.add(where, "dynamic values slightly outside the scale clipped", track_id, count=n_clip)
        if n_bad:
            log.add(where, "dynamic values far outside the scale treated as missing", track_id, count=n_bad)
        ok = np.isfinite(vals)
        if ok.any():
            first, last = np.flatnonzero(ok)[[0, -1]]
            inner_nan = int(nan_in[first : last + 1].sum())
            if inner_nan:
                log.add(
                    where, "empty/NaN dynamic values inside a curve interpolated", track_id, count=inner_nan
                )
            if first > 0 and nan_in[:first].any():
                log.add(where, "curves starting with empty/NaN values (started at first value)", track_id)
        curves.append((name, t[ok], vals[ok]))
    if any(len(c[1]) == 0 for c in curves):
        log.add(where, "tracks with no valid dynamic values (no curve)", track_id)
        return None
    grids = [resample_to_grid(t, x) for _, t, x in curves]
    (gv, yv), (ga, ya) = grids
    start, stop = max(gv[0], ga[0]), min(gv[-1], ga[-1])
    if stop < start - 1e-9:
        log.add(where, "tracks whose valence and arousal curves do not overlap (no curve)", track_id)
        return None
    if not (np.isclose(gv[0], ga[0]) and np.isclose(gv[-1], ga[-1])):
        log.add(
            where, "tracks whose valence and arousal curves differ in span (cut to common span)", track_id
        )
    sv = (gv >= start - 1e-9) & (gv <= stop + 1e-9)
    sa = (ga >= start - 1e-9) & (ga <= stop + 1e-9)
    return Dynamic(times_s=gv[sv], valence=scale.to_canonical(yv[sv]), arousal=scale.to_canonical(ya[sa]))


# ----------------------------------------------------------------------------------------------------------
# Dataset and adapters
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """A loaded release: its tracks (labels on the canonical scale) and everything repaired on the way.

    Attributes
    ----------
    name : str
        Dataset name (the adapter name, or the ``name`` of a folder dataset's ``dataset.yaml``).
    root : Path
        The directory the release was read from.
    tracks : list[Track]
        One record per id, sorted by id (numeric ids by value).
    issues : list[str]
        One line per kind of repaired or skipped item, with its count and a few example ids.
    tag_names : list[str]
        Names of the tags in ``Track.tags`` / ``Segment.tags``, in column order.
    native_scale : dict[str, tuple[float, float]]
        The release's native range per label kind (``"static"``, ``"dynamic"``, ``"tags"``).
    kinds : tuple[str, ...]
        Label kinds present: a subset of ``("static", "dynamic", "tags", "segments")``.
    adapter : str
        Registry name of the adapter that read it.
    description : str
        One line describing the dataset.
    """

    name: str
    root: Path
    tracks: list[Track]
    issues: list[str] = field(default_factory=list)
    tag_names: list[str] = field(default_factory=list)
    native_scale: dict[str, tuple[float, float]] = field(default_factory=dict)
    kinds: tuple[str, ...] = ()
    adapter: str = ""
    description: str = ""

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(self.tracks)

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tracks]

    def track(self, track_id: str) -> Track:
        """The track with this id (``KeyError`` if absent)."""
        for t in self.tracks:
            if t.id == str(track_id):
                return t
        raise KeyError(f"{self.name}: no track {track_id!r}")

    def select(
        self, kind: str | None = None, *, require_audio: bool = True, ids: Iterable[str] | None = None
    ) -> list[Track]:
        """Tracks usable for a task: with labels of ``kind`` (any label if ``None``) and, by default, audio.

        ``ids`` restricts (and orders) the result to those ids, e.g. one side of a split.
        """
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown label kind {kind!r}; expected one of {KINDS}")
        pool = self.tracks
        if ids is not None:
            by_id = {t.id: t for t in self.tracks}
            pool = [by_id[i] for i in ids if i in by_id]
        return [t for t in pool if (not require_audio or t.audio is not None) and has_kind(t, kind)]

    def to_native(self, values, kind: str = "static"):
        """Convert canonical values back to the release's native scale for ``kind``."""
        lo, hi = self.native_scale.get(kind, (-1.0, 1.0))
        return Scale(lo, hi).to_native(values)


def has_kind(track: Track, kind: str | None) -> bool:
    """Whether ``track`` carries labels of ``kind`` (any label when ``kind`` is ``None``)."""
    checks = {
        "static": track.has_static,
        "dynamic": track.dynamic is not None and len(track.dynamic.times_s) > 0,
        "tags": bool(track.tags),
        "segments": bool(track.segments),
    }
    if kind is None:
        return any(checks.values()) or track.valence is not None or track.arousal is not None
    return checks[kind]


class DatasetAdapter:
    """Base class of the adapters; subclasses set ``name``/``description`` and implement :meth:`load`.

    Constructor keyword arguments are the adapter's options (``load_dataset(name, root, **options)``).
    """

    name: str = ""
    description: str = ""

    def load(self, root: Path) -> Dataset:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(
        self,
        root: Path,
        tracks: dict[str, Track],
        log: IssueLog,
        *,
        tag_names: Sequence[str] = (),
        native_scale: dict[str, tuple[float, float]] | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> Dataset:
        """Sort the tracks, count missing audio / unlabelled audio, and build the :class:`Dataset`."""
        ordered = [tracks[k] for k in sorted(tracks, key=natural_key)]
        no_audio = [t.id for t in ordered if t.audio is None and has_kind(t, None)]
        no_label = [t.id for t in ordered if t.audio is not None and not has_kind(t, None)]
        for i in no_audio:
            log.add(root.name, "tracks with labels but no audio file (kept, audio=None)", i)
        for i in no_label:
            log.add(root.name, "audio files without any label (kept as unlabelled tracks)", i)
        kinds = tuple(k for k in KINDS if any(has_kind(t, k) for t in ordered))
        return Dataset(
            name=name or self.name,
            root=root,
            tracks=ordered,
            issues=log.lines(),
            tag_names=list(tag_names),
            native_scale=dict(native_scale or {}),
            kinds=kinds,
            adapter=self.name,
            description=description if description is not None else self.description,
        )


def _adapter_options(cls: type) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [p for p in sig.parameters if p != "self"]


def load_dataset(name: str, root: str | Path, **options) -> Dataset:
    """Read a dataset release with the adapter registered as ``name``.

    Parameters
    ----------
    name : str
        Adapter name: ``folder``, ``pmemo``, ``deam``, ``cal500``, ``cal500exp`` (see :func:`list_datasets`).
    root : str or Path
        Directory of the release as downloaded.
    **options
        Adapter options (e.g. ``tags="all"`` for ``cal500``).

    Raises
    ------
    DatasetError
        Unknown adapter or option, missing root, or a release whose layout is not what the adapter expects.
    """
    try:
        cls = DATASETS.get(name)
    except KeyError as e:
        raise DatasetError(str(e.args[0])) from None
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root is not a directory")
    allowed = _adapter_options(cls)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(
            f"dataset {name!r} does not take option(s) {unknown}; options: {allowed or '(none)'}"
        )
    adapter = cls(**options)
    return adapter.load(root)


def list_datasets() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every registered dataset adapter, sorted by name."""
    return [(n, DATASETS.get(n).description) for n in DATASETS.names()]
