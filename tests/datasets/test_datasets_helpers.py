"""The row/cell helpers the dataset adapters share (moodscope.datasets.base)."""

from __future__ import annotations

import numpy as np

from moodscope.datasets.base import IssueLog, convert_tags
from moodscope.datasets.reading import (
    attach_audio,
    cell,
    copy_meta,
    find_dirs,
    float_cell,
    iter_id_rows,
    iter_known_rows,
    track_of,
)
from moodscope.tracks import Track


def test_cell_and_float_cell_on_ragged_rows():
    row = ["a", "", "2.5", "x"]
    assert cell(row, 0) == "a" and cell(row, 4) is None and cell(row, None) is None
    assert float_cell(row, 2) == 2.5
    assert all(np.isnan(float_cell(row, j)) for j in (1, 3, 4, None))


def test_iter_id_rows_skips_blank_and_repeated_ids_and_counts_them():
    rows = [["1.0", "a"], ["", "b"], ["2", "c"], ["1", "d"], []]
    log = IssueLog()
    seen = {"2"}
    got = list(iter_id_rows(rows, 0, log, "s.csv", id_name="song_id", seen=seen))
    assert got == [("1", ["1.0", "a"])]
    assert seen == {"1", "2"}
    assert log.lines() == [
        "s.csv: 2 rows without a song_id skipped (e.g. line 3, line 6)",
        "s.csv: 2 duplicate ids (first row kept) (e.g. 2, 1)",
    ]


def test_iter_known_rows_and_copy_meta():
    tracks = {"7": Track(id="7")}
    rows = [["7", "Abba", ""], ["8", "X", "Y"], ["", "Z", "Z"], ["7"]]
    log = IssueLog()
    got = list(iter_known_rows(rows, 0, tracks, log, "m.csv", "unknown ids ignored"))
    assert [(t.id, r) for t, r in got] == [("7", ["7", "Abba", ""]), ("7", ["7"])]
    assert log.lines() == ["m.csv: 1 unknown ids ignored (e.g. 8)"]
    t = tracks["7"]
    copy_meta(t, rows[0], {"artist": 1, "title": 2, "genre": None})
    copy_meta(t, rows[3], {"artist": 1})
    assert t.meta == {"artist": "Abba"}


def test_convert_tags_clips_and_drops():
    log = IssueLog()
    tags = convert_tags(["a", "b", "c", "d"], [1.02, np.nan, 0.5, 2.0], log, "t.csv", "s1")
    assert tags == {"a": 1.0, "c": 0.5}
    assert log.count("clipped") == 1
    assert log.count("tag left unset") == 2


def test_track_of_and_attach_audio(tmp_path):
    tracks: dict[str, Track] = {}
    t = track_of(tracks, "3")
    assert track_of(tracks, "3") is t and list(tracks) == ["3"]
    for name in ("3.wav", "4.0.mp3", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    attach_audio(tracks, tmp_path, IssueLog())
    assert sorted(tracks) == ["3", "4"]
    assert tracks["3"] is t and t.audio == tmp_path / "3.wav"
    assert tracks["4"].audio == tmp_path / "4.0.mp3"


def test_find_dirs_depth_and_case(tmp_path):
    for d in ("Audio", "x/audio", "x/y/z/audio"):
        (tmp_path / d).mkdir(parents=True)
    assert find_dirs(tmp_path, ("AUDIO",)) == [
        tmp_path / "Audio",
        tmp_path / "x/audio",
        tmp_path / "x/y/z/audio",
    ]
    assert find_dirs(tmp_path, ("audio",), max_depth=2) == [tmp_path / "Audio", tmp_path / "x/audio"]
