from __future__ import annotations

import pytest

from fixtures_datasets import CAL500_SONGS, CAL500_VOCAB, cal500_value, make_cal500
from moodscope.datasets import load_dataset
from moodscope.datasets.cal500 import EMOTION_TAGS
from moodscope.errors import DatasetError


def _issue(ds, text):
    hits = [line for line in ds.issues if text in line]
    assert hits, f"no issue containing {text!r} in {ds.issues}"
    return hits[0]


def test_default_is_18_positive_emotion_tags_hard(tmp_path):
    root = make_cal500(tmp_path)
    ds = load_dataset("cal500", root)
    assert len(EMOTION_TAGS) == 18
    assert ds.tag_names == list(EMOTION_TAGS) == CAL500_VOCAB[:18]
    assert ds.kinds == ("tags",) and ds.native_scale == {"tags": (0.0, 1.0)}
    t = {tr.id: tr for tr in ds.tracks}
    for i, song in enumerate(CAL500_SONGS):
        assert t[song].tags == {CAL500_VOCAB[j]: cal500_value(i, j, soft=False) for j in range(18)}
        assert t[song].audio.name == f"{song}.mp3"
    # quirks: a row with 39 values is skipped (counted), audio without a song line kept unlabelled
    assert t["ghost-song"].tags == {} and t["ghost-song"].audio is None
    _issue(ds, "hardAnnotations.txt: 1 rows without 40 values skipped (no tags) (e.g. ghost-song)")
    assert t["extra-song"].tags == {} and t["extra-song"].audio is not None
    _issue(ds, "1 audio files without any label")


def test_soft_and_tag_subsets(tmp_path):
    root = make_cal500(tmp_path)
    soft = load_dataset("cal500", root, annotations="soft", tags="all")
    assert soft.tag_names == CAL500_VOCAB
    t = {tr.id: tr for tr in soft.tracks}
    assert t["2pac-trapped"].tags[CAL500_VOCAB[0]] == 1.0  # 1.04 clipped
    _issue(soft, "softAnnotations.txt: 1 tag values slightly outside [0, 1] clipped (e.g. 2pac-trapped)")
    assert t["beatles-help"].tags[CAL500_VOCAB[39]] == cal500_value(2, 39, soft=True)
    assert t["ghost-song"].tags[CAL500_VOCAB[5]] == cal500_value(4, 5, soft=True)  # soft row is complete
    emo = load_dataset("cal500", root, tags="emotion")
    assert emo.tag_names == CAL500_VOCAB[:36]
    # explicit list, in the asked order; "Emotion-" prefix optional; "Aggressive" spelling accepted
    sub = load_dataset("cal500", root, tags=["Sad", "Emotion-Happy", "Angry_/_Aggressive", "Genre-Rock"])
    assert sub.tag_names == ["Emotion-Sad", "Emotion-Happy", "Emotion-Angry_/_Agressive", "Genre-Rock"]
    j = CAL500_VOCAB.index("Genre-Rock")
    assert sub.track("abba-dancing_queen").tags["Genre-Rock"] == cal500_value(1, j, soft=False)


def test_cal500_errors(tmp_path):
    root = make_cal500(tmp_path, quirks=False)
    with pytest.raises(DatasetError, match=r"vocab\.txt: unknown tag\(s\) \['Grumpy'\]"):
        load_dataset("cal500", root, tags=["Grumpy"])
    with pytest.raises(DatasetError, match="annotations must be 'hard' or 'soft'"):
        load_dataset("cal500", root, annotations="medium")
    with pytest.raises(DatasetError, match="tags must be None, 'all'"):
        load_dataset("cal500", root, tags="happy")
    hard = root / "CAL500" / "hardAnnotations.txt"
    hard.write_text("\n".join(hard.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DatasetError, match=r"hardAnnotations\.txt: 3 rows for 4 songs in songNames\.txt"):
        load_dataset("cal500", root)
    (root / "CAL500" / "vocab.txt").unlink()
    with pytest.raises(DatasetError, match=r"vocab\.txt: missing file"):
        load_dataset("cal500", root)
    with pytest.raises(DatasetError, match="missing songNames.txt"):
        load_dataset("cal500", tmp_path / "cal500" / "CAL500" / "mp3")


def test_clean_fixture(tmp_path):
    ds = load_dataset("cal500", make_cal500(tmp_path, quirks=False, n_extra=6))
    assert ds.issues == []
    assert len(ds.select("tags")) == 10
