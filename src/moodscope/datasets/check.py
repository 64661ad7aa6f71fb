"""``moodscope datasets check``: what a release on disk holds, and everything wrong with it.

:func:`check_dataset` loads a release with its adapter (a layout the adapter does not recognise raises
:class:`~moodscope.errors.DatasetError` naming the missing file or column), then opens every audio file's
header (:func:`moodscope.audio.decode.audio_duration`) and gathers the counts into a :class:`Report`:

- tracks, tracks with labels of each kind, and of those the ones with readable audio;
- labelled tracks without audio, audio files without labels, unreadable audio files (with the reason);
- label ranges per dimension (canonical and native units) and the range of durations;
- tracks shorter than the 30 s window (the trainer pads them; the MER1101 protocol leaves them out) and
  dynamic curves running past the end of their audio;
- split sizes: the release's own split (``Track.split``), k-fold by song, and where they apply DEAM2015
  and MER1101;
- every issue the adapter recorded.

Adapters that render their audio from MIDI (``emopia``) are checked without rendering: their
``check_options`` (``render=False``) apply unless other options are given, and a track whose audio is not
rendered yet is counted apart, its duration read from its MIDI file (``Track.meta["midi"]``).

>>> report = check_dataset("deam", "~/data/DEAM")   # doctest: +SKIP
>>> print(report.format())                          # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import WINDOW_S
from ..errors import DatasetError, MoodscopeError
from .base import DATASETS, KINDS, Dataset, has_kind, load_dataset
from .limits import excerpt
from .splits import (
    cal500_kfold,
    deam2015_split,
    emopia_split,
    group_key,
    kfold_by_group,
    kfold_by_song,
    mer1101_split,
)


def _duration_reader():
    """``audio_duration`` from :mod:`moodscope.audio` (imported lazily), or a soundfile fallback."""
    try:
        from ..audio.decode import audio_duration

        return audio_duration
    except ImportError:  # pragma: no cover - only while moodscope.audio is unavailable
        import soundfile as sf

        def audio_duration(path):
            return float(sf.info(str(path)).duration)

        return audio_duration


@dataclass
class Report:
    """Counts and findings of :func:`check_dataset`. :meth:`format` renders them as text."""

    name: str
    adapter: str
    root: Path
    description: str = ""
    n_tracks: int = 0
    labelled: dict[str, int] = field(default_factory=dict)
    usable: dict[str, int] = field(default_factory=dict)
    n_audio: int = 0
    missing_audio: list[str] = field(default_factory=list)
    unlabelled_audio: list[str] = field(default_factory=list)
    unreadable_audio: list[tuple[str, str]] = field(default_factory=list)
    to_render: list[str] = field(default_factory=list)
    label_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    native_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    tag_names: list[str] = field(default_factory=list)
    duration_range: tuple[float, float] | None = None
    durations_checked: bool = False
    short_tracks: list[str] = field(default_factory=list)
    window_s: float = WINDOW_S
    curves_past_end: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every labelled track has readable audio and nothing was repaired or skipped.

        Tracks shorter than the window and curves running past the audio are listed but do not count here.
        """
        return not (self.issues or self.missing_audio or self.unreadable_audio)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["root"] = str(self.root)
        out["ok"] = self.ok
        return out

    def format(self) -> str:
        """Human-readable report (one fact per line)."""

        def ex(ids, n=5):
            ids = list(ids)
            return (
                ""
                if not ids
                else " (e.g. "
                + ", ".join(excerpt(i, 40) for i in ids[:n])
                + (", ..." if len(ids) > n else "")
                + ")"
            )

        lines = [f"dataset {self.name} ({self.adapter}) at {self.root}"]
        if self.description:
            lines.append(f"  {self.description}")
        lines.append(f"tracks: {self.n_tracks}  (with an audio file: {self.n_audio})")
        for kind in KINDS:
            if self.labelled.get(kind):
                lines.append(
                    f"  labelled {kind:<8}: {self.labelled[kind]:>6}   with readable audio: {self.usable.get(kind, 0)}"
                )
        lines.append(f"labelled tracks without audio: {len(self.missing_audio)}{ex(self.missing_audio)}")
        lines.append(f"audio files without labels: {len(self.unlabelled_audio)}{ex(self.unlabelled_audio)}")
        if self.to_render:
            lines.append(
                f"audio not rendered yet (rendered from MIDI on load; durations from the MIDI): "
                f"{len(self.to_render)}{ex(self.to_render)}"
            )
        if self.durations_checked:
            lines.append(f"unreadable audio files: {len(self.unreadable_audio)}")
            for tid, why in self.unreadable_audio[:10]:
                lines.append(f"  {excerpt(tid, 40)}: {excerpt(why, 300)}")
            if len(self.unreadable_audio) > 10:
                lines.append(f"  ... and {len(self.unreadable_audio) - 10} more")
            if self.duration_range is not None:
                lo, hi = self.duration_range
                lines.append(f"durations: {lo:.1f} s to {hi:.1f} s")
            lines.append(
                f"tracks shorter than the {self.window_s:g} s window (padded in training; left out by the "
                f"MER1101 protocol): {len(self.short_tracks)}{ex(self.short_tracks)}"
            )
            lines.append(
                f"dynamic curves with segments at or after the end of the audio: {len(self.curves_past_end)}"
                f"{ex(self.curves_past_end)}"
            )
        else:
            lines.append("audio files not opened (durations and readability not checked)")
        if self.label_ranges:
            lines.append("label ranges (canonical [-1, 1]; native in brackets):")
            for key, (lo, hi) in self.label_ranges.items():
                nat = self.native_ranges.get(key)
                extra = f"  [{nat[0]:.4g}, {nat[1]:.4g}]" if nat else ""
                lines.append(f"  {key:<17} {lo:+.3f} .. {hi:+.3f}{extra}")
        if self.tag_names:
            shown = ", ".join(self.tag_names[:6]) + (", ..." if len(self.tag_names) > 6 else "")
            lines.append(f"tags ({len(self.tag_names)}): {shown}")
        if self.splits:
            lines.append("splits:")
            for key, text in self.splits.items():
                lines.append(f"  {key}: {text}")
        lines.append(f"issues: {len(self.issues)}" + ("" if self.issues else " (none)"))
        lines += [f"  - {i}" for i in self.issues]
        return "\n".join(lines)


