"""The VGMIDI adapter: per-slot listener labels onto the 2 Hz grid (gaps and the tail unlabelled), the static
mean, series-grouped folds, rendering into the cache, and ``datasets check vgmidi``."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_datasets import make_vgmidi
from moodscope.datasets import check_dataset, load_dataset
from moodscope.datasets.splits import kfold_by_group
from moodscope.datasets.vgmidi import piece_fields, slots_to_grid
from moodscope.errors import DatasetError
from tools import needs


def test_slots_to_grid_centre_rule_gaps_and_tail():
    # slots [0, 1.2) and [1.2, 2.0), a gap [2.0, 3.0), then [3.0, 3.9)
    d = slots_to_grid([0.0, 1.2, 3.0], [1.2, 2.0, 3.9], [0.1, 0.2, 0.3], [-0.1, -0.2, -0.3])
    # step centres 0.25, 0.75, 1.25 (second slot), 1.75; 2.25, 2.75 in the gap; 3.25, 3.75; 4.25 past the end
    assert d.times_s.tolist() == [0.0, 0.5, 1.0, 1.5, 3.0, 3.5]
    assert np.allclose(d.valence, [0.1, 0.1, 0.2, 0.2, 0.3, 0.3])
    assert np.allclose(d.arousal, [-0.1, -0.1, -0.2, -0.2, -0.3, -0.3])
    # a step whose centre is exactly a slot boundary takes the later slot
    d = slots_to_grid([0.0, 0.75], [0.75, 1.5], [1.0, -1.0], [0.0, 0.0])
    assert d.valence.tolist() == [1.0, -1.0, -1.0]
    assert len(slots_to_grid([], [], [], []).times_s) == 0


def test_piece_fields():
    assert piece_fields("Final Fantasy_PS1_Final Fantasy VII_Aerith_s Theme") == {
        "series": "Final Fantasy", "platform": "PS1", "game": "Final Fantasy VII", "title": "Aerith_s Theme"
    }  # fmt: skip
    assert piece_fields("Loose") == {"series": "Loose"}


def test_read_quirky_release(tmp_path):
    root = make_vgmidi(tmp_path)
    ds = load_dataset("vgmidi", root, render=False, cache_dir=tmp_path / "cache")
    assert ds.adapter == "vgmidi" and "dynamic" in ds.kinds and "static" in ds.kinds
    assert len(ds) == 4
    t = ds.track("Zelda_N64_Ocarina_Song of Storms")
    assert t.meta["series"] == "Zelda" and t.meta["game"] == "Ocarina" and t.meta["slots"] == 2
    assert t.dynamic.times_s.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert np.allclose(t.dynamic.valence, [0.2, 0.2, 0.3, 0.3])  # the duplicate bar's 0.9 not taken
    assert t.valence == pytest.approx(0.25) and t.arousal == pytest.approx(0.45)
    ff = ds.track("Final Fantasy_PS1_FF7_Prelude")  # its middle slot was dropped: a gap, not zeros
    assert ff.dynamic.times_s.tolist() == [0.0, 0.5, 2.0, 2.5]
    assert ff.valence == pytest.approx(-0.35)
    assert ds.track("Other_PC_Unlabelled_Theme").dynamic is None
    assert t.audio.parent.parent == tmp_path / "cache" and t.audio.suffix == ".flac"
    text = "\n".join(ds.issues)
    for expected in (
        "rows naming no MIDI file of midi/ (ignored) (e.g. Ghost_PC_None_Nothing)",
        "duplicate (piece, bar) rows (first kept)",
        "rows with a time or value that is not a finite number (skipped)",
        "values outside -1..1 (skipped)",
        "slots that end before they start (skipped)",
        "pieces whose static row differs from the mean of their slots (slots used) (e.g. Zelda_N64_Ocarina_Lost_Woods)",
        "audio files without any label (kept as unlabelled tracks) (e.g. Other_PC_Unlabelled_Theme)",
    ):
        assert expected in text, expected
    clean = load_dataset("vgmidi", make_vgmidi(tmp_path / "clean", quirks=False), render=False)
    assert clean.issues == [] and len(clean) == 3


def test_series_grouped_folds(tmp_path):
    ds = load_dataset("vgmidi", make_vgmidi(tmp_path), render=False)
    labelled = [t for t in ds.tracks if t.dynamic is not None]
    folds = kfold_by_group(labelled, k=2, group="series", stratify=None)
    for f in folds:
        assert len({ds.track(i).meta["series"] for i in f.test}) == 1  # a series never spans two folds


def test_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="midi: missing folder"):
        load_dataset("vgmidi", tmp_path, render=False)
    (tmp_path / "midi").mkdir()
    with pytest.raises(DatasetError, match="dynamic_per_bar.csv: missing file"):
        load_dataset("vgmidi", tmp_path, render=False)


@needs("fluidsynth", "soundfont:FluidR3_GM")
def test_render_and_check(tmp_path):
    root = make_vgmidi(tmp_path, quirks=False)
    ds = load_dataset("vgmidi", root, sr=16000, progress=False, cache_dir=tmp_path / "cache")
    assert all(t.audio.is_file() for t in ds.tracks)
    report = check_dataset("vgmidi", root, render=False, cache_dir=tmp_path / "cache")
    assert report is not None
