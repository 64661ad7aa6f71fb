"""The precision policy: auto | float32 | bf16, native-bf16 detection, the fallback and its one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import moodscope.precision as precision
from conftest import requires_native_bf16
from moodscope.errors import ConfigError
from moodscope.precision import (
    PrecisionWarning,
    cpu_bf16_native,
    lightning_precision,
    normalize,
    onednn_isa_cap,
    resolve,
)
from moodscope.training.config import load_config

AVX2_ONLY = {"architecture": "x86_64", "cpu_name": "Test EPYC", "avx2": True, "avx512_bf16": False}
SAPPHIRE = {"architecture": "x86_64", "cpu_name": "Test Xeon", "avx512_bf16": True, "amx_bf16": True}


def test_spellings_and_aliases():
    assert [normalize(p) for p in ("auto", "float32", "bf16")] == ["auto", "float32", "bf16"]
    assert normalize("32-true") == normalize("32") == normalize("FP32") == normalize(None) == "float32"
    assert normalize("bf16-mixed") == normalize("bfloat16") == "bf16"
    with pytest.raises(ConfigError, match="'fp8'.*auto, float32, bf16"):
        normalize("fp8")
    assert lightning_precision("bf16") == "bf16-mixed" and lightning_precision("float32") == "32-true"


def test_cpu_detection_reads_the_capabilities_and_the_onednn_cap():
    assert cpu_bf16_native(AVX2_ONLY, environ={}) == (
        False,
        "Test EPYC has no native bfloat16 (AVX512-BF16 or AMX)",
    )
    native, why = cpu_bf16_native(SAPPHIRE, environ={})
    assert native and "AVX512-BF16" in why and "AMX-BF16" in why
    assert cpu_bf16_native({"avx512_bf16": True}, environ={})[0]  # Cooper Lake / Zen 4: no AMX
    # oneDNN capped below its bf16 kernels: not native, and the message says why
    for cap in ("AVX2", "avx512_core", "AVX512_CORE_VNNI", "SSE41"):
        native, why = cpu_bf16_native(SAPPHIRE, environ={"ONEDNN_MAX_CPU_ISA": cap})
        assert not native and f"ONEDNN_MAX_CPU_ISA={cap.upper()}" in why
    for cap in ("AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX10_1_512_AMX", "ALL"):
        assert cpu_bf16_native(SAPPHIRE, environ={"ONEDNN_MAX_CPU_ISA": cap})[0], cap
    assert not cpu_bf16_native(SAPPHIRE, environ={"DNNL_MAX_CPU_ISA": "AVX2"})[0]  # oneDNN's old name
    assert onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": " avx2 "}) == "AVX2" and onednn_isa_cap({}) is None
    # ARM64: the BF16 extension
    assert cpu_bf16_native({"architecture": "aarch64", "bf16": True}, environ={})[0]
    assert not cpu_bf16_native({"architecture": "aarch64", "neon": True}, environ={})[0]
    assert not cpu_bf16_native({}, environ={})[0]  # nothing known: not native


def _cpu_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not _cpu_flags(), reason="no /proc/cpuinfo flags to compare with")
def test_detection_agrees_with_the_kernels_cpu_flags(monkeypatch):
    """torch's capabilities (cpuinfo) and the kernel's flags agree on this machine's CPU."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    flags = _cpu_flags()
    expected = bool({"avx512_bf16", "amx_bf16"} & flags)
    assert cpu_bf16_native()[0] == expected, (cpu_bf16_native(), sorted(flags & {"avx512_bf16", "amx_bf16"}))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu_bf16_native()[0]  # the switch the suite and CI use to disable bf16


@pytest.fixture
def not_native(monkeypatch):
    monkeypatch.setattr(precision, "_torch_cpu_capabilities", lambda: dict(AVX2_ONLY))


@pytest.fixture
def native(monkeypatch):
    monkeypatch.setattr(precision, "_torch_cpu_capabilities", lambda: dict(SAPPHIRE))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)


