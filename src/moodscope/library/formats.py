"""The output formats of ``query`` and ``playlist``: table, CSV, JSON lines, M3U; and where they are written
(never over the store, a results file or an analysed audio file; an existing file only with ``--overwrite``)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import OutputError, UsageError, shown_path
from ..fileio import write_atomic
from .filters import FORMAT_BY_SUFFIX, SCALAR_COLUMNS, point_text
from .store import STORE_NAME, ResultStore


# -- output -------------------------------------------------------------------------------------------------
def _num(x, fmt: str = "+.2f", width: int = 6) -> str:
    return f"{x:{fmt}}".rjust(width) if isinstance(x, (int, float)) and math.isfinite(x) else "—".rjust(width)


def _top_tags(tags: dict | None, k: int = 3) -> str:
    if not tags:
        return ""
    best = sorted((t for t in tags if isinstance(tags[t], (int, float))), key=lambda t: -tags[t])[:k]
    return ", ".join(f"{t} {tags[t]:.2f}" for t in best)


def short_paths(paths: Sequence[str], width: int = 48) -> list[str]:
    """Paths for a table: relative to the folder all of them are in, then cut to ``width`` characters from the
    left (``…`` marks the cut), control characters escaped."""
    paths = [str(p) for p in paths]
    try:
        root = (
            os.path.commonpath([os.path.dirname(p) for p in paths])
            if len(paths) > 1
            else os.path.dirname(paths[0])
        )
    except (ValueError, IndexError):  # mixed absolute/relative, or none
        root = ""
    out = []
    for p in paths:
        s = shown_path(os.path.relpath(p, root) if root else p)
        out.append(s if len(s) <= width else "…" + s[-(width - 1) :])
    return out


def _table(header: Sequence[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)]) + "\n"


def table_text(rows: list[dict]) -> str:
    """The aligned table of :func:`query` rows (file, V, A, quadrant, top tags; distance with ``near``)."""
    near = bool(rows) and "distance" in rows[0]
    header = ["file", "V", "A", "quadrant", *(["dist"] if near else []), "tags"]
    files = short_paths([r["path"] for r in rows]) if rows else []
    body = [
        [
            f,
            _num(r["valence"]),
            _num(r["arousal"]),
            r["quadrant"] or "",
            *([_num(r["distance"], ".2f", 4)] if near else []),
            _top_tags(r["tags"]),
        ]
        for f, r in zip(files, rows)
    ]
    return _table(header, body, right={1, 2, 4} if near else {1, 2})


def playlist_table_text(rows: list[dict]) -> str:
    """The table of :func:`playlist` rows: step, waypoint, file, V, A, distance."""
    header = ["step", "target", "V", "A", "dist", "file"]
    files = short_paths([r["path"] for r in rows])
    body = [
        [
            str(r["step"]),
            point_text((r["target_valence"], r["target_arousal"])),
            _num(r["valence"]),
            _num(r["arousal"]),
            _num(r["distance"], ".2f", 4),
            f,
        ]
        for f, r in zip(files, rows)
    ]
    return _table(header, body, right={0, 2, 3, 4})


def csv_text(rows: list[dict], first: Sequence[str] = ()) -> str:
    """CSV of ``rows``: the ``first`` columns, the scalar columns, ``distance`` where present, then one column
    per tag (its probability; named ``tag:NAME`` where NAME is also a column)."""
    cols = [*first, *SCALAR_COLUMNS]
    if rows and "distance" in rows[0] and "distance" not in cols:
        cols.append("distance")
    tag_names: dict[str, None] = {}
    for r in rows:
        tag_names.update(dict.fromkeys(r.get("tags") or {}))
    tag_cols = [(f"tag:{t}" if t in cols else t, t) for t in tag_names]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*cols, *(c for c, _ in tag_cols)])
    for r in rows:
        tags = r.get("tags") or {}
        w.writerow([_cell(r.get(c)) for c in cols] + [_cell(tags.get(t)) for _, t in tag_cols])
    return buf.getvalue()


def _cell(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x) if math.isfinite(x) else ""
    return str(x)


def stored_result(r: dict) -> dict | None:
    """The stored ``result`` of a row as an object, or None where it is not one (a damaged store)."""

    def no_constants(name):  # NaN / Infinity are not JSON
        raise ValueError(name)

    try:
        value = json.loads(r.get("result") or "", parse_constant=no_constants)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def jsonl_text(rows: list[dict]) -> str:
    """One stored ``result`` JSON object per line (rows of ``query(..., full=True)``); a row whose stored
    result is not a JSON object is left out (:func:`cmd_query` says how many)."""
    out = []
    for r in rows:
        value = stored_result(r)
        if (
            value is not None
        ):  # moodscope stores compact JSON, written as it is; anything indented is made one line
            out.append((r["result"] if "\n" not in r["result"] else json.dumps(value)) + "\n")
    return "".join(out)


def m3u_text(rows: list[dict]) -> tuple[str, int]:
    """Extended M3U (UTF-8): ``#EXTM3U``, then ``#EXTINF:<seconds>,<file name>`` and the absolute path per
    track (seconds -1 where unknown). Returns the text and how many tracks were left out because their path
    holds a line break (which M3U cannot hold)."""
    lines, skipped = ["#EXTM3U"], 0
    for r in rows:
        p = os.path.abspath(r["path"])
        if "\n" in p or "\r" in p:
            skipped += 1
            continue
        d = r.get("duration_s")
        secs = int(round(d)) if isinstance(d, (int, float)) and math.isfinite(d) else -1
        title = "".join(c if c.isprintable() else " " for c in Path(p).stem)
        lines += [f"#EXTINF:{secs},{title}", p]
    return "\n".join(lines) + "\n", skipped


def format_of(a, default: str) -> str:
    if a.format:
        return a.format
    if a.out:
        return FORMAT_BY_SUFFIX.get(Path(a.out).suffix.lower(), default)
    return "table"


def emit_text(text: str, out: str | None, store_folder, *, overwrite: bool = False) -> None:
    """``text`` to stdout, or atomically into ``out``: never over an existing file unless ``overwrite``, and
    never -- not even then -- over the store, a file in the store's folder (what ``predict`` wrote there), or a
    file the store analysed (an input: an audio file replaced by a text table is data lost)."""
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(out)
    folder = Path(store_folder)
    folder = folder.parent if folder.name == STORE_NAME and folder.is_file() else folder
    store_file = folder / STORE_NAME
    real = os.path.realpath(target)
    if real in {os.path.realpath(f"{store_file}{s}") for s in ("", "-wal", "-shm")}:
        raise UsageError(f"{shown_path(out)}: --out would overwrite the results store")
    if target.is_dir():
        raise OutputError(f"{shown_path(out)}: --out is a folder; give a file name (e.g. list.m3u)")
    if os.path.lexists(target):
        if os.path.dirname(real) == os.path.realpath(folder) or _analysed(
            folder, real, str(target.absolute())
        ):
            raise UsageError(
                f"{shown_path(out)}: --out would overwrite "
                + (
                    "a file of the results folder"
                    if os.path.dirname(real) == os.path.realpath(folder)
                    else "an analysed input file"
                )
                + " (never replaced, even with --overwrite); write elsewhere"
            )
        if not overwrite:
            raise UsageError(f"{shown_path(out)}: --out exists (add --overwrite to replace it)")
    try:
        write_atomic(target, text)
    except OSError as e:
        raise OutputError(f"{shown_path(out)}: cannot write ({e.strerror or e})") from None


def _analysed(folder: Path, *paths: str) -> bool:
    """Whether the store of ``folder`` holds a track or failure at one of ``paths``."""
    try:
        with ResultStore(folder, create=False) as store:
            return any(store.has_path(p) for p in paths)
    except Exception:  # an unreadable store was reported earlier; this check only protects files
        return False


def warn(verb: str, message: str) -> None:
    print(f"moodscope {verb}: warning: {message}", file=sys.stderr)
