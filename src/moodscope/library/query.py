"""Querying a results store (``moodscope query``): which model, the SQL of the filters, the rows.

It reads ``OUT/moodscope.sqlite`` (:mod:`moodscope.library.store`) and never writes to it.

Models
------
A store holds one row per (file, model id). When it holds results of one model, that model is used; when it
holds several, ``--model`` must choose one (its full id, or a prefix such as the model's name when only one id
starts with it): results of two models are not on one scale, and picking one silently (e.g. the most recent)
would mix up a re-run with a retrained model.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..emotion import QUADRANT_TAGS
from ..errors import OutputError, UsageError, shown_path
from .filters import (
    CENTRES,
    FULL_COLUMNS,
    SCALAR_COLUMNS,
    SORT_COLUMNS,
    parse_point,
    parse_quadrants,
    parse_range,
    parse_sort,
    parse_tag,
)
from .store import STORE_NAME, ResultStore, decode_row


# -- the store ----------------------------------------------------------------------------------------------
def where_text(folder) -> str:
    return shown_path(folder)


#: the largest --limit (far beyond any library; SQLite's LIMIT takes a 64-bit integer)
MAX_LIMIT = 1 << 31


def open_store(folder: str | os.PathLike) -> ResultStore:
    """The store of ``folder`` (or of the ``moodscope.sqlite`` file itself), refused when it has no tracks."""
    folder = Path(folder)
    if folder.name == STORE_NAME and folder.is_file():
        folder = folder.parent
    store = ResultStore(folder, create=False)
    try:
        if store.count() == 0:
            failed = len(store.failures())
            raise OutputError(
                f"{where_text(store.folder)}: the results store holds no tracks yet"
                + (f" ({failed} files failed; see predict's summary)" if failed else "")
            )
    except BaseException:
        store.close()
        raise
    return store


def choose_model(store: ResultStore, model: str | None) -> str:
    """The model id to use: ``model`` (a full id or an unambiguous prefix), else the store's only one."""
    ids = store.model_ids()
    where = where_text(store.folder)

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
    where = where_text(store_folder)
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

    with open_store(store_folder) as store:
        mid = choose_model(store, model)
        where = where_text(store.folder)
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
            (*SCALAR_COLUMNS, "tags", *(FULL_COLUMNS if full else ()), *([f"{d2} AS _d2"] if d2 else []))
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
