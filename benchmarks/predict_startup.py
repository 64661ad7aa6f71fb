"""Start-up of ``moodscope predict`` for one short file, measured side by side in fresh processes.

For a single song, most of the wall time is start-up, not inference. This script runs, alternately and
``--repeats`` times each, in new Python processes:

1. ``import torch`` alone -- the floor no moodscope change can go below;
2. ``moodscope predict FILE`` as shipped (the default model: MusiCNN features + head; moodscope's own Slaney
   mel filterbank), and with ``--model demo`` (the demo DAMFF);
3. the same, with the filterbank taken from ``librosa.filters.mel`` instead (how moodscope built it before;
   the matrices are equal bit for bit, ``tests/test_features.py``), which needs librosa (a dev dependency).

It prints the median wall time of each and the ratios. The file is a generated 5 s WAV.

Usage::

    python benchmarks/predict_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

PREDICT = "from moodscope.cli import main; raise SystemExit(main(['predict', {path!r}, '--quiet']))"
PREDICT_DEMO = "from moodscope.cli import main; raise SystemExit(main(['predict', {path!r}, '--quiet', '--model', 'demo']))"
WITH_LIBROSA = (
    "import functools, librosa, moodscope.audio.mel as F\n"
    "F.mel_basis = functools.lru_cache(maxsize=16)(lambda sr, n_fft, n_mels, fmin=0.0, fmax=None: "
    "librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax))\n" + PREDICT
)


def wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "short.wav")
        y = 0.1 * np.random.default_rng(0).standard_normal(44100 * 5)
        sf.write(path, y.astype(np.float32), 44100)
        cases = {
            "import torch": "import torch",
            "moodscope predict": PREDICT.format(path=path),
            "predict --model demo": PREDICT_DEMO.format(path=path),
            "predict, librosa filterbank": WITH_LIBROSA.format(path=path),
        }
        wall(cases["moodscope predict"])  # warm the OS file cache once
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(a.repeats):
            for name, code in cases.items():  # interleaved, so machine load hits every case alike
                times[name].append(wall(code))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["moodscope predict"]
    print(f"predict of a 5 s WAV, bundled models, median of {a.repeats} fresh processes each:")
    for name, t in med.items():
        print(f"  {name:<30s} {t:6.2f} s   {t / base:5.2f}x of moodscope predict")
    print(f"  start-up above the torch import: {base - med['import torch']:.2f} s")


if __name__ == "__main__":
    main()
