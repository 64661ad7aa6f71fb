"""The generic layout for a user's own data (also how MER1101 and the synthetic corpus are read).

::

    my_dataset/
      audio/<track_id>.<wav|flac|mp3|ogg|opus|m4a>
      static.csv      track_id,valence,arousal[,split][,anything else -> Track.meta]
      dynamic.csv     track_id,time_s,valence,arousal   (any step; resampled to the 2 Hz grid)
      tags.csv        track_id,<tag>,<tag>,...         (0/1 or fractions in [0, 1])
      dataset.yaml    see below

At least one of the three label files must exist. ``dataset.yaml``::

    name: my_dataset                 # default: the folder name
    description: one line            # optional
    scale: {min: 1, max: 9}          # native V-A range of static.csv and dynamic.csv (default [-1, 1])
    # or per kind:  scale: {static: {min: 1, max: 9}, dynamic: {min: -1, max: 1}}
    split: {column: split}           # optional: a column of static.csv, tags.csv or dynamic.csv
    # or:           split: {file: splits.csv}   (CSV track_id,split) or a YAML file {split_name: [ids]}
    audio_dir: audio                 # optional

Dynamic rows at any step are put on the 0.5 s grid by :func:`~moodscope.datasets.base.resample_to_grid`:
each segment ``[t, t + 0.5)`` takes the mean of the rows whose ``time_s`` falls inside it, and a segment
with no row (coarser steps) the linear interpolation at its start. Rows already on the grid pass
unchanged (the row at ``time_s = t`` labels the segment starting at *t*). A ``time_ms`` column is
accepted instead of ``time_s``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import DatasetError
from ..tracks import Track
from .base import (
    CANONICAL,
    DATASETS,
    UNIT,
    Dataset,
    DatasetAdapter,
    IssueLog,
    Scale,
    convert_pair,
    convert_tags,
)
from .grid import build_dynamic
from .reading import (
    attach_audio,
    find_column,
    float_cell,
    iter_id_rows,
    normalize_id,
    read_csv,
    read_long_dynamic,
    read_text,
    track_of,
)

ID_COLUMNS = ("track_id", "id", "song_id", "track")
SPLIT_NAMES = ("split", "set", "subset", "fold")


def _read_config(root: Path, log: IssueLog) -> dict:
    path = root / "dataset.yaml"
    if not path.is_file():
        alt = root / "dataset.yml"
        if not alt.is_file():
            log.note("dataset.yaml", "not found; assumed name = folder name, scale [-1, 1], no split")
            return {}
        path = alt
    try:
        cfg = yaml.safe_load(read_text(path, log)) or {}
    except yaml.YAMLError as e:
        raise DatasetError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise DatasetError(f"{path}: expected a mapping (name, scale, split...), got {type(cfg).__name__}")
    return cfg


def _scale_from(spec, path: Path, what: str) -> Scale:
    if not isinstance(spec, dict) or "min" not in spec or "max" not in spec:
        raise DatasetError(f"{path}: {what} must be a mapping with 'min' and 'max', got {spec!r}")
    try:
        return Scale(float(spec["min"]), float(spec["max"]))
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{path}: {what}: {e}") from None


def _scales(cfg: dict, root: Path) -> dict[str, Scale]:
    spec = cfg.get("scale")
    path = root / "dataset.yaml"
    if spec is None:
        return {"static": CANONICAL, "dynamic": CANONICAL}
    if isinstance(spec, dict) and ("static" in spec or "dynamic" in spec):
        out = {}
        for kind in ("static", "dynamic"):
            out[kind] = _scale_from(spec[kind], path, f"scale.{kind}") if kind in spec else CANONICAL
        return out
    s = _scale_from(spec, path, "scale")
    return {"static": s, "dynamic": s}


def _split_spec(cfg: dict) -> tuple[str | None, str | None]:
    """(split column, split file) from ``split: {column|file}`` or ``split_column`` / ``split_file``."""
    spec = cfg.get("split")
    column = cfg.get("split_column")
    file = cfg.get("split_file")
    if isinstance(spec, dict):
        column = spec.get("column", column)
        file = spec.get("file", file)
    elif isinstance(spec, str):
        column = spec
    return column, file


@DATASETS.register("folder")
class FolderDataset(DatasetAdapter):
    """Generic layout: ``audio/<id>.<ext>``, ``static.csv``, ``dynamic.csv``, ``tags.csv``, ``dataset.yaml``.

    Parameters
    ----------
    scale : tuple[float, float], optional
        Override the native V-A range declared in ``dataset.yaml`` (applies to static and dynamic).
    """

    name = "folder"
    description = "your own data: audio/<id>.<ext> + static.csv / dynamic.csv / tags.csv + dataset.yaml"

    def __init__(self, scale: tuple[float, float] | None = None):
        try:
            self.scale_override = None if scale is None else Scale(float(scale[0]), float(scale[1]))
        except (TypeError, ValueError, IndexError) as e:
            raise DatasetError(
                f"folder: option scale must be (min, max) with min < max, got {scale!r} ({e})"
            ) from None

    def load(self, root: Path) -> Dataset:
        log = IssueLog()
        cfg = _read_config(root, log)
        scales = _scales(cfg, root)
        if self.scale_override is not None:
            scales = {"static": self.scale_override, "dynamic": self.scale_override}
        split_column, split_file = _split_spec(cfg)

        label_files = [root / f for f in ("static.csv", "dynamic.csv", "tags.csv")]
        if not any(p.is_file() for p in label_files):
            raise DatasetError(
                f"{root}: no label file found (expected at least one of static.csv, dynamic.csv, tags.csv)"
            )
        audio_dir = root / str(cfg.get("audio_dir", "audio"))
        if not audio_dir.is_dir():
            raise DatasetError(f"{audio_dir}: missing audio folder (expected audio/<track_id>.<ext>)")

        tracks: dict[str, Track] = {}
        splits: dict[str, str] = {}
        self._split_found = False

        if (root / "static.csv").is_file():
            self._read_static(root / "static.csv", scales["static"], split_column, log, tracks, splits)
        tag_names: list[str] = []
        if (root / "tags.csv").is_file():
            tag_names = self._read_tags(root / "tags.csv", split_column, log, tracks, splits)
        if (root / "dynamic.csv").is_file():
            self._read_dynamic(root / "dynamic.csv", scales["dynamic"], split_column, log, tracks, splits)

        if split_column and not self._split_found:
            raise DatasetError(
                f"{root / 'dataset.yaml'}: split column {split_column!r} is not a column of static.csv, "
                "tags.csv or dynamic.csv"
            )
        if split_file:
            splits = self._read_split_file(root / str(split_file), log)
        for tid, s in splits.items():
            if tid in tracks:
                tracks[tid].split = s
            else:
                log.add(str(split_file or split_column), "split entries for unknown ids ignored", tid)
        if splits:
            for t in tracks.values():
                if t.split is None:
                    log.add("split", "tracks without a split assignment", t.id)

        attach_audio(tracks, audio_dir, log)

        native = {k: s.as_tuple() for k, s in scales.items()}
        native["tags"] = UNIT.as_tuple()
        return self.finish(
            root,
            tracks,
            log,
            tag_names=tag_names,
            native_scale=native,
            name=str(cfg.get("name") or root.name),
            description=str(cfg.get("description") or self.description),
        )

    # ------------------------------------------------------------------------------------------------------
    def _split_value(self, row, split_idx, tid, splits, log, where):
        if split_idx is not None:
            self._split_found = True
        if split_idx is None or split_idx >= len(row) or not row[split_idx]:
            return
        value = row[split_idx]
        old = splits.setdefault(tid, value)
        if old != value:
            log.add(where, "tracks with conflicting split values (first kept)", tid)

    def _read_static(self, path, scale, split_column, log, tracks, splits):
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path)
        i_v = find_column(header, ("valence", "valence_mean"), path)
        i_a = find_column(header, ("arousal", "arousal_mean"), path)
        i_split = find_column(header, (split_column,), path, required=False) if split_column else None
        extra = [j for j in range(len(header)) if j not in (i_id, i_v, i_a, i_split)]
        for tid, row in iter_id_rows(rows, i_id, log, path.name, id_name="track id"):
            t = track_of(tracks, tid)
            t.valence, t.arousal = convert_pair(
                float_cell(row, i_v), float_cell(row, i_a), scale, log, path.name, tid
            )
            for j in extra:
                if j < len(row) and row[j]:
                    t.meta[header[j]] = row[j]
            self._split_value(row, i_split, tid, splits, log, path.name)

    def _read_tags(self, path, split_column, log, tracks, splits) -> list[str]:
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path)
        i_split = find_column(header, (split_column,), path, required=False) if split_column else None
        cols = [j for j in range(len(header)) if j not in (i_id, i_split)]
        if not cols:
            raise DatasetError(f"{path}: no tag columns (expected track_id,<tag>,<tag>,...)")
        names = [header[j] for j in cols]
        for tid, row in iter_id_rows(rows, i_id, log, path.name, id_name="track id"):
            tags = convert_tags(names, [float_cell(row, j) for j in cols], log, path.name, tid)
            track_of(tracks, tid).tags = tags
            self._split_value(row, i_split, tid, splits, log, path.name)
        return names

    def _read_dynamic(self, path, scale, split_column, log, tracks, splits):
        header, rows = read_csv(path, log)
        curves = read_long_dynamic(
            path,
            header,
            rows,
            log,
            id_columns=ID_COLUMNS,
            time_columns=("time_s", "time", "t", "frametime", "start_s"),
            ms_columns=("time_ms",),
        )
        if split_column:
            i_id = find_column(header, ID_COLUMNS, path)
            i_split = find_column(header, (split_column,), path, required=False)
            for row in rows:
                if i_id < len(row) and row[i_id]:
                    self._split_value(row, i_split, normalize_id(row[i_id]), splits, log, path.name)
        for tid, (times, v, a) in curves.items():
            track_of(tracks, tid).dynamic = build_dynamic(times, v, times, a, scale, log, path.name, tid)

    @staticmethod
    def _read_split_file(path: Path, log: IssueLog) -> dict[str, str]:
        if not path.is_file():
            raise DatasetError(f"{path}: missing split file named in dataset.yaml")
        out: dict[str, str] = {}
        if path.suffix.lower() in (".yaml", ".yml", ".json"):
            data = yaml.safe_load(read_text(path, log))
            if not isinstance(data, dict):
                raise DatasetError(f"{path}: expected a mapping split_name -> list of ids")
            for split, ids in data.items():
                for tid in ids or []:
                    tid = normalize_id(str(tid))
                    if out.setdefault(tid, str(split)) != str(split):
                        log.add(path.name, "ids listed in several splits (first kept)", tid)
            return out
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path)
        i_s = find_column(header, SPLIT_NAMES, path, what="split")
        for row in rows:
            if max(i_id, i_s) >= len(row) or not row[i_id]:
                log.add(path.name, "incomplete rows skipped", ",".join(row))
                continue
            tid = normalize_id(row[i_id])
            if out.setdefault(tid, row[i_s]) != row[i_s]:
                log.add(path.name, "ids listed in several splits (first kept)", tid)
        return out
