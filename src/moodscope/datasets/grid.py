"""V-A curves onto moodscope's 2 Hz grid: a value sampled at time *t* labels the 0.5 s segment starting at *t*."""

from __future__ import annotations

import numpy as np

from ..config import SEGMENT_S
from ..tracks import Dynamic
from .base import IssueLog, Scale
from .limits import MAX_SAMPLES_PER_TRACK, MAX_TIME_S

#: most segments :func:`resample_to_grid` builds (the 0.5 s grid of :data:`MAX_TIME_S`, and one more)
MAX_GRID_SEGMENTS = int(MAX_TIME_S / SEGMENT_S) + 2


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
        Sample times in seconds (any order), finite; the grid they span may have at most
        :data:`MAX_GRID_SEGMENTS` segments (``ValueError`` otherwise: the readers drop times beyond
        :data:`~moodscope.datasets.limits.MAX_TIME_S` beforehand).
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
    if not np.isfinite(t).all():
        raise ValueError("times_s must be finite")
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    span = (t[-1] - t[0]) / step
    if not span < MAX_GRID_SEGMENTS:
        raise ValueError(
            f"times_s span {t[-1] - t[0]:g} s: more than {MAX_GRID_SEGMENTS} segments of {step:g} s"
        )
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

    Samples whose time is not finite, negative or beyond :data:`MAX_TIME_S` are dropped (counted), and a
    curve keeps at most :data:`MAX_SAMPLES_PER_TRACK` samples (its earliest; the rest counted), so no time
    read from a file sizes the grid beyond 24 h. Missing/invalid values inside a curve are filled by
    interpolation (counted); the curve is cut to the span both dimensions cover (counted when they
    differ). Returns ``None`` (counted) when no valid value is left.
    """
    curves = []
    for name, t, x in (("valence", times_v, valence), ("arousal", times_a, arousal)):
        t = np.asarray(t, dtype=np.float64).ravel()
        raw = np.asarray(x, dtype=np.float64).ravel()
        if len(t) != len(raw):
            raise ValueError(f"{track_id}: {len(t)} times for {len(raw)} {name} values")
        with np.errstate(invalid="ignore"):
            bad_t = ~np.isfinite(t) | (t < 0) | (t > MAX_TIME_S)
        if bad_t.any():
            log.add(
                where,
                f"dynamic samples with a missing, negative or beyond-{MAX_TIME_S:g} s time skipped",
                track_id,
                count=int(bad_t.sum()),
            )
            t, raw = t[~bad_t], raw[~bad_t]
        if len(t) > MAX_SAMPLES_PER_TRACK:
            keep = np.sort(np.argsort(t, kind="stable")[:MAX_SAMPLES_PER_TRACK])
            log.add(
                where,
                f"dynamic samples past {MAX_SAMPLES_PER_TRACK} per curve skipped",
                track_id,
                count=len(t) - MAX_SAMPLES_PER_TRACK,
            )
            t, raw = t[keep], raw[keep]
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
