"""The piano level of ``musicnn_va`` (``piano_level``): a level for solo piano learnt from piano's own labels.

The default model's level (its static point) comes from a quadrant classifier trained mostly on real
recordings (4Q) and pop piano (EMOPIA). On VGMIDI's piano pieces listeners' own piece means teach a level the
classifier does not reach (issue 24: the simplest baseline, a ridge regression on VGMIDI's labels, ranks unseen
pieces' levels better than the default model). :class:`PianoLevel` is that regression on the track's statistics
(the mean and standard deviation of its normalised feature rows, what the movement's gate reads already) and a
gate, the probability that the track is solo piano; :meth:`moodscope.models.musicnn_va.MusicnnVA.track_curve`
moves the curve's level by ``weight * gate * (level - curve mean)``. Both are fitted in closed form after the
network (:func:`fit_piano_level`); unfitted, the gate is closed and the curve stays as it is.
"""

from __future__ import annotations

import torch
from torch import nn

#: Smallest spread a statistic is standardised by in the fit (the normalised inputs have unit spread over the
#: training set): a column that barely moves across the piano tracks would otherwise get a weight that swings
#: the level of music where it moves (as in the movement's fit, ``MOVEMENT_SD_FLOOR``).
LEVEL_SD_FLOOR = 0.1


class PianoLevel(nn.Module):
    """``forward(stats) -> (level (2,), gate ())`` for a track's statistics ``(2 n_bins,)``: the fitted level
    (valence, arousal), clamped to the range of the levels it was fitted on (a linear map of ~540 statistics
    must not extrapolate past what it learnt), and the probability that the track is solo piano. ``fitted`` is 1
    once :func:`fit_piano_level` ran (unfitted, :meth:`~moodscope.models.musicnn_va.MusicnnVA.track_curve`
    skips it). No gradient. Built without drawing from the global random stream (models given it after
    training equal what the recipe trains)."""

    def __init__(self, n_stats: int):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            self.map = nn.Linear(n_stats, 2)
            self.gate = nn.Linear(n_stats, 1)
        with torch.no_grad():  # unfitted: no level, the gate closed
            self.map.weight.zero_()
            self.map.bias.zero_()
            self.gate.weight.zero_()
            self.gate.bias.fill_(-30.0)
        for prm in self.parameters():
            prm.requires_grad_(False)
        self.register_buffer("lo", torch.full((2,), -1.0))  # the fitted levels' range
        self.register_buffer("hi", torch.full((2,), 1.0))
        self.register_buffer("fitted", torch.zeros(()))

    def forward(self, stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        level = torch.minimum(torch.maximum(self.map(stats), self.lo), self.hi)
        return level, torch.sigmoid(self.gate(stats))[..., 0]


def _standardising(S):
    import numpy as np

    mu, sd = S.mean(0), np.maximum(S.std(0), LEVEL_SD_FLOOR)
    return mu, sd


def fit_piano_level(model, tracks, gate, *, alpha: float = 100.0, gate_c: float = 1.0) -> dict:
    """Fit ``model.piano`` (:class:`PianoLevel` of a ``musicnn_va`` with ``piano_level``) in closed form.

    ``tracks``: ``(feats, target, weight)`` per solo-piano training track -- raw feature rows ``(steps,
    n_bins)``, its level ``(2,)`` (a listeners' curve's mean, or a scaled quadrant) and its weight. One ridge
    regression (``alpha``, standardised statistics, an intercept) of the levels on the tracks' statistics.
    ``gate``: ``(feats, is_piano)`` pairs, a logistic regression (``gate_c``) on the same statistics.

    Returns ``{"tracks", "r2", "gate_tracks", "gate_accuracy", "alpha", "gate_c"}``.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression, Ridge

    piano = getattr(model, "piano", None)
    if piano is None:
        raise ValueError("fit_piano_level: the model has no piano level (piano_level=0)")
    if not tracks:
        raise ValueError("fit_piano_level: no solo-piano training track with a level")

    def stats(feats):
        return model.track_parts(np.asarray(feats))[1].cpu().double().numpy()

    with torch.no_grad():
        S = np.array([stats(f) for f, _, _ in tracks])
        Y = np.array([np.asarray(t, np.float64) for _, t, _ in tracks])
        w = np.array([float(v) for _, _, v in tracks])
        mu, sd = _standardising(S)
        reg = Ridge(alpha=float(alpha)).fit((S - mu) / sd, Y, sample_weight=w)
        G = np.array([stats(f) for f, _ in gate])
        y = np.array([int(bool(v)) for _, v in gate])
        if len(set(y.tolist())) < 2:
            raise ValueError("fit_piano_level: the gate needs solo-piano and other tracks")
        gm, gs = _standardising(G)
        lr = LogisticRegression(C=float(gate_c), max_iter=5000).fit((G - gm) / gs, y)
        p = piano.map.weight
        piano.map.weight.copy_(torch.from_numpy(reg.coef_ / sd).to(p))
        piano.map.bias.copy_(torch.from_numpy(reg.intercept_ - (reg.coef_ * (mu / sd)).sum(1)).to(p))
        piano.gate.weight.copy_(torch.from_numpy(lr.coef_ / gs).to(p))
        piano.gate.bias.fill_(float(lr.intercept_[0] - (lr.coef_[0] * gm / gs).sum()))
        piano.lo.copy_(torch.from_numpy(Y.min(0)).to(piano.lo))
        piano.hi.copy_(torch.from_numpy(Y.max(0)).to(piano.hi))
        piano.fitted.fill_(1.0)
    return {
        "tracks": len(tracks),
        "r2": round(float(reg.score((S - mu) / sd, Y, sample_weight=w)), 4),
        "gate_tracks": len(gate),
        "gate_accuracy": round(float((lr.predict((G - gm) / gs) == y).mean()), 4),
        "alpha": float(alpha),
        "gate_c": float(gate_c),
    }
