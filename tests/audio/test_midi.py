"""moodscope.audio.midi: transforms, key estimation, parallel mode, rendering with FluidSynth, missing tools.

The MIDI files are written here with mido (a few notes, 1-3 s). Rendering tests skip, with the apt line, where
``fluidsynth`` or a soundfont is not installed.
"""

from __future__ import annotations

import sys

import mido
import numpy as np
import pytest
import soundfile as sf

from moodscope.audio import midi, midi_render
from moodscope.errors import AudioError, MissingToolError, MoodscopeError
from tools import needs, skip_unless

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]
C_MAJOR_CHORDS = [(60, 64, 67), (65, 69, 72), (67, 71, 74), (60, 64, 67)]  # I IV V I
C_MINOR_SCALE = [60, 62, 63, 65, 67, 68, 70, 72]
C_MINOR_CHORDS = [(60, 63, 67), (65, 68, 72), (67, 70, 74), (60, 63, 67)]  # i iv v i


def make_midi(
    events: list[tuple[int, ...]] | list[int],
    *,
    beats: float = 0.5,
    velocity: int = 90,
    tempo: int | None = None,
    program: int | None = None,
    channel: int = 0,
) -> mido.MidiFile:
    """One track: each event (a pitch or a chord) sounds for ``beats`` beats, one after another."""
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    if tempo is not None:
        tr.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    if program is not None:
        tr.append(mido.Message("program_change", channel=channel, program=program, time=0))
    ticks = int(480 * beats)
    for ev in events:
        chord = (ev,) if isinstance(ev, int) else tuple(ev)
        for p in chord:
            tr.append(mido.Message("note_on", channel=channel, note=p, velocity=velocity, time=0))
        for k, p in enumerate(chord):
            tr.append(
                mido.Message("note_off", channel=channel, note=p, velocity=0, time=ticks if k == 0 else 0)
            )
    tr.append(mido.MetaMessage("end_of_track", time=0))
    return mid


def pitch_classes(mid) -> set[int]:
    return {n.pitch % 12 for n in midi.notes(mid)}


def onsets(mid) -> list[tuple[float, int]]:
    return sorted((round(n.start_s, 6), n.pitch) for n in midi.notes(mid))


#: rendering with the default soundfont, and with TimGM6mb
FLUIDR3 = ("fluidsynth", "soundfont:FluidR3_GM")
TIMGM6MB = ("fluidsynth", "soundfont:TimGM6mb")


# ------------------------------------------------------------------------------------------------------------
# transforms
# ------------------------------------------------------------------------------------------------------------
def test_scale_tempo_scales_durations_and_keeps_input():
    mid = make_midi(C_MAJOR_SCALE, tempo=600_000)  # 100 bpm, 8 x 0.5 beats = 2.4 s
    assert midi.midi_duration(mid) == pytest.approx(2.4)
    fast = midi.scale_tempo(mid, 2.0)
    assert midi.midi_duration(fast) == pytest.approx(1.2)
    assert midi.midi_duration(midi.scale_tempo(mid, 0.5)) == pytest.approx(4.8)
    assert midi.midi_duration(mid) == pytest.approx(2.4)  # the input is not changed
    assert [p for _, p in onsets(fast)] == [p for _, p in onsets(mid)]
    with pytest.raises(ValueError):
        midi.scale_tempo(mid, 0)


def test_scale_tempo_inserts_a_tempo_when_there_is_none():
    mid = make_midi(C_MAJOR_SCALE)  # no set_tempo: 120 bpm, 2.0 s
    assert midi.midi_duration(mid) == pytest.approx(2.0)
    fast = midi.scale_tempo(mid, 2.0)
    tempos = [m.tempo for tr in fast.tracks for m in tr if m.type == "set_tempo"]
    assert tempos == [250_000]
    assert midi.midi_duration(fast) == pytest.approx(1.0)


