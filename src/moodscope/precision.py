"""One precision policy for training, evaluation, the demo and prediction.

``precision`` is one of:

``float32``  plain float32 everywhere. The default: the same numbers on every machine.
``bf16``     bfloat16 autocast around the model (weights, optimiser state and features stay float32).
             Where the device has no native bfloat16, this falls back to float32 with one warning line
             (:class:`PrecisionWarning`), before any work starts: emulated bf16 is 10-50x slower on a CPU
             and oneDNN's LSTM refuses it ("could not create a primitive descriptor").
``auto``     ``bf16`` where the device runs it natively, ``float32`` elsewhere, silently.

Native bfloat16 means: a CUDA device for which ``torch.cuda.is_bf16_supported()`` holds, or a CPU whose
capabilities (``torch.cpu.get_capabilities()``, read by cpuinfo) include AVX512-BF16 or AMX-BF16 (on
x86-64) or the BF16 extension (on ARM64) -- and, on x86-64, that oneDNN has not been capped below
AVX512_CORE_BF16 with ``ONEDNN_MAX_CPU_ISA`` (or its old name ``DNNL_MAX_CPU_ISA``). The cap is how the
test suite and the demo are run with bf16 disabled on a machine that has it::

    ONEDNN_MAX_CPU_ISA=AVX2 make test

Lightning's spellings are accepted as aliases (``32-true``, ``32``, ``bf16-mixed``), so configs written for
earlier versions keep working.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

from .errors import ConfigError, MoodscopeError

PRECISIONS = ("auto", "float32", "bf16")

_ALIASES = {
    "auto": "auto",
    "float32": "float32",
    "fp32": "float32",
    "32": "float32",
    "32-true": "float32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "bf16-mixed": "bf16",
}

#: oneDNN ISA caps (``ONEDNN_MAX_CPU_ISA``) that still allow its native bfloat16 kernels; any other value
#: (SSE41, AVX, AVX2, AVX2_VNNI, AVX2_VNNI_2, AVX512_CORE, AVX512_CORE_VNNI, ...) caps oneDNN below them
_BF16_ISA_PREFIXES = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "ALL", "DEFAULT")


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; a CUDA device without CUDA is an error."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MoodscopeError(f"--device {device}: CUDA is not available on this machine")
    return device


class PrecisionWarning(UserWarning):
    """bf16 was asked for where the device has no native bfloat16; float32 is used instead."""


def normalize(precision) -> str:
    """``auto``, ``float32`` or ``bf16`` from any accepted spelling (None means ``float32``)."""
    if precision is None:
        return "float32"
    key = str(precision).strip().lower()
    if key not in _ALIASES:
        raise ConfigError(
            f"precision {precision!r}: expected one of {', '.join(PRECISIONS)} (aliases: 32-true, bf16-mixed)"
        )
    return _ALIASES[key]


def onednn_isa_cap(environ: Mapping[str, str] | None = None) -> str | None:
    """The oneDNN ISA cap set in the environment (upper case), or None."""
    env = os.environ if environ is None else environ
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        value = (env.get(name) or "").strip()
        if value:
            return value.upper()
    return None


def cpu_bf16_native(
    capabilities: Mapping | None = None, environ: Mapping[str, str] | None = None
) -> tuple[bool, str]:
    """Whether this CPU runs bfloat16 natively, and why (a short phrase for messages).

    ``capabilities`` defaults to ``torch.cpu.get_capabilities()``; both arguments exist for the tests.
    """
    if capabilities is None:
        capabilities = _torch_cpu_capabilities()
    caps = dict(capabilities or {})
    name = caps.get("cpu_name") or "this CPU"
    arch = str(caps.get("architecture") or "")
    if arch in ("aarch64", "arm64"):
        if caps.get("bf16") or caps.get("sve_bf16"):
            return True, f"{name} has the ARM BF16 extension"
        return False, f"{name} has no ARM BF16 extension"
    has = [flag for flag in ("avx512_bf16", "amx_bf16") if caps.get(flag)]
    if not has:
        return False, f"{name} has no native bfloat16 (AVX512-BF16 or AMX)"
    cap = onednn_isa_cap(environ)
    if cap is not None and not cap.startswith(_BF16_ISA_PREFIXES):
        return False, f"bfloat16 is disabled by ONEDNN_MAX_CPU_ISA={cap}"
    return True, f"{name} has {' and '.join(f.upper().replace('_', '-') for f in has)}"


def _torch_cpu_capabilities() -> dict:
    import torch

    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        try:
            return dict(get())
        except Exception:  # a detection failure means "not native", never a crash
            return {}
    # older torch: the private probes (x86 only)
    caps = {}
    for flag, fn in (("avx512_bf16", "_is_avx512_bf16_supported"), ("amx_bf16", "_is_amx_tile_supported")):
        probe = getattr(torch.cpu, fn, None)
        try:
            caps[flag] = bool(probe()) if probe else False
        except Exception:
            caps[flag] = False
    return caps


def bf16_native(device) -> tuple[bool, str]:
    """Whether ``device`` (a ``torch.device`` or its string) runs bfloat16 natively, and why."""
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        ok = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        return ok, "this GPU supports bfloat16" if ok else "this GPU has no bfloat16 support"
    if dev.type == "cpu":
        return cpu_bf16_native()
    return False, f"bfloat16 autocast is not used on {dev.type}"


def resolve(precision, device, *, warn: bool = True) -> str:
    """The precision actually used on ``device``: ``float32`` or ``bf16``.

    ``auto`` picks ``bf16`` only where it is native. An explicit ``bf16`` where it is not gives one
    :class:`PrecisionWarning` (``warn=False`` silences it) and ``float32``.
    """
    p = normalize(precision)
    if p == "float32":
        return p
    native, why = bf16_native(device)
    if native:
        return "bf16"
    if p == "bf16" and warn:
        warnings.warn(f"bf16 requested, but {why}: using float32", PrecisionWarning, stacklevel=2)
    return "float32"


def autocast_dtype(resolved: str):
    """``torch.bfloat16`` for a resolved ``bf16``, else None (no autocast)."""
    import torch

    return torch.bfloat16 if resolved == "bf16" else None


def lightning_precision(resolved: str) -> str:
    """Lightning's name for a resolved precision."""
    return "bf16-mixed" if resolved == "bf16" else "32-true"
