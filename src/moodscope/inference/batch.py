"""Predicting many files and folders (``moodscope predict``): JSON/CSV/PNG outputs, bad files reported and skipped."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

from ..audio.decode import is_audio_file
from ..errors import MoodscopeError
from ..fileio import write_atomic
from ..plot import plot_result
from .predictor import Predictor, Result


def collect_audio(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders (recursively) into audio files; returns ``(files, problems)``."""

    files, problems = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_audio_file(f))
            if not found:
                problems.append((str(p), "folder holds no supported audio files"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            problems.append((str(p), "no such file or folder"))
    return files, problems


def predict_paths(
    paths,
    *,
    model=None,
    out_dir=None,
    fmt: str = "json",
    plot: bool = False,
    device: str = "cpu",
    hop_valence=None,
    hop_arousal=None,
    precision: str = "float32",
    progress: bool = True,
    stream=None,
) -> tuple[list[Result], list[tuple[str, str]]]:
    """Predict every audio file under ``paths``; write one JSON/CSV (+PNG) per track and a summary.

    Bad files are reported and skipped; returns ``(results, failures)``. Outputs are written atomically.
    Without ``out_dir`` the JSON results go to ``stream`` (stdout).
    """
    from tqdm import tqdm

    predictor = Predictor.from_file(
        model, device=device, hop_valence=hop_valence, hop_arousal=hop_arousal, precision=precision
    )
    files, failures = collect_audio(paths)
    out = Path(out_dir) if out_dir else None
    stream = stream or sys.stdout
    results: list[Result] = []
    used_names: set[str] = set()
    bar = tqdm(files, unit="file", disable=not progress or len(files) < 2, file=sys.stderr)
    for f in bar:
        bar.set_postfix_str(f.name[-30:])
        t0 = time.time()
        try:
            res = predictor.predict(f)
        except MoodscopeError as e:
            failures.append((str(f), e.cause if hasattr(e, "cause") else str(e)))
            print(f"error: {e}", file=sys.stderr)
            continue
        res.extra["seconds"] = round(time.time() - t0, 3)
        results.append(res)
        stem = _unique_stem(f, used_names)
        if out is not None:
            if fmt == "json":
                write_atomic(out / f"{stem}.json", json.dumps(res.to_dict(), indent=1))
            else:
                write_atomic(out / f"{stem}.csv", res.to_csv())
        if plot:  # beside the other outputs, or in the current folder when they go to stdout
            png = (out if out is not None else Path.cwd()) / f"{stem}.png"
            plot_result(res, png)
            res.extra["plot"] = str(png)
    if out is not None:
        summary = {
            "model": predictor.name,
            "n_files": len(files),
            "n_ok": len(results),
            "n_failed": len(failures),
            "tracks": [
                {"file": r.file, "duration_s": round(r.duration_s, 2), **r.static, "quadrant": r.quadrant}
                for r in results
            ],
            "failures": [{"file": f, "error": m} for f, m in failures],
        }
        write_atomic(out / "summary.json", json.dumps(summary, indent=1))
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["file", "duration_s", "valence", "arousal", "quadrant"])
            for r in results:
                w.writerow(
                    [
                        r.file,
                        f"{r.duration_s:.2f}",
                        f"{r.static['valence']:.4f}",
                        f"{r.static['arousal']:.4f}",
                        r.quadrant,
                    ]
                )
            write_atomic(out / "summary.csv", buf.getvalue())
    else:
        for r in results:
            stream.write(json.dumps(r.to_dict()) + "\n")
    return results, failures


def _unique_stem(path: Path, used: set[str]) -> str:
    stem = path.stem
    cand, k = stem, 1
    while cand in used:
        k += 1
        cand = f"{stem}-{k}"
    used.add(cand)
    return cand
