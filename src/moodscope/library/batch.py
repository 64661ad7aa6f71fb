"""Predicting many files and folders (``moodscope predict``): a results store, JSON/CSV/PNG per track, bad files
reported and skipped.

With ``--out OUT`` every track goes into the results store ``OUT/moodscope.sqlite``
(:mod:`moodscope.library.store`) and, by default, a JSON (or CSV, and PNG with ``--plot``) per track. Files are
analysed by ``--jobs`` worker processes that load the model once (:mod:`moodscope.library.jobs`), or on Ray
(``--backend ray``). A re-run skips every file whose content (size and modification time, then the content
hash) is already in the store for the same model, and copies the result of a duplicate; ``--force`` recomputes.

The contract (README, "What happens with bad input"):

- **Destination first.** ``--out`` is created and locked (:class:`~moodscope.fileio.FolderLock`) before the model
  is loaded; a path that cannot be a folder, a folder nobody may write, or a folder another run is writing into
  stops the run at once with one line (exit 2). Without ``--out``, ``--plot`` checks that the current folder is
  writable. Orphaned temporary files of a killed run are removed.
- **No silent overwrite.** Every per-track output name is planned before work starts; if one that this run
  must write exists and is not an output of an earlier moodscope run in this folder for the same file, the run
  stops before predicting anything and names it, unless ``--overwrite``.
- **Nothing lost.** Each track is committed to the store, then its files are written (atomically), as soon as it
  is done (on stdout: one JSON line per track, flushed); a ``kill -9`` loses at most the tracks in flight. A bad
  file, a non-finite prediction or a failed write of one track's output is one line on stderr and the batch goes
  on; the exit code is 1 when anything failed.
- JSON written by moodscope is always valid JSON (absent values are ``null``, never a bare ``NaN``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..audio.decode import is_audio_file
from ..errors import OutputError, UsageError, shown_path, text_path
from ..fileio import FolderLock, json_text, probe_writable, remove_orphans, write_atomic
from ..inference.predictor import Result
from ..plot import plot_result
from .store import STORE_NAME

#: files at least this long (seconds) get a progress bar of their own (decoding a 10-hour file takes minutes)
LONG_FILE_S = 600.0
SUMMARY_JSON, SUMMARY_CSV = "summary.json", "summary.csv"


def collect_audio(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders (recursively) into audio files; returns ``(files, problems)``.

    Inside folders every entry with an audio extension is taken, regular file or not, so that a FIFO, a broken
    link or a link loop named ``x.wav`` is reported by the decoder (with its cause) instead of skipped silently.
    Links to folders are not followed (no loops). A path given explicitly is always taken as it is; a file
    met twice (the same path resolved) is taken once.
    """
    files, problems = [], []
    for given in paths:
        p = Path(given)
        if not str(
            given
        ).strip():  # Path("") is ".": an empty argument (an unset shell variable) is not a folder
            problems.append(("''", "empty path (an unset shell variable?)"))
            continue
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
    unique, seen = [], set()
    for f in files:  # the same file given twice (or through a folder and by name) is analysed once
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


@dataclass
class _Plan:
    """Where each input's outputs go: planned before any work, so that collisions are found first."""

    out: Path | None
    fmt: str
    plot: bool
    stems: list[str] = field(default_factory=list)

    def outputs(self, stem: str) -> list[str]:
        names = [f"{stem}.{self.fmt}"] if self.out is not None and self.fmt in ("json", "csv") else []
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
        probe_writable(folder)
    except OSError as e:
        raise OutputError(
            f"{shown_path(folder)}: cannot write plots into the current folder ({e.strerror or e}); "
            "use --out DIR"
        ) from None


