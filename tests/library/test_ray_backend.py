"""The Ray backend (moodscope.library.ray_backend): results as exact JSON, the actor in-process, object-store
URIs through pyarrow filesystems, the missing-Ray message, and a local 2-CPU Ray cluster against run_local."""

from __future__ import annotations

import json
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from badinput.harness import write_clip
from moodscope.errors import MissingToolError, MoodscopeError
from moodscope.inference.predictor import Predictor, Result
from moodscope.library.jobs import ModelSpec, run_local
from moodscope.library.ray_backend import (
    _Analyser,
    _check_reachable,
    _result_from_dict,
    _result_to_dict,
    is_uri,
    run_ray,
)
from tools import needs


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Nothing a Ray test starts may report usage or open a dashboard."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_DISABLE_USAGE_STATS", "1")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[str]:
    """Five 3 s clips (different seeds, one stereo FLAC) and one file that is not audio."""
    d = tmp_path_factory.mktemp("ray-clips")
    paths = [write_clip(d / f"clip{i}.wav", 3.0, seed=i) for i in range(4)]
    paths.append(write_clip(d / "clip4.flac", 3.0, seed=4))
    bad = d / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 8)
    return [str(p) for p in [*paths, bad]]


def assert_same_result(a: Result, b: Result, tol: float = 0.0) -> None:
    assert (a.file, a.model, a.quadrant) == (b.file, b.model, b.quadrant)
    assert a.duration_s == b.duration_s
    assert a.static.keys() == b.static.keys()
    np.testing.assert_allclose([a.static[k] for k in a.static], [b.static[k] for k in a.static], atol=tol)
    assert (a.dynamic is None) == (b.dynamic is None)
    if a.dynamic is not None:
        assert a.dynamic["hop_s"] == b.dynamic["hop_s"]
        for k in ("times_s", "valence", "arousal"):
            assert a.dynamic[k].dtype == b.dynamic[k].dtype, k
            np.testing.assert_allclose(a.dynamic[k], b.dynamic[k], atol=tol, err_msg=k)
    assert a.tags == b.tags
    assert {k: v for k, v in a.extra.items() if k != "seconds"} == {
        k: v for k, v in b.extra.items() if k != "seconds"
    }


# -- results as JSON --------------------------------------------------------------------------------------
def test_result_round_trips_exactly_through_json(tiny_model, clips):
    res = Predictor.from_file(tiny_model).predict(clips[0])
    res.extra["seconds"] = 0.123
    assert res.dynamic is not None and len(res.dynamic["valence"]) >= 5
    back = _result_from_dict(json.loads(json.dumps(_result_to_dict(res))))
    assert_same_result(res, back)  # tol 0: exact, unlike Result.to_dict's rounding
    for k in ("valence", "arousal"):
        assert np.array_equal(res.dynamic[k], back.dynamic[k])
    assert back.static == res.static and back.extra == res.extra
    # rounding would not survive: the exact form differs from the rounded one for these values
    assert _result_to_dict(res)["static"] != res.to_dict()["static"]


def test_result_round_trip_keeps_nan_tags_and_static_models():
    res = Result(
        file="a.wav",
        duration_s=12.34567,
        model="m",
        static={"valence": 0.123456789, "arousal": float("nan")},
        quadrant="",
        tags={"happy": 0.25, "sad": float("nan")},
        extra={"tags_predicted": ["happy"]},
    )
    text = json.dumps(_result_to_dict(res), allow_nan=False)  # standard JSON: NaN is null
    back = _result_from_dict(json.loads(text))
    assert back.static["valence"] == res.static["valence"] and np.isnan(back.static["arousal"])
    assert back.tags["happy"] == 0.25 and np.isnan(back.tags["sad"])
    assert (back.file, back.duration_s, back.dynamic, back.extra) == ("a.wav", 12.34567, None, res.extra)


# -- the actor, in this process ---------------------------------------------------------------------------
def test_is_uri():
    assert is_uri("s3://bucket/a.mp3") and is_uri("gs://b/x.wav") and is_uri("file:///tmp/a.wav")
    assert not is_uri("/music/a.wav") and not is_uri("music/s3:/a.wav") and not is_uri("C:\\music\\a.wav")


