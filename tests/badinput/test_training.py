"""Bad input for ``train``, ``compare`` and ``evaluate``: work is never lost or mixed.

A run directory belongs to one configuration (``--resume`` with another is refused naming the keys, before
anything is rewritten; ``--restart`` starts over deliberately), to one run at a time (a lock file; a stale
one is taken over), survives a killed run (a corrupt checkpoint falls back, orphaned temporary files go),
says what the dataset's loader repaired, and an unwritable destination fails before any work.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from badinput.harness import UNWRITABLE_DIR, UNWRITABLE_FILE, assert_clean_error, leftovers, on_linux
from fixtures_datasets import make_folder
from moodscope.cli import main
from moodscope.datasets import load_dataset
from moodscope.fileio import FolderLock

TINY = {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4}


def tiny_config(root: Path, **train) -> dict:
    """Two folds of a tiny DAMFF on 4 s clips: a fold trains in about a second."""
    return {
        "name": "tiny",
        "model": {"name": "damff", "args": dict(TINY)},
        "data": {"dataset": "folder", "root": str(root)},
        "task": {"window_s": 4.0, "train_hop_s": 2.0},
        "split": {"kind": "kfold", "folds": 2},
        "train": {"epochs": 1, "batch_size": 4, **train},
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The fixture folder dataset with its quirks (duplicate ids, NaN and out-of-range labels, ...): six
    usable 4 s tracks, and a list of repairs its loader makes."""
    tmp = tmp_path_factory.mktemp("train-data")
    root = make_folder(tmp, quirks=True, n_tracks=6, duration_s=4.0)
    cfg_path = tmp / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(root)))
    return root, cfg_path


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A finished two-fold run: ``(run directory, stderr of the run)``; tests work on copies of it."""
    _, cfg_path = data
    run = tmp_path_factory.mktemp("train-run") / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--config", str(cfg_path), "--out", str(run), "--quiet"])
    assert code == 0, err.getvalue()
    return run, err.getvalue()


@pytest.fixture
def run_copy(finished, tmp_path):
    """A copy of the finished run (modification times kept)."""
    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    return run


def mtimes(run: Path) -> dict[str, int]:
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.rglob("*.safetensors")}


def interrupt_fold(run: Path, k: int) -> None:
    """Make fold ``k`` look interrupted after its checkpoints were written (no result, no model file)."""
    for name in ("metrics.json", "model.safetensors"):
        (run / f"fold_{k}" / name).unlink()
    (run / "results.json").unlink()


# ------------------------------------------------------------------------------------------------------------
# one configuration per run directory
# ------------------------------------------------------------------------------------------------------------
def test_resume_with_a_changed_width_is_refused_and_nothing_rewritten(cli, data, run_copy):
    _, cfg_path = data
    before = {p: (run_copy / p).read_bytes() for p in ("config.yaml", "results.json", "results.md")}
    models = mtimes(run_copy)
    run = cli("train", "--config", cfg_path, "--out", run_copy, "--resume", "--set", "model.args.width=0.125")
    line = assert_clean_error(run, code=2, name=str(run_copy), cause="model.args.width=0.0625")
    assert "0.125" in line and "--restart" in line
    assert {p: (run_copy / p).read_bytes() for p in before} == before
    assert mtimes(run_copy) == models
    assert not (run_copy / FolderLock.NAME).exists()


def test_resume_with_an_unchanged_config_continues_the_interrupted_fold(cli, data, run_copy):
    _, cfg_path = data
    interrupt_fold(run_copy, 1)
    kept = mtimes(run_copy)
    # where it runs may change (train.device is one of the keys a resume may change)
    run = cli("train", "--config", cfg_path, "--out", run_copy, "--resume", "--device", "cpu", "--quiet")
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert mtimes(run_copy)["fold_0/model.safetensors"] == kept["fold_0/model.safetensors"]
    res = json.loads((run_copy / "results.json").read_text())
    assert [f["fold"] for f in res["folds"]] == [0, 1]
    assert (run_copy / "fold_1" / "model.safetensors").is_file()
    assert leftovers(run_copy) == []


def test_restart_replaces_the_earlier_run_and_keeps_other_files(cli, data, run_copy):
    _, cfg_path = data
    (run_copy / "fold_7").mkdir()  # a fold of the earlier run this one does not have
    (run_copy / "fold_7" / "metrics.json").write_text("{}")
    (run_copy / "notes.txt").write_text("mine")
    models = mtimes(run_copy)
    run = cli(
        "train", "--config", cfg_path, "--out", run_copy, "--restart", "--set", "model.args.width=0.125"
    )
    assert run.code == 0, run.err
    assert yaml.safe_load((run_copy / "config.yaml").read_text())["model"]["args"]["width"] == 0.125
    assert not (run_copy / "fold_7").exists()
    assert (run_copy / "notes.txt").read_text() == "mine"
    assert all(mtimes(run_copy)[k] != t for k, t in models.items())  # every fold trained again
    assert len(json.loads((run_copy / "results.json").read_text())["folds"]) == 2


def test_train_without_resume_into_an_unfinished_run_is_refused(cli, data, run_copy):
    """Its finished folds would be lost: the user says --resume or --restart."""
    _, cfg_path = data
    interrupt_fold(run_copy, 1)
    models = mtimes(run_copy)
    run = cli("train", "--config", cfg_path, "--out", run_copy)
    line = assert_clean_error(run, code=2, name=str(run_copy), cause="unfinished run")
    assert "1 finished fold" in line and "--resume" in line
    assert mtimes(run_copy) == models


def test_resume_and_restart_together_are_refused(cli, data, tmp_path):
    _, cfg_path = data
    run = cli("train", "--config", cfg_path, "--out", tmp_path / "run", "--resume", "--restart")
    assert run.code == 2 and "not allowed with argument" in run.err
    assert not (tmp_path / "run").exists()


def test_compare_resume_with_a_changed_config_is_refused_before_any_training(cli, data, finished, tmp_path):
    """Every compared model's run directory (here damff's: the finished run) is checked before any model
    is trained (classical, listed first, is not)."""
    _, cfg_path = data
    out = tmp_path / "cmp"
    shutil.copytree(finished[0], out / "damff")
    models = mtimes(out)
    argv = ["--config", cfg_path, "--models", "classical,damff", "--out", out, "--resume"]
    run = cli("compare", *argv, "--set", "train.epochs=3")
    assert_clean_error(run, code=2, name=str(out / "damff"), cause="train.epochs=1")
    assert mtimes(out) == models
    assert not (out / "classical").exists() and not (out / "compare.md").exists()
    assert not (out / FolderLock.NAME).exists()


def test_compare_into_an_earlier_comparison_of_another_config_needs_restart(cli, data, tmp_path):
    _, cfg_path = data
    out = tmp_path / "cmp"
    argv = ["compare", "--config", cfg_path, "--models", "classical", "--out", out, "--quiet"]
    assert cli(*argv).code == 0
    first = (out / "compare.csv").read_bytes()
    run = cli(*argv, "--set", "seed=1")
    assert_clean_error(run, code=2, name=str(out / "classical"), cause="seed=0")
    assert (out / "compare.csv").read_bytes() == first
    run = cli(*argv, "--set", "seed=1", "--restart")
    assert run.code == 0, run.err
    assert yaml.safe_load((out / "classical" / "config.yaml").read_text())["seed"] == 1
    assert leftovers(out) == []


@pytest.mark.parametrize(
    "stored, cause",
    [
        (b"model: [unclosed\n\x00", "unreadable"),
        (b"token: s3cr3t-value\n", "not the config of a moodscope run"),
    ],
    ids=["unreadable", "someone else's"],
)
def test_resume_of_a_run_directory_whose_config_cannot_be_compared_is_refused(
    cli, data, run_copy, stored, cause
):
    _, cfg_path = data
    (run_copy / "config.yaml").write_bytes(stored)
    models = mtimes(run_copy)
    run = cli("train", "--config", cfg_path, "--out", run_copy, "--resume")
    assert_clean_error(run, code=2, name=str(run_copy / "config.yaml"), cause=cause)
    assert "s3cr3t" not in run.err  # a file it did not expect is not echoed
    assert mtimes(run_copy) == models


def test_a_finished_fold_with_an_unreadable_result_is_trained_again(cli, data, run_copy):
    _, cfg_path = data
    (run_copy / "fold_1" / "metrics.json").write_text('{"fold": 1, "metr')
    kept = mtimes(run_copy)
    run = cli("train", "--config", cfg_path, "--out", run_copy, "--resume", "--quiet")
    assert run.code == 0, run.err
    done = str(run_copy / "fold_1" / "metrics.json")
    assert len([ln for ln in run.lines() if done in ln and "unreadable" in ln]) == 1, run.err
    assert mtimes(run_copy)["fold_0/model.safetensors"] == kept["fold_0/model.safetensors"]
    assert json.loads((run_copy / "fold_1" / "metrics.json").read_text())["fold"] == 1


# ------------------------------------------------------------------------------------------------------------
# one run at a time
# ------------------------------------------------------------------------------------------------------------
def write_lock(folder: Path, pid: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": socket.gethostname(), "started": "2030-01-02 03:04:05", "what": "train"}
    lock = folder / FolderLock.NAME
    lock.write_text(json.dumps(owner))
    return lock


def test_a_run_directory_in_use_by_a_live_process_is_refused_at_once(cli, data, tmp_path, monkeypatch):
    import moodscope.training.experiment as experiment

    _, cfg_path = data
    monkeypatch.setattr(experiment, "_prepare", lambda *a, **k: pytest.fail("work started"))
    other = subprocess.Popen(["sleep", "60"])
    try:
        lock = write_lock(tmp_path / "run", other.pid)
        run = cli("train", "--config", cfg_path, "--out", tmp_path / "run")
        line = assert_clean_error(run, code=2, name=str(tmp_path / "run"), cause="in use")
        assert f"pid {other.pid}" in line and "2030-01-02 03:04:05" in line
        assert lock.is_file()  # the owner's lock stays
    finally:
        other.kill()
        other.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(cli, data, tmp_path):
    _, cfg_path = data
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_lock(tmp_path / "run", dead.pid)
    run = cli(
        "train", "--config", cfg_path, "--out", tmp_path / "run", "--quiet", "--set", "split.only_fold=0"
    )
    assert run.code == 0, run.err
    warned = [ln for ln in run.lines() if "taking over the lock" in ln and f"pid {dead.pid}" in ln]
    assert len(warned) == 1, run.err
    assert not (tmp_path / "run" / FolderLock.NAME).exists()  # released at the end


@pytest.mark.parametrize("what", [KeyboardInterrupt, RuntimeError])
def test_the_lock_is_released_when_training_is_interrupted(cli, data, tmp_path, monkeypatch, what):
    """Ctrl-C (or a crash) inside Lightning's training loop: the lock goes; Ctrl-C exits 130 and leaves
    Python's Ctrl-C handler in place (Lightning would exit 1 and ignore later Ctrl-C)."""
    import moodscope.training.fold as fold

    _, cfg_path = data
    real = fold.make_system

    def stopping_system(*a, **k):
        system = real(*a, **k)

        def stop(*a, **k):
            raise what("stop")

        system.training_step = stop
        return system

    monkeypatch.setattr(fold, "make_system", stopping_system)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError) if what is RuntimeError else contextlib.nullcontext():
        run = cli("train", "--config", cfg_path, "--out", tmp_path / "run", "--quiet")
        assert run.code == 130 and "interrupted" in run.err
    assert signal.getsignal(signal.SIGINT) is handler
    assert not (tmp_path / "run" / FolderLock.NAME).exists()