def _range(values: list[np.ndarray]) -> tuple[float, float] | None:
    vals = [np.asarray(v, dtype=np.float64).ravel() for v in values if np.size(v)]
    if not vals:
        return None
    x = np.concatenate(vals)
    x = x[np.isfinite(x)]
    return (float(x.min()), float(x.max())) if x.size else None


def _label_ranges(ds: Dataset, report: Report) -> None:
    dims = {
        "static.valence": [np.array([t.valence]) for t in ds.tracks if t.valence is not None],
        "static.arousal": [np.array([t.arousal]) for t in ds.tracks if t.arousal is not None],
        "dynamic.valence": [t.dynamic.valence for t in ds.tracks if t.dynamic is not None],
        "dynamic.arousal": [t.dynamic.arousal for t in ds.tracks if t.dynamic is not None],
        "tags": [np.array(list(t.tags.values())) for t in ds.tracks if t.tags]
        + [np.array(list(s.tags.values())) for t in ds.tracks for s in t.segments if s.tags],
    }
    for key, vals in dims.items():
        r = _range(vals)
        if r is None:
            continue
        kind = key.split(".")[0]
        if kind == "tags":
            report.label_ranges[key] = r
            continue
        report.label_ranges[key] = r
        if kind in ds.native_scale:
            report.native_ranges[key] = tuple(float(x) for x in ds.to_native(np.array(r), kind))


def _sizes(split) -> str:
    train, test = split
    val = getattr(split, "val", None)
    text = f"train {len(train)}, " + (f"val {len(val)}, " if val else "") + f"test {len(test)}"
    if getattr(split, "notes", ()):
        text += " (" + "; ".join(split.notes) + ")"
    return text


#: adapters whose tracks must be split by a group, never by clip: the ``Track.meta`` field of the group
_GROUPED = {"4q": "artist", "vgmidi": "series"}


def _split_sizes(ds: Dataset, usable: list[str], durations: dict[str, float], report: Report) -> None:
    by_id = {t.id: t for t in ds.tracks}
    release = Counter(by_id[i].split for i in usable if by_id[i].split is not None)
    if release:
        report.splits["release split"] = ", ".join(f"{k} {n}" for k, n in sorted(release.items()))
    tagging = ds.adapter in ("cal500", "cal500exp")
    k = 10 if tagging else 5
    if len(usable) >= k:
        folds = cal500_kfold(usable, k=k) if tagging else kfold_by_song(usable, k=k)
        sizes = sorted({len(f.test) for f in folds})
        size_text = "-".join(str(s) for s in (sizes[0], sizes[-1])) if len(sizes) > 1 else str(sizes[0])
        report.splits[f"{k}-fold by song"] = f"{len(usable)} songs, {size_text} test songs per fold"
    else:
        report.splits[f"{k}-fold by song"] = f"not possible: {len(usable)} usable songs < {k}"
    group = _GROUPED.get(ds.adapter)
    if group is not None:
        tracks = [by_id[i] for i in usable]
        n_groups = len({group_key(t, group) for t in tracks})
        if n_groups >= 2:
            kg = min(5, n_groups)
            folds = kfold_by_group(
                tracks, k=kg, group=group, stratify="quadrant" if ds.adapter == "4q" else None
            )
            sizes = sorted(len(f.test) for f in folds)
            report.splits[f"{kg}-fold by {group}"] = (
                f"{len(usable)} tracks of {n_groups} {group} groups, {sizes[0]}-{sizes[-1]} test tracks per fold"
            )
        else:
            report.splits[f"5-fold by {group}"] = f"not possible: {n_groups} {group} group(s)"
    if ds.adapter == "deam":
        try:
            report.splits["deam2015 (default)"] = _sizes(deam2015_split(usable))
        except DatasetError as e:
            report.splits["deam2015 (default)"] = f"not possible: {e}"
    if ds.adapter == "emopia":
        try:
            report.splits["emopia (official)"] = _sizes(emopia_split([by_id[i] for i in usable]))
        except DatasetError as e:
            report.splits["emopia (official)"] = f"not possible: {e}"
    if ds.adapter == "folder" and durations:
        try:
            report.splits["mer1101 (> 30 s, 80/20)"] = _sizes(mer1101_split(usable, durations))
        except DatasetError as e:
            report.splits["mer1101 (> 30 s, 80/20)"] = f"not possible: {e}"


