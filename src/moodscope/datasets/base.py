"""What every dataset adapter shares: the :class:`Dataset` record, the :class:`DatasetAdapter` base, the
``DATASETS`` registry, the issue log and scale conversion. Tolerant reading of releases is in
:mod:`.reading`, resampling of V-A curves to the 2 Hz grid in :mod:`.grid`.

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
  :attr:`Dataset.issues` (one line per kind) and :attr:`Dataset.repairs` (the same as dicts); a missing
  required file or column raises :class:`~moodscope.errors.DatasetError` naming the file and what was
  expected.
- **Untrusted trees.** Sizes, times and paths read from a release are bounded and confined to its root
  (:mod:`.limits`): a tree cannot exhaust memory, hang the reader, read outside its root, or have a message
  echo more than a short excerpt of its own files.
- **Tracks without audio** are kept (``Track.audio is None``) and counted; so are audio files without
  labels (a track with no labels). Use :meth:`Dataset.select` to get the tracks usable for a task.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..registry import Registry
from ..tracks import Track
from .limits import confined_to, excerpt

#: Fraction of the native span by which a value may overshoot the range and still be clipped.
CLIP_TOLERANCE = 0.05


#: Label kinds a dataset can carry.
KINDS = ("static", "dynamic", "tags", "segments")


DATASETS: Registry[type[DatasetAdapter]] = Registry("dataset")


def natural_key(track_id: str) -> tuple:
    """Sort key that orders numeric ids by value (``"2" < "10"``) and others alphabetically after them."""
    s = str(track_id)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


# ----------------------------------------------------------------------------------------------------------
# Issue log
# ----------------------------------------------------------------------------------------------------------
class IssueLog:
    """Collects repaired or skipped items, grouped by (file, what happened), with counts and examples.

    ``where`` and the examples come from the release (file names, ids, cells), so they are kept as short
    printable excerpts (:func:`~moodscope.datasets.limits.excerpt`).

    >>> log = IssueLog()
    >>> log.add("static.csv", "rows with NaN labels skipped", "7")
    >>> log.add("static.csv", "rows with NaN labels skipped", "9")
    >>> log.lines()
    ['static.csv: 2 rows with NaN labels skipped (e.g. 7, 9)']
    >>> log.records()
    [{'where': 'static.csv', 'what': 'rows with NaN labels skipped', 'count': 2, 'examples': ['7', '9']}]
    """

    max_examples = 5

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._examples: dict[tuple[str, str], list[str]] = {}
        self._wheres: dict[str, str] = {}

    def _where(self, where: object) -> str:
        raw = str(where)
        shown = self._wheres.get(raw)
        if shown is None:
            shown = self._wheres[raw] = excerpt(raw, 120)
        return shown

    def add(self, where: str, what: str, example: object = None, *, count: int = 1) -> None:
        key = (self._where(where), what)
        self._counts[key] = self._counts.get(key, 0) + count
        ex = self._examples.setdefault(key, [])
        if example is not None and len(ex) < self.max_examples:
            text = excerpt(example)
            if text not in ex:
                ex.append(text)

    def note(self, where: str, what: str) -> None:
        """Record a one-off remark (no count), e.g. an encoding fallback."""
        key = (self._where(where), what)
        self._counts.setdefault(key, 0)
        self._examples.setdefault(key, [])

    def records(self) -> list[dict]:
        """The entries as dicts ``{"where", "what", "count", "examples"}`` (``count`` 0 for a note), in the
        order they were first recorded; :meth:`lines` is the same as text."""
        return [
            {"where": where, "what": what, "count": n, "examples": list(self._examples[(where, what)])}
            for (where, what), n in self._counts.items()
        ]

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
    names: Sequence[str],
    raw: Sequence[float],
    log: IssueLog,
    where: str,
    track_id: str,
    *,
    missing: int = 0,
) -> dict[str, float]:
    """Validate tag values on [0, 1] (:data:`UNIT`) into ``{name: value}``; a missing/invalid value is left out.

    Slight overshoots are clipped and counted; NaN or far-out values are counted and left unset.
    ``missing`` counts further tags of the row that have no cell at all (a short row), as missing.
    """
    raw = np.asarray(raw, dtype=np.float64)
    vals, n_clip, n_bad = UNIT.validate(raw)
    n_nan = int((~np.isfinite(raw)).sum()) + int(missing)
    if n_clip:
        log.add(where, "tag values slightly outside [0, 1] clipped", track_id, count=n_clip)
    if n_bad or n_nan:
        log.add(where, "tag values missing/NaN/out of range (tag left unset)", track_id, count=n_bad + n_nan)
    return {name: float(x) for name, x in zip(names, vals) if np.isfinite(x)}


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
    repairs : list[dict]
        The same as :attr:`issues`, one dict per line: ``{"where": file or folder, "what": what was
        repaired or skipped, "count": how many (0 for a remark), "examples": [a few ids or lines]}``.
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
    repairs: list[dict] = field(default_factory=list)
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
            repairs=log.records(),
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
    # files the adapter parses must lie inside the root (see .limits); an adapter may opt out when its user
    # asked for it (the folder adapter's allow_outside_root option)
    with confined_to(None if getattr(adapter, "allow_outside_root", False) else root):
        return adapter.load(root)


def list_datasets() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every registered dataset adapter, sorted by name."""
    return [(n, DATASETS.get(n).description) for n in DATASETS.names()]