def _write_outputs(res: Result, stem: str, plan: _Plan, *, missing_only: bool = False) -> list[str]:
    """Write one track's files; returns their names. Raises OSError (the caller reports it per track)."""
    written = []
    folder = plan.out if plan.out is not None else Path.cwd()
    if plan.out is not None and plan.fmt in ("json", "csv"):
        target = plan.out / f"{stem}.{plan.fmt}"
        if not (missing_only and target.exists()):
            write_atomic(target, json_text(res.to_dict(), indent=1) if plan.fmt == "json" else res.to_csv())
        written.append(
            f"{stem}.{plan.fmt}"
        )  # relative to the output folder (a subfolder mirrors the input's)
    if plan.plot:  # beside the other outputs, or in the current folder when they go to stdout
        png = folder / f"{stem}.png"
        if not (missing_only and png.exists()):
            plot_result(res, png)
        res.extra["plot"] = str(png)
        written.append(f"{stem}.png")
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
    force: bool = False,
    prune: bool = False,
    jobs: int | None = None,
    backend: str = "local",
    device: str = "cpu",
    hop_valence=None,
    hop_arousal=None,
    precision: str = "float32",
    progress: bool = True,
    stream=None,
    frontend: str | None = None,
) -> tuple[list[Result], list[tuple[str, str]]]:
    """Predict every audio file under ``paths``; with ``out_dir``, store every track and write its files.

    ``fmt`` is ``json``, ``csv`` or ``none`` (the store only). ``prune``: remove from the store, for every model,
    the tracks below the folders among ``paths`` that the scan no longer finds. ``jobs``: worker processes (None: all cores
    for batches of 8 files or more, else this process; :envvar:`MOODSCOPE_JOBS` sets the default).
    ``backend``: ``local`` or ``ray``. Returns ``(results, failures)`` for this run's files: results
    computed, copied from a duplicate or (``out_dir`` only) skipped as already in the store; failures are
    ``(path, cause)``, including tracks whose output could not be written. Without ``out_dir`` the JSON
    results go to ``stream`` (stdout), one line per track as it finishes.

    Raises
    ------
    UsageError, OutputError, ModelFileError, MissingToolError
        Before any work: a destination that cannot be used, outputs that exist (without ``overwrite``), a
        folder another run holds, a bad model file, the Ray backend without Ray.
    """
    from .jobs import ModelSpec

    roots = [Path(p) for p in paths if Path(p).is_dir()]
    if prune and (out_dir is None or not roots):
        raise UsageError(
            "--prune needs --out and at least one folder among the inputs (whose tracks it checks)"
        )
    files, failures = collect_audio(paths)
    out = Path(out_dir) if out_dir else None
    plan = _Plan(out, fmt, plot)
    used: set[str] = set()
    if out is not None:  # a file found in a folder keeps its place below it: names stable as a library grows
        where = _subfolders(paths, files)
        plan.stems = [_unique_stem(f, used, where.get(f, "")) for f in files]
    else:
        plan.stems = [_unique_stem(f, used) for f in files]
    spec = ModelSpec(model, device, precision, hop_valence, hop_arousal, frontend)
    if out is None:
        if plot:
            _check_plot_folder(Path.cwd())
        run = _Run(spec, files, plan, failures, progress, stream or sys.stdout)
        run.execute(list(zip(files, plan.stems)), jobs=jobs, backend=backend)
        return run.results, failures
    _check_destination(out)
    try:
        lock = FolderLock(out, "moodscope predict").acquire()
    except OSError as e:
        raise OutputError(f"{shown_path(out)}: cannot create the output folder ({e.strerror or e})") from None
    try:
        if lock.stale is not None:
            print(
                f"moodscope predict: note: {shown_path(out)}: an earlier run (pid {lock.stale.get('pid')}) "
                "was killed; what it finished is kept",
                file=sys.stderr,
            )
        remove_orphans(out)
        from .store import ResultStore

        with ResultStore(out) as store:
            run = _Run(spec, files, plan, failures, progress, None, store=store)
            todo = run.reuse(force=force)
            _check_collisions(out, plan, todo, store, run.model_id, overwrite or force)
            run.execute(todo, jobs=jobs, backend=backend)
            if prune:
                present = {text_path(Path(f).absolute()) for f in files}
                gone = store.prune([text_path(r.absolute()) for r in roots], present)
                shown = ", ".join(shown_path(r) for r in roots)
                print(
                    f"moodscope predict: pruned {len(gone)} track(s) no longer in {shown} from the results store"
                    + (" (their output files are left)" if gone else ""),
                    file=sys.stderr,
                )
            try:
                _write_summary(out, run, plan)
            except OSError as e:
                cause = f"could not write the summary ({e.strerror or e}); the store and per-track outputs are complete"
                failures.append((str(out / SUMMARY_JSON), cause))
                _error_line(out / SUMMARY_JSON, cause)
        return [r for r, _ in run.done], failures
    finally:
        lock.release()