def check_dataset(
    name: str,
    root: str | Path,
    *,
    durations: bool = True,
    window_s: float = WINDOW_S,
    progress: bool = False,
    **options,
) -> Report:
    """Load a release and report what it holds (see the module docstring).

    Parameters
    ----------
    name : str
        Adapter name (see :func:`~moodscope.datasets.list_datasets`).
    root : str or Path
        The release's directory.
    durations : bool
        Open every audio file's header to find unreadable files and durations (default). ``False`` skips it.
    window_s : float
        Tracks shorter than this are listed (the training window, 30 s).
    progress : bool
        Show a progress bar while audio headers are read.
    **options
        Adapter options, as for :func:`~moodscope.datasets.load_dataset`.

    Raises
    ------
    DatasetError
        The layout is not what the adapter expects (the message names the missing file or column).
    """
    try:
        options = {**getattr(DATASETS.get(name), "check_options", {}), **options}
    except KeyError:
        pass  # load_dataset says so
    ds = load_dataset(name, root, **options)
    report = Report(
        name=ds.name,
        adapter=ds.adapter,
        root=ds.root,
        description=ds.description,
        n_tracks=len(ds.tracks),
        tag_names=list(ds.tag_names),
        window_s=window_s,
    )
    report.labelled = {k: sum(has_kind(t, k) for t in ds.tracks) for k in KINDS}
    report.n_audio = sum(t.audio is not None for t in ds.tracks)
    report.missing_audio = [t.id for t in ds.tracks if t.audio is None and has_kind(t, None)]
    report.unlabelled_audio = [t.id for t in ds.tracks if t.audio is not None and not has_kind(t, None)]
    issues = list(ds.issues)

    readable: dict[str, float] = {}
    with_audio = [t for t in ds.tracks if t.audio is not None]
    if durations:
        report.durations_checked = True
        audio_duration = _duration_reader()
        it = with_audio
        if progress:
            from tqdm import tqdm

            it = tqdm(with_audio, desc="audio headers", unit="file")
        for t in it:
            midi = t.meta.get("midi")
            try:
                if midi is not None and not Path(t.audio).exists():
                    from ..audio.midi import midi_duration

                    report.to_render.append(t.id)
                    d = midi_duration(midi)
                else:
                    d = float(audio_duration(t.audio))
            except (MoodscopeError, RuntimeError, OSError, ValueError) as e:
                report.unreadable_audio.append((t.id, str(e)))
                continue
            if not np.isfinite(d) or d <= 0:
                report.unreadable_audio.append((t.id, f"{t.audio}: no audio samples"))
                continue
            readable[t.id] = d
        if readable:
            report.duration_range = (min(readable.values()), max(readable.values()))
        report.short_tracks = [i for i, d in readable.items() if d < window_s]
        for t in with_audio:
            if t.id in readable and t.dynamic is not None and len(t.dynamic.times_s):
                if t.dynamic.times_s[-1] >= readable[t.id] - 1e-6:
                    report.curves_past_end.append(t.id)
        if report.unreadable_audio:
            issues.append(f"audio: {len(report.unreadable_audio)} unreadable audio files (tracks unusable)")
        ok_ids = set(readable)
    else:
        ok_ids = {t.id for t in with_audio}

    report.usable = {k: sum(has_kind(t, k) and t.id in ok_ids for t in ds.tracks) for k in KINDS}
    _label_ranges(ds, report)
    usable = [t.id for t in ds.tracks if t.id in ok_ids and has_kind(t, None)]
    _split_sizes(ds, usable, readable, report)
    report.issues = issues
    return report
