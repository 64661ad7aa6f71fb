"""MusiCNN (Pons & Serra) in PyTorch, with the pre-trained weights of the ``musicnn`` package.

J. Pons, X. Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging", ISMIR
2019 late-breaking demo; code and weights: https://github.com/jordipons/musicnn (PyPI ``musicnn`` 0.1.0).

Licence of the weights (``moodscope/assets/musicnn_msd.safetensors``): they are the ``MSD_musicnn``
checkpoint of the musicnn 0.1.0 package, converted to safetensors by ``tools/convert_musicnn.py``
(no retraining; values unchanged, only renamed and transposed). musicnn is distributed under the ISC
licence, whose notice is kept in the file's metadata (``licence`` in the JSON entry ``"musicnn"``) and
reproduced here::

    Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019. Code developed by Jordi Pons
    (www.jordipons.me).

    Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee
    is hereby granted, provided that the above copyright notice and this permission notice appear in all
    copies.

    THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS SOFTWARE
    INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE
    FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS
    OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING
    OUT OF OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.

The network is written from the architecture of ``musicnn/models.py`` (``build_musicnn`` with
``num_filt=1.6``, ``num_filt_midend=64``, ``num_units_backend=200``); TensorFlow is never imported.

Input: features ``(batch, frames, 96)`` = ``log10(1 + 10000 * mel power)`` at 16 kHz, n_fft 512, hop 256,
96 Slaney bands (:data:`MUSICNN_FEATURES`, ``moodscope.audio.features.compute_features``). The networks
were trained on 3 s patches of 187 frames (:data:`PATCH_FRAMES`). Tensors inside are
``(batch, channels, time, freq)``; TF's NHWC ``(batch, time, freq, 1)`` maps to ``(batch, 1, time, freq)``.

Layers (channels for the musicnn checkpoints; all batch norms use TF's epsilon 1e-3, inference statistics):

1. ``input_bn``: batch norm of the single input channel.
2. Front end, five parallel branches, each conv -> ReLU -> batch norm -> max over all frequencies:

   - timbral ``timbral.0`` 7 x 38 (frames x bands) and ``timbral.1`` 7 x 67, 204 filters each, time padded
     3 + 3 with zeros (of the normalised input), no frequency padding ("valid": 59 and 30 bands remain
     before the max);
   - temporal ``temporal.0/1/2`` 128 x 1, 64 x 1, 32 x 1, 51 filters each, TF "same" padding in time,
     which for an even kernel ``k`` puts ``k/2 - 1`` zeros before and ``k/2`` after (63/64, 31/32, 15/16).

   Concatenated: 204 + 204 + 51 * 3 = **561** channels per frame (:meth:`MusiCNN.frame_features` ``[..., :561]``).
3. Mid end: three 1-D convolutions over time, kernel 7 (zero padding 3 + 3), 561 -> 64 -> 64 -> 64
   channels, each conv -> ReLU -> batch norm; layers 2 and 3 add their input (residual). The front end's
   561 channels and the three 64-channel outputs are concatenated: **753** channels per frame.
4. Back end: max and mean over time (753 each), interleaved as TF flattens ``(753, 2)``:
   ``[max_0, mean_0, max_1, mean_1, ...]`` (**1506**, ``pooled``) -> batch norm ``pool_bn`` -> dense 1506 -> 200
   (``dense``; its output before the ReLU is **Essentia's MSD-MusiCNN embedding**, ``model/dense/BiasAdd``)
   -> ReLU -> batch norm ``dense_bn`` (musicnn's ``penultimate`` feature) -> dense 200 -> 50 (``out``,
   tag logits; sigmoid gives musicnn's taggram). Dropout (training only) is left out.

Two ways to run it:

- **per patch** (musicnn's taggram): :meth:`MusiCNN.forward` / :meth:`MusiCNN.embed` on ``(batch, 187, 96)``;
- **fully convolutional**: :meth:`MusiCNN.frame_features` runs the front and mid end once over a whole
  track, ``(batch, frames, 753)``, and :meth:`MusiCNN.head` / :meth:`MusiCNN.head_windows` pool any frame
  span (e.g. a 3 s window around every 0.5 s step, :func:`window_starts`). The only difference to
  evaluating each window as its own patch is at the window's edges: per patch, the convolutions there see
  zero padding (the temporal 128 x 1 kernel reaches 63/64 frames, the mid end 9 more); on the whole track
  they see the neighbouring music. Frames at the track's own ends are padded the same way in both. Frames
  at least 72 frames after a window's start and 73 before its end are identical (up to float32 rounding).
  Measured max abs tag-probability differences of windows inside the track vs the same windows as
  patches: fixture clip 0.15 (mean 0.004; it has abrupt section changes right after some window ends),
  six rendered piano pieces 0.067 (mean 0.004), 200-d embedding cosine >= 0.97 (mean 0.98).

  Cost (one CPU core, float32, 30 s clip, a busy machine): 10 patches ~0.8 s; one fully-convolutional pass
  plus 60 windows ~0.8 s (the windows themselves ~0.02 s); 60 overlapping patches at a 0.5 s hop ~4.7 s.

Other hops: the weights were trained at hop 256 (62.5 frames/s). Features at hop 250 (64 frames/s, so
0.5 s = 32 frames) stretch time by 2.4 %: on six rendered piano pieces, 3 s windows (192 frames at hop
250 vs 187 at hop 256) moved tag probabilities by 0.0035 on average (max 0.095) and kept the 200-d
embedding at cosine 0.989 on average (min 0.954). For scale, shifting a hop-256 window by 4 frames (64 ms)
moves them by 0.0013 (max 0.054), cosine 0.998.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..config import FeatureConfig, SettingError, check_settings, integer, shown, text_list
from ..errors import ModelFileError
from ..safetensors_io import check_tensors, open_safetensors, read_json_metadata, read_tensors

__all__ = [
    "MSD_TAGS",
    "MTT_TAGS",
    "MUSICNN_FEATURES",
    "PATCH_FRAMES",
    "MusiCNN",
    "load_musicnn",
    "musicnn_metadata",
    "window_starts",
]

#: The features the musicnn networks were trained on (``compute_features(y16k, MUSICNN_FEATURES)``).
MUSICNN_FEATURES = FeatureConfig(sr=16000, n_mels=96, n_fft=512, hop_length=256, compression="musicnn")

#: Frames of one training patch: 3 s at 62.5 frames/s (musicnn's ``time_to_frames(3) + 1``).
PATCH_FRAMES = 187

#: The 50 Million Song Dataset (last.fm) tags of ``MSD_musicnn``, in output order (musicnn's ``MSD_LABELS``).
MSD_TAGS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul",
    "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies",
    "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s",
    "party", "country", "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
    "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
]  # fmt: skip

#: The 50 MagnaTagATune tags of ``MTT_musicnn`` (musicnn's ``MTT_LABELS``; that model is not bundled).
MTT_TAGS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals",
    "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft",
    "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
    "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
]  # fmt: skip

#: The converted files' safetensors metadata entry (one JSON string) and its ``format`` value.
META_KEY = "musicnn"
FORMAT = "moodscope.musicnn/1"

#: TF's ``tf.compat.v1.layers.batch_normalization`` default epsilon.
BN_EPS = 1e-3

_BUNDLED = {"msd": "musicnn_msd.safetensors"}


class FreqMaxBlock(nn.Module):
    """Conv2d over (time, freq) -> ReLU -> batch norm -> max over all remaining frequencies.

    ``pad`` = (zeros before, zeros after) in time. Output ``(batch, filters, time)``.
    """

    def __init__(self, filters: int, kernel: tuple[int, int], pad: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = nn.BatchNorm2d(filters, eps=BN_EPS)
        self.pad = pad

    #: Output values (filters x frames x frequencies) of one convolution call on the CPU in eval mode.
    #: The front end's outputs are large (a 3-minute track: 204 x 11250 x 59 floats = 540 MB for the
    #: first timbral branch) and each is read once, by the max over frequency; computed in time slices
    #: of this size (~12 MB) they stay in the cache, which made the whole front end 1.7-2.1x faster on a
    #: 2-core AVX2 machine (``benchmarks/musicnn_speed.py``). Same numbers: every output frame sees the
    #: same inputs.
    CPU_SLICE = 3 << 20

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, *self.pad))
        if self.training:
            return self.bn(F.relu(self.conv(x))).amax(dim=-1)  # (batch, filters, time)
        # In eval mode the batch norm is a per-channel affine map, monotone in its input, and so is the
        # ReLU: the max over frequency can be taken first -- of z where the batch norm's scale is >= 0 and
        # of -z (computed with negated weights, exactly -z) where it is negative, i.e. z's min. Same
        # numbers as conv -> relu -> bn -> max, with one pass over the big (time x freq) output.
        bn = self.bn
        sign = torch.where(bn.weight >= 0, 1.0, -1.0).to(x.dtype)
        weight, bias = self.conv.weight * sign[:, None, None, None], self.conv.bias * sign
        zmax = _conv_freq_max(x, weight, bias, self.CPU_SLICE)
        return F.batch_norm(
            F.relu(zmax * sign[:, None]),
            bn.running_mean,
            bn.running_var,
            bn.weight,
            bn.bias,
            False,
            0.0,
            bn.eps,
        )


def _conv_freq_max(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, size: int, product=None
) -> torch.Tensor:
    """``conv2d(x, weight, bias).amax(-1)``; on the CPU as matrix products of cache-sized im2col slices.

    On the CPU each slice of ``size`` output values or fewer gathers its input patches (a strided view copied
    into one ``(frames x positions, channels x kt x kf)`` matrix) and multiplies them by the filters: the same
    sums as oneDNN's convolution in another order (differences ~1e-6 relative), 1.4-1.7x faster on the timbral
    branches on a 2-core AVX2 CPU (``benchmarks/musicnn_speed.py``, "layer by layer"): oneDNN has no fast kernel
    for one input channel and a 38- or 67-tap kernel. The temporal branches (one frequency tap) stay oneDNN
    convolutions in time slices (:func:`_sliced_conv_freq_max`: faster there). ``size`` of 2**62 or more (and
    any other device, and an ONNX export) is one plain convolution call.

    ``product(bias, patches, filters)`` replaces ``torch.addmm`` for each slice (and then takes the temporal
    branches too): how ``benchmarks/int8_timbral.py`` measures int8 products on the same slices.
    """
    batch, channels, frames, bands = x.shape
    filters, _, kt, kf = weight.shape
    out_frames, positions = frames - kt + 1, bands - kf + 1
    if x.device.type != "cpu" or size >= 1 << 62 or torch.onnx.is_in_onnx_export():
        return F.conv2d(x, weight, bias).amax(dim=-1)
    if (
        kf == 1 and product is None
    ):  # the temporal branches: oneDNN's own kernels are faster here, in time slices
        return _sliced_conv_freq_max(x, weight, bias, size)
    product = product or torch.addmm
    inner = channels * kt * kf
    rows = max(1, min(out_frames, size // (filters * positions), (1 << 20) // (positions * inner)))
    w = weight.reshape(filters, inner).t()
    x = x.contiguous()
    sb, sc, st, sf = x.stride()
    base = x.storage_offset()
    out = []
    for b in range(batch):
        parts = []
        for t in range(0, out_frames, rows):
            n = min(rows, out_frames - t)
            patches = torch.as_strided(
                x, (n, positions, channels, kt, kf), (st, sf, sc, st, sf), base + b * sb + t * st
            ).reshape(n * positions, inner)
            parts.append(product(bias, patches, w).view(n, positions, filters).amax(dim=1))
        out.append(torch.cat(parts, dim=0).t())
    return torch.stack(out)


def _sliced_conv_freq_max(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, size: int
) -> torch.Tensor:
    """``conv2d(x, weight, bias).amax(-1)`` in convolution calls of at most ``size`` output values (each
    output stays in the cache until the max over frequency reads it)."""
    batch, _, frames, bands = x.shape
    kt, kf = weight.shape[-2:]
    out_frames = frames - kt + 1
    per_frame = weight.shape[0] * (bands - kf + 1)
    if batch * out_frames * per_frame <= size:
        return F.conv2d(x, weight, bias).amax(dim=-1)
    rows = max(1, size // per_frame)  # output frames per call
    if rows >= out_frames:  # many short patches: slices of the batch
        step = rows // out_frames
        parts = [F.conv2d(x[b : b + step], weight, bias).amax(dim=-1) for b in range(0, batch, step)]
        return torch.cat(parts, dim=0)
    parts = [
        F.conv2d(x[:, :, t : min(out_frames, t + rows) + kt - 1], weight, bias).amax(dim=-1)
        for t in range(0, out_frames, rows)
    ]
    return torch.cat(parts, dim=-1)


class MidBlock(nn.Module):
    """Conv1d over time (kernel 7, zero padding 3 + 3) -> ReLU -> batch norm; ``(batch, C, time)``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 7, padding=3)
        self.bn = nn.BatchNorm1d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


