"""A music library on one machine: tracks per hour at --jobs 1 and --jobs 2, full network and student, local vs
Ray, and the projection (issues 15 and 25).

Real audio: the Debian music packages (``apt-get install singularity-music wesnoth-1.16-music``: 57 OGG tracks),
cut into 30 s excerpts (up to three per track, from 0, 60 and 120 s where the track is long enough), so that
the library has more than 100 tracks; or any folder (``--audio DIR``). Every run predicts the same excerpts into
a fresh results store with the default model (``--model``), side by side in one process, and prints:

- tracks/hour of each front end (``--frontend full``: MusiCNN itself; ``student``: its distilled
  front end) at ``--jobs 1`` (this process, torch on every core), ``--jobs 1`` on one thread (one core's worth)
  and ``--jobs 2`` (two workers of one thread each), every figure also as a ratio to the full network at
  ``--jobs 1`` (float32 PyTorch) in the same run. Issue 25's target: a library run's per-track rate >= 1.8x
  one worker on one core (``--jobs 2`` over "--jobs 1, 1 thread", same front end);
- the Ray backend (a local 2-CPU cluster, start-up included) against the local one at the same jobs (target:
  Ray within 1.3x of local); skipped with a note when Ray is not installed (``pip install 'moodscope[ray]'``);
- the fixed start-up of the two ``--jobs 2`` backends and their rate once running, from a second, short run
  (the first ``--n-short`` files; the same worker start-up, fewer tracks): per track = (wall of all - wall of
  the short run) / (the tracks between), start-up = wall of all - tracks x per track. Ray's start-up (starting
  Ray, Ray Data's first result, shutting down) is paid once per run; on a long library only the rate counts;
- the projected hours for 10,000 tracks of 3 minutes, from the audio seconds analysed per wall-clock second.

    .venv/bin/python benchmarks/catalogue.py                 # all excerpts, default model
    .venv/bin/python benchmarks/catalogue.py --n 40 --model demo

The machine is shared and noisy: compare the ratios of one run, not absolute times across runs. ``lscpu``
first: without native bf16 everything here is float32 anyway.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

PACKAGES = ("singularity-music", "wesnoth-1.16-music")
EXCERPT_S = 30.0
STARTS_S = (0.0, 60.0, 120.0)


def package_tracks() -> list[Path]:
    tracks = []
    for pkg in PACKAGES:
        try:
            listing = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        tracks += [Path(p) for p in listing.splitlines() if p.endswith(".ogg") and Path(p).is_file()]
    return sorted(tracks)


def make_excerpts(tracks: list[Path], folder: Path) -> list[Path]:
    """Up to three 30 s OGG excerpts per track (as many as fit), cached in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for t in tracks:
        info = sf.info(str(t))
        for start in STARTS_S:
            if start + EXCERPT_S > info.duration:
                continue
            dest = folder / f"{t.stem.replace(' ', '_')}-{int(start):03d}.ogg"
            if not dest.exists():
                y, sr = sf.read(
                    str(t), start=int(start * info.samplerate), frames=int(EXCERPT_S * info.samplerate)
                )
                # in one-second pieces: libsndfile's Vorbis encoder crashes on one large write
                with sf.SoundFile(str(dest), "w", sr, info.channels, format="OGG", subtype="VORBIS") as f:
                    for i in range(0, len(y), sr):
                        f.write(y[i : i + sr].astype(np.float32))
            out.append(dest)
    return out