def test_resolve_without_native_bf16(not_native):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto and float32 say nothing
        assert resolve("auto", "cpu") == "float32"
        assert resolve("float32", "cpu") == "float32"
    with pytest.warns(
        PrecisionWarning, match="bf16 requested, but Test EPYC has no native bfloat16.*float32"
    ):
        assert resolve("bf16-mixed", "cpu") == "float32"
    with pytest.warns(PrecisionWarning):
        assert resolve("bf16", "cpu") == "float32"


def test_resolve_with_native_bf16(native):
    assert resolve("auto", "cpu") == resolve("bf16", "cpu") == "bf16"
    assert resolve("float32", "cpu") == "float32"


def test_config_key_is_validated_and_normalised(tmp_path):
    assert load_config(None, ["train.precision=bf16-mixed"])["train"]["precision"] == "bf16"
    assert load_config(None)["train"]["precision"] == "float32"  # the default: the same numbers everywhere
    with pytest.raises(ConfigError, match="train.precision.*'half'"):
        load_config(None, ["train.precision=half"])


def _tiny_run_config(tmp_path, precision: str) -> dict:
    """One epoch of a tiny DAMFF on 4 fixture tracks."""
    from fixtures_datasets import make_folder

    root = make_folder(tmp_path, quirks=False, n_tracks=4, duration_s=31.0)
    return {
        "model": {"name": "damff", "args": {"width": 0.0625, "embed_dim": 8, "lstm_hidden": 4}},
        "data": {"dataset": "folder", "root": str(root)},
        "split": {"kind": "holdout", "folds": 1, "test_fraction": 0.25},
        "train": {"epochs": 1, "batch_size": 2, "precision": precision},
    }


def test_training_falls_back_to_float32_with_one_warning(not_native, tmp_path):
    """An explicit bf16 on a CPU without it trains in float32 (no emulated bf16, no oneDNN LSTM crash) and
    the run directory records what was used."""
    from moodscope.training.experiment import run_experiment

    cfg = _tiny_run_config(tmp_path, "bf16")
    with pytest.warns(PrecisionWarning) as caught:
        run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    assert len([w for w in caught if w.category is PrecisionWarning]) == 1
    assert "precision: float32" in (tmp_path / "run" / "config.yaml").read_text()


def test_predict_bf16_without_native_support_is_float32_with_one_line(not_native, tmp_path, capsys):
    from conftest import make_tone
    from moodscope.cli import main
    from moodscope.config import FeatureConfig
    from moodscope.modelfile import save_model
    from moodscope.models import build

    torch.manual_seed(0)
    model = tmp_path / "m.safetensors"
    save_model(model, build("damff", width=0.0625, embed_dim=8, lstm_hidden=4).eval(), FeatureConfig(), {})
    import soundfile as sf

    song = tmp_path / "song.wav"
    sf.write(song, make_tone(440.0, 6.0, noise=0.05), 44100)
    outs = {}
    for flag in ([], ["--precision", "bf16"], ["--bf16"]):
        assert main(["predict", str(song), "--model", str(model), "--quiet", *flag]) == 0
        cap = capsys.readouterr()
        res = json.loads(cap.out)
        res.pop("seconds")  # wall time
        outs[tuple(flag)] = json.dumps(res)
        lines = [ln for ln in cap.err.splitlines() if ln.strip()]
        if flag:
            assert len(lines) == 1 and lines[0].startswith("moodscope predict: warning: bf16 requested, but ")
            assert lines[0].endswith("using float32")
        else:
            assert lines == []
    assert len(set(outs.values())) == 1  # the float32 result, value for value
    assert np.isfinite(json.loads(outs[()])["static"]["valence"])


@pytest.mark.bf16
@requires_native_bf16
def test_bf16_training_runs_where_native(tmp_path):
    """Where the CPU has native bf16, bf16-mixed training (the BiLSTM included) runs and is recorded."""
    from moodscope.training.experiment import run_experiment

    out = run_experiment(_tiny_run_config(tmp_path, "auto"), out_dir=tmp_path / "run", progress=False)
    assert "precision: bf16" in (tmp_path / "run" / "config.yaml").read_text()
    assert np.isfinite(out["folds"][0]["metrics"]["arousal_ccc"])
