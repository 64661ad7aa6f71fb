"""Predicting many files and folders (``moodscope predict``): JSON/CSV/PNG outputs, bad files reported and skipped.

The contract (README, "What happens with bad input"):

- **Destination first.** ``--out`` is created and locked (:class:`~moodscope.fileio.FolderLock`) before the model
  is loaded; a path that cannot be a folder, a folder nobody may write, or a folder another run is writing into
  stops the run at once with one line (exit 2). Without ``--out``, ``--plot`` checks that the current folder is
  writable. Orphaned temporary files of a killed run are removed.
- **No silent overwrite.** Every output name is planned before work starts; if any of them exists the run stops
  before predicting anything and names them, unless ``--overwrite`` (which also removes the per-track outputs of
  the previous run in that folder that this run does not rewrite, so ``summary.json`` and the per-track files
  always agree).
- **Nothing lost.** Each output is written atomically as soon as its track is done (on stdout: one JSON line per
  track, flushed); a bad file, a non-finite prediction or a failed write of one track's output is one line on
  stderr and the batch goes on; the exit code is 1 when anything failed.
- JSON written by moodscope is always valid JSON (absent values are ``null``, never a bare ``NaN``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..audio.decode import decoding_progress, is_audio_file
from ..errors import MoodscopeError, OutputError, UsageError, shown_path
from ..fileio import FolderLock, json_text, remove_orphans, write_atomic
from ..plot import plot_result
from .predictor import Predictor, Result

#: files at least this long (seconds) get a progress bar of their own (decoding a 10-hour file takes minutes)
LONG_FILE_S = 600.0
SUMMARY_JSON, SUMMARY_CSV = "summary.json", "summary.csv"


def collect_audio(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders (recursively) into audio files; returns ``(files, problems)``.

    Inside folders every entry with an audio extension is taken, regular file or not, so that a FIFO, a broken
    link or a link loop named ``x.wav`` is reported by the decoder (with its cause) instead of skipped silently.
    Links to folders are not followed (no loops). A path given explicitly is always taken as it is.
    """
    files, problems = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found = []

            def _unreadable(e: OSError, where=p) -> None:
                problems.append((str(e.filename or where), f"cannot list folder ({e.strerror or e})"))

            for root, dirs, names in os.walk(p, onerror=_unreadable):
                dirs.sort()
                found.extend(Path(root) / n for n in sorted(names) if is_audio_file(n))
            if not found and not any(f == str(p) for f, _ in problems):
                problems.append((str(p), "folder holds no supported audio files"))
            files.extend(found)
        elif os.path.lexists(
            p
        ):  # files, and links whose target is missing or a loop (the decoder says which)
            files.append(p)
        else:
            problems.append((str(p), "no such file or folder"))
    return files, problems


@dataclass
class _Plan:
    """Where each input's outputs go: planned before any work, so that collisions are found first."""

    out: Path | None
    fmt: str
    plot: bool
    stems: list[str] = field(default_factory=list)

    def outputs(self, stem: str) -> list[str]:
        names = [f"{stem}.{self.fmt}"] if self.out is not None else []
        return names + ([f"{stem}.png"] if self.plot else [])

    def all_outputs(self) -> list[str]:
        names = [n for s in self.stems for n in self.outputs(s)]
        if self.out is not None:
            names += [SUMMARY_JSON] + ([SUMMARY_CSV] if self.fmt == "csv" else [])
        return names


