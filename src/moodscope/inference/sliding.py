"""Whole-song dynamic prediction with DAMFF's sliding window (DAMFF §4.4.1).

A dynamic model is trained on windows of ``T`` = 30 s (60 segments of 0.5 s). A song of any length is
predicted with windows of ``T`` seconds moved by a hop of ``t`` seconds: the first window contributes its
whole ``T`` seconds of V-A values, each later window only its last ``t`` seconds. Valence and arousal may
use different hops (the paper uses 0.5 s for valence and 2.5 s for arousal); each dimension's curve is
assembled from its own window schedule, and windows shared by both schedules are run once.

Choices the paper leaves open:

- **Grid.** ``n_seg = frames // segment_frames``: a trailing partial segment (< 0.5 s) is dropped, so the
  curve has one value per whole 0.5 s segment; value *i* describes ``[0.5 i, 0.5 (i + 1))`` seconds.
- **End of the song.** Windows start at ``0, h, 2h, ...`` while they fit in the song. If the last one
  ends before the song does (the hop does not divide ``n_seg - 60``), one more window aligned to the song
  end is run and contributes only the segments not yet covered. Every segment is thus taken from exactly
  one window: the first window or the window whose *last* ``h`` segments it is in (or the end window).
- **Short songs.** Songs shorter than ``T`` are padded at the end to ``T`` and the output is trimmed to the
  song's segments. The paper "zero-pads"; since the model normalises its dB input per mel band
  (:class:`~moodscope.models.InputNorm`), we pad with the model's normalisation mean, which is exactly
  zero in the normalised domain the network sees (0 dB would be a loud, bright frame on our absolute
  dB scale). In reuse mode the padding segments' embedding is computed from such a segment, so both modes
  agree.
- **Modes.** ``mode="reuse"`` (default) embeds every 0.5 s segment of the song once with the model's
  ``embed_segments`` and runs only ``sequence_head`` per window; this is exact because the convolutions
  see one segment at a time and BatchNorm is in eval mode. ``mode="naive"`` runs the full model on every
  window; it is the reference the tests compare against. The model is put in eval mode for the call and
  its previous mode is restored afterwards.
- **Memory.** Features are sliced per batch (nothing of size "all windows" is materialised); embeddings
  are ``n_seg x d`` floats (a few MB for an hour). :func:`predict_from_blocks` takes features as an
  iterator of blocks (e.g. from a chunked feature extractor) so a long file never needs its whole
  feature matrix in memory.

Examples
--------
>>> import numpy as np
>>> from moodscope.models import build
>>> from moodscope.inference import sliding_predict
>>> model = build("damff", width=0.25)
>>> feats = np.random.default_rng(0).normal(-40, 20, size=(9500, 128)).astype(np.float32)  # 95 s
>>> curve = sliding_predict(model, feats, hop_valence=0.5, hop_arousal=2.5)
>>> curve.shape
(190, 2)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..config import SEGMENT_S, WINDOW_S
from ..errors import AudioError, UsageError

__all__ = [
    "DIMENSIONS",
    "WindowPlan",
    "embed_stream",
    "predict_from_blocks",
    "predict_from_embeddings",
    "resolve_hops",
    "segment_embeddings",
    "sliding_predict",
    "window_plan",
]

#: Output columns, in order.
DIMENSIONS = ("valence", "arousal")
#: Default window length in segments (30 s).
WINDOW_SEGMENTS = int(round(WINDOW_S / SEGMENT_S))
#: Windows per ``sequence_head`` call in reuse mode (each is ``window x d`` floats).
_HEAD_BATCH = 256


# ----------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class WindowPlan:
    """One window of a sliding schedule: it starts at segment ``start`` and supplies the song's
    segments ``[keep_start, keep_stop)`` (song coordinates)."""

    start: int
    keep_start: int
    keep_stop: int


def window_plan(
    n_seg: int, *, window_segments: int = WINDOW_SEGMENTS, hop_segments: int = 1
) -> list[WindowPlan]:
    """The §4.4.1 sliding-window schedule over a song of ``n_seg`` segments.

    Parameters
    ----------
    n_seg : int
        Segments in the song (>= 1).
    window_segments : int
        Window length ``T`` in segments (60 = 30 s).
    hop_segments : int
        Hop ``t`` in segments, ``1 <= hop_segments <= window_segments``.

    Returns
    -------
    list of WindowPlan
        Their ``[keep_start, keep_stop)`` ranges partition ``[0, n_seg)`` in order. A song shorter than
        the window gives one window at 0 (to be padded) keeping ``[0, n_seg)``.

    Examples
    --------
    >>> [(p.start, p.keep_start, p.keep_stop) for p in window_plan(10, window_segments=6, hop_segments=3)]
    [(0, 0, 6), (3, 6, 9), (4, 9, 10)]
    """
    if n_seg < 1:
        raise ValueError(f"n_seg must be >= 1, got {n_seg}")
    if window_segments < 1:
        raise ValueError(f"window_segments must be >= 1, got {window_segments}")
    if not 1 <= hop_segments <= window_segments:
        raise ValueError(f"hop must be between 1 and {window_segments} segments, got {hop_segments}")
    if n_seg <= window_segments:
        return [WindowPlan(0, 0, n_seg)]
    plans = [WindowPlan(0, 0, window_segments)]
    start = hop_segments
    while start + window_segments <= n_seg:
        plans.append(WindowPlan(start, start + window_segments - hop_segments, start + window_segments))
        start += hop_segments
    covered = plans[-1].keep_stop
    if covered < n_seg:  # align a last window to the song end; it supplies what is left (< hop)
        plans.append(WindowPlan(n_seg - window_segments, covered, n_seg))
    return plans


def resolve_hops(
    hop_s: float | Mapping[str, float] | None = None,
    *,
    hop_valence: float | None = None,
    hop_arousal: float | None = None,
) -> dict[str, float]:
    """Per-dimension hops in seconds: 0.5 s by default, then ``hop_s`` (a number for both or a mapping
    ``{"valence": ..., "arousal": ...}``), then ``hop_valence`` / ``hop_arousal``, later ones winning."""
    hops = dict.fromkeys(DIMENSIONS, SEGMENT_S)
    if isinstance(hop_s, Mapping):
        unknown = set(hop_s) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"hop_s keys must be among {DIMENSIONS}, got {sorted(unknown)}")
        hops.update({k: float(v) for k, v in hop_s.items()})
    elif hop_s is not None:
        hops = dict.fromkeys(DIMENSIONS, float(hop_s))
    if hop_valence is not None:
        hops["valence"] = float(hop_valence)
    if hop_arousal is not None:
        hops["arousal"] = float(hop_arousal)
    return hops


def hop_segments(name: str, hop: float, window_segments: int) -> int:
    """The hop ``hop`` (seconds) of dimension ``name`` in 0.5 s segments; :class:`UsageError` unless it is a
    positive multiple of 0.5 s no longer than the window."""
    n = hop / SEGMENT_S
    k = int(round(n)) if math.isfinite(n) else 0  # round(nan) raises: nan and inf are refused below
    if not math.isfinite(n) or abs(n - k) > 1e-6 or k < 1:
        raise UsageError(f"{name} hop must be a positive multiple of {SEGMENT_S} s, got {hop}")
    if k > window_segments:
        raise UsageError(
            f"{name} hop {hop} s is longer than the window ({window_segments * SEGMENT_S} s); "
            "segments would be skipped"
        )
    return k


def _schedules(
    n_seg: int, window_segments: int, hops: dict[str, float]
) -> dict[int, list[tuple[int, int, int]]]:
    """``{window start: [(column, keep_start, keep_stop), ...]}`` for both dimensions' schedules."""
    by_start: dict[int, list[tuple[int, int, int]]] = {}
    for col, dim in enumerate(DIMENSIONS):
        k = hop_segments(dim, hops[dim], window_segments)
        for p in window_plan(n_seg, window_segments=window_segments, hop_segments=k):
            by_start.setdefault(p.start, []).append((col, p.keep_start, p.keep_stop))
    return dict(sorted(by_start.items()))


