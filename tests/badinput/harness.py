"""The bad-input corpus: shared helpers.

Every case runs the command line in-process (``moodscope.cli.main``) the way a user would, and asserts
the contract of the README's "What happens with bad input":

- the exit code (0 all well, 1 some inputs failed and the rest were done, 2 nothing could be done);
- one line on stderr naming the file and the cause, no traceback;
- the good inputs of the same run are kept, and nothing half-written is left behind.

``BadCase`` ids are the corpus's "kinds"; ``tests/badinput/test_corpus_size.py`` counts them. Registered as a pytest plugin in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from moodscope.cli import main

SR = 22050


@dataclass
class Run:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> Run``: the command line in-process, stdout and stderr captured."""

    def _run(*argv) -> Run:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 2
        cap = capsys.readouterr()
        return Run(code, cap.out, cap.err)

    return _run


def assert_clean_error(run: Run, *, code: int, name: str, cause: str | tuple[str, ...]) -> str:
    """Exit ``code``; no traceback; one stderr line names ``name`` and the cause (any of ``cause``).

    Returns that line.
    """
    assert run.code == code, f"exit {run.code}, expected {code}\nstderr:\n{run.err}"
    assert "Traceback" not in run.err, run.err
    causes = (cause,) if isinstance(cause, str) else cause
    hits = [ln for ln in run.lines() if name in ln and any(c.lower() in ln.lower() for c in causes)]
    assert hits, f"no stderr line names {name!r} with any of {causes}:\n{run.err}"
    return hits[0]


def leftovers(folder: Path) -> list[Path]:
    """Temporary or partial files under ``folder`` (what an interrupted or failed write could leave)."""
    return [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def write_clip(path: Path, seconds: float = 3.0, *, seed: int = 0, sr: int = SR, **kw) -> Path:
    """A short noisy two-tone clip (format from the extension)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = (
        0.3 * np.sin(2 * np.pi * 440 * t)
        + 0.1 * np.sin(2 * np.pi * 1250 * t)
        + 0.02 * rng.standard_normal(t.size)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".ogg": {"format": "OGG", "subtype": "VORBIS"}, ".mp3": {"format": "MP3"}}.get(
        path.suffix.lower(), {}
    )
    sf.write(str(path), y.astype(np.float32), sr, **{**fmt, **kw})
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny DAMFF model file: predicts a 3 s clip in a fraction of a second."""
    import torch

    from moodscope.config import FeatureConfig
    from moodscope.modelfile import save_model
    from moodscope.models import build

    torch.manual_seed(0)
    m = build("damff", width=0.0625, embed_dim=8, lstm_hidden=4).eval()
    path = tmp_path_factory.mktemp("badinput-model") / "tiny.safetensors"
    info = {"description": "tiny", "task": {"kind": "dynamic", "window_s": 30.0, "hop_valence": 0.5}}
    save_model(path, m, FeatureConfig(), info)
    return path


#: a folder nobody may create, root included (sysfs refuses mkdir with EPERM): CI runs as root, where a chmod
#: 0o555 folder does not stop writes, so "a read-only destination" is a path under /sys
UNWRITABLE_DIR = Path("/sys/moodscope-badinput-out")
#: a file nobody may create (EACCES for root too)
UNWRITABLE_FILE = Path("/sys/moodscope-badinput.json")
on_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/sys/kernel").is_dir(), reason="needs Linux's sysfs"
)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