def _default_jobs(n_todo: int) -> int:
    from .jobs import available_cores

    env = os.environ.get("MOODSCOPE_JOBS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise UsageError(f"MOODSCOPE_JOBS={env!r}: not a number of worker processes") from None
    return available_cores() if n_todo >= 8 else 1


class _Run:
    """One predict run: what to compute, what the store already has, and what each outcome becomes."""

    def __init__(self, spec, files, plan: _Plan, failures, progress, stream, store=None):
        self.spec, self.files, self.plan, self.failures = spec, files, plan, failures
        self.progress, self.stream, self.store = progress, stream, store
        self.predictor = spec.load()  # a bad model file stops the run here, before any work
        self.model_id = None
        if store is not None:
            from .store import model_id

            bundle = self.predictor.bundle
            self.model_id = (
                model_id(bundle.path, self.predictor.model.model_name) + self.predictor.frontend_id
            )
        self.done: list[tuple[Result, list[str]]] = []  #: (result, output names) of this run's files
        self.stems = dict(zip(map(str, files), plan.stems))
        self.keys: dict[str, object] = {}  #: FileKey of each regular input file (by str(path))
        self.digests: dict[str, str] = {}  #: content hash, where reuse() computed it
        self.counts = {"computed": 0, "skipped": 0, "copied": 0}

    @property
    def results(self) -> list[Result]:
        return [r for r, _ in self.done]

    def reuse(self, *, force: bool) -> list[tuple[Path, str]]:
        """Take what the store has (unchanged files, duplicates); return ``(file, stem)`` left to compute."""
        from .store import FileKey, content_hash, row_from_result

        todo = []
        for f, stem in zip(self.files, self.plan.stems):
            try:
                st = os.stat(f)
            except OSError:
                todo.append((f, stem))  # the decoder reports why
                continue
            if not stat.S_ISREG(st.st_mode):
                todo.append((f, stem))  # never read a FIFO or a device here
                continue
            key = FileKey(text_path(Path(f).absolute()), st.st_size, st.st_mtime_ns)
            self.keys[str(f)] = key
            if force:
                todo.append((f, stem))
                continue
            row = (
                self.store.row(key.path, self.model_id) if self.store.unchanged(key, self.model_id) else None
            )
            if row is None:
                try:
                    digest = content_hash(f)
                except OSError:
                    todo.append((f, stem))
                    continue
                self.digests[str(f)] = digest
                twin = self.store.by_hash(digest, self.model_id)
                if twin is None:
                    todo.append((f, stem))
                    continue
                res = Result.from_dict({**json.loads(twin["result"]), "file": str(f)})
                self.store.add(row_from_result(res, key, digest, self.model_id))
                self.counts["copied"] += 1
            else:
                res = Result.from_dict({**json.loads(row["result"]), "file": str(f)})
                self.counts["skipped"] += 1
            self._outputs(f, stem, res, missing_only=True)
        return todo

    def execute(self, todo: list[tuple[Path, str]], *, jobs, backend: str) -> None:
        from tqdm import tqdm

        from .jobs import available_cores, run_local

        if not todo:
            return
        paths = [str(f) for f, _ in todo]
        if backend == "ray":  # without --jobs: every CPU of the cluster (RAY_ADDRESS), or of this machine
            from .ray_backend import run_ray

            outcomes = run_ray(self.spec, paths, jobs=None if jobs is None else max(1, int(jobs)))
        elif backend == "local":
            n_jobs = _default_jobs(len(todo)) if jobs is None else max(1, int(jobs))
            cores = available_cores()
            if (
                n_jobs > cores and len(todo) > cores
            ):  # each worker holds a model: more than the cores only costs memory
                print(
                    f"moodscope predict: --jobs {n_jobs} capped at {cores}, the cores available (each worker loads "
                    "the model)",
                    file=sys.stderr,
                )
                n_jobs = cores
            bars = (lambda p: _LongFileBar(shown_path(Path(p).name), True)) if self.progress else None
            outcomes = run_local(
                self.spec, paths, jobs=n_jobs, predictor=self.predictor, decoding_progress=bars
            )
        else:
            raise UsageError(f"unknown backend {backend!r} (local or ray)")
        bar = tqdm(total=len(todo), unit="file", disable=not self.progress or len(todo) < 2, file=sys.stderr)
        try:
            for o in outcomes:
                bar.update(1)
                bar.set_postfix_str(shown_path(Path(o.path).name[-30:]))
                self._take(o, bar)
        finally:
            bar.close()

    def _take(self, o, bar) -> None:
        f = o.path
        if o.result is None:
            self.failures.append((f, o.error))
            _error_line(f, o.error)
            if self.store is not None and self.model_id is not None:
                self.store.add_failure(str(Path(f).absolute()), self.model_id, o.error)
            return
        res = o.result
        self.counts["computed"] += 1
        for note in res.extra.get("warnings") or ():
            _warning_line(f, note)
        if self.store is not None:
            from .store import FileKey, content_hash, row_from_result

            try:
                key = self.keys.get(f) or FileKey.of(f)
                digest = self.digests.get(f) or content_hash(f)
                self.store.add(row_from_result(res, key, digest, self.model_id))  # committed: survives a kill
            except OSError as e:
                cause = f"could not store its result ({e.strerror or e})"
                self.failures.append((f, cause))
                _error_line(f, cause)
                return
        if not self._outputs(f, self.stems[f], res):
            return
        if self.plan.out is None:
            _emit(self.stream, json_text(res.to_dict()) + "\n")

    def _outputs(self, f, stem: str, res: Result, *, missing_only: bool = False) -> bool:
        """Write a track's files (only the missing ones for a track taken from the store)."""
        try:
            written = _write_outputs(res, stem, self.plan, missing_only=missing_only)
        except OSError as e:
            cause = f"could not write its output ({e.strerror or e}: {shown_path(e.filename or stem)})"
            self.failures.append((str(f), cause))
            _error_line(f, cause)
            return False
        self.done.append((res, written))
        return True


def _check_collisions(out: Path, plan: _Plan, todo, store, mid: str, overwrite: bool) -> None:
    """Outputs this run must write that exist and are not moodscope's outputs for the same file."""
    if overwrite:
        return
    existing = []
    for f, stem in todo:
        for n in plan.outputs(stem):
            if os.path.lexists(out / n) and not store.has_path(str(Path(f).absolute())):
                existing.append(n)
    if existing:
        shown = ", ".join(shown_path(n) for n in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise UsageError(
            f"{shown_path(out)}: {len(existing)} output file(s) of this run already exist and are not moodscope's "
            f"results for the same audio ({shown}); pass --overwrite to replace them, or choose another --out"
        )


def _error_line(path, cause: str) -> None:
    """One track's error on stderr, above the progress bar if one is shown."""
    from tqdm import tqdm

    tqdm.write(f"error: {shown_path(path)}: {cause}", file=sys.stderr)


def _warning_line(path, note: str) -> None:
    """A note on one track's audio (:mod:`moodscope.audio.content`) on stderr: the track is analysed anyway."""
    from tqdm import tqdm

    tqdm.write(f"warning: {shown_path(path)}: {note}", file=sys.stderr)


def _emit(stream, text: str) -> None:
    """One result line on stdout, flushed at once (a later failure cannot take it back)."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError(f"<stdout>: cannot write results ({e.strerror or e})") from None


def _write_summary(out: Path, run: _Run, plan: _Plan) -> None:
    """``summary.json`` (and ``summary.csv``): this run's files; the store holds everything analysed here."""
    summary = {
        "model": run.predictor.name,
        "model_id": run.model_id,
        "store": STORE_NAME,
        "n_files": len(run.done) + len(run.failures),
        "n_ok": len(run.done),
        "n_failed": len(run.failures),
        **{f"n_{k}": v for k, v in run.counts.items()},
        "n_in_store": run.store.count(run.model_id),
        "tracks": [
            {
                "file": r.file,
                "duration_s": round(r.duration_s, 2),
                **{k: (round(v, 4) if v == v else None) for k, v in r.static.items()},
                "quadrant": r.quadrant,
                "outputs": written,
            }
            for r, written in run.done
        ],
        "failures": [{"file": f, "error": m} for f, m in run.failures],
    }
    write_atomic(out / SUMMARY_JSON, json_text(summary, indent=1))
    if plan.fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["file", "duration_s", "valence", "arousal", "quadrant"])
        for r, _ in run.done:
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


#: output stems a track may not take: ``summary.json``/``summary.csv`` are the run's (a track ``summary.wav``
#: gets ``summary-2.json``, its summary row naming that file), compared without case (macOS, Windows)
RESERVED_STEMS = frozenset({"summary"})


def _subfolders(paths, files: list[Path]) -> dict[Path, str]:
    """For each file found inside a folder argument, its subfolder below that folder (``"a/b"``, ``""`` at the
    top); files given by name are not in the result."""
    folders = [Path(p) for p in paths if Path(p).is_dir()]
    out = {}
    for f in files:
        for d in folders:
            try:
                rel = f.parent.relative_to(d)
            except ValueError:
                continue
            out[f] = "" if str(rel) == "." else text_path(rel.as_posix())
            break
    return out


def _unique_stem(path: Path, used: set[str], subfolder: str = "") -> str:
    """The output name (without extension) of ``path``: its stem, below ``subfolder`` (``predict DIR --out OUT``
    mirrors DIR's folders, so ``lib/a/x.wav`` and ``lib/b/x.wav`` are ``OUT/a/x.json`` and ``OUT/b/x.json`` on
    every run, however the library grows); ``-2``, ``-3``, ... only where two inputs still meet (two files of
    one name given by name)."""
    stem = text_path(path.stem)  # output names are text, whatever bytes the input's name holds
    if subfolder:
        stem = f"{subfolder}/{stem}"
    cand, k = stem, 1
    if stem.casefold() in RESERVED_STEMS:
        k, cand = 2, f"{stem}-2"
    while cand in used:
        k += 1
        cand = f"{stem}-{k}"
    used.add(cand)
    return cand
