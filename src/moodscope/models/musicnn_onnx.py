"""ONNX Runtime for MusiCNN's front and mid end on the CPU (the optional extra ``moodscope[onnx]``).

The convolutions of :meth:`MusiCNN.frame_features` are about 84 G multiply-adds for a 3-minute track, most
of the default model's time. ONNX Runtime's CPU convolutions (MLAS) ran them 1.4x faster than PyTorch's
oneDNN on an idle 2-core AVX2 machine (``benchmarks/musicnn_speed.py``), but a whole 3-minute prediction
only 1.05x faster, so it is opt-in; the numbers differ from PyTorch's by float32 rounding only
(measured: at most 5e-4 on frame features of magnitude up to ~100; the embedding and tag logits the
valence-arousal models read, within 1e-4 -- ``tests/models/test_musicnn_onnx.py``).

Which one runs is :func:`frontend_choice`: ``MOODSCOPE_FRONTEND=torch`` (the default), ``onnx`` (an error
naming the extra when it is not installed) or ``auto`` (ONNX Runtime where it is installed); ONNX Runtime
only ever runs for features computed on the CPU. The graph is exported once per weights, torch version and opset into
``$MOODSCOPE_CACHE/onnx/`` (atomically; a temporary folder when the cache cannot be written) and loaded
from there by every later process.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import MissingToolError, UsageError

__all__ = ["OnnxFrameFeatures", "frontend_choice", "onnx_available"]

OPSET = 17
CHOICES = ("auto", "torch", "onnx")
_HINT = 'pip install "moodscope[onnx]" (onnxruntime and onnx)'


def onnx_available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` (needed to export the graph) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def frontend_choice(device: str | torch.device = "cpu") -> str:
    """``"onnx"`` or ``"torch"``: what computes MusiCNN's front and mid end on ``device``.

    From ``MOODSCOPE_FRONTEND`` (``torch`` by default); ONNX Runtime only ever runs on the CPU here.
    """
    want = os.environ.get("MOODSCOPE_FRONTEND", "torch").strip().lower() or "torch"
    if want not in CHOICES:
        raise UsageError(f"MOODSCOPE_FRONTEND={want!r}: must be one of {', '.join(CHOICES)}")
    if want == "torch" or torch.device(device).type != "cpu":
        return "torch"
    if want == "onnx" and not onnx_available():
        raise MissingToolError(f"onnxruntime not installed: MOODSCOPE_FRONTEND=onnx needs it ({_HINT})")
    return "onnx" if want == "onnx" or onnx_available() else "torch"


def _weights_key(net: torch.nn.Module) -> str:
    h = hashlib.sha256(f"torch {torch.__version__} opset {OPSET}".encode())
    for name, t in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


class _FrameFeatures(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, mel):
        return self.net.frame_features(mel)


def _export(net, path: Path) -> None:
    from ..fileio import atomic_path
    from .musicnn import FreqMaxBlock

    saved = FreqMaxBlock.CPU_SLICE
    FreqMaxBlock.CPU_SLICE = 1 << 62  # the plain graph: one convolution per branch, ONNX Runtime tiles it
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes about traced Python conditions
            torch.onnx.export(
                _FrameFeatures(net).eval(),
                (torch.zeros(1, 400, net.model_args["n_mels"]),),
                str(tmp),
                dynamo=False,
                input_names=["mel"],
                output_names=["frames"],
                dynamic_axes={"mel": {0: "batch", 1: "frames"}, "frames": {0: "batch", 1: "frames"}},
                opset_version=OPSET,
            )
    finally:
        FreqMaxBlock.CPU_SLICE = saved


class OnnxFrameFeatures:
    """``net.frame_features`` (``(batch, frames, n_mels)`` -> ``(batch, frames, 753)``) run by ONNX Runtime.

    ``threads``: ONNX Runtime's intra-op threads (default: torch's, so ``--jobs`` workers split the cores the
    same way); its worker threads do not spin between calls (they would take the cores from decoding).
    """

    def __init__(self, net, *, cache_dir: Path | None = None, threads: int | None = None):
        if not onnx_available():
            raise MissingToolError(f"onnxruntime not installed: the ONNX front end needs it ({_HINT})")
        import onnxruntime as ort

        from ..fileio import cache_root

        name = f"musicnn-frontend-{_weights_key(net)}.onnx"
        folder = Path(cache_dir) if cache_dir is not None else cache_root() / "onnx"
        self._tmp = None
        path = folder / name
        if not path.is_file():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                _export(net, path)
            except OSError:  # a cache that cannot be written: export for this process only
                self._tmp = tempfile.TemporaryDirectory(prefix="moodscope-onnx-")
                path = Path(self._tmp.name) / name
                _export(net, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(mel.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"mel": x})[0])
