"""Shared test helpers: seeded synthetic audio written in ``tmp_path``, and an isolated feature cache."""

from __future__ import annotations

import os
from pathlib import Path

# numba (librosa's reference features, used only by the tests) compiles for the host CPU by default; on an
# Intel Sapphire Rapids (AVX-512 FP16, AMX) llvmlite 0.50 names the host "rocketlake" and the compiled peak
# picker of librosa.onset.onset_detect segfaults, taking the whole pytest process with it. Generic x86-64
# code runs everywhere and the tests only need librosa's numbers, not its speed.
os.environ.setdefault("NUMBA_CPU_NAME", "generic")

import numpy as np
import pytest
import soundfile as sf

SR = 44100

#: the fixtures of the bad-input corpus (``cli``, ``tiny_model``) and of the fuzz tests (``fuzz``, the Hypothesis
#: profiles): plugins rather than sub-folder conftest.py files, whose module name ``conftest`` would shadow this one
#: for the tests that ``from conftest import make_tone``
pytest_plugins = ["badinput.harness", "fuzz.harness"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The held-out figures of the learning tests (``tests/training/test_learning.py``), pass or fail, so the
    margin to each bar is in every log."""
    rows = config.__dict__.get("moodscope_learning_figures")
    if rows:
        terminalreporter.write_sep("-", "learning figures (held-out)")
        for row in rows:
            terminalreporter.write_line(row)


def _native_bf16() -> tuple[bool, str]:
    from moodscope.precision import cpu_bf16_native

    return cpu_bf16_native()


#: for tests of bf16 itself: they run only where the CPU has native bfloat16 (and oneDNN is not capped
#: below it by ONEDNN_MAX_CPU_ISA); elsewhere bf16 falls back to float32 and there is nothing to compare
requires_native_bf16 = pytest.mark.skipif(
    not _native_bf16()[0], reason=f"no native bfloat16 here: {_native_bf16()[1]}"
)

#: soundfile arguments per extension (libsndfile does not infer every container from the name)
_SF_FORMATS = {
    ".wav": {"format": "WAV"},
    ".flac": {"format": "FLAC"},
    ".ogg": {"format": "OGG", "subtype": "VORBIS"},
    ".oga": {"format": "OGG", "subtype": "VORBIS"},
    ".opus": {"format": "OGG", "subtype": "OPUS"},  # Opus needs sr in {8, 12, 16, 24, 48} kHz
    ".mp3": {"format": "MP3"},
    ".aiff": {"format": "AIFF"},
    ".aif": {"format": "AIFF"},
}


def make_tone(
    freq: float = 1000.0,
    duration: float = 1.0,
    *,
    sr: int = SR,
    amp: float = 0.5,
    noise: float = 0.0,
    channels: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """A sine (plus seeded white noise), float32, shape ``(n,)`` or ``(n, channels)``.

    Channel ``c`` is the tone scaled by ``1 / (c + 1)`` with its own noise, so channels differ.
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration * sr))
    t = np.arange(n) / sr
    chans = [
        amp / (c + 1) * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(n) for c in range(channels)
    ]
    y = np.stack(chans, axis=1) if channels > 1 else chans[0]
    return y.astype(np.float32)


@pytest.fixture
def tone():
    """The :func:`make_tone` factory."""
    return make_tone


@pytest.fixture
def write_audio(tmp_path):
    """``write_audio(name, y, sr=44100, **soundfile_kwargs) -> Path`` writes ``y`` under ``tmp_path``."""

    def _write(name: str, y: np.ndarray, sr: int = SR, **kwargs) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        opts = {**_SF_FORMATS.get(path.suffix.lower(), {}), **kwargs}
        sf.write(str(path), y, sr, **opts)
        return path

    return _write


@pytest.fixture(autouse=True)
def _isolated_feature_cache(tmp_path_factory, monkeypatch):
    """Point the default feature cache at a fresh temporary directory (never ``~/.cache``), and predict in the
    test's own process unless a test asks for workers (``--jobs``): spawning a pool costs seconds."""
    monkeypatch.setenv("MOODSCOPE_CACHE", str(tmp_path_factory.mktemp("feature-cache")))
    monkeypatch.setenv("MOODSCOPE_JOBS", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run the suite's small tensor ops on one thread: on a busy 2-core machine OpenMP's spinning threads
    made small convolutions and LSTMs up to 10x slower, and one thread keeps timings and results stable."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
