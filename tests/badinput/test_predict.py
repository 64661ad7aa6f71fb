"""Bad input to ``moodscope predict``: audio files, output destinations, concurrency and kills.

Each audio case predicts a folder holding one good clip and the bad file: exit 1, one line naming the bad
file and its cause, the good clip's output written, nothing half-written.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from badinput.harness import SR, UNWRITABLE_DIR, assert_clean_error, leftovers, on_linux, write_clip
from tools import needs


def _half(path: Path, frac: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * frac)])
    return path


def _wav_with_data_size(path: Path, declared: int) -> Path:
    """A 1 s WAV whose data chunk declares ``declared`` bytes (a header that lies about the length)."""
    write_clip(path, 1.0, subtype="PCM_16")
    b = bytearray(path.read_bytes())
    i = b.index(b"data")
    b[i + 4 : i + 8] = struct.pack("<I", declared)
    path.write_bytes(bytes(b))
    return path


def _bad_audio(kind: str, d: Path) -> Path:
    """Write the bad file of ``kind`` into ``d``; return its path."""
    if kind == "empty":
        p = d / "empty.wav"
        p.write_bytes(b"")
    elif kind == "garbage_wav":
        p = d / "garbage.wav"
        p.write_bytes(os.urandom(4000))
    elif kind == "text_as_mp3":
        p = d / "notes.mp3"
        p.write_text("these are my notes, not music\n" * 50)
    elif kind == "truncated_wav":
        p = _half(write_clip(d / "cut.wav", 6.0))
    elif kind == "truncated_ogg":
        p = _half(write_clip(d / "cut.ogg", 6.0), 0.9)
    elif kind == "truncated_flac":
        p = _half(write_clip(d / "cut.flac", 6.0))
    elif kind == "truncated_mp3":
        p = _half(write_clip(d / "cut.mp3", 6.0))
    elif kind == "truncated_aiff":
        p = _half(write_clip(d / "cut.aiff", 6.0))
    elif kind == "header_claims_2gb":
        p = _wav_with_data_size(d / "liar.wav", 0x7FFFFFF0)
    elif kind == "header_only_wav":
        p = d / "header.wav"
        write_clip(p, 1.0)
        b = p.read_bytes()
        p.write_bytes(b[: b.index(b"data") + 8])
    elif kind == "silent":
        p = d / "silent.wav"
        sf.write(str(p), np.zeros(SR * 2, dtype=np.float32), SR)
    elif kind == "nan_samples":
        p = d / "nan.wav"
        y = np.full(SR * 2, 0.1, dtype=np.float32)
        y[1000] = np.nan
        sf.write(str(p), y, SR, subtype="FLOAT")
    elif kind == "too_short":
        p = write_clip(d / "blip.wav", 0.01)
    elif kind == "fifo":
        p = d / "pipe.wav"
        os.mkfifo(p)
    elif kind == "broken_link":
        p = d / "gone.wav"
        p.symlink_to(d / "no-such-target.wav")
    elif kind == "link_loop":
        p = d / "loop.wav"
        p.symlink_to(p)
    elif kind == "newline_name":
        p = d / "two\nlines.wav"
        p.write_bytes(os.urandom(3000))
    elif kind == "one_hertz_header":  # found by make fuzz: resampling it to the model's rate took 122 MiB
        p = write_clip(d / "slow.wav", 1.0, subtype="PCM_16")
        b = bytearray(p.read_bytes())
        b[24:28] = struct.pack("<I", 1)
        b[28:32] = struct.pack("<I", 2)  # byte rate
        p.write_bytes(bytes(b))
    elif kind == "zero_rate_header":
        p = write_clip(d / "norate.wav", 1.0, subtype="PCM_16")
        b = bytearray(p.read_bytes())
        b[24:28] = struct.pack("<I", 0)  # fmt chunk: sample rate
        p.write_bytes(bytes(b))
    else:
        raise AssertionError(kind)
    return p


#: kind -> (a word of the expected cause, ...)
AUDIO_CASES = {
    "empty": ("empty file",),
    "garbage_wav": ("not a readable audio file",),
    "text_as_mp3": ("no decodable audio frames", "not a readable audio file"),
    "truncated_wav": ("truncated",),
    "truncated_ogg": ("truncated",),
    "truncated_flac": ("truncated", "lost sync", "not a readable"),
    "truncated_mp3": ("truncated",),
    "truncated_aiff": ("truncated",),
    "header_claims_2gb": ("truncated",),
    "header_only_wav": ("no audio samples", "truncated"),
    "silent": ("silent",),
    "nan_samples": ("NaN",),
    "too_short": ("too short",),
    "fifo": ("FIFO",),
    "broken_link": ("broken symbolic link",),
    "link_loop": ("symbolic link loop",),
    "newline_name": ("not a readable audio file",),
    "zero_rate_header": ("not a readable audio file",),
    "one_hertz_header": ("sample rate 1 Hz",),
}


@pytest.mark.parametrize("kind", sorted(AUDIO_CASES))
def test_bad_audio_in_a_folder(kind, tmp_path, cli, tiny_model):
    music = tmp_path / "music"
    write_clip(music / "good.wav", 3.0)
    bad = _bad_audio(kind, music)
    out = tmp_path / "out"
    t0 = time.monotonic()
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet")
    assert time.monotonic() - t0 < 60  # a FIFO must not block, a lying header must not decode for minutes
    shown = bad.name.replace("\n", "\\n")
    line = assert_clean_error(run, code=1, name=shown, cause=AUDIO_CASES[kind])
    assert "\n" not in line
    assert (out / "good.json").is_file() and json.loads((out / "good.json").read_text())["static"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_ok"] == 1 and summary["n_failed"] == 1 and summary["n_files"] == 2
    assert summary["failures"][0]["file"] == str(bad)
    assert not leftovers(out)


def test_truncated_files_are_refused_where_libsndfile_reads_them_as_shorter(tmp_path):
    """The cause of the silent acceptance: libsndfile sizes a cut WAV by its bytes, a cut Ogg by its last
    complete page. The container checks catch what it hides; whole files still read."""
    from moodscope.audio.decode import audio_info
    from moodscope.errors import AudioError

    for ext in (".wav", ".ogg", ".aiff", ".opus"):
        whole = write_clip(
            tmp_path / f"whole{ext}",
            4.0,
            sr=48000 if ext == ".opus" else SR,
            **({"format": "OGG", "subtype": "OPUS"} if ext == ".opus" else {}),
        )
        assert audio_info(whole).duration > 3.9
        cut = tmp_path / f"cut{ext}"
        cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.8)])
        with pytest.raises(AudioError, match="truncated"):
            audio_info(cut)


def test_explicit_bad_paths(tmp_path, cli, tiny_model):
    """Paths named on the command line: a missing file, a device, an unknown extension, an empty folder, ''."""
    good = write_clip(tmp_path / "good.wav", 3.0)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    run = cli(
        "predict",
        good,
        tmp_path / "missing.wav",
        "/dev/null",
        notes,
        empty,
        "",
        "--model",
        tiny_model,
        "--quiet",
    )
    assert_clean_error(run, code=1, name="missing.wav", cause="no such file")
    # an empty argument (an unset shell variable) is not the current folder
    assert_clean_error(run, code=1, name="''", cause="empty path")
    assert_clean_error(run, code=1, name="/dev/null", cause="character device")
    assert_clean_error(run, code=1, name="notes.txt", cause="unknown audio format")
    assert_clean_error(run, code=1, name="empty_folder", cause="no supported audio files")
    lines = [json.loads(ln) for ln in run.out.splitlines()]
    assert [d["file"] for d in lines] == [str(good)]


def test_m4a_without_ffmpeg(tmp_path, cli, tiny_model, monkeypatch):
    write_clip(tmp_path / "good.wav", 3.0)
    (tmp_path / "song.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + os.urandom(2000))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    run = cli("predict", tmp_path, "--model", tiny_model, "--quiet")
    assert_clean_error(run, code=1, name="song.m4a", cause="needs ffmpeg")
    assert "apt-get install" in run.err


def test_damaged_mp3_leaves_no_decoder_chatter_on_stderr(tmp_path, capfd, tiny_model):
    """libmpg123 writes warnings to file descriptor 2 itself; they must not interleave with our lines."""
    from moodscope.cli import main

    write_clip(tmp_path / "good.wav", 3.0)
    (tmp_path / "bad.mp3").write_bytes(b"ID3" + bytes(range(256)) * 20)
    cut = write_clip(tmp_path / "cut.mp3", 6.0)
    _half(cut)
    capfd.readouterr()
    code = main(["predict", str(tmp_path), "--model", str(tiny_model), "--quiet"])
    err = capfd.readouterr().err
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    stray = [ln for ln in lines if not (ln.startswith(("error:", "  ")) or "file(s) failed" in ln)]
    assert not stray, err
    assert not any(w in err for w in ("Note:", "Warning:", "libmpg123", "resync"))


def test_non_finite_model_output_is_an_error_and_json_stays_valid(tmp_path, cli):
    """Finite weights whose product overflows: NaN/inf outputs are that track's error, never bare NaN."""
    import torch

    from moodscope.config import FeatureConfig
    from moodscope.modelfile import save_model
    from moodscope.models import build

    torch.manual_seed(0)
    m = build("damff", width=0.0625, embed_dim=8, lstm_hidden=4).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim > 1:
                p.fill_(3e38)  # finite float32; their products are inf, then NaN
    bad_model = tmp_path / "overflow.safetensors"
    save_model(bad_model, m, FeatureConfig(), {"task": {"kind": "dynamic", "window_s": 30.0}})
    clip = write_clip(tmp_path / "a.wav", 3.0)
    run = cli("predict", clip, "--model", bad_model, "--quiet")
    assert_clean_error(run, code=1, name="a.wav", cause="not finite")
    assert run.out == ""
    run = cli("predict", clip, "--model", bad_model, "--out", tmp_path / "o", "--quiet")
    assert_clean_error(run, code=1, name="a.wav", cause="not finite")
    json.loads((tmp_path / "o" / "summary.json").read_text())  # valid JSON (no NaN)


