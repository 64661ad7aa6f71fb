"""The bundled default model: what it says about itself, what it returns, and its cues on sampled-piano audio.

The cue test renders the same pieces in major and in the parallel minor, slower and faster, softer and louder
(FluidSynth, FluidR3_GM piano), and asks the default model for each: valence must rise from minor to major,
arousal with tempo, on most pieces (the velocity's effect is printed). The level tests play clips at -30 to
+10 dB: nothing may change. The pieces are the first clips of EMOPIA's official test
split when the release is found (``$MOODSCOPE_EMOPIA``, or ``../shared/data/emopia`` beside the repository),
otherwise short piano pieces written here; the test prints which.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

import moodscope
from moodscope.audio import midi, midi_render
from moodscope.audio.decode import load_audio
from moodscope.inference.predictor import bundled_model_path
from tools import needs

pytestmark = pytest.mark.skipif(
    not bundled_model_path("default").is_file(), reason="no bundled default model in this checkout"
)

N_PIECES = 10
CLIP_S = 20.0
#: "on most pieces": at least this fraction of the pieces moves the right way for each cue
MOST = 0.7


def _emopia_root() -> Path | None:
    env = os.environ.get("MOODSCOPE_EMOPIA")
    for cand in ([Path(env)] if env else []) + [
        Path(__file__).resolve().parents[3] / "shared" / "data" / "emopia"
    ]:
        if (cand / "split" / "test_clip.csv").is_file() and (cand / "midis").is_dir():
            return cand
    return None


@pytest.fixture(scope="module")
def model():
    return moodscope.load_model()


def test_default_model_says_what_it_was_trained_on(model):
    info = model.bundle.info
    assert model.model.model_name == "musicnn_va"
    text = " ".join(str(info.get(k, "")) for k in ("trained_on", "licences", "description"))
    assert "EMOPIA" in text and "CC BY-NC-SA 4.0" in text
    assert "MusiCNN" in text and "ISC" in text
    measured = info["measured"]
    assert measured["emopia_test"]["quadrant_accuracy"]["mean"] > 0.25  # the numbers it was shipped with
    # issue 23: real recordings (4Q, research / non-commercial), level-invariant, AllMusic mood tags
    assert "4Q" in info["trained_on"] and "4Q" in info["licences"] and "non-commercial" in info["licences"]
    assert model.model.model_args["loudness_lufs"] is not None
    assert measured["fourq_cv"]["quadrant_accuracy"]["mean"] > 0.25
    assert info["moods_vocabulary"] == model.model.moods and len(model.model.moods) >= 20
    # issue 24: the listeners' movement learnt from VGMIDI's curves (research use), measured per piece
    assert "VGMIDI" in info["trained_on"] and "VGMIDI" in info["licences"]
    assert model.model.motion is not None and float(model.model.motion.weight.abs().max()) > 0
    assert measured["vgmidi_cv"]["ours"]["arousal_piece_pcc"] > 0.0


def test_default_model_gives_everything_predict_promises(model, tmp_path):
    import soundfile as sf

    t = np.arange(int(16000 * 7.3)) / 16000
    y = 0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    sf.write(tmp_path / "tone.wav", y.astype(np.float32), 16000)
    r = model.predict(tmp_path / "tone.wav")
    assert r.dynamic["hop_s"] == 0.5 and len(r.dynamic["valence"]) == 14
    assert np.isclose(r.static["valence"], np.mean(r.dynamic["valence"]), atol=1e-6)
    assert r.quadrant and set(r.tags) >= {"happy", "sad"} and all(0 <= p <= 1 for p in r.tags.values())
    q = r.extra["quadrant_probabilities"]
    assert abs(sum(q.values()) - 1) < 1e-3
    # the human-labelled mood tags (AllMusic's moods of 4Q): probabilities, in the JSON as "moods"
    moods = r.to_dict()["moods"]
    assert list(moods) == model.model.moods and all(0 <= p <= 1 for p in moods.values())
    # a file and the same audio as an array give the same result
    r2 = model.predict(load_audio(tmp_path / "tone.wav", sr=16000), sr=16000)
    assert np.allclose(r2.dynamic["arousal"], r.dynamic["arousal"], atol=1e-5)


def _written_pieces(n: int):
    """Short piano pieces in major keys: a I-vi-IV-V-I progression as held chords (third on top) under an arpeggio
    of the chord tones (root-third-fifth-third), so the third that a change of mode moves is always sounding."""
    import mido

    rng = np.random.default_rng(0)
    out = []
    scale = [0, 2, 4, 5, 7, 9, 11]
    for k in range(n):
        tonic = 55 + int(rng.integers(0, 12))
        mid = mido.MidiFile(ticks_per_beat=480)
        tr = mido.MidiTrack()
        mid.tracks.append(tr)
        tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(int(rng.integers(80, 121)))))
        events = []  # (tick, on/off, pitch, velocity)
        for bar, degree in enumerate([0, 5, 3, 4, 0] * 2):
            t0 = bar * 4 * 480

            def tone(step, octave=0, degree=degree, tonic=tonic):
                d = degree + step
                return tonic + scale[d % 7] + 12 * (d // 7 + octave)

            for p in (tone(0, -1), tone(4, -1), tone(2)):  # root and fifth below, the third on top
                events += [(t0, 1, p, 60), (t0 + 4 * 480 - 10, 0, p, 0)]
            for e, step in enumerate([0, 2, 4, 2] * 2):
                p = tone(step, 1)
                events += [(t0 + e * 240, 1, p, 80), (t0 + e * 240 + 230, 0, p, 0)]
        events.sort(key=lambda e: (e[0], e[1]))
        last = 0
        for tick, on, p, v in events:
            tr.append(mido.Message("note_on" if on else "note_off", note=p, velocity=v, time=tick - last))
            last = tick
        out.append((f"written_{k}", mid))
    return out


def _pieces():
    root = _emopia_root()
    if root is None:
        return "written piano pieces", _written_pieces(N_PIECES)
    with open(root / "split" / "test_clip.csv", newline="") as f:
        names = sorted(r["clip_name"].strip().removesuffix(".mid") for r in csv.DictReader(f))
    return f"EMOPIA test clips ({root})", [
        (n, midi.read_midi(root / "midis" / f"{n}.mid")) for n in names[:N_PIECES]
    ]


@pytest.mark.slow
@needs(
    "fluidsynth", "soundfont:FluidR3_GM"
)  # skipped with the reason (pytest -ra lists it); CI installs both
def test_default_model_cues_on_sampled_piano(model, tmp_path):
    source, pieces = _pieces()

    def static(mid, name):
        path = midi_render.render(mid, tmp_path / f"{name}.wav", sr=16000)
        y = load_audio(path, sr=16000)[: int(CLIP_S * 16000)]
        r = model.predict(y, sr=16000)
        return r.static["valence"], r.static["arousal"]

    rows = []
    for name, mid in pieces:
        key = midi.estimate_key(mid)
        other, _ = midi.to_mode(mid, "minor" if key.mode == "major" else "major", key=key)
        major, minor = (mid, other) if key.mode == "major" else (other, mid)
        v_major, _ = static(major, f"{name}_major")
        v_minor, _ = static(minor, f"{name}_minor")
        _, a_slow = static(midi.scale_tempo(mid, 0.75), f"{name}_slow")
        _, a_fast = static(midi.scale_tempo(mid, 1.33), f"{name}_fast")
        _, a_soft = static(midi.scale_velocity(mid, 0.6), f"{name}_soft")
        _, a_loud = static(midi.scale_velocity(mid, 1.4), f"{name}_loud")
        rows.append((v_major - v_minor, a_fast - a_slow, a_loud - a_soft))
    d = np.array(rows)
    frac = (d > 0).mean(0)
    print(
        f"\n{source}: {len(rows)} pieces; fraction moving the right way: mode {frac[0]:.2f}, "
        f"tempo {frac[1]:.2f}, loudness {frac[2]:.2f}; mean change {np.round(d.mean(0), 3)}"
    )
    assert frac[0] >= MOST, f"valence rose from minor to major on {frac[0]:.0%} of the pieces"
    assert frac[1] >= MOST, f"arousal rose with tempo on {frac[1]:.0%} of the pieces"
    # Velocity (softer/louder playing) is printed, not asserted. Before issue 23 the model rose with it on 10 of
    # 10 pieces -- by hearing the level, which the issue forbids: the model now brings every track to -14 LUFS,
    # so only the brighter timbre of harder playing is left, and it does not follow that (3 of 10 on the
    # bundled model). The level tests below assert the opposite claim: the playback level changes nothing.


@pytest.mark.slow
def test_default_model_curve_follows_the_synthetic_corpus(model, tmp_path):
    """ "Keep the curve alive": per-song curve CCC on the demo's 8 held-out songs of the seed-0 corpus, which the
    default model never heard (it trained on the corpus of seed 1), stays >= 0.6 (arousal) and >= 0.4 (valence)."""
    from moodscope.datasets import load_dataset
    from moodscope.datasets.corpus import synthesize
    from moodscope.demo import demo_config
    from moodscope.tasks import Item
    from moodscope.training.data import make_folds, tracks_to_items

    root = synthesize(tmp_path / "corpus", n_clips=48, duration=45.0, seed=0, progress=False)
    ds = load_dataset("folder", root)
    stubs = [Item(id=t.id, feats=np.zeros((1, 1), np.float32)) for t in ds.tracks]
    held_out = set(make_folds(demo_config(root), ds, stubs)[0].test)
    items, _ = tracks_to_items([t for t in ds.tracks if t.id in held_out], model.features, progress=False)
    assert len(items) == 8
    m = model.task.evaluate(items, [model.task.predict_item(model.model, it) for it in items])
    print({k: round(float(v), 3) for k, v in m.items()})
    assert m["arousal_ccc"] >= 0.6 and m["valence_ccc"] >= 0.4


#: playback gains of the level test (dB): from 30 dB quieter to 10 dB louder, float samples (nothing clips)
GAINS_DB = (-30.0, -20.0, -10.0, 10.0)


def _level_moves(model, clips, sr):
    """Largest change of static valence/arousal over GAINS_DB, and the clips whose quadrant changed."""
    worst, moved = 0.0, []
    for name, y in clips:
        base = model.predict(y, sr=sr)
        for g in GAINS_DB:
            r = model.predict(y * np.float32(10.0 ** (g / 20.0)), sr=sr)
            d = max(abs(r.static[k] - base.static[k]) for k in ("valence", "arousal"))
            worst = max(worst, d)
            if r.quadrant != base.quadrant:
                moved.append(f"{name} at {g:+.0f} dB: {base.quadrant} -> {r.quadrant}")
    return worst, moved


@pytest.mark.slow
def test_default_model_does_not_move_with_playback_level(model, tmp_path):
    """Issue 23: any gain from -30 dB to +10 dB changes static valence/arousal by < 0.05 and no clip's quadrant
    (the model brings every track to the same integrated loudness before its front end). Synthetic clips of
    the built-in corpus, whose loudness differs between clips by design (-30 to -18 dBFS RMS)."""
    from moodscope.datasets.corpus import synthesize

    root = synthesize(tmp_path / "corpus", n_clips=4, duration=15.0, seed=3, progress=False)
    clips = [(p.stem, load_audio(p, sr=16000)) for p in sorted((root / "audio").glob("*.wav"))]
    worst, moved = _level_moves(model, clips, 16000)
    print(f"\nlevel test, {len(clips)} synthetic clips x {len(GAINS_DB)} gains: largest change {worst:.4f}")
    assert worst < 0.05 and not moved, (worst, moved)


@pytest.mark.slow
@needs("fluidsynth", "soundfont:FluidR3_GM")
def test_default_model_does_not_move_with_playback_level_piano(model, tmp_path):
    """The level test on sampled piano (FluidSynth renders sit near -37 dBFS, far below mastered music)."""
    clips = []
    for name, mid in _written_pieces(3):
        path = midi_render.render(mid, tmp_path / f"{name}.wav", sr=16000)
        clips.append((name, load_audio(path, sr=16000)[: int(CLIP_S * 16000)]))
    worst, moved = _level_moves(model, clips, 16000)
    print(f"\nlevel test, {len(clips)} piano renders x {len(GAINS_DB)} gains: largest change {worst:.4f}")
    assert worst < 0.05 and not moved, (worst, moved)


@needs("fluidsynth", "soundfont:FluidR3_GM")
def test_default_model_gate_tells_synthetic_audio_from_piano(model, tmp_path):
    """The track-level movement's gate (issue 24): the synthetic corpus's songs keep the sliding window's movement
    (the gate opens), sampled piano -- the listeners' domain -- gets the movement learnt from VGMIDI (it stays
    closed); the piano level's gate opens on the piano only. Neither audio was heard in training (corpus seed 3;
    pieces written here)."""
    import torch

    from moodscope.datasets.corpus import synthesize
    from moodscope.training.data import tracks_to_items

    root = synthesize(tmp_path / "corpus", n_clips=4, duration=30.0, seed=3, progress=False)
    from moodscope.datasets import load_dataset

    syn, _ = tracks_to_items(load_dataset("folder", root).tracks, model.features, progress=False)
    piano = []
    for name, mid in _written_pieces(3):
        path = midi_render.render(mid, tmp_path / f"{name}.wav", sr=16000)
        piano.append(path)
    from moodscope.tracks import Track

    pian, _ = tracks_to_items([Track(id=p.stem, audio=p) for p in piano], model.features, progress=False)
    m = model.model

    def p_syn(it):
        with torch.no_grad():
            return float(torch.sigmoid(m.domain(m.track_parts(it.feats)[1])).item())

    ps, pp = [p_syn(it) for it in syn], [p_syn(it) for it in pian]
    print(f"\ngate: synthetic {np.round(ps, 3).tolist()}, piano {np.round(pp, 3).tolist()}")
    assert min(ps) > 0.5 > max(pp)

    # the piano level's gate the other way round: open on the piano, closed on the corpus's songs
    def p_piano(it):
        with torch.no_grad():
            return float(m.piano(m.track_parts(it.feats)[1])[1].item())

    qs, qp = [p_piano(it) for it in syn], [p_piano(it) for it in pian]
    print(f"piano level's gate: synthetic {np.round(qs, 3).tolist()}, piano {np.round(qp, 3).tolist()}")
    assert min(qp) > 0.5 > max(qs)
