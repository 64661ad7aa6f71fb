"""One 3-minute track through the default model, end to end, and where the time goes (issue 14, item 5).

Measured in one run, float32, on the CPU as it is (run it with ``ONEDNN_MAX_CPU_ISA=AVX2`` to see a CPU
without bf16; nothing here uses bf16):

1. **end to end**: ``Predictor.predict(path)`` of the bundled default model, feature cache off, the median
   of ``--repeats`` runs (the model loaded once before, as in a worker or ``moodscope serve``);
2. **stages**: decode to 16 kHz mono; log-Mel; MusiCNN's front and mid end over the whole track; its back
   end on the 0.5 s windows; the mode features; the valence-arousal model on the features;
3. **side by side**: the front end in cache-sized time slices (what moodscope does,
   ``_FreqMaxBlock.CPU_SLICE``) against one convolution call per branch (before), with the largest
   difference between the two (0: the same numbers);
4. with ``moodscope[onnx]`` installed: the front and mid end by ONNX Runtime (``MOODSCOPE_FRONTEND=onnx``,
   the default where installed) against PyTorch, end to end too, and the largest difference;
5. **the scale of it**: the multiply-adds of the front and mid end (counted from the layer shapes) and the
   rate each front end reached, beside this CPU's float32 ``torch.mm`` rate on the first timbral branch's
   own im2col shape and on large square matrices (the best rate PyTorch reaches here): the time the
   convolutions would take at that rate is a floor for any implementation of this network;
6. **batching across files**: the front and mid end of 16 clips of 4 s and of 4 clips of 30 s, batched in
   one call against one clip per call, on one thread (as each ``--jobs`` worker runs).

The track is ``--audio``, else the first ``.ogg``/``.flac``/``.mp3`` of at least 3 minutes under
``/usr/share`` (e.g. ``apt-get install singularity-music``), else a generated 3-minute OGG.

Usage::

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/musicnn_speed.py
    python benchmarks/musicnn_speed.py --repeats 5 --audio song.ogg
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from damff_speed import TRACK_S, find_track, synth_track  # noqa: E402

from moodscope.audio.decode import load_audio  # noqa: E402
from moodscope.audio.features import LogMel, MusicnnEmbedding, compute_features  # noqa: E402
from moodscope.audio.tonal import mode_features  # noqa: E402
from moodscope.inference.predictor import Predictor  # noqa: E402
from moodscope.models.musicnn import _FreqMaxBlock, window_starts  # noqa: E402
from moodscope.models.musicnn_onnx import onnx_available  # noqa: E402


def best_of(fn, repeats: int) -> tuple[object, float]:
    """``(result, median seconds)`` of ``repeats`` calls after one warm-up call."""
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def conv_macs(net, frames: int) -> int:
    """Multiply-adds of MusiCNN's front and mid end over ``frames`` frames (from the layer shapes)."""
    n_mels = net.model_args["n_mels"]
    total = 0
    for block in [*net.timbral, *net.temporal]:
        filters, _, kt, kf = block.conv.weight.shape
        total += frames * (n_mels - kf + 1) * filters * kt * kf
    for mid in net.midend:
        c_out, c_in, k = mid.conv.weight.shape
        total += frames * c_out * c_in * k
    return total


def gemm_rate(net, repeats: int) -> float:
    """float32 multiply-adds per second of ``torch.mm`` on the im2col shape of the first timbral branch
    (rows: 256 frames x its frequency positions; inner: 7 x 38; columns: its 204 filters)."""
    filters, _, kt, kf = net.timbral[0].conv.weight.shape
    rows = 256 * (net.model_args["n_mels"] - kf + 1)
    a, b = torch.randn(rows, kt * kf), torch.randn(kt * kf, filters)
    _, s = best_of(lambda: torch.mm(a, b), repeats * 5)
    return rows * kt * kf * filters / s


def square_gemm_rate(repeats: int, n: int = 2048) -> float:
    """float32 multiply-adds per second of ``torch.mm`` on two ``n x n`` matrices."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    _, s = best_of(lambda: torch.mm(a, b), repeats)
    return n**3 / s


def batching(net, repeats: int) -> list[tuple[str, float, float]]:
    """``(clips, one call per clip s, one batched call s)`` of the front and mid end on one thread."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    out = []
    try:
        with torch.inference_mode():
            for n, seconds in ((16, 4), (4, 30)):
                mel = torch.randn(n, int(seconds * 16000 / 256) + 1, net.model_args["n_mels"])
                _, one = best_of(
                    lambda m=mel: [net.frame_features(m[i : i + 1]) for i in range(len(m))], repeats
                )
                _, batched = best_of(lambda m=mel: net.frame_features(m), repeats)
                out.append((f"{n} clips of {seconds} s", one, batched))
    finally:
        torch.set_num_threads(saved)
    return out


