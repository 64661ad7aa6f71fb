from __future__ import annotations

import shutil

import numpy as np
import pytest

from fixtures_datasets import DEAM_AVG, make_deam
from moodscope.datasets import load_dataset
from moodscope.datasets.base import IssueLog
from moodscope.datasets.deam import read_wide_dynamic
from moodscope.errors import DatasetError


def _issue(ds, text):
    hits = [line for line in ds.issues if text in line]
    assert hits, f"no issue containing {text!r} in {ds.issues}"
    return hits[0]


def test_deam_full_values(tmp_path):
    root = make_deam(tmp_path, release="full")
    ds = load_dataset("deam", root)
    assert "full release" in ds.description
    assert ds.native_scale == {"static": (1.0, 9.0), "dynamic": (-1.0, 1.0)}
    assert ds.ids == ["2", "3", "5", "10", "1999", "2001"]
    t = {tr.id: tr for tr in ds.tracks}
    # header "song_id, valence_mean, ..." (spaces stripped); 1-9 -> (x - 5) / 4: 3.1 -> -0.475
    assert t["2"].valence == pytest.approx(-0.475) and t["2"].arousal == pytest.approx(-0.5)
    assert t["2"].meta["valence_std"] == pytest.approx(0.94 / 4)
    assert (t["3"].valence, t["3"].arousal) == (0.0, 0.5)
    assert (t["2001"].valence, t["2001"].arousal) == (1.0, -1.0)  # from the _2000_2058 file (extra columns)
    _issue(ds, "1 duplicate ids (first row kept) (e.g. 2)")
    # 9.3 is clipped to 9, 12 is far out of 1-9 and left unset
    assert t["5"].arousal == 1.0 and t["5"].valence is None
    # sample_15000ms -> segment starting at 15.0 s; ragged row (4 values, then empty cells)
    np.testing.assert_allclose(t["2"].dynamic.times_s, [15.0, 15.5, 16.0, 16.5])
    np.testing.assert_allclose(t["2"].dynamic.valence, [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    np.testing.assert_allclose(t["2001"].dynamic.times_s, np.arange(15.0, 18.01, 0.5))
    np.testing.assert_allclose(t["2001"].dynamic.arousal, np.arange(7) / 10, atol=1e-6)
    # trailing empty cells are the format, not an issue; the hole inside song 3's valence row is
    np.testing.assert_allclose(t["3"].dynamic.valence, [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    assert "1 empty/NaN dynamic values inside a curve interpolated (e.g. 3)" in _issue(ds, "inside a curve")
    _issue(ds, "valence and arousal curves differ in span (cut to common span) (e.g. 3)")
    # 1999: valence curve only -> no curve; no audio
    assert t["1999"].dynamic is None and t["1999"].audio is None and t["1999"].has_static
    _issue(ds, "arousal.csv: 1 songs missing from this dynamic file (no curve) (e.g. 1999)")
    assert t["10"].audio.name == "10.mp3" and not t["10"].has_static
    # metadata: latin-1 2014 file, shifted 2015 row
    assert t["5"].meta["artist"] == "Bj\u00f6rk" and t["5"].meta["year"] == "2014"
    assert t["2001"].meta["year"] == "2015" and "artist" not in t["2001"].meta
    _issue(ds, "metadata_2014.csv: not valid UTF-8; read as Latin-1")
    _issue(ds, "rows whose cell count differs from the header")
    # the layout is found from a folder above the release too
    assert load_dataset("deam", tmp_path).ids == ds.ids


def test_deam2013_values(tmp_path):
    root = make_deam(tmp_path, release="2013")
    ds = load_dataset("deam", root)
    assert "2013 release" in ds.description
    t = {tr.id: tr for tr in ds.tracks}
    assert ds.ids == ["2", "3"]
    # arousal-first column order, same 1-9 scale
    assert t["2"].valence == pytest.approx(-0.475) and t["2"].arousal == pytest.approx(-0.5)
    assert t["3"].valence == 0.0 and t["3"].arousal == 0.5
    assert t["2"].meta["arousal_std"] == pytest.approx(0.125)
    np.testing.assert_allclose(t["3"].dynamic.times_s, np.arange(15.0, 18.01, 0.5))
    # songs_info.csv: stray tabs stripped, split from "Mediaeval 2013 set"
    assert (t["2"].split, t["3"].split) == ("development", "evaluation")
    assert t["2"].meta["file_name"] == "2.mp3" and t["2"].meta["genre"] == "Blues"
    assert t["2"].meta["artist"] == "Artist Two" and t["3"].meta["segment_start"] == "1.00"
    _issue(ds, "songs_info.csv: not valid UTF-8; read as Latin-1")
    _issue(ds, "songs_info.csv: 1 rows for ids without labels or audio (ignored) (e.g. 4)")
    assert t["2"].audio.parent.name == "clips_45seconds"
    with pytest.raises(DatasetError, match="release must be"):
        load_dataset("deam", root, release="2015")


def test_clean_fixture_has_no_issues(tmp_path):
    for release in ("full", "2013"):
        ds = load_dataset("deam", make_deam(tmp_path / release, release=release, quirks=False))
        assert ds.issues == [], ds.issues
        assert all(t.audio is not None and t.has_static and t.dynamic is not None for t in ds.tracks)


def test_read_wide_dynamic_ragged(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text(
        "song_id,sample_15000ms,sample_15500ms,sample_16000ms,extra\n7,0.1,,0.3\n8,0.5\n9,0.1,0.2,0.3,,0.9\n"
    )
    log = IssueLog()
    out = read_wide_dynamic(f, log)
    np.testing.assert_allclose(out["7"][0], [15.0, 15.5, 16.0])
    assert np.isnan(out["7"][1][1])
    np.testing.assert_allclose(out["8"][0], [15.0])  # shorter row
    assert log.count("columns not named sample_<ms>ms ignored") == 1
    assert log.count("more cells than the header") == 1


def test_deam_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a DEAM release"):
        load_dataset("deam", tmp_path)
    root = make_deam(tmp_path, release="full", quirks=False)
    avg = root / DEAM_AVG
    static = avg / "song_level" / "static_annotations_averaged_songs_1_2000.csv"
    text = static.read_text()
    static.write_text(text.replace("valence_mean", "val"))
    with pytest.raises(
        DatasetError, match="static_annotations_averaged_songs_1_2000.csv: missing column 'valence_mean'"
    ):
        load_dataset("deam", root)
    static.write_text(text)
    shutil.rmtree(avg / "dynamic (per second annotations)")
    with pytest.raises(DatasetError, match=r"missing folder 'dynamic \(per second annotations\)/'"):
        load_dataset("deam", root)
    shutil.rmtree(avg / "song_level")
    with pytest.raises(DatasetError, match="missing song_level/static_annotations_averaged_songs_1_2000.csv"):
        load_dataset("deam", root)