# -- destinations ---------------------------------------------------------------------------------------------
def test_out_is_an_existing_file(tmp_path, cli, tiny_model):
    clip = write_clip(tmp_path / "a.wav", 3.0)
    target = tmp_path / "results.json"
    target.write_text("{}")
    run = cli("predict", clip, "--model", tiny_model, "--out", target)
    assert_clean_error(run, code=2, name="results.json", cause="not a folder")
    assert target.read_text() == "{}"


def test_out_that_cannot_be_created_stops_before_any_work(tmp_path, cli, tiny_model, monkeypatch):
    """Checked before the model is even loaded: nothing is predicted into nowhere."""
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs Linux's sysfs")
    from moodscope.inference import predictor

    monkeypatch.setattr(predictor.Predictor, "from_file", classmethod(lambda *a, **k: pytest.fail("loaded")))
    clip = write_clip(tmp_path / "a.wav", 3.0)
    run = cli("predict", clip, "--model", tiny_model, "--out", UNWRITABLE_DIR)
    assert_clean_error(run, code=2, name=str(UNWRITABLE_DIR), cause="cannot create the output folder")


def test_out_under_a_file(tmp_path, cli, tiny_model):
    clip = write_clip(tmp_path / "a.wav", 3.0)
    (tmp_path / "plain").write_text("x")
    run = cli("predict", clip, "--model", tiny_model, "--out", tmp_path / "plain" / "sub")
    assert_clean_error(run, code=2, name="plain", cause=("not a directory", "cannot create"))


