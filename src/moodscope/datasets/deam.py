"""DEAM (MediaEval "Emotion in Music" 2013-2015; Aljanaki et al. 2017) and its 2013 "1000 songs" release.

**Full DEAM release** (``root`` is the folder holding ``DEAM_audio/`` and ``DEAM_Annotations/``, or any
folder above them; the folders are found by name up to four levels down)::

    DEAM_audio/MEMD_audio/<song_id>.mp3
    DEAM_Annotations/annotations/annotations averaged per song/song_level/
        static_annotations_averaged_songs_1_2000.csv      song_id, valence_mean, valence_std, arousal_mean, ...
        static_annotations_averaged_songs_2000_2058.csv
    DEAM_Annotations/annotations/annotations averaged per song/dynamic (per second annotations)/
        arousal.csv, valence.csv                          song_id, sample_15000ms, sample_15500ms, ...
    metadata/metadata_2013.csv, metadata_2014.csv, metadata_2015.csv   (optional)

**2013 release**::

    clips_45seconds/<song_id>.mp3
    annotations/static_annotations.csv                    song_id, mean_arousal, std_arousal, mean_valence, ...
    annotations/arousal_cont_average.csv, valence_cont_average.csv     song_id, sample_15000ms, ...
    annotations/songs_info.csv                            ..., "Mediaeval 2013 set"  (development/evaluation)

Handled quirks:

- Header cells carry leading spaces (``song_id, valence_mean``) and quoted values carry stray tabs
  (``"\\t2.mp3"``, ``"\\tBlues\\t"``): every cell is stripped. Columns are found by name, so the 2013 file's
  arousal-first order needs nothing special.
- Static labels are on 1-9 and map to [-1, 1] with ``(x - 5) / 4`` (``3.1 -> -0.475``). Their standard
  deviations go into ``Track.meta["valence_std"]`` / ``["arousal_std"]`` on the canonical scale (``std / 4``).
- Dynamic values are already on [-1, 1]. Column ``sample_<ms>ms`` is the annotation at ``t = ms / 1000`` s,
  and we map it to the 0.5 s segment *starting* at *t*: ``sample_15000ms`` labels ``[15.0, 15.5)``, so a
  45 s clip's curve covers ``times_s = 15.0 ... 44.5`` (plus ``45.0`` where ``sample_45000ms`` is given; that
  last segment lies past the clip's end and is cut by the trainer like any label beyond the audio).
- Rows are ragged: 45 s clips stop near ``sample_45000ms`` while full songs reach ``sample_626500ms``; trailing
  empty (or missing) cells end the curve and are not counted as issues. Empty cells *inside* a curve are
  interpolated and counted. A song whose valence and arousal rows differ in length is cut to the common span.
- Songs in only one of the two dynamic files get no curve (counted).
- Metadata headers differ by year (``Id`` / ``id``; the 2015 file's columns are shifted): only the id and the
  year are always read (``meta["year"]``); artist / title / genre are taken from a row only when it has as many
  cells as the header.
- ``songs_info.csv`` of the 2013 release gives ``Track.split`` (``development`` / ``evaluation``) and metadata.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..tracks import Track
from .base import CANONICAL, DATASETS, Dataset, DatasetAdapter, IssueLog, Scale, convert_pair
from .grid import build_dynamic
from .limits import MAX_SAMPLES_PER_TRACK, MAX_TIME_S, excerpt
from .reading import (
    attach_audio,
    copy_meta,
    find_child,
    find_column,
    find_dirs,
    float_cell,
    iter_id_rows,
    iter_known_rows,
    parse_float,
    present_columns,
    read_csv,
    track_of,
)

DEAM_STATIC = Scale(1.0, 9.0)
ID_COLUMNS = ("song_id", "songid", "id")
_SAMPLE = re.compile(r"^sample_(\d+(?:\.\d+)?)ms$", re.IGNORECASE)


def read_wide_dynamic(path: Path, log: IssueLog) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A DEAM-style wide dynamic table: ``song_id, sample_15000ms, sample_15500ms, ...``.

    A column whose time is beyond :data:`~moodscope.datasets.limits.MAX_TIME_S` (24 h), or past the
    :data:`~moodscope.datasets.limits.MAX_SAMPLES_PER_TRACK`-th, is ignored and counted. The work per row is
    proportional to the row's own cells (a short row is not padded to the header's width).

    Returns
    -------
    dict
        ``id -> (times_s, values)``: times from the column names, values NaN for empty cells; trailing empty
        cells are dropped.
    """
    header, rows = read_csv(path, log)
    i_id = find_column(header, ID_COLUMNS, path, what="song_id")
    cols, times = [], []
    for j, name in enumerate(header):
        if j == i_id:
            continue
        m = _SAMPLE.match(name)
        if m is None:
            if name:
                log.add(path.name, "columns not named sample_<ms>ms ignored", name)
            continue
        t = float(m.group(1)) / 1000.0
        if not t <= MAX_TIME_S:
            log.add(path.name, f"columns with a time beyond {MAX_TIME_S:g} s (24 h) ignored", name)
            continue
        if len(cols) >= MAX_SAMPLES_PER_TRACK:
            log.add(path.name, f"sample columns past {MAX_SAMPLES_PER_TRACK} ignored", name)
            continue
        cols.append(j)
        times.append(t)
    if not cols:
        raise DatasetError(
            f"{path}: no sample_<ms>ms columns with a time within 24 h "
            "(expected song_id,sample_15000ms,sample_15500ms,...)"
        )
    times_arr = np.array(times)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for tid, row in iter_id_rows(rows, i_id, log, path.name, id_name="song_id"):
        if len(row) > len(header) and any(c for c in row[len(header) :]):
            log.add(path.name, "rows with more cells than the header (extra cells ignored)", tid)
        present = present_columns(cols, row)
        filled = [k for k, j in enumerate(present) if row[j] != ""]
        end = filled[-1] + 1 if filled else 0
        vals = np.array([parse_float(row[j]) for j in present[:end]], dtype=np.float64)
        out[tid] = (times_arr[:end], vals)
    return out