# ------------------------------------------------------------------------------------------------------------
# what a killed run leaves
# ------------------------------------------------------------------------------------------------------------
def test_a_corrupt_last_checkpoint_falls_back_to_the_previous_good_one(cli, data, run_copy):
    _, cfg_path = data
    interrupt_fold(run_copy, 1)
    last = run_copy / "fold_1" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # truncated by a kill mid-write
    run = cli("train", "--config", cfg_path, "--out", run_copy, "--resume", "--quiet")
    assert run.code == 0, run.err
    warned = [ln for ln in run.lines() if str(last) in ln and "truncated or corrupt" in ln]
    assert len(warned) == 1 and "resumes from best.ckpt" in warned[0], run.err
    assert len(json.loads((run_copy / "results.json").read_text())["folds"]) == 2


def test_no_readable_checkpoint_trains_the_fold_from_the_start(cli, data, run_copy):
    _, cfg_path = data
    interrupt_fold(run_copy, 1)
    for ckpt in (run_copy / "fold_1" / "checkpoints").glob("*.ckpt"):
        ckpt.write_bytes(b"\x00" * 64)
    run = cli("train", "--config", cfg_path, "--out", run_copy, "--resume", "--quiet")
    assert run.code == 0, run.err
    warned = [ln for ln in run.lines() if "checkpoints" in ln and "trained from the start" in ln]
    assert len(warned) == 1, run.err
    assert (run_copy / "fold_1" / "model.safetensors").is_file()