@on_linux
def test_plot_into_an_unwritable_current_folder(tmp_path, cli, tiny_model, monkeypatch):
    clip = write_clip(tmp_path / "a.wav", 3.0)
    monkeypatch.chdir("/sys")
    run = cli("predict", clip, "--model", tiny_model, "--plot")
    assert_clean_error(run, code=2, name="/sys", cause="cannot write plots")


def test_a_file_moodscope_did_not_write_is_not_overwritten(tmp_path, cli, tiny_model):
    """A user's own ``a.json`` in ``--out`` stops the run before any work; ``--overwrite`` replaces it."""
    music = tmp_path / "music"
    write_clip(music / "a.wav", 3.0)
    write_clip(music / "b.wav", 3.0, seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text('{"mine": true}')
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet")
    assert_clean_error(run, code=2, name="a.json", cause="--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "moodscope.sqlite"]  # an empty store
    assert json.loads((out / "a.json").read_text()) == {"mine": True}
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet", "--overwrite")
    assert run.code == 0, run.err
    assert json.loads((out / "a.json").read_text())["file"] == str(music / "a.wav")


def test_a_rerun_skips_what_the_store_has_and_restores_missing_outputs(tmp_path, cli, tiny_model):
    music = tmp_path / "music"
    write_clip(music / "a.wav", 3.0)
    write_clip(music / "b.wav", 3.0, seed=1)
    out = tmp_path / "out"
    assert cli("predict", music, "--model", tiny_model, "--out", out, "--quiet", "--plot").code == 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("a.*")}
    (out / "b.json").unlink()
    (music / "c.wav").write_bytes((music / "a.wav").read_bytes())  # a duplicate: copied, not computed
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet", "--plot")
    assert run.code == 0, run.err
    s = json.loads((out / "summary.json").read_text())
    assert (s["n_computed"], s["n_skipped"], s["n_copied"], s["n_in_store"]) == (0, 2, 1, 3)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("a.*")} == mtimes  # nothing rewritten
    assert json.loads((out / "b.json").read_text())["file"] == str(music / "b.wav")  # restored from the store
    c = json.loads((out / "c.json").read_text())
    assert (
        c["file"] == str(music / "c.wav")
        and c["static"] == json.loads((out / "a.json").read_text())["static"]
    )
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet", "--force")
    assert run.code == 0
    assert json.loads((out / "summary.json").read_text())["n_computed"] == 3