@DATASETS.register("deam")
class DEAMDataset(DatasetAdapter):
    """DEAM full release (1,802 songs) or the 2013 "1000 songs" release; static 1-9, dynamic [-1, 1] at 2 Hz.

    Parameters
    ----------
    release : {"auto", "full", "2013"}
        Which layout to read; ``"auto"`` detects it (``clips_45seconds/`` or ``*_cont_average.csv`` -> 2013).
    """

    name = "deam"
    description = (
        "DEAM (MediaEval 2013-2015, 1,802 songs) or the 2013 '1000 songs' release: static + 2 Hz V-A"
    )

    def __init__(self, release: str = "auto"):
        if release not in ("auto", "full", "2013"):
            raise DatasetError(f"deam: release must be 'auto', 'full' or '2013', not {release!r}")
        self.release = release

    def load(self, root: Path) -> Dataset:
        averaged = find_dirs(root, ("annotations averaged per song",))
        ann2013 = [
            d
            for d in find_dirs(root, ("annotations",))
            if find_child(d, "arousal_cont_average.csv") is not None
        ]
        release = self.release
        if release == "auto":
            if averaged:
                release = "full"
            elif ann2013 or find_dirs(root, ("clips_45seconds",)):
                release = "2013"
            else:
                raise DatasetError(
                    f"{root}: not a DEAM release (expected 'annotations averaged per song/' of the full release, "
                    "or annotations/arousal_cont_average.csv of the 2013 release)"
                )
        log = IssueLog()
        tracks: dict[str, Track] = {}
        if release == "full":
            self._load_full(root, averaged, log, tracks)
        else:
            self._load_2013(root, ann2013, log, tracks)
        return self.finish(
            root,
            tracks,
            log,
            native_scale={"static": DEAM_STATIC.as_tuple(), "dynamic": CANONICAL.as_tuple()},
            description=f"{self.description} (read as the {release} release)",
        )

    # ------------------------------------------------------------------------------------------------------
    def _read_static(self, path: Path, log: IssueLog, tracks: dict[str, Track], seen: set[str]) -> None:
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path, what="song_id")
        i_v = find_column(header, ("valence_mean", "mean_valence"), path)
        i_a = find_column(header, ("arousal_mean", "mean_arousal"), path)
        i_vs = find_column(header, ("valence_std", "std_valence"), path, required=False)
        i_as = find_column(header, ("arousal_std", "std_arousal"), path, required=False)
        for tid, row in iter_id_rows(rows, i_id, log, path.name, id_name="song_id", seen=seen):
            t = track_of(tracks, tid)
            t.valence, t.arousal = convert_pair(
                float_cell(row, i_v), float_cell(row, i_a), DEAM_STATIC, log, path.name, tid
            )
            for key, j in (("valence_std", i_vs), ("arousal_std", i_as)):
                s = float_cell(row, j)
                if np.isfinite(s):
                    t.meta[key] = float(s * 2.0 / (DEAM_STATIC.hi - DEAM_STATIC.lo))

    def _read_dynamic(self, v_path: Path, a_path: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        val = read_wide_dynamic(v_path, log)
        aro = read_wide_dynamic(a_path, log)
        for tid in sorted(set(val) | set(aro)):
            if tid not in val or tid not in aro:
                where = a_path.name if tid not in aro else v_path.name
                log.add(where, "songs missing from this dynamic file (no curve)", tid)
                continue
            (tv, yv), (ta, ya) = val[tid], aro[tid]
            if len(tv) == 0 and len(ta) == 0:
                log.add(v_path.parent.name, "songs with empty dynamic rows (no curve)", tid)
                continue
            dyn = build_dynamic(tv, yv, ta, ya, CANONICAL, log, f"{v_path.name}/{a_path.name}", tid)
            if dyn is not None:
                track_of(tracks, tid).dynamic = dyn

    def _attach_audio(self, dirs: list[Path], what: str, root: Path, log: IssueLog, tracks) -> None:
        if not dirs:
            log.note(root.name, f"no {what}/ audio folder found (all tracks without audio)")
            return
        attach_audio(tracks, dirs[0], log)

    # ------------------------------------------------------------------------------------------------------
    def _load_full(self, root: Path, averaged: list[Path], log: IssueLog, tracks: dict[str, Track]) -> None:
        avg = averaged[0]
        song_level = find_child(avg, "song_level")
        static_files = (
            sorted(p for p in song_level.iterdir() if p.name.lower().startswith("static_annotations"))
            if song_level is not None
            else []
        )
        if not static_files:
            raise DatasetError(
                f"{avg}: missing song_level/static_annotations_averaged_songs_1_2000.csv "
                "(and _2000_2058.csv): the song-level static annotations"
            )
        seen: set[str] = set()
        for f in static_files:
            self._read_static(f, log, tracks, seen)
        dyn_dir = next(
            (p for p in sorted(avg.iterdir()) if p.is_dir() and p.name.lower().startswith("dynamic")), None
        )
        if dyn_dir is None:
            raise DatasetError(
                f"{avg}: missing folder 'dynamic (per second annotations)/' (arousal.csv, valence.csv)"
            )
        a_path, v_path = find_child(dyn_dir, "arousal.csv"), find_child(dyn_dir, "valence.csv")
        for p, name in ((a_path, "arousal.csv"), (v_path, "valence.csv")):
            if p is None:
                raise DatasetError(f"{dyn_dir / name}: missing file (DEAM dynamic annotations)")
        self._read_dynamic(v_path, a_path, log, tracks)
        self._attach_audio(find_dirs(root, ("MEMD_audio",)), "MEMD_audio", root, log, tracks)
        for meta_dir in find_dirs(root, ("metadata",))[:1]:
            for f in sorted(meta_dir.glob("metadata_*.csv")):
                self._read_metadata(f, log, tracks)

    def _read_metadata(self, path: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        year = re.sub(r"\D", "", path.stem) or path.stem
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path, what="id")
        fields = {
            "artist": find_column(header, ("Artist",), path, required=False),
            "title": find_column(header, ("Song title", "title", "Track"), path, required=False),
            "genre": find_column(header, ("Genre",), path, required=False),
        }
        unknown = "metadata rows for ids without labels or audio (ignored)"
        for t, row in iter_known_rows(rows, i_id, tracks, log, path.name, unknown):
            t.meta.setdefault("year", year)
            if len(row) != len(header):
                log.add(
                    path.name, "rows whose cell count differs from the header (only id and year read)", t.id
                )
                continue
            for key, j in fields.items():
                if j is not None and row[j]:
                    t.meta.setdefault(key, row[j])

    # ------------------------------------------------------------------------------------------------------
    def _load_2013(self, root: Path, ann_dirs: list[Path], log: IssueLog, tracks: dict[str, Track]) -> None:
        if not ann_dirs:
            raise DatasetError(f"{root}: missing annotations/arousal_cont_average.csv (DEAM 2013 release)")
        ann = ann_dirs[0]
        static = find_child(ann, "static_annotations.csv")
        if static is None:
            raise DatasetError(
                f"{ann / 'static_annotations.csv'}: missing file (DEAM 2013 static annotations)"
            )
        self._read_static(static, log, tracks, set())
        v_path = find_child(ann, "valence_cont_average.csv")
        if v_path is None:
            raise DatasetError(
                f"{ann / 'valence_cont_average.csv'}: missing file (DEAM 2013 dynamic valence)"
            )
        self._read_dynamic(v_path, find_child(ann, "arousal_cont_average.csv"), log, tracks)
        base = ann.parent
        clips = [d for d in (find_child(base, "clips_45seconds"),) if d is not None] or find_dirs(
            root, ("clips_45seconds",)
        )
        self._attach_audio(clips, "clips_45seconds", root, log, tracks)
        info = find_child(ann, "songs_info.csv") or find_child(base, "songs_info.csv")
        if info is None:
            log.note("annotations", "songs_info.csv not found (no development/evaluation split)")
        else:
            self._read_songs_info(info, log, tracks)

    def _read_songs_info(self, path: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path, what="song_id")
        i_set = find_column(header, ("Mediaeval 2013 set",), path, required=False)
        if i_set is None:
            i_set = len(header) - 1
            log.note(
                path.name,
                f"no 'Mediaeval 2013 set' column; split read from the last column {excerpt(header[-1])!r}",
            )
        fields = {
            "file_name": find_column(header, ("file_name",), path, required=False),
            "artist": find_column(header, ("Artist",), path, required=False),
            "title": find_column(header, ("Song title",), path, required=False),
            "segment_start": find_column(header, ("start of the segment (min.sec)",), path, required=False),
            "segment_end": find_column(header, ("end of the segment (min.sec)",), path, required=False),
            "genre": find_column(header, ("Genre",), path, required=False),
        }
        unknown = "rows for ids without labels or audio (ignored)"
        for t, row in iter_known_rows(rows, i_id, tracks, log, path.name, unknown):
            if i_set < len(row) and row[i_set]:
                t.split = row[i_set].lower()
            copy_meta(t, row, fields)
