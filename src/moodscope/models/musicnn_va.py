"""The default model: valence-arousal heads on frozen MSD-MusiCNN embeddings (moodscope's own design).

Nothing here is from a paper. The pretrained network (Pons & Serra's MusiCNN, trained on the Million Song
Dataset's last.fm tags, :mod:`moodscope.models.musicnn`) runs once per track as the feature extractor
(``FeatureConfig(kind="musicnn")``: its 200-unit embedding and 50 tag logits on a 3 s window around every
0.5 s step, cached like any features); this module is the small trainable part on top. Essentia's published
valence/arousal models are the same idea (a small head on the MSD-MusiCNN embedding); ours adds a
recurrent layer over the 0.5 s steps so that one network gives the curve, the static point (the curve's
mean) and the quadrant, and is trained on clip-level quadrant labels (EMOPIA) and 2 Hz curves (the synthetic
corpus) together (:class:`moodscope.tasks.mood.MoodTask`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import MODE_BINS, MUSICNN_BINS, MUSICNN_UNITS, FeatureConfig, flag, integer, number, text_list
from .base import DROPOUT, UNITS, WIDTH, InputNorm, MoodModel, register_model
from .movement_net import MovementNet, standardised
from .piano_level import PianoLevel
from .sequence import check_width


@register_model("musicnn_va")
class MusicnnVA(MoodModel):
    """Per-step valence-arousal from MusiCNN embeddings: standardise, project, BiGRU, linear, tanh.

    Input ``(batch, 1, steps, 269)`` (``kind="musicnn"`` features with the ``mode`` extra, one row per 0.5 s:
    embedding, MSD tag logits, 19 key-invariant mode features), output ``(batch, steps, 2)`` valence and
    arousal in (-1, 1).

    Chosen (our design, tuned on EMOPIA's validation split):

    - the mode features (:mod:`moodscope.audio.tonal`) beside the embedding: the frozen MSD embedding tells
      major from minor versions of the same piano pieces on only about 62 % of held-out pieces (a linear
      probe), and mode is a main cue of valence;
    - ``InputNorm`` over the inputs (mean/std of the training features), dropout ``input_dropout`` on
      them (the embedding is 200 correlated units; dropping some regularises the head);
    - ``Linear(n_bins, hidden)`` + GELU, a one-layer bidirectional GRU of ``hidden`` units per direction (the
      curve follows the music, the context is the 30 s window), ``Linear(2 hidden, 2)`` + ``tanh``.
    - ``clip_head=True`` (the default model since it learnt real recordings): the *level* of the window's curve
      comes from a linear 4-class quadrant classifier on the mean and standard deviation over the window of
      the normalised inputs (padding rows, which normalise to exactly zero, left out), and the GRU gives only
      the movement around it: ``curve_t = clip(level + g_t - mean(g), -1, 1)`` with ``level = s (2 P(V+) - 1,
      2 P(A+) - 1)`` from the quadrant probabilities (``s = clip_level_scale``). Chosen because on 4Q's real recordings (artist-grouped
      5-fold) a softmax over the four quadrants on window statistics beat a per-step head and two binary
      heads alike (quadrant accuracy 0.72 against 0.69 for two logistic regressions on the same statistics;
      valence ROC-AUC 0.86 against 0.83): the quadrants are not two independent signs. The logits of the last
      forward pass are kept in ``last_quadrant_logits`` for the task's cross-entropy. With ``train.clip_fit_c``
      the trainer refits this classifier after the network's training as an L2-regularised multinomial
      logistic regression on the training windows' statistics (:func:`fit_clip_head`): convex, so it does not
      depend on when early stopping happened to stop, and on 4Q it beat the same layer trained by Adam with
      the network (quadrant accuracy 0.67/0.64 against 0.72/0.71 on the first two folds).

    Parameters
    ----------
    mode_features : bool
        Read the ``mode`` extra (19 more inputs per step).
    width : float
        Multiplier of ``hidden`` (CPU-sized variants, as every model).
    hidden : int
        Units of the projection and of each GRU direction at ``width=1``.
    dropout : float
        Before the GRU and before the output layer.
    input_dropout : float
    clip_head : bool
        The level of the curve from a clip-level quadrant classifier (below); ``False`` (the default, as
        models trained before it) keeps the GRU's own level.
    clip_dropout : float
        Dropout on the clip statistics before the quadrant classifier.
    loudness_lufs : float or None
        Bring every track to this integrated loudness (ITU-R BS.1770) before MusiCNN
        (``FeatureConfig.loudness_lufs``): the answer then does not depend on the playback level. ``None``
        (the default, as models trained before it) reads the audio at its own level.
    clip_level_scale : float in (0, 1]
        The curve's level is ``clip_level_scale * (2 P(+) - 1)`` per dimension: with 0.5 (the default model)
        it is the expected value when each quadrant's clips sit at its centre, +-0.5 (the centre the 4Q and
        EMOPIA adapters give a quadrant, ``sign_labels``), so a confident quadrant does not push the curve to
        +-1. Signs and rankings, hence the quadrant metrics, do not depend on it; the curve's level does (on the
        synthetic corpus's unseen songs, per-song arousal CCC 0.51 at 1.0: levels twice the labels' size).
    movement_past_s : float or None
        Add the *listeners' movement* on the whole track (issue 24; the default model since it learnt VGMIDI's
        curves), after the sliding window (:meth:`track_curve`, called by the ``mood`` task):
        ``curve = mean + k (sliding - mean) + (1 - p) W c``, ``c_t`` the normalised inputs averaged over the past
        ``movement_past_s`` seconds (``movement_lag_s`` late) minus their mean over the track, ``k`` how much of
        the sliding window's own movement stays, ``p`` a gate's probability that the audio is synthetic (the
        synthetic corpus's planted cue movement is the GRU's to follow; listeners' curves are not like it).
        Chosen on VGMIDI's series-grouped folds (README "Curves that follow listeners"): listeners move a
        cursor after what they heard, and 60 % of their within-piece variance is slower than 30 s, which no
        30 s window sees: a ridge regression on track-centred past averages (8 s, 1 s late) follows them at
        per-piece PCC 0.19 / 0.39 where the same on window-centred ones reaches 0.16 / 0.31, symmetric averages
        0.12 / 0.27, single steps 0.10 / 0.22, and the sliding window's own movement 0.13 / 0.20. ``W``,
        ``k`` and the gate have no gradient in training; they are fitted after it in closed form
        (:func:`fit_track_movement`, ``train.movement_fit``); unfitted they leave the curve as it is. The
        mean over the track -- the static point, the quadrant -- never changes. ``None`` (the default, as
        models trained before it): no such part.
    movement_lag_s : float
        The listener's delay in that part (seconds, a multiple of 0.5).
    movement_net : int
        A DAMFF-style sequence head on the same MusiCNN steps beside the ridge (issue 24, item 4): this many
        independently trained members (:class:`MovementNet`: per-step embedding, one bidirectional LSTM over the
        whole track, a linear output -- DAMFF's §3.3 head with MusiCNN's 0.5 s steps as its segments), each
        trained on the listeners' curves with ``1 - PCC`` of the movement (:func:`fit_movement_net`). On a
        track their outputs, each standardised over the track, are averaged into ``e``, and the movement becomes
        ``sd(Wc) * standardise(standardise(Wc) + e)`` per dimension: the net shares the *shape* of the movement
        with the ridge half and half, and the size stays the ridge's (what its fit chose for the listeners'
        amplitude). Chosen on VGMIDI's series-grouped folds (offline, README "Curves that follow listeners"):
        one member alone follows listeners no better than the ridge (per-piece PCC 0.19 / 0.29 against 0.18 /
        0.41), three averaged reach 0.22 / 0.34, and averaged with the ridge 0.23 / 0.41 (valence better in
        every series; the same with three other seeds under ``ONEDNN_MAX_CPU_ISA=AVX2``: 0.23 / 0.39). In the
        model, the five fold models given their nets: 0.231 / 0.379 against 0.181 / 0.373 (valence paired
        p 0.013). Only with a movement part (``movement_past_s``); ``0`` (the default, as models trained before
        it): none. Unfitted members leave the movement as the ridge's.
    embedding_relu : bool
        Read the 200-unit MSD embedding after its ReLU -- what MusiCNN's own tag layer reads (musicnn's
        ``penultimate`` is the batch norm of it, an affine map the normalisation absorbs) -- rather than before
        it (:meth:`normalised`). Chosen for the default model on 4Q's artist-grouped folds, the clip head refitted
        on the same windows with nothing else changed: quadrant accuracy 0.712 against 0.696, valence ROC-AUC
        0.869 against 0.863, arousal 0.962 against 0.957; better at every regularisation tried (C 0.001-0.01)
        and with 4Q alone (0.731 against 0.709). The GRU and the mood head read it too; the listeners' movement
        (:meth:`track_parts`) does not: on VGMIDI's series-grouped folds the movement fitted on the embedding
        after its ReLU followed the listeners less well (per-piece PCC 0.17 / 0.35 against 0.18 / 0.39), so it
        keeps the features it was chosen on. ``False`` (the default, as models trained before it).
    piano_level : float in [0, 1]
        How far a solo-piano track's level moves toward a level learnt from piano's own labels
        (:class:`~moodscope.models.piano_level.PianoLevel`; issue 24's static floors): ``mean + piano_level * g *
        (L - mean)`` in :meth:`track_curve`, ``L`` a ridge regression (alpha 100) on the track's statistics fitted
        on VGMIDI's piece means and EMOPIA's quadrants (at +-0.2, the spread of VGMIDI's piece means; each source
        the same total weight), ``g`` a gate (logistic regression, C 1) of solo piano (VGMIDI, EMOPIA) against
        the other training tracks (4Q's recordings, the synthetic corpus); both fitted after the network
        (:func:`~moodscope.models.piano_level.fit_piano_level`, ``train.level_fit``). Chosen on VGMIDI's
        series-grouped folds (README "Curves that follow listeners"): offline, a regression on VGMIDI alone set
        held-out series' levels worse than the model (static PCC 0.48 / 0.72 against 0.58 / 0.77) and half and
        half better than either (0.60 / 0.79); in the model (the five fold models given it) static PCC 0.605 /
        0.765 against 0.581 / 0.772, the pieces' mean level error 0.176 / 0.131 against 0.231 / 0.164 (smaller on
        74 / 65 of 100 pieces, p < 0.001), per-piece CCC 0.084 / 0.191 against 0.064 / 0.172. EMOPIA in the fit
        keeps pop piano's quadrants (its test split: 0.659 against 0.614; with VGMIDI alone it fell to 0.568);
        the gate's C 1 rather than 0.01 keeps it open on held-out series (at least 0.98) and shut on held-out 4Q
        clips (mean 0.004): 4Q's artist-grouped figures stay (quadrant accuracy unchanged, valence ROC-AUC 0.868
        against 0.869). Only with a movement part (``movement_past_s``: it acts on the whole track's curve).
        ``0`` (the default, as models trained before it): none.
    moods : sequence of str
        Names of human-labelled mood tags (the default model: AllMusic's moods of 4Q): one logistic output per
        mood on the same window statistics as the clip head (:meth:`mood_probabilities`), fitted after
        training by :func:`fit_mood_head`. Empty (the default): no mood head.
    """

    output = "mood"
    feature_kind = "musicnn"
    arg_settings = {
        "mode_features": flag(),
        "width": WIDTH,
        "hidden": UNITS,
        "dropout": DROPOUT,
        "input_dropout": DROPOUT,
        "clip_head": flag(),
        "clip_dropout": DROPOUT,
        "loudness_lufs": number(-70, 0, none=True),
        "clip_level_scale": number(0, 1, lo_open=True),
        "moods": text_list(max_len=1000, unique=True),
        "movement_past_s": number(0.5, 60, none=True),
        "movement_lag_s": number(0, 10),
        "movement_net": integer(0, 16),
        "embedding_relu": flag(),
        "piano_level": number(0, 1),
    }

    def __init__(
        self,
        *,
        mode_features: bool = True,
        width: float = 1.0,
        hidden: int = 64,
        dropout: float = 0.3,
        input_dropout: float = 0.2,
        clip_head: bool = False,
        clip_dropout: float = 0.5,
        loudness_lufs: float | None = None,
        clip_level_scale: float = 1.0,
        moods=(),
        movement_past_s: float | None = None,
        movement_lag_s: float = 1.0,
        movement_net: int = 0,
        embedding_relu: bool = False,
        piano_level: float = 0.0,
    ):
        super().__init__()
        check_width(width)
        h = max(4, int(round(hidden * width)))
        n_bins = MUSICNN_BINS + (MODE_BINS if mode_features else 0)
        self.n_mels, self.segment_frames = (
            n_bins,
            1,
        )  # one feature row per 0.5 s step (sliding-window contract)
        self.norm = InputNorm(n_bins)
        self.input_dropout = nn.Dropout(input_dropout)
        self.proj = nn.Sequential(nn.Linear(n_bins, h), nn.GELU(), nn.Dropout(dropout))
        self.gru = nn.GRU(h, h, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * h, 2))
        self.clip = nn.Sequential(nn.Dropout(clip_dropout), nn.Linear(2 * n_bins, 4)) if clip_head else None
        self.last_quadrant_logits: torch.Tensor | None = None
        if not 0.0 < clip_level_scale <= 1.0:
            raise ValueError(f"musicnn_va: clip_level_scale must be in (0, 1], got {clip_level_scale!r}")
        self.clip_level_scale = float(clip_level_scale)
        self.embedding_relu = bool(embedding_relu)
        self.moods = list(moods or [])
        self.mood_head = nn.Linear(2 * n_bins, len(self.moods)) if self.moods else None
        self.movement_past, self.movement_lag = 0, 0
        self.motion = None
        if movement_past_s is not None:
            self.movement_past = max(1, int(round(float(movement_past_s) / 0.5)))
            self.movement_lag = int(round(float(movement_lag_s) / 0.5))
            self.motion = nn.Linear(n_bins, 2, bias=False)  # W
            self.motion_keep = nn.Parameter(
                torch.ones(2), requires_grad=False
            )  # how much sliding movement stays
            self.domain = nn.Linear(2 * n_bins, 1)  # the gate: P(synthetic audio) from the track's statistics
            with torch.no_grad():  # unfitted: the identity (no movement added, the curve kept, gate closed)
                self.motion.weight.zero_()
                self.domain.weight.zero_()
                self.domain.bias.fill_(-30.0)
            for prm in (self.motion.weight, self.domain.weight, self.domain.bias):
                prm.requires_grad_(False)  # fitted in closed form after training (fit_track_movement)
        self.motion_nets = None
        if movement_net and self.motion is None:
            raise ValueError("musicnn_va: movement_net shapes the movement part: it needs movement_past_s")
        if movement_net:
            with torch.random.fork_rng(devices=[]):  # the rest of training draws what it drew without them
                self.motion_nets = nn.ModuleList(MovementNet(n_bins) for _ in range(int(movement_net)))
            self.register_buffer("motion_nets_fitted", torch.zeros(()))  # 1 once fit_movement_net ran
            for prm in self.motion_nets.parameters():
                prm.requires_grad_(False)  # trained after the network (fit_movement_net), not with it
        self.piano, self.piano_level = None, float(piano_level)
        if not 0.0 <= self.piano_level <= 1.0:
            raise ValueError(f"musicnn_va: piano_level must be in [0, 1], got {piano_level!r}")
        if self.piano_level and self.motion is None:
            raise ValueError(
                "musicnn_va: piano_level acts on the whole track's curve: it needs movement_past_s"
            )
        if self.piano_level:
            self.piano = PianoLevel(2 * n_bins)  # fitted after the network (fit_piano_level)

    @staticmethod
    def feature_config(args: dict) -> FeatureConfig:
        """The features this model reads, from its resolved constructor arguments."""
        return FeatureConfig.for_kind(
            "musicnn",
            extras=("mode",) if args.get("mode_features", True) else (),
            loudness_lufs=args.get("loudness_lufs"),
        )

    @staticmethod
    def _real_steps(z: torch.Tensor) -> torch.Tensor:
        """``(batch, steps, 1)``: 1 on real steps, 0 on padding (the normalisation mean, exactly 0 in ``z``)."""
        return (z.abs().amax(dim=2) > 0).float()[..., None]

    def normalised(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, real)`` of raw rows ``x`` ``(batch, steps, n_bins)``: the normalised inputs the head reads and
        ``(batch, steps, 1)`` 1 on real steps. With ``embedding_relu`` the embedding's columns are clamped below
        at the normalised position of 0 -- ``ReLU`` then the normalisation's affine map, what MusiCNN's own tag
        layer reads -- after the real steps are found (padding rows normalise to exactly 0 before it)."""
        z = self.norm(x.float())
        real = self._real_steps(z)
        if self.embedding_relu:
            e = MUSICNN_UNITS
            floor = -self.norm.mean[:e] / self.norm.std[:e]
            z = torch.cat([torch.maximum(z[..., :e], floor) * real, z[..., e:]], dim=-1)
        return z, real

    def clip_statistics(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 2 n_bins)``: mean and standard deviation over each window's real steps of the normalised
        inputs ``x`` ``(batch, 1, steps, n_bins)``: what the clip head classifies."""
        return self._statistics(*self.normalised(x[:, 0]))

    def mood_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, len(moods))``: the probability of each mood tag for windows ``x`` ``(batch, 1, steps, n_bins)``."""
        if self.mood_head is None:
            raise ValueError("musicnn_va: this model has no mood head (moods=[])")
        return torch.sigmoid(self.mood_head(self.clip_statistics(x)))

    @staticmethod
    def _statistics(z: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        n = real.sum(1).clamp_min(1.0)
        mean = (z * real).sum(1) / n
        std = (((z - mean[:, None]) ** 2 * real).sum(1) / n).clamp_min(1e-8).sqrt()
        return torch.cat([mean, std], dim=1)

    def past_average(self, z: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``(batch, steps, n_bins)``: at step t the mean of the real steps of ``z`` in ``[t - lag - past + 1,
        t - lag]`` (clipped to the window; before the window's first real step, that step)."""
        zs, cnt = torch.cumsum(z * real, 1), torch.cumsum(real, 1)
        zero = torch.zeros_like(zs[:, :1])
        zs, cnt = torch.cat([zero, zs], 1), torch.cat([torch.zeros_like(cnt[:, :1]), cnt], 1)
        steps = z.shape[1]
        hi = (torch.arange(steps, device=z.device) - self.movement_lag).clamp_min(0) + 1
        lo = (hi - self.movement_past).clamp_min(0)
        total, count = zs[:, hi] - zs[:, lo], cnt[:, hi] - cnt[:, lo]
        first = z[:, :1]  # the window starts with real steps (padding only trails)
        return torch.where(count > 0, total / count.clamp_min(1.0), first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, real = self.normalised(x[:, 0])  # (batch, steps, n_bins), (batch, steps, 1)
        h, _ = self.gru(self.proj(self.input_dropout(z)))
        g = torch.tanh(self.out(h))  # (batch, steps, 2)
        if self.clip is None:
            return g
        # padding rows are the normalisation mean, i.e. exactly zero here: the statistics leave them out
        n = real.sum(1).clamp_min(1.0)
        logits = self.clip(self._statistics(z, real))  # (batch, 4): Q1..Q4
        self.last_quadrant_logits = logits
        p = torch.softmax(logits, dim=1)
        level = torch.stack([p[:, 0] + p[:, 3] - p[:, 1] - p[:, 2], p[:, 0] + p[:, 1] - p[:, 2] - p[:, 3]], 1)
        level = self.clip_level_scale * level
        g_mean = (g * real).sum(1) / n
        return (level[:, None] + g - g_mean[:, None]).clamp(-1.0, 1.0)

    def track_parts(self, feats) -> tuple[torch.Tensor, torch.Tensor]:
        """For a whole track's feature rows ``(steps, n_bins)``: the past averages centred over the track
        ``(steps, n_bins)`` and the track's statistics ``(2 n_bins,)`` (what the movement and its gate read).
        They read the embedding as it comes, before its ReLU, whatever ``embedding_relu`` says (see there)."""
        z = self.norm(torch.as_tensor(feats, dtype=torch.float32, device=self.norm.mean.device)[None])
        real = torch.ones_like(z[..., :1])  # z: (1, steps, n_bins), on the model's device
        c = self.past_average(z, real)[0]
        return c - c.mean(0), self._statistics(z, real)[0]

    def net_movement(self, feats) -> torch.Tensor:
        """``(steps, 2)``: the mean of the :class:`MovementNet` members' outputs on a whole track's feature rows
        ``(steps, n_bins)``, each standardised over the track (the movement's shape, no size, no level); on the
        model's device. In eval mode (the members' dropout off), as :meth:`track_curve` runs it."""
        z = self.norm(torch.as_tensor(feats, dtype=torch.float32, device=self.norm.mean.device)[None])
        outs = [standardised(net(z)[0]) for net in self.motion_nets]
        return torch.stack(outs).mean(0)

    def track_curve(self, feats, curve):
        """The listeners' movement on a whole track (``movement_past_s``): ``curve`` ``(steps, 2)`` is the
        sliding-window curve of ``feats`` ``(steps, n_bins)``; returns ``mean + k (curve - mean) + (1 - p) W c``
        with ``k = p + (1 - p) keep`` per dimension, ``c`` the track-centred past averages and ``p`` the gate's
        probability that the track is synthetic audio. The mean (the static point, the quadrant) is unchanged,
        but for the piano level (``piano_level``): ``+ piano_level * g * (L - mean)``, ``L`` the fitted level of
        the track's statistics and ``g`` the probability that it is solo piano."""
        import numpy as np

        curve = np.asarray(curve, dtype=np.float64)
        n = len(curve)
        with torch.no_grad():
            c, stats = self.track_parts(np.asarray(feats)[:n])
            p = float(torch.sigmoid(self.domain(stats)).item())
            m = self.motion(c).cpu().double().numpy()
            if self.motion_nets is not None and float(self.motion_nets_fitted) > 0:
                # the net shapes the ridge's movement: where the ridge adds none (spread 0), it adds none either
                e = self.net_movement(np.asarray(feats)[:n]).cpu().double().numpy()
                m = m.std(0) * standardised(standardised(m) + e)
            shift = 0.0
            if (
                self.piano is not None and float(self.piano.fitted) > 0
            ):  # toward the piano level where its gate opens
                level, q = self.piano(stats)
                shift = self.piano_level * float(q) * (level.cpu().double().numpy() - curve.mean(0))
        keep = p + (1.0 - p) * self.motion_keep.detach().cpu().double().numpy()
        mean = curve.mean(0)
        return np.clip(mean + shift + keep * (curve - mean) + (1.0 - p) * m, -1.0, 1.0)


def _window_statistics(model: MusicnnVA, windows):
    """``(n_windows, 2 n_bins)`` float64: :meth:`MusicnnVA.clip_statistics` of each ``(1, steps, n_bins)`` window,
    what the clip head and the mood head read; the fits below standardise them and fold the scaling back in."""
    import numpy as np

    with torch.no_grad():
        return np.array(
            [model.clip_statistics(torch.as_tensor(x)[None]).double().numpy()[0] for x in windows]
        )


def _scaling(X):
    """Column means and standard deviations of ``X`` for standardising it (a constant column keeps scale 1)."""
    mu, sd = X.mean(0), X.std(0)
    sd[sd < 1e-8] = 1.0
    return mu, sd


def fit_clip_head(model: MusicnnVA, windows, *, c: float, weights=None) -> dict:
    """Refit ``model``'s clip head as a multinomial logistic regression (L2, inverse strength ``c``) on
    ``windows``: ``(x, quadrant)`` pairs, ``x`` ``(1, steps, n_bins)`` raw features as the model reads them
    and ``quadrant`` 0-3 (Q1..Q4). The statistics are standardised for the fit (scikit-learn's
    ``StandardScaler`` + ``LogisticRegression``) and the scaling folded into the layer's weights, so the model
    computes exactly the fitted classifier. ``weights`` (one per window) balance the sources.

    Returns ``{"windows": n, "accuracy": training accuracy}``.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if model.clip is None:
        raise ValueError("fit_clip_head: the model has no clip head (clip_head=False)")
    ys = [int(q) for _, q in windows]
    X, y = _window_statistics(model, [x for x, _ in windows]), np.array(ys)
    if len(set(ys)) < 2:
        raise ValueError(f"fit_clip_head: the windows hold {len(set(ys))} quadrant(s); at least 2 are needed")
    mu, sd = _scaling(X)
    lr = LogisticRegression(C=float(c), max_iter=5000)
    lr.fit((X - mu) / sd, y, sample_weight=None if weights is None else np.asarray(weights, float))
    W = np.zeros((4, X.shape[1]))
    b = np.full(4, -1e4)  # a quadrant absent from the windows is never predicted
    if len(lr.classes_) == 2:  # scikit-learn's binary form: one logit for classes_[1], 0 for classes_[0]
        coefs, icpts = [np.zeros(X.shape[1]), lr.coef_[0]], [0.0, lr.intercept_[0]]
    else:
        coefs, icpts = list(lr.coef_), list(lr.intercept_)
    for cls, coef, icpt in zip(lr.classes_, coefs, icpts):
        W[cls] = coef / sd
        b[cls] = icpt - float((coef * mu / sd).sum())
    layer = model.clip[-1]
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W).to(layer.weight))
        layer.bias.copy_(torch.from_numpy(b).to(layer.bias))
    return {"windows": len(ys), "accuracy": float((lr.predict((X - mu) / sd) == y).mean())}


def fit_mood_head(model: MusicnnVA, windows, labels, names, *, c: float) -> dict:
    """Give ``model`` a mood head for the tags ``names``: one L2-regularised logistic regression per tag (inverse
    strength ``c``, scikit-learn) on the standardised window statistics of ``windows`` (``x`` ``(1, steps,
    n_bins)`` raw features, as :func:`fit_clip_head`), ``labels`` ``(n_windows, len(names))`` in {0, 1}. Log-loss
    without class weights, so the outputs are probabilities on the scale of the training tags (a tag on 5 % of
    the clips averages about 0.05), not scores. The scaling is folded into the layer; ``model.model_args
    ["moods"]`` is set, so the saved model rebuilds with the head.

    Returns ``{"windows": n, "positives": {name: count}}``.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    Y = np.asarray(labels, dtype=int)
    names = list(names)
    if Y.ndim != 2 or Y.shape[1] != len(names) or Y.shape[0] != len(windows):
        raise ValueError(f"fit_mood_head: labels must be (windows, tags) = ({len(windows)}, {len(names)})")
    X = _window_statistics(model, windows)
    mu, sd = _scaling(X)
    Z = (X - mu) / sd
    W, b = np.zeros((len(names), X.shape[1])), np.zeros(len(names))
    for j, name in enumerate(names):
        y = Y[:, j]
        if y.min() == y.max():
            raise ValueError(f"fit_mood_head: tag {name!r} is {'on' if y[0] else 'off'} in every window")
        lr = LogisticRegression(C=float(c), max_iter=5000).fit(Z, y)
        W[j] = lr.coef_[0] / sd
        b[j] = lr.intercept_[0] - float((lr.coef_[0] * mu / sd).sum())
    model.moods = names
    model.mood_head = nn.Linear(X.shape[1], len(names))
    with torch.no_grad():
        model.mood_head.weight.copy_(torch.from_numpy(W).float())
        model.mood_head.bias.copy_(torch.from_numpy(b).float())
    model.model_args["moods"] = names
    return {"windows": len(windows), "positives": {n: int(Y[:, j].sum()) for j, n in enumerate(names)}}


#: Smallest spread a column of the track-centred past averages is standardised by in :func:`fit_track_movement`.
MOVEMENT_SD_FLOOR = 0.1


def fit_track_movement(
    model: MusicnnVA, tracks, *, alpha: float, gain: float = 1.0, weights=None, gate=None, gate_c: float = 1.0
) -> dict:
    """Fit ``model``'s track-level movement (``movement_past_s``, :meth:`MusicnnVA.track_curve`) in closed form.

    ``tracks``: ``(feats, curve, target)`` per training track with a listeners' curve -- raw features ``(steps,
    n_bins)``, the model's sliding-window curve ``(steps, 2)`` and the labels ``(steps, 2)`` (NaN = unlabelled).
    Per dimension, one ridge regression (``alpha`` on standardised inputs, no intercept) of the labels' deviation
    from their track mean on the track-centred past averages and the sliding curve's own deviation: the first
    part's weights are ``W`` (times ``gain``: ridge shrinks), the last one's is ``keep`` (how much of the
    sliding movement stays; lightly penalised). ``weights``: one per track. ``gate``: ``(feats, is_synthetic)``
    pairs for the gate, a logistic regression (``gate_c``) on the track statistics; ``None`` leaves it closed.

    Returns ``{"tracks", "steps", "keep", "r2", "gate_accuracy"}``.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression, Ridge

    if model.motion is None:
        raise ValueError("fit_track_movement: the model has no movement part (movement_past_s=None)")
    X, G, Y, Wt = [], [], [], []
    for i, (feats, curve, target) in enumerate(tracks):
        n = min(len(feats), len(curve), len(target))
        target = np.asarray(target, np.float64)[:n]
        ok = ~np.isnan(target).any(1)
        if ok.sum() < 2:
            continue
        c, _ = model.track_parts(np.asarray(feats)[:n])
        c = c.cpu().double().numpy()[ok]
        g = np.asarray(curve, np.float64)[:n][ok]
        X.append(c - c.mean(0))
        G.append(g - g.mean(0))
        Y.append(target[ok] - target[ok].mean(0))
        Wt.append(np.full(int(ok.sum()), 1.0 if weights is None else float(weights[i])))
    if not X:
        raise ValueError("fit_track_movement: no track has two labelled steps")
    X, G, Y, Wt = np.vstack(X), np.vstack(G), np.vstack(Y), np.concatenate(Wt)
    # the inputs are normalised (unit spread over the training set): a column that barely moves in these tracks
    # (an embedding unit below its ReLU on nearly all of VGMIDI's piano) is standardised by at least 0.1, or
    # its weight -- 1 / its spread here -- would swing the curve of music where that unit moves (x 10^5 seen,
    # the curves of real recordings clipped at +-1 and their means, the static point, moved). Without the ReLU
    # no column of the default model's fit spreads less than 0.15, so the floor changes nothing there.
    sd = np.maximum(X.std(0), MOVEMENT_SD_FLOOR)
    boost = 30.0  # the keep column scaled up: a penalty 900 times lighter than the features'
    W, keep, r2 = np.zeros((2, X.shape[1])), np.ones(2), []
    for d in range(2):
        D = np.hstack([X / sd, boost * G[:, d : d + 1]])
        reg = Ridge(alpha=float(alpha), fit_intercept=False).fit(D, Y[:, d], sample_weight=Wt)
        W[d], keep[d] = gain * reg.coef_[:-1] / sd, boost * reg.coef_[-1]
        r2.append(float(reg.score(D, Y[:, d], sample_weight=Wt)))
    out = {"tracks": len(tracks), "steps": int(len(X)), "keep": keep.round(4).tolist(), "r2": r2}
    with torch.no_grad():
        model.motion.weight.copy_(torch.from_numpy(W).to(model.motion.weight))
        model.motion_keep.copy_(torch.from_numpy(keep).to(model.motion_keep))
        if gate:
            with torch.no_grad():
                S = np.array([model.track_parts(np.asarray(f))[1].cpu().double().numpy() for f, _ in gate])
            y = np.array([int(bool(v)) for _, v in gate])
            if len(set(y)) < 2:
                raise ValueError("fit_track_movement: the gate needs synthetic and other tracks")
            mu, ssd = _scaling(S)
            lr = LogisticRegression(C=float(gate_c), max_iter=5000).fit((S - mu) / ssd, y)
            model.domain.weight.copy_(torch.from_numpy(lr.coef_ / ssd).to(model.domain.weight))
            model.domain.bias.fill_(float(lr.intercept_[0] - (lr.coef_[0] * mu / ssd).sum()))
            out["gate_accuracy"] = float((lr.predict((S - mu) / ssd) == y).mean())
    return out