def test_a_failed_write_of_one_track_keeps_the_others(tmp_path, cli, tiny_model, monkeypatch):
    """ENOSPC while writing one track's output: that track is one error line, the batch goes on."""
    from moodscope.library import batch

    real = batch.write_atomic

    def full_disk(path, data):
        if Path(path).name == "b.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(batch, "write_atomic", full_disk)
    music = tmp_path / "music"
    for i, n in enumerate("abc"):
        write_clip(music / f"{n}.wav", 3.0, seed=i)
    out = tmp_path / "out"
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet")
    assert_clean_error(run, code=1, name="b.wav", cause="No space left on device")
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "c.json", "moodscope.sqlite", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n_ok"], summary["n_failed"], summary["n_files"]) == (2, 1, 3)


def test_a_failed_summary_keeps_the_tracks(tmp_path, cli, tiny_model, monkeypatch):
    from moodscope.library import batch

    real = batch.write_atomic

    def full_disk(path, data):
        if Path(path).name == "summary.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(batch, "write_atomic", full_disk)
    clip = write_clip(tmp_path / "a.wav", 3.0)
    out = tmp_path / "out"
    run = cli("predict", clip, "--model", tiny_model, "--out", out, "--quiet")
    assert_clean_error(run, code=1, name="summary.json", cause="No space left on device")
    assert (out / "a.json").is_file() and not leftovers(out)


class _Full:
    def __init__(self, exc):
        self.exc = exc

    def write(self, text):
        raise self.exc

    def flush(self):
        pass

    def fileno(self):
        raise OSError("no fd")


