"""The Ray backend of a library run (``--backend ray``; ``pip install "moodscope[ray]"``).

The same work as :func:`moodscope.library.jobs.run_local`, on a Ray cluster through Ray Data: the paths
become a dataset (one path per block, so that idle workers take the next track), ``map_batches`` runs them
through a pool of actors that each load the model once (:class:`ModelSpec`) and call
:func:`~moodscope.library.jobs.analyse` per file, and the rows stream back to the driver in completion order
as :class:`~moodscope.library.jobs.Outcome` objects. The driver writes them to the results store as they
arrive, so a run killed midway has already kept every track that finished.

Where things must be
--------------------
- **moodscope** (and its dependencies) must be installed on every node, in the same version as on the
  driver: the actors import it. The bundled models (``default``, ``demo``) are loaded from each node's
  installation; a model *file* given by path is read once on the driver and shipped to the actors through
  Ray's object store, so it need not be on the workers.
- **Local paths** are opened by the workers, so each must be readable under the same absolute path on
  every node (a shared filesystem: NFS, CephFS, a FUSE mount of a bucket). Relative paths are made absolute
  against the driver's working folder. On a one-machine cluster this holds by construction.
- **Object-store URIs** (``s3://bucket/song.mp3``, ``gs://...``, ``hdfs://...``, ``file:///...``) are opened
  with :meth:`pyarrow.fs.FileSystem.from_uri` inside the actor, copied to a temporary file on the worker
  (the decoders need a seekable local file; the copy keeps the extension, which picks the decoder) and
  deleted after the prediction. Credentials come from each worker's environment the way pyarrow looks them
  up (``AWS_*`` variables, instance roles, ``GOOGLE_APPLICATION_CREDENTIALS``). A URI that cannot be read
  is a failed file with its cause, like an unreadable local file. Listing a bucket is the driver's job.

Parquet: rows are not written as Parquet here. The results store (SQLite, see :mod:`.store`) is the one
record of a run and is committed track by track; ``Dataset.write_parquet`` is a sink, so writing it too
would mean either running the model twice or giving up streaming the outcomes to the driver (a killed run
would then keep nothing). ``moodscope query OUT --format parquet`` exports the store.

Quiet by default: no dashboard, no worker output forwarded to the driver, no progress bars (the driver has
its own), Ray Data's INFO logs silenced for the run, and Ray's usage statistics off unless the environment
sets ``RAY_USAGE_STATS_ENABLED`` (nothing is sent anywhere).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import MissingToolError, MoodscopeError, shown_path
from .jobs import ModelSpec, Outcome, analyse

#: the one line when Ray is missing
MISSING_RAY = 'Ray is not installed: the ray backend needs it (pip install "moodscope[ray]")'
#: at most this many blocks in the dataset (one path per block below it, a few per block above)
MAX_BLOCKS = 10_000
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` (an object store or other pyarrow filesystem), False for a local path."""
    return bool(_URI.match(path))


def _import_ray():
    try:
        import ray
        import ray.data
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in ("ray", "pyarrow", "pandas"):
            raise MissingToolError(MISSING_RAY) from None
        raise
    return ray


