"""Bad model files: every kind is refused before anything is built, with one line naming the file and the key.

Each case crafts a model file from the session's tiny DAMFF (``tiny_model``) with safetensors' ``save_file`` and
custom metadata, and runs ``moodscope predict CLIP --model FILE``: exit 2, one stderr line naming the file and
the key or tensor at fault, nothing on stdout, nothing left behind. Below them, unit tests of the settings
checker (:mod:`moodscope.config`) and the proof that every real model file and configuration passes it.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from badinput.harness import assert_clean_error, leftovers, write_clip
from moodscope.config import (
    FeatureConfig,
    SettingError,
    check_settings,
    choice,
    flag,
    int_or_pair,
    integer,
    integer_list,
    mapping,
    number,
    number_list,
    shown,
    text_list,
)
from moodscope.errors import ModelFileError
from moodscope.modelfile import check_architecture, load_model, read_metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("modelfiles-clip") / "clip.wav", 3.0)


def _parts(tiny: Path) -> tuple[dict, dict]:
    with safe_open(str(tiny), framework="pt") as f:
        meta = json.loads(f.metadata()["moodscope"])
    return meta, load_file(str(tiny))


def _write(path: Path, tensors: dict, meta) -> Path:
    raw = meta if isinstance(meta, str) else json.dumps(meta)
    save_file(tensors, str(path), metadata={"moodscope": raw})
    return path


def _set(section: str, key: str, value):
    """A case that sets ``meta[section...][key] = value`` (``section`` dotted, "" for the top level)."""

    def make(dst: Path, tiny: Path) -> Path:
        meta, tensors = _parts(tiny)
        d = meta
        for s in filter(None, section.split(".")):
            d = d[s]
        d[key] = value
        return _write(dst, tensors, meta)

    return make


def _meta(fn):
    """A case whose metadata is ``fn(meta)`` (an object, or a raw string)."""

    def make(dst: Path, tiny: Path) -> Path:
        meta, tensors = _parts(tiny)
        return _write(dst, tensors, fn(copy.deepcopy(meta)))

    return make


def _tensors(fn):
    """A case whose tensors are ``fn(tensors)`` (metadata unchanged)."""

    def make(dst: Path, tiny: Path) -> Path:
        meta, tensors = _parts(tiny)
        return _write(dst, fn(dict(tensors)), meta)

    return make


def _poison(value: float):
    def fn(tensors):
        k = "head.fc.weight" if "head.fc.weight" in tensors else sorted(tensors)[-1]
        t = tensors[k].clone()
        t.view(-1)[1] = value
        tensors[k] = t
        return tensors

    return fn


def _adff(args: dict):
    return lambda m: {**m, "model_name": "adff", "model_args": args, "info": {"task": {"kind": "static"}}}


def _args(meta: dict, **args) -> dict:
    meta["model_args"].update(args)
    return meta


def _without(key: str):
    def fn(m):
        m.pop(key)
        return m

    return fn


def _truncated(dst: Path, tiny: Path) -> Path:
    data = tiny.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _zero_bytes(dst: Path, tiny: Path) -> Path:
    dst.write_bytes(b"")
    return dst


def _folder(dst: Path, tiny: Path) -> Path:
    dst.mkdir()
    return dst


def _missing(dst: Path, tiny: Path) -> Path:
    return dst


def _fifo(dst: Path, tiny: Path) -> Path:
    os.mkfifo(dst)  # opening it would block until a writer comes: it must never be opened
    return dst


def _link_loop(dst: Path, tiny: Path) -> Path:
    os.symlink(dst.name, dst)  # a link to itself
    return dst


def _broken_link(dst: Path, tiny: Path) -> Path:
    os.symlink(dst.parent / "gone.safetensors", dst)
    return dst


def _foreign(dst: Path, tiny: Path) -> Path:
    save_file({"w": torch.zeros(2)}, str(dst))
    return dst


def _first(tensors: dict) -> str:
    return sorted(tensors)[0]


#: (kind, make(dst, tiny) -> model path, causes: any of these on the error line)
CASES = [
    # the eight tracebacks of the issue
    ("width-huge", _set("model_args", "width", 1e9), "model_args.width=1000000000.0"),
    ("window-huge", _set("info.task", "window_s", 1e9), "info.task.window_s="),
    ("hop-length-zero", _set("features", "hop_length", 0), "features.hop_length=0"),
    ("sr-zero", _set("features", "sr", 0), "features.sr=0"),
    ("n-mels-huge", _set("features", "n_mels", 10**7), "features.n_mels=10000000"),
    ("metadata-json-list", _meta(lambda m: [m]), "is a JSON list, not a JSON object"),
    ("n-fft-huge", _set("features", "n_fft", 10**9), "features.n_fft="),
    ("embed-dim-huge", _set("model_args", "embed_dim", 10**9), "model_args.embed_dim="),
    # the six bare ValueError/KeyError of the issue
    ("width-negative", _set("model_args", "width", -1), "model_args.width=-1"),
    ("seg-num-negative", _meta(_adff({"seg_num": -1})), "model_args.seg_num=-1"),
    ("unknown-model-arg", _set("model_args", "no_such_arg", 1), "model_args.no_such_arg=1: unknown argument"),
    ("unknown-feature-key", _set("features", "no_such_key", 1), "features.no_such_key=1: unknown"),
    ("unknown-task-option", _set("info.task", "no_such_option", 1), "info.task.no_such_option=1: unknown"),
    ("bad-task-kind", _set("info.task", "kind", "nope"), 'info.task.kind="nope": unknown task kind'),
    # non-finite weights
    ("nan-weights", _tensors(_poison(float("nan"))), "non-finite weights (1 NaN"),
    ("inf-weights", _tensors(_poison(float("inf"))), "non-finite weights (0 NaN, 1 inf"),
    # the metadata's structure
    ("metadata-not-json", _meta(lambda m: "{format: 1, model_name: damff"), "not valid JSON"),
    ("metadata-json-number", _meta(lambda m: "42"), "is a JSON number, not a JSON object"),
    ("metadata-json-string", _meta(lambda m: '"damff"'), "is a JSON string, not a JSON object"),
    ("metadata-too-deep", _meta(lambda m: "[" * 100_000 + "]" * 100_000), "cannot be read as JSON"),
    ("missing-model-name", _meta(_without("model_name")), "model_name=null: unknown model"),
    ("unknown-model", _set("", "model_name", "nonexistent"), 'model_name="nonexistent": unknown model'),
    ("format-from-the-future", _set("", "format", 2), "format=2: written by a newer moodscope"),
    ("format-not-a-number", _set("", "format", True), "format=true: not a model file format"),
    ("unknown-metadata-key", _set("", "weights_url", "x"), "weights_url: unknown metadata key"),
    (
        "model-args-not-object",
        _set("", "model_args", [1, 2]),
        "model_args=<a list of 2 item(s)>: must be an object",
    ),
    ("width-not-a-number", _set("model_args", "width", "wide"), 'model_args.width="wide": must be a number'),
    ("width-nan", _meta(lambda m: json.dumps(m).replace('"width": 0.0625', '"width": NaN')), "width=NaN"),
    ("lstm-layers-bool", _set("model_args", "lstm_layers", True), "model_args.lstm_layers=true"),
    (
        "architecture-too-big",
        _meta(lambda m: _args(m, embed_dim=4096, lstm_hidden=4096, lstm_layers=8)),
        "GiB",
    ),
    ("features-do-not-fit-model", _set("model_args", "n_mels", 64), "features do not fit model 'damff'"),
    ("extras-on-logmel", _set("features", "extras", ["mode"]), "features: feature extras"),
    (
        "task-kind-not-the-models",
        _set("info.task", "kind", "static"),
        "model 'damff' gives 'dynamic' outputs",
    ),
    ("hop-not-a-step-multiple", _set("info.task", "hop_valence", 0.7), "info.task: valence hop"),
    ("task-not-object", _set("info", "task", "dynamic"), 'info.task="dynamic": must be an object'),
    # the weights
    ("truncated-safetensors", _truncated, "not a safetensors model file"),
    ("zero-byte-file", _zero_bytes, "not a safetensors model file"),
    ("folder-as-model", _folder, "is a folder, not a model file"),
    ("missing-file", _missing, "model file not found"),
    ("fifo-as-model", _fifo, "a FIFO, not a model file"),
    ("link-loop", _link_loop, "a link loop, not a model file"),
    ("broken-link", _broken_link, "a broken link, not a model file"),
    ("foreign-safetensors", _foreign, "no 'moodscope' metadata"),
    ("tensor-shape-mismatch", _set("model_args", "lstm_hidden", 5), "shape mismatch"),
    ("tensor-missing", _tensors(lambda t: {k: v for k, v in t.items() if k != _first(t)}), "missing tensors"),
    (
        "tensor-unexpected",
        _tensors(lambda t: {**t, "extra.weight": torch.zeros(3)}),
        "unexpected tensors extra.weight",
    ),
    (
        "tensor-wrong-dtype",
        _tensors(lambda t: {**t, "head.fc.weight": t["head.fc.weight"].to(torch.int32)}),
        "dtype I32",
    ),
]


@pytest.mark.parametrize("make, cause", [pytest.param(m, c, id=k) for k, m, c in CASES])
def test_bad_model_file(cli, tmp_path, tiny_model, clip, make, cause):
    model = make(tmp_path / "bad.safetensors", tiny_model)
    run = cli("predict", clip, "--model", model)
    line = assert_clean_error(run, code=2, name=str(model), cause=cause)
    assert line.startswith("moodscope predict: error: ") and len(run.lines()) == 1, run.err
    assert run.out == ""
    assert leftovers(tmp_path) == []


def test_every_kind_is_refused_by_the_python_api_too(tmp_path, tiny_model):
    """``load_model`` (the path of predict, evaluate, compare and ``moodscope.load_model``) raises
    ModelFileError for every kind, the message naming the file."""
    for kind, make, _ in CASES:
        model = make(tmp_path / f"{kind}.safetensors", tiny_model)
        with pytest.raises(ModelFileError, match=str(model)):
            load_model(model)


def test_evaluate_refuses_a_bad_model_before_reading_the_dataset(cli, tmp_path, tiny_model):
    model = _tensors(_poison(float("nan")))(tmp_path / "nan.safetensors", tiny_model)
    run = cli("evaluate", "--model", model, "--root", tmp_path / "no-such-dataset")
    assert_clean_error(run, code=2, name=str(model), cause="non-finite weights")


def test_a_good_file_still_predicts(cli, tiny_model, clip):
    run = cli("predict", clip, "--model", tiny_model)
    assert run.code == 0, run.err
    assert json.loads(run.out)["file"] == str(clip)


def test_nothing_is_allocated_for_a_big_architecture(tmp_path, tiny_model):
    """A file naming an architecture of 12 GiB is refused from its skeleton (meta device), without allocating
    it; one within the cap but not matching the file's tensors is refused from the header, before it is built."""
    import time

    big = _meta(lambda m: _args(m, embed_dim=4096, lstm_hidden=4096, lstm_layers=8))
    t0 = time.monotonic()
    with pytest.raises(
        ModelFileError, match=r": model_args: model 'damff' of these arguments has 1\d.\d GiB"
    ):
        load_model(big(tmp_path / "big.safetensors", tiny_model))
    large = _meta(lambda m: _args(m, embed_dim=4096, lstm_hidden=4096, lstm_layers=1))  # 0.5 GiB
    with pytest.raises(ModelFileError, match=r"weights do not match model 'damff'.*shape mismatch"):
        load_model(large(tmp_path / "large.safetensors", tiny_model))
    assert time.monotonic() - t0 < 5


