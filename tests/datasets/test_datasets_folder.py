from __future__ import annotations

import numpy as np
import pytest

from fixtures_datasets import make_folder, write_audio
from moodscope.datasets import load_dataset
from moodscope.errors import DatasetError


def _issue(ds, text):
    hits = [line for line in ds.issues if text in line]
    assert hits, f"no issue containing {text!r} in {ds.issues}"
    return hits[0]


def test_clean_folder_values(tmp_path):
    root = make_folder(tmp_path, quirks=False, n_tracks=4, duration_s=2.0)
    ds = load_dataset("folder", root)
    assert ds.name == "myset" and ds.adapter == "folder"
    assert ds.ids == ["t0", "t1", "t2", "t3"]
    assert ds.kinds == ("static", "dynamic", "tags")
    assert ds.native_scale == {"static": (1.0, 9.0), "dynamic": (1.0, 9.0), "tags": (0.0, 1.0)}
    assert ds.tag_names == ["happy", "sad"]
    assert ds.issues == []
    for i, t in enumerate(ds.tracks):
        assert t.valence == pytest.approx((1 + i - 5) / 4)
        assert t.arousal == pytest.approx((4 - i) / 4)
        np.testing.assert_allclose(t.dynamic.times_s, [0.0, 0.5, 1.0, 1.5])
        np.testing.assert_allclose(t.dynamic.valence, [0.0, 0.125, 0.25, 0.375])
        np.testing.assert_allclose(t.dynamic.arousal, 0.0)
        assert t.tags == {"happy": float(i % 2), "sad": 0.25}
        assert t.audio == root / "audio" / f"t{i}.wav"
        assert t.split == ("test" if i == 3 else "train")
    # back to native units
    np.testing.assert_allclose(ds.to_native([-1.0, 0.0, 1.0]), [1.0, 5.0, 9.0])
    assert len(ds.select("dynamic")) == 4