def mid_end(midend: nn.ModuleList, front: torch.Tensor) -> torch.Tensor:
    """The mid end's three layers on the front end's ``(batch, channels, frames)`` (the last two with their
    residuals), joined to it: ``(batch, frames, channels + 3 x n_midend)``."""
    c1 = midend[0](front)
    c2 = midend[1](c1) + c1
    c3 = midend[2](c2) + c2
    return torch.cat([front, c1, c2, c3], dim=1).transpose(1, 2)


def same_pad(k: int) -> tuple[int, int]:
    """TF "same" padding for stride 1: ``k - 1`` zeros in all, the extra one at the end."""
    return ((k - 1) // 2, k - 1 - (k - 1) // 2)


class MusiCNN(nn.Module):
    """MusiCNN tagger (musicnn's ``build_musicnn``), float32; see the module docstring for the layers.

    Parameters
    ----------
    n_tags : int
        Output tags (50 for both musicnn checkpoints).
    n_mels : int
        Mel bands of the input (96); the timbral kernels span ``int(0.4 n_mels)`` and ``int(0.7 n_mels)``.
    n_timbral, n_temporal : int
        Filters per timbral (204 = int(1.6 * 128)) and temporal (51 = int(1.6 * 32)) branch.
    n_midend : int
        Channels of each mid-end convolution (64).
    n_dense : int
        Units of the penultimate dense layer (200).
    """

    #: What each argument may be (checked by :func:`load_musicnn` before anything is built).
    arg_settings = {
        "n_tags": integer(1, 10000),
        "n_mels": integer(3, 1024),
        "n_timbral": integer(1, 4096),
        "n_temporal": integer(1, 4096),
        "n_midend": integer(1, 4096),
        "n_dense": integer(1, 4096),
    }

    def __init__(
        self,
        n_tags: int = 50,
        n_mels: int = 96,
        n_timbral: int = 204,
        n_temporal: int = 51,
        n_midend: int = 64,
        n_dense: int = 200,
    ):
        super().__init__()
        self.model_args = dict(
            n_tags=n_tags,
            n_mels=n_mels,
            n_timbral=n_timbral,
            n_temporal=n_temporal,
            n_midend=n_midend,
            n_dense=n_dense,
        )
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(
            FreqMaxBlock(n_timbral, (7, int(f * n_mels)), (3, 3)) for f in (0.4, 0.7)
        )
        self.temporal = nn.ModuleList(FreqMaxBlock(n_temporal, (k, 1), same_pad(k)) for k in (128, 64, 32))
        self.n_frontend = 2 * n_timbral + 3 * n_temporal
        self.midend = nn.ModuleList(
            [
                MidBlock(self.n_frontend, n_midend),
                MidBlock(n_midend, n_midend),
                MidBlock(n_midend, n_midend),
            ]
        )
        self.n_frame_features = self.n_frontend + 3 * n_midend
        self.pool_bn = nn.BatchNorm1d(2 * self.n_frame_features, eps=BN_EPS)
        self.dense = nn.Linear(2 * self.n_frame_features, n_dense)
        self.dense_bn = nn.BatchNorm1d(n_dense, eps=BN_EPS)
        self.out = nn.Linear(n_dense, n_tags)
        #: filled by :func:`load_musicnn`
        self.tags: list[str] = []
        self.features = MUSICNN_FEATURES
        self.info: dict = {}

    # ---------------------------------------------------------------------------------- convolutional part

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Front-end + mid-end features of every frame, ``(batch, frames, 753)``, any number of frames.

        Channels: ``[:408]`` timbral (7x38 then 7x67 filters), ``[408:561]`` temporal (128, 64, 32 frames),
        ``[561:625]``, ``[625:689]``, ``[689:753]`` the mid-end layers 1-3 (musicnn's ``cnn1..3``, the
        last two with their residuals added). The sequence ends are zero padded as for one patch.
        """
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() != 3 or x.shape[-1] != self.model_args["n_mels"]:
            raise ValueError(
                f"MusiCNN expects features (batch, frames, {self.model_args['n_mels']}), got {tuple(x.shape)}"
            )
        h = self.input_bn(x.unsqueeze(1))  # (batch, 1, frames, bands)
        front = torch.cat([b(h) for b in self.timbral] + [b(h) for b in self.temporal], dim=1)
        return mid_end(self.midend, front)

    # ------------------------------------------------------------------------------------------- back end

    def _dense_head(self, max_pool: torch.Tensor, mean_pool: torch.Tensor) -> dict[str, torch.Tensor]:
        lead = max_pool.shape[:-1]
        pooled = torch.stack([max_pool, mean_pool], dim=-1).reshape(-1, 2 * max_pool.shape[-1])
        embedding = self.dense(self.pool_bn(pooled))
        penultimate = self.dense_bn(F.relu(embedding))
        logits = self.out(penultimate)
        out = {
            "max_pool": max_pool,
            "mean_pool": mean_pool,
            "pooled": pooled,
            "embedding": embedding,
            "penultimate": penultimate,
            "logits": logits,
        }
        return {k: v.reshape(*lead, v.shape[-1]) for k, v in out.items()}

    def head(self, frame_feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """musicnn's back end on a span of frame features ``(batch, frames, 753)``: pool over all frames.

        Returns a dict of ``(batch, d)`` tensors: ``max_pool`` and ``mean_pool`` (753 each, the pooled
        mid-end features), ``pooled`` (1506, interleaved as the dense layer sees them), ``embedding``
        (200: the dense layer before its ReLU, Essentia's MSD-MusiCNN embedding), ``penultimate`` (200:
        musicnn's feature of that name, batch norm of the ReLU) and ``logits`` (``n_tags``).
        """
        return self._dense_head(frame_feats.amax(dim=1), frame_feats.mean(dim=1))

    def head_windows(
        self, frame_feats: torch.Tensor, starts: Sequence[int] | torch.Tensor, length: int = PATCH_FRAMES
    ) -> dict[str, torch.Tensor]:
        """:meth:`head` of many windows ``[s, s + length)`` of one pass of :meth:`frame_features`.

        ``frame_feats`` is ``(batch, frames, 753)``; every start must satisfy ``0 <= s <= frames - length``.
        Returns the same keys as :meth:`head` with shapes ``(batch, len(starts), d)``.
        """
        n_frames = frame_feats.shape[1]
        starts = torch.as_tensor(starts, dtype=torch.long, device=frame_feats.device).reshape(-1)
        if length > n_frames:
            raise ValueError(f"window of {length} frames is longer than the {n_frames} frames given")
        if starts.numel() and (int(starts.min()) < 0 or int(starts.max()) > n_frames - length):
            raise ValueError(f"window starts must lie in [0, {n_frames - length}] for {length}-frame windows")
        max_pool, sum_pool = _window_max_sum(frame_feats, starts, length)
        return self._dense_head(max_pool, (sum_pool / length).to(frame_feats.dtype))

    # ------------------------------------------------------------------------------------------ per patch

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything :meth:`head` returns, for patches ``x`` ``(batch, frames, 96)`` (187 frames = musicnn)."""
        return self.head(self.frame_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tag logits ``(batch, n_tags)`` of patches ``(batch, 187, 96)``; sigmoid = musicnn's taggram."""
        return self.embed(x)["logits"]


def _window_max_sum(x: torch.Tensor, starts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Max and sum over frames ``[s, s + k)`` of ``x`` ``(batch, frames, C)`` for each start ``s``.

    Returns two ``(batch, len(starts), C)`` tensors, the sums in float64. The window edges (every start and
    end) cut the frames into elementary segments; each segment is reduced once (max, and a float64 sum)
    and a window is the run of segments between its edges: its sum the difference of two cumulative sums
    over segments, its max the max of its few segments. One pass over the frames for any number of
    windows (~9x faster than cumulative max and sum over all frames on a 3-minute track with windows
    every 0.5 s); maxima exact, sums to float64 rounding.
    """
    batch, _, c = x.shape
    if not len(starts):
        empty = x.new_empty(batch, 0, c)
        return empty, empty.double()
    edges = torch.unique(torch.cat([starts, starts + k]))  # sorted
    lo, hi = torch.searchsorted(edges, starts), torch.searchsorted(edges, starts + k)
    first, last = int(edges[0]), int(edges[-1])
    cuts = edges[:-1] - first
    xt = x[:, first:last].transpose(1, 2)  # (batch, C, frames): time contiguous as frame_features makes it
    seg = torch.bucketize(torch.arange(last - first, device=x.device), cuts, right=True) - 1
    seg_max = xt.new_full((batch, c, len(cuts)), float("-inf"))
    seg_max.scatter_reduce_(2, seg.expand_as(xt), xt, "amax")
    seg_sum = torch.zeros(batch, c, len(cuts), dtype=torch.float64, device=x.device)
    seg_sum.index_add_(2, seg, xt.double())
    csum = F.pad(seg_sum.cumsum(dim=-1), (1, 0))
    sums = csum[..., hi] - csum[..., lo]
    runs = torch.minimum(lo[:, None] + torch.arange(int((hi - lo).max()), device=x.device), hi[:, None] - 1)
    maxes = seg_max[..., runs].amax(dim=-1)
    return maxes.transpose(1, 2), sums.transpose(1, 2)


def window_starts(
    n_frames: int, n_steps: int, *, fps: float = 16000 / 256, step_s: float = 0.5, length: int = PATCH_FRAMES
) -> list[int]:
    """Starts of ``length``-frame windows centred on the 0.5 s steps ``[i step_s, (i + 1) step_s)``.

    Frame ``t`` is centred at ``t / fps`` s (``center=True`` features), so the window ``[s, s + length)``
    is centred at ``(s + (length - 1) / 2) / fps``. Windows that would cross an end of the track are moved
    inside it (start clipped to ``[0, n_frames - length]``); ``n_frames >= length`` is required.
    """
    if n_frames < length:
        raise ValueError(f"{n_frames} frames are fewer than one {length}-frame window")
    hi = n_frames - length
    return [min(hi, max(0, int(round((i + 0.5) * step_s * fps - (length - 1) / 2)))) for i in range(n_steps)]


# ---------------------------------------------------------------------------------------------- loading


def _resolve(which: str | Path) -> tuple[Path, object]:
    """(path, context manager keeping it valid) of a bundled name or a file path."""
    if isinstance(which, str) and which in _BUNDLED:
        ref = importlib.resources.files("moodscope").joinpath("assets", _BUNDLED[which])
        ctx = importlib.resources.as_file(ref)
        return Path(ctx.__enter__()), ctx
    if isinstance(which, str) and which == "mtt":
        raise ModelFileError(
            "musicnn 'mtt' is not bundled: convert it with tools/convert_musicnn.py --model mtt "
            "--mtt-out FILE and pass that FILE to load_musicnn"
        )
    path = Path(which)
    if not path.is_file():
        raise ModelFileError(f"{path}: musicnn model file not found (bundled: {', '.join(_BUNDLED)})")
    return path, None


def _read_metadata(path: Path) -> dict:
    return read_json_metadata(path, META_KEY, FORMAT, "not written by tools/convert_musicnn.py")


def _checked_metadata(path: Path, meta: dict) -> tuple[dict, list[str], FeatureConfig]:
    """``(model_args, tags, features)`` of a converted file's metadata, checked before anything is built."""
    args = meta.get("model_args", {})
    try:
        check_settings(args, MusiCNN.arg_settings, what="MusiCNN argument")
    except SettingError as e:
        raise ModelFileError(f"{path}: {e.within('model_args')}") from None
    n_tags = args.get("n_tags", 50)
    tags = meta.get("tags", [])
    if text_list(max_len=10000)(tags) is not None or len(tags) != n_tags:
        raise ModelFileError(f"{path}: tags={shown(tags)}: must be {n_tags} tag names, one per output")
    try:
        features = FeatureConfig.from_dict(meta.get("features", MUSICNN_FEATURES.to_dict()))
    except SettingError as e:
        raise ModelFileError(f"{path}: {e.within('features')}") from None
    except ValueError as e:
        raise ModelFileError(f"{path}: features: {e}") from None
    return dict(args), list(tags), features


def musicnn_metadata(which: str | Path = "msd") -> dict:
    """The decoded metadata of a converted musicnn file: ``tags``, ``features``, ``model_args``,
    ``source`` (package, version, checkpoint), ``licence`` (ISC text), ``outputs``, ``patch_frames``."""
    path, ctx = _resolve(which)
    try:
        return _read_metadata(path)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)


def load_musicnn(which: str | Path = "msd", *, device: str | torch.device = "cpu") -> MusiCNN:
    """A pre-trained MusiCNN in eval mode with ``requires_grad`` off (safetensors only; nothing unpickled).

    ``which``: ``"msd"`` (bundled: ``MSD_musicnn``, 50 last.fm tags, :data:`MSD_TAGS`) or the path of a
    file written by ``tools/convert_musicnn.py`` (e.g. the MTT model). The model carries ``tags``,
    ``features`` (:class:`~moodscope.config.FeatureConfig`) and ``info`` (source and licence).
    """
    path, ctx = _resolve(which)
    try:
        meta = _read_metadata(path)
        args, tags, features = _checked_metadata(path, meta)
        with torch.device("meta"):
            skeleton = MusiCNN(**args)
        with open_safetensors(path) as f:
            check_tensors(path, f, skeleton.state_dict(), f"MusiCNN{skeleton.model_args}")
            model = MusiCNN(**args)
            tensors = read_tensors(path, f)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    model.load_state_dict(tensors, strict=True)
    model.tags = tags
    model.features = features
    model.info = {k: meta[k] for k in ("source", "licence", "outputs", "patch_frames") if k in meta}
    model.eval().requires_grad_(False)
    return model.to(device)
