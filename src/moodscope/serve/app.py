"""The web service of ``moodscope serve``: the FastAPI app (:func:`create_app`).

Endpoints
---------
``POST /predict``
    multipart/form-data with one audio file in the field ``file``; 200 with the JSON ``moodscope predict`` writes
    for one track (its ``file`` is the client's file name, for display only). Errors are JSON
    ``{"error": "<one line naming the file and the cause>"}``: 422 bad audio (undecodable, empty, silent, too
    long, unknown format, no file), 413 larger than ``max_mb`` (refused before the body is read whole), 415 not
    multipart/form-data, 400 a malformed body, 403 a cross-origin browser request, 408 an upload that stalls or
    trickles (under 8 KiB/s on average after 30 s), 503
    with ``Retry-After`` when ``queue`` requests are already in progress, 500 a bug (logged with its traceback
    here, never sent to the client).
``GET /models``, ``GET /health``
    the bundled models and the one loaded; liveness, the queue and the limits.
``GET /`` and ``GET /static/<name>``
    the page (``static/``): only the files directly in that folder, by exact name.

How a prediction runs
---------------------
The model is loaded once, at start-up. At most ``queue`` predictions are in progress at a time (uploading,
waiting or running); one more is refused at once with 503 and ``Retry-After`` (recent mean service time times the
queue, over the workers; at least 1 s), before its body is read. Predictions run off the event loop on a pool of
``workers`` threads. Each upload is streamed (:mod:`moodscope.serve.upload`) into a private folder
(:func:`tempfile.mkdtemp`, mode 0700) that is removed when the request ends, whatever its outcome; the file there
is named by the server. The duration cap (``max_minutes``) is checked from the file's header before anything is
decoded; the decoder never reads past what the header declares.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..errors import MoodscopeError, UsageError
from ..fileio import json_text
from .upload import FORM_OVERHEAD, NameFound, Receiver, UploadRefused, boundary_of, too_large

log = logging.getLogger("moodscope.serve")

#: the page's files (``GET /`` is ``index.html``)
#: the most prediction threads serve runs
MAX_WORKERS = 64
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: seconds an upload may go without a byte before it is refused (408): a stalled client holds a queue place
UPLOAD_IDLE_S = 30.0
#: seconds a whole upload may take (408 beyond)
UPLOAD_TOTAL_S = 600.0
#: after ``UPLOAD_IDLE_S``, an upload must have averaged at least this many bytes per second since it began (408
#: below): a client trickling a byte now and then would otherwise hold a queue place for ``UPLOAD_TOTAL_S``
UPLOAD_MIN_RATE = 8192.0
#: the names of the private folders of uploads (``tempfile.mkdtemp``)
UPLOAD_PREFIX = "moodscope-serve-"
#: service times (seconds) kept for the Retry-After estimate
RECENT = 32

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
#: sent with every response
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
#: the page may load only its own files and talk only to this server (no CDN, no inline script)
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _mmss(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def check_options(*, max_mb, max_minutes, queue, workers) -> None:
    """:class:`UsageError` (one line) for a limit that cannot work."""
    for flag, value in (("--queue", queue), ("--workers", workers)):
        if int(value) != value or value < 1:
            raise UsageError(f"{flag} {value}: must be a whole number of at least 1")
    if workers > MAX_WORKERS:  # each worker thread holds a model's activations: a million is a typo
        raise UsageError(f"--workers {workers}: at most {MAX_WORKERS}")
    for flag, value in (("--max-mb", max_mb), ("--max-minutes", max_minutes)):
        if not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{flag} {value:g}: must be a positive number")


class ServeState:
    """The loaded model, the worker pool and the admission counter of one app."""

    def __init__(self, model, *, device, precision, max_mb, max_minutes, queue, workers, frontend=None):
        check_options(max_mb=max_mb, max_minutes=max_minutes, queue=queue, workers=workers)
        self.source = model
        self.device, self.precision, self.frontend = device, precision, frontend
        self.max_mb, self.max_minutes = float(max_mb), float(max_minutes)
        self.max_file_bytes = int(self.max_mb * 2**20)
        self.queue, self.workers = int(queue), int(workers)
        self.predictor = None
        self.loaded: str | None = None  #: the name /models gives the loaded model
        self.models: list[dict] = []
        self.pool = None
        self.in_progress = 0  #: requests admitted and not finished (uploading, waiting or running)
        self.folders: set[Path] = set()  #: the private folders of those requests
        self.counts = {"predicted": 0, "refused_busy": 0, "failed": 0}
        self.recent: deque[float] = deque(maxlen=RECENT)
        self._start_lock = threading.Lock()

    # -- life -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the model (once) and start the worker pool."""
        from concurrent.futures import ThreadPoolExecutor

        with self._start_lock:
            if self.predictor is None:
                self.predictor, self.loaded = _load(self.source, self.device, self.precision, self.frontend)
                self.models = _model_list(self.predictor, self.loaded)
            if self.pool is None:
                self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="moodscope-serve")

    def stop(self) -> None:
        """Wait for the predictions running, then remove what is left of their folders (a request cancelled by
        the server's shutdown hands its folder to its prediction, which may outlive the event loop)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        for folder in list(self.folders):
            shutil.rmtree(folder, ignore_errors=True)
        self.folders.clear()

    # -- admission ----------------------------------------------------------------------------------------------
    def retry_after(self) -> int:
        """Seconds a refused client should wait: the recent mean service time times the queue, over the workers."""
        mean = sum(self.recent) / len(self.recent) if self.recent else 1.0
        return max(1, math.ceil(mean * self.queue / self.workers))

    def busy(self) -> JSONResponse:
        self.counts["refused_busy"] += 1
        wait = self.retry_after()
        return _error(
            503,
            f"server busy: {self.in_progress} request(s) in progress, at most {self.queue} (--queue); "
            f"retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )

    def release(self, folder: Path | None) -> None:
        """End of an admitted request: its folder removed, its queue place freed."""
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            self.folders.discard(folder)
        self.in_progress -= 1

    # -- the work of one request (in a worker thread) --------------------------------------------------------------
    def job(self, path: Path):
        from ..audio.decode import audio_info
        from ..library.jobs import Outcome, analyse

        t0 = time.perf_counter()
        try:
            seconds = audio_info(path).duration  # the header only: nothing is decoded yet
        except MoodscopeError as e:
            return Outcome(str(path), error=getattr(e, "cause", str(e)), seconds=time.perf_counter() - t0)
        if seconds > self.max_minutes * 60:
            cause = (
                f"longer than {self.max_minutes:g} minutes ({_mmss(seconds)}); this server's limit is "
                f"--max-minutes {self.max_minutes:g}"
            )
            return Outcome(str(path), error=cause, seconds=time.perf_counter() - t0)
        return analyse(self.predictor, str(path))


def _load(source, device: str, precision: str, frontend: str | None = None):
    """``(predictor, name)`` from a model name or file, a factory, or a loaded :class:`Predictor`."""
    from ..inference.predictor import BUNDLED_MODELS, Predictor, bundled_model_path

    if hasattr(source, "predict") and hasattr(source, "bundle"):
        predictor = source
    elif callable(source):
        predictor = source()
    else:
        predictor = Predictor.from_file(source, device=device, precision=precision, frontend=frontend)
        if source is None or str(source) in BUNDLED_MODELS:
            return predictor, str(source or "default")
    path = Path(predictor.bundle.path).resolve()
    for name in BUNDLED_MODELS:
        if bundled_model_path(name) == path:
            return predictor, name
    return predictor, path.name  # a model file of the operator's: its name, not where it lives


def _describe(meta: dict) -> dict:
    from ..models import MODELS

    info = meta.get("info") or {}
    arch = meta.get("model_name", "")
    entry = {
        "model": arch,
        "output": MODELS.get(arch).output if arch in MODELS.names() else None,
        "task": (info.get("task") or {}).get("kind"),
        "description": info.get("description", ""),
    }
    for key in ("trained_on", "licences"):
        if info.get(key):
            entry[key] = info[key]
    return entry


def _model_list(predictor, loaded: str) -> list[dict]:
    """The bundled models (as ``moodscope models`` lists them) and, if it is not one of them, the loaded one."""
    from ..inference.predictor import BUNDLED_MODELS, bundled_model_path
    from ..modelfile import read_metadata

    out = []
    for name in BUNDLED_MODELS:
        path = bundled_model_path(name)
        entry = {"name": name, "file": path.name, "loaded": name == loaded}
        if path.is_file():
            entry.update(_describe(read_metadata(path)))
        else:
            entry["missing"] = True
        out.append(entry)
    if loaded not in BUNDLED_MODELS:
        meta = {"model_name": predictor.model.model_name, "info": predictor.bundle.info}
        out.append({"name": loaded, "file": loaded, "loaded": True, **_describe(meta)})
    return out


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cross_origin(request: Request) -> bool:
    """A browser request from another site's page (its Origin is not this server): refused, so that a web page
    cannot make the user's local server work for it."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site request: curl, httpx, a same-origin GET
        return False
    host = request.headers.get("host", "")
    return origin == "null" or urlsplit(origin).netloc.lower() != host.lower()