def test_quirky_folder(tmp_path):
    root = make_folder(tmp_path, quirks=True)
    ds = load_dataset("folder", root)
    t = {tr.id: tr for tr in ds.tracks}
    # duplicate id: first row kept
    assert (t["dup"].valence, t["dup"].arousal) == (-0.5, -0.5)
    assert "1 duplicate ids (first row kept)" in _issue(ds, "duplicate ids")
    # NaN valence: left unset, arousal kept
    assert t["nan"].valence is None and t["nan"].arousal == 0.0 and not t["nan"].has_static
    # 9.2 clipped to 9 -> 1.0; 20 far out of 1-9 -> unset
    assert t["over"].valence == 1.0 and t["over"].arousal is None
    _issue(ds, "static labels slightly outside the scale clipped")
    _issue(ds, "static labels far outside the scale (label left unset)")
    # latin-1 metadata decoded and recorded
    assert t["over"].meta["title"] == "Caf\u00e9"
    _issue(ds, "not valid UTF-8; read as Latin-1")
    # 1 s step -> linear interpolation at segment starts
    np.testing.assert_allclose(t["coarse"].dynamic.times_s, [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(t["coarse"].dynamic.valence, [-1, -0.75, -0.5, -0.25, 0])
    # 0.25 s step -> mean per 0.5 s segment; the duplicate (fine, 0.5) row is ignored
    np.testing.assert_allclose(t["fine"].dynamic.times_s, [0, 0.5])
    np.testing.assert_allclose(t["fine"].dynamic.valence, [(2 - 5) / 4, (6 - 5) / 4])
    _issue(ds, "duplicate (track id, time) rows (first kept)")
    _issue(ds, "rows with a missing, NaN or infinite time skipped")
    # audio bookkeeping
    assert t["t0"].audio.suffix == ".wav"
    _issue(ds, "audio files sharing an id with another file ignored")
    assert t["orphan"].audio is not None and not t["orphan"].has_static and t["orphan"].dynamic is None
    _issue(ds, "1 audio files without any label")
    no_audio = _issue(ds, "tracks with labels but no audio file")
    assert ": 5 tracks" in no_audio  # dup, nan, over, coarse, fine
    assert t["broken"].audio is not None  # unreadable audio is found by `check`, not here
    # select() skips tracks without audio or labels
    assert {tr.id for tr in ds.select("static")} == {"t0", "t1", "t2", "t3", "broken"}


def test_missing_yaml_defaults_and_per_kind_scale(tmp_path):
    root = make_folder(tmp_path, quirks=False, n_tracks=2)
    (root / "dataset.yaml").unlink()
    ds = load_dataset("folder", root)
    assert ds.name == "folder_ds"
    _issue(ds, "dataset.yaml: not found")
    # read on the assumed [-1, 1] scale, 1..9 values are far out -> unset and counted
    assert ds.tracks[0].valence == 1.0 and ds.tracks[0].arousal is None and ds.tracks[1].valence is None
    assert ds.tracks[0].dynamic is None
    _issue(ds, "tracks with no valid dynamic values (no curve)")
    (root / "dataset.yaml").write_text("scale: {static: {min: 1, max: 9}, dynamic: {min: 0, max: 10}}\n")
    ds = load_dataset("folder", root)
    assert ds.tracks[1].valence == pytest.approx(-0.75)
    np.testing.assert_allclose(ds.tracks[0].dynamic.valence, [0.0, 0.1, 0.2, 0.3])
    assert ds.native_scale["dynamic"] == (0.0, 10.0)
    # option overrides the file
    ds = load_dataset("folder", root, scale=(0, 10))
    assert ds.tracks[1].valence == pytest.approx(2 * 2 / 10 - 1)


@pytest.mark.parametrize("fmt", ["csv", "yaml"])
def test_split_file(tmp_path, fmt):
    root = make_folder(tmp_path, quirks=False, n_tracks=3)
    if fmt == "csv":
        (root / "splits.csv").write_text("track_id,split\nt0,test\nt1,train\nt2,train\nzz,train\n")
    else:
        (root / "splits.csv").write_text("test: [t0]\ntrain: [t1, t2, zz]\n")
        (root / "splits.csv").rename(root / "splits.yaml")
    name = "splits.csv" if fmt == "csv" else "splits.yaml"
    (root / "dataset.yaml").write_text(f"scale: {{min: 1, max: 9}}\nsplit: {{file: {name}}}\n")
    ds = load_dataset("folder", root)
    assert [t.split for t in ds.tracks] == ["test", "train", "train"]
    _issue(ds, "split entries for unknown ids ignored")


def test_time_ms_and_dynamic_only(tmp_path):
    root = tmp_path / "d"
    write_audio(root / "audio" / "7.flac", 1.0)
    (root / "dynamic.csv").write_text("id,time_ms,valence,arousal\n7,15000,0.5,-0.5\n7,15500,0.25,1.02\n")
    ds = load_dataset("folder", root)
    tr = ds.tracks[0]
    assert tr.id == "7" and tr.audio.name == "7.flac"
    np.testing.assert_allclose(tr.dynamic.times_s, [15.0, 15.5])
    np.testing.assert_allclose(tr.dynamic.valence, [0.5, 0.25])
    np.testing.assert_allclose(tr.dynamic.arousal, [-0.5, 1.0])  # 1.02 clipped
    assert ds.kinds == ("dynamic",)


def test_errors_name_file_and_cause(tmp_path):
    root = make_folder(tmp_path, quirks=False, n_tracks=2)
    (root / "static.csv").write_text("track_id,valence,arsl\nt0,1,2\n")
    with pytest.raises(DatasetError, match=r"static\.csv: missing column 'arousal'"):
        load_dataset("folder", root)
    for f in ("static.csv", "dynamic.csv", "tags.csv"):
        (root / f).unlink()
    with pytest.raises(DatasetError, match="no label file found"):
        load_dataset("folder", root)
    (root / "static.csv").write_text("track_id,valence,arousal\n")
    (root / "audio").rename(root / "sounds")
    with pytest.raises(DatasetError, match="missing audio folder"):
        load_dataset("folder", root)
    (root / "dataset.yaml").write_text("audio_dir: sounds\nsplit: {column: fold}\n")
    with pytest.raises(DatasetError, match="split column 'fold'"):
        load_dataset("folder", root)
    with pytest.raises(DatasetError, match="does not take option"):
        load_dataset("folder", root, tags="all")
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        load_dataset("nope", root)
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset("folder", tmp_path / "missing")
    (root / "dataset.yaml").write_text("scale: {min: 3}\n")
    with pytest.raises(DatasetError, match="dataset.yaml: scale must be a mapping with 'min' and 'max'"):
        load_dataset("folder", root)
