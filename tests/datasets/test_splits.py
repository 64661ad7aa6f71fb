from __future__ import annotations

import pytest

from moodscope.datasets import Dataset
from moodscope.datasets.splits import cal500_kfold, deam2015_split, kfold_by_song, mer1101_split, read_id_file
from moodscope.errors import DatasetError
from moodscope.tracks import Segment, Track


@pytest.mark.parametrize("n,k", [(10, 5), (23, 5), (7, 7), (12, 3)])
def test_kfold_disjoint_covering_balanced(n, k):
    ids = [f"s{i}" for i in range(n)]
    folds = kfold_by_song(ids, k=k, seed=3)
    assert len(folds) == k
    tests = [set(te) for _, te in folds]
    assert set().union(*tests) == set(ids)
    assert sum(len(t) for t in tests) == n  # disjoint
    assert max(map(len, tests)) - min(map(len, tests)) <= 1
    for tr, te in folds:
        assert set(tr) | set(te) == set(ids) and not set(tr) & set(te)


def test_kfold_deterministic_and_order_free():
    ids = [str(i) for i in range(2, 40)]
    a = kfold_by_song(ids, k=5, seed=0)
    b = kfold_by_song(list(reversed(ids)) + ids[:3], k=5, seed=0)  # other order, repeats
    assert [list(s) for s in a] == [list(s) for s in b]
    c = kfold_by_song(ids, k=5, seed=1)
    assert [s.test for s in a] != [s.test for s in c]
    # natural order inside each side
    assert a[0].test == sorted(a[0].test, key=int)


def test_kfold_errors():
    with pytest.raises(ValueError, match="k >= 2"):
        kfold_by_song(["a", "b"], k=1)
    with pytest.raises(ValueError, match="3 songs cannot be split into 5 folds"):
        kfold_by_song(["a", "b", "c"], k=5)


def _deam_ids():
    return [str(i) for i in (2, 3, 5, 1999, 2000, 2001, 2030, 2058)]


def test_deam2015_default():
    train, test = deam2015_split(_deam_ids())
    assert train == ["2", "3", "5", "1999", "2000"]
    assert test == ["2001", "2030", "2058"]
    ds = Dataset("deam", root=None, tracks=[Track(id=i) for i in _deam_ids()])
    assert list(deam2015_split(ds)) == [train, test]


@pytest.mark.parametrize(
    "content",
    ["3\n5\n7\n", "3,5,7", "song_id\n3.0\n5\n7\n", "3 5\t7  # comment\n", "3.mp3, 5.mp3\n7.mp3"],
)
def test_deam2015_id_file(tmp_path, content):
    f = tmp_path / "dev.txt"
    f.write_text(content)
    assert read_id_file(f) == ["3", "5", "7"]
    split = deam2015_split(_deam_ids(), dev_ids_file=f)
    assert split.train == ["3", "5"] and split.test == ["2001", "2030", "2058"]
    assert split.notes == ("1 development ids from dev.txt not in the dataset",)


def test_deam2015_errors(tmp_path):
    f = tmp_path / "dev.txt"
    f.write_text("3\n2005\n")
    with pytest.raises(DatasetError, match="dev.txt: lists evaluation-set ids"):
        deam2015_split(_deam_ids(), dev_ids_file=f)
    f.write_text("999999x\n")
    with pytest.raises(DatasetError, match="none of its 1 ids"):
        deam2015_split(_deam_ids(), dev_ids_file=f)
    with pytest.raises(DatasetError, match="no song with id 2001-2058"):
        deam2015_split(["2", "3"])
    with pytest.raises(DatasetError, match="id file not found"):
        deam2015_split(_deam_ids(), dev_ids_file=tmp_path / "nope.txt")


def test_mer1101_split():
    ids = [f"m{i}" for i in range(30)]
    durations = {i: 16.5 + 4 * n for n, i in enumerate(ids)}  # 16.5 .. 132.5 s
    long_ids = {i for i in ids if durations[i] > 30}
    assert len(long_ids) == 26  # 16.5, 20.5, 24.5, 28.5 are left out
    tracks = [Track(id=i) for i in ids]
    s = mer1101_split(tracks, durations, seed=0)
    assert set(s.train) | set(s.test) == long_ids and not set(s.train) & set(s.test)
    assert len(s.test) == round(0.2 * 26) == 5
    assert s.notes == ("4 songs of 30 s or less left out",)
    assert list(mer1101_split(ids, durations, seed=0)) == list(s)
    assert mer1101_split(ids, durations, seed=1).test != s.test
    # a duration of exactly 30 s is not "longer than 30 s"
    assert "x" not in mer1101_split(["x", "y", "z"], [30.0, 31.0, 40.0]).train
    # sequence durations aligned with tracks; unknown durations counted
    s2 = mer1101_split(ids, {i: 60.0 for i in ids[:10]})
    assert s2.notes == ("20 songs without a known duration left out",)
    with pytest.raises(DatasetError, match="need at least 2"):
        mer1101_split(["a"], [40.0])


def test_cal500_kfold_skips_unlabelled():
    tracks = [Track(id=f"song{i}", tags={"Emotion-Happy": 1.0}) for i in range(20)]
    tracks += [Track(id="seg", segments=[Segment(0.0, 3.0, {"x": 1.0})]), Track(id="nolabel")]
    folds = cal500_kfold(tracks, k=10, seed=0)
    assert len(folds) == 10
    covered = set().union(*(f.test for f in folds))
    assert covered == {t.id for t in tracks} - {"nolabel"}
    assert all(len(f.test) in (2, 3) for f in folds)