def test_orphaned_temporary_files_are_removed_when_a_run_starts(cli, data, run_copy):
    _, cfg_path = data
    orphans = [
        run_copy / ".results.json.k2x_9a0b.tmp",
        run_copy / "fold_0" / ".model.safetensors.abcd1234.tmp",
        run_copy / "fold_1" / ".metrics.json.zz00zz00.tmp",
    ]
    for p in orphans:
        p.write_bytes(b"half")
    mine = run_copy / "fold_0" / ".notes.tmp"  # not the atomic writes' pattern: the user's
    mine.write_text("keep")
    run = cli("train", "--config", cfg_path, "--out", run_copy, "--resume", "--quiet")
    assert run.code == 0, run.err
    assert not any(p.exists() for p in orphans)
    assert mine.read_text() == "keep"
    assert [ln for ln in run.lines() if "removed 3 temporary file(s)" in ln], run.err


# ------------------------------------------------------------------------------------------------------------
# nothing silent
# ------------------------------------------------------------------------------------------------------------
def test_the_datasets_repairs_are_printed_and_recorded(data, finished):
    root, _ = data
    run, err = finished
    issues = load_dataset("folder", root).issues  # what `datasets check` lists
    assert issues, "the quirky fixture should need repairs"
    printed = [ln for ln in err.splitlines() if ln.startswith("warning: data repaired: ")]
    assert [ln.removeprefix("warning: data repaired: ") for ln in printed] == issues
    assert json.loads((run / "results.json").read_text())["data_repairs"] == issues


