"""Int8 for MusiCNN's timbral branches (issue 25, item 1): how much faster, and how far from float32.

The timbral branches are 0.5-0.6 of the front end's time: matrix products of im2col patches of the log-Mel
(``moodscope.models.musicnn._conv_freq_max``). Here those products run as PyTorch's int8 dynamic linear
(fbgemm: per-output-channel int8 weights, the patches quantised per tensor on the fly, int32 sums, float out),
side by side with float32 in one run, on real recordings through the default model:

1. the front end's time on each clip, float32 and int8, and their ratio; the end-to-end ``predict`` time too;
2. agreement: cosine of the 200-d embedding per 0.5 s step (mean, worst clip's mean), static valence/arousal
   differences (mean, max), the share of clips within 0.02, the share in the same quadrant -- the issue's
   conditions are embedding cosine >= 0.99, static within 0.02, >= 98 % same quadrant.

Clips: ``--audio`` files, else the OGGs of ``/usr/share/games/singularity/music`` and
``/usr/share/games/wesnoth/*/data/core/music`` (``apt-get install singularity-music wesnoth-1.16-music``), first
``--seconds`` of each. fbgemm chooses its kernels from the CPU itself (it does not obey ``ONEDNN_MAX_CPU_ISA``):
on a CPU with AVX-512 VNNI it uses VNNI, so the ratio is the best case for int8.

Usage::

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/int8_timbral.py --clips 12 [--temporal]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

import moodscope.models.musicnn as musicnn
from moodscope.audio.decode import load_audio
from moodscope.emotion import quadrant_name
from moodscope.inference.predictor import Predictor

_PACKED: dict = {}
#: also the temporal branches (``--temporal``: as im2col products of their 128/64/32-tap kernels)
TEMPORAL = False


def _packed(weight: torch.Tensor, bias: torch.Tensor):
    """fbgemm's packed int8 weights of ``weight (filters, inner)`` (per output channel) and ``bias``."""
    key = (tuple(weight.shape), float(weight.double().sum()), float(bias.double().sum()))
    if key not in _PACKED:
        scale = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        zero = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantized tensors are deprecated in PyTorch 2.13
            q = torch.quantize_per_channel(weight.contiguous(), scale, zero, 0, torch.qint8)
            _PACKED[key] = torch.ops.quantized.linear_prepack(q, bias.contiguous())
    return _PACKED[key]


def int8_product(bias: torch.Tensor, patches: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """``torch.addmm(bias, patches, filters)`` as fbgemm's int8 dynamic linear."""
    return torch.ops.quantized.linear_dynamic(patches, _packed(filters.t(), bias), False)


def int8_conv_freq_max(x, weight, bias, size):
    """``musicnn._conv_freq_max`` with the timbral products in int8 (the temporal branches as they are, unless
    ``--temporal``)."""
    if weight.shape[-1] == 1 and not TEMPORAL:
        return REAL(x, weight, bias, size)
    return REAL(x, weight, bias, size, product=int8_product)


REAL = musicnn._conv_freq_max


@contextlib.contextmanager
def int8():
    musicnn._conv_freq_max = int8_conv_freq_max
    try:
        yield
    finally:
        musicnn._conv_freq_max = REAL


def clips(args) -> list[Path]:
    found = args.audio or sorted(
        glob.glob("/usr/share/games/singularity/music/*.ogg")
        + glob.glob("/usr/share/games/wesnoth/*/data/core/music/*.ogg")
    )
    return [Path(p) for p in found][: args.clips]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--audio", nargs="*", help="audio files (default: the Debian music packages)")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--temporal", action="store_true", help="the temporal branches in int8 too")
    a = ap.parse_args()
    global TEMPORAL
    TEMPORAL = a.temporal
    paths = clips(a)
    if not paths:
        raise SystemExit("no audio: pass --audio FILES or apt-get install singularity-music")
    pred = Predictor.from_file()
    emb = pred.features
    from moodscope.audio.features import MusicnnEmbedding

    extractor = MusicnnEmbedding(emb.without_extras()).eval()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(paths)} clips of {a.seconds:g} s"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, p in enumerate(paths):
            y = load_audio(p, sr=emb.sr, duration=a.seconds)
            clip = Path(tmp) / f"clip{i}.wav"
            sf.write(str(clip), y, emb.sr, subtype="FLOAT")
            mel = extractor.logmel(torch.from_numpy(y))[None]
            with torch.inference_mode():
                extractor._frame_features(mel)  # warm-up
                t = time.perf_counter()
                extractor._frame_features(mel)
                t_float = time.perf_counter() - t
                e_float = torch.from_numpy(extractor(torch.from_numpy(y)).numpy()[:, :200])
                r_float = pred.predict(clip)
                with int8():
                    extractor._frame_features(mel)
                    t = time.perf_counter()
                    extractor._frame_features(mel)
                    t_int8 = time.perf_counter() - t
                    e_int8 = torch.from_numpy(extractor(torch.from_numpy(y)).numpy()[:, :200])
                    r_int8 = pred.predict(clip)
            cos = float(F.cosine_similarity(e_float, e_int8, dim=1).mean())
            dv = abs(r_float.static["valence"] - r_int8.static["valence"])
            da = abs(r_float.static["arousal"] - r_int8.static["arousal"])
            same = quadrant_name(r_float.static["valence"], r_float.static["arousal"]) == quadrant_name(
                r_int8.static["valence"], r_int8.static["arousal"]
            )
            rows.append((t_float, t_int8, cos, dv, da, same))
            print(
                f"  {p.name[:40]:40s} front end {t_float:.3f} s float32, {t_int8:.3f} s int8 = "
                f"{t_float / t_int8:.2f}x; cosine {cos:.4f}; |dV| {dv:.3f} |dA| {da:.3f}; same quadrant {same}"
            )
    r = np.array(rows, dtype=float)
    print(
        f"front end, all clips: float32 {r[:, 0].sum():.2f} s, int8 timbral {r[:, 1].sum():.2f} s = "
        f"{r[:, 0].sum() / r[:, 1].sum():.2f}x"
    )
    print(
        f"agreement: embedding cosine mean {r[:, 2].mean():.4f} (worst clip {r[:, 2].min():.4f}); static |dV| mean "
        f"{r[:, 3].mean():.3f} max {r[:, 3].max():.3f}, |dA| mean {r[:, 4].mean():.3f} max {r[:, 4].max():.3f}; "
        f"within 0.02: {np.mean((r[:, 3] <= 0.02) & (r[:, 4] <= 0.02)):.0%}; same quadrant {r[:, 5].mean():.0%}"
    )


if __name__ == "__main__":
    main()
