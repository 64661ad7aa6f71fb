"""Tonality: Krumhansl-Kessler key profiles, and key-invariant mode features of audio every 0.5 s.

Mode (major vs minor) is one of the most consistent cues of valence in music psychology, and the frozen
MusiCNN embedding carries little of it (a linear probe tells the major and minor versions of the same
piano pieces apart on about 62 % of held-out pieces). :func:`mode_features` measures it directly: a
pitch-class profile (chroma) of the audio around each 0.5 s step, correlated with the 24 rotated
Krumhansl-Kessler key profiles (the Krumhansl-Schmuckler key-finding algorithm); the features are the best
major and best minor correlation and their difference, over a short (3 s) and a long (10 s) context. They
do not depend on the key itself, only on how major or minor the music sounds.

Chroma: magnitude STFT at 16 kHz (4096-sample Hann window, 800-sample hop: 20 frames per second), each bin
from 65 Hz to 2.1 kHz (C2 to C7) assigned to its pitch class with a raised-cosine weight that falls to zero
half a semitone away; frame magnitudes summed per pitch class.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

#: Number of :func:`mode_features` per step.
MODE_BINS = 19

_SR, _N_FFT, _HOP = 16000, 4096, 800
_FMIN, _FMAX = 65.4, 2093.0
_CONTEXTS_S = (3.0, 10.0)


def _profiles() -> np.ndarray:
    """The 24 rotated profiles, centred and unit-norm: ``(2, 12, 12)`` = (mode, tonic, pitch class)."""
    out = np.zeros((2, 12, 12))
    for row, prof in enumerate((KK_MAJOR, KK_MINOR)):
        for tonic in range(12):
            p = np.roll(prof, tonic)  # p[tonic] is the profile's tonic weight
            p = p - p.mean()
            out[row, tonic] = p / np.linalg.norm(p)
    return out


_PROFILES = _profiles()


def key_correlations(histograms) -> np.ndarray:
    """Pearson correlation of pitch-class histograms with the 24 rotated Krumhansl-Kessler profiles.

    Parameters
    ----------
    histograms : array [shape=(12,) or (n, 12)]

    Returns
    -------
    np.ndarray [shape=(2, 12) or (n, 2, 12)]
        ``[..., 0, t]`` major with tonic ``t``, ``[..., 1, t]`` minor; 0 for a flat histogram.
    """
    h = np.asarray(histograms, dtype=np.float64)
    if h.shape[-1] != 12:
        raise ValueError(f"a pitch-class histogram has 12 values, not {h.shape[-1]}")
    hc = h - h.mean(-1, keepdims=True)
    norm = np.linalg.norm(hc, axis=-1)
    corr = np.einsum("...p,mtp->...mt", hc, _PROFILES)
    return np.where(norm[..., None, None] > 0, corr / np.maximum(norm, 1e-12)[..., None, None], 0.0)


def _chroma_weights() -> np.ndarray:
    freqs = np.arange(_N_FFT // 2 + 1) * _SR / _N_FFT
    w = np.zeros((12, freqs.size))
    ok = (freqs >= _FMIN) & (freqs <= _FMAX)
    midi = 69 + 12 * np.log2(freqs[ok] / 440.0)
    for pc in range(12):
        d = (midi - pc + 6) % 12 - 6  # distance in semitones to the nearest pitch of class pc
        w[pc, ok] = np.where(np.abs(d) < 0.5, np.cos(np.pi * d) ** 2, 0.0)
    return w


_CHROMA = _chroma_weights()
#: the STFT bins with a weight (65 Hz - 2.1 kHz: 521 of 2049), and their weights ``(bins, 12)``, float32
_BINS = slice(int(np.flatnonzero(_CHROMA.any(0))[0]), int(np.flatnonzero(_CHROMA.any(0))[-1]) + 1)
_CHROMA_T = torch.from_numpy(np.ascontiguousarray(_CHROMA[:, _BINS].T, dtype=np.float32))
_WINDOW = torch.from_numpy(np.hanning(_N_FFT + 1)[:-1].astype(np.float32))


def chroma(y: np.ndarray) -> np.ndarray:
    """Pitch-class magnitudes ``(frames, 12)`` of mono 16 kHz audio, 20 frames per second (frame ``t`` centred
    on sample ``800 t``; the signal zero-padded by half a window at each end).

    float32 in torch (its FFT uses every core; 2x numpy's float32 ``rfft`` on a 2-core machine), only the
    weighted bins' magnitudes computed.
    """
    y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    with torch.inference_mode():
        frames = F.pad(y, (_N_FFT // 2, _N_FFT // 2)).unfold(0, _N_FFT, _HOP)  # (frames, n_fft), a view
        mag = torch.fft.rfft(frames * _WINDOW, dim=1)[:, _BINS].abs()
        return (mag @ _CHROMA_T).numpy()


def mode_features(y: np.ndarray, sr: int, steps: int) -> np.ndarray:
    """Key-invariant mode features ``(steps, 19)`` of mono audio at 16 kHz, one row per 0.5 s step.

    Per context (3 s, then 10 s, centred on the step): the best correlation with a major key profile, with a
    minor one, and their difference (positive = more major) -- 6 values; then, over the 10 s context, the
    pitch-class profile rotated to the tonic of the best key and normalised to sum 1 (12 values: how much of
    each scale degree sounds, e.g. the minor against the major third) and that key's mode (1 minor, 0 major).
    Silence gives zeros.
    """
    if sr != _SR:
        raise ValueError(f"mode_features expects {_SR} Hz audio, got {sr}")
    c = chroma(y)
    csum = np.concatenate([np.zeros((1, 12)), np.cumsum(c, axis=0)])
    fps = _SR / _HOP
    centres = (np.arange(steps) + 0.5) * 0.5 * fps
    out = np.zeros((steps, MODE_BINS), dtype=np.float32)
    for k, ctx in enumerate(_CONTEXTS_S):
        lo = np.clip(np.round(centres - ctx * fps / 2).astype(int), 0, len(c))
        hi = np.clip(np.round(centres + ctx * fps / 2).astype(int), 0, len(c))
        hi = np.maximum(hi, np.minimum(lo + 1, len(c)))
        hist = csum[hi] - csum[lo]
        corr = key_correlations(hist)  # (steps, 2, 12)
        best = corr.max(-1)  # (steps, 2)
        out[:, 3 * k] = best[:, 0]
        out[:, 3 * k + 1] = best[:, 1]
        out[:, 3 * k + 2] = best[:, 0] - best[:, 1]
    # the long context's profile relative to its best key (hist and corr are the last context's)
    flat = corr.reshape(len(corr), 24).argmax(-1)
    mode, tonic = flat // 12, flat % 12
    rel = hist[np.arange(steps)[:, None], (np.arange(12)[None, :] + tonic[:, None]) % 12]
    total = rel.sum(-1, keepdims=True)
    out[:, 6:18] = np.where(total > 0, rel / np.maximum(total, 1e-12), 0.0)
    out[:, 18] = np.where(total[:, 0] > 0, mode, 0)
    return out
