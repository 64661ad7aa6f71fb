"""Files: atomic writes (a temporary file beside the target, renamed over it when complete) and the cache root.

Readers never see a partial file, an interrupted write leaves the old file (or none), and the temporary
file is removed on failure. The result gets ordinary permissions (0666 minus the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def cache_root() -> Path:
    """moodscope's cache root: ``$MOODSCOPE_CACHE``, else ``~/.cache/moodscope``.

    Features are cached in ``<root>/features`` and rendered synthetic corpora kept in ``<root>/corpora``.
    """
    env = os.environ.get("MOODSCOPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "moodscope"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    >>> with atomic_path("out.png") as tmp:  # doctest: +SKIP
    ...     fig.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def probe_writable(folder: str | os.PathLike, name: str = "moodscope-probe") -> None:
    """Create and remove a temporary file in ``folder`` (named as :func:`atomic_path` names its own): the
    check, before any work, that outputs can be written there. Raises the OS's ``OSError`` otherwise."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(probe)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


#: what :func:`atomic_path` names its temporary files: ``.<name>.<random>.tmp``
_TMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def remove_orphans(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that :func:`atomic_path` left in ``folder`` (not below it) when its process
    was killed (``kill -9``, power loss) mid-write; returns them. Call it only while holding the folder's
    :class:`FolderLock`, so that no live writer's file is taken."""
    gone = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if _TMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    gone.append(Path(entry.path))
    return gone


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _process_start(pid: int) -> str | None:
    """``"<boot id>:<start time in clock ticks>"`` of a live process (Linux ``/proc``), else None: with the pid it
    names one process, so a pid the system gave to another process since is told apart."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
    except (OSError, ValueError, OverflowError):
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": the comm may hold spaces and ")"
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


class FolderLock:
    """One writer per output folder: ``<folder>/.moodscope.lock`` holds the owner's pid, host and start time.

    Taken with ``O_CREAT | O_EXCL`` (atomic on local file systems); a second run into the same folder fails at
    once with :class:`~moodscope.errors.UsageError` naming the owner. A lock whose process no longer exists
    on this host (the run was killed) is stale: it is taken over, and :attr:`stale` tells the caller so that
    it can say so. So is a lock whose pid now belongs to another process (pids are reused: the lock records its
    process's start time where ``/proc`` gives it, and a live pid with another start time is not the owner). The folder is created if needed, so taking the lock is also the check that the folder is
    writable, before any work starts.

    >>> with FolderLock("results/", "predict"):  # doctest: +SKIP
    ...     ...
    """

    NAME = ".moodscope.lock"

    def __init__(self, folder: str | os.PathLike, what: str = "moodscope"):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.what = what
        self.stale: dict | None = None  #: the stale lock's contents, when one was taken over
        self._held = False

    def _owner(self) -> dict:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8")[:4096])
            return info if isinstance(info, dict) else {}
        except (OSError, ValueError):
            return {}

    def acquire(self) -> FolderLock:
        from .errors import UsageError

        self.folder.mkdir(parents=True, exist_ok=True)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "what": self.what,
        }
        start = _process_start(me["pid"])
        if start is not None:
            me["process_start"] = start
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                pid = owner.get("pid")
                same_host = owner.get("host") == me["host"]
                recorded = owner.get("process_start")
                reused = (  # the pid is alive, but it is another process than the one that took the lock
                    isinstance(pid, int)
                    and isinstance(recorded, str)
                    and _process_start(pid) not in (None, recorded)
                )
                if isinstance(pid, int) and same_host and (reused or not _pid_alive(pid)):
                    self.stale = owner
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)
                    continue  # O_EXCL again: of two runs taking over one stale lock, one wins
                if not owner and time.time() - _mtime(self.path) > 60:
                    self.stale = {}  # unreadable and old: a run killed while writing it
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)
                    continue
                who = (
                    f"{owner.get('what', 'moodscope')} pid {pid} on {owner.get('host')}, "
                    f"started {owner.get('started')}"
                    if owner
                    else "another moodscope run"
                )
                raise UsageError(
                    f"{self.folder}: in use by {who} (lock file {self.NAME}); wait for it or choose another "
                    "folder"
                    + ("" if same_host or not owner else "; delete the lock file if that run is dead")
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(me))
            self._held = True
            return self
        raise UsageError(f"{self.folder}: could not take the lock file {self.NAME}")

    def release(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _finite_or_none(obj):
    if isinstance(obj, float) or type(obj).__name__ in ("float32", "float64", "float16"):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def json_text(obj, **kwargs) -> str:
    """``json.dumps`` that always gives valid JSON: NaN and infinities (a metric that is undefined on a fold,
    a value a model does not give) become ``null`` instead of the bare ``NaN`` that JSON does not allow."""
    return json.dumps(_finite_or_none(obj), allow_nan=False, **kwargs)
