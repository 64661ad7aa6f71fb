"""Reading safetensors files safely: what every model file and bundled network of moodscope is stored in.

Below the networks (:mod:`moodscope.models` load their bundled weights through it) and below the model-file
format (:mod:`moodscope.modelfile`: metadata, architecture and task checks, which needs the models and tasks).
Every failure is one :class:`~moodscope.errors.ModelFileError` naming the file: not a regular file, not
safetensors, metadata that is not the JSON object expected, tensors missing, unexpected, mis-shaped, of
another kind of dtype, or holding NaN/inf. No data is read before the header has been checked.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .config import shown
from .errors import ModelFileError, shown_path


def _check_file(path: Path) -> None:
    """A model file must be a regular file: say what it is otherwise (never open a FIFO: it would block)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        if os.path.islink(path):
            cause = "a link loop" if e.errno == errno.ELOOP else "a broken link"
            raise ModelFileError(f"{shown_path(path)}: {cause}, not a model file") from None
        if e.errno == errno.ENOENT:
            raise ModelFileError(f"{shown_path(path)}: model file not found") from None
        raise ModelFileError(f"{shown_path(path)}: cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(mode):
        raise ModelFileError(f"{shown_path(path)}: is a folder, not a model file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise ModelFileError(f"{shown_path(path)}: {kind}, not a model file")


def open_safetensors(path: Path):
    """``safe_open(path)``; a file that is not safetensors raises :class:`ModelFileError`."""
    _check_file(path)
    try:
        return safe_open(str(path), framework="pt")
    except SafetensorError as e:
        raise ModelFileError(f"{path}: not a safetensors model file ({e})") from None


def read_json_metadata(path: Path, key: str, fmt, missing: str) -> dict:
    """The JSON object stored under ``key`` in a safetensors file's metadata, checked to be an object with
    ``format`` ``fmt``; ``missing`` says what a file without it is (for the error). No tensor is read."""
    path = Path(path)
    with open_safetensors(path) as f:
        raw = (f.metadata() or {}).get(key)
    if raw is None:
        raise ModelFileError(f"{path}: safetensors file has no '{key}' metadata ({missing})")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: model metadata is not valid JSON ({e})") from None
    except (
        ValueError,
        RecursionError,
    ) as e:  # numbers of more than 4300 digits, nesting deeper than Python's stack
        raise ModelFileError(f"{path}: model metadata cannot be read as JSON ({type(e).__name__})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: model metadata is {json_type(meta)}, not a JSON object")
    found = meta.get("format")
    if type(found) is not type(fmt) or found != fmt:
        if isinstance(fmt, int) and type(found) is int and found > fmt:
            raise ModelFileError(
                f"{path}: format={found}: written by a newer moodscope (this one reads format {fmt}); upgrade"
            )
        raise ModelFileError(
            f"{path}: format={shown(found)}: not a model file format this moodscope reads ({fmt})"
        )
    return meta


def json_type(v) -> str:
    """How a JSON value is named in a message: 'a JSON list', 'a JSON string', ..."""
    return {list: "a JSON list", str: "a JSON string", bool: "a JSON boolean", type(None): "JSON null"}.get(
        type(v), "a JSON number"
    )


_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"}
_INT_DTYPES = {"I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64"}


def _dtype_fits(file_dtype: str, expected: torch.dtype) -> bool:
    if expected.is_floating_point:
        return file_dtype in _FLOAT_DTYPES
    if expected == torch.bool:
        return file_dtype == "BOOL"
    return file_dtype in _INT_DTYPES


def check_tensors(path, f, expected: dict[str, torch.Tensor], what: str) -> None:
    """Compare the tensors of an open safetensors file ``f`` (names, shapes and kinds of dtype, from its header:
    no data is read) with ``expected`` (a state dict; a ``meta`` skeleton's will do). A mismatch raises
    :class:`ModelFileError` naming the missing, unexpected and mis-shaped tensors (``what`` names the
    architecture in the message)."""
    found = {}
    for k in f.keys():
        s = f.get_slice(k)
        found[k] = (tuple(s.get_shape()), s.get_dtype())
    _compare(path, {k: v[0] for k, v in found.items()}, expected, what)
    for k in sorted(expected):
        if not _dtype_fits(found[k][1], expected[k].dtype):
            raise ModelFileError(
                f"{path}: tensor {k} has dtype {found[k][1]}; {what} needs {expected[k].dtype}"
            )


def _compare(path, shapes: dict[str, tuple], expected: dict[str, torch.Tensor], what: str) -> None:
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    mismatched = [
        f"{k}: file {shapes[k]} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(shapes))
        if shapes[k] != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing tensors {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors {_short([shown_key(k) for k in unexpected])}")
        if mismatched:
            parts.append(f"shape mismatch {_short(mismatched)}")
        raise ModelFileError(f"{path}: weights do not match {what}: " + "; ".join(parts))


def _check_finite(path, name: str, t: torch.Tensor) -> None:
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            n_nan = int(torch.isnan(t).sum())
            raise ModelFileError(
                f"{path}: tensor {name} holds non-finite weights ({n_nan} NaN, {int(bad.sum()) - n_nan} inf "
                f"of {t.numel()} values)"
            )


def read_tensors(path, f) -> dict[str, torch.Tensor]:
    """Every tensor of an open safetensors file ``f``; the first (by name) holding NaN or inf raises
    :class:`ModelFileError` naming it."""
    tensors = {}
    for k in sorted(f.keys()):
        tensors[k] = f.get_tensor(k)
        _check_finite(path, k, tensors[k])
    return tensors


def load_weights(path, model, tensors: dict, what: str) -> None:
    """Load ``tensors`` into ``model`` strictly; a mismatch raises :class:`ModelFileError` naming the missing,
    unexpected and mis-shaped tensors (``what`` names the architecture in the message), a tensor holding NaN
    or inf raises it naming that tensor."""
    _compare(path, {k: tuple(v.shape) for k, v in tensors.items()}, model.state_dict(), what)
    for k in sorted(tensors):
        _check_finite(path, k, tensors[k])
    model.load_state_dict(tensors, strict=True)


def shown_key(k: str) -> str:
    """A key found in a file, for a message: cut to 40 characters, control characters escaped."""
    return json.dumps(k[:40])[1:-1] + ("…" if len(k) > 40 else "")


def _short(items: list[str], n: int = 4) -> str:
    s = ", ".join(items[:n])
    return s + (f" (+{len(items) - n} more)" if len(items) > n else "")