def with_frontend(name: str, fn):
    """``fn()`` with ``MOODSCOPE_FRONTEND=name``."""
    saved = os.environ.get("MOODSCOPE_FRONTEND")
    os.environ["MOODSCOPE_FRONTEND"] = name
    try:
        return fn()
    finally:
        if saved is None:
            del os.environ["MOODSCOPE_FRONTEND"]
        else:
            os.environ["MOODSCOPE_FRONTEND"] = saved


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--audio", type=Path, help="track to use (default: search /usr/share, else generate)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each measurement (median)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    path = args.audio or find_track() or synth_track(Path(tmp.name) / "track.ogg", TRACK_S)
    predictor = Predictor.from_file(None, cache=False)
    features = predictor.features
    extractor = MusicnnEmbedding(features.without_extras()).eval()
    net = extractor.net
    fronts = ["torch"] + (["onnx"] if onnx_available() else [])
    print(f"track: {path}; torch {torch.__version__}, {torch.get_num_threads()} threads, float32")
    if not onnx_available():
        print('ONNX Runtime not installed (pip install "moodscope[onnx]"): PyTorch front end only')

    e2e = {}
    for name in fronts:
        result, e2e[name] = with_frontend(
            name, lambda: best_of(lambda: predictor.predict(path), args.repeats)
        )
        print(
            f"end to end, default model, {name} front end: {e2e[name]:.2f} s for {result.duration_s:.0f} s of audio"
        )

    y, t_decode = best_of(lambda: load_audio(path, sr=features.sr), args.repeats)
    logmel = LogMel(features.input_config(), dtype=torch.float32)
    front = {}
    with torch.inference_mode():
        mel, t_mel = best_of(lambda: logmel(torch.from_numpy(y))[None], args.repeats)
        frames = {}
        for name in fronts:
            frames[name], front[name] = with_frontend(
                name, lambda: best_of(lambda: extractor._frame_features(mel), args.repeats)
            )
        saved = _FreqMaxBlock.CPU_SLICE
        _FreqMaxBlock.CPU_SLICE = 1 << 62
        try:
            whole, t_whole = with_frontend(
                "torch", lambda: best_of(lambda: extractor._frame_features(mel), args.repeats)
            )
        finally:
            _FreqMaxBlock.CPU_SLICE = saved
        steps = max(1, len(y) // (features.sr // 2))
        starts = window_starts(frames["torch"].shape[1], steps, fps=features.sr / features.hop_length)
        _, t_head = best_of(lambda: net.head_windows(frames["torch"], starts), args.repeats)
    _, t_mode = best_of(lambda: mode_features(y, features.sr, steps), args.repeats)
    feats = compute_features(y, features)
    x = torch.from_numpy(feats)[None, None]
    with torch.inference_mode():
        _, t_model = best_of(lambda: predictor.model(x), args.repeats)
    best = min(front, key=front.get)
    stages = {
        "decode + resample to 16 kHz": t_decode,
        "log-Mel": t_mel,
        f"MusiCNN front + mid end ({best})": front[best],
        "MusiCNN back end, 0.5 s windows": t_head,
        "mode features": t_mode,
        "valence-arousal model": t_model,
    }
    for name, s in stages.items():
        print(f"  {name:<34s} {s:6.2f} s")
    print(f"  {'sum of the stages':<34s} {sum(stages.values()):6.2f} s")
    t_front = front["torch"]
    print(
        f"PyTorch front end in time slices vs one call per branch: {t_front:.2f} s vs {t_whole:.2f} s "
        f"= {t_whole / t_front:.2f}x faster (largest difference {float((frames['torch'] - whole).abs().max()):.1e})"
    )
    if "onnx" in front:
        diff = float((frames["onnx"] - frames["torch"]).abs().max())
        print(
            f"ONNX Runtime front end vs PyTorch (sliced): {front['onnx']:.2f} s vs {t_front:.2f} s "
            f"= {t_front / front['onnx']:.2f}x faster (largest difference {diff:.1e}, "
            f"values up to {float(frames['torch'].abs().max()):.0f}); end to end {e2e['torch'] / e2e['onnx']:.2f}x"
        )
    macs = conv_macs(net, mel.shape[1] + 2 * extractor.CONTEXT * -(-mel.shape[1] // extractor.BLOCK))
    rate, square = gemm_rate(net, args.repeats), square_gemm_rate(args.repeats)
    print(
        f"front + mid end: {macs / 1e9:.1f} G multiply-adds (block context included); this CPU's float32 "
        f"torch.mm on the same shape: {rate / 1e9:.1f} G/s ({macs / rate:.2f} s); the front end ran at "
        + ", ".join(f"{n} {macs / t / 1e9:.1f} G/s" for n, t in front.items())
    )
    print(
        f"floor: at the best float32 torch.mm rate here (2048 x 2048: {square / 1e9:.1f} G/s) the convolutions "
        f"alone take {macs / square:.2f} s; with the other stages as measured: "
        f"{macs / square + sum(v for k, v in stages.items() if not k.startswith('MusiCNN front')):.2f} s"
    )
    for name, one, batched in batching(net, args.repeats):
        print(
            f"batching across files, 1 thread, {name}: one per call {one:.2f} s, batched {batched:.2f} s "
            f"= {one / batched:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
