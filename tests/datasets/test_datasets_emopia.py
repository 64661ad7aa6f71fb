"""The EMOPIA adapter: reading the release with its quirks, rendering into the cache and reusing it, the official
split, and ``datasets check``. The fixture tree copies EMOPIA 1.0's layout with tiny MIDI files (1 s each)."""

from __future__ import annotations

import os

import pytest

from fixtures_datasets import CLEAN_EMOPIA as CLEAN
from fixtures_datasets import make_emopia, write_clip
from moodscope.audio import midi_render
from moodscope.datasets import check_dataset, load_dataset
from moodscope.datasets import emopia as emopia_mod
from moodscope.datasets.splits import Split, emopia_split
from moodscope.errors import DatasetError, MissingToolError
from moodscope.tasks.static import label_to_class
from tools import needs

#: rendering with the adapter's default soundfont
requires_fluidsynth = needs("fluidsynth", "soundfont:FluidR3_GM")


def test_read_quirky_release_without_rendering(tmp_path):
    root = make_emopia(tmp_path)
    ds = load_dataset("emopia", root, render=False, cache_dir=tmp_path / "cache")
    assert ds.adapter == "emopia" and ds.tag_names == ["Q1", "Q2", "Q3", "Q4"]
    assert ds.ids == sorted(
        list(CLEAN) + ["Q1_badq_0", "Q1_songE_0", "Q2_broken_0", "Q3_ghost_0", "Q4_orphan_0"]
    )
    t = ds.track("Q2_song_B_1")
    assert t.tags == {"Q1": 0.0, "Q2": 1.0, "Q3": 0.0, "Q4": 0.0}
    assert t.valence is None and t.arousal is None and t.split == "train"
    assert t.meta["quadrant"] == 2 and (t.meta["valence_sign"], t.meta["arousal_sign"]) == (-1, 1)
    assert t.meta["song"] == "song_B" and t.meta["clip"] == 1 and t.meta["annotator"] == "B"
    assert t.meta["midi"] == root / "EMOPIA_1.0" / "midis" / "Q2_song_B_1.mid"
    # audio: where the render would be, keyed by variant and MIDI content; nothing rendered
    key = midi_render.RenderVariant().key()
    assert t.audio.parent == tmp_path / "cache" / key and t.audio.name.startswith("Q2_song_B_1-")
    assert t.audio.suffix == ".flac" and not t.audio.exists()
    assert ds.track("Q3_songC_0").split == "val" and ds.track("Q4_songD_2").meta["arousal_sign"] == -1
    # quirks
    a = ds.track("Q1_songA_0")  # ".mid" and spaces in label.csv, duplicate row, also listed in test
    assert a.meta["annotator"] == "A" and a.split == "train"
    e = ds.track("Q1_songE_0")  # name says Q1, label.csv says 2: the label wins
    assert e.meta["quadrant"] == 2 and e.tags["Q2"] == 1.0
    assert ds.track("Q3_ghost_0").audio is None and ds.track("Q3_ghost_0").tags["Q3"] == 1.0
    orphan = ds.track("Q4_orphan_0")
    assert orphan.tags == {} and orphan.audio is not None and orphan.split is None
    assert ds.track("Q1_badq_0").tags == {}
    text = "\n".join(ds.issues)
    for expected in (
        "label.csv: 1 duplicate ids (first row kept) (e.g. Q1_songA_0)",
        "label.csv: 1 clips whose name says another quadrant than the 4Q column (4Q used) (e.g. Q1_songE_0)",
        "label.csv: 1 rows with a quadrant not in 1-4 (kept without a label) (e.g. Q1_badq_0)",
        "midis: 1 labelled clips without a MIDI file (kept, audio=None) (e.g. Q3_ghost_0)",
        "label.csv: 1 MIDI files without a label (kept as unlabelled tracks) (e.g. Q4_orphan_0)",
        "midis: 1 files that are not .mid ignored (e.g. notes.txt)",
        "test_clip.csv: 1 clips already in the train split (first kept) (e.g. Q1_songA_0)",
        "test_clip.csv: 1 entries naming no clip of label.csv or midis/ (ignored) (e.g. Q9_nothing_0)",
        "split: 2 clips in no split file (split unset) (e.g. Q1_badq_0, Q4_orphan_0)",
    ):
        assert expected in text
    assert "Q1 1, Q2 3, Q3 2, Q4 1" in ds.description  # songA; song_B, songE, broken; songC, ghost; songD