# -- results as JSON (exact, unlike Result.to_dict, which rounds for people) -----------------------------
def _exact(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _result_to_dict(res) -> dict:
    """``res`` in the schema of :meth:`Result.to_dict`, without its rounding: every float as it is (JSON
    writes the shortest repr, which reads back to the same float; float32 curve values widen exactly), NaN
    as ``None``. :func:`_result_from_dict` rebuilds the same :class:`Result`."""
    d = {
        "file": res.file,
        "duration_s": float(res.duration_s),
        "model": res.model,
        "static": {k: _exact(v) for k, v in res.static.items()},
        "quadrant": res.quadrant,
    }
    if res.dynamic is not None:
        dyn = res.dynamic
        d["dynamic"] = {
            "hop_s": float(dyn["hop_s"]),
            "times_s": [float(t) for t in dyn["times_s"]],
            "valence": [_exact(v) for v in dyn["valence"]],
            "arousal": [_exact(v) for v in dyn["arousal"]],
        }
    if res.tags is not None:
        d["tags"] = {k: _exact(v) for k, v in res.tags.items()}
    d.update(res.extra)
    return d


def _result_from_dict(d: dict):
    """The :class:`~moodscope.inference.predictor.Result` of :func:`_result_to_dict` (through JSON)."""
    from ..inference.predictor import Result

    return Result.from_dict(d)


def _fetch(uri: str) -> str:
    """Copy the object at ``uri`` to a new temporary file (same extension); returns its path."""
    from pyarrow import fs as pafs

    filesystem, inner = pafs.FileSystem.from_uri(uri)
    suffix = Path(inner).suffix
    fd, local = tempfile.mkstemp(prefix="moodscope-", suffix=suffix if len(suffix) <= 8 else "")
    try:
        with os.fdopen(fd, "wb") as out, filesystem.open_input_stream(inner) as src:
            shutil.copyfileobj(src, out, 1 << 20)
    except BaseException:
        os.unlink(local)
        raise
    return local


class _Analyser:
    """One actor of the pool: the model, loaded once, and the files of every batch it is given.

    Nothing is left in the worker's temporary folder between files (Ray kills actors without running
    ``__del__``): a shipped model file is deleted once loaded, an object's copy once predicted."""

    def __init__(self, spec: ModelSpec, model_bytes=None, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, threads))
        self.load_error = None
        local = None
        if model_bytes is not None:  # a model file shipped from the driver, loaded from a private copy
            fd, local = tempfile.mkstemp(prefix="moodscope-model-", suffix=Path(str(spec.model)).suffix)
            with os.fdopen(fd, "wb") as f:
                f.write(model_bytes)
        try:
            if local is None:
                self.predictor = spec.load()
            else:
                copy = dataclasses.replace(spec, model=local)
                self.predictor = copy.load()
        except MoodscopeError as e:  # reported by the driver as one line (see _stream), naming the file given
            self.load_error = str(e) if local is None else str(e).replace(local, shown_path(spec.model))
        finally:
            if local is not None:
                os.unlink(local)

    def __call__(self, batch: dict) -> dict:
        rows = {"path": [], "error": [], "seconds": [], "result": [], "fatal": []}
        for path, source in zip(batch["path"], batch["source"]):
            path, source = str(path), str(source)
            fatal = out = None
            if self.load_error is not None:
                fatal = self.load_error
            else:
                out = self._one(path, source)
            rows["path"].append(path)
            rows["fatal"].append(fatal)
            rows["error"].append(None if out is None else out.error)
            rows["seconds"].append(0.0 if out is None else float(out.seconds))
            res = None if out is None else out.result
            rows["result"].append(None if res is None else json.dumps(_result_to_dict(res)))
        return rows

    def _one(self, path: str, source: str) -> Outcome:
        if not is_uri(source):
            out = analyse(self.predictor, source)
        else:
            import pyarrow as pa

            t0 = time.perf_counter()
            try:
                local = _fetch(source)
            except (OSError, pa.ArrowException) as e:
                cause = (str(e).strip().splitlines() or [type(e).__name__])[0]
                return Outcome(path, error=f"cannot read it ({cause})", seconds=time.perf_counter() - t0)
            try:
                out = analyse(self.predictor, local)
            finally:
                os.unlink(local)
        if out.result is not None:
            out.result.file = path
        out.path = path
        return out


# -- the driver side -------------------------------------------------------------------------------------
def _connect(ray, address: str | None, jobs: int | None) -> bool:
    """Connect to the cluster (``address``, else ``RAY_ADDRESS``, else a new local one); True if this call
    started it (and so must shut it down)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)
        ray.init(address=address, **quiet)
    else:
        ray.init(address="local", num_cpus=jobs, include_dashboard=False, **quiet)
    return True


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) cluster that does not answer is one line at once, where
    ``ray.init`` would retry for minutes; ``auto`` (the cluster ``ray start`` left on this machine) is
    Ray's to find."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)", address.strip())
    if m is None:
        return
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout_s).close()
    except OSError as e:
        raise MoodscopeError(
            f"cannot reach the Ray cluster at {address} ({e.strerror or e}): start it with `ray start --head` "
            "there, or give no address (and no RAY_ADDRESS) to run on a local cluster"
        ) from None


def _model_bytes(spec: ModelSpec) -> bytes | None:
    """The model file's bytes when it is a path (not a bundled name): shipped to the actors."""
    from ..inference.predictor import BUNDLED_MODELS, model_path

    if spec.model is None or str(spec.model) in BUNDLED_MODELS:
        return None
    return model_path(spec.model).read_bytes()


