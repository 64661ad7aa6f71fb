"""Pictures of a prediction: V and A over time, the trajectory on the valence-arousal plane, tags.

>>> from moodscope.plot import plot_result
>>> plot_result(result, "song.png")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .fileio import atomic_path

#: quadrant names, placed in the plane's corners where a trajectory rarely goes
QUADRANT_LABELS = [
    (0.97, 0.97, "happy"),
    (-0.97, 0.97, "angry"),
    (-0.97, -0.97, "sad"),
    (0.97, -0.97, "calm"),
]


def _figure(result, reference=None):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    has_dyn = result.dynamic is not None
    has_tags = bool(result.tags)
    ncols = 1 + int(has_dyn) + int(has_tags)
    widths = ([2.2] if has_dyn else []) + [1.0] + ([1.1] if has_tags else [])
    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * sum(widths), 4.2), gridspec_kw={"width_ratios": widths})
    axes = np.atleast_1d(axes)
    col = 0
    title = Path(result.file).name
    if has_dyn:
        ax = axes[col]
        col += 1
        t = np.asarray(result.dynamic["times_s"]) + 0.25  # centre of each 0.5 s segment
        ax.plot(t, result.dynamic["valence"], color="tab:blue", lw=1.6, label="valence")
        ax.plot(t, result.dynamic["arousal"], color="tab:red", lw=1.6, label="arousal")
        if reference is not None:
            n = min(len(t), len(reference))
            ax.plot(
                t[:n], reference[:n, 0], color="tab:blue", ls="--", lw=1, alpha=0.7, label="valence (truth)"
            )
            ax.plot(
                t[:n], reference[:n, 1], color="tab:red", ls="--", lw=1, alpha=0.7, label="arousal (truth)"
            )
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlim(0, max(float(result.duration_s), 0.5))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("value (-1 … 1)")
        ax.set_title(f"{title}: emotion over time")
        ax.legend(loc="lower right", fontsize=8, ncol=2)
        ax.grid(alpha=0.3)
    ax = axes[col]
    col += 1
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    for x, y, name in QUADRANT_LABELS:
        ax.text(
            x,
            y,
            name,
            ha="right" if x > 0 else "left",
            va="top" if y > 0 else "bottom",
            fontsize=11,
            color="0.45",
        )
    if has_dyn:
        v, a = np.asarray(result.dynamic["valence"]), np.asarray(result.dynamic["arousal"])
        ax.plot(v, a, color="0.7", lw=0.8, zorder=1)
        sc = ax.scatter(v, a, c=np.asarray(result.dynamic["times_s"]), cmap="viridis", s=10, zorder=2)
        fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.04, label="time (s)")
    sv, sa = result.static["valence"], result.static["arousal"]
    if np.isfinite(sv) and np.isfinite(sa):
        ax.scatter([sv], [sa], marker="*", s=220, color="black", zorder=3, label="track (static)")
        ax.legend(loc="upper center", fontsize=8, frameon=False)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.set_title(f"{result.quadrant}" if result.quadrant else "valence-arousal plane")
    if has_tags:
        ax = axes[col]
        names = list(result.tags)
        probs = np.array([result.tags[n] for n in names])
        order = np.argsort(probs)
        ax.barh(np.arange(len(names)), probs[order], color="tab:purple")
        ax.set_yticks(np.arange(len(names)), [names[i].replace("Emotion-", "") for i in order], fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability")
        ax.set_title("emotion tags")
    fig.tight_layout()
    return fig


def plot_result(result, path: str | Path, *, reference: np.ndarray | None = None, dpi: int = 110) -> Path:
    """Write a PNG of ``result`` (a :class:`moodscope.inference.predictor.Result`) atomically; ``reference`` (n, 2) overlays
    ground-truth V-A curves."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = _figure(result, reference)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path
