"""Tests of the synthetic labelled corpus (moodscope.datasets.corpus).

Audio descriptors are computed here with numpy and librosa's filterbanks (moodscope.audio.features is not
used, so these tests stand on their own).
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import yaml

from moodscope.datasets.corpus import CUES, TAG_NAMES, label_curves, quadrant_tags, render_clip, synthesize
from moodscope.errors import DatasetError

SR = 44100
CUE_NAMES = [c.name for c in CUES]


# ------------------------------------------------------------------------------------------- helpers

_NFFT, _HOP = 4096, 1024
_MEL = librosa.filters.mel(sr=SR, n_fft=_NFFT, n_mels=128)
_CHROMA = librosa.filters.chroma(sr=SR, n_fft=_NFFT, tuning=0.0)
_CHROMA[:, : int(250 * _NFFT / SR)] = 0.0  # ignore the bass region
_MAJ = np.zeros((12, 12))
_MIN = np.zeros((12, 12))
for _r in range(12):
    _MAJ[_r, [_r, (_r + 4) % 12, (_r + 7) % 12]] = 1.0
    _MIN[_r, [_r, (_r + 3) % 12, (_r + 7) % 12]] = 1.0


def power_frames(y: np.ndarray) -> np.ndarray:
    """Power spectrogram, (frames, n_fft // 2 + 1), Hann window, hop 1024, centred."""
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, _NFFT // 2), _NFFT)[::_HOP]
    return np.abs(np.fft.rfft(frames * np.hanning(_NFFT), axis=1)) ** 2


def descriptors(p: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame descriptors of a power spectrogram (frames, bins)."""
    freqs = np.fft.rfftfreq(_NFFT, 1 / SR)
    chroma = p @ _CHROMA.T
    chroma /= chroma.sum(1, keepdims=True) + 1e-12
    major, minor = (chroma @ _MAJ.T).max(1), (chroma @ _MIN.T).max(1)
    tonal = (freqs > 250) & (freqs < 4000)
    return {
        "mel_db": 10 * np.log10(p @ _MEL.T + 1e-10),  # (frames, 128)
        "energy_db": 10 * np.log10(p.sum(1) + 1e-10),
        "major": major,
        "minor": minor,
        "triad_fit": np.maximum(major, minor),
        "centroid": (p * freqs).sum(1) / (p.sum(1) + 1e-12),
        "pitch_height": (p[:, tonal] * np.log2(freqs[tonal])).sum(1) / (p[:, tonal].sum(1) + 1e-12),
        "high_share": p[:, freqs > 6000].sum(1) / (p.sum(1) + 1e-12),
    }


def onset_count(y: np.ndarray) -> int:
    """Onsets, sensitive enough to catch legato re-strikes (delta 0.02, at least 50 ms apart)."""
    env = librosa.onset.onset_strength(y=y, sr=SR, hop_length=441)
    return len(librosa.onset.onset_detect(onset_envelope=env, sr=SR, hop_length=441, delta=0.02, wait=5))


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -------------------------------------------------------------------------------------------- labels


def test_label_curves_are_smooth_wide_and_seeded():
    v, a = label_curves(90, seed=3)
    assert v.shape == a.shape == (90,)
    assert np.abs(v).max() <= 0.9 and np.abs(a).max() <= 0.9
    # they sweep a good part of the range and move smoothly (0.5 s steps)
    assert np.ptp(v) > 0.6 and np.ptp(a) > 0.6
    assert np.abs(np.diff(v)).max() < 0.25 and np.abs(np.diff(a)).max() < 0.25
    v2, a2 = label_curves(90, seed=3)
    np.testing.assert_array_equal(v, v2)
    assert not np.allclose(v, label_curves(90, seed=4)[0])
    assert not np.allclose(v, a)
    with pytest.raises(ValueError):
        label_curves(0)


@pytest.mark.parametrize(
    "v, a, expected",
    [
        ([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], {"happy": 1, "angry": 0, "sad": 0, "calm": 0}),
        ([-0.5, -0.5, 0.2, 0.2], [0.3, 0.3, -0.1, -0.1], {"happy": 0, "angry": 1, "sad": 0, "calm": 1}),
        # 1 of 5 values (20 %) is below the 25 % rule
        (
            [0.1, 0.1, 0.1, 0.1, -0.1],
            [-0.2, -0.2, -0.2, -0.2, -0.3],
            {"happy": 0, "angry": 0, "sad": 0, "calm": 1},
        ),
        # zero counts as positive, as everywhere in moodscope (moodscope.emotion)
        ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], {"happy": 1, "angry": 0, "sad": 0, "calm": 0}),
    ],
)
def test_quadrant_tags_rule(v, a, expected):
    assert quadrant_tags(np.array(v), np.array(a)) == expected


# ------------------------------------------------------------------------------------------- one clip


def test_render_clip_shape_level_and_cues():
    v, a = label_curves(12, seed=0)
    y, cues = render_clip(v, a, seed=5)
    assert y.dtype == np.float32 and y.shape == (6 * SR,)
    assert np.all(np.isfinite(y)) and 0.05 < np.abs(y).max() < 0.99
    assert set(cues) == {*CUE_NAMES, "valence", "arousal"}
    for name, c in cues.items():
        assert c.shape == (12,), name
        assert np.all(np.abs(c) <= 1.0), name
    np.testing.assert_array_equal(cues["valence"], v)
    y2, _ = render_clip(v, a, seed=5)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(y, render_clip(v, a, seed=6)[0])


def test_labels_are_the_weighted_mix_of_their_cues():
    """With constant labels, sum_k w_k c_k equals the label wherever no cue is clipped.

    (Cues are 0.5 s averages; a segment whose averages stay within +-0.75 has no clipped sample.)
    """
    n = 60
    for label, value in (("valence", 0.3), ("arousal", -0.2)):
        v = np.full(n, value if label == "valence" else 0.0)
        a = np.full(n, value if label == "arousal" else 0.0)
        _, cues = render_clip(v, a, seed=11)
        group = [c for c in CUES if c.label == label]
        w = np.array([c.weight for c in group]) / sum(c.weight for c in group)
        stack = np.stack([cues[c.name] for c in group])  # (n_cues, n)
        unclipped = np.all(np.abs(stack) < 0.75, axis=0)
        assert unclipped.sum() > n // 4
        np.testing.assert_allclose((w[:, None] * stack).sum(0)[unclipped], value, atol=1e-9)
        # ... while each cue alone wanders: no cue is a copy of the label
        assert all(np.std(stack[k]) > 0.05 for k in range(len(group)))


def test_cue_override_pins_one_cue_and_keeps_the_others():
    v, a = label_curves(10, seed=1)
    _, base = render_clip(v, a, seed=2)
    _, pinned = render_clip(v, a, seed=2, cue_overrides={"mode": 1.0})
    np.testing.assert_array_equal(pinned["mode"], np.ones(10))
    for name in CUE_NAMES:
        if name != "mode":
            np.testing.assert_array_equal(pinned[name], base[name])
    _, curve = render_clip(v, a, seed=2, cue_overrides={"tempo": np.linspace(-1, 1, 10)})
    assert curve["tempo"][0] < -0.8 and curve["tempo"][-1] > 0.8


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cue_overrides": {"key": 1.0}}, "unknown cue"),
        ({"cue_overrides": {"mode": np.zeros(3)}}, "shape"),
        ({"cue_overrides": {"mode": np.nan}}, "NaN"),
        ({"sr": 8000}, "sr"),
    ],
)
def test_render_clip_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        render_clip(np.zeros(4), np.zeros(4), **kwargs)


@pytest.mark.parametrize(
    "v, a",
    [
        (np.zeros(4), np.zeros(5)),
        (np.zeros(0), np.zeros(0)),
        (np.full(4, 1.5), np.zeros(4)),
        (np.full(4, np.nan), np.zeros(4)),
    ],
)
def test_render_clip_rejects_bad_labels(v, a):
    with pytest.raises(ValueError):
        render_clip(v, a)


def _pinned_pair(name: str, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The same neutral clip (V = A = 0) with one cue pinned low (-0.9) and high (+0.9)."""
    v = a = np.zeros(n)
    lo, _ = render_clip(v, a, seed=21, cue_overrides={name: -0.9})
    hi, _ = render_clip(v, a, seed=21, cue_overrides={name: 0.9})
    return lo, hi


def test_loudness_cue_sets_the_level():
    lo, hi = _pinned_pair("loudness")
    rms_db = [10 * np.log10(np.mean(x[SR:-SR].astype(np.float64) ** 2)) for x in (lo, hi)]
    assert 9.0 < rms_db[1] - rms_db[0] < 12.6  # 6 dB per cue unit: 10.8 dB between -0.9 and +0.9


def test_mode_cue_switches_major_and_minor():
    lo, hi = (descriptors(power_frames(x)) for x in _pinned_pair("mode"))
    # chroma folds the harmonics (a minor triad also matches its relative major), so compare the two
    # renders: the major-template score gains over the minor one when the cue goes up
    assert np.mean(hi["major"] - hi["minor"]) > np.mean(lo["major"] - lo["minor"]) + 0.08


def test_consonance_cue_changes_triad_fit():
    lo, hi = (descriptors(power_frames(x)) for x in _pinned_pair("consonance"))
    assert np.mean(hi["triad_fit"]) > np.mean(lo["triad_fit"]) + 0.05


def test_register_cue_moves_pitch_up():
    lo, hi = (descriptors(power_frames(x)) for x in _pinned_pair("register"))
    semitones = 12 * (np.median(hi["pitch_height"]) - np.median(lo["pitch_height"]))
    assert semitones > 5.0


def test_brightness_cue_raises_the_centroid():
    lo, hi = (descriptors(power_frames(x)) for x in _pinned_pair("brightness"))
    assert np.median(hi["centroid"]) > 1.5 * np.median(lo["centroid"])


def test_percussion_cue_raises_the_drums():
    lo, hi = (descriptors(power_frames(x)) for x in _pinned_pair("percussion"))
    assert np.mean(hi["high_share"]) > 3 * np.mean(lo["high_share"])


@pytest.mark.parametrize("name", ["tempo", "density"])
def test_tempo_and_density_cues_add_onsets(name):
    lo, hi = _pinned_pair(name)
    assert onset_count(hi) > 1.4 * onset_count(lo)  # tempo: 76 -> 152 BPM; density: 0.2 -> 2.7 notes per beat


def test_articulation_cue_shortens_notes():
    lo, hi = (descriptors(power_frames(x)) for x in _pinned_pair("articulation"))
    # staccato: the level inside the tonal band drops between notes -> larger frame-to-frame swings
    swing = [np.mean(np.abs(np.diff(d["mel_db"][:, 40:100].mean(1)))) for d in (lo, hi)]
    assert swing[1] > 1.5 * swing[0]


# ------------------------------------------------------------------------------------------- data set


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "corpus"
    return synthesize(out, n_clips=3, duration=6.0, seed=7, workers=1, progress=False)


def test_layout_and_tables(small_corpus):
    root = small_corpus
    ids = [f"syn{i:04d}" for i in range(3)]
    assert sorted(p.name for p in (root / "audio").iterdir()) == [f"{t}.wav" for t in ids]
    for t in ids:
        info = sf.info(root / "audio" / f"{t}.wav")
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, 6 * SR, "PCM_16")

    head, static = read_csv(root / "static.csv")
    assert head == ["track_id", "valence", "arousal"]
    head, dynamic = read_csv(root / "dynamic.csv")
    assert head == ["track_id", "time_s", "valence", "arousal"]
    head, tags = read_csv(root / "tags.csv")
    assert head == ["track_id", *TAG_NAMES]
    head, cues = read_csv(root / "cues.csv")
    assert head == ["track_id", "time_s", *CUE_NAMES]
    assert [r[0] for r in static] == ids and [r[0] for r in tags] == ids

    curves = defaultdict(list)
    for tid, t, v, a in dynamic:
        curves[tid].append((float(t), float(v), float(a)))
        assert len(v.split(".")[1]) == 6
    for tid, (_, v, a) in zip(ids, static):
        c = np.array(curves[tid])
        np.testing.assert_array_equal(c[:, 0], np.arange(12) * 0.5)  # segment starts
        assert np.all(np.abs(c[:, 1:]) <= 1.0)
        # static label = mean of the dynamic curve
        assert abs(float(v) - c[:, 1].mean()) < 1e-6 and abs(float(a) - c[:, 2].mean()) < 1e-6
    for row in tags:
        c = np.array(curves[row[0]])
        assert [int(x) for x in row[1:]] == [quadrant_tags(c[:, 1], c[:, 2])[k] for k in TAG_NAMES]
    assert len(cues) == len(dynamic)
    assert all(-1.0 <= float(x) <= 1.0 for r in cues for x in r[2:])

    meta = yaml.safe_load((root / "dataset.yaml").read_text())
    assert meta["name"] == "synthetic" and meta["scale"] == {"min": -1, "max": 1}
    assert meta["seed"] == 7 and meta["n_clips"] == 3 and meta["generator_version"]
    assert [c["name"] for c in meta["cues"]] == CUE_NAMES
    assert not list(root.parent.glob(".corpus.*"))  # no temporary directory left behind


def test_dynamic_curves_move_within_clips(tmp_path):
    root = synthesize(tmp_path / "c", n_clips=4, duration=20.0, seed=1, workers=1, progress=False)
    _, dynamic = read_csv(root / "dynamic.csv")
    curves = defaultdict(list)
    for tid, _, v, a in dynamic:
        curves[tid].append((float(v), float(a)))
    for tid, c in curves.items():
        c = np.array(c)
        assert np.all(c.std(0) > 0.2), (tid, c.std(0))


def test_deterministic_for_a_seed_whatever_the_workers(small_corpus, tmp_path):
    again = synthesize(tmp_path / "again", n_clips=3, duration=6.0, seed=7, workers=2, progress=False)
    assert file_digests(again) == file_digests(small_corpus)
    other = synthesize(tmp_path / "other", n_clips=3, duration=6.0, seed=8, workers=1, progress=False)
    d0, d1 = file_digests(small_corpus), file_digests(other)
    assert d0.keys() == d1.keys()
    for name in ("audio/syn0000.wav", "dynamic.csv", "static.csv"):
        assert d0[name] != d1[name]


def test_replaces_a_previous_corpus_but_not_other_data(tmp_path):
    out = synthesize(tmp_path / "c", n_clips=1, duration=2.0, seed=0, workers=1, progress=False)
    synthesize(out, n_clips=2, duration=2.0, seed=0, workers=1, progress=False)
    assert len(list((out / "audio").iterdir())) == 2
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="mine"):
        synthesize(precious, n_clips=1, duration=2.0, progress=False)
    assert (precious / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "kwargs",
    [{"n_clips": 0}, {"duration": 2.2}, {"duration": 0.0}, {"fmt": "mp3"}, {"seed": -1}, {"sr": 8000}],
)
def test_synthesize_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        synthesize(tmp_path / "x", progress=False, **kwargs)
    assert not (tmp_path / "x").exists()