def _no_restarts(map_batches) -> dict:
    """``max_restarts=0`` for the actors, where ``map_batches`` still takes Ray remote arguments.

    Ray Data's default restarts a dead actor and retries its task forever: a file that crashes its decoder
    (or runs the worker out of memory) would be retried endlessly, and every run would print a spurious
    core-worker error about constructor arguments (ray-project/ray#53727). Without restarts a dead worker
    stops the run with one line; the finished tracks are in the store and the next run carries on.
    """
    params = inspect.signature(map_batches).parameters.values()
    return {"max_restarts": 0} if any(p.kind is p.VAR_KEYWORD for p in params) else {}


def run_ray(
    spec: ModelSpec,
    paths: Iterable[str],
    *,
    jobs: int | None = None,
    address: str | None = None,
    predictor=None,
    decoding_progress=None,
) -> Iterator[Outcome]:
    """Outcomes of ``paths`` (local paths or URIs, see the module docstring) on Ray, in completion order.

    ``address``: the cluster (``host:port``, ``auto``, ``ray://host:10001``); default ``RAY_ADDRESS``; without
    either, a local cluster of ``jobs`` CPUs is started for this run and shut down at its end. ``jobs``: the
    number of actors (each takes 1 CPU, or 1 GPU as well for a CUDA ``spec.device``); default all the
    cluster's CPUs. ``predictor`` and ``decoding_progress`` are accepted for the driver's sake, as
    :func:`~moodscope.library.jobs.run_local` takes them, and unused: the actors load their own model and
    decode where the driver cannot watch.

    Raises
    ------
    MissingToolError
        At the call, before anything starts: Ray (or Ray Data) is not installed.
    OSError
        At the call: a model file given by path cannot be read.
    MoodscopeError
        While iterating: an actor could not load the model, or a worker process died (a crash in a
        decoder, the OOM killer, a lost node); the outcomes already yielded stand, and a re-run of the
        driver skips them. Actors are not restarted (see :func:`_no_restarts`).
    """
    del predictor, decoding_progress
    given = [str(p) for p in paths]
    if not given:
        return iter(())
    ray = _import_ray()  # before the first outcome is asked for: a missing Ray is a usage problem
    return _stream(ray, spec, given, _model_bytes(spec), jobs, address)


def _stream(ray, spec: ModelSpec, given: list[str], model_bytes, jobs, address) -> Iterator[Outcome]:
    from ray.exceptions import RayActorError

    started = _connect(ray, address, jobs)
    ctx = ray.data.DataContext.get_current()
    data_log = logging.getLogger("ray.data")
    saved = ctx.enable_progress_bars, data_log.level
    rows = None
    try:
        ctx.enable_progress_bars = False
        data_log.setLevel(logging.ERROR)
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        size = max(1, min(jobs or cluster_cpus, len(given)))
        gpu = spec.device.startswith("cuda")
        actor_spec = dataclasses.replace(spec, device="cuda" if gpu else spec.device)
        items = [{"path": p, "source": p if is_uri(p) else os.path.abspath(p)} for p in given]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), MAX_BLOCKS))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Ray's own, about ``_no_restarts``
            ds = ds.map_batches(
                _Analyser,
                fn_constructor_args=(actor_spec, model_bytes, 1),
                batch_size=1,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=2),
                num_cpus=1,
                num_gpus=1 if gpu else 0,
                **_no_restarts(ds.map_batches),
            )
        rows = ds.iter_rows()
        try:
            for row in rows:
                if row["fatal"] is not None:
                    raise MoodscopeError(f"a Ray worker could not load the model: {row['fatal']}")
                res = row["result"]
                yield Outcome(
                    row["path"],
                    result=None if res is None else _result_from_dict(json.loads(res)),
                    error=row["error"],
                    seconds=float(row["seconds"]),
                )
        except RayActorError as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise MoodscopeError(
                f"a Ray worker died (a crash, out of memory or a lost node): {first}"
            ) from None
    finally:
        if rows is not None and hasattr(rows, "close"):
            rows.close()
        ctx.enable_progress_bars, level = saved
        data_log.setLevel(level)
        if started:
            ray.shutdown()
