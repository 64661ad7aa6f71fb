"""Querying a results store and building mood playlists (``moodscope query``, ``moodscope playlist``).

Both read ``OUT/moodscope.sqlite`` (:mod:`moodscope.library.store`) and never write to it.

Moods
-----
A mood is a named point of the valence-arousal plane or a point written ``V,A`` (e.g. ``0.5,-0.2``; both in
[-1, 1]). The four quadrants of :mod:`moodscope.emotion` are at their centres, ±0.5, and have synonyms:

============  =============  ==========================================
point         quadrant       names
============  =============  ==========================================
(+0.5, +0.5)  happy (V+ A+)  happy, joyful, excited, energetic, cheerful
(-0.5, +0.5)  angry (V- A+)  angry, tense, aggressive, anxious
(-0.5, -0.5)  sad (V- A-)    sad, depressed, melancholic, gloomy
(+0.5, -0.5)  calm (V+ A-)   calm, relaxed, peaceful, serene
( 0.0,  0.0)  (none)         neutral
============  =============  ==========================================

(:data:`MOODS` is the table.) A quadrant filter (``--quadrant calm``) uses the sign convention of
:mod:`moodscope.emotion` (a value of exactly zero counts as positive), not the distance to the centre.

Models
------
A store holds one row per (file, model id). When it holds results of one model, that model is used; when it
holds several, ``--model`` must choose one (its full id, or a prefix such as the model's name when only one id
starts with it): results of two models are not on one scale, and picking one silently (e.g. the most recent)
would mix up a re-run with a retrained model.

Playlists
---------
:func:`playlist` puts ``n`` waypoints evenly (by length) along the path from ``start`` through the ``via``
points to ``end`` (both ends included; ``n = 1`` is the start alone) and chooses ``n`` distinct tracks, one per
waypoint, minimising the sum of the distances between each track and its waypoint (an optimal assignment,
:func:`scipy.optimize.linear_sum_assignment`). The candidates are the ``n`` nearest tracks of every waypoint,
which always contain an optimal choice (a waypoint matched farther away has one of its ``n`` nearest tracks
free, and taking it is never worse), so the result is exact and fast on 100 000 tracks. Only when
``n`` × candidates would exceed :data:`MAX_CELLS` are fewer neighbours taken (near-optimal). Files with the same
content (duplicates: one ``content_hash``) count as one track.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..emotion import QUADRANT_NAMES, QUADRANT_TAGS, quadrant_index
from ..errors import OutputError, UsageError, shown_path
from ..fileio import write_atomic
from .store import STORE_NAME, ResultStore, decode_row

# -- moods ------------------------------------------------------------------------------------------------
#: synonyms of the quadrant tags of :mod:`moodscope.emotion` (each names the quadrant's centre)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "happy": ("joyful", "excited", "energetic", "cheerful"),
    "angry": ("tense", "aggressive", "anxious"),
    "sad": ("depressed", "melancholic", "gloomy"),
    "calm": ("relaxed", "peaceful", "serene"),
}


def _quadrant_centres() -> dict[str, tuple[float, float]]:
    """``{quadrant tag: centre}``, the centre (±0.5, ±0.5) found through :func:`quadrant_index`."""
    centres = {}
    for v in (0.5, -0.5):
        for a in (0.5, -0.5):
            centres[QUADRANT_TAGS[int(quadrant_index(v, a))]] = (v, a)
    return centres


#: the quadrant centres
CENTRES: dict[str, tuple[float, float]] = _quadrant_centres()

#: every named mood point: the quadrant tags, their synonyms and ``neutral`` (the origin)
MOODS: dict[str, tuple[float, float]] = {
    **CENTRES,
    **{syn: CENTRES[q] for q, syns in SYNONYMS.items() for syn in syns},
    "neutral": (0.0, 0.0),
}

#: a playlist whose chosen tracks are farther than this from their waypoints on average is warned about
MAX_MEAN_DISTANCE = 0.3
#: the largest cost matrix (waypoints × candidate tracks) of a playlist's assignment
MAX_CELLS = 5_000_000
#: what ``--tag NAME`` without ``:MIN`` asks of a tag's probability
DEFAULT_TAG_MIN = 0.5

#: the columns of ``query`` results in CSV order (the store's scalar columns)
SCALAR_COLUMNS = (
    "path", "model_id", "content_hash", "size", "mtime_ns", "model", "duration_s", "valence", "arousal",
    "quadrant", "hop_s", "seconds", "added",
)  # fmt: skip
_FULL_COLUMNS = ("curve_valence", "curve_arousal", "result")
#: ``--sort`` keys that are columns (anything else must be a tag of the model)
SORT_COLUMNS = {
    "valence": "valence",
    "arousal": "arousal",
    "duration": "duration_s",
    "path": "path",
    "added": "added",
}
#: ``--format`` values, and the format an ``--out`` file's extension implies
FORMATS = ("table", "csv", "jsonl", "m3u")
_BY_SUFFIX = {
    ".m3u": "m3u",
    ".m3u8": "m3u",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "table",
}


def _mood_list() -> str:
    groups = [f"{'/'.join((q, *SYNONYMS[q]))} {_pt(CENTRES[q])}" for q in QUADRANT_TAGS]
    return "; ".join([*groups, f"neutral {_pt(MOODS['neutral'])}"])


def _pt(p: Sequence[float]) -> str:
    return f"({p[0]:+.2f},{p[1]:+.2f})"


def parse_point(text: str | Sequence[float], what: str = "mood") -> tuple[float, float]:
    """A mood name of :data:`MOODS` (any case) or ``"V,A"`` (or a pair of numbers), both in [-1, 1]."""
    if not isinstance(text, str):
        pair = tuple(text)
        if len(pair) != 2:
            raise UsageError(f"{what}: a point is two numbers (valence, arousal), got {pair!r}")
        return _check_point(pair, what, repr(pair))
    name = text.strip().lower()
    if name in MOODS:
        return MOODS[name]
    parts = name.split(",")
    if len(parts) == 2:
        try:
            pair = (float(parts[0]), float(parts[1]))
        except ValueError:
            pass
        else:
            return _check_point(pair, what, repr(text))
    raise UsageError(
        f"{what}: unknown mood {text!r} (known: {_mood_list()}; or a point V,A such as 0.5,-0.2)"
    )


def _check_point(pair, what: str, shown: str) -> tuple[float, float]:
    try:
        v, a = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        raise UsageError(f"{what}: {shown} is not a point V,A") from None
    if not (math.isfinite(v) and math.isfinite(a) and -1 <= v <= 1 and -1 <= a <= 1):
        raise UsageError(f"{what}: point {shown} is outside [-1, 1] x [-1, 1]")
    return v, a


def parse_range(text: str | Sequence[float | None] | None, what: str) -> tuple[float | None, float | None]:
    """``"LO,HI"`` (either side may be empty: open) or a pair ``(lo, hi)`` (None: open); within [-1, 1]."""
    if text is None:
        return None, None
    if isinstance(text, str):
        parts = text.split(",")
        if len(parts) != 2:
            raise UsageError(f"{what} {text!r}: give LO,HI (e.g. 0.2,1; 0.2, for >= 0.2; ,-0.3 for <= -0.3)")
        try:
            bounds = [float(p) if p.strip() else None for p in parts]
        except ValueError:
            raise UsageError(f"{what} {text!r}: LO and HI must be numbers (e.g. 0.2,1)") from None
    else:
        bounds = list(text)
        if len(bounds) != 2:
            raise UsageError(f"{what} {text!r}: give (lo, hi)")
        try:
            bounds = [None if b is None else float(b) for b in bounds]
        except (TypeError, ValueError):
            raise UsageError(f"{what} {text!r}: lo and hi must be numbers or None") from None
    lo, hi = bounds
    if lo is None and hi is None:
        raise UsageError(f"{what} {text!r}: empty range (give LO, HI or both)")
    for b in (lo, hi):
        if b is not None and not (math.isfinite(b) and -1 <= b <= 1):
            raise UsageError(f"{what} {text!r}: bounds must be within [-1, 1]")
    if lo is not None and hi is not None and lo > hi:
        raise UsageError(f"{what} {text!r}: LO {lo:g} is above HI {hi:g}")
    return lo, hi


def parse_tag(spec: str | tuple[str, float]) -> tuple[str, float]:
    """``"NAME"`` (probability >= :data:`DEFAULT_TAG_MIN`), ``"NAME:MIN"`` or ``(name, min)``; MIN in [0, 1]."""
    if isinstance(spec, str):
        name, sep, lo = spec.rpartition(":")
        if not sep:
            name, lo = spec, None
        try:
            p = DEFAULT_TAG_MIN if lo is None else float(lo)
        except ValueError:
            raise UsageError(f"--tag {spec!r}: give NAME or NAME:MIN (e.g. happy:0.3)") from None
    else:
        name, p = spec
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise UsageError(f"tag {spec!r}: the minimum probability must be a number") from None
    name = name.strip()
    if not name:
        raise UsageError(f"--tag {spec!r}: no tag name")
    if not (math.isfinite(p) and 0 <= p <= 1):
        raise UsageError(f"--tag {spec!r}: the minimum probability must be within [0, 1]")
    return name, p


def parse_quadrants(spec: str | Iterable[str] | None) -> list[int]:
    """Quadrant names (tags, synonyms or display names such as ``calm (V+ A-)``), comma-separated or a list,
    as indices into :data:`moodscope.emotion.QUADRANT_TAGS`."""
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
    out = []
    for item in items:
        name = item.strip().lower()
        if name in (n.lower() for n in QUADRANT_NAMES):
            name = name.split(" (")[0]
        if name not in MOODS or name == "neutral":
            raise UsageError(
                f"--quadrant {item.strip()!r}: not a quadrant (known: "
                + "; ".join("/".join((q, *SYNONYMS[q])) for q in QUADRANT_TAGS)
                + ")"
            )
        q = int(quadrant_index(*MOODS[name]))
        if q not in out:
            out.append(q)
    return out


def parse_sort(spec: str | Iterable[str] | None) -> list[tuple[str, bool]]:
    """``"valence,-arousal"`` or a list of keys: ``[(key, descending)]``; a key is a column of
    :data:`SORT_COLUMNS` or a tag name (checked against the store later)."""
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    keys = []
    for item in items:
        key = item.strip()
        desc = key.startswith("-")
        key = key.lstrip("-+").strip()
        if not key:
            raise UsageError(f"--sort {spec!r}: empty key (keys: {', '.join(SORT_COLUMNS)} or a tag name)")
        keys.append((key, desc))
    return keys


# -- the store ----------------------------------------------------------------------------------------------
def _where(folder) -> str:
    return shown_path(folder)


#: the largest --limit (far beyond any library; SQLite's LIMIT takes a 64-bit integer)
MAX_LIMIT = 1 << 31


def _open(folder: str | os.PathLike) -> ResultStore:
    """The store of ``folder`` (or of the ``moodscope.sqlite`` file itself), refused when it has no tracks."""
    folder = Path(folder)
    if folder.name == STORE_NAME and folder.is_file():
        folder = folder.parent
    store = ResultStore(folder, create=False)
    try:
        if store.count() == 0:
            failed = len(store.failures())
            raise OutputError(
                f"{_where(store.folder)}: the results store holds no tracks yet"
                + (f" ({failed} files failed; see predict's summary)" if failed else "")
            )
    except BaseException:
        store.close()
        raise
    return store


def choose_model(store: ResultStore, model: str | None) -> str:
    """The model id to use: ``model`` (a full id or an unambiguous prefix), else the store's only one."""
    ids = store.model_ids()
    where = _where(store.folder)

    def listing(names):
        return ", ".join(f"{m} ({store.count(m)} tracks)" for m in names)

    if model is None:
        if len(ids) == 1:
            return ids[0]
        raise UsageError(
            f"{where}: the store holds results of {len(ids)} models; choose one with --model: {listing(ids)}"
        )
    if model in ids:
        return model
    hits = [m for m in ids if m.startswith(model)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise UsageError(
            f"{where}: --model {model!r} matches {len(hits)} models; give more of the id: {listing(hits)}"
        )
    raise UsageError(f"{where}: no results of model {model!r} in the store (it has: {listing(ids)})")


def _tag_names(store: ResultStore, mid: str) -> list[str]:
    for (tags,) in store.db.execute(
        "SELECT tags FROM tracks WHERE model_id = ? AND tags IS NOT NULL ORDER BY rowid LIMIT 100", (mid,)
    ):
        decoded = decode_row({"tags": tags})["tags"]
        if decoded is not None:  # the first row whose tags are readable (a damaged one is skipped)
            return list(decoded)
    return []


def _resolve_tag(name: str, known: list[str], where: str, mid: str, flag: str) -> str:
    if not known:
        raise UsageError(
            f"{where}: {flag} {name!r}: model {mid} gives no tags (use a tagger model's results)"
        )
    if name in known:
        return name
    folded = [k for k in known if k.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    shown = ", ".join(known[:30]) + (f", ... ({len(known)} in all)" if len(known) > 30 else "")
    raise UsageError(f"{where}: {flag} {name!r}: unknown tag of model {mid} (its tags: {shown})")


class _Sql:
    """A WHERE clause and ORDER BY terms with named parameters."""

    def __init__(self, db: sqlite3.Connection):
        self.params: dict = {}
        self.json = _has_json(db)
        db.create_function("moodscope_tag", 2, _tag_value, deterministic=True)

    def param(self, value) -> str:
        key = f"p{len(self.params)}"
        self.params[key] = value
        return f":{key}"

    def tag(self, name: str) -> str:
        if self.json and '"' not in name and "\\" not in name:
            # json_valid first: a row damaged by hand is "no value", not a failed query
            path = self.param(f"$.{chr(34)}{name}{chr(34)}")
            return f"(CASE WHEN json_valid(tags) THEN json_extract(tags, {path}) END)"
        return f"moodscope_tag(tags, {self.param(name)})"


def _has_json(db: sqlite3.Connection) -> bool:
    try:
        db.execute("SELECT json_extract('{\"a\": 1}', '$.a')").fetchone()
    except sqlite3.OperationalError:
        return False
    return True


def _tag_value(tags: str | None, name: str):
    if tags is None:
        return None
    v = (decode_row({"tags": tags})["tags"] or {}).get(name)
    return v if isinstance(v, (int, float)) else None


def _quadrant_sql(q: int) -> str:
    """The SQL condition of quadrant ``q``, with the sign convention of :mod:`moodscope.emotion` (0 is positive)."""
    v, a = CENTRES[QUADRANT_TAGS[q]]
    return f"(valence {'>=' if v > 0 else '<'} 0 AND arousal {'>=' if a > 0 else '<'} 0)"


def query(
    store_folder: str | os.PathLike,
    *,
    model: str | None = None,
    quadrant: str | Iterable[str] | None = None,
    valence: str | Sequence[float | None] | None = None,
    arousal: str | Sequence[float | None] | None = None,
    tags: Iterable[str | tuple[str, float]] | None = None,
    near: str | Sequence[float] | None = None,
    within: float | None = None,
    sort: str | Iterable[str] | None = None,
    limit: int | None = None,
    full: bool = False,
) -> list[dict]:
    """The tracks of a results store that pass every filter, sorted; one dict per track.

    Parameters
    ----------
    store_folder : the ``--out`` folder of a predict run (or its ``moodscope.sqlite``)
    model : model id or unambiguous prefix; default: the store's only model (several: required)
    quadrant : quadrant names (tags such as ``calm``, synonyms, or ``"happy,calm"``): any of them
    valence, arousal : ``(lo, hi)`` or ``"LO,HI"``, inclusive; a None/empty side is open
    tags : ``[("happy", 0.3), "calm"]``: each tag's probability >= its minimum (default 0.5); all must hold
    near : a mood name of :data:`MOODS` or a point; sorts by distance to it, closest first, and adds a
        ``distance`` key. With ``sort`` too, ``near`` (with ``limit``/``within``) chooses and ``sort`` orders.
    within : with ``near``: only tracks at most this far from it
    sort : ``"valence,-arousal"`` (``-``: descending): columns of :data:`SORT_COLUMNS` or tag names;
        tracks without a value come last; ties (and no sort) by path
    limit : at most this many tracks (>= 1)
    full : also return the curves and the stored ``result`` JSON (text)

    Returns
    -------
    list of dict: the store's scalar columns (:data:`SCALAR_COLUMNS`), ``tags`` decoded (a dict or None),
    ``distance`` with ``near``, and with ``full`` ``curve_valence``/``curve_arousal`` (lists) and ``result``.
    Tracks without valence/arousal (a tagger) pass no quadrant, range or ``near`` filter.
    """
    where = _where(store_folder)
    try:
        quads = parse_quadrants(quadrant)
        v_lo, v_hi = parse_range(valence, "--valence")
        a_lo, a_hi = parse_range(arousal, "--arousal")
        tag_specs = [parse_tag(t) for t in (tags or [])]
        point = parse_point(near, "--near") if near is not None else None
        keys = parse_sort(sort)
        if within is not None:
            if point is None:
                raise UsageError("--within needs --near")
            if not (math.isfinite(within) and within >= 0):
                raise UsageError(f"--within {within:g}: give a distance >= 0")
        if limit is not None and limit < 1:
            raise UsageError(f"--limit {limit}: give 1 or more")
        if limit is not None and limit > MAX_LIMIT:  # SQLite's integers are 64-bit: 2**63 overflows
            raise UsageError(f"--limit {limit}: at most {MAX_LIMIT}")
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None

    with _open(store_folder) as store:
        mid = choose_model(store, model)
        where = _where(store.folder)
        sql = _Sql(store.db)
        known = _tag_names(store, mid) if tag_specs or keys else []
        cond = [f"model_id = {sql.param(mid)}"]
        for col, lo, hi in (("valence", v_lo, v_hi), ("arousal", a_lo, a_hi)):
            if lo is not None:
                cond.append(f"{col} >= {sql.param(lo)}")
            if hi is not None:
                cond.append(f"{col} <= {sql.param(hi)}")
        if quads:
            cond.append("(" + " OR ".join(_quadrant_sql(q) for q in quads) + ")")
        for name, lo in tag_specs:
            name = _resolve_tag(name, known, where, mid, "--tag")
            cond.append(f"{sql.tag(name)} >= {sql.param(lo)}")
        d2 = None
        if point is not None:
            pv, pa = (sql.param(x) for x in point)
            d2 = f"((valence - {pv}) * (valence - {pv}) + (arousal - {pa}) * (arousal - {pa}))"
            cond.append("valence IS NOT NULL AND arousal IS NOT NULL")
            if within is not None:
                cond.append(f"{d2} <= {sql.param(within * within + 1e-12)}")
        order = []
        for key, desc in keys:
            expr = SORT_COLUMNS.get(key) or sql.tag(_resolve_tag(key, known, where, mid, "--sort"))
            order.append(f"{expr} IS NULL, {expr}{' DESC' if desc else ''}")
        cols = ", ".join(
            (*SCALAR_COLUMNS, "tags", *(_FULL_COLUMNS if full else ()), *([f"{d2} AS _d2"] if d2 else []))
        )
        lim = f" LIMIT {sql.param(int(limit))}" if limit is not None else ""
        base = f"SELECT {cols} FROM tracks WHERE {' AND '.join(cond)}"
        if d2 is not None and order:
            text = f"SELECT * FROM ({base} ORDER BY _d2, path{lim}) ORDER BY {', '.join(order)}, path"
        elif d2 is not None:
            text = f"{base} ORDER BY _d2, path{lim}"
        else:
            text = f"{base} ORDER BY {', '.join([*order, 'path'])}{lim}"
        rows = []
        for r in store.db.execute(text, sql.params):
            row = dict(r)
            result = row.pop("result", None)
            row = decode_row(row)
            if full:
                row["result"] = result
            if point is not None:
                row["distance"] = math.sqrt(max(row.pop("_d2"), 0.0))  # the number it was sorted by
            rows.append(row)
    return rows


# -- playlists ----------------------------------------------------------------------------------------------
def waypoints(points: Sequence[Sequence[float]], n: int) -> np.ndarray:
    """``n`` points evenly spaced (by length) along the polyline through ``points``, both ends included
    (``n = 1``: the first point). Shape (n, 2)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if n == 1 or len(p) == 1:
        return np.repeat(p[:1], n, axis=0)
    seg = np.hypot(*np.diff(p, axis=0).T)
    keep = np.concatenate([[True], seg > 0])  # drop repeated points: np.interp wants increasing lengths
    p, cum = p[keep], np.concatenate([[0.0], np.cumsum(seg[seg > 0])])
    if len(p) == 1:
        return np.repeat(p, n, axis=0)
    s = np.linspace(0.0, cum[-1], n)
    return np.column_stack([np.interp(s, cum, p[:, 0]), np.interp(s, cum, p[:, 1])])


def assign(targets: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Distinct ``points`` (indices), one per target in target order, minimising the sum of the distances;
    returns ``(indices, distances, exact)``. Needs ``len(points) >= len(targets)``."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import cKDTree

    n, total = len(targets), len(points)
    tree = cKDTree(points)

    def candidates(k: int) -> np.ndarray:
        _, idx = tree.query(targets, k=k)
        return np.unique(np.asarray(idx).reshape(n, -1))

    k = min(n, total)
    cand, exact = candidates(k), True
    while n * cand.size > MAX_CELLS and k > 1:  # only for very long playlists: fewer neighbours each
        fewer = candidates(k // 2)
        if fewer.size < n:
            break
        k, cand, exact = k // 2, fewer, False
    cost = np.hypot(
        targets[:, None, 0] - points[cand][None, :, 0], targets[:, None, 1] - points[cand][None, :, 1]
    )
    rows, cols = linear_sum_assignment(cost)
    order = np.argsort(rows)
    return cand[cols[order]], cost[rows[order], cols[order]], exact


def playlist(
    store_folder: str | os.PathLike,
    start: str | Sequence[float],
    end: str | Sequence[float],
    n: int,
    *,
    model: str | None = None,
    via: Iterable[str | Sequence[float]] | None = None,
    full: bool = False,
) -> list[dict]:
    """``n`` distinct tracks whose V-A points follow the path ``start`` → ``via``... → ``end`` (see the module
    docstring); one dict per track in path order: the store's scalar columns and ``tags`` (as :func:`query`)
    plus ``step`` (1-based), ``target_valence``, ``target_arousal`` (its waypoint) and ``distance`` (to it);
    with ``full`` also the curves and the stored ``result`` JSON (text)."""
    where = _where(store_folder)
    try:
        path = [
            parse_point(start, "--from"),
            *(parse_point(p, "--via") for p in (via or [])),
            parse_point(end, "--to"),
        ]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise UsageError(f"--n {n!r}: give a number of tracks, 1 or more")
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None
    n = int(n)
    with _open(store_folder) as store:
        mid = choose_model(store, model)
        where = _where(store.folder)
        ids, pts, seen, damaged = [], [], set(), 0
        for rowid, digest, v, a in store.db.execute(
            "SELECT rowid, content_hash, valence, arousal FROM tracks WHERE model_id = ? "
            "AND valence IS NOT NULL AND arousal IS NOT NULL ORDER BY path",
            (mid,),
        ):
            if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (v, a)):
                damaged += 1  # text or inf written into the store by hand: not a point
                continue
            if digest not in seen:  # duplicates of one file are one track
                seen.add(digest)
                ids.append(rowid)
                pts.append((v, a))
        if damaged:
            _warn(
                "playlist", f"{where}: left out {damaged} tracks whose stored valence/arousal is not a number"
            )
        if not ids:
            raise UsageError(f"{where}: model {mid} gives no valence/arousal; a playlist needs them")
        if n > len(ids):
            raise UsageError(
                f"{where}: --n {n} is more than the {len(ids)} distinct tracks with valence and arousal "
                f"of model {mid}"
            )
        targets = waypoints(path, n)
        chosen, dist, _ = assign(targets, np.asarray(pts, dtype=np.float64))
        picked = [ids[i] for i in chosen]
        cols = ", ".join((*SCALAR_COLUMNS, "tags", *(_FULL_COLUMNS if full else ())))
        by_id = {}
        for start_i in range(0, len(picked), 500):  # SQLite's limit on parameters
            part = picked[start_i : start_i + 500]
            marks = ", ".join("?" for _ in part)
            for r in store.db.execute(
                f"SELECT rowid AS _id, {cols} FROM tracks WHERE rowid IN ({marks})", part
            ):
                row = dict(r)
                result = row.pop("result", None)
                by_id[row.pop("_id")] = decode_row(row) | ({"result": result} if full else {})
    out = []
    for step, (rid, (tv, ta), d) in enumerate(zip(picked, targets, dist), start=1):
        row = {"step": step, "target_valence": float(tv), "target_arousal": float(ta), "distance": float(d)}
        row.update(by_id[rid])
        out.append(row)
    return out


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
            _pt((r["target_valence"], r["target_arousal"])),
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


def _stored_result(r: dict) -> dict | None:
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
        value = _stored_result(r)
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


def _format(a, default: str) -> str:
    if a.format:
        return a.format
    if a.out:
        return _BY_SUFFIX.get(Path(a.out).suffix.lower(), default)
    return "table"


def _emit(text: str, out: str | None, store_folder, *, overwrite: bool = False) -> None:
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


def _warn(verb: str, message: str) -> None:
    print(f"moodscope {verb}: warning: {message}", file=sys.stderr)


# -- command line ---------------------------------------------------------------------------------------------
def _mood_help(flag: str) -> str:
    return (
        f"a mood name ({_mood_list()}) or a point V,A in [-1, 1] (write {flag}=-0.5,0.2 when V is negative)"
    )


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
            _warn(verb, f"left {skipped} tracks out of the M3U: their paths hold a line break")
        return text
    if fmt == "csv":
        return csv_text(
            rows, first=("step", "target_valence", "target_arousal", "distance") if verb == "playlist" else ()
        )
    if fmt == "jsonl":
        return jsonl_text(rows)
    return table(rows)


def cmd_query(a) -> int:
    fmt = _format(a, "table")
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
        _warn("query", f"{shown_path(a.store)}: {len(damaged)} tracks have damaged stored values, shown as "
              f"missing (e.g. {shown_path(damaged[0]['path'])}: {', '.join(damaged[0]['damaged'])})")  # fmt: skip
    if fmt == "jsonl":
        bad = [r for r in rows if _stored_result(r) is None]
        if bad:
            _warn("query", f"{shown_path(a.store)}: left out {len(bad)} tracks whose stored result is not JSON "
                  f"(e.g. {shown_path(bad[0]['path'])})")  # fmt: skip
    text = _render(fmt, rows, "query", table_text)
    if fmt == "table" and rows:
        text += f"{len(rows)} track{'s' if len(rows) != 1 else ''} ({rows[0]['model_id']})\n"
    _emit(text, a.out, a.store, overwrite=a.overwrite)
    if a.out:
        print(f"moodscope query: wrote {len(rows)} tracks to {shown_path(a.out)}", file=sys.stderr)
    return 0


def cmd_playlist(a) -> int:
    fmt = _format(a, "m3u" if a.out else "table")
    rows = playlist(a.store, a.start, a.end, a.n, model=a.model, via=a.via, full=fmt == "jsonl")
    dist = np.asarray([r["distance"] for r in rows])
    summary = f"mean distance {dist.mean():.2f}, max {dist.max():.2f} ({rows[0]['model_id']})"
    text = _render(fmt, rows, "playlist", playlist_table_text)
    if fmt == "table":
        text += f"{len(rows)} tracks; {summary}\n"
    if dist.mean() > MAX_MEAN_DISTANCE:
        _warn(
            "playlist",
            f"{shown_path(a.store)}: the tracks are on average {dist.mean():.2f} from their points of the path "
            f"(more than {MAX_MEAN_DISTANCE}): the library has too few tracks near it",
        )
    _emit(text, a.out, a.store, overwrite=a.overwrite)
    if a.out:
        print(
            f"moodscope playlist: wrote {len(rows)} tracks to {shown_path(a.out)}; {summary}", file=sys.stderr
        )
    return 0


__all__ = [
    "CENTRES",
    "MOODS",
    "SYNONYMS",
    "add_playlist_arguments",
    "add_query_arguments",
    "assign",
    "cmd_playlist",
    "cmd_query",
    "parse_point",
    "parse_range",
    "playlist",
    "query",
    "waypoints",
]
