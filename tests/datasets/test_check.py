from __future__ import annotations

import pytest

from fixtures_datasets import make_deam, make_folder, write_audio
from moodscope.datasets import check_dataset, list_datasets
from moodscope.errors import DatasetError


def test_list_datasets():
    names = [n for n, _ in list_datasets()]
    assert names == ["4q", "cal500", "cal500exp", "deam", "emopia", "folder", "pmemo", "vgmidi"]
    assert all(desc for _, desc in list_datasets())


def test_check_quirky_folder(tmp_path):
    root = make_folder(tmp_path, quirks=True, n_tracks=4, duration_s=2.0)
    r = check_dataset("folder", root)
    assert r.name == "myset" and r.adapter == "folder"
    assert r.n_tracks == 11 and r.n_audio == 6  # t0-t3, orphan, broken
    assert r.labelled == {"static": 6, "dynamic": 6, "tags": 4, "segments": 0}
    assert r.usable == {"static": 4, "dynamic": 4, "tags": 4, "segments": 0}  # broken.wav unreadable
    assert sorted(r.missing_audio) == ["coarse", "dup", "fine", "nan", "over"]
    assert r.unlabelled_audio == ["orphan"]
    assert [tid for tid, _ in r.unreadable_audio] == ["broken"]
    assert "broken.wav" in r.unreadable_audio[0][1]
    assert r.duration_range == (1.0, 2.0)
    assert sorted(r.short_tracks) == ["orphan", "t0", "t1", "t2", "t3"]
    assert r.curves_past_end == []
    # canonical and native ranges: static valence 1..9 native -> -1..1 (t0 = 1, "over" clipped to 9)
    assert r.label_ranges["static.valence"] == (-1.0, 1.0)
    assert r.native_ranges["static.valence"] == (1.0, 9.0)
    assert r.label_ranges["static.arousal"] == (-0.5, 1.0)
    assert r.label_ranges["tags"] == (0.0, 1.0)
    assert r.splits["release split"] == "test 1, train 3"
    assert r.splits["5-fold by song"] == "not possible: 4 usable songs < 5"
    assert not r.ok
    # every adapter issue is in the report, plus the audio findings
    assert any("duplicate ids" in i for i in r.issues)
    assert any("1 unreadable audio files" in i for i in r.issues)
    assert not any("shorter than" in i for i in r.issues)  # listed apart, not an issue
    text = r.format()
    for expected in (
        "tracks: 11  (with an audio file: 6)",
        "labelled tracks without audio: 5",
        "unreadable audio files: 1",
        "durations: 1.0 s to 2.0 s",
        "tracks shorter than the 30 s window (padded in training; left out by the MER1101 protocol): 5",
        "static.valence    -1.000 .. +1.000  [1, 9]",
        "release split: test 1, train 3",
    ):
        assert expected in text
    assert r.to_dict()["ok"] is False


def test_check_without_durations(tmp_path):
    root = make_folder(tmp_path, quirks=False, n_tracks=6)
    r = check_dataset("folder", root, durations=False)
    assert not r.durations_checked and r.duration_range is None and r.unreadable_audio == []
    assert r.splits["5-fold by song"] == "6 songs, 1-2 test songs per fold"
    assert "audio files not opened" in r.format()
    assert r.ok


def test_check_mer1101_and_curves_past_end(tmp_path):
    root = tmp_path / "mer"
    rows = ["track_id,time_s,valence,arousal"]
    for i in range(6):
        dur = 20.0 if i == 0 else 31.0
        write_audio(root / "audio" / f"s{i}.wav", dur, sr=2000, seed=i)
        last = 40.0 if i == 1 else dur - 0.5  # s1's curve runs past its 31 s of audio
        rows += [f"s{i},{t},0.1,0.2" for t in (0.0, last)]
    (root / "dynamic.csv").write_text("\n".join(rows) + "\n")
    r = check_dataset("folder", root)
    assert r.short_tracks == ["s0"]
    assert r.curves_past_end == ["s1"]
    assert r.duration_range == (20.0, 31.0)
    assert r.splits["mer1101 (> 30 s, 80/20)"] == "train 4, test 1 (1 songs of 30 s or less left out)"


def test_check_deam2015_sizes(tmp_path):
    root = make_deam(tmp_path, quirks=False, n_extra=8, duration_s=19.0, sr=8000)
    r = check_dataset("deam", root)
    assert r.curves_past_end == [] and len(r.short_tracks) == 11
    assert r.ok, r.issues
    # dev: 2, 3, 100, 102, 104, 106; eval: 2001, 2012, 2014, 2016, 2018
    assert r.splits["deam2015 (default)"] == "train 6, test 5"
    assert r.splits["5-fold by song"] == "11 songs, 2-3 test songs per fold"
    assert r.labelled["dynamic"] == 11


def test_check_bad_layout_raises(tmp_path):
    with pytest.raises(DatasetError, match="not a DEAM release"):
        check_dataset("deam", tmp_path)
