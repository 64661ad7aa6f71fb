"""The 4Q adapter: reading the release with its quirks, the labels, the artist-grouped k-fold, ``datasets
check``, and (where it is on disk) the project's copy of the real release. The fixture tree copies the
release's layout (Q1..Q4/<Song>.mp3 and metadata.csv) with tiny generated MP3 files."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from fixtures_datasets import write_audio
from moodscope.datasets import check_dataset, fourq, load_dataset
from moodscope.datasets import emopia as emopia_mod
from moodscope.datasets.splits import Split, group_key, kfold_by_group
from moodscope.errors import DatasetError
from moodscope.tasks.static import label_to_class
from moodscope.tracks import Track

HEADER = (
    "Song,Artist,Title,Quadrant,PQuad,MoodsTotal,Moods,MoodsFoundStr,MoodsStr,MoodsStrSplit,Genres,GenresStr"
)
#: song -> (artist, quadrant); the clean part of the fixture
CLEAN = {
    "MT01": ("Artist A", 1),
    "MT02": ("Artist A", 2),
    "MT03": ("artist  a", 3),  # the same artist, written otherwise
    "MT04": ("Artist B", 4),
    "MT05": ("Artist B", 1),
    "MT06": ("Artist C", 2),
    "MT07": ("Artist D", 3),
    "MT08": ("Artist E", 4),
}


def _row(
    song, artist, q, *, pquad="0.75", split="Negative; Nervous; Jittery", moods="Negative; Nervous/Jittery"
):
    return (
        f'"{song}","{artist}","Title of {song}","{q}","{pquad}","3","3","jittery; negative","{moods}",'
        f'"{split}","2","Electronic; Pop/Rock"'
    )


def make_4q(tmp_path: Path, *, quirks: bool = True) -> Path:
    """The release's layout: Q1..Q4/<Song>.mp3 and metadata.csv (quoted cells, CRLF, a BOM).

    Quirks: an id written `` MT09.mp3 `` (spaces, extension), a duplicate row, a clip in the Q1 folder whose
    Quadrant column says Q3, a row without audio, an audio file without a row, a row without an artist, an
    empty Quadrant (folder used), a Quadrant Q7 without audio, a song in two quadrant folders, a PQuad that
    is not a number, an empty MoodsStrSplit (MoodsStr used), a .wav clip.
    """
    root = tmp_path / "4q"
    rows = [HEADER]
    for k, (song, (artist, q)) in enumerate(CLEAN.items()):
        ext = ".wav" if song == "MT08" else ".mp3"  # any audio extension is accepted
        write_audio(root / f"Q{q}" / f"{song}{ext}", 0.1, sr=8000, seed=k)
        rows.append(_row(song, artist, f"Q{q}"))
    if quirks:
        for name in (
            "Q1/MT09.mp3",
            "Q1/MT10.mp3",
            "Q4/MT12.mp3",
            "Q2/MT13.mp3",
            "Q2/MT15.mp3",
            "Q3/MT15.mp3",
        ):
            write_audio(root / name, 0.1, sr=8000, seed=9)
        (root / "Q1" / "notes.txt").write_text("not audio")
        rows += [
            _row(" MT09.mp3 ", "Artist F", " Q1 ").replace('"', ""),  # spaces, extension, unquoted
            _row("MT01", "Artist Z", "Q4"),  # duplicate: the first row is kept
            _row("MT10", "Artist G", "Q3"),  # in the Q1 folder: the column wins
            _row("MT11", "Artist H", "Q2"),  # no audio file
            _row("MT13", "", "Q2", split=""),  # no artist; no MoodsStrSplit
            _row("MT14", "Artist I", "Q7"),  # no quadrant, no audio
            _row("MT15", "Artist J", "", pquad="n/a"),  # in Q2 and Q3: Q2 kept and used
        ]
        # MT12: audio without a row
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    (root / "README.md").write_text("# 4Q\n")
    return root


def test_read_quirky_release(tmp_path):
    root = make_4q(tmp_path)
    ds = load_dataset("4q", root)
    assert ds.adapter == "4q" and ds.tag_names == list(emopia_mod.TAG_NAMES) == ["Q1", "Q2", "Q3", "Q4"]
    assert fourq.TAG_NAMES is emopia_mod.TAG_NAMES and fourq.SIGNS is emopia_mod.SIGNS
    assert ds.ids == sorted([*CLEAN, "MT09", "MT10", "MT11", "MT12", "MT13", "MT14", "MT15"])
    t = ds.track("MT02")
    assert t.audio == root / "Q2" / "MT02.mp3" and t.split is None
    assert t.tags == {"Q1": 0.0, "Q2": 1.0, "Q3": 0.0, "Q4": 0.0}
    assert t.valence is None and t.arousal is None and ds.kinds == ("tags",)
    assert t.meta == {
        "quadrant": 2,
        "valence_sign": -1,
        "arousal_sign": 1,
        "artist": "Artist A",
        "title": "Title of MT02",
        "moods": ["Negative", "Nervous", "Jittery"],
        "moods_allmusic": ["Negative", "Nervous/Jittery"],
        "moods_found": ["jittery", "negative"],
        "genres": ["Electronic", "Pop/Rock"],
        "pquad": 0.75,
        "audio_quadrant": 2,
    }
    assert ds.track("MT08").audio.suffix == ".wav" and ds.track("MT08").meta["quadrant"] == 4
    # quirks
    assert ds.track("MT09").audio == root / "Q1" / "MT09.mp3" and ds.track("MT09").meta["quadrant"] == 1
    assert ds.track("MT01").meta["artist"] == "Artist A" and ds.track("MT01").meta["quadrant"] == 1
    mt10 = ds.track("MT10")  # folder Q1, column Q3
    assert mt10.meta["quadrant"] == 3 and mt10.tags["Q3"] == 1.0 and mt10.meta["audio_quadrant"] == 1
    assert ds.track("MT11").audio is None and ds.track("MT11").tags["Q2"] == 1.0
    assert ds.track("MT12").tags == {} and ds.track("MT12").audio is not None
    mt13 = ds.track("MT13")
    assert "artist" not in mt13.meta and mt13.meta["moods"] == ["Negative", "Nervous/Jittery"]
    assert ds.track("MT14").tags == {} and ds.track("MT14").audio is None
    mt15 = ds.track("MT15")
    assert mt15.audio == root / "Q2" / "MT15.mp3" and mt15.meta["quadrant"] == 2 and "pquad" not in mt15.meta
    text = "\n".join(ds.issues)
    for expected in (
        "metadata.csv: 1 duplicate ids (first row kept) (e.g. MT01)",
        "metadata.csv: 1 clips in another quadrant folder than the Quadrant column says (column used) (e.g. MT10)",
        "metadata.csv: 1 rows with a Quadrant not in Q1-Q4 and no audio folder (kept without a label) (e.g. MT14)",
        "metadata.csv: 1 rows with a Quadrant not in Q1-Q4 (the audio folder's quadrant used) (e.g. MT15)",
        "metadata.csv: 1 PQuad cells not a number in [0, 1] (left out) (e.g. MT15)",
        "Q3: 1 songs already in another quadrant folder (first kept) (e.g. MT15)",
        "4q: 1 tracks with labels but no audio file (kept, audio=None) (e.g. MT11)",
        "4q: 1 audio files without any label (kept as unlabelled tracks) (e.g. MT12)",
    ):
        assert expected in text
    assert len(ds.issues) == 8
    assert "13 clips" not in ds.description and "15 clips, Q1 3, Q2 5, Q3 3, Q4 2" in ds.description
    assert fourq.LICENCE in ds.description and "non-commercial" in fourq.LICENCE


def test_sign_labels_and_layout_errors(tmp_path):
    root = make_4q(tmp_path, quirks=False)
    ds = load_dataset("4q", root, sign_labels=True)
    assert ds.kinds == ("static", "tags") and ds.issues == []
    for t in ds.tracks:
        assert (t.valence, t.arousal) == (0.5 * t.meta["valence_sign"], 0.5 * t.meta["arousal_sign"])
        assert int(label_to_class([t.valence], [t.arousal], "quadrant")[0]) == t.meta["quadrant"] - 1
    # the authors' archive folder is found below the root
    nested = tmp_path / "outer"
    nested.mkdir()
    os.rename(root, nested / "MER_audio_taffc_dataset")
    assert len(load_dataset("4q", nested)) == len(CLEAN)
    with pytest.raises(DatasetError, match="does not take option"):
        load_dataset("4q", nested, render=False)
    os.remove(nested / "MER_audio_taffc_dataset" / "metadata.csv")
    with pytest.raises(DatasetError, match=r"metadata.csv: missing file"):
        load_dataset("4q", nested)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metadata.csv").write_text("Song,Artist\nMT1,A\n")
    with pytest.raises(DatasetError, match="missing column 'Quadrant'"):
        load_dataset("4q", bare)


def test_helpers():
    assert fourq.song_id(" \ufeffMT0000040632.MP3 ") == "MT0000040632"
    assert [fourq.parse_quadrant(s) for s in ("Q2", "q4", "3", "1.0", "Q5", "", None, "x")] == [
        2, 4, 3, 1, None, None, None, None,
    ]  # fmt: skip
    assert fourq.split_list(" Aggressive; Angry;; Brooding ,Angry") == ["Aggressive", "Angry", "Brooding"]
    assert fourq.split_list("Pop/Rock") == ["Pop/Rock"] and fourq.split_list(None) == []


# ----------------------------------------------------------------------------------------------------------
# artist-grouped k-fold
# ----------------------------------------------------------------------------------------------------------
def _tracks(n_artists=23, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for a in range(n_artists):
        for c in range(int(rng.integers(1, 6))):
            q = int(rng.integers(1, 5))
            out.append(Track(id=f"a{a}c{c}", meta={"artist": f"Artist {a}", "quadrant": q}))
    out += [Track(id=f"solo{i}", meta={"quadrant": 1 + i % 4}) for i in range(3)]  # no artist
    return out


def _check_folds(folds, tracks, k):
    assert len(folds) == k and all(isinstance(f, Split) for f in folds)
    ids = {t.id for t in tracks}
    tests = [set(f.test) for f in folds]
    assert sum(len(t) for t in tests) == len(ids) and set().union(*tests) == ids  # each clip tested once
    for f in folds:
        assert set(f.train) | set(f.test) == ids and not set(f.train) & set(f.test)
    groups = {}
    for t in tracks:
        groups.setdefault(group_key(t), set()).add(t.id)
    for members in groups.values():  # no artist in two folds
        assert sum(bool(members & t) for t in tests) == 1
    largest = max(map(len, groups.values()))
    assert max(map(len, tests)) - min(map(len, tests)) <= largest


@pytest.mark.parametrize("k", [2, 5, 7])
def test_kfold_by_group_disjoint_covering_balanced(k):
    tracks = _tracks()
    folds = kfold_by_group(tracks, k=k, seed=1)
    _check_folds(folds, tracks, k)
    assert folds[0].name == "artist_fold0" and folds[0].notes == (
        "3 tracks without 'artist' (each its own group)",
    )
    # deterministic, independent of the order of the tracks; the seed changes the folds
    assert kfold_by_group(list(reversed(tracks)), k=k, seed=1) == folds
    assert kfold_by_group(tracks, k=k, seed=2) != folds


def test_kfold_by_group_stratifies_and_groups_by_name():
    tracks = [Track(id=f"s{i:02d}", meta={"artist": f"A{i}", "quadrant": 1 + i % 4}) for i in range(40)]
    for f in kfold_by_group(tracks, k=5):
        assert Counter(int(i[1:]) % 4 for i in f.test) == {0: 2, 1: 2, 2: 2, 3: 2}
    # case and spaces do not split an artist; another meta field can name the group
    same = [Track(id="x1", meta={"artist": "The Band"}), Track(id="x2", meta={"artist": " the  band"})]
    assert group_key(same[0]) == group_key(same[1]) == ("group", "the band")
    tracks += same
    _check_folds(kfold_by_group(tracks, k=4, stratify=None), tracks, 4)
    albums = [Track(id=f"t{i}", meta={"album": f"al{i // 3}"}) for i in range(12)]
    folds = kfold_by_group(albums, k=4, group="album")
    assert folds[0].name == "album_fold0" and sorted(len(f.test) for f in folds) == [3, 3, 3, 3]


def test_kfold_by_group_errors():
    tracks = [Track(id=f"t{i}", meta={"artist": "A" if i < 4 else "B"}) for i in range(6)]
    with pytest.raises(ValueError, match="2 groups"):
        kfold_by_group(tracks, k=3)
    with pytest.raises(ValueError, match="k >= 2"):
        kfold_by_group(tracks, k=1)
    with pytest.raises(TypeError, match="needs Tracks"):
        kfold_by_group(["a", "b"], k=2)


def test_kfold_by_group_on_the_fixture(tmp_path):
    ds = load_dataset("4q", make_4q(tmp_path))
    usable = ds.select("tags")
    folds = kfold_by_group(usable, k=3)
    _check_folds(folds, usable, 3)
    where = {i: f for f, sp in enumerate(folds) for i in sp.test}
    assert where["MT01"] == where["MT02"] == where["MT03"]  # "Artist A" and "artist  a"
    assert folds[0].notes == ("1 tracks without 'artist' (each its own group)",)  # MT13


# ----------------------------------------------------------------------------------------------------------
# datasets check
# ----------------------------------------------------------------------------------------------------------
def test_datasets_check(tmp_path, capsys):
    r = check_dataset("4q", make_4q(tmp_path / "clean", quirks=False))
    assert r.ok and r.issues == [] and r.n_tracks == r.usable["tags"] == len(CLEAN)
    assert r.unreadable_audio == [] and r.tag_names == ["Q1", "Q2", "Q3", "Q4"]
    from moodscope.cli import main

    root = make_4q(tmp_path / "quirky")
    code = main(["datasets", "check", "4q", "--root", str(root)])
    out = capsys.readouterr().out
    assert code == 1  # the quirks are issues
    assert "tracks: 15  (with an audio file: 13)" in out and "labelled tracks without audio: 1" in out
    assert "Q1 3, Q2 5, Q3 3, Q4 2" in out and "unreadable audio files: 0" in out


# ----------------------------------------------------------------------------------------------------------
# the real release (the project's given half), where it is on disk
# ----------------------------------------------------------------------------------------------------------
def _real_root() -> Path | None:
    env = os.environ.get("MOODSCOPE_4Q")
    data = os.environ.get("MOODSCOPE_DATA")
    cands = [Path(env)] if env else []
    cands += [Path(data) / "4q-given"] if data else []
    cands.append(Path(__file__).resolve().parents[3] / "shared" / "data" / "4q-given")
    for c in cands:
        if (c / "metadata.csv").is_file() and (c / "Q1").is_dir():
            return c
    return None


@pytest.mark.realdata
@pytest.mark.skipif(_real_root() is None, reason="the 4Q release is not on disk ($MOODSCOPE_4Q)")
def test_real_release(capsys):
    root = _real_root()
    ds = load_dataset("4q", root)
    assert len(ds) == 461 and all(t.audio is not None and t.audio.suffix == ".mp3" for t in ds.tracks)
    assert Counter(t.meta["quadrant"] for t in ds.tracks) == {1: 113, 2: 107, 3: 129, 4: 112}
    assert all(t.meta["audio_quadrant"] == t.meta["quadrant"] and t.meta["moods"] for t in ds.tracks)
    # 331 distinct Artist cells (the README's count) = 330 named artists + the empty cell of 3 clips
    named = {t.meta["artist"] for t in ds.tracks if "artist" in t.meta}
    assert len(named) == 330 and sum("artist" not in t.meta for t in ds.tracks) == 3
    assert len({group_key(t) for t in ds.tracks}) == 333
    assert ds.issues == []  # the empty Artist cells are the release as it is, not a fault
    folds = kfold_by_group(ds, k=5)
    _check_folds(folds, ds.tracks, 5)
    assert sorted(len(f.test) for f in folds) == [92, 92, 92, 92, 93]
    # the check reads the release (audio headers are not opened here: no decoding of 461 MP3s in the suite)
    from moodscope.cli import main

    code = main(["datasets", "check", "4q", "--root", str(root), "--no-audio-check"])
    out = capsys.readouterr().out
    assert code == 0 and "issues: 0" in out
    assert "tracks: 461  (with an audio file: 461)" in out and "labelled tracks without audio: 0" in out
    assert "Q1 113, Q2 107, Q3 129, Q4 112" in out and "330 artists" in out