def test_scale_velocity_clips_and_keeps_note_offs():
    mid = make_midi(C_MAJOR_SCALE, velocity=100)
    loud = midi.scale_velocity(mid, 2.0)
    soft = midi.scale_velocity(mid, 0.001)
    vel = lambda m: [x.velocity for tr in m.tracks for x in tr if x.type == "note_on"]  # noqa: E731
    assert set(vel(loud)) == {127} and set(vel(soft)) == {1}
    assert set(vel(midi.scale_velocity(mid, 0.5))) == {50}
    # note-on with velocity 0 (a note end) stays a note end
    ended = make_midi([60])
    ended.tracks[0][1] = mido.Message("note_on", note=60, velocity=0, time=480)
    assert [x.velocity for x in midi.scale_velocity(ended, 3.0).tracks[0] if x.type == "note_on"] == [127, 0]
    assert len(midi.notes(loud)) == len(midi.notes(mid)) == 8


def test_set_program_replaces_programs_and_leaves_drums():
    mid = make_midi(C_MAJOR_SCALE[:3], program=40)
    mid.tracks[0].insert(0, mido.Message("program_change", channel=9, program=5, time=0))
    mid.tracks[0].insert(1, mido.Message("note_on", channel=9, note=36, velocity=80, time=0))
    out = midi.set_program(mid, 0)
    progs = sorted((m.channel, m.program) for tr in out.tracks for m in tr if m.type == "program_change")
    assert progs == [(0, 0), (9, 5)]
    assert midi.midi_duration(out) == pytest.approx(midi.midi_duration(mid))
    with pytest.raises(ValueError):
        midi.set_program(mid, 128)


def test_set_program_keeps_timing_when_dropping_a_timed_program_change():
    mid = make_midi([60, 62])
    mid.tracks[0].insert(1, mido.Message("program_change", program=12, time=240))  # between the notes
    out = midi.set_program(mid, 3)
    assert onsets(out) == onsets(mid)


def test_transpose_folds_out_of_range_notes_by_octaves():
    mid = make_midi([60, 64, 120])
    up = midi.transpose(mid, 12)
    assert [p for _, p in onsets(up)] == [72, 76, 120]  # 132 folds back to 120
    down = midi.transpose(mid, -3)
    assert [p for _, p in onsets(down)] == [57, 61, 117]


# ------------------------------------------------------------------------------------------------------------
# key and mode
# ------------------------------------------------------------------------------------------------------------
def test_estimate_key_major_and_minor():
    assert midi.estimate_key(make_midi(C_MAJOR_SCALE + C_MAJOR_CHORDS)) == (0, "major")
    assert midi.estimate_key(make_midi(C_MINOR_SCALE + C_MINOR_CHORDS)) == (0, "minor")
    g_major = midi.transpose(make_midi(C_MAJOR_SCALE + C_MAJOR_CHORDS), 7)
    assert midi.estimate_key(g_major).name == "G major"
    a_minor = midi.transpose(make_midi(C_MINOR_SCALE + C_MINOR_CHORDS), -3)
    assert midi.estimate_key(a_minor) == (9, "minor")
    with pytest.raises(ValueError, match="no pitched notes"):
        midi.estimate_key(make_midi([]))


def test_estimate_key_weights_by_duration():
    # the same four pitches, A C E G, each played twice: held long on A C E it is A minor, on C E G C major
    def piece(long: set[int]) -> mido.MidiFile:
        mid = make_midi([])
        tr = mido.MidiTrack()
        for p in [57, 60, 64, 67] * 2:
            tr.append(mido.Message("note_on", note=p, velocity=80, time=0))
            tr.append(mido.Message("note_off", note=p, velocity=0, time=960 if p in long else 240))
        mid.tracks[0] = tr
        return mid

    assert midi.estimate_key(piece({57, 60, 64})) == (9, "minor")
    assert midi.estimate_key(piece({60, 64, 67})) == (0, "major")


def test_to_mode_major_to_minor_and_back():
    piece = make_midi(C_MAJOR_SCALE + C_MAJOR_CHORDS)
    minor, key = midi.to_mode(piece, "minor")
    assert key == (0, "major")
    assert pitch_classes(minor) == {0, 2, 3, 5, 7, 8, 10}  # C D Eb F G Ab Bb
    assert midi.estimate_key(minor) == (0, "minor")
    back, key2 = midi.to_mode(minor, "major")
    assert key2 == (0, "minor")
    assert onsets(back) == onsets(piece)
    # already in the target mode: unchanged, and the returned key says so
    same, key3 = midi.to_mode(piece, "major")
    assert key3.mode == "major" and onsets(same) == onsets(piece)
    assert same is not piece
    with pytest.raises(ValueError):
        midi.to_mode(piece, "dorian")


