"""``moodscope serve``'s API as a client uses it (FastAPI's TestClient over httpx): the page, predictions of good
and bad uploads, the limits (413 before the body is read whole, the duration cap), the bounded queue (503 with
Retry-After), the private temporary folders, and the command line's one-line errors.

Most tests use the tiny DAMFF of the bad-input harness (``tiny_model``); one predicts a 10 s clip with the real
default model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import stat
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from badinput.harness import SR, write_clip

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from moodscope.emotion import QUADRANT_NAMES  # noqa: E402
from moodscope.inference.predictor import Predictor  # noqa: E402
from moodscope.serve.app import UPLOAD_PREFIX, create_app  # noqa: E402
from tools import needs  # noqa: E402


@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    """The folder the server's private temporary folders are made in (``tempfile``'s default, redirected)."""
    folder = tmp_path / "server-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def upload_folders(folder: Path) -> list[Path]:
    """The server's private upload folders in ``folder`` (other libraries may keep files of their own there)."""
    return sorted(p for p in folder.iterdir() if p.name.startswith(UPLOAD_PREFIX))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("serve-clips") / "song.wav", 3.0)


@pytest.fixture
def client(tiny_model, uploads):
    with TestClient(create_app(tiny_model, max_mb=1, queue=4)) as c:
        yield c


def post(client, name: str, data: bytes, content_type: str = "audio/wav", **kw):
    return client.post("/predict", files={"file": (name, data, content_type)}, **kw)


class Gated:
    """A predictor whose predictions wait for ``gate``: requests stay in progress as long as a test needs."""

    def __init__(self, inner: Predictor):
        self.inner, self.bundle, self.model, self.device = inner, inner.bundle, inner.model, inner.device
        self.name = inner.name
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def predict(self, source, **kw):
        self.started.release()
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.predict(source, **kw)


# ------------------------------------------------------------------------------------------------ happy paths
def test_predict_returns_what_moodscope_predict_writes(client, clip, cli, uploads, tiny_model):
    r = post(client, "../../etc/My Song.wav", clip.read_bytes())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    got = r.json()
    assert got["file"] == "My Song.wav"  # the client's name, folders stripped: display only
    run = cli("predict", clip, "--model", tiny_model, "--quiet")
    assert run.code == 0, run.err
    want = json.loads(run.out)
    for d in (got, want):
        d.pop("file")
        d.pop("seconds")  # the time the prediction took
    assert got == want
    assert got["dynamic"]["hop_s"] == 0.5 and len(got["dynamic"]["valence"]) == len(got["dynamic"]["times_s"])
    values = [*got["static"].values(), *got["dynamic"]["valence"], *got["dynamic"]["arousal"]]
    assert all(-1 <= v <= 1 for v in values)
    assert upload_folders(uploads) == []  # the private folder went with the request


def test_default_model_on_a_10s_clip(tmp_path, uploads):
    clip = write_clip(tmp_path / "ten.flac", 10.0, seed=3)
    with TestClient(create_app()) as c:
        assert c.get("/models").json()["loaded"] == "default"
        r = post(c, "ten seconds.flac", clip.read_bytes(), "audio/flac")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["file"] == "ten seconds.flac" and d["duration_s"] == pytest.approx(10.0, abs=0.05)
    assert d["quadrant"] in QUADRANT_NAMES
    assert d["tags"] and all(0 <= p <= 1 for p in d["tags"].values())
    assert d["dynamic"]["times_s"][-1] <= 10.0 and len(d["dynamic"]["times_s"]) >= 15
    assert upload_folders(uploads) == []


def test_a_name_without_extension_uses_the_part_content_type(client, clip):
    r = post(client, "recording", clip.read_bytes(), "audio/wav")
    assert r.status_code == 200, r.text
    assert r.json()["file"] == "recording"


