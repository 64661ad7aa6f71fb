"""The run directory of ``train`` (and the output folder of ``compare``): nothing lost, nothing mixed.

- **One run at a time.** :func:`locked_folder` creates the folder and takes its lock
  (:class:`moodscope.fileio.FolderLock`: pid, host and start time, ``O_CREAT | O_EXCL``) before any work, so
  an unwritable destination fails at once and a second run into the same folder is refused naming the
  first; a lock left by a killed run is taken over with a warning. The lock is released on every exit,
  exceptions and Ctrl-C included.
- **Nothing half-written.** Every file of a run is written atomically; the temporary files a killed run
  leaves (``.<name>.<random>.tmp``) are removed when the next run takes the lock, in the folders a run
  writes (the run directory, ``fold_<k>/`` and its ``checkpoints/``, nested run directories of sweeps,
  single-task heads and compared models) and nowhere else.
- **One configuration per run directory.** The resolved config is stored as ``config.yaml``;
  :func:`check_run_dir` compares a new run's resolved config with it (keys listed in
  :data:`moodscope.training.config.RESUME_FREE_KEYS` may differ) before anything is rewritten. See
  :func:`check_run_dir` for what happens to an earlier run's results.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from ..errors import ConfigError, OutputError, shown_path
from ..fileio import FolderLock, probe_writable, remove_orphans
from .config import config_differences, dump_config, show_value

#: files a run writes at the top of its run directory (``--restart`` removes them, nothing else)
RUN_FILES = ("config.yaml", "results.json", "results.md", "per_tag.csv", "per_tag.md")
_FOLD_DIR = re.compile(r"^fold_\d+$")
#: the folders below a fold's folder that a run writes
_FOLD_SUBDIRS = ("checkpoints", "logs")
#: top-level keys every stored run config has (a resolved config holds all of :data:`.config.DEFAULTS`)
_RUN_CONFIG_KEYS = frozenset({"name", "seed", "model", "data", "split", "train"})


def warn(message: str) -> None:
    """One warning line on stderr (what a run repaired, replaced or took over)."""
    print(f"warning: {shown_path(message)}", file=sys.stderr)


def make_folder(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` (and its parents); :class:`OutputError` naming it and the OS's reason if it cannot be."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{shown_path(folder)}: the {what} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{shown_path(folder)}: cannot create the {what} ({e.strerror or e})") from None
    return folder


def check_writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Check, before any work, that ``path`` can be written atomically (a temporary file beside it, renamed):
    not a folder, its folder exists and takes a new file. :class:`OutputError` naming the path otherwise."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{shown_path(path)}: the {what} is a folder, not a file")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(
            f"{shown_path(path)}: cannot write the {what}: folder {shown_path(parent)} does not exist"
        )
    try:
        probe_writable(parent, path.name)
    except OSError as e:
        raise OutputError(f"{shown_path(path)}: cannot write the {what} ({e.strerror or e})") from None
    return path


def _run_folders(folder: Path) -> Iterator[Path]:
    """``folder`` and the folders below it that a run writes: ``fold_<k>/`` with ``checkpoints/`` and ``logs/``,
    and nested run directories (with a ``config.yaml``), except those locked by a run of their own."""
    yield folder
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.is_dir(follow_symlinks=False):
                continue
            sub = Path(entry.path)
            if (sub / FolderLock.NAME).exists():
                continue
            if _FOLD_DIR.match(entry.name):
                yield sub
                yield from (sub / d for d in _FOLD_SUBDIRS if (sub / d).is_dir())
            elif (sub / "config.yaml").is_file():
                yield from _run_folders(sub)


def remove_run_orphans(folder: Path) -> list[Path]:
    """Remove the temporary files interrupted atomic writes left in the folders of a run (call it only
    while holding the run directory's lock)."""
    return [p for d in _run_folders(Path(folder)) for p in remove_orphans(d)]


@contextlib.contextmanager
def locked_folder(folder: str | os.PathLike, what: str, verb: str) -> Iterator[Path]:
    """Create ``folder``, take its lock and clean what a killed run left there; release the lock on exit.

    ``what`` names the folder in messages ("run directory", "output folder"), ``verb`` the command.
    """
    folder = make_folder(folder, what)
    lock = FolderLock(folder, verb)
    try:
        lock.acquire()
    except OSError as e:  # creating the lock file is the check that the folder takes new files
        raise OutputError(f"{shown_path(folder)}: cannot write into the {what} ({e.strerror or e})") from None
    try:
        if lock.stale is not None:
            owner = lock.stale
            who = f"pid {owner['pid']}, started {owner.get('started')}" if owner.get("pid") else "a run"
            warn(f"{folder}: taking over the lock of {who}, which is no longer running")
        removed = remove_run_orphans(folder)
        if removed:
            warn(
                f"{folder}: removed {len(removed)} temporary file(s) left by an interrupted run "
                f"(e.g. {removed[0].relative_to(folder)})"
            )
        yield folder
    finally:
        lock.release()


def earlier_run(folder: Path) -> bool:
    """Whether ``folder`` holds something of an earlier run (its config, results, a fold or nested run)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if (folder / "config.yaml").exists() or (folder / "results.json").exists():
        return True
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False) and (
                _FOLD_DIR.match(entry.name) or Path(entry.path, "config.yaml").is_file()
            ):
                return True
    return False


def finished_folds(folder: Path) -> int:
    """How many ``fold_<k>/metrics.json`` the run directory (and its nested runs) holds."""
    return sum(
        1 for d in _run_folders(Path(folder)) if _FOLD_DIR.match(d.name) and (d / "metrics.json").is_file()
    )


def clear_run(folder: Path) -> None:
    """Remove an earlier run's results from ``folder``: the files in :data:`RUN_FILES`, ``fold_<k>/`` folders
    and nested run directories. Other files (the user's) and the lock are left alone."""
    folder = Path(folder)
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    with contextlib.suppress(OSError):
        for entry in list(os.scandir(folder)):
            if not entry.is_dir(follow_symlinks=False):
                continue
            if _FOLD_DIR.match(entry.name):
                shutil.rmtree(entry.path)
            elif Path(entry.path, "config.yaml").is_file():
                clear_run(Path(entry.path))
                with contextlib.suppress(OSError):  # not empty: something of the user's stays
                    os.rmdir(entry.path)


def stored_config(folder: Path) -> dict | None:
    """The resolved config an earlier run stored in ``folder/config.yaml`` (``None`` if there is none)."""
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        return None
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        cause = e.strerror if isinstance(e, OSError) else "not valid YAML"
        raise ConfigError(
            f"{shown_path(path)}: the run directory's config is unreadable ({cause}): cannot tell how the "
            "earlier run was made; use another --out, or --restart to start over"
        ) from None
    if not isinstance(cfg, dict) or not _RUN_CONFIG_KEYS <= set(cfg):
        # someone else's config.yaml: said so without echoing it
        raise ConfigError(
            f"{shown_path(path)}: not the config of a moodscope run: cannot tell how the earlier run was made; "
            "use another --out, or --restart to start over"
        )
    return cfg


def check_run_dir(cfg: dict, folder: Path, *, resume: bool, restart: bool) -> str:
    """What a run of the resolved ``cfg`` into ``folder`` does with an earlier run there; changes nothing.

    Returns ``"fresh"`` (no earlier run), ``"restart"`` (``restart``: its results are removed),
    ``"resume"`` (``resume`` and the same config: finished folds are kept, an interrupted one continues) or
    ``"replace"`` (neither flag, the same config, and the earlier run finished: it is run again, with a
    warning). Raises :class:`ConfigError` when the stored config differs in a key that matters for the
    result (naming the keys, old -> new), when there is no stored config to compare with, and when neither
    flag is given and the earlier run is unfinished (its finished folds would be lost).
    """
    folder = Path(folder)
    if not earlier_run(folder):
        return "fresh"
    if restart:
        return "restart"
    old = stored_config(folder)
    shown = shown_path(folder)
    if old is None:
        raise ConfigError(
            f"run directory {shown} holds results of an earlier run but no config.yaml: cannot tell how it "
            "was made; use another --out, or --restart to start over"
        )
    diffs = config_differences(old, cfg)
    if diffs:
        few = diffs[:6]
        more = f" (and {len(diffs) - len(few)} more keys)" if len(diffs) > len(few) else ""
        was = ", ".join(f"{k}={show_value(a)}" for k, a, _ in few)
        now = ", ".join(f"{k}={show_value(b)}" for k, _, b in few)
        raise ConfigError(
            f"run directory {shown} was made with {was}; this run asks {now}{more}: use another --out, or "
            "--restart to start over"
        )
    if resume:
        return "resume"
    if not (folder / "results.json").is_file():
        raise ConfigError(
            f"run directory {shown} holds an unfinished run ({finished_folds(folder)} finished fold(s)): "
            "--resume to continue it, --restart to start over, or use another --out"
        )
    return "replace"


def open_run(cfg: dict, folder: Path, *, resume: bool, restart: bool) -> str:
    """Check ``folder`` against ``cfg`` (:func:`check_run_dir`), clear an earlier run that is restarted or
    replaced, then store ``cfg`` as ``config.yaml``. Call it while holding the folder's lock."""
    action = check_run_dir(cfg, folder, resume=resume, restart=restart)
    if action == "replace":
        warn(f"{folder}: replacing the results of an earlier run of the same config (--resume keeps them)")
    if action in ("replace", "restart"):
        clear_run(folder)
    dump_config(cfg, Path(folder) / "config.yaml")
    return action
