"""Fuzzing audio headers: mutated WAV/AIFF/FLAC/OGG/Opus/MP3 files through ``audio_info`` and ``load_audio``.

Each example starts from a small valid file and flips bytes, overwrites header fields with extreme values,
cuts or repeats the file. The decoder must either read it or raise :class:`AudioError`; it must not hang,
raise anything else, or allocate beyond the cap (a header may claim gigabytes).
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from fuzz.harness import within_limits
from moodscope.audio.decode import audio_info, load_audio
from moodscope.errors import AudioError

_FORMATS = {
    ".wav": {"format": "WAV", "subtype": "PCM_16"},
    ".aiff": {"format": "AIFF", "subtype": "PCM_16"},
    ".flac": {"format": "FLAC"},
    ".ogg": {"format": "OGG", "subtype": "VORBIS"},
    ".opus": {"format": "OGG", "subtype": "OPUS"},
    ".mp3": {"format": "MP3"},
}


def _seed_file(ext: str) -> bytes:
    sr = 48000 if ext == ".opus" else 16000
    t = np.arange(int(0.5 * sr)) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, y, sr, **_FORMATS[ext])
    return buf.getvalue()


SEEDS = {ext: _seed_file(ext) for ext in _FORMATS}

_EXTREMES = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


@st.composite
def mutated(draw):
    ext = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[ext])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "u32", "u16", "cut", "splice", "zero"]))
        # most of what a parser trusts is in the first few hundred bytes: aim there more often
        hi = draw(st.sampled_from([min(len(data), 128), min(len(data), 1024), len(data)]))
        if hi < 4:
            break
        at = draw(st.integers(0, hi - 4))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "u32":
            data[at : at + 4] = struct.pack("<I", draw(st.sampled_from(_EXTREMES)))
        elif op == "u16":
            data[at : at + 2] = struct.pack("<H", draw(st.sampled_from(_EXTREMES)) & 0xFFFF)
        elif op == "cut":
            del data[at:]
        elif op == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "zero":
            n = draw(st.integers(1, 64))
            data[at : at + n] = bytes(min(n, len(data) - at))
    return ext, bytes(data)


@pytest.mark.fuzz
def test_fuzz_audio_headers(fuzz, tmp_path):
    @given(mutated())
    def inner(case):
        ext, data = case
        path = tmp_path / f"f{ext}"
        path.write_bytes(data)
        with within_limits():
            try:
                info = audio_info(path)
                assert info.samplerate > 0 and info.channels > 0 and info.frames > 0
                y = load_audio(path, sr=16000)
                assert y.dtype == np.float32 and np.isfinite(y).all()
            except AudioError as e:
                assert str(e).startswith(str(path)) and "\n" not in str(e)

    fuzz(inner)


@pytest.mark.fuzz
def test_fuzz_random_bytes_with_audio_names(fuzz, tmp_path):
    @given(st.sampled_from(sorted(SEEDS)), st.binary(min_size=1, max_size=4096))
    def inner(ext, data):
        path = tmp_path / f"r{ext}"
        path.write_bytes(data)
        with within_limits():
            try:
                load_audio(path, sr=16000)
            except AudioError:
                pass

    fuzz(inner)
