"""Fuzzing the parsers that read untrusted bytes (model-file metadata, dataset CSV/YAML, audio headers).

Registered as a pytest plugin in ``tests/conftest.py``.

Two modes, one set of tests:

- in the ordinary suite (CI) each fuzz test runs a fixed, derandomised set of ``CI_EXAMPLES`` examples, so a
  finding is reproducible and the suite stays fast;
- ``make fuzz`` sets ``MOODSCOPE_FUZZ_SECONDS`` (default there: 600): the fuzz tests share that budget and
  each keeps drawing fresh random examples until its share is spent.

What every example must satisfy (``within_limits``): the parser either succeeds or raises one of
moodscope's own errors (never a bare exception, i.e. never a traceback for the user), returns within
``EXAMPLE_SECONDS``, and its traced peak allocation (Python and NumPy, by ``tracemalloc``) stays under
``MEMORY_CAP_MIB``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, settings

#: the stated caps of every parsed example
MEMORY_CAP_MIB = 64
EXAMPLE_SECONDS = 10
#: examples per fuzz test in the ordinary suite
CI_EXAMPLES = int(os.environ.get("MOODSCOPE_FUZZ_EXAMPLES", "40"))
FUZZ_SECONDS = float(os.environ.get("MOODSCOPE_FUZZ_SECONDS", "0") or 0)

settings.register_profile(
    "moodscope-ci",
    max_examples=CI_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "moodscope-fuzz",
    max_examples=500,
    derandomize=False,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("moodscope-fuzz" if FUZZ_SECONDS > 0 else "moodscope-ci")

_share = {"seconds": 0.0}


def pytest_collection_modifyitems(config, items):
    fuzz = [it for it in items if "tests/fuzz/" in str(it.fspath).replace(os.sep, "/")]
    if fuzz and FUZZ_SECONDS > 0:
        _share["seconds"] = FUZZ_SECONDS / len(fuzz)


class Hang(Exception):
    pass


@contextlib.contextmanager
def within_limits(seconds: float = EXAMPLE_SECONDS, mib: float = MEMORY_CAP_MIB):
    """Fail if the block runs longer than ``seconds`` or its traced peak allocation exceeds ``mib``."""

    def _alarm(signum, frame):
        raise Hang(f"example ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    tracemalloc.start()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < mib * 2**20, f"peak allocation {peak / 2**20:.1f} MiB > cap {mib} MiB"


def keep_fuzzing(test) -> int:
    """Run a Hypothesis test once (CI) or repeatedly until this test's share of ``make fuzz`` is spent.

    Returns the number of rounds (each round is one Hypothesis run of its ``max_examples``).
    """
    deadline = time.monotonic() + _share["seconds"]
    rounds = 0
    while True:
        test()
        rounds += 1
        if time.monotonic() >= deadline:
            return rounds


@pytest.fixture
def fuzz():
    """``fuzz(test)``: see :func:`keep_fuzzing`."""
    return keep_fuzzing