# ------------------------------------------------------------------------------------ the checker itself


def test_setting_error_is_one_line_key_value_why():
    e = SettingError("width", 1e9, "must be a number in (0, 8]")
    assert str(e) == "width=1000000000.0: must be a number in (0, 8]"
    assert str(e.within("model_args")) == "model_args.width=1000000000.0: must be a number in (0, 8]"
    assert isinstance(e, ValueError)


def test_shown_never_echoes_containers_and_cuts_strings():
    assert shown({"secret": "x" * 100}) == "<an object of 1 key(s)>"
    assert shown(["a", "b", "c"]) == "<a list of 3 item(s)>"
    assert shown("y" * 100).endswith('…"') and len(shown("y" * 100)) < 50
    assert shown(10**400).startswith("<an integer of 401 digits")
    assert shown(float("nan")) == "NaN" and shown(None) == "null" and shown(True) == "true"
    assert "\n" not in shown("line\nbreak")


@pytest.mark.parametrize(
    "setting, good, bad",
    [
        (integer(1, 10), [1, 10, torch.tensor(3).item()], [0, 11, 2.0, True, "3", None, 10**400]),
        (integer(1, 10, none=True), [None, 5], [0, "x"]),
        (
            number(0, 8, lo_open=True),
            [8, 1e-9, 3],
            [0, -1, 8.001, float("nan"), float("inf"), True, "1", None],
        ),
        (number(0, 1, hi_open=True), [0, 0.5], [1, 1.0]),
        (flag(), [True, False], [0, 1, "true", None]),
        (choice(("a", "b")), ["a", "b"], ["c", None, 1, ["a"]]),
        (integer_list(1, 9, max_len=3), [[1], (2, 3), [9, 9, 9]], [[], [0], [1, 2, 3, 4], [1.5], "12", 3]),
        (number_list(0, 1, max_len=2, none=True), [None, [], [0.5, 1]], [[2], [0.1, 0.2, 0.3], ["x"]]),
        (text_list(max_len=2, unique=True), [[], ["a", "b"]], [["a", "a"], ["a", "b", "c"], [1], "ab"]),
        (text_list(choices=("mode",), max_len=1), [[], ["mode"]], [["mood"], ["mode", "mode"]]),
        (int_or_pair(1, 16), [2, [2, 3], (1, 16)], [0, [2], [2, 3, 4], [2, 17], 2.0]),
        (
            mapping({"valence": choice(("ccc",))}, none=True),
            [None, {}, {"valence": "ccc"}],
            [{"x": 1}, [], "ccc"],
        ),
    ],
)
def test_settings_accept_and_refuse(setting, good, bad):
    for v in good:
        assert setting(v) is None, (v, setting(v))
    for v in bad:
        assert isinstance(setting(v), str), v