class _Guard:
    """Pure ASGI middleware: security headers on every response (CSP on pages), and, where the server was told its
    names (``allowed_hosts``), a Host header naming something else is refused (DNS rebinding)."""

    def __init__(self, app, allowed_hosts):
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += _HEADERS
                ctype = dict(headers).get(b"content-type", b"")
                if ctype.startswith(b"text/html"):
                    headers.append((b"content-security-policy", _CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        if self.allowed is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if _host_name(host) not in self.allowed:
                response = _error(400, "unknown Host header: open the URL moodscope serve printed")
                return await response(scope, receive, send_with_headers)
        return await self.app(scope, receive, send_with_headers)


async def _receive(request: Request, receiver: Receiver) -> None:
    """Feed the request's body to ``receiver`` as it arrives; 408 when it stalls or takes too long."""
    start, received = time.monotonic(), 0
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), UPLOAD_IDLE_S)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise UploadRefused(
                408, f"{receiver.name or 'the upload'}: no data for {UPLOAD_IDLE_S:g} s; upload abandoned"
            ) from None
        if chunk:
            receiver.feed(chunk)
            received += len(chunk)
        elapsed = time.monotonic() - start
        if elapsed > UPLOAD_IDLE_S and received < UPLOAD_MIN_RATE * elapsed:
            raise UploadRefused(
                408,
                f"{receiver.name or 'the upload'}: slower than {UPLOAD_MIN_RATE / 1024:g} KiB/s "
                f"({received / elapsed / 1024:.1f} KiB/s over {elapsed:.0f} s); upload abandoned",
            )
        if elapsed > UPLOAD_TOTAL_S:
            raise UploadRefused(
                408, f"{receiver.name or 'the upload'}: upload took over {UPLOAD_TOTAL_S:g} s; abandoned"
            )


