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
accepted instead of ``time_s``. Rows with a missing, negative or non-finite time, or one beyond 24 h, are
skipped and counted (see :mod:`.limits`).

**Paths stay inside the dataset root.** ``audio_dir`` and ``split.file`` (``split_file``) are relative to
the folder and must resolve inside it, symlinks included; so must the label files and ``dataset.yaml``
(a symlink ``static.csv -> /elsewhere`` is refused). A path outside raises
:class:`~moodscope.errors.DatasetError` naming ``dataset.yaml``, the key and the path ("points outside
the dataset root"). To keep audio or a split file elsewhere on purpose, pass the adapter option
``allow_outside_root=True`` (``load_dataset("folder", root, allow_outside_root=True)``, or
``data.options.allow_outside_root: true`` in a training config). It is deliberately not a key of
``dataset.yaml``: the tree being read must not be the one that lifts the rule. The audio files in the
audio folder may be symlinks to anywhere either way (they are only decoded, never quoted).

``dataset.yaml`` must be a mapping of at most 1 MB; YAML aliases that expand past 100,000 values are
refused, and so are label files that are not regular files (a FIFO, a folder) or bigger than 64 MB.
"""

from __future__ import annotations

import os
from pathlib import Path

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
from .limits import excerpt, resolve, short_repr
from .reading import (
    attach_audio,
    find_column,
    float_cell,
    iter_id_rows,
    load_yaml,
    normalize_id,
    present_columns,
    read_csv,
    read_long_dynamic,
    track_of,
)

ID_COLUMNS = ("track_id", "id", "song_id", "track")
SPLIT_NAMES = ("split", "set", "subset", "fold")
LABEL_FILES = ("static.csv", "dynamic.csv", "tags.csv")


def _exists(path: Path) -> bool:
    """Whether anything (a file, a folder, a FIFO, a dangling symlink) is at ``path``: a label file name
    that holds something else is reported by the reader, not passed over."""
    return os.path.lexists(path)


def _read_config(root: Path, log: IssueLog) -> tuple[dict, Path]:
    path = root / "dataset.yaml"
    if not _exists(path):
        alt = root / "dataset.yml"
        if not _exists(alt):
            log.note("dataset.yaml", "not found; assumed name = folder name, scale [-1, 1], no split")
            return {}, path
        path = alt
    cfg = load_yaml(path, log, what="dataset.yaml") or {}
    if not isinstance(cfg, dict):
        raise DatasetError(
            f"{path}: expected a mapping (name, scale, split, audio_dir...), got a YAML {type(cfg).__name__}"
        )
    return cfg, path


def _text(cfg: dict, key: str, path: Path, *, limit: int = 200) -> str | None:
    """A scalar setting as one printable line (``None`` when absent or empty)."""
    value = cfg.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list)):
        raise DatasetError(f"{path}: {key} must be text, got a YAML {type(value).__name__}")
    return excerpt(value, limit)


def _scale_from(spec, path: Path, what: str) -> Scale:
    if not isinstance(spec, dict) or "min" not in spec or "max" not in spec:
        raise DatasetError(f"{path}: {what} must be a mapping with 'min' and 'max', got {short_repr(spec)}")
    try:
        return Scale(float(spec["min"]), float(spec["max"]))
    except (TypeError, ValueError, OverflowError) as e:
        raise DatasetError(f"{path}: {what}: {excerpt(e, 100)}") from None


def _scales(cfg: dict, path: Path) -> dict[str, Scale]:
    spec = cfg.get("scale")
    if spec is None:
        return {"static": CANONICAL, "dynamic": CANONICAL}
    if isinstance(spec, dict) and ("static" in spec or "dynamic" in spec):
        out = {}
        for kind in ("static", "dynamic"):
            out[kind] = _scale_from(spec[kind], path, f"scale.{kind}") if kind in spec else CANONICAL
        return out
    return dict.fromkeys(("static", "dynamic"), _scale_from(spec, path, "scale"))


def _split_spec(cfg: dict, path: Path) -> tuple[str | None, tuple[str, str] | None]:
    """(split column, (key, split file)) from ``split: {column|file}`` or ``split_column`` / ``split_file``."""
    spec = cfg.get("split")
    column, file = cfg.get("split_column"), cfg.get("split_file")
    file_key = "split_file"
    if isinstance(spec, dict):
        column = spec.get("column", column)
        if "file" in spec:
            file, file_key = spec["file"], "split.file"
    elif isinstance(spec, str):
        column = spec
    elif spec is not None:
        raise DatasetError(
            f"{path}: split must be a mapping {{column: NAME}} or {{file: PATH}}, or a column name; "
            f"got a YAML {type(spec).__name__}"
        )
    for key, value in (("split column", column), (file_key, file)):
        if value is not None and not isinstance(value, (str, int, float)):
            raise DatasetError(f"{path}: {key} must be text, got a YAML {type(value).__name__}")
    column = None if column in (None, "") else str(column)
    file = None if file in (None, "") else str(file)
    return column, (None if file is None else (file_key, file))


@DATASETS.register("folder")
class FolderDataset(DatasetAdapter):
    """Generic layout: ``audio/<id>.<ext>``, ``static.csv``, ``dynamic.csv``, ``tags.csv``, ``dataset.yaml``.

    Parameters
    ----------
    scale : tuple[float, float], optional
        Override the native V-A range declared in ``dataset.yaml`` (applies to static and dynamic).
    allow_outside_root : bool
        Let ``audio_dir``, ``split.file`` and the label files resolve outside the dataset folder (default:
        refused; see the module docstring).
    """

    name = "folder"
    description = "your own data: audio/<id>.<ext> + static.csv / dynamic.csv / tags.csv + dataset.yaml"

    def __init__(self, scale: tuple[float, float] | None = None, allow_outside_root: bool = False):
        try:
            self.scale_override = None if scale is None else Scale(float(scale[0]), float(scale[1]))
        except (TypeError, ValueError, IndexError) as e:
            raise DatasetError(
                f"folder: option scale must be (min, max) with min < max, got {scale!r} ({e})"
            ) from None
        self.allow_outside_root = bool(allow_outside_root)

    def _path(self, root: Path, cfg_path: Path | None, key: str, value: str) -> Path:
        """``value`` of ``key`` in dataset.yaml (``cfg_path``; ``None`` for a default) as a path below
        ``root``, refused when it resolves outside the root (unless ``allow_outside_root``)."""
        path = root / Path(os.path.expanduser(value))
        if self.allow_outside_root:
            return path
        base = resolve(root)
        resolved = resolve(path)
        if resolved != base and base not in resolved.parents:
            named = f"{cfg_path}: {key} {excerpt(value, 100)!r}" if cfg_path is not None else f"{path}:"
            raise DatasetError(
                f"{named} points outside the dataset root {base} (resolves to {resolved}); keep it inside "
                "the dataset's folder, or load with the folder option allow_outside_root=True"
            )
        return path

    def load(self, root: Path) -> Dataset:
        log = IssueLog()
        cfg, cfg_path = _read_config(root, log)
        if "allow_outside_root" in cfg:
            log.note(
                cfg_path.name,
                "allow_outside_root is ignored here: it is an option of the loader "
                "(load_dataset(..., allow_outside_root=True)), not of the dataset",
            )
        scales = _scales(cfg, cfg_path)
        if self.scale_override is not None:
            scales = {"static": self.scale_override, "dynamic": self.scale_override}
        split_column, split_file = _split_spec(cfg, cfg_path)

        label_files = {name: root / name for name in LABEL_FILES if _exists(root / name)}
        if not label_files:
            raise DatasetError(
                f"{root}: no label file found (expected at least one of static.csv, dynamic.csv, tags.csv)"
            )
        audio_value = cfg.get("audio_dir")
        if isinstance(audio_value, (dict, list)):
            raise DatasetError(
                f"{cfg_path}: audio_dir must be a path, got a YAML {type(audio_value).__name__}"
            )
        audio_value = None if audio_value in (None, "") else str(audio_value)
        audio_dir = self._path(root, cfg_path if audio_value else None, "audio_dir", audio_value or "audio")
        if not audio_dir.is_dir():
            raise DatasetError(f"{audio_dir}: missing audio folder (expected audio/<track_id>.<ext>)")
        split_path = None if split_file is None else self._path(root, cfg_path, *split_file)

        tracks: dict[str, Track] = {}
        splits: dict[str, str] = {}
        self._split_found = False

        if "static.csv" in label_files:
            self._read_static(label_files["static.csv"], scales["static"], split_column, log, tracks, splits)
        tag_names: list[str] = []
        if "tags.csv" in label_files:
            tag_names = self._read_tags(label_files["tags.csv"], split_column, log, tracks, splits)
        if "dynamic.csv" in label_files:
            self._read_dynamic(
                label_files["dynamic.csv"], scales["dynamic"], split_column, log, tracks, splits
            )

        if split_column and not self._split_found:
            raise DatasetError(
                f"{cfg_path}: split column {excerpt(split_column)!r} is not a column of static.csv, "
                "tags.csv or dynamic.csv"
            )
        if split_path is not None:
            splits = self._read_split_file(split_path, log)
        for tid, s in splits.items():
            if tid in tracks:
                tracks[tid].split = s
            else:
                where = split_path.name if split_path is not None else str(split_column)
                log.add(where, "split entries for unknown ids ignored", tid)
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
            name=_text(cfg, "name", cfg_path, limit=100) or root.name,
            description=_text(cfg, "description", cfg_path) or self.description,
        )

    # ------------------------------------------------------------------------------------------------------
    def _split_value(self, row, split_idx, tid, splits, log, where):
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
        self._split_found |= i_split is not None
        extra = [j for j in range(len(header)) if j not in (i_id, i_v, i_a, i_split)]
        for tid, row in iter_id_rows(rows, i_id, log, path.name, id_name="track id"):
            t = track_of(tracks, tid)
            t.valence, t.arousal = convert_pair(
                float_cell(row, i_v), float_cell(row, i_a), scale, log, path.name, tid
            )
            for j in present_columns(extra, row):
                if row[j]:
                    t.meta[header[j]] = row[j]
            self._split_value(row, i_split, tid, splits, log, path.name)

    def _read_tags(self, path, split_column, log, tracks, splits) -> list[str]:
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path)
        i_split = find_column(header, (split_column,), path, required=False) if split_column else None
        self._split_found |= i_split is not None
        cols = [j for j in range(len(header)) if j not in (i_id, i_split)]
        if not cols:
            raise DatasetError(f"{path}: no tag columns (expected track_id,<tag>,<tag>,...)")
        names = [header[j] for j in cols]
        for tid, row in iter_id_rows(rows, i_id, log, path.name, id_name="track id"):
            have = present_columns(cols, row)
            tags = convert_tags(
                names[: len(have)],
                [float_cell(row, j) for j in have],
                log,
                path.name,
                tid,
                missing=len(cols) - len(have),
            )
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
            self._split_found |= i_split is not None
            for row in rows:
                if i_id < len(row) and row[i_id]:
                    self._split_value(row, i_split, normalize_id(row[i_id]), splits, log, path.name)
        for tid, (times, v, a) in curves.items():
            track_of(tracks, tid).dynamic = build_dynamic(times, v, times, a, scale, log, path.name, tid)

    @staticmethod
    def _read_split_file(path: Path, log: IssueLog) -> dict[str, str]:
        if not _exists(path):
            raise DatasetError(f"{path}: missing split file named in dataset.yaml")
        out: dict[str, str] = {}
        if path.suffix.lower() in (".yaml", ".yml", ".json"):
            data = load_yaml(path, log, what="split file")
            if not isinstance(data, dict):
                raise DatasetError(f"{path}: expected a mapping split_name -> list of ids")
            for split, ids in data.items():
                if isinstance(split, (dict, list)) or split is None:
                    log.add(path.name, "split names that are not text ignored", short_repr(split))
                    continue
                split = str(split)
                if ids is None:
                    continue
                if not isinstance(ids, list):
                    ids = [ids]
                for tid in ids:
                    if isinstance(tid, (dict, list)) or tid is None:
                        log.add(path.name, "split entries that are not ids ignored", short_repr(tid))
                        continue
                    tid = normalize_id(str(tid))
                    if out.setdefault(tid, split) != split:
                        log.add(path.name, "ids listed in several splits (first kept)", tid)
            return out
        header, rows = read_csv(path, log)
        i_id = find_column(header, ID_COLUMNS, path)
        i_s = find_column(header, SPLIT_NAMES, path, what="split")
        for n, row in enumerate(rows, start=2):
            if max(i_id, i_s) >= len(row) or not row[i_id] or not row[i_s]:
                log.add(path.name, "incomplete rows skipped", f"line {n}")
                continue
            tid = normalize_id(row[i_id])
            if out.setdefault(tid, row[i_s]) != row[i_s]:
                log.add(path.name, "ids listed in several splits (first kept)", tid)
        return out
