"""A distilled MusiCNN front and mid end that skips every other frequency position (issue 25).

MusiCNN's front end spends ~90 % of a prediction's multiply-adds in its two timbral branches (7 x 38 and
7 x 67 kernels sliding over 96 mel bands, 204 filters each, then a max over the 59 and 30 frequency
positions); measured layer by layer on a 2-core AVX2 CPU for a 3-minute track, the timbral branches are
0.26 s + 0.23 s of the front end's 0.76 s (as matrix products, :func:`moodscope.models.musicnn._conv_freq_max`),
the three temporal branches 0.19 s, the mid end 0.03 s. The student keeps every layer, every width and the
full 96-band input, but evaluates the front end at every second frequency position only (``split = 2``):
the bands are dealt into two interleaved channels and each kernel of ``k`` taps becomes two channels of
``ceil(k / 2)`` taps, so its output at position ``q`` is exactly the teacher's at ``2 q`` before training. The
temporal branches read every second band. 1.9x fewer multiply-adds (3.94 M per frame against 7.48 M). Its
output is the teacher's: 753 features per frame (``MusiCNN.frame_features``), read by the teacher's own back
end, so everything downstream (the 200-d embedding, the 50 tag logits, the valence-arousal models trained on
them) is unchanged.

Choices (no paper has this student; ``tools/distil_musicnn.py`` trains it):

* initialised as the teacher evaluated at the kept positions (embedding cosine with the teacher ~0.91-0.94
  before training: the max over frequency misses the skipped positions), then trained to make up for them;
  a half-band student (adjacent bands averaged, 3.1x fewer multiply-adds) was tried first and stopped at an
  embedding cosine of 0.93 on held-out audio: it hears less, where this one hears everything;
* trained with the batch norms' statistics frozen (their affine scale and shift learn), Adam at 2e-4 with a
  warm-up (1e-3 undid the initialisation within a few steps), on the teacher's frame features (each channel
  divided by its standard deviation over the training audio) plus the back end's outputs on 3 s windows
  (embedding and tag logits, standardised the same way);
* the audio: real recordings and renderings, loudness-normalised to -14 LUFS like the default model's input,
  with a random gain on half the files so that levels around it are covered too.

The file (``assets/musicnn_msd_student.safetensors``) holds the front and mid end only, with the teacher
file's weight hash in its metadata: a student is only ever run in front of the teacher it was distilled from.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
from pathlib import Path

import torch
from torch import nn

from ..config import SettingError, check_settings, integer
from ..errors import ModelFileError
from ..fileio import atomic_path
from ..safetensors_io import check_tensors, open_safetensors, read_json_metadata, read_tensors
from .musicnn import BN_EPS, FreqMaxBlock, MidBlock, MusiCNN, mid_end, same_pad

__all__ = ["MusicnnStudent", "bundled_id", "load_student", "save_student", "teacher_key"]

META_KEY = "musicnn_student"
FORMAT = "moodscope.musicnn_student/1"
BUNDLED = "musicnn_msd_student.safetensors"

#: The state-dict prefixes of the front and mid end (what a student file stores).
_FRONT = ("input_bn.", "timbral.", "temporal.", "midend.")


def teacher_key(teacher: MusiCNN) -> str:
    """A short hash of the teacher's front- and mid-end weights (a student names the teacher it learnt)."""
    h = hashlib.sha256()
    for name, t in sorted(teacher.state_dict().items()):
        if name.startswith(_FRONT):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class MusicnnStudent(nn.Module):
    """``frame_features``: ``(batch, frames, n_mels)`` log-Mel -> ``(batch, frames, 753)``, as the teacher's.

    The log-Mel's bands are dealt into ``split`` interleaved channels (band ``split * q + c`` is channel ``c``
    at position ``q``), and every convolution of the front end runs over the ``n_mels / split`` positions:
    a timbral kernel of ``k`` taps becomes ``split`` channels of ``ceil(k / split)`` taps, so each output
    position sees the same bands the teacher's did at position ``split * q`` -- the student evaluates the
    teacher's frequency positions ``0, split, 2 split, ...`` (the max over frequency then sees every
    ``split``-th position) and learns to make up for the ones it skips. The temporal branches read channel 0
    (every ``split``-th band). The mid end is the teacher's.

    Parameters
    ----------
    n_mels : int
        Bands of the input (the teacher's, 96).
    split : int
        Channels the bands are dealt into (the frequency stride of the front end).
    n_timbral, n_temporal, n_midend : int
        Widths of the branches (the teacher's by default: the output has the teacher's 753 channels).
    """

    arg_settings = {
        "n_mels": integer(3, 1024),
        "split": integer(1, 16),
        "n_timbral": integer(1, 4096),
        "n_temporal": integer(1, 4096),
        "n_midend": integer(1, 4096),
    }

    def __init__(
        self, n_mels: int = 96, split: int = 2, n_timbral: int = 204, n_temporal: int = 51, n_midend: int = 64
    ):
        super().__init__()
        if n_mels % split:
            raise ValueError(f"n_mels {n_mels} is not a multiple of split {split}")
        self.model_args = dict(
            n_mels=n_mels, split=split, n_timbral=n_timbral, n_temporal=n_temporal, n_midend=n_midend
        )
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList()
        for f in (0.4, 0.7):
            block = FreqMaxBlock(n_timbral, (7, -(-int(f * n_mels) // split)), (3, 3))
            block.conv = nn.Conv2d(split, n_timbral, block.conv.kernel_size)
            self.timbral.append(block)
        self.temporal = nn.ModuleList(FreqMaxBlock(n_temporal, (k, 1), same_pad(k)) for k in (128, 64, 32))
        n_front = 2 * n_timbral + 3 * n_temporal
        self.midend = nn.ModuleList(
            [MidBlock(n_front, n_midend), MidBlock(n_midend, n_midend), MidBlock(n_midend, n_midend)]
        )
        self.info: dict = {}

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        n_mels, split = self.model_args["n_mels"], self.model_args["split"]
        if x.dim() != 3 or x.shape[-1] != n_mels:
            raise ValueError(
                f"MusicnnStudent expects features (batch, frames, {n_mels}), got {tuple(x.shape)}"
            )
        b, t, _ = x.shape
        h = self.input_bn(x.unsqueeze(1))  # (batch, 1, frames, bands)
        # (batch, split, frames, positions), contiguous: oneDNN's convolutions are several times slower on views
        if (
            split > 1
        ):  # (split 1: h as it is; a permuted copy of it would carry a size-1 dimension's odd stride)
            h = h.reshape(b, t, n_mels // split, split).permute(0, 3, 1, 2).contiguous()
        every = h[:, :1].contiguous()
        front = torch.cat([blk(h) for blk in self.timbral] + [blk(every) for blk in self.temporal], dim=1)
        return mid_end(self.midend, front)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_features(x)

    @classmethod
    def from_teacher(cls, teacher: MusiCNN, split: int = 2) -> MusicnnStudent:
        """A student of the teacher's widths that computes exactly the teacher's front end at the frequency
        positions ``0, split, 2 split, ...`` (then trained to make up for the others: see the module notes)."""
        a = teacher.model_args
        student = cls(a["n_mels"], split, a["n_timbral"], a["n_temporal"], a["n_midend"])
        state = {k: v.clone() for k, v in teacher.state_dict().items() if k.startswith(_FRONT)}
        for i, block in enumerate(student.timbral):
            w = state[f"timbral.{i}.conv.weight"]  # (filters, 1, kt, k)
            ws = torch.zeros_like(block.conv.weight)  # (filters, split, kt, ceil(k / split))
            for c in range(split):
                taps = w[:, 0, :, c::split]
                ws[:, c, :, : taps.shape[-1]] = taps
            state[f"timbral.{i}.conv.weight"] = ws
        student.load_state_dict(state, strict=True)
        return student


def save_student(
    student: MusicnnStudent, path: str | Path, *, teacher: MusiCNN, extra: dict | None = None
) -> None:
    """Write the student's front and mid end with its arguments, its teacher's hash and ``extra`` metadata."""
    meta = {"model_args": student.model_args, "teacher": teacher_key(teacher), **(extra or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()}
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps({"format": FORMAT, **meta})})


def _read(path: Path) -> tuple[dict, dict]:
    meta = read_json_metadata(path, META_KEY, FORMAT, "not written by tools/distil_musicnn.py")
    args = meta.get("model_args", {})
    try:
        check_settings(args, MusicnnStudent.arg_settings, what="student argument")
    except SettingError as e:
        raise ModelFileError(f"{path}: {e.within('model_args')}") from None
    with torch.device("meta"):
        skeleton = MusicnnStudent(**args)
    with open_safetensors(path) as f:
        check_tensors(path, f, skeleton.state_dict(), f"MusicnnStudent{skeleton.model_args}")
        tensors = read_tensors(path, f)
    return meta, tensors


def load_student(teacher: MusiCNN, which: str | Path | None = None) -> MusicnnStudent:
    """The student of ``teacher`` (the bundled one by default) in eval mode, ``requires_grad`` off.

    Raises :class:`ModelFileError` when the file is missing, malformed, or was distilled from other weights.
    """
    if which is None:
        ref = importlib.resources.files("moodscope").joinpath("assets", BUNDLED)
        with importlib.resources.as_file(ref) as path:
            if not Path(path).is_file():
                raise ModelFileError(f"{BUNDLED}: the bundled MusiCNN student is missing from this install")
            meta, tensors = _read(Path(path))
    else:
        path = Path(which)
        if not path.is_file():
            raise ModelFileError(f"{path}: MusiCNN student file not found")
        meta, tensors = _read(path)
    if meta.get("teacher") != teacher_key(teacher):
        raise ModelFileError(
            f"{which or BUNDLED}: distilled from other MusiCNN weights (teacher {meta.get('teacher')!r}, "
            f"this one {teacher_key(teacher)!r})"
        )
    student = MusicnnStudent(**meta["model_args"])
    student.load_state_dict(tensors, strict=True)
    student.info = {k: v for k, v in meta.items() if k not in ("model_args",)}
    return student.eval().requires_grad_(False)


@functools.lru_cache(maxsize=1)
def bundled_id() -> str:
    """The first 12 hex digits of the bundled student file's SHA-256 (``"missing"`` when it is not installed)."""
    ref = importlib.resources.files("moodscope").joinpath("assets", BUNDLED)
    try:
        return hashlib.sha256(ref.read_bytes()).hexdigest()[:12]
    except OSError:
        return "missing"
