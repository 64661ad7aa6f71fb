"""The results store and library runs: one row per file and model, re-runs, duplicates, the Ray backend end to end."""

from __future__ import annotations

import json
import sqlite3

import pytest

from badinput.harness import assert_clean_error, write_clip
from moodscope.errors import OutputError
from moodscope.library.store import STORE_NAME, FileKey, ResultStore, content_hash
from tools import needs


def _rows(out):
    with ResultStore(out, create=False) as store:
        return {r["path"]: r for r in store.tracks()}


def test_predict_fills_the_store_with_everything_the_json_has(tmp_path, cli, tiny_model):
    music = tmp_path / "music"
    for i in range(3):
        write_clip(music / f"t{i}.wav", 3.0, seed=i)
    out = tmp_path / "out"
    assert cli("predict", music, "--model", tiny_model, "--out", out, "--quiet").code == 0
    rows = _rows(out)
    assert sorted(rows) == [str(music / f"t{i}.wav") for i in range(3)]
    for path, r in rows.items():
        d = json.loads((out / (path.rsplit("/", 1)[1][:-4] + ".json")).read_text())
        assert json.loads(r["result"])["static"] == d["static"]
        assert (r["valence"], r["arousal"]) == (d["static"]["valence"], d["static"]["arousal"])
        assert r["curve_valence"] == d["dynamic"]["valence"] and r["hop_s"] == d["dynamic"]["hop_s"]
        assert r["content_hash"] == content_hash(path) and r["model_id"].startswith("damff-")


def test_format_none_writes_the_store_only_and_a_changed_file_is_recomputed(tmp_path, cli, tiny_model):
    music = tmp_path / "music"
    a = write_clip(music / "a.wav", 3.0)
    write_clip(music / "b.wav", 3.0, seed=1)
    out = tmp_path / "out"
    assert cli("predict", music, "--model", tiny_model, "--out", out, "--format", "none", "--quiet").code == 0
    assert sorted(p.name for p in out.iterdir()) == [STORE_NAME, "summary.json"]
    before = _rows(out)
    write_clip(a, 4.0, seed=7)  # new content at the same path
    assert cli("predict", music, "--model", tiny_model, "--out", out, "--format", "none", "--quiet").code == 0
    after = _rows(out)
    assert len(after) == 2
    assert after[str(a)]["content_hash"] != before[str(a)]["content_hash"]
    assert after[str(a)]["duration_s"] == pytest.approx(4.0, abs=0.1)
    b = str(music / "b.wav")
    assert after[b]["added"] == before[b]["added"]


def test_failures_are_recorded_and_retried(tmp_path, cli, tiny_model):
    music = tmp_path / "music"
    write_clip(music / "good.wav", 3.0)
    bad = music / "bad.wav"
    bad.write_bytes(b"not audio at all" * 100)
    out = tmp_path / "out"
    assert cli("predict", music, "--model", tiny_model, "--out", out, "--quiet").code == 1
    with ResultStore(out, create=False) as store:
        (f,) = store.failures()
        assert f["path"] == str(bad) and "not a readable audio file" in f["error"]
    write_clip(bad, 3.0, seed=3)  # fixed
    assert cli("predict", music, "--model", tiny_model, "--out", out, "--quiet").code == 0
    with ResultStore(out, create=False) as store:
        assert store.failures() == [] and store.count() == 2


def test_a_file_that_is_not_a_store(tmp_path, cli, tiny_model):
    out = tmp_path / "out"
    out.mkdir()
    (out / STORE_NAME).write_text("these are not the rows you are looking for" * 100)
    clip = write_clip(tmp_path / "a.wav", 3.0)
    run = cli("predict", clip, "--model", tiny_model, "--out", out, "--quiet")
    assert_clean_error(run, code=2, name=STORE_NAME, cause="not a moodscope results store")
    with pytest.raises(OutputError, match="no results store"):
        ResultStore(tmp_path / "nowhere", create=False)


def test_a_store_of_a_newer_moodscope_is_refused(tmp_path):
    ResultStore(tmp_path).close()
    db = sqlite3.connect(str(tmp_path / STORE_NAME))
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(OutputError, match="newer moodscope"):
        ResultStore(tmp_path)


def test_file_key_and_hash(tmp_path):
    p = write_clip(tmp_path / "a.wav", 1.0)
    k = FileKey.of(p)
    assert k.path == str(p) and k.size == p.stat().st_size
    q = tmp_path / "copy.wav"
    q.write_bytes(p.read_bytes())
    assert content_hash(p) == content_hash(q) and len(content_hash(p)) == 32


