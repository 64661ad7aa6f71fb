"""fileio: valid JSON always, the folder lock, orphaned temporary files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from moodscope.errors import UsageError
from moodscope.fileio import FolderLock, atomic_path, json_text, remove_orphans


def test_json_text_never_writes_bare_nan():
    obj = {"a": float("nan"), "b": [1.0, float("inf"), np.float32("nan")], "c": np.float64(0.5), "d": "NaN"}
    text = json_text(obj)
    assert "NaN" not in text.replace('"NaN"', "")
    assert json.loads(text) == {"a": None, "b": [1.0, None, None], "c": 0.5, "d": "NaN"}
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in json.loads(text)["b"] if v)


def test_lock_is_exclusive_and_released(tmp_path):
    with FolderLock(tmp_path / "out", "test") as lock:
        assert lock.path.is_file() and json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            FolderLock(tmp_path / "out", "test").acquire()
    assert not (tmp_path / "out" / FolderLock.NAME).exists()
    with FolderLock(tmp_path / "out"):  # free again
        pass


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / FolderLock.NAME).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    lock = FolderLock(tmp_path).acquire()
    assert lock.stale["pid"] == dead.pid
    lock.release()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start times come from Linux /proc")
def test_lock_whose_pid_was_reused_is_taken_over(tmp_path):
    """Issue 26: a lock whose pid the system has since given to another, live process was taken for alive."""
    from moodscope.fileio import _process_start

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = os.uname().nodename
        real = _process_start(alive.pid)
        assert real is not None and real != _process_start(os.getpid())
        lock_file = tmp_path / FolderLock.NAME
        # the owner recorded is this pid and this start: the run is alive, the lock holds
        lock_file.write_text(json.dumps({"pid": alive.pid, "host": host, "process_start": real}))
        with pytest.raises(UsageError, match=f"pid {alive.pid}"):
            FolderLock(tmp_path).acquire()
        # a lock written before start times were recorded: a live pid still holds it
        lock_file.write_text(json.dumps({"pid": alive.pid, "host": host}))
        with pytest.raises(UsageError, match=f"pid {alive.pid}"):
            FolderLock(tmp_path).acquire()
        # the pid is alive but another process started it: the lock's own run is gone
        boot, _, ticks = real.rpartition(":")
        lock_file.write_text(
            json.dumps({"pid": alive.pid, "host": host, "process_start": f"{boot}:{int(ticks) - 1}"})
        )
        lock = FolderLock(tmp_path).acquire()
        assert lock.stale["pid"] == alive.pid
        assert json.loads(lock.path.read_text())["process_start"] == _process_start(os.getpid())
        lock.release()
    finally:
        alive.kill()
        alive.wait()


def test_lock_of_another_host_is_respected(tmp_path):
    (tmp_path / FolderLock.NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(UsageError, match="elsewhere.example.*delete the lock file"):
        FolderLock(tmp_path).acquire()


def test_orphans_are_only_atomic_path_temporaries(tmp_path):
    with atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("{}")
        orphan_name = tmp.name
    (tmp_path / orphan_name).write_text("half")  # what a kill -9 mid-write leaves
    (tmp_path / ".hidden.tmp").write_text("a user's file")
    (tmp_path / "notes.tmp").write_text("a user's file")
    gone = remove_orphans(tmp_path)
    assert [p.name for p in gone] == [orphan_name]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "notes.tmp", "x.json"]