def _check_destination(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{shown_path(out)}: exists and is not a folder (--out names the output folder)")


def _check_plot_folder(folder: Path) -> None:
    """``--plot`` without ``--out`` writes PNGs into the current folder: check it can before any work."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".moodscope-probe.", suffix=".tmp")
    except OSError as e:
        raise OutputError(
            f"{shown_path(folder)}: cannot write plots into the current folder ({e.strerror or e}); "
            "use --out DIR"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _previous_outputs(out: Path) -> list[str]:
    """Per-track output names the previous run's ``summary.json`` lists (names only, never paths)."""
    try:
        prev = json.loads((out / SUMMARY_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    names = []
    for t in prev.get("tracks", []) if isinstance(prev, dict) else []:
        for n in (t.get("outputs") or []) if isinstance(t, dict) else []:
            if isinstance(n, str) and n == os.path.basename(n) and n not in ("", ".", ".."):
                names.append(n)
    return names


def _write_outputs(res: Result, stem: str, plan: _Plan) -> list[str]:
    """Write one track's outputs; returns their names. Raises OSError (the caller reports it per track)."""
    written = []
    if plan.out is not None:
        data = json_text(res.to_dict(), indent=1) if plan.fmt == "json" else res.to_csv()
        write_atomic(plan.out / f"{stem}.{plan.fmt}", data)
        written.append(f"{stem}.{plan.fmt}")
    if plan.plot:  # beside the other outputs, or in the current folder when they go to stdout
        png = (plan.out if plan.out is not None else Path.cwd()) / f"{stem}.png"
        plot_result(res, png)
        res.extra["plot"] = str(png)
        written.append(png.name)
    return written


class _LongFileBar:
    """A progress bar (seconds of audio decoded) for files of at least :data:`LONG_FILE_S`."""

    def __init__(self, name: str, enabled: bool):
        self.name, self.enabled, self.bar = name, enabled, None

    def __call__(self, done: float, total: float) -> None:
        if not self.enabled or total < LONG_FILE_S:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=round(total), unit="s", desc=self.name[-30:], leave=False, file=sys.stderr, position=1
            )
        self.bar.update(max(0, round(done) - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def predict_paths(
    paths,
    *,
    model=None,
    out_dir=None,
    fmt: str = "json",
    plot: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
    hop_valence=None,
    hop_arousal=None,
    precision: str = "float32",
    progress: bool = True,
    stream=None,
) -> tuple[list[Result], list[tuple[str, str]]]:
    """Predict every audio file under ``paths``; write one JSON/CSV (+PNG) per track and a summary.

    Bad files are reported and skipped; returns ``(results, failures)`` (``failures`` are ``(path, cause)``,
    including tracks whose output could not be written). Without ``out_dir`` the JSON results go to
    ``stream`` (stdout), one line per track as it finishes. See the module docstring for the contract.

    Raises
    ------
    UsageError, OutputError, ModelFileError
        Before any work: a destination that cannot be used, outputs that exist (without ``overwrite``),
        a folder another run holds, a bad model file.
    """
    from tqdm import tqdm

    files, failures = collect_audio(paths)
    out = Path(out_dir) if out_dir else None
    plan = _Plan(out, fmt, plot)
    used: set[str] = set()
    plan.stems = [_unique_stem(f, used) for f in files]
    lock = None
    if out is not None:
        _check_destination(out)
        try:
            lock = FolderLock(out, "moodscope predict").acquire()
        except OSError as e:
            raise OutputError(
                f"{shown_path(out)}: cannot create the output folder ({e.strerror or e})"
            ) from None
    try:
        if out is not None:
            if lock.stale is not None:
                print(
                    f"moodscope predict: note: {shown_path(out)}: an earlier run (pid {lock.stale.get('pid')}) "
                    "was killed; its finished outputs are kept",
                    file=sys.stderr,
                )
            remove_orphans(out)
            _check_collisions(out, plan, overwrite)
        elif plot:
            _check_plot_folder(Path.cwd())
        predictor = Predictor.from_file(
            model, device=device, hop_valence=hop_valence, hop_arousal=hop_arousal, precision=precision
        )
        results = _run(predictor, files, plan, failures, progress, stream or sys.stdout, tqdm)
        if out is not None:
            try:
                _write_summary(out, predictor, plan, results, failures, overwrite)
            except OSError as e:
                cause = f"could not write the summary ({e.strerror or e}); the per-track outputs are complete"
                failures.append((str(out / SUMMARY_JSON), cause))
                print(f"error: {shown_path(out / SUMMARY_JSON)}: {cause}", file=sys.stderr)
        return [r for r, _ in results], failures
    finally:
        if lock is not None:
            lock.release()


def _check_collisions(out: Path, plan: _Plan, overwrite: bool) -> None:
    existing = [n for n in plan.all_outputs() if os.path.lexists(out / n)]
    if existing and not overwrite:
        shown = ", ".join(shown_path(n) for n in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise UsageError(
            f"{shown_path(out)}: {len(existing)} output file(s) of this run already exist ({shown}); "
            "pass --overwrite to replace them, or choose another --out"
        )


def _run(predictor, files, plan: _Plan, failures, progress, stream, tqdm) -> list[tuple[Result, list[str]]]:
    results: list[tuple[Result, list[str]]] = []
    bar = tqdm(
        list(zip(files, plan.stems)), unit="file", disable=not progress or len(files) < 2, file=sys.stderr
    )
    for f, stem in bar:
        bar.set_postfix_str(shown_path(f.name[-30:]))
        t0 = time.time()
        long_bar = _LongFileBar(shown_path(f.name), progress)
        try:
            with decoding_progress(long_bar):
                res = predictor.predict(f)
        except MoodscopeError as e:
            failures.append((str(f), e.cause if hasattr(e, "cause") else str(e)))
            bar.write(f"error: {e}", file=sys.stderr)
            continue
        finally:
            long_bar.close()
        res.extra["seconds"] = round(time.time() - t0, 3)
        try:
            written = _write_outputs(res, stem, plan)
        except OSError as e:
            cause = f"could not write its output ({e.strerror or e}: {shown_path(e.filename or stem)})"
            failures.append((str(f), cause))
            bar.write(f"error: {shown_path(f)}: {cause}", file=sys.stderr)
            continue
        results.append((res, written))
        if plan.out is None:
            _emit(stream, json_text(res.to_dict()) + "\n")
    return results


def _emit(stream, text: str) -> None:
    """One result line on stdout, flushed at once (a later failure cannot take it back)."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError(f"<stdout>: cannot write results ({e.strerror or e})") from None


def _write_summary(out: Path, predictor, plan: _Plan, results, failures, overwrite: bool) -> None:
    if overwrite:  # outputs of the previous run that this run does not rewrite would contradict its summary
        keep = set(plan.all_outputs())
        for name in _previous_outputs(out):
            if name not in keep:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    (out / name).unlink()
    summary = {
        "model": predictor.name,
        "n_files": len(results) + len(failures),
        "n_ok": len(results),
        "n_failed": len(failures),
        "tracks": [
            {
                "file": r.file,
                "duration_s": round(r.duration_s, 2),
                **{k: (round(v, 4) if v == v else None) for k, v in r.static.items()},
                "quadrant": r.quadrant,
                "outputs": written,
            }
            for r, written in results
        ],
        "failures": [{"file": f, "error": m} for f, m in failures],
    }
    write_atomic(out / SUMMARY_JSON, json_text(summary, indent=1))
    if plan.fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["file", "duration_s", "valence", "arousal", "quadrant"])
        for r, _ in results:
            w.writerow(
                [
                    r.file,
                    f"{r.duration_s:.2f}",
                    f"{r.static['valence']:.4f}",
                    f"{r.static['arousal']:.4f}",
                    r.quadrant,
                ]
            )
        write_atomic(out / SUMMARY_CSV, buf.getvalue())


def _unique_stem(path: Path, used: set[str]) -> str:
    stem = path.stem
    cand, k = stem, 1
    while cand in used:
        k += 1
        cand = f"{stem}-{k}"
    used.add(cand)
    return cand