def test_to_mode_with_a_given_key_and_drums_untouched():
    piece = make_midi([64, 69, 71])
    piece.tracks[0].insert(0, mido.Message("note_on", channel=9, note=64, velocity=80, time=0))
    out, key = midi.to_mode(piece, "minor", key=midi.Key(0, "major"))
    pitches = sorted((n.channel, n.pitch) for n in midi.notes(out))
    assert pitches == [(0, 63), (0, 68), (0, 70), (9, 64)]


# ------------------------------------------------------------------------------------------------------------
# variants
# ------------------------------------------------------------------------------------------------------------
def test_render_variant_key_is_stable_and_distinct(tmp_path):
    v = midi_render.RenderVariant()
    assert v.key() == "FluidR3_GM-sr22050-g0.5-p0-v1-t1-rev-r1"
    assert midi_render.RenderVariant(soundfont="timgm6mb").key().startswith("TimGM6mb-")
    keys = {
        midi_render.RenderVariant(**kw).key()
        for kw in ({}, {"sr": 16000}, {"gain": 0.6}, {"program": None}, {"velocity": 0.8}, {"tempo": 1.25},
                   {"reverb": False}, {"chorus": True}, {"mode": "minor"}, {"soundfont": "TimGM6mb"})
    }  # fmt: skip
    assert len(keys) == 10
    sf2 = tmp_path / "my font.sf2"
    sf2.write_bytes(b"x")
    k = midi_render.RenderVariant(soundfont=str(sf2)).key()
    assert k.startswith("my_font.") and " " not in k
    with pytest.raises(ValueError):
        midi_render.RenderVariant(mode="lydian")
    with pytest.raises(ValueError):
        midi_render.RenderVariant(tempo=0)


def test_render_variant_apply():
    v = midi_render.RenderVariant(program=5, velocity=0.5, tempo=2.0, mode="minor")
    piece = make_midi(C_MAJOR_SCALE + C_MAJOR_CHORDS, velocity=100, program=0)
    out = v.apply(piece)
    assert midi.midi_duration(out) == pytest.approx(midi.midi_duration(piece) / 2)
    assert {n.velocity for n in midi.notes(out)} == {50}
    assert [m.program for tr in out.tracks for m in tr if m.type == "program_change"] == [5]
    assert 4 not in pitch_classes(out) and 3 in pitch_classes(out)


# ------------------------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------------------------
def _sounding_end(y: np.ndarray, sr: int) -> float:
    level = np.abs(y)
    return float(np.flatnonzero(level > 0.01 * level.max())[-1] + 1) / sr


@pytest.fixture(scope="module")
def base_render(tmp_path_factory):
    skip_unless(*FLUIDR3)
    d = tmp_path_factory.mktemp("render")
    piece = make_midi(C_MAJOR_SCALE + C_MAJOR_CHORDS[:2], tempo=600_000)  # 10 x 0.3 s = 3.0 s
    path = d / "piece.mid"
    piece.save(str(path))
    out = midi_render.render(path, d / "base.flac")
    y, sr = sf.read(str(out))
    return piece, y, sr


@needs(*FLUIDR3)
def test_render_fluidr3_duration_rate_and_mono(base_render):
    piece, y, sr = base_render
    assert sr == 22050 and y.ndim == 1
    d = midi.midi_duration(piece)
    assert d == pytest.approx(3.0)
    # FluidSynth's trailing silence is cut: the file ends shortly after the last note's release
    assert d < len(y) / sr < d + 1.5
    assert abs(_sounding_end(y, sr) - d) < 0.6
    assert 0.01 < np.abs(y).max() < 0.99


@needs(*FLUIDR3)
def test_render_tempo_doubling_halves_the_sounding_duration(base_render, tmp_path):
    piece, y, sr = base_render
    fast = midi.scale_tempo(piece, 2.0)  # 1.5 s of notes
    y2, sr2 = sf.read(str(midi_render.render(fast, tmp_path / "fast.wav")))
    end1, end2 = _sounding_end(y, sr), _sounding_end(y2, sr2)
    assert abs(end2 - 1.5) < 0.6 and abs(end1 - 3.0) < 0.6
    assert 0.4 < (end2 - 0.3) / (end1 - 0.3) < 0.6  # release of the last notes (~0.3 s) taken off
    assert len(y2) < len(y)


