"""V-A curves onto moodscope's 2 Hz grid: a value sampled at time *t* labels the 0.5 s segment starting at *t*."""

from __future__ import annotations

import numpy as np

from ..config import SEGMENT_S
from ..tracks import Dynamic
from .base import IssueLog, Scale


# ----------------------------------------------------------------------------------------------------------
# Time grid
# ----------------------------------------------------------------------------------------------------------
def resample_to_grid(
    times_s: np.ndarray, values: np.ndarray, *, step: float = SEGMENT_S
) -> tuple[np.ndarray, np.ndarray]:
    """Put samples of a curve on the 0.5 s segment grid.

    Segment *k* is ``[k step, (k + 1) step)``. A segment takes the mean of the samples whose time falls
    inside it; a segment without a sample (between the first and the last sample) takes the linear
    interpolation of the samples at the segment's start. Samples already on the grid (one per segment,
    as in DEAM and PMEmo) pass through unchanged. Times within 1 µs below a grid point count as on it.

    Parameters
    ----------
    times_s : np.ndarray [shape=(n,)]
        Sample times in seconds (any order; NaN values must be removed beforehand).
    values : np.ndarray [shape=(n,)] or [shape=(n, d)]
        Sample values.

    Returns
    -------
    grid_s : np.ndarray [shape=(m,)]
        Segment start times, ``step`` apart, from the segment of the first sample to that of the last.
    out : np.ndarray [shape=(m,)] or [shape=(m, d)]
        Values per segment.

    Examples
    --------
    >>> g, v = resample_to_grid(np.array([0.0, 0.25, 1.0]), np.array([1.0, 3.0, 5.0]))
    >>> g.tolist(), v.tolist()
    ([0.0, 0.5, 1.0], [2.0, 3.6666666666666665, 5.0])
    """
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    squeeze = v.ndim == 1
    if squeeze:
        v = v[:, None]
    if t.ndim != 1 or len(t) != len(v):
        raise ValueError("times_s and values must have the same length")
    if len(t) == 0:
        return np.zeros(0), np.zeros((0,) if squeeze else (0, v.shape[1]))
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    k = np.floor(t / step + 1e-6).astype(np.int64)
    k0 = int(k[0])
    m = int(k[-1]) - k0 + 1
    idx = k - k0
    counts = np.bincount(idx, minlength=m)
    out = np.empty((m, v.shape[1]))
    grid = (k0 + np.arange(m)) * step
    for j in range(v.shape[1]):
        sums = np.bincount(idx, weights=v[:, j], minlength=m)
        col = np.divide(sums, counts, out=np.zeros(m), where=counts > 0)
        empty = counts == 0
        if empty.any():
            col[empty] = np.interp(grid[empty], t, v[:, j])
        out[:, j] = col
    return grid, (out[:, 0] if squeeze else out)


def build_dynamic(
    times_v: np.ndarray,
    valence: np.ndarray,
    times_a: np.ndarray,
    arousal: np.ndarray,
    scale: Scale,
    log: IssueLog,
    where: str,
    track_id: str,
) -> Dynamic | None:
    """Validate, convert and grid a valence and an arousal curve into one :class:`Dynamic`.

    Missing/invalid values inside a curve are filled by interpolation (counted); the curve is cut to
    the span both dimensions cover (counted when they differ). Returns ``None`` (counted) when no
    valid value is left.
    """
    curves = []
    for name, t, x in (("valence", times_v, valence), ("arousal", times_a, arousal)):
        t = np.asarray(t, dtype=np.float64)
        raw = np.asarray(x, dtype=np.float64)
        nan_in = ~np.isfinite(raw)
        vals, n_clip, n_bad = scale.validate(raw)
        if n_clip:
            log.add(where, "dynamic values slightly outside the scale clipped", track_id, count=n_clip)
        if n_bad:
            log.add(where, "dynamic values far outside the scale treated as missing", track_id, count=n_bad)
        ok = np.isfinite(vals)
        if ok.any():
            first, last = np.flatnonzero(ok)[[0, -1]]
            inner_nan = int(nan_in[first : last + 1].sum())
            if inner_nan:
                log.add(
                    where, "empty/NaN dynamic values inside a curve interpolated", track_id, count=inner_nan
                )
            if first > 0 and nan_in[:first].any():
                log.add(where, "curves starting with empty/NaN values (started at first value)", track_id)
        curves.append((name, t[ok], vals[ok]))
    if any(len(c[1]) == 0 for c in curves):
        log.add(where, "tracks with no valid dynamic values (no curve)", track_id)
        return None
    grids = [resample_to_grid(t, x) for _, t, x in curves]
    (gv, yv), (ga, ya) = grids
    start, stop = max(gv[0], ga[0]), min(gv[-1], ga[-1])
    if stop < start - 1e-9:
        log.add(where, "tracks whose valence and arousal curves do not overlap (no curve)", track_id)
        return None
    if not (np.isclose(gv[0], ga[0]) and np.isclose(gv[-1], ga[-1])):
        log.add(
            where, "tracks whose valence and arousal curves differ in span (cut to common span)", track_id
        )
    sv = (gv >= start - 1e-9) & (gv <= stop + 1e-9)
    sa = (ga >= start - 1e-9) & (ga <= stop + 1e-9)
    return Dynamic(times_s=gv[sv], valence=scale.to_canonical(yv[sv]), arousal=scale.to_canonical(ya[sa]))