def test_options_and_layout_errors(tmp_path):
    root = make_emopia(tmp_path, quirks=False)
    v = load_dataset("emopia", root, render=False, sr=16000, soundfont="TimGM6mb", mode="minor", tempo=1.2,
                     cache_dir=tmp_path / "c")  # fmt: skip
    assert v.tracks[0].audio.parent.name == "TimGM6mb-sr16000-g0.5-p0-v1-t1.2-rev-minor-r1"
    with pytest.raises(DatasetError, match="emopia: mode must be"):
        load_dataset("emopia", root, mode="dorian")
    with pytest.raises(DatasetError, match="does not take option"):
        load_dataset("emopia", root, colour="blue")
    os.remove(root / "EMOPIA_1.0" / "label.csv")
    with pytest.raises(DatasetError, match=r"label.csv: missing file"):
        load_dataset("emopia", root, render=False)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "label.csv").write_text("ID,4Q,annotator\nQ1_a_0,1,A\n")
    with pytest.raises(DatasetError, match=r"midis: missing folder"):
        load_dataset("emopia", bare, render=False)


def test_sign_labels_feed_the_static_class_heads(tmp_path):
    root = make_emopia(tmp_path, quirks=False)
    ds = load_dataset("emopia", root, render=False, sign_labels=True, cache_dir=tmp_path / "c")
    assert ds.kinds == ("static", "tags")
    for t in ds.tracks:
        assert (t.valence, t.arousal) == (0.5 * t.meta["valence_sign"], 0.5 * t.meta["arousal_sign"])
        assert int(label_to_class([t.valence], [t.arousal], "quadrant")[0]) == t.meta["quadrant"] - 1
    plain = load_dataset("emopia", root, render=False, cache_dir=tmp_path / "c")
    assert plain.kinds == ("tags",)


def test_official_split(tmp_path):
    root = make_emopia(tmp_path)
    ds = load_dataset("emopia", root, render=False, cache_dir=tmp_path / "c")
    sp = emopia_split(ds)
    assert isinstance(sp, Split) and sp.name == "emopia"
    assert sp.train == ["Q1_songA_0", "Q1_songE_0", "Q2_broken_0", "Q2_song_B_1"]
    assert sp.val == ["Q3_songC_0"]
    assert sp.test == ["Q3_ghost_0", "Q4_songD_2"]
    train, test = sp  # unpacks like every Split
    assert train == sp.train and test == sp.test
    assert sp.notes == ("2 clips without a split left out",)
    # the usual way to the track lists
    assert [t.id for t in ds.select("tags", ids=sp.val)] == ["Q3_songC_0"]
    with pytest.raises(DatasetError, match="EMOPIA split"):
        emopia_split([t for t in ds.tracks if t.split != "test"])