def test_check_settings_names_the_first_bad_key():
    specs = {"a": integer(0, 1), "b": flag()}
    check_settings({"a": 1, "b": False}, specs)
    with pytest.raises(SettingError, match=r"^b=1: must be true or false$"):
        check_settings({"a": 0, "b": 1}, specs)
    with pytest.raises(SettingError, match=r"^c=2: unknown thing; known: a, b$"):
        check_settings({"c": 2, "b": 1}, specs, what="thing")
    with pytest.raises(
        SettingError, match=r"losses=<an object of 1 key\(s\)>: valence=\"x\": must be one of"
    ):
        check_settings({"losses": {"valence": "x"}}, {"losses": mapping({"valence": choice(("ccc",))})})


def test_feature_settings_are_checked_on_construction():
    with pytest.raises(SettingError, match=r"^hop_length=0: must be an integer"):
        FeatureConfig(hop_length=0)
    with pytest.raises(SettingError, match=r"^hop_length=1: gives 4.41e\+04 frames/s"):
        FeatureConfig(hop_length=1)
    with pytest.raises(SettingError, match=r"^fmax=30000.0: must be at most sr / 2"):
        FeatureConfig(fmax=30000.0)
    with pytest.raises(SettingError, match=r"^fmin=9000.0: must be below fmax"):
        FeatureConfig(fmin=9000.0, fmax=8000.0)
    with pytest.raises(SettingError, match=r"^sr=16000.0: must be an integer"):
        FeatureConfig(sr=16000.0)
    with pytest.raises(SettingError, match=r"^nope=1: unknown feature setting"):
        FeatureConfig.from_dict({"nope": 1})


