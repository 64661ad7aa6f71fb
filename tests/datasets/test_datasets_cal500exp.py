from __future__ import annotations

import pytest

from fixtures_datasets import CAL500EXP_TAGS, make_cal500exp
from moodscope.datasets import load_dataset
from moodscope.errors import DatasetError

POSITIVE = ["Emotion-Happy", "Emotion-Sad", "Emotion-Calming_/_Soothing"]


def _issue(ds, text):
    hits = [line for line in ds.issues if text in line]
    assert hits, f"no issue containing {text!r} in {ds.issues}"
    return hits[0]


def _segs(track):
    return [(s.start_s, s.end_s, s.tags) for s in track.segments]


def test_segments_hard(tmp_path):
    root = make_cal500exp(tmp_path)
    ds = load_dataset("cal500exp", root)
    assert ds.tag_names == POSITIVE  # Emotion-* but not NOT-Emotion-*
    assert ds.kinds == ("segments",)
    t = {tr.id: tr for tr in ds.tracks}
    assert _segs(t["beatles-help"]) == [
        (0.0, 1.5, {"Emotion-Happy": 1.0, "Emotion-Sad": 0.0, "Emotion-Calming_/_Soothing": 0.0}),
        (1.5, 3.5, {"Emotion-Happy": 0.0, "Emotion-Sad": 1.0, "Emotion-Calming_/_Soothing": 1.0}),
    ]
    assert t["beatles-help"].tags == {}
    # audio found in the sibling CAL500/mp3 folder
    assert t["beatles-help"].audio == tmp_path / "CAL500" / "mp3" / "beatles-help.mp3"
    # headerless file named from vocab.txt; the 3 -> 3 s row skipped
    assert _segs(t["2pac-trapped"]) == [
        (0.0, 2.0, {"Emotion-Happy": 1.0, "Emotion-Sad": 0.0, "Emotion-Calming_/_Soothing": 0.0})
    ]
    _issue(ds, "1 segments with missing or invalid start/end times skipped (e.g. 2pac-trapped line 2)")
    _issue(ds, "1 empty label files skipped (e.g. nirvana-lithium.csv)")
    _issue(ds, "1 CAL500 audio files without segment labels (not used) (e.g. nirvana-lithium)")
    assert t["abba-dancing_queen"].audio is None
    _issue(ds, "1 tracks with labels but no audio file")


def test_soft_all_tags_and_audio_dir(tmp_path):
    root = make_cal500exp(tmp_path, quirks=False)
    moved = tmp_path / "elsewhere"
    (tmp_path / "CAL500" / "mp3").rename(moved)
    ds = load_dataset("cal500exp", root, annotations="soft", tags="all", audio_dir=moved)
    assert ds.tag_names == CAL500EXP_TAGS
    assert ds.issues == []
    abba = ds.track("abba-dancing_queen")
    assert _segs(abba) == [(0.5, 2.0, dict(zip(CAL500EXP_TAGS, [0.5, 0.0, 0.5, 0.0, 0.5])))]
    assert abba.audio == moved / "abba-dancing_queen.mp3"
    ds = load_dataset("cal500exp", root, tags=["Sad"])
    assert ds.tag_names == ["Emotion-Sad"]
    assert all(t.audio is None for t in ds.tracks)  # audio moved away and not given
    _issue(ds, "no CAL500 mp3/ folder found")


def test_cal500exp_errors(tmp_path):
    with pytest.raises(DatasetError, match="missing SegLabelHard/SegLabelHard/<song>.csv"):
        load_dataset("cal500exp", tmp_path)
    root = make_cal500exp(tmp_path)
    (root / "CAL500_noAudioFeatures" / "vocab.txt").unlink()
    with pytest.raises(DatasetError, match=r"2pac-trapped\.csv: no header row .* and no vocab\.txt"):
        load_dataset("cal500exp", root)
    with pytest.raises(DatasetError, match="annotations must be 'hard' or 'soft'"):
        load_dataset("cal500exp", root, annotations="x")