# ------------------------------------------------------------------------------------------------------------
# destinations checked before any work
# ------------------------------------------------------------------------------------------------------------
@on_linux
@pytest.mark.parametrize("verb", ["train", "compare"])
def test_an_unwritable_out_fails_before_any_training(cli, data, monkeypatch, verb):
    import moodscope.training.experiment as experiment

    _, cfg_path = data
    monkeypatch.setattr(experiment, "_prepare", lambda *a, **k: pytest.fail("work started"))
    extra = ["--models", "damff,classical"] if verb == "compare" else []
    t0 = time.monotonic()
    run = cli(verb, "--config", cfg_path, "--out", UNWRITABLE_DIR, *extra)
    assert time.monotonic() - t0 < 10
    assert_clean_error(run, code=2, name=str(UNWRITABLE_DIR), cause="cannot create")
    assert not UNWRITABLE_DIR.exists()


def test_an_out_that_is_a_file_fails_before_any_training(cli, data, tmp_path):
    _, cfg_path = data
    (tmp_path / "taken").write_text("not a folder")
    run = cli("train", "--config", cfg_path, "--out", tmp_path / "taken")
    assert_clean_error(run, code=2, name=str(tmp_path / "taken"), cause="is a file, not a folder")
    assert (tmp_path / "taken").read_text() == "not a folder"


@pytest.mark.parametrize("where", ["unwritable", "folder", "no parent"])
def test_evaluate_json_destination_is_checked_before_predicting(
    cli, data, tiny_model, tmp_path, monkeypatch, where
):
    import moodscope.training.experiment as experiment

    if where == "unwritable" and not (sys.platform.startswith("linux") and Path("/sys/kernel").is_dir()):
        pytest.skip("needs Linux's sysfs")
    root, _ = data
    monkeypatch.setattr(experiment, "evaluate_model_on_dataset", lambda *a, **k: pytest.fail("predicted"))
    dest, cause = {
        "unwritable": (UNWRITABLE_FILE, "cannot write"),
        "folder": (tmp_path, "is a folder, not a file"),
        "no parent": (tmp_path / "missing" / "m.json", "does not exist"),
    }[where]
    run = cli("evaluate", "--model", tiny_model, "--root", root, "--json", dest)
    assert_clean_error(run, code=2, name=str(dest), cause=cause)
    assert leftovers(tmp_path) == []


def test_evaluate_json_is_written_atomically_when_it_can_be(cli, data, tiny_model, tmp_path):
    root, _ = data
    run = cli("evaluate", "--model", tiny_model, "--root", root, "--json", tmp_path / "m.json")
    assert run.code == 0, run.err
    assert "valence_ccc" in json.loads((tmp_path / "m.json").read_text())
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------------------
# kill -9 and --resume
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_run_killed_mid_fold_resumes_without_retraining_finished_folds(cli, data, tmp_path):
    root, _ = data
    cfg_path = tmp_path / "long.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(root, epochs=8, patience=100)))
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "moodscope.cli", "train", "--config", str(cfg_path), "--out", str(run_dir)]
    proc = subprocess.Popen(
        [*argv, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ
    )
    checkpoint = run_dir / "fold_1" / "checkpoints" / "last.ckpt"  # fold 0 done, fold 1 one epoch in
    deadline = time.monotonic() + 180
    try:
        while not checkpoint.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run did not reach fold 1"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert not (run_dir / "fold_1" / "metrics.json").exists(), "fold 1 finished before the kill"
    fold0 = (run_dir / "fold_0" / "model.safetensors").stat().st_mtime_ns
    run = cli("train", "--config", cfg_path, "--out", run_dir, "--resume", "--quiet")
    assert run.code == 0, run.err
    assert [ln for ln in run.lines() if "taking over the lock" in ln and f"pid {proc.pid}" in ln], run.err
    assert (run_dir / "fold_0" / "model.safetensors").stat().st_mtime_ns == fold0  # not retrained
    assert (run_dir / "fold_1" / "logs" / "metrics.1.csv").is_file()  # the killed attempt's log, kept
    res = json.loads((run_dir / "results.json").read_text())
    assert [f["fold"] for f in res["folds"]] == [0, 1]
    assert leftovers(run_dir) == []
