"""predict: the Python API, the output schema, files and folders, bad files, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import make_tone, requires_native_bf16
from moodscope.cli import main
from moodscope.config import FeatureConfig
from moodscope.emotion import quadrant_name
from moodscope.errors import ConfigError
from moodscope.inference.predictor import Predictor
from moodscope.library.batch import predict_paths
from moodscope.modelfile import save_model
from moodscope.models import build


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    m = build("damff", width=0.0625, embed_dim=8, lstm_hidden=4).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    info = {
        "description": "tiny test model",
        "task": {"kind": "dynamic", "window_s": 30.0, "hop_valence": 0.5, "hop_arousal": 2.5},
    }
    save_model(path, m, FeatureConfig(), info)
    return path


def _song(seconds: float, seed: int = 0) -> np.ndarray:
    y = make_tone(440.0, seconds, noise=0.05, seed=seed) + make_tone(1250.0, seconds, amp=0.2, seed=seed + 1)
    return y.astype(np.float32)


def test_result_schema_and_time_grid(model_file, write_audio):
    path = write_audio("song.flac", _song(12.3))
    res = Predictor.from_file(model_file).predict(path)
    d = res.to_dict()
    assert list(d)[:5] == ["file", "duration_s", "model", "static", "quadrant"]
    assert d["file"] == str(path)
    assert d["duration_s"] == pytest.approx(12.3, abs=0.02)
    dyn = d["dynamic"]
    assert dyn["hop_s"] == 0.5
    n = len(dyn["times_s"])
    assert n == 24  # floor(12.3 / 0.5): a trailing partial segment is dropped
    assert dyn["times_s"][:3] == [0.0, 0.5, 1.0]
    assert len(dyn["valence"]) == len(dyn["arousal"]) == n
    # the static point of a dynamic model is the mean of its curve
    assert d["static"]["valence"] == pytest.approx(np.mean(res.dynamic["valence"]), abs=1e-4)
    assert d["quadrant"] == quadrant_name(res.static["valence"], res.static["arousal"])
    assert "tiny test model" in d["model"]
    json.dumps(d)  # JSON-ready


def test_array_equals_file_and_resampling(model_file, write_audio):
    y = _song(8.0)
    path = write_audio("a.wav", y)
    pred = Predictor.from_file(model_file)
    from_file = pred.predict(path)
    from_array = pred.predict(y, sr=44100)
    np.testing.assert_allclose(from_file.dynamic["valence"], from_array.dynamic["valence"], atol=1e-6)
    with pytest.raises(ValueError, match="sr="):
        pred.predict(y)
    y22 = y[::2].copy()
    assert pred.predict(y22, sr=22050).duration_s == pytest.approx(8.0, abs=0.02)
    # an array's duration is its own samples over its own rate, not its resampled length's
    odd = _song(3.0)[:88207]
    assert pred.predict(odd, sr=48000).duration_s == 88207 / 48000


@pytest.mark.bf16
@requires_native_bf16
def test_bf16_precision_is_close_to_float32_on_both_paths(model_file, write_audio, monkeypatch):
    """``--bf16`` runs the model under bfloat16 autocast; file (streamed) and array paths both honour it."""
    import moodscope.inference.sliding as inference

    path = write_audio("b.wav", _song(40.0))
    ref = Predictor.from_file(model_file)
    bf = Predictor.from_file(model_file, precision="bf16")
    dtypes = []
    real = inference._embed_batch
    monkeypatch.setattr(inference, "_embed_batch", lambda m, x, d, ac: dtypes.append(ac) or real(m, x, d, ac))
    for src, kw in ((path, {}), (_song(40.0), {"sr": 44100})):
        a, b = ref.predict(src, **kw), bf.predict(src, **kw)
        for dim in ("valence", "arousal"):
            diff = np.abs(np.asarray(a.dynamic[dim]) - np.asarray(b.dynamic[dim]))
            assert 0 < diff.max() < 0.02, (dim, diff.max())  # bf16 ran (not identical) and stayed close
    assert torch.bfloat16 in dtypes and None in dtypes
    with pytest.raises(ConfigError, match="precision"):
        Predictor.from_file(model_file, precision="fp8")


def test_hops_from_model_file_and_override(model_file):
    pred = Predictor.from_file(model_file)
    assert (pred.task.hop_valence, pred.task.hop_arousal) == (0.5, 2.5)
    pred2 = Predictor.from_file(model_file, hop_arousal=0.5)
    assert pred2.task.hop_arousal == 0.5


def test_folder_with_bad_files_keeps_going(model_file, write_audio, tmp_path):
    write_audio("music/a.wav", _song(6.0))
    write_audio("music/sub/b.ogg", _song(7.0, seed=3))
    write_audio("music/silent.wav", np.zeros(44100, np.float32))
    (tmp_path / "music" / "broken.mp3").write_bytes(b"this is not audio" * 10)
    (tmp_path / "music" / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    results, failures = predict_paths(
        [tmp_path / "music"], model=model_file, out_dir=out, plot=True, progress=False
    )
    assert sorted(r.file.split("/")[-1] for r in results) == ["a.wav", "b.ogg"]
    causes = dict((f.split("/")[-1], m) for f, m in failures)
    assert set(causes) == {"silent.wav", "broken.mp3"}
    assert "silent" in causes["silent.wav"]
    for stem in ("a", "sub/b"):  # the outputs mirror the folder's layout
        assert (out / f"{stem}.json").is_file() and (out / f"{stem}.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_ok"] == 2 and summary["n_failed"] == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_cli_predict_csv_and_exit_codes(model_file, write_audio, tmp_path, capsys):
    good = write_audio("good.wav", _song(6.0))
    assert (
        main(
            [
                "predict",
                str(good),
                "--model",
                str(model_file),
                "--out",
                str(tmp_path / "o"),
                "--format",
                "csv",
                "--quiet",
            ]
        )
        == 0
    )
    rows = (tmp_path / "o" / "good.csv").read_text().splitlines()
    assert rows[0] == "time_s,valence,arousal" and len(rows) == 1 + 12
    assert (tmp_path / "o" / "summary.csv").is_file()
    missing = tmp_path / "nope.mp3"
    assert main(["predict", str(good), str(missing), "--model", str(model_file), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["file"] == str(good)  # stdout: one JSON line per track
    assert "nope.mp3" in err and "no such file" in err


def test_cli_predict_prints_one_summary_line_per_track(model_file, write_audio, tmp_path, capsys):
    song = write_audio("a_rather_long_file_name_for_a_song.wav", _song(75.0))
    assert main(["predict", str(song), "--model", str(model_file), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    res = json.loads((tmp_path / "o" / "a_rather_long_file_name_for_a_song.json").read_text())
    line = next(ln for ln in err.splitlines() if "1:15" in ln)
    assert "…" in line and f"V {res['static']['valence']:+.2f}" in line and res["quadrant"] in line


def test_cli_plot_without_out_goes_to_the_current_folder(
    model_file, write_audio, tmp_path, monkeypatch, capsys
):
    song = write_audio("tune.wav", _song(6.0))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["predict", str(song), "--model", str(model_file), "--plot", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert (here / "tune.png").stat().st_size > 1000
    assert json.loads(out)["plot"] == str(here / "tune.png") and "plot: " in err


def test_summary_line_of_a_tagger_result():
    from moodscope.inference.predictor import Result

    r = Result(
        "x.mp3",
        9.6,
        "tagger",
        {"valence": float("nan"), "arousal": float("nan")},
        "",
        tags={"a": 0.9, "b": 0.2},
    )
    assert r.summary_line().split() == ["x.mp3", "0:10", "tags:", "a,", "b"]
    r.extra["tags_predicted"] = ["a"]
    assert r.summary_line().endswith("tags: a")
    r.extra["moods"] = {"Calm/Peaceful": 0.1, "Gloomy": 0.4, "Sad": 0.3, "Bitter": 0.2}
    assert r.summary_line().endswith("tags: a  moods: Gloomy, Sad, Bitter")
    assert Result.from_dict(r.to_dict()).extra["moods"] == r.extra["moods"]


def test_cli_predict_bad_model_file(tmp_path, write_audio, capsys):
    good = write_audio("good.wav", _song(3.0))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    assert main(["predict", str(good), "--model", str(bad)]) == 2
    assert "bad.safetensors" in capsys.readouterr().err


def test_very_short_and_one_sample_files_fail_clearly(model_file, write_audio):
    pred = Predictor.from_file(model_file)
    from moodscope.errors import AudioError

    short = write_audio("short.wav", _song(0.3))
    with pytest.raises(AudioError, match=r"short\.wav: .*short"):
        pred.predict(short)
    one = write_audio("one.wav", np.array([0.5], np.float32))
    with pytest.raises(AudioError, match=r"one\.wav: .*short"):
        pred.predict(one)
    empty = write_audio("empty.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match=r"empty\.wav"):
        pred.predict(empty)


def test_static_and_tagger_models_predict(write_audio, tmp_path):
    from moodscope.plot import plot_result

    torch.manual_seed(0)
    adff = build("adff", width=0.0625, lstm_hidden=4, task="quadrant").eval()
    p1 = save_model(
        tmp_path / "adff.safetensors",
        adff,
        FeatureConfig(),
        {"task": {"kind": "static", "seg_len_s": 5.0, "head": "quadrant"}},
    )
    path = write_audio("s.wav", _song(12.0))
    res = Predictor.from_file(p1).predict(path)
    assert res.dynamic is None and res.tags is None
    assert -0.5 <= res.static["valence"] <= 0.5 and res.quadrant  # expected quadrant centre
    tagger = build("tagger", n_tags=3, width=0.125, fc_sizes=[8]).eval()
    info = {
        "task": {
            "kind": "tags",
            "seg_len_s": 5.0,
            "tag_names": ["happy", "sad", "calm"],
            "thresholds": [0.5, 0.4, 0.6],
        }
    }
    p2 = save_model(tmp_path / "tagger.safetensors", tagger, FeatureConfig(), info)
    res2 = Predictor.from_file(p2).predict(path)
    assert list(res2.tags) == ["happy", "sad", "calm"]
    assert all(0.0 <= v <= 1.0 for v in res2.tags.values())
    assert set(res2.to_dict()["tags_predicted"]) <= {"happy", "sad", "calm"}
    assert plot_result(res2, tmp_path / "t.png").stat().st_size > 1000


def test_only_block_consuming_tasks_stream_files(model_file, write_audio, tmp_path, monkeypatch):
    """A file streams block by block only for a task that consumes blocks (dynamic) and log-Mel without
    top_db (its clipping is relative to the whole file's peak); a static model, or top_db, reads it whole."""
    from moodscope.audio.source import Source

    path = write_audio("s.wav", _song(12.0))
    whole = []  # a file decoded whole at once; a streamed one is read forward in blocks
    real = Source.whole
    monkeypatch.setattr(Source, "whole", lambda self: whole.append(1) or real(self))
    Predictor.from_file(model_file).predict(path)
    assert whole == []
    torch.manual_seed(0)
    static = tmp_path / "adff.safetensors"
    save_model(
        static, build("adff", width=0.0625, seg_num=2).eval(), FeatureConfig(), {"task": {"seg_len_s": 5.0}}
    )
    clipped = tmp_path / "clipped.safetensors"
    m = build("damff", width=0.0625, embed_dim=8, lstm_hidden=4).eval()
    save_model(clipped, m, FeatureConfig(top_db=80.0), {"task": {"kind": "dynamic"}})
    for other in (static, clipped):
        res = Predictor.from_file(other).predict(path)
        assert np.isfinite(res.static["valence"]) and res.duration_s == pytest.approx(12.0, abs=0.02)
    assert whole == [1, 1]


def test_a_waveform_model_streams_a_file_in_blocks_with_the_array_answer(tmp_path, monkeypatch):
    """Issue 27's one road streams every kind that streams for a task that takes blocks -- the raw waveform too
    (before, only log-Mel): a 70 s file read as 60 s blocks gives exactly the whole array's curve."""
    import soundfile as sf

    from moodscope.audio.source import Source

    torch.manual_seed(0)
    path = tmp_path / "raw.safetensors"
    save_model(
        path, build("dnn_raw").eval(), FeatureConfig(kind="waveform", sr=16000), {"task": {"kind": "dynamic"}}
    )
    t = np.arange(16000 * 70) / 16000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(t / 3))).astype(np.float32)
    sf.write(str(tmp_path / "a.wav"), y, 16000, subtype="FLOAT")
    pred = Predictor.from_file(path)
    monkeypatch.setattr(Source, "whole", lambda self: pytest.fail("read whole"))
    streamed = pred.predict(tmp_path / "a.wav")
    monkeypatch.undo()
    whole = pred.predict(y, sr=16000)
    assert len(streamed.dynamic["valence"]) == len(whole.dynamic["valence"]) == 140
    np.testing.assert_array_equal(streamed.dynamic["valence"], whole.dynamic["valence"])
    assert streamed.static == whole.static