def test_flac_output(tmp_path):
    root = synthesize(tmp_path / "f", n_clips=1, duration=2.0, fmt="flac", workers=1, progress=True)
    y, sr = sf.read(root / "audio" / "syn0000.flac")
    assert sr == SR and len(y) == 2 * SR


# ---------------------------------------------------------------------------------------- learnability


def _window_features(root: Path, win_steps: int = 4):
    """Per 2 s window: 16 pooled log-Mel bands (mean, std), triad scores, level statistics; labels."""
    _, dynamic = read_csv(root / "dynamic.csv")
    curves = defaultdict(list)
    for tid, _, v, a in dynamic:
        curves[tid].append((float(v), float(a)))
    feats, loud, labels, groups = [], [], [], []
    fps = SR / _HOP
    for tid in sorted(curves):
        y, _ = sf.read(root / "audio" / f"{tid}.wav", dtype="float32")
        d = descriptors(power_frames(y))
        bands = d["mel_db"].reshape(len(d["mel_db"]), 16, 8).mean(2)
        lab = np.array(curves[tid])
        for w in range(len(lab) // win_steps):
            f0, f1 = int(w * win_steps * 0.5 * fps), int((w + 1) * win_steps * 0.5 * fps)
            s0, s1 = int(w * win_steps * 0.5 * SR), int((w + 1) * win_steps * 0.5 * SR)
            e = d["energy_db"][f0:f1]
            feats.append(
                np.concatenate(
                    [
                        bands[f0:f1].mean(0),
                        bands[f0:f1].std(0),
                        [
                            d["major"][f0:f1].mean(),
                            d["minor"][f0:f1].mean(),
                            e.std(),
                            np.abs(np.diff(e)).mean(),
                        ],
                    ]
                )
            )
            loud.append([10 * np.log10(np.mean(y[s0:s1].astype(np.float64) ** 2))])  # RMS in dB
            labels.append(lab[w * win_steps : (w + 1) * win_steps].mean(0))
            groups.append(tid)
    return np.array(feats), np.array(loud), np.array(labels), np.array(groups)


def _held_out_r2(x, y, groups) -> np.ndarray:
    """R^2 of (valence, arousal) predicted for clips never seen in training (4-fold by clip)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12)))
    pred = cross_val_predict(model, x, y, cv=GroupKFold(4), groups=groups)
    return np.array([r2_score(y[:, i], pred[:, i]) for i in range(2)])


def test_labels_are_learnable_but_not_from_loudness_alone(tmp_path):
    root = synthesize(tmp_path / "learn", n_clips=12, duration=20.0, seed=0, workers=2, progress=False)
    x, loud, y, groups = _window_features(root)
    assert len(y) == 120
    r2_all = _held_out_r2(x, y, groups)
    r2_loud = _held_out_r2(loud, y, groups)
    print(
        f"held-out R^2 (valence, arousal): all features {r2_all.round(3)}, loudness alone {r2_loud.round(3)}"
    )
    assert r2_all[0] >= 0.5 and r2_all[1] >= 0.5
    assert r2_loud[0] < 0.3  # loudness says nothing about valence
    assert r2_loud[1] < r2_all[1] - 0.15  # ... and only part of arousal


def test_cue_jitter_scales_how_closely_cues_follow_their_labels():
    """``cue_jitter`` (the learning tests' static corpus uses 0.5): the same labels, each cue nearer to its label
    as the jitter shrinks, and every cue equal to it at 0 (up to clipping and resampling)."""
    from moodscope.datasets.corpus import CUES, label_curves, render_clip

    v, a = label_curves(20, seed=3)
    spread = {}
    for jitter in (1.0, 0.5, 0.0):
        _, cues = render_clip(v, a, sr=16000, seed=4, cue_jitter=jitter)
        assert np.array_equal(cues["valence"], v) and np.array_equal(cues["arousal"], a)
        spread[jitter] = np.mean([np.abs(cues[c.name] - cues[c.label]).mean() for c in CUES])
    assert (
        spread[0.0] < 0.01 < spread[0.5] < 0.7 * spread[1.0]
    )  # 0: the 2 Hz average of the control-rate curve
    with pytest.raises(ValueError, match="cue_jitter"):
        render_clip(v, a, sr=16000, cue_jitter=-1.0)