@pytest.mark.slow
@needs("ray")
def test_jobs_2_and_ray_give_the_results_of_one_process(tmp_path, cli, tiny_model):
    """The same store rows (values within float32 rounding) from --jobs 1, --jobs 2 and --backend ray."""
    music = tmp_path / "music"
    for i in range(4):
        write_clip(music / f"t{i}.wav", 3.0, seed=i)
    runs = {}
    for label, extra in (
        ("one", ["--jobs", "1"]),
        ("two", ["--jobs", "2"]),
        ("ray", ["--backend", "ray", "--jobs", "2"]),
    ):
        out = tmp_path / label
        run = cli(
            "predict", music, "--model", tiny_model, "--out", out, "--format", "none", "--quiet", *extra
        )
        assert run.code == 0, run.err
        runs[label] = _rows(out)
    for label in ("two", "ray"):
        assert sorted(runs[label]) == sorted(runs["one"])
        for path, r in runs[label].items():
            ref = runs["one"][path]
            assert r["content_hash"] == ref["content_hash"] and r["model_id"] == ref["model_id"]
            assert r["valence"] == pytest.approx(ref["valence"], abs=1e-4)
            assert r["curve_arousal"] == pytest.approx(ref["curve_arousal"], abs=1e-4)


def test_jobs_beyond_the_cores_are_capped_with_a_note(tmp_path, cli, tiny_model, monkeypatch):
    """Issue 26 (14): --jobs 40 on 40 files used to load 40 model copies; now at most one per core."""
    import moodscope.library.jobs as jobs_mod

    monkeypatch.setattr(jobs_mod, "available_cores", lambda: 1)
    music = tmp_path / "music"
    for i in range(3):
        write_clip(music / f"t{i}.wav", 2.0, seed=i)
    out = tmp_path / "out"
    run = cli(
        "predict", music, "--model", tiny_model, "--out", out, "--format", "none", "--quiet", "--jobs", "40"
    )
    assert run.code == 0, run.err
    assert "--jobs 40 capped at 1, the cores available" in run.err and len(_rows(out)) == 3


def test_prune_removes_the_tracks_a_folder_no_longer_has_and_nothing_else(tmp_path, cli, tiny_model):
    """Issue 26: the store kept deleted files (query and playlist listed them). ``--prune`` removes, for every
    model, the tracks below the folders given that the scan no longer finds -- not those of other folders."""
    lib = tmp_path / "lib"
    for i, name in enumerate(["rock/a.wav", "rock/b.wav", "jazz/c.wav"]):
        write_clip(lib / name, 3.0, seed=i)
    out = tmp_path / "out"
    assert cli("predict", lib, "--model", tiny_model, "--out", out, "--quiet").code == 0
    (lib / "rock" / "b.wav").unlink()
    (lib / "jazz" / "c.wav").unlink()
    # without --prune the store keeps them (a folder on a disk that is not mounted is not a deletion)
    assert cli("predict", lib / "rock", "--model", tiny_model, "--out", out, "--quiet").code == 0
    assert sorted(p.split("/")[-1] for p in _rows(out)) == ["a.wav", "b.wav", "c.wav"]
    # pruning rock/ removes b.wav only: jazz/ was not scanned
    run = cli("predict", lib / "rock", "--model", tiny_model, "--out", out, "--quiet", "--prune")
    assert run.code == 0 and "pruned 1 track(s) no longer in" in run.err, run.err
    assert sorted(p.split("/")[-1] for p in _rows(out)) == ["a.wav", "c.wav"]
    run = cli("predict", lib, "--model", tiny_model, "--out", out, "--quiet", "--prune")
    assert run.code == 0 and "pruned 1 track(s)" in run.err
    assert [p.split("/")[-1] for p in _rows(out)] == ["a.wav"]
    assert "c.wav" not in cli("query", out).out


def test_prune_needs_out_and_a_folder(tmp_path, cli, tiny_model):
    song = write_clip(tmp_path / "a.wav", 3.0)
    for args in (["--prune"], ["--prune", "--out", str(tmp_path / "o")]):
        run = cli("predict", song, "--model", tiny_model, *args)
        assert_clean_error(run, code=2, name="--prune", cause="needs --out and at least one folder")
