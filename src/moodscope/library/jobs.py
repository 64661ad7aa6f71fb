"""Running a model over many files: in this process, in a pool of worker processes, or on Ray.

Every backend is an iterator of :class:`Outcome` (one per file, in completion order) that the driver
(:func:`moodscope.library.batch.predict_paths`) turns into rows of the results store and per-track files.
Workers load the model once (the pool's initializer, or a Ray actor) and keep it for every file they get, so
per-file start-up is paid once per worker; decoding, features and the model of different files overlap
across workers.

Threads: with ``jobs`` workers on ``cores`` cores each worker runs torch on ``max(1, cores // jobs)`` threads
(one worker per core is the fastest layout for a library: decoding and feature extraction are single-threaded,
and small convolutions scale poorly across threads).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import MoodscopeError


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class Outcome:
    """One file's result (``result``) or its one-line cause (``error``), and the seconds it took."""

    path: str
    result: object | None = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load the model (picklable; the model itself is loaded in the worker)."""

    model: str | None
    device: str = "cpu"
    precision: str = "float32"
    hop_valence: float | None = None
    hop_arousal: float | None = None
    frontend: str | None = None

    def load(self):
        from ..inference.predictor import Predictor

        return Predictor.from_file(
            self.model,
            device=self.device,
            precision=self.precision,
            hop_valence=self.hop_valence,
            hop_arousal=self.hop_arousal,
            frontend=self.frontend,
        )


def analyse(predictor, path: str) -> Outcome:
    """Predict one file; a bad file is an :class:`Outcome` with its cause, never an exception."""
    t0 = time.perf_counter()
    try:
        res = predictor.predict(path)
    except MoodscopeError as e:
        return Outcome(
            path, error=e.cause if hasattr(e, "cause") else str(e), seconds=time.perf_counter() - t0
        )
    except MemoryError:  # this file's error; the memory is free again for the next one
        return Outcome(
            path,
            error="out of memory while analysing it (free memory, or use fewer --jobs)",
            seconds=time.perf_counter() - t0,
        )
    seconds = time.perf_counter() - t0
    res.extra["seconds"] = round(seconds, 3)
    return Outcome(path, result=res, seconds=seconds)


# -- local backend ----------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(spec: ModelSpec, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["predictor"] = spec.load()


def _work(path: str) -> Outcome:
    return analyse(_WORKER["predictor"], path)


def run_local(
    spec: ModelSpec, paths: Iterable[str], *, jobs: int, predictor=None, decoding_progress=None
) -> Iterator[Outcome]:
    """Outcomes of ``paths`` with ``jobs`` processes (``jobs == 1``: in this process, with ``predictor``).

    The pool uses the ``spawn`` start method: forking a process that has run torch's OpenMP threads can
    deadlock the child.
    """
    paths = list(paths)
    if jobs <= 1 or len(paths) <= 1:
        from ..audio.decode import decoding_progress as reporting

        predictor = predictor if predictor is not None else spec.load()
        for p in paths:
            report = decoding_progress(p) if decoding_progress is not None else None
            with reporting(report):  # None: no report
                outcome = analyse(predictor, p)
            if hasattr(report, "close"):  # a progress bar of this file's own
                report.close()
            yield outcome
        return
    jobs = min(jobs, len(paths))
    threads = max(1, available_cores() // jobs)
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(jobs, initializer=_init_worker, initargs=(spec, threads))
    try:
        yield from pool.imap_unordered(_work, paths, chunksize=1)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
