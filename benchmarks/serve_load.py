"""Load test of ``moodscope serve`` on loopback: latency, throughput, refusals and the server's memory, by rounds.

A real server (``python -m moodscope.cli serve --port 0``, a free loopback port) runs in a subprocess with its own
private temporary folder. After a warm-up (one request per client), each round sends ``--requests`` predictions of
generated clips (``--seconds`` long, WAV) from ``--clients`` concurrent clients, each with its own HTTP connection.
A client that gets 503 waits the server's ``Retry-After`` and sends the same request again, at most ``--attempts``
times (then the request counts as given up): those 503s are the queue's deliberate refusals; any other status, a
503 without Retry-After, a 200 whose JSON is not the clip's result, or a connection error, is an error. Per round it
prints:

- p50/p95 latency of the successful requests (upload to answer) and throughput (answers per second);
- the count of 503 refusals, of requests given up and of errors;
- the server process's peak resident memory during the round (``VmRSS`` of ``/proc/<pid>/status`` sampled every
  50 ms) and its lifetime peak (``VmHWM``).

Memory must not grow across rounds: a round whose peak RSS exceeds the first round's by more than
``--growth-mib`` MiB (default 32) *and* ``--growth-pct`` percent (default 5) is flagged. The first measured round
comes after the warm-up, so the model's and the allocator's one-off growth is not counted as a leak.

It stops by itself: a bounded number of requests per round, and a wall-clock cap (``--max-seconds``) after which no
new request starts; the server is stopped (SIGINT, then SIGKILL) whatever happens. Exit code 0 when no errors
occurred and memory did not grow, 1 otherwise (the figures are printed either way).

    .venv/bin/python benchmarks/serve_load.py                     # 3 rounds x 200 requests, 8 clients, 10 s clips
    .venv/bin/python benchmarks/serve_load.py --queue 4           # fewer places than clients: deliberate 503s
    .venv/bin/python benchmarks/serve_load.py --model demo --rounds 5 --json load.json

The server's torch runs on as many threads as the environment gives it; ``--server-threads N`` sets its
``OMP_NUM_THREADS`` (one thread is much faster on a machine that other work keeps busy). Linux only (``/proc``).
The machine is shared: compare rounds of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050
#: the prefix of the server's private upload folders (``moodscope.serve.app``)
UPLOAD_PREFIX = "moodscope-serve-"


def make_clips(folder: Path, seconds: float, n: int = 4) -> list[tuple[str, bytes]]:
    """``n`` different clips (chords, a melody and noise, seeded), as ``(file name, WAV bytes)``."""
    clips = []
    for i in range(n):
        rng = np.random.default_rng(i)
        t = np.arange(int(seconds * SR)) / SR
        notes = 220.0 * 2 ** (rng.integers(0, 24, size=3) / 12)
        y = sum(0.2 * np.sin(2 * np.pi * f * t) for f in notes)
        y = y * (0.6 + 0.4 * np.sin(2 * np.pi * (0.25 + i / 8) * t)) + 0.02 * rng.standard_normal(t.size)
        path = folder / f"clip{i}.wav"
        sf.write(str(path), y.astype(np.float32), SR, subtype="PCM_16")
        clips.append((f"load test clip {i}.wav", path.read_bytes()))
    return clips


def memory_mib(pid: int) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


class Server:
    """``moodscope serve`` in a subprocess on a free loopback port; ``.url`` once it answers ``/health``."""

    def __init__(
        self, *args: str, tmpdir: Path | None = None, env: dict | None = None, start_timeout: float = 180.0
    ):
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.tmpdir = tmpdir
        if tmpdir is not None:
            env["TMPDIR"] = str(tmpdir)  # the server's private upload folders are made here
        cmd = [sys.executable, "-m", "moodscope.cli", "serve", "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.pid = self.proc.pid
        self.err: list[str] = []
        threading.Thread(target=self._drain, args=(self.proc.stderr, self.err), daemon=True).start()
        self.url = self._wait_for_url(start_timeout)

    @staticmethod
    def _drain(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def _wait_for_url(self, timeout: float) -> str:
        found: list[str] = []

        def read():
            for line in self.proc.stdout:
                m = re.search(r"http://\S+/", line)
                if m:
                    found.append(m.group())
                    break

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise RuntimeError(f"moodscope serve did not start in {timeout:g} s: {' | '.join(self.err[-5:])}")
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(found[0] + "health", timeout=5).json().get("status") == "ok":
                    return found[0]
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moodscope serve printed its URL but never answered /health")

    def stop(self) -> int:
        """SIGINT (uvicorn's graceful stop), SIGKILL after 15 s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def leftovers(self) -> list[str]:
        """The server's private upload folders left in its temporary folder (they must all be gone); other
        libraries' files there (ONNX Runtime writes a ``.ses`` file) are not the server's."""
        if self.tmpdir is None:
            return []
        return sorted(p.name for p in self.tmpdir.iterdir() if p.name.startswith(UPLOAD_PREFIX))

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _Sampler(threading.Thread):
    """The peak ``VmRSS`` of a process while it runs (sampled every 50 ms)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._halt = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, memory_mib(self.pid)["VmRSS"])
            self._halt.wait(0.05)

    def finish(self) -> float:
        self._halt.set()
        self.join()
        return max(self.peak, memory_mib(self.pid)["VmRSS"])


@dataclass
class Round:
    index: int
    requests: int  #: logical requests answered 200
    statuses: dict = field(default_factory=dict)  #: every response's status -> count (503s included)
    errors: list = field(default_factory=list)  #: what was neither 200 nor a 503 with Retry-After
    gave_up: int = (
        0  #: requests still refused (503) after ``attempts`` tries: the queue's doing, not an error
    )
    latencies_s: list = field(default_factory=list)
    wall_s: float = 0.0
    peak_rss_mib: float = 0.0
    hwm_mib: float = 0.0
    stopped_early: bool = False

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q)) if self.latencies_s else float("nan")

    def summary(self) -> dict:
        return {
            "round": self.index,
            "ok": self.requests,
            "503": self.statuses.get(503, 0),
            "errors": len(self.errors),
            "gave_up": self.gave_up,
            "p50_s": round(self.percentile(50), 3),
            "p95_s": round(self.percentile(95), 3),
            "throughput_per_s": round(self.requests / self.wall_s, 2) if self.wall_s else 0.0,
            "wall_s": round(self.wall_s, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "hwm_mib": round(self.hwm_mib, 1),
            "stopped_early": self.stopped_early,
        }


def run_round(
    url: str,
    clips: list[tuple[str, bytes]],
    *,
    index: int,
    requests: int,
    clients: int,
    pid: int,
    deadline: float,
    attempts: int = 30,
    timeout: float = 120.0,
) -> Round:
    """``requests`` predictions from ``clients`` threads (each its own connection); see the module's doc."""
    import httpx

    rnd = Round(index=index, requests=0)
    lock = threading.Lock()
    numbers = itertools.count()

    def note(status=None, error=None, latency=None, gave_up=False):
        with lock:
            rnd.gave_up += gave_up
            if status is not None:
                rnd.statuses[status] = rnd.statuses.get(status, 0) + 1
            if error is not None:
                rnd.errors.append(error)
            if latency is not None:
                rnd.latencies_s.append(latency)
                rnd.requests += 1

    def client():
        with httpx.Client(base_url=url, timeout=timeout) as http:
            while True:
                i = next(numbers)
                if i >= requests:
                    return
                if time.monotonic() > deadline:
                    rnd.stopped_early = True
                    return
                name, data = clips[i % len(clips)]
                for _ in range(attempts):
                    t0 = time.perf_counter()
                    try:
                        r = http.post("/predict", files={"file": (name, data, "audio/wav")})
                    except httpx.HTTPError as e:
                        note(error=f"{type(e).__name__}: {e}")
                        break
                    latency = time.perf_counter() - t0
                    note(status=r.status_code)
                    if r.status_code == 200:
                        body = r.json()
                        if body.get("file") != name or "static" not in body:
                            note(error=f"200 with an unexpected body: {r.text[:200]}")
                        note(latency=latency)
                        break
                    if r.status_code == 503 and r.headers.get("retry-after", "").isdigit():
                        time.sleep(min(int(r.headers["retry-after"]), max(0.0, deadline - time.monotonic())))
                        continue
                    note(error=f"HTTP {r.status_code}: {r.text[:200]}")
                    break
                else:
                    note(gave_up=True)

    sampler = _Sampler(pid)
    sampler.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rnd.wall_s = time.perf_counter() - t0
    rnd.peak_rss_mib = sampler.finish()
    rnd.hwm_mib = memory_mib(pid)["VmHWM"]
    return rnd


def memory_growth(rounds: list[Round], *, growth_mib: float, growth_pct: float) -> list[str]:
    """The rounds whose peak RSS exceeds the first's by more than both margins."""
    if not rounds:
        return []
    base = rounds[0].peak_rss_mib
    flags = []
    for r in rounds[1:]:
        grew = r.peak_rss_mib - base
        if grew > growth_mib and grew > base * growth_pct / 100:
            flags.append(
                f"round {r.index}: peak RSS {r.peak_rss_mib:.1f} MiB, {grew:+.1f} MiB over round {rounds[0].index}"
            )
    return flags


def load_test(
    *,
    model: str = "default",
    rounds: int = 3,
    requests: int = 200,
    clients: int = 8,
    seconds: float = 10.0,
    queue: int = 8,
    workers: int = 1,
    max_seconds: float = 900.0,
    growth_mib: float = 32.0,
    growth_pct: float = 5.0,
    server_threads: int | None = None,
    attempts: int = 30,
    server: Server | None = None,
    log=print,
) -> dict:
    """Start a server (or use ``server``, left running), warm it up, run the rounds; the report (see :func:`main`)."""
    deadline = time.monotonic() + max_seconds
    with tempfile.TemporaryDirectory(prefix="moodscope-load-") as work:
        work = Path(work)
        clips = make_clips(work, seconds)
        args = ["--model", model, "--queue", str(queue), "--workers", str(workers)]
        own = server is None
        if own:
            (work / "server-tmp").mkdir()
            env = None if server_threads is None else {"OMP_NUM_THREADS": str(server_threads)}
            server = Server(*args, tmpdir=work / "server-tmp", env=env)
            log(f"server {server.url} (pid {server.pid}): {' '.join(args)}")
        try:
            start_mem = memory_mib(server.pid)
            warm = run_round(
                server.url,
                clips,
                index=0,
                requests=clients,
                clients=clients,
                pid=server.pid,
                deadline=deadline,
                attempts=attempts,
            )
            log(
                f"warm-up: {warm.requests} request(s); RSS {start_mem['VmRSS']:.1f} -> {warm.peak_rss_mib:.1f} MiB"
            )
            done = []
            for i in range(1, rounds + 1):
                if time.monotonic() > deadline:
                    log(f"time cap of {max_seconds:g} s reached: {len(done)} round(s) run")
                    break
                r = run_round(
                    server.url,
                    clips,
                    index=i,
                    requests=requests,
                    clients=clients,
                    pid=server.pid,
                    deadline=deadline,
                    attempts=attempts,
                )
                done.append(r)
                s = r.summary()
                log(
                    f"round {i}: {s['ok']} ok, {s['503']} x 503, {s['gave_up']} given up, {s['errors']} error(s); "
                    f"p50 {s['p50_s']:.3f} s, "
                    f"p95 {s['p95_s']:.3f} s; {s['throughput_per_s']:.2f}/s; peak RSS {s['peak_rss_mib']:.1f} MiB "
                    f"(VmHWM {s['hwm_mib']:.1f})"
                )
                for e in r.errors[:5]:
                    log(f"  error: {e}")
        finally:
            if own:
                server.stop()
        leftovers = server.leftovers()
    growth = memory_growth(done, growth_mib=growth_mib, growth_pct=growth_pct)
    return {
        "settings": {
            "model": model,
            "rounds": rounds,
            "requests": requests,
            "clients": clients,
            "clip_s": seconds,
            "queue": queue,
            "workers": workers,
            "server_threads": server_threads,
            "attempts": attempts,
            "growth_mib": growth_mib,
            "growth_pct": growth_pct,
            "cpus": len(os.sched_getaffinity(0)),
        },
        "startup_rss_mib": round(start_mem["VmRSS"], 1),
        "warmup": warm.summary(),
        "rounds": [r.summary() for r in done],
        "statuses": sorted({s for r in [warm, *done] for s in r.statuses}),
        "errors": [e for r in [warm, *done] for e in r.errors],
        "memory_growth": growth,
        "leftover_upload_folders": leftovers,
        "server_stderr": list(server.err)[-20:],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--model", default="default", help="model of the server (default: the bundled default)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=200, help="requests per round (default 200)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the generated clips (default 10)")
    p.add_argument("--queue", type=int, default=8, help="the server's --queue (default 8)")
    p.add_argument("--workers", type=int, default=1, help="the server's --workers (default 1)")
    p.add_argument(
        "--server-threads",
        type=int,
        help="OMP_NUM_THREADS of the server (default: as the environment has it)",
    )
    p.add_argument(
        "--attempts", type=int, default=30, help="tries of a request refused with 503 (default 30)"
    )
    p.add_argument("--max-seconds", type=float, default=900.0, help="wall-clock cap (default 900)")
    p.add_argument("--growth-mib", type=float, default=32.0, help="memory growth flagged beyond this ... ")
    p.add_argument(
        "--growth-pct", type=float, default=5.0, help="... and this percentage of round 1's peak RSS"
    )
    p.add_argument("--json", help="also write the report here")
    a = p.parse_args(argv)
    report = load_test(
        model=a.model,
        rounds=a.rounds,
        requests=a.requests,
        clients=a.clients,
        seconds=a.seconds,
        queue=a.queue,
        workers=a.workers,
        max_seconds=a.max_seconds,
        growth_mib=a.growth_mib,
        growth_pct=a.growth_pct,
        server_threads=a.server_threads,
        attempts=a.attempts,
    )
    print()
    print(
        "| round | 200 | 503 | given up | errors | p50 (s) | p95 (s) | answers/s | peak RSS (MiB) | VmHWM (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in report["rounds"]:
        print(
            f"| {s['round']} | {s['ok']} | {s['503']} | {s['gave_up']} | {s['errors']} | {s['p50_s']:.3f} | "
            f"{s['p95_s']:.3f} | "
            f"{s['throughput_per_s']:.2f} | {s['peak_rss_mib']:.1f} | {s['hwm_mib']:.1f} |"
        )
    print(f"statuses seen: {report['statuses']}; server start-up RSS {report['startup_rss_mib']} MiB")
    for e in report["errors"][:10]:
        print(f"ERROR: {e}")
    for line in report["memory_growth"]:
        print(f"MEMORY GROWTH: {line}")
    if report["leftover_upload_folders"]:
        print(f"LEFTOVER UPLOAD FOLDERS: {report['leftover_upload_folders']}")
    if a.json:
        Path(a.json).write_text(
            json.dumps({k: v for k, v in report.items() if k != "_rounds"}, indent=1) + "\n"
        )
    bad = report["errors"] or report["memory_growth"] or report["leftover_upload_folders"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
