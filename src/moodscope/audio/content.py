"""What a track's samples say beyond its music: far over full scale, clipped, or without musical content.

A model answers for any audio it is given; these notes say when the answer means little. They are measured on
the decoded samples at the file's own rate, while the file is read (whole or block by block), and reach the
result as its ``warnings`` (and one ``warning:`` line per note on the command line):

- **over range**: the largest sample is more than 6 dB over full scale (a float file written without
  normalising it; lossy decoders overshoot full scale by a dB or two on loud masters, which is not flagged);
- **clipped**: more than 1 % of the samples sit at full scale in runs (flat tops: the waveform was cut off);
- **no musical content**: fewer than 2 % of the 50 ms frames hold sound above -70 dBFS once each frame's own DC
  offset is taken out (digital silence with a click, a constant DC level, clicks at -90 dBFS).

Nothing here refuses a file (all-zero audio is refused as ``silent`` by :mod:`moodscope.audio.decode`).
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np

from .samples import to_mono

#: Frame length (seconds) of the content measure.
FRAME_S = 0.05
#: A frame holds sound when its RMS, its own mean taken out, is above this (dBFS).
ACTIVE_DB = -70.0
#: Fewer active frames than this share of the track: no musical content.
MIN_ACTIVE_SHARE = 0.02
#: A peak above this (linear, 1.0 = full scale: +6 dBFS) is "over range".
OVER_RANGE = 2.0
#: A sample at or above this share of full scale, next to another one, is part of a flat (clipped) top.
CLIP_LEVEL = 0.999
#: More than this share of samples in flat tops: "clipped".
MAX_CLIPPED_SHARE = 0.01

_collector: contextvars.ContextVar = contextvars.ContextVar("moodscope_content_notes", default=None)


class ContentMeter:
    """Accumulates the measures over consecutive pieces of one track's samples (``(n,)`` or ``(n, channels)``
    float arrays at ``sr``), so that a file read block by block is measured as if read whole."""

    def __init__(self, sr: int):
        self.sr = int(sr)
        self.frame = max(1, int(round(FRAME_S * sr)))
        self.peak = 0.0
        self.samples = 0
        self.clipped = 0
        self.frames = 0
        self.active = 0
        self._rest = np.zeros(0, dtype=np.float64)  # mono samples of an unfinished frame
        self._last_high = False  # the previous piece ended on a sample at full scale
        self._last_flat = False  # ... counted as part of a flat top
        self._threshold = (10.0 ** (ACTIVE_DB / 20.0)) ** 2

    def update(self, data: np.ndarray, mono: np.ndarray | None = None) -> None:
        """Measure the next piece: ``data`` ``(n,)`` or ``(n, channels)``; ``mono``, its channels' mean where the
        caller has it already (:func:`~moodscope.audio.samples.to_mono`)."""
        data = np.asarray(data)
        if data.size == 0:
            return
        # the peak from two reductions over the samples as they lie (|x| of a stereo track, reduced over its
        # short channel axis, cost 0.3 s for 3 minutes); the samples' magnitudes only where one reaches full scale
        peak = max(-float(data.min()), float(data.max()))
        self.peak = max(self.peak, peak)
        self.samples += data.shape[0]
        if not peak < CLIP_LEVEL:  # (NaN too: measured as before, the NaN refused elsewhere)
            mag = np.abs(data if data.ndim == 1 else data[:, 0])
            for c in range(1, 1 if data.ndim == 1 else data.shape[1]):
                np.maximum(mag, np.abs(data[:, c]), out=mag)
            high = mag >= CLIP_LEVEL
            flat = np.zeros_like(high)
            # samples at full scale with a neighbour at full scale (across pieces too)
            pair = high[1:] & high[:-1]
            flat[1:] |= pair
            flat[:-1] |= pair
            if self._last_high and high[0]:
                flat[0] = True
                self.clipped += not self._last_flat  # the previous piece's last sample, if not counted there
            self.clipped += int(flat.sum())
            self._last_high, self._last_flat = bool(high[-1]), bool(flat[-1])
        else:
            self._last_high = self._last_flat = False
        if mono is None:
            mono = to_mono(data)
        x = np.concatenate([self._rest, mono.astype(np.float64)])
        n = (x.size // self.frame) * self.frame
        if n:
            frames = x[:n].reshape(-1, self.frame)
            self.frames += frames.shape[0]
            self.active += int((frames.var(axis=1) > self._threshold).sum())
        self._rest = x[n:]

    def notes(self) -> list[str]:
        """The notes of everything measured so far (empty: nothing to say)."""
        frames, active = self.frames, self.active
        if self._rest.size:  # the last, partial frame
            frames += 1
            active += int(self._rest.var() > self._threshold)
        out = []
        if self.peak > OVER_RANGE:
            out.append(
                f"over range: peak {20.0 * math.log10(self.peak):+.1f} dBFS, far beyond full scale (a float file "
                "written without normalising it?); what it was meant to sound like is unknown"
            )
        elif self.samples and self.clipped / self.samples > MAX_CLIPPED_SHARE:
            out.append(
                f"clipped: {100.0 * self.clipped / self.samples:.1f} % of the samples sit at full scale in flat "
                "tops; the distortion may be heard as energy"
            )
        if frames and active < MIN_ACTIVE_SHARE * frames:
            seconds = active * self.frame / self.sr
            out.append(
                f"no musical content: {seconds:.2f} s of {self.samples / self.sr:.1f} s rise above {ACTIVE_DB:.0f} dBFS "
                "(silence, clicks or a constant offset); the mood reported means little"
            )
        return out


def collecting_enabled() -> bool:
    """True inside :func:`collect`: readers measure the samples only when someone listens."""
    return _collector.get() is not None


def report_samples(data, sr: int, mono: np.ndarray | None = None) -> None:
    """Measure a whole track's samples ``(n,)`` or ``(n, channels)`` at ``sr`` (``mono``: their channels' mean,
    where the caller has it) and :func:`report` them -- only inside :func:`collect` (otherwise nothing is
    computed)."""
    if collecting_enabled():
        meter = ContentMeter(sr)
        meter.update(data, mono)
        report(meter)


def report(meter: ContentMeter | None) -> None:
    """Hand a finished track's notes to the innermost :func:`collect` (none active: they are dropped)."""
    if meter is not None and _collector.get() is not None:
        report_notes(meter.notes())


def report_notes(found: list[str]) -> None:
    """Hand notes already made (kept in the feature cache, or collected by an inner :func:`collect`) to the
    innermost :func:`collect`."""
    notes = _collector.get()
    if notes is not None:
        notes.extend(n for n in found if n not in notes)


@contextlib.contextmanager
def collect():
    """Within the block, the notes of every track read in this context (thread and task) are appended to the
    list it yields."""
    notes: list[str] = []
    token = _collector.set(notes)
    try:
        yield notes
    finally:
        _collector.reset(token)
