"""Whole-song DAMFF inference speed: segment-embedding reuse against naive per-window recomputation.

DAMFF (ISMIR 2023, §4.4.1) predicts a song with 30 s windows moved by a hop of 0.5 s, and each window
runs the CNN on its 60 segments. Because the CNN sees one 0.5 s segment at a time, every segment's
embedding can be computed once per song and only the BiLSTM re-run per window
(:mod:`moodscope.inference`, ``mode="reuse"``). This script measures, in one run, on a 3-minute track:

1. the decode + log-Mel floor (``moodscope.audio.decode.load_audio`` + ``moodscope.audio.features.compute_features``),
2. model time with reuse (fp32, and with ``--bf16`` also ``torch.autocast(cpu, bfloat16)`` for the
   embedding pass, with the largest difference of its curve from fp32),
3. model time of the naive per-window path -- by default only ``--naive-windows`` windows are timed and
   the total is *extrapolated* to all windows (labelled as such); ``--naive-windows 0`` runs them all,
4. end to end (decode + features + reuse model) against the floor,
5. with ``--memory-minutes M``: peak resident memory of streaming prediction
   (:func:`moodscope.audio.features.iter_file_features` -> :func:`moodscope.inference.sliding.predict_from_blocks`) of an
   ``M``-minute generated FLAC file, measured in a child process.

The track is the first ``.ogg``/``.flac``/``.mp3`` of at least 3 minutes found under ``/usr/share``
(e.g. a Debian game-music package), else a generated 3-minute OGG/Vorbis file (harmonic chords, a bass
line and noise drums, so decoding costs what a real track costs). The model is the paper-size DAMFF
(``--width 1``) with random weights: speed does not depend on the weights.

Usage::

    python benchmarks/damff_speed.py                      # paper size, 20 naive windows extrapolated
    python benchmarks/damff_speed.py --bf16 --naive-windows 0 --memory-minutes 60
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from moodscope.config import FeatureConfig
from moodscope.inference.sliding import predict_from_blocks, sliding_predict, window_plan
from moodscope.models import build

TRACK_S = 180.0


def find_track(min_s: float = TRACK_S) -> Path | None:
    """First audio file under /usr/share at least ``min_s`` seconds long, or None."""
    import soundfile as sf

    for ext in ("ogg", "flac", "mp3"):
        for p in sorted(glob.glob(f"/usr/share/**/*.{ext}", recursive=True)):
            try:
                if sf.info(p).duration >= min_s:
                    return Path(p)
            except Exception:  # noqa: BLE001 - any unreadable file is simply skipped
                continue
    return None


def synth_track(path: Path, seconds: float, *, sr: int = 44100, seed: int = 0) -> Path:
    """Write a music-like test signal (chords, bass, drums) of ``seconds`` to ``path`` (.ogg or .flac)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    beat = 0.5  # 120 bpm
    roots = [57, 53, 60, 55]  # A, F, C, G (MIDI)
    block_s = 60.0  # synthesise in blocks to keep memory low for long files
    fmt = {".ogg": ("OGG", "VORBIS"), ".flac": ("FLAC", "PCM_16")}[path.suffix]
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, format=fmt[0], subtype=fmt[1]) as f:
        t0 = 0.0
        while t0 < seconds:
            n = int(round(min(block_s, seconds - t0) * sr))
            t = t0 + np.arange(n) / sr
            y = np.zeros(n)
            bar = (t // (4 * beat)).astype(int) % len(roots)
            for k, interval in enumerate((0, 4, 7, 12)):  # major triad + octave, 4 harmonics each
                f0 = 440.0 * 2.0 ** ((np.take(roots, bar) + interval - 69) / 12)
                for h in range(1, 5):
                    y += 0.04 / h * np.sin(2 * np.pi * h * f0 * t + k)
            fb = 440.0 * 2.0 ** ((np.take(roots, bar) - 24 - 69) / 12)
            y += 0.15 * np.sin(2 * np.pi * fb * t)
            phase = (t % beat) / beat
            y += 0.3 * rng.standard_normal(n) * np.exp(-phase * 30.0)  # a drum hit on every beat
            y = (0.5 * y / max(1.0, np.abs(y).max())).astype(np.float32)
            for i in range(0, n, 16384):  # libsndfile 1.2's Vorbis encoder crashes on very large writes
                f.write(y[i : i + 16384])
            t0 += n / sr
    return path


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def memory_child(path: str, width: float, batch_size: int) -> None:
    """Stream-predict ``path`` and print the peak RSS of this process (run as a child)."""
    from moodscope.audio.features import iter_file_features

    model = build("damff", width=width).eval()
    t = time.perf_counter()
    curve = predict_from_blocks(model, iter_file_features(path, FeatureConfig()), batch_size=batch_size)
    dt = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{curve.shape[0]} {dt:.2f} {peak_mb:.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--audio", type=Path, help="track to use (default: search /usr/share, else generate)")
    ap.add_argument("--width", type=float, default=1.0, help="DAMFF width (1 = paper size)")
    ap.add_argument("--hop", type=float, default=0.5, help="hop in seconds for both dimensions")
    ap.add_argument("--batch-size", type=int, default=128, help="segments per CNN pass")
    ap.add_argument(
        "--naive-windows",
        type=int,
        default=20,
        help="time this many naive windows and extrapolate (0 = run every window)",
    )
    ap.add_argument("--bf16", action="store_true", help="also time bfloat16 autocast for the embedding pass")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--memory-minutes", type=float, default=0.0, help="also measure streaming peak memory")
    ap.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.width, args.batch_size)
        return 0

    from moodscope.audio.decode import load_audio
    from moodscope.audio.features import compute_features

    torch.manual_seed(0)
    cfg = FeatureConfig()
    tmp = tempfile.TemporaryDirectory(prefix="damff-speed-")
    path = args.audio or find_track()
    source = "found"
    if path is None:
        path, source = synth_track(Path(tmp.name) / "synthetic-3min.ogg", TRACK_S), "generated"
    print(f"track: {path} ({source}); torch {torch.__version__}, {torch.get_num_threads()} threads")

    model = build("damff", width=args.width).eval()
    print(f"model: DAMFF width {args.width}, {model.n_parameters():,} parameters; hop {args.hop} s")
    # warm-up (allocator, oneDNN kernel selection) on 31 s of noise
    warm = np.random.default_rng(0).normal(-50, 15, size=(3100, 128)).astype(np.float32)
    sliding_predict(model, warm, hop_s=args.hop, batch_size=args.batch_size)
    compute_features(np.zeros(44100, np.float32), cfg)

    y, t_decode = timed(load_audio, path, sr=cfg.sr, duration=TRACK_S)
    feats, t_feat = timed(compute_features, y, cfg)
    dur = y.shape[0] / cfg.sr
    n_seg = feats.shape[0] // 50
    n_win = len(window_plan(n_seg, hop_segments=int(round(args.hop / 0.5))))
    print(f"audio {dur:.1f} s -> features {feats.shape} -> {n_seg} segments, {n_win} windows")

    curve, t_reuse = timed(sliding_predict, model, feats, hop_s=args.hop, batch_size=args.batch_size)
    rows = [
        ("decode", t_decode),
        ("log-Mel features", t_feat),
        ("model, reuse (fp32)", t_reuse),
    ]
    if args.bf16:
        curve16, t_bf16 = timed(
            sliding_predict, model, feats, hop_s=args.hop, batch_size=args.batch_size, autocast=torch.bfloat16
        )
        rows.append(("model, reuse (bf16 autocast)", t_bf16))

    k = args.naive_windows if 0 < args.naive_windows < n_win else n_win
    sub = feats[: (60 + (k - 1) * int(round(args.hop / 0.5))) * 50]  # exactly k windows at this hop
    _, t_naive_k = timed(
        sliding_predict, model, sub, hop_s=args.hop, mode="naive", batch_size=args.batch_size
    )
    t_naive = t_naive_k * n_win / k
    label = (
        "model, naive (all windows)"
        if k == n_win
        else f"model, naive (EXTRAPOLATED from {k} of {n_win} windows)"
    )
    rows.append((label, t_naive))

    # end to end in one go: decode + features + reuse model
    def end_to_end():
        f = compute_features(load_audio(path, sr=cfg.sr, duration=TRACK_S), cfg)
        return sliding_predict(model, f, hop_s=args.hop, batch_size=args.batch_size)

    _, t_e2e = timed(end_to_end)
    floor = t_decode + t_feat
    rows.append(("end to end (decode + features + reuse)", t_e2e))

    w = max(len(r[0]) for r in rows)
    print()
    for name, t in rows:
        print(f"  {name:<{w}}  {t:8.2f} s")
    print()
    print(f"  reuse speed-up over naive (fp32):           {t_naive / t_reuse:6.1f}x  (target >= 20x)")
    if args.bf16:
        diff = float(np.abs(curve16 - curve).max())
        from moodscope.precision import cpu_bf16_native

        native, why = cpu_bf16_native()
        print(f"  bf16 vs fp32 reuse: {t_reuse / t_bf16:4.2f}x faster, max |curve difference| = {diff:.2e}")
        print(
            f"    native bf16: {native} ({why}); where it is not, bf16 is emulated and precision=auto is fp32"
        )
    print(
        f"  end to end / decode+features floor:        {t_e2e / floor:6.2f}x  ({t_e2e:.2f} s vs {floor:.2f} s)"
    )
    print(f"  end to end for a {dur / 60:.1f}-minute track:        {t_e2e:6.2f} s  (target <= 5 s)")
    print(f"  real-time factor (end to end):             {dur / t_e2e:6.1f}x faster than real time")

    if args.memory_minutes > 0:
        long_path = synth_track(Path(tmp.name) / "long.flac", args.memory_minutes * 60.0, seed=1)
        cmd = [sys.executable, os.path.abspath(__file__), "--_memory-child", str(long_path)]
        cmd += ["--width", str(args.width), "--batch-size", str(args.batch_size)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
        n, secs, peak = int(out[0]), float(out[1]), float(out[2])
        print(
            f"  streaming {args.memory_minutes:g} min ({n} segments): {secs:.1f} s, "
            f"peak RSS {peak:.0f} MB (target < 2048 MB)"
        )
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