async def _name_in(request: Request, boundary: bytes, max_file_bytes: int) -> str | None:
    """The uploaded file's name, read from the start of the body only (at most its first 64 KiB)."""
    receiver = Receiver(boundary, None, max_file_bytes, names_only=True)
    receiver.max_body_bytes = FORM_OVERHEAD
    try:
        await _receive(request, receiver)
    except NameFound as found:
        return found.name
    except (UploadRefused, ClientDisconnect):
        return receiver.name
    return receiver.name


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise UploadRefused(400, "malformed request: its Content-Length is not a number") from None
    if n < 0:
        raise UploadRefused(400, "malformed request: its Content-Length is negative")
    return n


def _scrub(message: str, path: Path, folder: Path, name: str) -> str:
    """A message about the server's copy, told about the client's file: no server path ever reaches a client."""
    return message.replace(str(path), name).replace(str(folder), "<upload>")


def create_app(
    model=None,
    *,
    device: str = "cpu",
    precision: str = "float32",
    max_mb: float = 100,
    max_minutes: float = 20,
    queue: int = 8,
    workers: int = 1,
    allowed_hosts=None,
    frontend: str | None = None,
) -> FastAPI:
    """The app of ``moodscope serve``.

    Parameters
    ----------
    model
        A bundled model's name or a model file (None: the default model), loaded with ``device`` and
        ``precision`` at start-up; or a callable returning a :class:`~moodscope.inference.predictor.Predictor`;
        or a loaded Predictor.
    max_mb
        Largest upload in MiB (413 beyond, before the body is read whole).
    max_minutes
        Longest audio accepted (422 beyond, from the file's header, before decoding).
    queue
        Most requests in progress at a time (uploading, waiting or running); 503 with Retry-After beyond.
    workers
        Threads that run predictions.
    frontend
        ``full`` or ``student`` (:class:`~moodscope.inference.predictor.Predictor`'s ``frontend``; None: the
        model's own).
    allowed_hosts
        Host names the server answers to (others: 400); None answers any (``moodscope serve`` passes its loopback
        names when it binds to loopback).
    """
    state = ServeState(
        model,
        device=device,
        precision=precision,
        max_mb=max_mb,
        max_minutes=max_minutes,
        queue=queue,
        workers=workers,
        frontend=frontend,
    )

    @asynccontextmanager
    async def lifespan(app):
        state.start()
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(
        title="moodscope",
        lifespan=lifespan,
        docs_url=None,  # the interactive docs load their scripts from a CDN
        redoc_url=None,
        openapi_url=None,
    )
    app.state.moodscope = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        # Starlette re-raises after this response, so that the server logs the traceback
        return _error(500, "internal error")

    @app.get("/health")
    async def health():
        return {
            "status": "ok" if state.predictor is not None else "starting",
            "queue": state.in_progress,
            "queue_max": state.queue,
            "workers": state.workers,
            "model": state.loaded,
            "device": getattr(state.predictor, "device", state.device),
            "max_mb": state.max_mb,
            "max_bytes": state.max_file_bytes,
            "max_minutes": state.max_minutes,
            "retry_after_s": state.retry_after(),
            **state.counts,
        }

    @app.get("/models")
    async def models():
        if state.predictor is None:
            await asyncio.to_thread(state.start)
        return {"models": state.models, "loaded": state.loaded}

    @app.post("/predict")
    async def predict(request: Request):
        try:
            boundary = boundary_of(request.headers.get("content-type", ""))
            if boundary is None:
                return _error(
                    415,
                    f"POST /predict takes multipart/form-data with the audio file in the field 'file' "
                    f"(e.g. curl -F file=@song.mp3 {request.base_url}predict)",
                )
            if _cross_origin(request):
                return _error(403, "cross-origin request refused: use the page this server serves")
            length = _content_length(request)
            if length is not None and length > state.max_file_bytes + FORM_OVERHEAD:
                name = await _name_in(request, boundary, state.max_file_bytes)
                return _error(413, too_large(name, state.max_file_bytes))
        except UploadRefused as e:
            return _error(e.status, e.message)
        if state.pool is None:
            await asyncio.to_thread(state.start)  # an app used without its lifespan (tests)
        if state.in_progress >= state.queue:
            return state.busy()  # before a byte of the body is read
        state.in_progress += 1
        folder, handed_off = None, False
        try:
            folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))  # mode 0700
            state.folders.add(folder)
            try:
                receiver = Receiver(boundary, folder, state.max_file_bytes)
                try:
                    await _receive(request, receiver)
                    path, name = receiver.finish()
                finally:
                    receiver.close()
            except UploadRefused as e:
                return _error(e.status, e.message)
            except ClientDisconnect:
                return _error(400, "the client went away during the upload")
            work = asyncio.get_running_loop().run_in_executor(state.pool, state.job, path)
            try:
                outcome = await asyncio.shield(work)
            except asyncio.CancelledError:  # the server is stopping: the folder goes when the work ends
                handed_off = True
                work.add_done_callback(lambda _: state.release(folder))
                raise
            except Exception:
                state.counts["failed"] += 1
                log.exception("POST /predict of %s failed", name)
                return _error(500, "internal error")
            state.recent.append(outcome.seconds)
            if outcome.result is None:
                state.counts["failed"] += 1
                cause = _scrub(outcome.error, path, folder, name)
                return _error(422, cause if cause.startswith(f"{name}: ") else f"{name}: {cause}")
            state.counts["predicted"] += 1
            result = outcome.result.to_dict()
            result["file"] = name
            return Response(json_text(result), media_type="application/json")
        finally:
            if not handed_off:
                state.release(folder)

    @app.get("/", include_in_schema=False)
    async def index():
        return _static("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        return _static(name)

    app.add_middleware(_Guard, allowed_hosts=allowed_hosts)
    return app


def _static(name: str):
    """A file of :data:`STATIC_DIR` by its exact name (a directory entry: no path is ever built from the request)."""
    try:
        entries = {e.name: e for e in os.scandir(STATIC_DIR)}
    except OSError:
        entries = {}
    entry = entries.get(name)
    if entry is None or not entry.is_file(follow_symlinks=False):
        return _error(404, f"{name}: no such file" if name != "index.html" else "the page is not installed")
    media = _MEDIA_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")
    return FileResponse(entry.path, media_type=media, headers={"Cache-Control": "no-cache"})