def test_every_model_declares_settings_for_exactly_its_arguments():
    import inspect

    from moodscope.models import MODELS, MoodModel, register_model

    for name in MODELS.names():
        cls = MODELS.get(name)
        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert sorted(cls.arg_settings) == sorted(params), name

    class Undeclared(MoodModel):
        arg_settings = {"width": number(0, 1)}

        def __init__(self, *, width: float = 1.0, depth: int = 2):
            super().__init__()

    with pytest.raises(TypeError, match=r"lacks \['depth'\]"):
        register_model("undeclared-test-model")(Undeclared)
    assert "undeclared-test-model" not in MODELS


def test_every_task_declares_settings_for_exactly_its_options():
    import inspect

    from moodscope.tasks import TASKS

    for kind in TASKS.names():
        cls = TASKS.get(kind)
        params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "features")]
        assert sorted(cls.option_settings) == sorted(params), kind


# ------------------------------------------------------------------------ every real model file passes


@pytest.mark.parametrize("name", ["default", "demo"])
def test_bundled_models_pass_validation(name):
    from moodscope.inference.predictor import bundled_model_path
    from moodscope.models import resolve_args

    path = bundled_model_path(name)
    bundle = load_model(path)
    stored = read_metadata(path)["model_args"]
    # the file's arguments, plus the defaults of arguments added since it was made (e.g. musicnn_va's clip_head)
    assert bundle.model.model_args == {**resolve_args(bundle.model.model_name, {}), **stored}


