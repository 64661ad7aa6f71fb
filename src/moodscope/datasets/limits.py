"""What a dataset tree may ask of moodscope: the bounds every adapter applies to the files it reads.

A dataset tree is untrusted input (downloaded, shared, or typed by hand). Whatever it holds, loading it
raises :class:`~moodscope.errors.DatasetError` naming the file and the cause, or succeeds with every
repaired or skipped item in :attr:`Dataset.issues <moodscope.datasets.base.Dataset.issues>`; it never
exhausts memory, hangs, reads outside the tree, or echoes the contents of a file it did not expect.

Sizes
    Label files (CSV, text) are read whole, so they are bounded: at most :data:`MAX_CSV_BYTES` bytes and
    :data:`MAX_CSV_CELLS` cells, ``dataset.yaml`` and YAML split files at most :data:`MAX_YAML_BYTES` bytes,
    :data:`MAX_YAML_DEPTH` levels of nesting and :data:`MAX_YAML_NODES` values once YAML aliases are
    expanded (so an alias "bomb" is refused). A
    path that is not a regular file (a folder, a FIFO, a device) is refused before it is opened for
    reading, so a FIFO named ``static.csv`` cannot hang the reader. Work and memory stay proportional to
    the cells actually present: a short row under a wide header is not padded to the header's width.
Times
    A per-time label (``dynamic.csv``'s ``time_s``, DEAM's ``sample_<ms>ms`` columns, PMEmo's ``frameTime``)
    sizes the 0.5 s grid its curve is put on, so a time must be finite, not negative and at most
    :data:`MAX_TIME_S` (24 h: the duration of the audio is not known while labels are read; ``moodscope
    datasets check`` then lists the curves that run past their audio). At most
    :data:`MAX_SAMPLES_PER_TRACK` samples are read per track. Rows or columns outside these bounds are
    skipped and counted in the dataset's issues.
The dataset root
    Every file an adapter parses (labels, ``dataset.yaml``, split files) must lie inside the dataset root
    once symlinks are resolved; :func:`confined_to` sets the root for the duration of a load
    (:func:`~moodscope.datasets.base.load_dataset` does it) and :func:`check_inside` enforces it. The
    ``folder`` adapter also confines the paths named in ``dataset.yaml`` (``audio_dir``, ``split.file``).
    The opt-in is an adapter option, ``allow_outside_root=True`` (``load_dataset("folder", root,
    allow_outside_root=True)``, or ``data.options.allow_outside_root: true`` in a training config), and not
    a key of ``dataset.yaml``: a tree must not be able to vouch for itself. Audio files inside the audio
    folder may be symlinks to anywhere: they are only decoded, never echoed.
Messages
    An error names the file and what was expected; it quotes at most :func:`excerpt` of the dataset's own
    file (printable characters, at most :data:`EXCERPT_CHARS`), never more.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import reprlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import DatasetError

#: largest label file (CSV or text) read, in bytes; the largest file of the public releases is a few MB
MAX_CSV_BYTES = 64 * 2**20
#: most cells one CSV file may hold (keeps the parsed rows within about 1 GB)
MAX_CSV_CELLS = 16_000_000
#: largest ``dataset.yaml`` or YAML split file, in bytes
MAX_YAML_BYTES = 2**20
#: most values a YAML document may hold once its aliases are expanded
MAX_YAML_NODES = 100_000
#: deepest nesting of lists and mappings in a YAML document
MAX_YAML_DEPTH = 64
#: latest sample time accepted for a per-time label, in seconds (24 h)
MAX_TIME_S = 24 * 3600.0
#: most samples (rows or columns) read per track for a per-time label
MAX_SAMPLES_PER_TRACK = 200_000
#: longest quote of a file's contents in a message
EXCERPT_CHARS = 60


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """``text`` as one short printable line: other characters become ``?``, cut to ``limit`` with ``...``.

    >>> excerpt("a\\x00b\\nc")
    'a?b?c'
    >>> excerpt("x" * 100, 8)
    'xxxxx...'
    """
    s = text if isinstance(text, str) else str(text)
    cut = len(s) > limit
    s = s[: max(limit - 3, 1) if cut else limit]
    s = "".join(c if c.isprintable() else "?" for c in s)
    return s + "..." if cut else s


_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother = 3, 40, 40


def short_repr(value: object) -> str:
    """A bounded ``repr`` of a value read from a file (nested or huge values are elided), as an excerpt."""
    return excerpt(_repr.repr(value))


# ----------------------------------------------------------------------------------------------------------
# The dataset root
# ----------------------------------------------------------------------------------------------------------
_ROOT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("moodscope_dataset_root", default=None)


@contextlib.contextmanager
def confined_to(root: str | Path | None) -> Iterator[None]:
    """Within the block, :func:`check_inside` refuses files outside ``root`` (``None``: no confinement)."""
    token = _ROOT.set(None if root is None else resolve(Path(root)))
    try:
        yield
    finally:
        _ROOT.reset(token)


def current_root() -> Path | None:
    """The (resolved) root set by :func:`confined_to`, or ``None``."""
    return _ROOT.get()


def resolve(path: Path) -> Path:
    """``path`` with every symlink resolved; a symlink loop is a :class:`DatasetError`."""
    try:
        return Path(path).resolve()
    except RuntimeError:  # a symlink loop (Python < 3.13)
        raise DatasetError(f"{path}: cannot resolve the path (a symlink loop)") from None
    except ValueError:  # a NUL character
        raise DatasetError(
            f"{excerpt(str(path), 200)}: not a valid path (it holds a NUL character)"
        ) from None
    except OSError as e:  # a symlink loop (Python >= 3.13: ELOOP), a name too long, ...
        cause = "a symlink loop" if e.errno == errno.ELOOP else (e.strerror or excerpt(e, 80))
        raise DatasetError(f"{path}: cannot resolve the path ({cause})") from None


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (resolved) lies in the resolved ``root``."""
    resolved = resolve(path)
    return resolved == root or root in resolved.parents


def check_inside(path: Path, root: Path | None = None) -> None:
    """Refuse ``path`` when it resolves outside ``root`` (default: the root of :func:`confined_to`)."""
    root = current_root() if root is None else resolve(root)
    if root is None:
        return
    resolved = resolve(path)
    if resolved != root and root not in resolved.parents:
        raise DatasetError(
            f"{path}: points outside the dataset root {root} (resolves to {resolved}); "
            "label files must lie inside the dataset's folder"
        )