def test_stdout_full(tmp_path, cli, tiny_model, monkeypatch):
    clip = write_clip(tmp_path / "a.wav", 3.0)
    monkeypatch.setattr(sys, "stdout", _Full(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    run = cli("predict", clip, "--model", tiny_model, "--quiet")
    assert_clean_error(run, code=2, name="<stdout>", cause="No space left on device")


def test_stdout_closed_by_the_reader(tmp_path, cli, tiny_model, monkeypatch):
    """``moodscope predict DIR | head -1``: a quiet stop, no traceback, no error line."""
    clip = write_clip(tmp_path / "a.wav", 3.0)
    monkeypatch.setattr(sys, "stdout", _Full(BrokenPipeError(errno.EPIPE, "Broken pipe")))
    run = cli("predict", clip, "--model", tiny_model, "--quiet")
    assert run.code == 141 and "Traceback" not in run.err and "error" not in run.err


def test_summary_counts_every_input(tmp_path, cli, tiny_model):
    clip = write_clip(tmp_path / "a.wav", 3.0)
    out = tmp_path / "out"
    run = cli(
        "predict", clip, tmp_path / "nope.wav", tmp_path / "nope-dir", "--model", tiny_model, "--out", out
    )
    assert run.code == 1
    s = json.loads((out / "summary.json").read_text())
    assert (s["n_files"], s["n_ok"], s["n_failed"]) == (3, 1, 2)


def test_a_track_named_summary_keeps_its_own_output(tmp_path, cli, tiny_model):
    """Issue 26 (4): ``summary.wav``'s result must not be overwritten by the run's summary.json."""
    music = tmp_path / "music"
    write_clip(music / "summary.wav", 3.0, seed=1)
    write_clip(music / "b.wav", 3.0, seed=2)
    out = tmp_path / "out"
    for fmt in ("json", "csv"):
        run = cli("predict", music, "--model", tiny_model, "--out", out / fmt, "--format", fmt, "--quiet")
        assert run.code == 0, run.err
        track = json.loads((out / fmt / "summary.json").read_text())
        assert track["n_files"] == 2  # the run's summary
        rows = {Path(r["file"]).name: r for r in track["tracks"]}
        assert rows["summary.wav"]["outputs"] == [f"summary-2.{fmt}"]
        assert (out / fmt / f"summary-2.{fmt}").is_file()
        if fmt == "json":
            assert json.loads((out / fmt / "summary-2.json").read_text())["file"].endswith("summary.wav")


@pytest.mark.skipif(sys.platform != "linux", reason="file names that are not UTF-8 need a POSIX file system")
def test_a_file_name_that_is_not_utf8_is_analysed_and_never_stops_a_run(tmp_path, cli, tiny_model):
    """Issue 26 (2): ``café.wav`` written in Latin-1 (common on old disks and archives) used to stop the whole run
    with a UnicodeEncodeError in the store. Its name is written with \\xNN escapes, everywhere the same."""
    music = tmp_path / "music"
    write_clip(music / "a.wav", 3.0, seed=1)
    latin = os.fsdecode(os.fsencode(str(music)) + b"/caf\xe9.wav")
    shutil.copyfile(write_clip(tmp_path / "b.wav", 3.0, seed=2), latin)  # os functions take any bytes
    out = tmp_path / "out"
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet")
    assert run.code == 0, run.err
    assert (out / "caf\\xe9.json").is_file() and (out / "a.json").is_file()
    result = json.loads((out / "caf\\xe9.json").read_text("utf-8"))
    assert result["file"].endswith("caf\\xe9.wav")
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["n_ok"] == 2
    rerun = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet")  # stable: nothing to redo
    assert rerun.code == 0 and json.loads((out / "summary.json").read_text("utf-8"))["n_skipped"] == 2
    one = cli("predict", latin, "--model", tiny_model)
    assert one.code == 0 and json.loads(one.out)["file"].endswith("caf\\xe9.wav")
    feats = cli("features", latin, "--out", tmp_path / "f")
    assert feats.code == 0, feats.err
    q = cli("query", out)
    assert q.code == 0 and "caf\\xe9.wav" in q.out


def _id3_with_cover(picture_bytes: int) -> bytes:
    """An ID3v2.3 tag holding one APIC frame (a cover picture) of ``picture_bytes``, as rippers write."""
    import struct

    pic = b"\x00image/jpeg\x00\x03\x00" + bytes(picture_bytes)
    frame = b"APIC" + struct.pack(">I", len(pic)) + b"\x00\x00" + pic
    n = len(frame)
    return b"ID3\x03\x00\x00" + bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F]) + frame