def test_control_characters_in_the_name_are_escaped(client, clip):
    # raw bytes: httpx, like browsers, sends some of them percent-encoded; a hand-made client need not
    body = b"".join(_multipart("a\x1b[31mred\x07.wav", [clip.read_bytes()]))
    r = client.post(
        "/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["file"] == "a\\x1b[31mred\\x07.wav"
    bad = post(client, "x\x1by.wav", b"not audio at all")
    assert bad.status_code == 422 and bad.json()["error"].startswith("x\\x1by.wav: ")


def test_health_models_and_the_page(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["queue"] == 0 and h["queue_max"] == 4 and h["workers"] == 1
    assert h["max_mb"] == 1 and h["max_bytes"] == 2**20 and h["max_minutes"] == 20
    m = client.get("/models").json()
    assert m["loaded"] == "tiny.safetensors"
    names = [e["name"] for e in m["models"]]
    assert names[:2] == ["default", "demo"] and "tiny.safetensors" in names
    for e in m["models"]:
        assert {"name", "file", "output"} <= set(e) and "/" not in e["file"]  # no server path
    assert [e["loaded"] for e in m["models"]].count(True) == 1
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.content, name
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path", ["/static/nope.js", "/static/..%2f..%2fapp.py", "/static/%2e%2e", "/static/.", "/../app.py"]
)
def test_static_serves_only_the_files_of_its_folder(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "error" in r.json()


# ------------------------------------------------------------------------------------------------ bad input
def _bad(kind: str, d: Path) -> Path:
    """A bad upload of ``kind`` written to ``d`` (the name the client sends is the file's name)."""
    rng = np.random.default_rng(0)
    if kind == "garbage_wav":
        p = d / "garbage.wav"
        p.write_bytes(rng.bytes(4000))
    elif kind == "text_as_mp3":
        p = d / "notes.mp3"
        p.write_text("these are my notes, not music\n" * 50)
    elif kind == "truncated_wav":
        p = write_clip(d / "cut.wav", 4.0)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif kind == "silent":
        p = d / "silent.wav"
        sf.write(str(p), np.zeros(SR * 3, np.float32), SR)
    elif kind == "nan_samples":
        p = d / "nan.wav"
        y = np.full(SR * 3, 0.1, np.float32)
        y[1000] = np.nan
        sf.write(str(p), y, SR, subtype="FLOAT")
    elif kind == "empty":
        p = d / "empty.flac"
        p.write_bytes(b"")
    elif kind == "unknown_extension":
        p = d / "notes.txt"
        p.write_text("hello")
    elif kind == "m4a_garbage":
        p = d / "voice memo.m4a"
        p.write_bytes(rng.bytes(3000))
    return p


BAD_KINDS = [
    "garbage_wav",
    "text_as_mp3",
    "truncated_wav",
    "silent",
    "nan_samples",
    "empty",
    "unknown_extension",
    pytest.param("m4a_garbage", marks=needs("ffmpeg")),
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_audio_gets_the_cli_cause_as_422(kind, client, cli, tmp_path, uploads, tiny_model):
    """The same one line as ``moodscope predict`` gives, about the client's file name, never the server's copy."""
    bad = _bad(kind, tmp_path)
    r = post(client, bad.name, bad.read_bytes(), "application/octet-stream")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/json"
    message = r.json()["error"]
    assert list(r.json()) == ["error"] and "\n" not in message
    run = cli("predict", bad, "--model", tiny_model, "--quiet")
    assert run.code in (1, 2), run.err
    line = next(ln for ln in run.lines() if str(bad) in ln)
    cause = line.split(f"{bad}: ", 1)[1]
    assert message == f"{bad.name}: {cause.replace(str(bad), bad.name)}"
    assert "moodscope-serve-" not in message and str(uploads) not in message and "upload." not in message
    assert upload_folders(uploads) == []  # removed after a failing request too


def test_missing_field_and_empty_and_two_files(client, clip):
    r = client.post("/predict", files={"audio": ("song.wav", clip.read_bytes(), "audio/wav")})
    assert r.status_code == 422 and "no file uploaded" in r.json()["error"]
    r = client.post("/predict", data={"file": "not a file"}, files={"other": ("x", b"1")})
    assert r.status_code == 422 and "no file" in r.json()["error"]
    r = post(client, "", clip.read_bytes())
    assert r.status_code == 422 and "no file" in r.json()["error"]
    r = post(client, "zero.wav", b"")
    assert r.status_code == 422 and r.json()["error"] == "zero.wav: empty file (0 bytes)"
    two = [
        ("file", ("a.wav", clip.read_bytes(), "audio/wav")),
        ("file", ("b.wav", clip.read_bytes(), "audio/wav")),
    ]
    r = client.post("/predict", files=two)
    assert r.status_code == 422 and r.json()["error"].startswith("a.wav: one file per request")


def test_wrong_content_type_is_415_and_a_malformed_body_400(client, clip):
    r = client.post("/predict", content=clip.read_bytes(), headers={"content-type": "audio/wav"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
    assert client.post("/predict", json={"file": "/etc/passwd"}).status_code == 415
    assert client.post("/predict", data={"file": "/etc/passwd"}).status_code == 415  # urlencoded form
    assert client.post("/predict").status_code == 415
    r = client.post("/predict", content=b"x" * 100, headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and "boundary" in r.json()["error"]
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF....'
    r = client.post("/predict", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 400 and "closing boundary" in r.json()["error"]
    r = client.get("/predict")
    assert r.status_code == 405 and "error" in r.json()


def test_a_cross_origin_browser_request_is_refused(client, clip):
    r = post(client, "song.wav", clip.read_bytes(), headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    r = post(client, "song.wav", clip.read_bytes(), headers={"origin": "http://testserver"})
    assert r.status_code == 200, r.text


def test_a_host_it_was_not_told_is_refused(tiny_model, clip, uploads):
    """DNS rebinding: a server bound to loopback answers only to its loopback names."""
    with TestClient(create_app(tiny_model, allowed_hosts=["127.0.0.1", "localhost"])) as c:
        assert c.get("/health").status_code == 400
    with TestClient(
        create_app(tiny_model, allowed_hosts=["127.0.0.1"]), base_url="http://127.0.0.1:8000"
    ) as c:
        assert c.get("/health").status_code == 200
        assert post(c, "song.wav", clip.read_bytes()).status_code == 200


# ------------------------------------------------------------------------------------------------ limits
def test_oversize_upload_is_413_naming_the_file(client, uploads):
    r = post(client, "huge.wav", b"\0" * (2 * 2**20))
    assert r.status_code == 413
    assert r.json()["error"] == "huge.wav: larger than this server's limit of 1 MiB (--max-mb)"
    assert upload_folders(uploads) == []


def _multipart(name: str, payload_chunks, boundary=b"b0undary"):
    yield (
        b"--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="file"; filename="'
        + name.encode()
        + b'"\r\n'
        b"Content-Type: audio/wav\r\n\r\n"
    )
    yield from payload_chunks
    yield b"\r\n--" + boundary + b"--\r\n"


def _scope(content_length: int | None = None) -> dict:
    """The ASGI scope of a multipart POST /predict (boundary ``b0undary``)."""
    headers = [(b"content-type", b"multipart/form-data; boundary=b0undary"), (b"host", b"testserver")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


def _asgi_post(app, chunks, *, content_length: int | None):
    """POST /predict straight to the ASGI app, the body in ``chunks``; returns (status, json, bytes consumed)."""
    consumed = 0
    chunks = iter(chunks)
    sent: list[dict] = []

    async def receive():
        nonlocal consumed
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        sent.append(message)

    asyncio.run(app(_scope(content_length), receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), consumed


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_413_comes_before_the_body_is_read_whole(declared, tiny_model, uploads):
    """With Content-Length the server reads only the part headers (to name the file); without one (chunked) it
    stops one chunk past the limit. Either way it never reads the 8 MiB the client would send."""
    app = create_app(tiny_model, max_mb=0.5)
    app.state.moodscope.start()
    piece = 64 * 1024
    total = 8 * 2**20
    status, body, consumed = _asgi_post(
        app,
        _multipart("big.wav", (b"\1" * piece for _ in range(total // piece))),
        content_length=total + 200 if declared else None,
    )
    app.state.moodscope.stop()
    assert status == 413 and body["error"].startswith("big.wav: larger than this server's limit of 0.5 MiB")
    assert consumed <= (piece + 200 if declared else 2**19 + 2 * piece), consumed
    assert upload_folders(uploads) == []


def _one_request(app, receive, timeout_s: float = 10.0) -> list:
    """The ASGI messages ``app`` sends for one POST /predict whose body comes from ``receive``."""
    sent = []

    async def send(m):
        sent.append(m)

    asyncio.run(asyncio.wait_for(app(_scope(), receive, send), timeout_s))
    return sent


def test_a_stalled_upload_is_408_and_frees_its_place(tiny_model, uploads, monkeypatch):
    from moodscope.serve import app as app_module

    monkeypatch.setattr(app_module, "UPLOAD_IDLE_S", 0.2)
    app = create_app(tiny_model, queue=1)
    state = app.state.moodscope
    state.start()

    def stalls():
        yield from _multipart("slow.wav", [b"RIFF"])  # never reaches its end: the client stops sending

    chunks = stalls()

    async def receive():
        chunk = next(chunks, None)
        if chunk is None:
            await asyncio.sleep(3600)
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent = _one_request(app, receive)
    state.stop()
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"].startswith("slow.wav: no data for 0.2 s")
    assert state.in_progress == 0 and upload_folders(uploads) == []


def _cancelled_during_prediction(app, gated, body: bytes, after_cancel) -> None:
    """Run one POST /predict of ``body`` until its prediction starts, cancel it (as a server's shutdown does), then
    ``await after_cancel()`` before the event loop ends."""
    chunks = iter([body])

    async def receive():
        chunk = next(chunks, None)
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message):
        pass

    async def run():
        task = asyncio.create_task(app(_scope(), receive, send))
        assert await asyncio.to_thread(gated.started.acquire, True, 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await after_cancel()

    asyncio.run(run())


def test_a_cancelled_request_keeps_its_place_until_its_prediction_ends(tiny_model, clip, uploads):
    """The queue bounds what runs, not what is awaited: a request cancelled while its prediction runs keeps its
    place and its folder until the prediction is over, then both go."""
    gated = Gated(Predictor.from_file(tiny_model))
    app = create_app(gated, queue=1)
    state = app.state.moodscope
    state.start()

    async def after_cancel():
        assert state.in_progress == 1 and len(upload_folders(uploads)) == 1
        gated.gate.set()
        for _ in range(400):
            if state.in_progress == 0:
                break
            await asyncio.sleep(0.05)

    _cancelled_during_prediction(app, gated, b"".join(_multipart("a.wav", [clip.read_bytes()])), after_cancel)
    state.stop()
    assert state.in_progress == 0 and upload_folders(uploads) == []


def test_shutdown_removes_the_folders_of_cancelled_requests(tiny_model, clip, uploads):
    """The event loop ends before the cancelled request's prediction does (a server stopping): stopping the app
    waits for the prediction, then removes the folder nobody is left to remove."""
    gated = Gated(Predictor.from_file(tiny_model))
    app = create_app(gated, queue=1)
    state = app.state.moodscope
    state.start()

    async def after_cancel():
        assert len(upload_folders(uploads)) == 1

    _cancelled_during_prediction(app, gated, b"".join(_multipart("a.wav", [clip.read_bytes()])), after_cancel)
    assert len(upload_folders(uploads)) == 1  # the prediction still runs: its file stays
    gated.gate.set()
    state.stop()
    assert upload_folders(uploads) == []


def test_duration_cap_is_checked_before_decoding(tiny_model, clip, uploads, monkeypatch):
    app = create_app(tiny_model, max_minutes=0.02)  # 1.2 s; the clip is 3 s
    with TestClient(app) as c:
        monkeypatch.setattr(
            app.state.moodscope.predictor, "predict", lambda *a, **k: pytest.fail("decoded a too-long file")
        )
        r = post(c, "long.wav", clip.read_bytes())
    assert r.status_code == 422
    assert (
        r.json()["error"]
        == "long.wav: longer than 0.02 minutes (0:03); this server's limit is --max-minutes 0.02"
    )
    assert upload_folders(uploads) == []


# ------------------------------------------------------------------------------------------------ the queue
def test_queue_full_is_503_with_retry_after_and_nothing_else(tiny_model, clip, uploads):
    """8 clients at once against queue=2: exactly 2 are admitted (their predictions held at a gate), the other
    6 get 503 with Retry-After before their body is read; no other status; every private folder is gone."""
    gated = Gated(Predictor.from_file(tiny_model))
    app = create_app(gated, queue=2, workers=1)
    data = clip.read_bytes()
    statuses, retry = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(8)
    with TestClient(app) as c:

        def one(i):
            barrier.wait()
            r = post(c, f"client{i}.wav", data)
            with lock:
                statuses.append(r.status_code)
                if r.status_code == 503:
                    retry.append(r.headers.get("retry-after"))
                    assert "server busy" in r.json()["error"]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        assert gated.started.acquire(timeout=20)  # one prediction is running...
        while True:  # ...and the six refusals are back
            with lock:
                if len(statuses) >= 6:
                    break
            threading.Event().wait(0.02)
        folders = upload_folders(uploads)
        assert len(folders) == 2  # the admitted requests' private folders, while they wait
        for f in folders:
            assert stat.S_IMODE(f.stat().st_mode) == 0o700
            assert [p.name for p in f.iterdir()] == ["upload.wav"]  # named by the server
        health = c.get("/health").json()
        assert health["queue"] == 2 and health["refused_busy"] == 6
        gated.gate.set()
        for t in threads:
            t.join(30)
    assert sorted(statuses) == [200, 200] + [503] * 6
    assert all(r is not None and int(r) >= 1 for r in retry)
    assert upload_folders(uploads) == []


def test_retry_after_follows_the_recent_service_time(tiny_model):
    state = create_app(tiny_model, queue=8, workers=2).state.moodscope
    assert state.retry_after() == 4  # no history: 1 s each, 8 in the queue over 2 workers
    state.recent.extend([3.0, 5.0])
    assert state.retry_after() == math.ceil(4.0 * 8 / 2)
    state.recent.clear()
    state.recent.append(0.01)
    assert state.retry_after() == 1  # never below 1 s


def test_concurrent_requests_all_complete(tiny_model, clip, uploads):
    """Several clients with a queue large enough for them: every request is answered 200 with its own name."""
    data = clip.read_bytes()
    results = {}
    with TestClient(create_app(tiny_model, queue=6, workers=2)) as c:

        def one(i):
            results[i] = post(c, f"song {i}.wav", data)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert {i: r.status_code for i, r in results.items()} == dict.fromkeys(range(6), 200)
    assert {r.json()["file"] for r in results.values()} == {f"song {i}.wav" for i in range(6)}
    assert (
        len({json.dumps(r.json()["static"]) for r in results.values()}) == 1
    )  # the same clip, the same answer
    assert upload_folders(uploads) == []


# ------------------------------------------------------------------------------------------------ bugs
def test_an_unexpected_error_is_500_without_a_traceback(tiny_model, clip, uploads, caplog):
    class Broken(Gated):
        def predict(self, source, **kw):
            raise RuntimeError("boom: /secret/server/path")

    app = create_app(Broken(Predictor.from_file(tiny_model)))
    with caplog.at_level(logging.ERROR, logger="moodscope.serve"), TestClient(app) as c:
        r = post(c, "song.wav", clip.read_bytes())
    assert r.status_code == 500 and r.json() == {"error": "internal error"}
    assert any("song.wav" in rec.getMessage() and rec.exc_info for rec in caplog.records)
    assert upload_folders(uploads) == []


# ------------------------------------------------------------------------------------------------ the command line
@pytest.fixture
def no_server(monkeypatch):
    """``uvicorn.Server.run`` recorded, not run: the command line up to serving, in-process."""
    import uvicorn

    calls = []
    monkeypatch.setattr(
        uvicorn.Server,
        "run",
        lambda self, sockets=None: calls.append((self, [s.getsockname() for s in sockets])),
    )
    return calls


def test_cli_serve_binds_loopback_and_prints_the_url(cli, tiny_model, no_server):
    run = cli("serve", "--port", "0", "--model", tiny_model)
    assert run.code == 0, run.err
    ((server, addresses),) = no_server
    host, port = addresses[0][:2]
    assert host == "127.0.0.1"
    assert run.out.strip().splitlines() == [
        f"moodscope serve: open http://127.0.0.1:{port}/  (model tiny.safetensors on cpu; Ctrl+C stops)"
    ]
    assert run.err == ""
    app = server.config.app
    assert app.state.moodscope.predictor is not None  # loaded before serving
    with TestClient(app, base_url=f"http://127.0.0.1:{port}") as c:  # the Host check lets its own URL in
        assert c.get("/health").status_code == 200
    with TestClient(app, base_url="http://rebound.example") as c:
        assert c.get("/health").status_code == 400


def test_cli_serve_allow_host_for_a_reverse_proxy(cli, tiny_model, no_server, clip, uploads):
    run = cli("serve", "--port", "0", "--model", tiny_model, "--allow-host", "music.example.org")
    assert run.code == 0, run.err
    app = no_server[0][0].config.app
    with TestClient(app, base_url="https://music.example.org") as c:
        assert c.get("/health").status_code == 200
        r = post(c, "song.wav", clip.read_bytes(), headers={"origin": "https://music.example.org"})
        assert r.status_code == 200, r.text
    with TestClient(app, base_url="https://other.example.org") as c:
        assert c.get("/health").status_code == 400


def test_cli_serve_on_all_interfaces_warns(cli, tiny_model, no_server):
    run = cli("serve", "--host", "0.0.0.0", "--port", "0", "--model", tiny_model)
    assert run.code == 0, run.err
    assert "http://127.0.0.1:" in run.out
    assert run.err.startswith("moodscope serve: warning: listening on 0.0.0.0: reachable from the network")


@pytest.mark.parametrize(
    "args, cause",
    [
        (["--queue", "0"], "--queue 0: must be a whole number of at least 1"),
        (["--workers", "-1"], "--workers -1: must be a whole number"),
        (["--max-mb", "0"], "--max-mb 0: must be a positive number"),
        (["--max-minutes", "nan"], "--max-minutes nan: must be a positive number"),
        (["--port", "70000"], "--port 70000: not a port number"),
        (["--host", "no-such-host.invalid"], "--host no-such-host.invalid: not an address of this machine"),
        (["--model", "/no/such/model.safetensors"], "/no/such/model.safetensors: model file not found"),
    ],
)
def test_cli_serve_bad_options_are_one_line(cli, tiny_model, no_server, args, cause):
    argv = ["serve", "--port", "0", *args]
    if "--model" not in args:
        argv += ["--model", str(tiny_model)]
    run = cli(*argv)
    assert run.code == 2 and run.lines() == [
        f"moodscope serve: error: {run.lines()[0].split(': error: ')[1]}"
    ]
    assert cause in run.err and "Traceback" not in run.err
    assert no_server == []


def test_cli_serve_port_in_use(cli, tiny_model, no_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = cli("serve", "--port", str(port), "--model", tiny_model)
    assert run.code == 2 and len(run.lines()) == 1
    assert f"127.0.0.1:{port}: cannot listen there (" in run.err
    assert no_server == []


def test_cli_serve_without_the_extra(cli, monkeypatch, no_server):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    run = cli("serve")
    assert run.code == 2 and len(run.lines()) == 1, run.err
    assert run.lines()[0] == (
        'moodscope serve: error: fastapi not installed: moodscope serve needs it (pip install "moodscope[serve]")'
    )


def test_private_folder_permissions_do_not_depend_on_umask(tiny_model, clip, uploads):
    old = os.umask(0)
    try:
        gated = Gated(Predictor.from_file(tiny_model))
        with TestClient(create_app(gated)) as c:
            t = threading.Thread(target=lambda: post(c, "a.wav", clip.read_bytes()))
            t.start()
            assert gated.started.acquire(timeout=20)
            (folder,) = upload_folders(uploads)
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert stat.S_IMODE((folder / "upload.wav").stat().st_mode) == 0o600
            gated.gate.set()
            t.join(30)
    finally:
        os.umask(old)
    assert upload_folders(uploads) == []


def test_cli_serve_refuses_a_million_workers(cli, tiny_model, no_server):
    """Issue 26 (14): ``serve --workers 1000000`` was accepted."""
    run = cli("serve", "--port", "0", "--workers", "1000000", "--model", str(tiny_model))
    assert run.code == 2 and "--workers 1000000: at most 64" in run.err and len(run.lines()) == 1


@pytest.mark.parametrize("chars", [5_000, 20_000])
def test_a_very_long_upload_name_is_named_as_the_cause(client, clip, uploads, chars):
    """Issue 26 (14): a 20,000-character file name got the generic "malformed multipart/form-data body"."""
    r = post(client, "a" * chars + ".wav", clip.read_bytes())
    assert r.status_code == 422
    assert "file name this long is refused" in r.json()["error"] and "rename the file" in r.json()["error"]
    assert upload_folders(uploads) == []
    # a long but reasonable name still works (shown shortened)
    ok = post(client, "b" * 900 + ".wav", clip.read_bytes())
    assert ok.status_code == 200 and ok.json()["file"].endswith("…")


def test_serve_with_the_student_front_end(clip, uploads):
    """Issue 25: ``serve --frontend student`` predicts with the distilled MusiCNN front end, and says so."""
    with TestClient(create_app("default", max_mb=1, queue=2, frontend="student")) as c:
        r = post(c, "song.wav", clip.read_bytes())
    assert r.status_code == 200, r.text
    assert "[student front end]" in r.json()["model"]


def test_a_trickling_upload_is_408_and_frees_its_place(tiny_model, uploads, monkeypatch):
    """Issue 26 (14): a client sending a byte now and then kept its queue place for the whole upload limit
    (8 such clients held every place); below ``UPLOAD_MIN_RATE`` on average after ``UPLOAD_IDLE_S`` it is refused."""
    from moodscope.serve import app as app_module

    monkeypatch.setattr(app_module, "UPLOAD_IDLE_S", 0.3)
    app = create_app(tiny_model, queue=1)
    state = app.state.moodscope
    state.start()
    head = b"".join(list(_multipart("drip.wav", [b"RIFF"]))[:2])  # the closing boundary never comes

    first = [True]

    async def receive():
        if first[0]:
            first[0] = False
            return {"type": "http.request", "body": head, "more_body": True}
        await asyncio.sleep(0.05)  # never idle for 0.3 s, far below 8 KiB/s
        return {"type": "http.request", "body": b"\0", "more_body": True}

    sent = _one_request(app, receive)
    state.stop()
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"].startswith("drip.wav: slower than 8 KiB/s")
    assert state.in_progress == 0 and upload_folders(uploads) == []