def test_bundled_musicnn_front_end_passes_validation():
    from moodscope.models.musicnn import load_musicnn

    assert len(load_musicnn("msd").tags) == 50


def _config_models():
    """``(label, metadata)`` of the model file each config of ``configs/`` (each sweep row, each head) would
    write: model arguments, features and task as the trainer resolves them."""
    from moodscope.models import MODELS, resolve_args
    from moodscope.tasks import TASKS
    from moodscope.training.config import load_config
    from moodscope.training.fold import experiment_task, model_features

    out = []
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)
        rows = {"": {}, **(cfg.get("sweep") or {})}
        for row, overrides in rows.items():
            c = copy.deepcopy(cfg)
            for dotted, value in overrides.items():
                *parents, last = dotted.split(".")
                d = c
                for p in parents:
                    d = d.setdefault(p, {})
                d[last] = value
            name = c["model"]["name"]
            args = dict(c["model"].get("args") or {})
            heads = args.get("task") if isinstance(args.get("task"), list) else [args.get("task")]
            for head in heads:
                a = {**args, "task": head} if head is not None else args
                c["model"]["args"] = a
                kind = MODELS.get(name).output
                full = resolve_args(name, TASKS.get(kind).model_args(a, None))
                features = model_features(c, name)
                task = experiment_task(c, kind, features, full, None)
                meta = {
                    "format": 1,
                    "model_name": name,
                    "model_args": full,
                    "features": features.to_dict(),
                    "info": {"description": c.get("name"), "task": task.info()},
                }
                out.append((f"{path.stem}[{row}]{head or ''}", json.loads(json.dumps(meta))))
    return out


def test_every_configured_model_passes_validation():
    """Metadata, arguments, features, task and the architecture's size (a meta-device skeleton: no weights
    are allocated) of every model the configs train."""
    seen = set()
    for label, meta in _config_models():
        checked, skeleton = check_architecture(Path(label), meta)
        assert checked.name == meta["model_name"], label
        seen.add(meta["model_name"])
    assert {"damff", "adff", "tagger", "musicnn_va"} <= seen


def _checked(name: str, args: dict, task: dict, features: dict | None = None):
    meta = {
        "format": 1,
        "model_name": name,
        "model_args": args,
        "features": features or {},
        "info": {"task": task},
    }
    return check_architecture(Path("m.safetensors"), meta)