@needs(*FLUIDR3)
def test_render_velocity_scaling_lowers_rms(base_render, tmp_path):
    piece, y, sr = base_render
    y2, _ = sf.read(str(midi_render.render(midi.scale_velocity(piece, 0.3), tmp_path / "soft.flac")))
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(y2) < 0.6 * rms(y)


@needs(*TIMGM6MB)
def test_render_timgm6mb_at_16k_stereo_wav(tmp_path):
    piece = make_midi(C_MAJOR_SCALE[:4], tempo=500_000)  # 1.0 s
    out = midi_render.render(
        piece, tmp_path / "t.wav", soundfont="TimGM6mb", sr=16000, mono=False, reverb=False
    )
    y, sr = sf.read(str(out))
    assert sr == 16000 and y.shape[1] == 2
    assert 1.0 < len(y) / sr < 2.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.wav"]  # no temporary file left


@needs(*FLUIDR3)
def test_render_variant_render_and_errors(tmp_path):
    piece = make_midi(C_MAJOR_SCALE[:2])
    out = midi_render.RenderVariant(sr=16000, tempo=2.0).render(piece, tmp_path / "v.flac")
    assert sf.info(str(out)).samplerate == 16000
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage, not a MIDI file")
    with pytest.raises(AudioError, match="bad.mid: not a readable MIDI file"):
        midi_render.render(bad, tmp_path / "bad.flac")
    with pytest.raises(AudioError, match="no notes to render"):
        midi_render.render(make_midi([]), tmp_path / "empty.flac")
    with pytest.raises(ValueError, match=r"\.wav or \.flac"):
        midi_render.render(piece, tmp_path / "x.mp3")
    assert not (tmp_path / "bad.flac").exists()


# ------------------------------------------------------------------------------------------------------------
# missing tools
# ------------------------------------------------------------------------------------------------------------
def test_missing_fluidsynth_is_one_line_with_the_apt_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without fluidsynth
    with pytest.raises(MissingToolError) as e:
        midi_render.render(make_midi([60]), tmp_path / "x.flac")
    msg = str(e.value)
    assert "\n" not in msg and isinstance(e.value, MoodscopeError)
    assert msg.startswith("fluidsynth not found")
    assert "apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm" in msg


def test_missing_soundfont_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(midi_render, "SOUNDFONT_DIRS", ())
    monkeypatch.setenv("MOODSCOPE_SOUNDFONTS", str(tmp_path))
    with pytest.raises(MissingToolError, match="timgm6mb-soundfont") as e:
        midi_render.find_soundfont("TimGM6mb")
    assert "\n" not in str(e.value)
    with pytest.raises(MissingToolError, match="fluid-soundfont-gm"):
        midi_render.find_soundfont("FluidR3_GM")
    with pytest.raises(MissingToolError, match="nope.sf2 not found"):
        midi_render.find_soundfont(tmp_path / "nope.sf2")
    (tmp_path / "FluidR3_GM.sf2").write_bytes(b"x")  # found through $MOODSCOPE_SOUNDFONTS
    assert midi_render.find_soundfont("fluidr3_gm") == tmp_path / "FluidR3_GM.sf2"


def test_missing_mido_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "mido", None)
    with pytest.raises(MissingToolError, match=r"mido not installed: .*pip install 'mido>=1.3'"):
        midi.read_midi(__file__)


def test_fluidsynth_failure_names_the_file(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "fluidsynth"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'fluidsynth: error: something broke' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    sf2 = tmp_path / "x.sf2"
    sf2.write_bytes(b"x")
    path = tmp_path / "song.mid"
    make_midi([60]).save(str(path))
    with pytest.raises(AudioError) as e:
        midi_render.render(path, tmp_path / "out.flac", soundfont=str(sf2))
    assert str(e.value) == f"{path}: fluidsynth failed (exit 3): fluidsynth: error: something broke"
    assert not any(p.suffix in (".flac", ".tmp") for p in tmp_path.iterdir())


def test_midi_module_imports_without_mido():
    # `import moodscope.audio.midi` (and so `moodscope.datasets`) does not import mido by itself
    import subprocess

    code = "import sys, moodscope.datasets, moodscope.audio.midi; print('mido' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
