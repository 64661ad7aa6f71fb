"""The distilled MusiCNN front end (issue 25): its construction, its file, its choice, its agreement."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from moodscope.audio.features import compute_features
from moodscope.config import MUSICNN_EMBEDDING, FeatureConfig
from moodscope.errors import ModelFileError, UsageError
from moodscope.models.musicnn import load_musicnn
from moodscope.models.musicnn_student import (
    MusicnnStudent,
    bundled_id,
    load_student,
    save_student,
    teacher_key,
)


def music_like(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 196 * 2 ** (rng.integers(0, 12, size=int(seconds * 2) + 1) / 12)
    note = f0[(t * 2).astype(int)]
    y = 0.25 * np.sin(2 * np.pi * np.cumsum(note) / sr) + 0.1 * np.sin(2 * np.pi * 3 * np.cumsum(note) / sr)
    y *= 0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0)  # a beat
    return (y + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def teacher():
    return load_musicnn("msd")


def test_student_without_split_is_the_teacher(teacher):
    # split 1: the student's layers are the teacher's own, so from_teacher copies them exactly
    student = MusicnnStudent.from_teacher(teacher, split=1).eval()
    front = {k: v for k, v in teacher.state_dict().items() if not k.startswith(("pool_bn", "dense", "out"))}
    assert student.state_dict().keys() == front.keys()
    assert all(torch.equal(student.state_dict()[k], v) for k, v in front.items())
    mel = torch.from_numpy(np.random.default_rng(0).uniform(0, 3, (1, 400, 96)).astype(np.float32))
    with torch.inference_mode():
        got, want = student.frame_features(mel), teacher.frame_features(mel)
    # the same layers on the same input: float32 rounding only (oneDNN's kernels differ with the CPU's ISA)
    scale = want.abs().amax(dim=(0, 1)).clamp(min=1.0)
    assert float(((got - want).abs() / scale).max()) < 1e-5


def strided_front(teacher, mel, split):
    """The teacher's front end evaluated at the frequency positions 0, split, 2 split, ... only."""
    h = teacher.input_bn(mel.unsqueeze(1))
    outs = []
    for block in [*teacher.timbral, *teacher.temporal]:
        z = F.conv2d(F.pad(h, (0, 0, *block.pad)), block.conv.weight, block.conv.bias, stride=(1, split))
        bn = block.bn
        z = F.batch_norm(F.relu(z), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        outs.append(z.amax(-1))
    return torch.cat(outs, dim=1).transpose(1, 2)


def test_split_student_starts_as_the_teacher_at_every_second_position(teacher):
    student = MusicnnStudent.from_teacher(teacher, split=2).eval()
    assert tuple(student.timbral[0].conv.weight.shape) == (204, 2, 7, 19)
    assert tuple(student.timbral[1].conv.weight.shape) == (204, 2, 7, 34)  # 67 taps: 34 even, 33 odd
    mel = torch.from_numpy(np.random.default_rng(1).uniform(0, 3, (2, 300, 96)).astype(np.float32))
    with torch.inference_mode():
        got = student.frame_features(mel)
        want = strided_front(teacher, mel, 2)
        full = teacher.frame_features(mel)
    assert got.shape == full.shape == (2, 300, 753)
    torch.testing.assert_close(got[..., :561], want, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(got[..., :561], full[..., :561], atol=1e-3)  # the skipped positions matter

    def macs(net, split=1):
        total = 0
        for block in [*net.timbral, *net.temporal]:
            f, c, kt, kf = block.conv.weight.shape
            total += (96 // (split if c > 1 or kf == 1 else 1) - kf + 1) * f * c * kt * kf
        return total + sum(m.conv.weight.numel() for m in net.midend)

    assert macs(teacher) == 7_477_232
    assert 1.85 < macs(teacher) / macs(student, 2) < 1.95  # 3.94 M per frame


def test_student_file_round_trip_and_refusals(tmp_path, teacher):
    student = MusicnnStudent.from_teacher(teacher)
    path = tmp_path / "s.safetensors"
    save_student(student, path, teacher=teacher, extra={"note": "test"})
    back = load_student(teacher, path)
    assert back.info["teacher"] == teacher_key(teacher) and back.info["note"] == "test"
    for a, b in zip(back.parameters(), student.parameters()):
        assert torch.equal(a, b)
    # another teacher's student is refused, naming both
    other = load_musicnn("msd")
    with torch.no_grad():
        other.timbral[0].conv.weight[0, 0, 0, 0] += 1.0
    with pytest.raises(ModelFileError, match="distilled from other MusiCNN weights"):
        load_student(other, path)
    with pytest.raises(ModelFileError, match="not found"):
        load_student(teacher, tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="bad.safetensors"):
        load_student(teacher, tmp_path / "bad.safetensors")


def test_bundled_student_loads_and_names_its_training(teacher):
    student = load_student(teacher)
    info = student.info
    assert info["teacher"] == teacher_key(teacher)
    assert "research" in info["licences"] and info["trained_on"]["hours"] > 1
    held = info["held_out"]  # measured by tools/distil_musicnn.py on audio it did not train on
    assert held["files"] >= 50 and held["embedding_cosine_mean"] >= 0.95
    assert len(bundled_id()) == 12


def test_frontend_setting(teacher):
    c = dataclasses.replace(MUSICNN_EMBEDDING, frontend="student")
    assert "frontend" not in MUSICNN_EMBEDDING.to_dict()  # keys of the full network unchanged
    assert c.to_dict()["frontend"] == "student" and c.key() != MUSICNN_EMBEDDING.key()
    assert FeatureConfig.from_dict(c.to_dict()) == c
    assert c.input_config().frontend == "full"
    with pytest.raises(ValueError, match="only kind 'musicnn'"):
        FeatureConfig(frontend="student")
    with pytest.raises(ValueError, match="frontend"):
        FeatureConfig.from_dict({**MUSICNN_EMBEDDING.to_dict(), "frontend": "tiny"})


def test_student_features_close_to_the_full_network():
    y = music_like(20.0, seed=3)
    full = compute_features(y, MUSICNN_EMBEDDING)
    fast = compute_features(y, dataclasses.replace(MUSICNN_EMBEDDING, frontend="student"))
    assert full.shape == fast.shape == (40, 250)
    emb_full, emb_fast = torch.from_numpy(full[:, :200]), torch.from_numpy(fast[:, :200])
    cos = torch.nn.functional.cosine_similarity(emb_full, emb_fast, dim=-1)
    assert float(cos.mean()) > 0.9, float(cos.mean())
    assert not np.array_equal(full, fast)  # a different network, not the same numbers


def test_predictor_frontend_choice(tmp_path):
    from moodscope.inference.predictor import Predictor

    y = music_like(12.0, seed=5)
    full = Predictor.from_file("default", frontend="full")
    fast = Predictor.from_file("default", frontend="student")
    assert fast.features.frontend == "student" and full.features.frontend == "full"
    assert "student" in fast.name and fast.frontend_id.startswith("+student-") and full.frontend_id == ""
    a, b = full.predict(y, sr=16000), fast.predict(y, sr=16000)
    for d in ("valence", "arousal"):
        assert abs(a.static[d] - b.static[d]) < 0.1, (d, a.static, b.static)
    with pytest.raises(UsageError, match="frontend 'tiny'"):
        Predictor.from_file("default", frontend="tiny")
    # a model on its own log-Mel has no MusiCNN front end to replace
    demo = Predictor.from_file("demo", frontend="student")
    assert demo.features.kind == "logmel" and demo.frontend_id == ""
    json.dumps(b.to_dict())


def test_cli_predict_frontend_and_the_store_keeps_them_apart(tmp_path, capsys):
    import soundfile as sf

    from moodscope.cli import main
    from moodscope.library.store import ResultStore

    song = tmp_path / "song.wav"
    sf.write(song, music_like(8.0, seed=7), 16000)
    out = tmp_path / "out"
    assert main(["predict", str(song), "--out", str(out), "--frontend", "full", "--quiet"]) == 0
    first = json.loads((out / "song.json").read_text())
    assert "student" not in first["model"]
    # the other front end is another model for the store: computed, not taken from the full network's row
    assert (
        main(["predict", str(song), "--out", str(out), "--frontend", "student", "--quiet", "--overwrite"])
        == 0
    )
    second = json.loads((out / "song.json").read_text())
    assert "[student front end]" in second["model"]
    assert second["static"] != first["static"]
    with ResultStore(out) as store:
        ids = store.model_ids()
    assert len(ids) == 2 and sum("+student-" in i for i in ids) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["predict", str(song), "--frontend", "tiny"])
    assert "invalid choice: 'tiny'" in capsys.readouterr().err


def test_student_runs_in_onnx_runtime_too(tmp_path, teacher):
    from moodscope.models import musicnn_onnx

    if not musicnn_onnx.onnx_available():
        pytest.skip('onnxruntime/onnx not installed (pip install "moodscope[onnx]")')
    student = load_student(teacher)
    mel = torch.from_numpy(np.random.default_rng(2).uniform(0, 3, (1, 500, 96)).astype(np.float32))
    with torch.inference_mode():
        ref = student.frame_features(mel)
    got = musicnn_onnx.OnnxFrameFeatures(student, cache_dir=tmp_path)(mel)
    scale = ref.abs().amax(dim=(0, 1)).clamp(min=1.0)
    assert float(((got - ref).abs() / scale).max()) < 1e-4