@needs("ffmpeg")
@pytest.mark.parametrize("cover_kb", [20, 300])
def test_a_cbr_mp3_with_a_cover_picture_is_not_refused_as_truncated(tmp_path, cli, tiny_model, cover_kb):
    """Issue 26 (3): a constant-bitrate MP3 without a Xing/Info frame: the decoder's length is the file size over
    the bitrate, the tag counted as audio, so a 20 KB cover made it "truncated: decoded 30.06 s of 31.73 s"."""
    import subprocess

    raw = tmp_path / "raw.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=20",
         "-ar", "44100", "-b:a", "128k", "-write_xing", "0", "-id3v2_version", "0", str(raw)],
        check=True,
    )  # fmt: skip
    song = tmp_path / "song.mp3"
    song.write_bytes(_id3_with_cover(cover_kb * 1000) + raw.read_bytes() + b"TAG" + bytes(125))
    run = cli("predict", song, "--model", tiny_model)
    assert run.code == 0, run.err
    assert abs(json.loads(run.out)["duration_s"] - 20.0) < 0.2
    # cut in half (a partial download): the last frame is short -- refused, where the length alone cannot tell
    half = tmp_path / "half.mp3"
    data = raw.read_bytes()
    half.write_bytes(data[: len(data) // 2 + 77])
    assert_clean_error(cli("predict", half, "--model", tiny_model), code=1, name=str(half), cause="truncated")


def test_the_same_file_given_three_times_is_analysed_once(tmp_path, cli, tiny_model):
    """Issue 26 (14): ``predict full.wav full.wav ./full.wav`` used to compute it three times (full-3.json)."""
    song = write_clip(tmp_path / "full.wav", 3.0)
    out = tmp_path / "out"
    run = cli(
        "predict", song, song, tmp_path / "." / "full.wav", tmp_path, "--model", tiny_model, "--out", out
    )
    assert run.code == 0, run.err
    assert sorted(p.name for p in out.glob("*.json")) == ["full.json", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["n_files"] == 1


# -- concurrency and kills ------------------------------------------------------------------------------------
def test_folder_held_by_a_live_run_is_refused(tmp_path, cli, tiny_model):
    clip = write_clip(tmp_path / "a.wav", 3.0)
    out = tmp_path / "out"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": other.pid, "host": os.uname().nodename, "started": "now", "what": "moodscope predict"}
        (out / ".moodscope.lock").write_text(json.dumps(lock))
        run = cli("predict", clip, "--model", tiny_model, "--out", out, "--quiet")
        assert_clean_error(run, code=2, name=str(out), cause=f"pid {other.pid}")
        assert not (out / "a.json").exists()
    finally:
        other.kill()
        other.wait()


def test_stale_lock_and_orphaned_temporary_files_are_cleaned(tmp_path, cli, tiny_model):
    clip = write_clip(tmp_path / "a.wav", 3.0)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = {"pid": dead.pid, "host": os.uname().nodename, "started": "then", "what": "moodscope predict"}
    (out / ".moodscope.lock").write_text(json.dumps(lock))
    (out / ".a.json.k2j4h5g6.tmp").write_text('{"half": ')
    run = cli("predict", clip, "--model", tiny_model, "--out", out, "--quiet")
    assert run.code == 0, run.err
    assert "was killed" in run.err
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "moodscope.sqlite", "summary.json"]


def test_long_files_get_their_own_progress(tmp_path, cli, tiny_model, monkeypatch):
    from moodscope.library import batch

    monkeypatch.setattr(batch, "LONG_FILE_S", 2.0)
    clip = write_clip(tmp_path / "a.wav", 3.0)
    run = cli("predict", clip, "--model", tiny_model)
    assert run.code == 0
    assert "a.wav" in run.err and "s/s" in run.err  # tqdm's rate in seconds of audio per second


@pytest.mark.slow
def test_sigkill_mid_run_loses_nothing_finished_and_leaves_nothing_half_written(tmp_path, tiny_model, cli):
    """Kill ``predict --out --jobs 2`` midway: every file it left is complete; a second run into the same folder at
    the same time is refused; the re-run after the kill computes only what was not finished, and every track
    is in the store exactly once."""
    from moodscope.library.store import ResultStore

    music = tmp_path / "music"
    for i in range(10):
        write_clip(music / f"t{i}.wav", 20.0, seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "moodscope.cli", "predict", str(music), "--model", str(tiny_model)]
    cmd += ["--out", str(out), "--quiet", "--jobs", "2"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("t*.json"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet")  # concurrent
        assert_clean_error(run, code=2, name=str(out), cause=f"pid {proc.pid}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.5)  # the killed driver's workers notice their parent is gone
    done = sorted(out.glob("t*.json"))
    assert 1 <= len(done) < 10
    for p in done:
        assert json.loads(p.read_text())["dynamic"]["valence"]  # complete, parseable
    assert not (out / "summary.json").exists()
    with ResultStore(out) as store:
        first = {r["path"]: r["added"] for r in store.tracks()}
    assert len(first) >= len(done) - 1  # the store commits a track before its file
    mtimes = {p.name: p.stat().st_mtime_ns for p in done}
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet")
    assert run.code == 0, run.err
    with ResultStore(out) as store:
        rows = list(store.tracks())
    assert sorted(r["path"] for r in rows) == sorted(str(music / f"t{i}.wav") for i in range(10))  # once each
    assert all(r["added"] == first[r["path"]] for r in rows if r["path"] in first)  # nothing recomputed
    assert {p.name: p.stat().st_mtime_ns for p in done if p.exists()} == mtimes
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"t{i}.json" for i in range(10)] + ["summary.json", "moodscope.sqlite"])
    s = json.loads((out / "summary.json").read_text())
    assert s["n_computed"] == 10 - len(first) and s["n_skipped"] == len(first)


def test_a_full_disk_under_the_store_is_one_line_and_the_next_run_resumes(
    tmp_path, cli, tiny_model, monkeypatch
):
    """Issue 26 (5): ``sqlite3.OperationalError: database or disk is full`` used to be a traceback that lost the
    batch. Now one line naming the store; what was committed stays; the next run finishes the rest."""
    import sqlite3

    from moodscope.library import store as store_mod

    music = tmp_path / "music"
    for i in range(3):
        write_clip(music / f"t{i}.wav", 2.0, seed=i)
    out = tmp_path / "out"
    real_add, calls = store_mod.ResultStore.add, []

    def add_until_full(self, row):
        calls.append(row["path"])
        if len(calls) == 2:
            with self._transaction():
                raise sqlite3.OperationalError("database or disk is full")
        return real_add(self, row)

    monkeypatch.setattr(store_mod.ResultStore, "add", add_until_full)
    run = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet", "--jobs", "1")
    line = assert_clean_error(
        run, code=2, name=str(out / "moodscope.sqlite"), cause="database or disk is full"
    )
    assert "run again to resume" in line
    monkeypatch.setattr(store_mod.ResultStore, "add", real_add)
    again = cli("predict", music, "--model", tiny_model, "--out", out, "--quiet")
    assert again.code == 0, again.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_ok"] == 3 and summary["n_skipped"] == 1  # the first track was kept, not recomputed


def test_output_names_mirror_the_library_and_stay_stable_as_it_grows(tmp_path, cli, tiny_model):
    """Issue 26 (7): after ``lib/a/x.wav`` appeared beside ``lib/b/x.wav`` the re-run exited 2 yet wrote
    ``x-2.json``, and with --overwrite ``x.json`` held the other track. Outputs now mirror the input's folders."""
    lib = tmp_path / "lib"
    write_clip(lib / "b" / "x.wav", 2.0, seed=1)
    write_clip(lib / "top.wav", 2.0, seed=3)
    out = tmp_path / "out"
    assert cli("predict", lib, "--model", tiny_model, "--out", out, "--quiet").code == 0
    first = json.loads((out / "b" / "x.json").read_text())
    assert first["file"].endswith("b/x.wav") and (out / "top.json").is_file()
    write_clip(lib / "a" / "x.wav", 2.0, seed=2)  # the library grows
    run = cli("predict", lib, "--model", tiny_model, "--out", out, "--quiet")
    assert run.code == 0, run.err
    assert json.loads((out / "b" / "x.json").read_text()) == first  # untouched, same name
    assert json.loads((out / "a" / "x.json").read_text())["file"].endswith("a/x.wav")
    assert not list(out.rglob("x-2.json"))
    outputs = {Path(t["file"]).name + "@" + Path(t["file"]).parent.name: t["outputs"]
               for t in json.loads((out / "summary.json").read_text())["tracks"]}  # fmt: skip
    assert outputs["x.wav@a"] == ["a/x.json"]


@pytest.mark.parametrize("seconds", [0.3, 1.3, 6.0])
@pytest.mark.parametrize("kind", ["file", "array"])
def test_duration_is_the_audios_own_length(tmp_path, cli, tiny_model, seconds, kind):
    """Issue 26 (13): 0.3 s was reported as 0.5 (one 0.5 s step), 1.3 s as 1.0, 6.0 s as 6.01 (a centred log-Mel
    has one frame more): the duration is now the samples', not the features'."""
    from moodscope.inference.predictor import Predictor

    song = write_clip(tmp_path / "clip.wav", seconds, sr=22050)
    model = "default" if seconds < 0.5 else tiny_model  # the tiny DAMFF needs one 0.5 s step; MusiCNN pads
    if kind == "file":
        run = cli("predict", song, "--model", model, "--quiet")
        assert run.code == 0, run.err
        got = json.loads(run.out.splitlines()[0])["duration_s"]
    else:
        y, sr = sf.read(str(song), dtype="float32")
        got = Predictor.from_file(model).predict(np.stack([y, y]), sr=sr).duration_s  # (channels, n)
    assert got == pytest.approx(int(seconds * 22050) / 22050, abs=1e-3)


def _content_free(kind: str, d: Path) -> Path:
    """Audio that decodes fine but holds no music, or is far over full scale / clipped (issue 26, 12)."""
    n = 4 * SR
    p = d / f"{kind}.wav"
    if kind == "dc_only":
        sf.write(str(p), np.full(n, 0.25, np.float32), SR)
    elif kind == "silence_but_one_sample":
        y = np.zeros(n, np.float32)
        y[n // 3] = 0.8
        sf.write(str(p), y, SR)
    elif kind == "clicks_at_minus_90_dbfs":
        y = np.zeros(n, np.float32)
        y[:: SR // 4] = 10 ** (-90 / 20)
        sf.write(str(p), y, SR, subtype="FLOAT")
    elif kind == "float_60_db_over_full_scale":
        y, _ = sf.read(str(write_clip(d / "src.wav", 4.0)), dtype="float32")
        (d / "src.wav").unlink()
        sf.write(str(p), y * 1000, SR, subtype="FLOAT")
    elif kind == "clipped":
        y, _ = sf.read(str(write_clip(d / "src.wav", 4.0)), dtype="float32")
        (d / "src.wav").unlink()
        sf.write(str(p), np.clip(y * 20, -1, 1), SR)
    return p


CONTENT_NOTES = {
    "dc_only": "no musical content",
    "silence_but_one_sample": "no musical content",
    "clicks_at_minus_90_dbfs": "no musical content",
    "float_60_db_over_full_scale": "over range",
    "clipped": "clipped",
}


@pytest.mark.parametrize("kind", sorted(CONTENT_NOTES))
def test_content_free_or_over_range_audio_is_analysed_with_a_warning(kind, tmp_path, cli, tiny_model):
    """Issue 26 (12): such audio got a mood with confidence and no word; now one ``warning:`` line names the file
    and what is wrong, its JSON carries ``warnings``, and the good clip beside it has none."""
    d = tmp_path / "lib"
    write_clip(d / "good.wav", 3.0)
    bad = _content_free(kind, d)
    run = cli("predict", d, "--model", tiny_model, "--quiet")
    assert run.code == 0, run.err
    lines = [ln for ln in run.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"warning: {bad}: {CONTENT_NOTES[kind]}: "), run.err
    results = {Path(r["file"]).name: r for r in map(json.loads, run.out.splitlines())}
    assert [w.split(":")[0] for w in results[bad.name]["warnings"]] == [CONTENT_NOTES[kind]]
    assert "warnings" not in results["good.wav"]


def test_content_warnings_on_the_whole_file_road_and_for_arrays(tmp_path, cli):
    """The default model reads the whole file (MusiCNN does not stream) and arrays take a third road: the same
    notes on each, and in the results store's copy of the result."""
    from moodscope.inference.predictor import Predictor

    bad = _content_free("float_60_db_over_full_scale", tmp_path)
    run = cli("predict", bad, "--out", tmp_path / "out", "--quiet")
    assert run.code == 0, run.err
    assert run.err.startswith(f"warning: {bad}: over range: "), run.err
    assert json.loads((tmp_path / "out" / f"{bad.stem}.json").read_text())["warnings"][0].startswith(
        "over range"
    )
    y, sr = sf.read(str(bad), dtype="float32")
    res = Predictor.from_file("default").predict(y, sr=sr)
    assert [w.split(":")[0] for w in res.extra["warnings"]] == ["over range"]
    assert "warnings" not in Predictor.from_file("default").predict(y / 1000, sr=sr).extra


def test_running_out_of_memory_on_one_track_is_one_line_and_the_next_is_done(
    tmp_path, cli, tiny_model, monkeypatch
):
    """Issue 26 (6): an out-of-memory was a traceback that also skipped the next file."""
    from moodscope.inference.predictor import Predictor

    real = Predictor.predict

    def starved(self, source, **kw):
        if Path(str(source)).name == "b.wav":
            raise MemoryError()
        return real(self, source, **kw)

    monkeypatch.setattr(Predictor, "predict", starved)
    music = tmp_path / "music"
    for i, n in enumerate("abc"):
        write_clip(music / f"{n}.wav", 3.0, seed=i)
    run = cli("predict", music, "--model", tiny_model, "--out", tmp_path / "out", "--quiet")
    assert_clean_error(run, code=1, name="b.wav", cause="out of memory while analysing it")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".json") == [
        "a.json",
        "c.json",
        "summary.json",
    ]


def test_a_long_recording_takes_the_block_road_with_the_same_answer(tmp_path, cli, monkeypatch):
    """Issue 26 (6): the default model reads a recording longer than its limit in blocks (memory bounded; the
    limit lowered to 20 s here so that a 50 s file has several); the result is the whole road's."""
    song = write_clip(tmp_path / "mix.wav", 50.0, sr=22050)
    whole = cli("predict", song, "--quiet")
    monkeypatch.setenv("MOODSCOPE_LONG_FILE_S", "20")
    from moodscope.audio import features

    calls = []
    real = features._musicnn_blocks
    monkeypatch.setattr(
        features, "_musicnn_blocks", lambda *a, **k: calls.append(1) or real(*a, **{**k, "block_s": 16.0})
    )
    blocks = cli("predict", song, "--quiet")
    assert whole.code == blocks.code == 0, blocks.err
    a, b = json.loads(whole.out), json.loads(blocks.out)
    assert calls and a["quadrant"] == b["quadrant"]
    assert np.allclose(a["dynamic"]["valence"], b["dynamic"]["valence"], atol=1e-3)
    assert np.allclose(
        [a["static"]["valence"], a["static"]["arousal"]],
        [b["static"]["valence"], b["static"]["arousal"]],
        atol=1e-3,
    )
