"""Peak memory of ``moodscope predict`` on long recordings: 10, 60 and 180 minutes, side by side.

    python benchmarks/long_track_memory.py [--minutes 10 60 180] [--model default] [--dir /tmp/mem] [--keep]

Issue 26 (6): memory grew with duration (~70 MB per audio minute: a 90-minute DJ mix or a 3-hour recording ran
out). The target: **peak RSS under 1 GB for any duration**. Each length is a 48 kHz stereo 16-bit WAV (the
worst common case: twice the samples of 44.1 kHz mono), made by looping a real recording (a track of Debian's
``singularity-music`` when installed, else a synthetic piece) and written in pieces, so the generator itself
stays small. Each ``moodscope predict FILE --quiet`` runs in its own process under ``/usr/bin/time -v``
(maximum resident set size); the table prints peak RSS, wall time, the MB per audio minute and the ratio to the
1 GB target. ``--whole`` also runs the whole-file road (``MOODSCOPE_LONG_FILE_S`` set past the length: the file
decoded at once, as before) on the lengths given to it, for the before/after ratio.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 48000
TARGET_MB = 1024.0


def _source() -> tuple[np.ndarray, str]:
    tracks = sorted(glob.glob("/usr/share/games/singularity/music/*.ogg"))
    if tracks:
        y, sr = sf.read(tracks[0], dtype="float32", always_2d=True)
        if sr != SR:
            import soxr

            y = soxr.resample(y, sr, SR)
        return y[:, :2] if y.shape[1] >= 2 else np.repeat(y, 2, 1), Path(tracks[0]).name
    rng = np.random.default_rng(0)
    t = np.arange(60 * SR) / SR
    y = 0.2 * np.sin(2 * np.pi * (220 + 30 * np.sin(0.2 * t)) * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([y, y], 1).astype(np.float32), "synthetic"


def make(path: Path, minutes: float, src: np.ndarray) -> Path:
    if path.is_file() and abs(sf.info(str(path)).duration - minutes * 60) < 1:
        return path
    n = int(minutes * 60 * SR)
    with sf.SoundFile(str(path), "w", SR, 2, subtype="PCM_16") as f:
        done = 0
        while done < n:
            piece = src[: min(len(src), n - done)]
            f.write(piece)
            done += len(piece)
    return path


def peak(path: Path, model: str, env: dict) -> tuple[float, float, int]:
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "moodscope",
        "predict",
        str(path),
        "--model",
        model,
        "--quiet",
    ]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    if run.returncode != 0 or not m:
        tail = run.stderr.strip().splitlines()[-3:]
        print(f"  {path.name}: exit {run.returncode}: {' | '.join(tail)}", flush=True)
    return (int(m.group(1)) / 1024.0 if m else float("nan")), wall, run.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 180])
    ap.add_argument(
        "--whole", type=float, nargs="*", default=[10], help="lengths also run on the whole-file road"
    )
    ap.add_argument("--model", default="default")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/moodscope-long"))
    ap.add_argument("--keep", action="store_true", help="keep the generated WAV files")
    a = ap.parse_args()
    if not Path("/usr/bin/time").is_file():
        raise SystemExit("needs /usr/bin/time (apt-get install time)")
    a.dir.mkdir(parents=True, exist_ok=True)
    src, name = _source()
    cpu = platform.processor() or platform.machine()
    print(
        f"source: {name} looped; 48 kHz stereo 16-bit WAV; model {a.model}; {os.cpu_count()} CPUs ({cpu}); "
        f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'native')}",
        flush=True,
    )
    rows = []
    for minutes in a.minutes:
        path = make(a.dir / f"long-{minutes:g}min.wav", minutes, src)
        for road in ("blocks", "whole") if minutes in a.whole else ("blocks",):
            env = dict(os.environ)
            if road == "whole":
                env["MOODSCOPE_LONG_FILE_S"] = str(minutes * 60 + 1)
            mb, wall, code = peak(path, a.model, env)
            rows.append((minutes, road, mb, wall, code))
            print(f"  {minutes:g} min, {road}: {mb:.0f} MB, {wall:.0f} s", flush=True)
        if not a.keep:
            path.unlink()
    print("\n| audio | road | peak RSS | MB per audio minute | peak / 1 GB target | wall | exit |")
    print("|---|---|---|---|---|---|---|")
    for minutes, road, mb, wall, code in rows:
        print(
            f"| {minutes:g} min | {road} | {mb:.0f} MB | {mb / minutes:.1f} | {mb / TARGET_MB:.2f} | {wall:.0f} s | {code} |"
        )


if __name__ == "__main__":
    main()
