"""PMEmo: static and dynamic valence-arousal for 794 chorus clips (Zhang et al., ICMR 2018).

**2019 layout** (``PMEmo2019/``, as downloaded)::

    metadata.csv                           musicId, fileName, title, artist, album, duration, chorus_...
    chorus/<musicId>.mp3
    annotations/static_annotations.csv     musicId, Arousal(mean), Valence(mean)
    annotations/dynamic_annotations.csv    musicId, frameTime, Arousal(mean), Valence(mean)

Columns are found by name, so their order does not matter. Values are on [0, 1] and map to [-1, 1] with
``2x - 1``. ``frameTime`` is a sample time in seconds: the row at ``frameTime = t`` labels the 0.5 s
segment starting at *t* (the same rule as DEAM's ``sample_<ms>`` columns), so the first annotated
segment, ``frameTime = 15.5``, is ``[15.5, 16.0)`` and a curve's ``times_s`` start at 15.5. The ``*_std``
files, ``features/``, ``EDA/``, ``lyrics/`` and ``comments/`` are not read.

**2018 layout**::

    Chorus/<id>.mp3
    Annotations/Arousal/<id>-A.csv         one row per annotator: annotator, static rating, dynamic ratings...
    Annotations/Valence/<id>-V.csv

(column meaning inferred from public analysis code; unverified). Static labels are the mean over
annotators of the second column, dynamic labels the per-column mean of the remaining columns. Their
times come from the header when it holds times on a 0.5 s step (``15.5`` or ``15500ms``); otherwise the
columns are taken as 2 Hz samples from 15.5 s, as in the 2019 release, and this is noted in the issues.
When the valence and arousal curves of a song differ in length, both are cut to the common span.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..tracks import Track
from .base import DATASETS, UNIT, Dataset, DatasetAdapter, IssueLog, convert_pair
from .grid import build_dynamic
from .reading import (
    attach_audio,
    copy_meta,
    find_child,
    find_column,
    float_cell,
    iter_id_rows,
    iter_known_rows,
    normalize_id,
    parse_float,
    read_csv,
    read_long_dynamic,
    track_of,
)

ID_COLUMNS = ("musicId", "music_id", "song_id", "id")
PMEMO_FIRST_TIME_S = 15.5


def _locate(root: Path) -> tuple[Path, str]:
    """(release directory, ``"2019"`` or ``"2018"``), looking into PMEmo2019/ or PMEmo/ below ``root``."""
    candidates = [root]
    for name in ("PMEmo2019", "PMEmo", "PMEmo2018"):
        sub = find_child(root, name)
        if sub is not None and sub.is_dir():
            candidates += [sub]
            inner = find_child(sub, "PMEmo")
            if inner is not None and inner.is_dir():
                candidates.append(inner)
    for c in candidates:
        ann = find_child(c, "annotations")
        if ann is not None and (
            find_child(ann, "static_annotations.csv") is not None
            or find_child(ann, "dynamic_annotations.csv") is not None
        ):
            return c, "2019"
        if ann is not None and find_child(ann, "Arousal") is not None:
            return c, "2018"
    raise DatasetError(
        f"{root}: not a PMEmo release (expected annotations/static_annotations.csv or "
        "annotations/dynamic_annotations.csv (2019), or Annotations/Arousal/<id>-A.csv (2018))"
    )


@DATASETS.register("pmemo")
class PMEmoDataset(DatasetAdapter):
    """PMEmo 2019 (or 2018) layout: static and dynamic V-A on [0, 1] for the chorus clips.

    Parameters
    ----------
    release : {"auto", "2019", "2018"}
        Which layout to read; ``"auto"`` detects it.
    """

    name = "pmemo"
    description = "PMEmo 2019/2018: 794 chorus clips, static + 2 Hz dynamic V-A on [0, 1]"

    def __init__(self, release: str = "auto"):
        if release not in ("auto", "2019", "2018"):
            raise DatasetError(f"pmemo: release must be 'auto', '2019' or '2018', not {release!r}")
        self.release = release

    def load(self, root: Path) -> Dataset:
        base, found = _locate(root)
        if self.release != "auto" and self.release != found:
            raise DatasetError(
                f"{base}: looks like the PMEmo {found} layout, but release={self.release!r} was asked"
            )
        log = IssueLog()
        tracks: dict[str, Track] = {}
        if found == "2019":
            self._load_2019(base, log, tracks)
            audio_dir = find_child(base, "chorus")
        else:
            self._load_2018(base, log, tracks)
            audio_dir = find_child(base, "Chorus", "chorus")
        if audio_dir is None:
            log.note(base.name, "no chorus/ audio folder found")
        else:
            attach_audio(tracks, audio_dir, log)
        meta = find_child(base, "metadata.csv")
        if meta is not None:
            self._read_metadata(meta, log, tracks)
        return self.finish(
            root,
            tracks,
            log,
            native_scale={"static": UNIT.as_tuple(), "dynamic": UNIT.as_tuple()},
            description=f"{self.description} (read as the {found} layout)",
        )

    # ------------------------------------------------------------------------------------------------------
    @staticmethod
    def _read_metadata(path: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        """Title, artist, album, duration, chorus times and file name into ``Track.meta``."""
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path, what="musicId")
        keys = {
            "title": ("title",),
            "artist": ("artist",),
            "album": ("album",),
            "duration": ("duration",),
            "chorus_start_time": ("chorus_start_time",),
            "chorus_end_time": ("chorus_end_time",),
            "file_name": ("fileName", "file_name"),
        }
        cols = {k: find_column(header, c, path, required=False) for k, c in keys.items()}
        unknown = "metadata rows for ids without labels or audio (ignored)"
        for t, row in iter_known_rows(rows, i_id, tracks, log, path.name, unknown):
            copy_meta(t, row, cols)

    def _load_2019(self, base: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        ann = find_child(base, "annotations")
        static = find_child(ann, "static_annotations.csv")
        dynamic = find_child(ann, "dynamic_annotations.csv")
        if static is None:
            log.note("annotations", "static_annotations.csv not found (no static labels)")
        else:
            header, rows = read_csv(static, log)
            i_id = find_column(header, ID_COLUMNS, static, what="musicId")
            i_a = find_column(
                header, ("Arousal(mean)", "arousal_mean", "arousal"), static, what="Arousal(mean)"
            )
            i_v = find_column(
                header, ("Valence(mean)", "valence_mean", "valence"), static, what="Valence(mean)"
            )
            for tid, row in iter_id_rows(rows, i_id, log, static.name, id_name="musicId"):
                t = track_of(tracks, tid)
                t.valence, t.arousal = convert_pair(
                    float_cell(row, i_v), float_cell(row, i_a), UNIT, log, static.name, tid
                )
        if dynamic is None:
            log.note("annotations", "dynamic_annotations.csv not found (no dynamic labels)")
        else:
            header, rows = read_csv(dynamic, log)
            curves = read_long_dynamic(
                dynamic,
                header,
                rows,
                log,
                id_columns=ID_COLUMNS,
                time_columns=("frameTime", "time_s", "time"),
            )
            for tid, (times, v, a) in curves.items():
                track_of(tracks, tid).dynamic = build_dynamic(
                    times, v, times, a, UNIT, log, dynamic.name, tid
                )

    # ------------------------------------------------------------------------------------------------------
    def _load_2018(self, base: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        ann = find_child(base, "annotations")
        dirs = {"arousal": find_child(ann, "Arousal"), "valence": find_child(ann, "Valence")}
        for dim, d in dirs.items():
            if d is None or not d.is_dir():
                raise DatasetError(
                    f"{ann}: missing folder {dim.capitalize()}/ (expected <id>-{dim[0].upper()}.csv)"
                )
        per_dim: dict[str, dict[str, tuple[float, np.ndarray, np.ndarray]]] = {}
        for dim, d in dirs.items():
            suffix = f"-{dim[0]}"
            per_dim[dim] = {}
            for f in sorted(d.iterdir()):
                if f.suffix.lower() != ".csv":
                    continue
                if not f.stem.lower().endswith(suffix):
                    log.add(d.name, f"files not named <id>{suffix.upper()}.csv ignored", f.name)
                    continue
                tid = normalize_id(f.stem[: -len(suffix)])
                per_dim[dim][tid] = self._read_2018_file(f, log)
        for tid in sorted(set(per_dim["arousal"]) | set(per_dim["valence"])):
            a = per_dim["arousal"].get(tid)
            v = per_dim["valence"].get(tid)
            if a is None or v is None:
                log.add("Annotations", "songs annotated in only one dimension (kept without the other)", tid)
            t = track_of(tracks, tid)
            t.valence, t.arousal = convert_pair(
                v[0] if v else np.nan, a[0] if a else np.nan, UNIT, log, "Annotations", tid
            )
            if a is not None and v is not None and len(a[1]) and len(v[1]):
                t.dynamic = build_dynamic(v[1], v[2], a[1], a[2], UNIT, log, "Annotations", tid)

    @staticmethod
    def _read_2018_file(path: Path, log: IssueLog) -> tuple[float, np.ndarray, np.ndarray]:
        """(static mean, dynamic times, dynamic means) of one per-song, per-dimension file."""
        header, rows = read_csv(path, log)
        if len(header) < 2:
            raise DatasetError(f"{path}: expected columns annotator, static rating, dynamic ratings...")
        longer = sum(1 for row in rows if len(row) > len(header) and any(row[len(header) :]))
        if longer:
            log.add(
                "Annotations",
                "annotator rows with more cells than the header (extra cells ignored)",
                path.name,
            )
        # per-column means over the annotators, accumulated row by row: work and memory follow the cells
        # present, not rows x header width (a short row is not padded)
        width = len(header) - 1
        sums = np.zeros(width)
        counts = np.zeros(width, dtype=np.int64)
        for row in rows:
            vals = np.array([parse_float(c) for c in row[1 : len(header)]], dtype=np.float64)
            idx = np.flatnonzero(~np.isnan(vals))  # inf stays in: counted as invalid downstream
            sums[idx] += vals[idx]
            counts[idx] += 1
        with np.errstate(all="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        static = float(means[0])
        dyn = means[1:]
        times = _header_times(header[2:])
        if times is None:
            times = PMEMO_FIRST_TIME_S + 0.5 * np.arange(len(header) - 2)
            log.add("Annotations", "files whose header gives no times (2 Hz from 15.5 s assumed)", path.name)
        return static, times, dyn


def _header_times(names: list[str]) -> np.ndarray | None:
    """Times in seconds from header cells like ``15.5``, ``15500ms`` or ``sample_15500ms``, if on a 0.5 s step."""
    out = []
    for name in names:
        m = re.search(r"(\d+(?:\.\d+)?)\s*(ms)?", name)
        if m is None:
            return None
        out.append(float(m.group(1)) / (1000.0 if m.group(2) else 1.0))
    t = np.array(out)
    if len(t) == 0:
        return t
    steps = np.diff(t)
    if len(steps) and not np.allclose(steps, 0.5):
        return None
    if len(t) == 1 and t[0] < 1.0:  # a bare index, not a time
        return None
    return t
