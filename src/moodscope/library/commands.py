"""The command-line verbs ``moodscope query`` and ``moodscope playlist``: their arguments and what they run."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..errors import shown_path
from .filters import DEFAULT_TAG_MIN, FORMATS, mood_list
from .formats import (
    csv_text,
    emit_text,
    format_of,
    jsonl_text,
    m3u_text,
    playlist_table_text,
    stored_result,
    table_text,
    warn,
)
from .playlist import MAX_MEAN_DISTANCE, playlist
from .query import query


# -- command line ---------------------------------------------------------------------------------------------
def _mood_help(flag: str) -> str:
    return f"a mood name ({mood_list()}) or a point V,A in [-1, 1] (write {flag}=-0.5,0.2 when V is negative)"


def add_query_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="OUT", help="the --out folder of a predict run (holds moodscope.sqlite)")
    p.add_argument(
        "--model",
        help="the model whose results to use: its id or a prefix such as its name (needed when the store "
        "holds results of several models; the error lists them)",
    )
    f = p.add_argument_group("filters (all must hold)")
    f.add_argument(
        "--quadrant",
        action="append",
        metavar="Q[,Q...]",
        help="in any of these quadrants: happy, angry, sad, calm or a synonym (energetic, tense, depressed, "
        "relaxed, ...); zero counts as positive. e.g. --quadrant happy,calm",
    )
    f.add_argument(
        "--valence",
        metavar="LO,HI",
        help="valence within [LO, HI]; leave a side empty for no bound. e.g. --valence 0.3,1, --valence 0.3, "
        "or --valence=-1,-0.3 (= needed when LO is negative)",
    )
    f.add_argument(
        "--arousal", metavar="LO,HI", help="arousal within [LO, HI], as --valence. e.g. --arousal ,-0.2"
    )
    f.add_argument(
        "--tag",
        action="append",
        metavar="NAME[:MIN]",
        help=f"tag probability at least MIN (default {DEFAULT_TAG_MIN}); repeat for several (all must hold). "
        "e.g. --tag happy:0.3 --tag energetic",
    )
    f.add_argument(
        "--near",
        metavar="MOOD",
        help=f"sort by distance to MOOD, closest first (adds a dist column): {_mood_help('--near')}. "
        "e.g. --near calm --limit 50: the 50 calmest tracks",
    )
    f.add_argument(
        "--within", type=float, metavar="R", help="with --near: only tracks at most R from it (e.g. 0.25)"
    )
    o = p.add_argument_group("order and output")
    o.add_argument(
        "--sort",
        metavar="KEY[,KEY...]",
        help="sort by valence, arousal, duration, path, added or a tag's probability; -KEY: descending "
        "(write --sort=-arousal); tracks without a value come last. With --near, --near (and --limit) "
        "chooses and --sort orders. Default: by path",
    )
    o.add_argument("--limit", type=int, metavar="N", help="at most N tracks")
    o.add_argument(
        "--format",
        choices=FORMATS,
        help="table (aligned columns: file, V, A, quadrant, top tags), csv (every scalar column and one "
        "column per tag), jsonl (the stored result of each track, one JSON per line) or m3u (extended M3U "
        "playlist with absolute paths). Default: from --out's extension (.m3u/.m3u8, .csv, .jsonl), else table",
    )
    o.add_argument("--out", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    o.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it exists (never the store, its folder's files or an analysed input)",
    )


def add_playlist_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="OUT", help="the --out folder of a predict run (holds moodscope.sqlite)")
    p.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="MOOD",
        help=f"where the playlist starts: {_mood_help('--from')}",
    )
    p.add_argument(
        "--to",
        dest="end",
        required=True,
        metavar="MOOD",
        help="where it ends (as --from). e.g. --from calm --to energetic",
    )
    p.add_argument(
        "--via",
        action="append",
        metavar="MOOD",
        help="pass through this mood on the way (repeat for several, in order). e.g. --from happy --via sad --to calm",
    )
    p.add_argument(
        "--n", type=int, default=20, metavar="N", help="number of tracks (default 20), each used once"
    )
    p.add_argument("--model", help="the model whose results to use (as in moodscope query)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="m3u, table (step, target point, V, A, distance to the target, file), csv or jsonl. Default: "
        "table on stdout; with --out, from its extension, else m3u",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE (atomically), e.g. calm-to-energetic.m3u")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it exists (never the store, its folder's files or an analysed input)",
    )


def _render(fmt: str, rows: list[dict], verb: str, table) -> str:
    if fmt == "m3u":
        text, skipped = m3u_text(rows)
        if skipped:
            warn(verb, f"left {skipped} tracks out of the M3U: their paths hold a line break")
        return text
    if fmt == "csv":
        return csv_text(
            rows, first=("step", "target_valence", "target_arousal", "distance") if verb == "playlist" else ()
        )
    if fmt == "jsonl":
        return jsonl_text(rows)
    return table(rows)


def cmd_query(a) -> int:
    fmt = format_of(a, "table")
    rows = query(
        a.store,
        model=a.model,
        quadrant=a.quadrant,
        valence=a.valence,
        arousal=a.arousal,
        tags=a.tag,
        near=a.near,
        within=a.within,
        sort=a.sort,
        limit=a.limit,
        full=fmt == "jsonl",
    )
    if not rows:
        print(f"moodscope query: no track of {shown_path(a.store)} matches", file=sys.stderr)
    damaged = [r for r in rows if r.get("damaged")]
    if damaged:
        warn("query", f"{shown_path(a.store)}: {len(damaged)} tracks have damaged stored values, shown as "
              f"missing (e.g. {shown_path(damaged[0]['path'])}: {', '.join(damaged[0]['damaged'])})")  # fmt: skip
    if fmt == "jsonl":
        bad = [r for r in rows if stored_result(r) is None]
        if bad:
            warn("query", f"{shown_path(a.store)}: left out {len(bad)} tracks whose stored result is not JSON "
                  f"(e.g. {shown_path(bad[0]['path'])})")  # fmt: skip
    text = _render(fmt, rows, "query", table_text)
    if fmt == "table" and rows:
        text += f"{len(rows)} track{'s' if len(rows) != 1 else ''} ({rows[0]['model_id']})\n"
    emit_text(text, a.out, a.store, overwrite=a.overwrite)
    if a.out:
        print(f"moodscope query: wrote {len(rows)} tracks to {shown_path(a.out)}", file=sys.stderr)
    return 0


def cmd_playlist(a) -> int:
    fmt = format_of(a, "m3u" if a.out else "table")
    rows = playlist(a.store, a.start, a.end, a.n, model=a.model, via=a.via, full=fmt == "jsonl")
    dist = np.asarray([r["distance"] for r in rows])
    summary = f"mean distance {dist.mean():.2f}, max {dist.max():.2f} ({rows[0]['model_id']})"
    text = _render(fmt, rows, "playlist", playlist_table_text)
    if fmt == "table":
        text += f"{len(rows)} tracks; {summary}\n"
    if dist.mean() > MAX_MEAN_DISTANCE:
        warn(
            "playlist",
            f"{shown_path(a.store)}: the tracks are on average {dist.mean():.2f} from their points of the path "
            f"(more than {MAX_MEAN_DISTANCE}): the library has too few tracks near it",
        )
    emit_text(text, a.out, a.store, overwrite=a.overwrite)
    if a.out:
        print(
            f"moodscope playlist: wrote {len(rows)} tracks to {shown_path(a.out)}; {summary}", file=sys.stderr
        )
    return 0