@needs("ray")  # pyarrow's filesystems, which come with the ray extra
def test_actor_ships_the_model_and_reads_uris(tiny_model, clips, tmp_path, monkeypatch):
    """The actor as Ray runs it: model bytes from the driver, a local path, a file:// URI through pyarrow
    (copied to a temporary file, deleted after), a URI that does not exist, and a bad file."""
    temp = tmp_path / "worker-tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    actor = _Analyser(ModelSpec(str(tiny_model)), Path(tiny_model).read_bytes(), 1)
    assert actor.load_error is None
    uri = Path(clips[1]).as_uri()
    missing = (tmp_path / "gone.wav").as_uri()
    given = [clips[0], uri, missing, clips[-1]]
    rows = actor({"path": np.array(given, dtype=object), "source": np.array(given, dtype=object)})
    assert rows["path"] == given and rows["fatal"] == [None] * 4
    local = {o.path: o for o in run_local(ModelSpec(str(tiny_model)), [clips[0], clips[1]], jobs=1)}
    first = _result_from_dict(json.loads(rows["result"][0]))
    assert_same_result(local[clips[0]].result, first)
    via_uri = _result_from_dict(json.loads(rows["result"][1]))
    assert via_uri.file == uri  # the path as given, not the temporary copy
    local[clips[1]].result.file = uri
    assert_same_result(local[clips[1]].result, via_uri)
    assert rows["error"][:2] == [None, None]
    assert rows["result"][2] is None and rows["error"][2].startswith("cannot read it (")
    assert "gone.wav" in rows["error"][2]  # pyarrow names the object it could not open
    assert rows["result"][3] is None and rows["error"][3]
    assert list(temp.iterdir()) == []  # neither the model's copy nor the object's is left


def test_actor_that_cannot_load_the_model_reports_it(tmp_path):
    given = tmp_path / "m.safetensors"
    actor = _Analyser(ModelSpec(str(given)), b"not a model file", 1)
    assert actor.load_error and str(given) in actor.load_error and "moodscope-model-" not in actor.load_error
    rows = actor({"path": np.array(["a.wav"], dtype=object), "source": np.array(["/a.wav"], dtype=object)})
    assert rows["fatal"] == [actor.load_error] and rows["result"] == [None]


# -- without Ray -------------------------------------------------------------------------------------------
def test_missing_ray_is_one_line_with_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(MissingToolError) as e:
        run_ray(ModelSpec("demo"), ["a.wav"], jobs=1)  # at the call, before any outcome is asked for
    assert str(e.value) == 'Ray is not installed: the ray backend needs it (pip install "moodscope[ray]")'
    assert list(run_ray(ModelSpec("demo"), [], jobs=1)) == []  # nothing to do needs no Ray


def test_a_cluster_address_that_does_not_answer_is_one_line_at_once():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MoodscopeError, match=rf"cannot reach the Ray cluster at 127\.0\.0\.1:{port} \("):
        _check_reachable(f"127.0.0.1:{port}", timeout_s=5)
    _check_reachable("auto")  # not host:port: Ray's to find


# -- a local Ray cluster ---------------------------------------------------------------------------------
@needs("ray")
def test_local_ray_cluster_gives_the_local_backends_outcomes(tiny_model, clips):
    import ray

    spec = ModelSpec(str(tiny_model))
    local = {o.path: o for o in run_local(spec, clips, jobs=1)}
    uri = Path(clips[0]).as_uri()
    try:
        got = list(run_ray(spec, [*clips, uri], jobs=2, address=None))
        assert not ray.is_initialized()  # the cluster this run started is shut down
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert sorted(o.path for o in got) == sorted([*clips, uri])
    by_path = {o.path: o for o in got}
    for p in clips:
        a, b = local[p], by_path[p]
        assert a.error == b.error, p
        if a.result is None:
            assert b.result is None and a.error
            continue
        assert b.seconds > 0
        assert_same_result(a.result, b.result, tol=1e-5)
    assert by_path[uri].error is None and by_path[uri].result.file == uri
    assert by_path[uri].result.static == by_path[clips[0]].result.static


@pytest.mark.slow
@needs("ray")
def test_an_actor_that_cannot_load_the_model_stops_the_run(tmp_path, clips, monkeypatch):
    """Through Ray: the actors' one-line cause reaches the driver as a MoodscopeError (not a Ray traceback)."""
    import ray

    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    try:
        with pytest.raises(
            MoodscopeError, match="a Ray worker could not load the model: .*broken.safetensors"
        ):
            list(run_ray(ModelSpec(str(bad)), clips[:2], jobs=1))
        assert not ray.is_initialized()
    finally:
        if ray.is_initialized():
            ray.shutdown()