@requires_fluidsynth
def test_render_failure_cache_reuse_and_content_key(tmp_path, monkeypatch):
    root = make_emopia(tmp_path)
    cache = tmp_path / "cache"
    ds = load_dataset("emopia", root, cache_dir=cache, jobs=2, progress=False)
    rendered = {t.id: t.audio for t in ds.tracks if t.audio is not None}
    assert sorted(rendered) == sorted(list(CLEAN) + ["Q1_badq_0", "Q1_songE_0", "Q4_orphan_0"])
    assert all(p.is_file() for p in rendered.values())
    import soundfile as sf

    info = sf.info(str(rendered["Q1_songA_0"]))
    assert info.samplerate == 22050 and info.channels == 1 and 1.0 < info.duration < 2.0
    broken = ds.track("Q2_broken_0")
    assert broken.audio is None
    assert any(i.startswith("Q2_broken_0.mid: not rendered: not a readable MIDI file") for i in ds.issues)
    # second load: everything is reused, nothing is rendered
    mtimes = {k: p.stat().st_mtime_ns for k, p in rendered.items()}

    def no_render(job):  # failures are retried (a fixed tool may render them); the rest is reused
        assert job[0] == "Q2_broken_0", f"rendered again: {job[0]}"
        return job[0], "still broken"

    monkeypatch.setattr(emopia_mod, "_render_job", no_render)
    again = load_dataset("emopia", root, cache_dir=cache, jobs=1)
    assert {t.id: t.audio for t in again.tracks if t.audio is not None} == rendered
    assert {k: p.stat().st_mtime_ns for k, p in rendered.items()} == mtimes
    assert "Q2_broken_0.mid: not rendered: still broken (audio=None)" in again.issues
    # a changed MIDI gets a new render path
    write_clip(root / "EMOPIA_1.0" / "midis" / "Q1_songA_0.mid", pitches=(72, 76))
    changed = load_dataset("emopia", root, cache_dir=cache, render=False)
    assert changed.track("Q1_songA_0").audio != rendered["Q1_songA_0"]
    assert not changed.track("Q1_songA_0").audio.exists()


def test_missing_fluidsynth(tmp_path, monkeypatch):
    root = make_emopia(tmp_path, quirks=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError) as e:
        load_dataset("emopia", root, cache_dir=tmp_path / "c", jobs=1)
    assert "\n" not in str(e.value) and "apt-get install" in str(e.value)
    ds = load_dataset("emopia", root, cache_dir=tmp_path / "c", render=False)
    assert any(i.startswith("render: fluidsynth not found") for i in ds.issues)


def test_datasets_check_does_not_render(tmp_path, monkeypatch, capsys):
    root = make_emopia(tmp_path)
    monkeypatch.setenv("MOODSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(emopia_mod, "_render_job", lambda job: pytest.fail("check rendered"))
    r = check_dataset("emopia", root)
    assert r.n_tracks == 9 and r.labelled["tags"] == 7
    assert sorted(r.to_render) == sorted(
        list(CLEAN) + ["Q1_badq_0", "Q1_songE_0", "Q2_broken_0", "Q4_orphan_0"]
    )
    assert [tid for tid, _ in r.unreadable_audio] == ["Q2_broken_0"]
    assert "not a readable MIDI file" in r.unreadable_audio[0][1]
    assert r.missing_audio == ["Q3_ghost_0"] and r.unlabelled_audio == ["Q1_badq_0", "Q4_orphan_0"]
    assert r.duration_range == pytest.approx((1.0, 1.0))
    assert r.splits["emopia (official)"] == "train 3, val 1, test 1"
    assert r.splits["release split"] == "test 1, train 3, val 1"
    assert not r.ok and any("duplicate ids" in i for i in r.issues)
    assert not (tmp_path / "cache" / "emopia").exists() or not any(
        (tmp_path / "cache" / "emopia").rglob("*.flac")
    )
    from moodscope.cli import main

    code = main(["datasets", "check", "emopia", "--root", str(root)])
    out = capsys.readouterr().out
    assert code == 1  # the quirks are issues
    assert "audio not rendered yet (rendered from MIDI on load; durations from the MIDI): 8" in out
    assert "Q1 1, Q2 3, Q3 2, Q4 1" in out and "emopia (official): train 3, val 1, test 1" in out


@requires_fluidsynth  # without fluidsynth or the soundfont the check notes it as an issue
def test_datasets_check_clean_tree_is_ok(tmp_path, monkeypatch):
    monkeypatch.setenv("MOODSCOPE_CACHE", str(tmp_path / "cache"))
    r = check_dataset("emopia", make_emopia(tmp_path, quirks=False))
    assert r.ok and r.issues == [] and len(r.to_render) == 4
    assert r.splits["emopia (official)"] == "train 2, val 1, test 1"