@pytest.mark.parametrize(
    "name, args, task, match",
    [
        (
            "adff",
            {"task": "quadrant"},
            {"kind": "static", "head": "multitask"},
            r"info\.task\.head=\"multitask\"",
        ),
        (
            "adff",
            {"seg_num": 200},
            {"kind": "static", "seg_len_s": 1.0},
            r"info\.task\.seg_len_s=1\.0: 100 frames",
        ),
        (
            "adff",
            {},
            {"kind": "static", "seg_len_s": 0.001},
            r"info\.task\.seg_len_s=0\.001: shorter than one",
        ),
        (
            "tagger",
            {"n_tags": 3},
            {"kind": "tags", "tag_names": ["a", "b"]},
            r"info\.task\.tag_names=.*2 for a model",
        ),
        (
            "tagger",
            {},
            {"kind": "tags", "tag_names": ["a"], "thresholds": [0.5, 0.5]},
            r"info\.task\.thresholds=.*: 2 thresholds for 1 tag",
        ),
        ("tagger", {}, {"kind": "tags", "thresholds": [2.0]}, r"info\.task\.thresholds=.*item 0 is 2\.0"),
        (
            "tagger",
            {},
            {"kind": "tags", "seg_len_s": 0.1},
            r"info\.task\.seg_len_s=0\.1: 10 frames; the model needs windows of at least 16",
        ),
        (
            "damff",
            {},
            {"kind": "dynamic", "losses": {"valence": "l7"}},
            r"info\.task\.losses=.*valence=\"l7\"",
        ),
        (
            "musicnn_va",
            {},
            {"kind": "mood", "mood_tags": ["grumpy"]},
            r"info\.task\.mood_tags=\"grumpy\": not one",
        ),
        (
            "damff",
            {"arch": "hybrid", "n_mels": 4},
            {"kind": "dynamic"},
            r"model_args: a segment of 50 frames x 4",
        ),
        (
            "dnn_raw",
            {},
            {"kind": "dynamic"},
            r"features do not fit model 'dnn_raw': their frames are 128 values",
        ),
    ],
)
def test_task_and_model_must_fit(name, args, task, match):
    features = {"kind": "musicnn", **FeatureConfig.for_kind("musicnn", extras=("mode",)).to_dict()}
    with pytest.raises(ModelFileError, match=r"^m\.safetensors: " + match):
        _checked(name, args, task, features if name == "musicnn_va" else None)


def test_the_musicnn_front_end_loader_checks_its_file_too(tmp_path):
    """The converted MusiCNN file (loaded by the musicnn features) goes through the same checks."""
    from moodscope.models.musicnn import _BUNDLED, load_musicnn

    src = ROOT / "src" / "moodscope" / "assets" / _BUNDLED["msd"]
    with safe_open(str(src), framework="pt") as f:
        raw = f.metadata()
    tensors = load_file(str(src))
    meta = json.loads(raw["musicnn"])
    bad = tmp_path / "musicnn.safetensors"

    save_file(
        tensors, str(bad), metadata={"musicnn": json.dumps({**meta, "model_args": {"n_timbral": 10**9}})}
    )
    with pytest.raises(
        ModelFileError, match=r"musicnn\.safetensors: model_args\.n_timbral=1000000000: must be"
    ):
        load_musicnn(bad)
    save_file(tensors, str(bad), metadata={"musicnn": json.dumps({**meta, "tags": meta["tags"][:3]})})
    with pytest.raises(ModelFileError, match=r"tags=<a list of 3 item\(s\)>: must be 50 tag names"):
        load_musicnn(bad)
    poisoned = dict(tensors)
    poisoned["dense.bias"] = tensors["dense.bias"].clone()
    poisoned["dense.bias"][7] = float("nan")
    save_file(poisoned, str(bad), metadata=raw)
    with pytest.raises(
        ModelFileError, match=r"musicnn\.safetensors: tensor dense\.bias holds non-finite weights"
    ):
        load_musicnn(bad)
    save_file(tensors, str(bad), metadata={"musicnn": "[]"})
    with pytest.raises(ModelFileError, match=r"is a JSON list, not a JSON object"):
        load_musicnn(bad)