def run(files, *, model, jobs, backend="local", frontend=None) -> float:
    from moodscope.library.batch import predict_paths

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        results, failures = predict_paths(
            [str(f) for f in files],
            model=model,
            out_dir=out,
            fmt="none",
            jobs=jobs,
            backend=backend,
            progress=False,
            frontend=frontend,
        )
        wall = time.perf_counter() - t0
    if failures:
        print(f"  {len(failures)} failure(s), e.g. {failures[0]}", file=sys.stderr)
    assert len(results) == len(files) - len(failures)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio", help="a folder of audio files instead of the Debian music packages")
    ap.add_argument("--n", type=int, help="use the first N files")
    ap.add_argument("--model", default=None, help="model (default: the default model)")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--frontends", default="full,student", help="front ends measured (default full,student)")
    ap.add_argument("--n-short", type=int, default=12, help="files of the short runs (start-up vs rate)")
    a = ap.parse_args()
    os.environ.pop("MOODSCOPE_JOBS", None)
    if a.audio:
        from moodscope.library.batch import collect_audio

        files, _ = collect_audio([a.audio])
    else:
        tracks = package_tracks()
        if not tracks:
            sys.exit(
                "no audio: apt-get install -y --no-install-recommends "
                + " ".join(PACKAGES)
                + ", or --audio DIR"
            )
        cache = (
            Path(os.environ.get("MOODSCOPE_CACHE", Path.home() / ".cache" / "moodscope")) / "bench-excerpts"
        )
        files = make_excerpts(tracks, cache)
    files = files[: a.n] if a.n else files
    audio_s = sum(sf.info(str(f)).duration for f in files)
    print(
        f"{len(files)} files, {audio_s / 60:.1f} min of audio; model {a.model or 'default'}; {os.cpu_count()} cores"
    )

    import torch

    rows = []
    threads = torch.get_num_threads()
    frontends = [f for f in a.frontends.split(",") if f]
    for fe in frontends:
        for label, jobs, n_threads in (
            ("local --jobs 1", 1, threads),
            ("local --jobs 1, 1 thread", 1, 1),
            ("local --jobs 2", 2, threads),
        ):
            torch.set_num_threads(n_threads)
            wall = run(files, model=a.model, jobs=jobs, backend="local", frontend=fe)
            torch.set_num_threads(threads)
            label = label if fe == frontends[0] else f"{label}, {fe}"
            rows.append((label, wall))
            print(f"  {label:<36s} {wall:7.1f} s")
    have_ray = False
    if not a.no_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("  ray: not installed (pip install 'moodscope[ray]'): skipped")
        else:
            have_ray = True
            wall = run(files, model=a.model, jobs=2, backend="ray", frontend=frontends[0])
            rows.append(("ray --jobs 2", wall))
            print(f"  {'ray --jobs 2':<26s} {wall:7.1f} s")
    walls = dict(rows)
    short = files[: a.n_short]
    split = {}  # backend -> (start-up s, s per track)
    if 2 <= len(short) < len(files):
        for backend in ("local", "ray") if have_ray else ("local",):
            wall = run(short, model=a.model, jobs=2, backend=backend, frontend=frontends[0])
            per_track = (walls[f"{backend} --jobs 2"] - wall) / (len(files) - len(short))
            split[backend] = (walls[f"{backend} --jobs 2"] - len(files) * per_track, per_track)
            print(f"  {backend + ' --jobs 2, ' + str(len(short)) + ' files':<36s} {wall:7.1f} s")
        # one worker on one core, split the same way: the ratio compares the rates once running
        torch.set_num_threads(1)
        wall = run(short, model=a.model, jobs=1, backend="local", frontend=frontends[0])
        torch.set_num_threads(threads)
        per_track = (walls["local --jobs 1, 1 thread"] - wall) / (len(files) - len(short))
        split["local --jobs 1, 1 thread"] = (
            walls["local --jobs 1, 1 thread"] - len(files) * per_track,
            per_track,
        )
        print(f"  {'local --jobs 1, 1 thread, ' + str(len(short)) + ' files':<36s} {wall:7.1f} s")

    print()
    base = walls["local --jobs 1"]
    print(f"front ends: {', '.join(frontends)} (first: the unsuffixed rows)")
    print("| run | wall s | vs first --jobs 1 | tracks/hour | audio s per wall s | 10,000 x 3 min: hours |")
    print("|---|---|---|---|---|---|")
    for label, wall in rows:
        rate = audio_s / wall
        print(
            f"| {label} | {wall:.1f} | {base / wall:.2f}x | {len(files) / wall * 3600:,.0f} | {rate:.1f} | "
            f"{10_000 * 180 / rate / 3600:.2f} |"
        )
    print()
    for fe in frontends:
        sfx = "" if fe == frontends[0] else f", {fe}"
        one, one_core, two = (walls[f"local --jobs {j}{sfx}"] for j in ("1", "1, 1 thread", "2"))
        print(
            f"{fe}: --jobs 2 vs --jobs 1: {one / two:.2f}x; vs one worker on one core: {one_core / two:.2f}x "
            f"(target >= 1.8x); 10,000 3-minute tracks at --jobs 2: {10_000 * 180 / (audio_s / two) / 3600:.2f} h "
            "(target < 3 h)"
        )
    for backend, (startup, per_track) in split.items():
        name = backend if "--jobs" in backend else f"{backend} --jobs 2"
        print(
            f"{name}: start-up {startup:.1f} s, then {per_track:.3f} s per track "
            f"({3600 / per_track:,.0f} tracks/hour once running)"
        )
    if "local" in split and "local --jobs 1, 1 thread" in split:
        print(
            f"per-track rate once running, --jobs 2 vs one worker on one core ({frontends[0]}): "
            f"{split['local --jobs 1, 1 thread'][1] / split['local'][1]:.2f}x (target >= 1.8x)"
        )
    if "ray --jobs 2" in walls:
        line = f"ray vs local at --jobs 2: {walls['ray --jobs 2'] / walls['local --jobs 2']:.2f}x the time (target <= 1.3x)"
        if "ray" in split:
            line += f"; once running {split['ray'][1] / split['local'][1]:.2f}x the time per track"
        print(line)


if __name__ == "__main__":
    main()
