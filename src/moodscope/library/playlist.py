"""Mood playlists (``moodscope playlist``): waypoints along a path of moods and the tracks closest to them.

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

import math
import os
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import UsageError
from .filters import FULL_COLUMNS, SCALAR_COLUMNS, parse_point
from .formats import warn
from .query import choose_model, open_store, where_text
from .store import decode_row

# -- playlists ----------------------------------------------------------------------------------------------
#: a playlist whose chosen tracks are farther than this from their waypoints on average is warned about
MAX_MEAN_DISTANCE = 0.3
#: the largest cost matrix (waypoints × candidate tracks) of a playlist's assignment
MAX_CELLS = 5_000_000


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
    where = where_text(store_folder)
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
    with open_store(store_folder) as store:
        mid = choose_model(store, model)
        where = where_text(store.folder)
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
            warn(
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
        cols = ", ".join((*SCALAR_COLUMNS, "tags", *(FULL_COLUMNS if full else ())))
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
