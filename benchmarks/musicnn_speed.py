"""One 3-minute track through the default model, end to end, and where the time goes (issues 14 and 25).

Measured in one run, float32, on the CPU as it is (run it with ``ONEDNN_MAX_CPU_ISA=AVX2`` to see a CPU
without bf16; nothing here uses bf16). Every time is printed with its ratio to the full network run by
PyTorch, measured in the same run:

1. **end to end**: ``Predictor.predict(path)`` of the bundled default model on a 3-minute OGG (``--seconds``),
   feature cache off, the median of ``--repeats`` runs (the model loaded once before, as in a worker or
   ``moodscope serve``), for each front end (``full``: MusiCNN itself; ``student``: its distilled
   front end, :mod:`moodscope.models.musicnn_student`) and each runtime (PyTorch; ONNX Runtime where
   installed -- which does not obey ``ONEDNN_MAX_CPU_ISA``: on a CPU with AVX-512 it uses it even then),
   with the extrapolated hours for 10,000 such tracks one after the other (``benchmarks/catalogue.py``
   measures a library run with several workers);
2. **agreement** of the student with the full network on that track: embedding cosine per 0.5 s step, the
   largest static valence/arousal and curve differences, the quadrant;
3. **layer by layer**: each branch of the front and mid end, full and student;
4. **stages**: decode to 16 kHz mono; the content notes; the loudness measure; log-Mel; the front and mid end; the back end on the 0.5 s windows; the
   mode features; the valence-arousal model;
5. **side by side**: the front end in cache-sized time slices (what moodscope does,
   ``FreqMaxBlock.CPU_SLICE``) against one convolution call per branch, with the largest difference;
6. **the scale of it**: the multiply-adds of the front and mid end (counted from the layer shapes) and the
   rate each front end reached, beside this CPU's float32 ``torch.mm`` rate: the floor for any float32
   implementation of the full network.

The track is ``--audio``, else the first ``.ogg``/``.flac``/``.mp3`` of at least 3 minutes under
``/usr/share`` (e.g. ``apt-get install singularity-music``), else a generated one; its first ``--seconds``
are written to a temporary OGG, so every run measures the same length.

Usage::

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/musicnn_speed.py
    python benchmarks/musicnn_speed.py --repeats 5 --audio song.ogg
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from damff_speed import TRACK_S, find_track, synth_track  # noqa: E402

from moodscope.audio import content  # noqa: E402
from moodscope.audio.decode import load_audio  # noqa: E402
from moodscope.audio.features import LogMel, MusicnnEmbedding, compute_features  # noqa: E402
from moodscope.audio.loudness import LoudnessMeter  # noqa: E402
from moodscope.audio.tonal import mode_features  # noqa: E402
from moodscope.inference.predictor import Predictor  # noqa: E402
from moodscope.models.musicnn import FreqMaxBlock, window_starts  # noqa: E402
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
    split = net.model_args.get("split", 1)  # the student: every split-th frequency position
    total = 0
    for block in [*net.timbral, *net.temporal]:
        filters, channels, kt, kf = block.conv.weight.shape
        total += frames * (n_mels // split - kf + 1) * filters * channels * kt * kf
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


@contextlib.contextmanager
def with_frontend_env(name: str):
    """``MOODSCOPE_FRONTEND=name`` (the runtime: torch or onnx) inside the block."""
    saved = os.environ.get("MOODSCOPE_FRONTEND")
    os.environ["MOODSCOPE_FRONTEND"] = name
    try:
        yield
    finally:
        if saved is None:
            del os.environ["MOODSCOPE_FRONTEND"]
        else:
            os.environ["MOODSCOPE_FRONTEND"] = saved


def with_frontend(name: str, fn):
    """``fn()`` with ``MOODSCOPE_FRONTEND=name``."""
    with with_frontend_env(name):
        return fn()


def cpu_line() -> str:
    """The CPU model, its vector extensions that matter here, and the oneDNN cap in force."""
    from moodscope.precision import onednn_isa_cap

    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    has = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    cap = onednn_isa_cap()
    return f"{model}, {os.cpu_count()} cores ({', '.join(has) or 'no AVX2'}); ONEDNN_MAX_CPU_ISA={cap or 'not set'}"


def cut_track(path: Path, seconds: float, out: Path) -> Path:
    """The first ``seconds`` of ``path`` as an OGG at its own rate (decoded and encoded once)."""
    import soundfile as sf

    info = sf.info(str(path))
    y = load_audio(path, sr=info.samplerate, duration=seconds, mono=False)
    with sf.SoundFile(str(out), "w", info.samplerate, y.shape[0], format="OGG", subtype="VORBIS") as f:
        for i in range(0, y.shape[1], info.samplerate):  # in 1 s pieces: libsndfile's Vorbis encoder
            f.write(np.ascontiguousarray(y[:, i : i + info.samplerate].T))  # crashes on one large write
    return out


def layer_times(net, mel, repeats: int) -> dict[str, float]:
    """Seconds of each branch of the front and mid end of ``net`` (a MusiCNN or its student) on ``mel``."""
    out = {}
    split = getattr(net, "model_args", {}).get("split", 1)
    with torch.inference_mode():
        h = net.input_bn(mel.unsqueeze(1))
        b, _, t, n = h.shape
        # the student's interleaved channels (the full network reads h itself: a (b, 1, t, n) copy with a size-1
        # dimension's odd stride sends oneDNN to a 3.5x slower kernel for the temporal branches)
        hs = h if split == 1 else h.reshape(b, t, n // split, split).permute(0, 3, 1, 2).contiguous()
        for name, blocks in (("timbral", net.timbral), ("temporal", net.temporal)):
            for block in blocks:
                _, c, kt, kf = block.conv.weight.shape
                x = hs if name == "timbral" else hs[:, :1].contiguous()
                _, out[f"{name} {kt}x{kf}" + (f"x{c}" if c > 1 else "")] = best_of(
                    lambda b=block, x=x: b(x), repeats
                )
        front = torch.cat(
            [blk(hs) for blk in net.timbral] + [blk(hs[:, :1].contiguous()) for blk in net.temporal], dim=1
        )
        _, out["mid end (3 layers)"] = best_of(
            lambda: [net.midend[2](net.midend[1](c) + c) for c in [net.midend[0](front)]], repeats
        )
    return out


def agreement(full, fast, y, sr) -> str:
    """How the student's prediction of ``y`` differs from the full network's."""
    a, b = full.predict(y, sr=sr), fast.predict(y, sr=sr)
    fa = compute_features(y, full.features.without_extras())
    fb = compute_features(y, fast.features.without_extras())
    cos = torch.nn.functional.cosine_similarity(
        torch.from_numpy(fa[:, :200]), torch.from_numpy(fb[:, :200]), dim=-1
    )
    curve = max(
        float(np.abs(np.asarray(a.dynamic[d], float) - np.asarray(b.dynamic[d], float)).max())
        for d in ("valence", "arousal")
    )
    return (
        f"student vs full on this track: embedding cosine mean {float(cos.mean()):.4f} (worst step "
        f"{float(cos.min()):.4f}); static valence {a.static['valence']:+.3f} vs {b.static['valence']:+.3f}, "
        f"arousal {a.static['arousal']:+.3f} "
        f"vs {b.static['arousal']:+.3f}; quadrant {a.quadrant} vs {b.quadrant}; largest curve difference {curve:.3f}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--audio", type=Path, help="track to use (default: search /usr/share, else generate)")
    ap.add_argument("--seconds", type=float, default=TRACK_S, help="length measured (default 180)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each measurement (median)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    source = args.audio or find_track(args.seconds) or synth_track(Path(tmp.name) / "track.ogg", args.seconds)
    path = cut_track(source, args.seconds, Path(tmp.name) / "cut.ogg")
    fronts = ["torch"] + (["onnx"] if onnx_available() else [])
    print(f"CPU: {cpu_line()}")
    print(
        f"track: first {args.seconds:.0f} s of {source}; torch {torch.__version__}, {torch.get_num_threads()} threads, float32"
    )
    if not onnx_available():
        print('ONNX Runtime not installed (pip install "moodscope[onnx]"): PyTorch front end only')

    predictors = {fe: Predictor.from_file(None, cache=False, frontend=fe) for fe in ("full", "student")}
    e2e = {}
    for fe, predictor in predictors.items():
        for name in fronts:
            result, e2e[fe, name] = with_frontend(
                name, lambda p=predictor: best_of(lambda: p.predict(path), args.repeats)
            )
    base = e2e["full", "torch"]
    print(
        f"end to end, default model, {result.duration_s:.0f} s of audio (ratio: speed-up over full network + PyTorch):"
    )
    for (fe, name), t in e2e.items():
        hours = t * 10000 * (TRACK_S / result.duration_s) / 3600
        print(
            f"  {fe:>7s} front end, {name:5s}: {t:5.2f} s = {base / t:4.2f}x; "
            f"10,000 3-minute tracks one after the other: {hours:4.2f} h"
        )
    features = predictors["full"].features
    y = load_audio(path, sr=features.sr)
    print(agreement(predictors["full"], predictors["student"], y, features.sr))

    extractor = MusicnnEmbedding(features.without_extras()).eval()
    student = MusicnnEmbedding(dataclasses.replace(features.without_extras(), frontend="student")).eval()
    net = extractor.net
    logmel = LogMel(features.input_config(), dtype=torch.float32)
    with torch.inference_mode():
        mel = logmel(torch.from_numpy(y))[None]
    full_layers = layer_times(net, mel, args.repeats)
    with with_frontend_env("torch"):
        student.front_end("cpu")
    half = student._student
    student_layers = layer_times(half, mel, args.repeats)
    print("layer by layer, PyTorch (full | student):")
    for (k1, v1), (k2, v2) in zip(full_layers.items(), student_layers.items()):
        print(f"  {k1:<20s} {v1:5.2f} s | {k2:<20s} {v2:5.2f} s = {v1 / v2:4.2f}x")
    print(
        f"  {'all':<20s} {sum(full_layers.values()):5.2f} s | {'':<20s} {sum(student_layers.values()):5.2f} s"
    )

    _, t_decode = best_of(lambda: load_audio(path, sr=features.sr), args.repeats)

    def decode_and_notes():  # as predict reads: the content notes measured on the decoded samples
        with content.collect():
            return load_audio(path, sr=features.sr)

    _, t_notes = best_of(decode_and_notes, args.repeats)
    _, t_loud = best_of(lambda: LoudnessMeter(features.sr).update(y).gain(-14.0), args.repeats)
    front = {}
    with torch.inference_mode():
        _, t_mel = best_of(lambda: logmel(torch.from_numpy(y))[None], args.repeats)
        frames = {}
        for ex_name, ex in (("full", extractor), ("student", student)):
            for name in fronts:
                frames[ex_name, name], front[ex_name, name] = with_frontend(
                    name, lambda e=ex: best_of(lambda: e._frame_features(mel), args.repeats)
                )
        saved = FreqMaxBlock.CPU_SLICE
        FreqMaxBlock.CPU_SLICE = 1 << 62
        try:
            whole, t_whole = with_frontend(
                "torch", lambda: best_of(lambda: extractor._frame_features(mel), args.repeats)
            )
        finally:
            FreqMaxBlock.CPU_SLICE = saved
        steps = max(1, len(y) // (features.sr // 2))
        full_frames = frames["full", "torch"]
        starts = window_starts(full_frames.shape[1], steps, fps=features.sr / features.hop_length)
        _, t_head = best_of(lambda: net.head_windows(full_frames, starts), args.repeats)
    _, t_mode = best_of(lambda: mode_features(y, features.sr, steps), args.repeats)
    feats = compute_features(y, features)
    x = torch.from_numpy(feats)[None, None]
    with torch.inference_mode():
        _, t_model = best_of(lambda: predictors["full"].model(x), args.repeats)
    stages = {
        "decode + resample to 16 kHz": t_decode,
        "content notes (beside the decode)": max(0.0, t_notes - t_decode),
        "loudness (BS.1770, for the level)": t_loud,
        "log-Mel": t_mel,
        **{f"front + mid end, {fe}, {name}": t for (fe, name), t in front.items()},
        "MusiCNN back end, 0.5 s windows": t_head,
        "mode features": t_mode,
        "valence-arousal model": t_model,
    }
    print("stages (ratio: against the full network's front end in PyTorch):")
    t_front = front["full", "torch"]
    for name, t in stages.items():
        ratio = f" = {t_front / t:4.2f}x" if name.startswith("front") else ""
        print(f"  {name:<34s} {t:6.2f} s{ratio}")
    print(
        f"PyTorch front end in time slices vs one call per branch: {t_front:.2f} s vs {t_whole:.2f} s "
        f"= {t_whole / t_front:.2f}x faster (largest difference {float((full_frames - whole).abs().max()):.1e})"
    )
    if "onnx" in fronts:
        diff = float((frames["full", "onnx"] - full_frames).abs().max())
        print(
            f"ONNX Runtime vs PyTorch, full network: largest difference {diff:.1e} "
            f"(values up to {float(full_frames.abs().max()):.0f})"
        )
    macs = conv_macs(net, mel.shape[1] + 2 * extractor.CONTEXT * -(-mel.shape[1] // extractor.BLOCK))
    macs_half = conv_macs(half, mel.shape[1] + 2 * extractor.CONTEXT * -(-mel.shape[1] // extractor.BLOCK))
    rate, square = gemm_rate(net, args.repeats), square_gemm_rate(args.repeats)
    print(
        f"front + mid end: full {macs / 1e9:.1f} G multiply-adds, student {macs_half / 1e9:.1f} G "
        f"({macs / macs_half:.2f}x fewer; block context included); rates reached: "
        + ", ".join(
            f"{fe} {name} {(macs if fe == 'full' else macs_half) / t / 1e9:.1f} G/s"
            for (fe, name), t in front.items()
        )
        + f"; this CPU's float32 torch.mm on the first timbral shape {rate / 1e9:.1f} G/s"
    )
    others = t_decode + t_mel + t_head + t_mode + t_model
    print(
        f"floor for the full network at float32: at the best torch.mm rate here (2048 x 2048: {square / 1e9:.1f} G/s) "
        f"its convolutions alone take {macs / square:.2f} s; with the other stages as measured: "
        f"{macs / square + others:.2f} s (the student's: {macs_half / square + others:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