# ------------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _model_device(model: torch.nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        device = torch.device(device)
        model.to(device)
        return device
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` on ``device`` to ``dtype``, or nothing for ``None`` (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _segment_frames(model) -> int:
    return int(getattr(model, "segment_frames", 50))


def _pad_row(model, n_mels: int, device: torch.device) -> torch.Tensor:
    """The dB frame used for padding: the model's InputNorm mean (zero after normalisation)."""
    norm = getattr(model, "norm", None)
    mean = getattr(norm, "mean", None)
    if mean is None:
        return torch.zeros(n_mels, device=device)
    return mean.detach().to(device=device, dtype=torch.float32)


def _as_features(feats, n_mels: int | None) -> torch.Tensor:
    """``feats`` as a 2-D float tensor ``(frames, n_mels)`` sharing memory where possible."""
    t = torch.as_tensor(feats) if isinstance(feats, np.ndarray) else feats
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"features must be a numpy array or a torch tensor, not {type(feats).__name__}")
    if t.dim() != 2 or (n_mels is not None and t.shape[1] != n_mels):
        want = n_mels if n_mels is not None else "n_mels"
        raise ValueError(f"features must have shape (frames, {want}), got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"features must be floating point, got {t.dtype}")
    return t


#: Model outputs that are a V-A curve per 0.5 s step (``forward`` -> ``(batch, steps, 2)``).
CURVE_OUTPUTS = ("dynamic", "mood")


def _check_model(model, mode: str) -> None:
    if getattr(model, "output", None) not in CURVE_OUTPUTS:
        raise ValueError(f"sliding-window inference needs a dynamic model, got output={model.output!r}")
    if mode == "reuse" and not (hasattr(model, "embed_segments") and hasattr(model, "sequence_head")):
        raise ValueError(
            f"model {type(model).__name__} has no embed_segments/sequence_head; use mode='naive'"
        )
    if mode not in ("reuse", "naive"):
        raise ValueError(f"mode must be 'reuse' or 'naive', got {mode!r}")


def _too_short(frames: int, sf: int) -> AudioError:
    return AudioError(
        None, f"too short: {frames} feature frames, need at least one 0.5 s segment ({sf} frames)"
    )


def _progress(total: int | None, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="seg", leave=False)


# ----------------------------------------------------------------------------------------- embedding
def _embed_batch(
    model, seg: torch.Tensor, device: torch.device, autocast: torch.dtype | None
) -> torch.Tensor:
    seg = seg.to(device=device, dtype=torch.float32, non_blocking=True)  # (n, 1, sf, M)
    if not torch.isfinite(seg).all():
        raise ValueError("features contain NaN or infinite values")
    with autocast_context(device, autocast):
        return model.embed_segments(seg).float()  # (n, d)


def segment_embeddings(
    model,
    feats,
    *,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    autocast: torch.dtype | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Embed every whole 0.5 s segment of a song once (eval mode, no autograd).

    Parameters
    ----------
    model : MoodModel with ``embed_segments``
    feats : np.ndarray or torch.Tensor [shape=(frames, n_mels)]
        Log-Mel dB of the whole song.
    batch_size : int
        Segments per ``embed_segments`` call.
    device : str or torch.device, optional
        Where to run; the model is moved there. Default: where the model is.
    autocast : torch.dtype, optional
        Run the embedding under ``torch.autocast`` with this dtype (e.g. ``torch.bfloat16``).
    progress : bool

    Returns
    -------
    torch.Tensor [shape=(frames // segment_frames, d)]
        float32, on ``device``.
    """
    dev = _model_device(model, device)
    sf = _segment_frames(model)
    x = _as_features(feats, getattr(model, "n_mels", None))
    n_seg = x.shape[0] // sf
    if n_seg < 1:
        raise _too_short(x.shape[0], sf)
    bar = _progress(n_seg, progress, "embedding")
    out = []
    with _eval_mode(model), torch.inference_mode():
        for i in range(0, n_seg, batch_size):
            j = min(n_seg, i + batch_size)
            seg = x[i * sf : j * sf].reshape(j - i, 1, sf, x.shape[1])  # (n, 1, sf, M), a view
            out.append(_embed_batch(model, seg, dev, autocast))
            if bar is not None:
                bar.update(j - i)
    if bar is not None:
        bar.close()
    return torch.cat(out)  # (n_seg, d)


def embed_stream(
    model,
    blocks: Iterable,
    *,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    autocast: torch.dtype | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Like :func:`segment_embeddings` for features arriving as consecutive blocks.

    ``blocks`` yields arrays ``(frames_i, n_mels)`` of one song in order (any sizes); frames that do
    not complete a segment are carried over to the next block, and a trailing partial segment at the
    end is dropped. Only one batch of segments is held at a time.

    Returns
    -------
    torch.Tensor [shape=(total_frames // segment_frames, d)]
    """
    dev = _model_device(model, device)
    sf = _segment_frames(model)
    n_mels = getattr(model, "n_mels", None)
    bar = _progress(None, progress, "embedding")
    out: list[torch.Tensor] = []
    pending: list[torch.Tensor] = []  # frames not yet embedded, fewer than batch_size * sf
    n_pending = 0
    total = 0
    chunk = batch_size * sf

    def flush(buf: torch.Tensor) -> None:
        n = buf.shape[0] // sf
        out.append(_embed_batch(model, buf[: n * sf].reshape(n, 1, sf, buf.shape[1]), dev, autocast))
        if bar is not None:
            bar.update(n)

    with _eval_mode(model), torch.inference_mode():
        for block in blocks:
            b = _as_features(block, n_mels)
            n_mels = b.shape[1]
            total += b.shape[0]
            pending.append(b)
            n_pending += b.shape[0]
            if n_pending < chunk:
                continue
            buf = torch.cat(pending) if len(pending) > 1 else pending[0]
            n_full = (buf.shape[0] // chunk) * chunk
            for i in range(0, n_full, chunk):
                flush(buf[i : i + chunk])
            rest = buf[n_full:]
            pending, n_pending = ([rest] if rest.shape[0] else []), rest.shape[0]
        if n_pending >= sf:
            flush(torch.cat(pending))
    if bar is not None:
        bar.close()
    if not out:
        raise _too_short(total, sf)
    return torch.cat(out)


# ------------------------------------------------------------------------------------------ sliding
def predict_from_embeddings(
    model,
    emb: torch.Tensor,
    *,
    window_segments: int = WINDOW_SEGMENTS,
    hop_s: float | Mapping[str, float] | None = None,
    hop_valence: float | None = None,
    hop_arousal: float | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Slide the model's ``sequence_head`` over a song's segment embeddings (reuse mode).

    Parameters
    ----------
    model : MoodModel with ``embed_segments`` and ``sequence_head``
    emb : torch.Tensor [shape=(n_seg, d)]
        From :func:`segment_embeddings` or :func:`embed_stream`.
    window_segments, hop_s, hop_valence, hop_arousal
        As in :func:`sliding_predict`.

    Returns
    -------
    np.ndarray [shape=(n_seg, 2), dtype=float32]
        (valence, arousal) per segment.
    """
    _check_model(model, "reuse")
    dev = _model_device(model, device)
    n_seg = emb.shape[0]
    if n_seg < 1:
        raise _too_short(0, _segment_frames(model))
    schedule = _schedules(
        n_seg, window_segments, resolve_hops(hop_s, hop_valence=hop_valence, hop_arousal=hop_arousal)
    )
    out = np.empty((n_seg, 2), dtype=np.float32)
    with _eval_mode(model), torch.inference_mode():
        emb = emb.to(device=dev, dtype=torch.float32)
        if n_seg < window_segments:  # pad with the embedding of an "average" segment
            sf, n_mels = _segment_frames(model), int(model.n_mels)
            pad_seg = _pad_row(model, n_mels, dev).expand(1, 1, sf, n_mels)  # (1, 1, sf, M)
            pad = model.embed_segments(pad_seg).float()  # (1, d)
            emb = torch.cat([emb, pad.expand(window_segments - n_seg, -1)])  # (window, d)
        starts = list(schedule)
        offsets = torch.arange(window_segments, device=dev)
        for i in range(0, len(starts), _HEAD_BATCH):
            batch = starts[i : i + _HEAD_BATCH]
            idx = torch.as_tensor(batch, device=dev)[:, None] + offsets  # (nb, window)
            pred = model.sequence_head(emb[idx]).float().cpu().numpy()  # (nb, window, 2)
            _scatter(out, schedule, batch, pred)
    return out


def _scatter(out: np.ndarray, schedule, starts: list[int], pred: np.ndarray) -> None:
    for w, start in enumerate(starts):
        for col, lo, hi in schedule[start]:
            out[lo:hi, col] = pred[w, lo - start : hi - start, col]


def _predict_naive(
    model,
    x: torch.Tensor,
    n_seg: int,
    *,
    window_segments: int,
    hops: dict[str, float],
    batch_size: int,
    device: torch.device,
    autocast: torch.dtype | None,
    progress: bool,
) -> np.ndarray:
    sf = _segment_frames(model)
    win_frames = window_segments * sf
    schedule = _schedules(n_seg, window_segments, hops)
    starts = list(schedule)
    per_batch = max(1, batch_size // window_segments)
    pad_row = _pad_row(model, x.shape[1], device)
    out = np.empty((n_seg, 2), dtype=np.float32)
    bar = _progress(len(starts) * window_segments, progress, "windows")
    with _eval_mode(model), torch.inference_mode():
        for i in range(0, len(starts), per_batch):
            batch = starts[i : i + per_batch]
            windows = []
            for s in batch:
                w = x[s * sf : min((s + window_segments), n_seg) * sf].to(device=device, dtype=torch.float32)
                if w.shape[0] < win_frames:  # only for songs shorter than one window
                    w = torch.cat([w, pad_row.expand(win_frames - w.shape[0], -1)])
                windows.append(w)
            xb = torch.stack(windows)[:, None]  # (nb, 1, window_frames, M)
            if not torch.isfinite(xb).all():
                raise ValueError("features contain NaN or infinite values")
            with autocast_context(device, autocast):
                pred = model(xb).float().cpu().numpy()  # (nb, window, 2)
            _scatter(out, schedule, batch, pred)
            if bar is not None:
                bar.update(len(batch) * window_segments)
    if bar is not None:
        bar.close()
    return out


def sliding_predict(
    model,
    feats,
    *,
    window_segments: int = WINDOW_SEGMENTS,
    hop_s: float | Mapping[str, float] | None = None,
    hop_valence: float | None = None,
    hop_arousal: float | None = None,
    mode: str = "reuse",
    batch_size: int = 128,
    device: str | torch.device | None = None,
    autocast: torch.dtype | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Dynamic (valence, arousal) of a whole song with the §4.4.1 sliding window.

    Parameters
    ----------
    model : MoodModel
        A dynamic model (``output == "dynamic"``); ``mode="reuse"`` also needs ``embed_segments`` and
        ``sequence_head``. Run in eval mode; its mode is restored afterwards.
    feats : np.ndarray or torch.Tensor [shape=(frames, n_mels)]
        Log-Mel dB of the whole song, any length >= one segment (50 frames).
    window_segments : int
        Window ``T`` in segments (60 = 30 s, the training length).
    hop_s : float or mapping, optional
        Hop ``t`` in seconds for both dimensions, or ``{"valence": tv, "arousal": ta}``. Each hop is a
        positive multiple of 0.5 s no longer than the window. Default 0.5 s.
    hop_valence, hop_arousal : float, optional
        Per-dimension hops; override ``hop_s`` (the paper uses 0.5 and 2.5).
    mode : {"reuse", "naive"}
        Embed each segment once and re-run only the sequence head per window (fast), or run the full
        model on every window (reference).
    batch_size : int
        Segments per CNN pass (naive mode: ``max(1, batch_size // window_segments)`` windows per pass).
    device : str or torch.device, optional
        Where to run; the model is moved there. Default: where the model is.
    autocast : torch.dtype, optional
        Run the CNN under ``torch.autocast`` with this dtype (e.g. ``torch.bfloat16`` on CPUs with
        AVX512-bf16); the sequence head stays float32 in reuse mode.
    progress : bool
        Show a progress bar.

    Returns
    -------
    np.ndarray [shape=(frames // segment_frames, 2), dtype=float32]
        Row *i* is (valence, arousal) of the segment ``[0.5 i, 0.5 (i + 1))`` s.

    Raises
    ------
    moodscope.errors.AudioError
        Fewer frames than one segment.
    ValueError
        Bad shapes, hops or mode; NaN/inf features.
    """
    _check_model(model, mode)
    hops = resolve_hops(hop_s, hop_valence=hop_valence, hop_arousal=hop_arousal)
    for dim in DIMENSIONS:  # validate before any heavy work
        hop_segments(dim, hops[dim], window_segments)
    x = _as_features(feats, getattr(model, "n_mels", None))
    sf = _segment_frames(model)
    n_seg = x.shape[0] // sf
    if n_seg < 1:
        raise _too_short(x.shape[0], sf)
    dev = _model_device(model, device)
    if mode == "naive":
        return _predict_naive(
            model,
            x,
            n_seg,
            window_segments=window_segments,
            hops=hops,
            batch_size=batch_size,
            device=dev,
            autocast=autocast,
            progress=progress,
        )
    emb = segment_embeddings(
        model, x, batch_size=batch_size, device=dev, autocast=autocast, progress=progress
    )
    return predict_from_embeddings(model, emb, window_segments=window_segments, hop_s=hops, device=dev)


def predict_from_blocks(
    model,
    blocks: Iterable,
    *,
    window_segments: int = WINDOW_SEGMENTS,
    hop_s: float | Mapping[str, float] | None = None,
    hop_valence: float | None = None,
    hop_arousal: float | None = None,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    autocast: torch.dtype | None = None,
    progress: bool = False,
) -> np.ndarray:
    """:func:`sliding_predict` (reuse mode) for features arriving as blocks ``(frames_i, n_mels)``.

    Equal to ``sliding_predict(model, np.concatenate(list(blocks)), ...)`` but holds only one batch of
    features at a time (see :func:`embed_stream`).
    """
    _check_model(model, "reuse")
    hops = resolve_hops(hop_s, hop_valence=hop_valence, hop_arousal=hop_arousal)
    for dim in DIMENSIONS:
        hop_segments(dim, hops[dim], window_segments)
    emb = embed_stream(
        model, blocks, batch_size=batch_size, device=device, autocast=autocast, progress=progress
    )
    return predict_from_embeddings(model, emb, window_segments=window_segments, hop_s=hops, device=device)
