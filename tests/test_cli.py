"""The command line: help text with examples for every verb, and the thin verbs that call one function."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_tone
from fixtures_datasets import make_deam
from moodscope.cli import COMMANDS, main
from moodscope.cli_parser import EXAMPLES, build_parser


def test_top_level_help_lists_every_verb_with_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for verb in COMMANDS:
        assert verb in out
        assert EXAMPLES[verb][0] in out


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_each_verb_has_help_with_example(verb, capsys):
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    out = capsys.readouterr().out
    assert "example" in out and all(ex in out for ex in EXAMPLES[verb])


def test_no_verb_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_models_lists_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("damff", "adff", "tagger", "crnn", "bcrsn", "dnn_raw", "mcrnn"):
        assert name in out
    # the bundled default model: what it learnt from, its licences and its headline numbers, real recordings first
    if "default    musicnn_va" in out:
        assert "non-commercial" in out and out.index("measured on 4Q") < out.index("measured on EMOPIA")
        assert " moods: " in out  # the AllMusic vocabulary
        assert "measured on VGMIDI, series-grouped 5-fold" in out  # issue 24: the curve against listeners


def test_datasets_list_and_check(tmp_path, capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("folder", "pmemo", "deam", "cal500", "cal500exp"):
        assert name in out
    root = make_deam(tmp_path, quirks=False, duration_s=20.0, ext=".wav")
    assert main(["datasets", "check", "deam", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tracks" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["datasets", "check", "deam", "--root", str(empty)]) == 2  # nothing could be checked
    assert "empty" in capsys.readouterr().err


def test_features_writes_npy_for_mp3_ogg_flac(write_audio, tmp_path, capsys):
    exts = ("mp3", "ogg", "flac")
    paths = [write_audio(f"x_{ext}.{ext}", make_tone(330.0, 1.5, noise=0.01)) for ext in exts]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage")
    assert main(["features", *map(str, paths), str(bad), "--out", str(tmp_path / "feats"), "--no-cache"]) == 1
    for ext in exts:
        f = np.load(tmp_path / "feats" / f"x_{ext}.npy")
        assert f.shape == (151, 128)  # 1.5 s at 100 frames/s, centred frames (+1)
    assert "bad.wav" in capsys.readouterr().err
    # two inputs that would write the same .npy are refused before anything is written
    same = write_audio("x_mp3.wav", make_tone(330.0, 1.0))
    assert main(["features", str(paths[0]), str(same), "--out", str(tmp_path / "f2"), "--no-cache"]) == 2
    assert "would both write" in capsys.readouterr().err


def test_corpus_synth_small(tmp_path, capsys):
    out = tmp_path / "c"
    assert (
        main(
            [
                "corpus",
                "synth",
                "--out",
                str(out),
                "--n-clips",
                "2",
                "--duration",
                "4",
                "--seed",
                "3",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert (out / "dataset.yaml").is_file() and len(list((out / "audio").iterdir())) == 2


def test_train_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.yaml" in err and "not found" in err


def test_parser_builds():
    assert build_parser().prog == "moodscope"


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys, tmp_path):
    """moodscope's own errors (and the file system's) are one line with exit 2; anything else is a bug and is
    not disguised as a user error."""
    import moodscope.cli as cli

    assert main(["predict", str(tmp_path / "x.wav"), "--hop-valence", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "moodscope predict: error: valence hop must be a positive multiple of 0.5 s, got -1.0"
    assert main(["datasets", "check", "nope", "--root", str(tmp_path)]) in (1, 2)
    assert "unknown dataset 'nope'" in capsys.readouterr().err

    def buggy(a):
        raise ValueError("an internal bug")

    monkeypatch.setitem(cli.COMMANDS, "models", buggy)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["models"])


@pytest.mark.parametrize(
    "argv, cause",
    [
        (["predict", "x.wav", "--jobs", "0"], "argument --jobs: invalid whole number 1..256 value: '0'"),
        (["predict", "x.wav", "--jobs", "-3"], "argument --jobs: invalid whole number 1..256 value: '-3'"),
    ],
)
def test_out_of_range_arguments_are_one_line_before_any_work(argv, cause, capsys):
    """Issue 26 (11, 14): values that used to crash later or run away (40 model copies) stop at the parser."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and cause in err[-1]


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["predict", "x.wav", "--model", "demo", "--hop-valence", "nan"],
            "moodscope predict: error: valence hop must be a positive multiple of 0.5 s, got nan",
        ),
        (
            ["predict", "x.wav", "--model", "demo", "--hop-arousal", "inf"],
            "moodscope predict: error: arousal hop must be a positive multiple of 0.5 s, got inf",
        ),
    ],
)
def test_non_finite_hops_are_one_line(argv, line, capsys):
    """Issue 26 (11): ``--hop-valence nan`` was a ValueError traceback (round(nan))."""
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == line
