"""The ``moodscope`` command line. Each verb is a thin wrapper over one library function.

``main(argv=None)`` returns the exit code, so tests call it directly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import textwrap
import warnings
from pathlib import Path

from . import __version__
from .argtypes import count
from .errors import MoodscopeError, shown_path

#: examples per verb: the first is also listed by ``moodscope --help``
EXAMPLES = {
    "predict": [
        "moodscope predict song.mp3 --plot --out results/",
        "moodscope predict song.mp3 --plot                # JSON on stdout, song.png here",
        "moodscope predict ~/Music/ --out results/ --precision auto  # bf16 where the CPU/GPU has it",
        "moodscope predict song.mp3 --model demo          # the synthetic-corpus demo DAMFF",
        "moodscope predict ~/Music/ --out results/ --jobs 2 # a library: results/moodscope.sqlite, re-runs skip what is done",
        "moodscope predict ~/Music/ --out results/ --overwrite  # replace files in results/ that moodscope did not write",
        "moodscope predict ~/Music/ --out results/ --prune  # also forget tracks deleted from ~/Music/ since",
        "moodscope predict ~/Music/ --out results/ --frontend student  # distilled MusiCNN front end: 1.5x faster, close",
    ],
    "demo": [
        "moodscope demo",
        "moodscope demo --precision auto   # bf16 where native: faster, other numbers",
    ],
    "train": [
        "moodscope train --config configs/damff_synthetic.yaml --set train.epochs=5",
        "moodscope train --config configs/adff_pmemo_table1.yaml --set data.root=~/PMEmo --precision auto",
    ],
    "evaluate": [
        "moodscope evaluate --model runs/x/fold_0/model.safetensors --dataset folder --root my_dataset/"
    ],
    "compare": [
        "moodscope compare --config configs/damff_synthetic.yaml --models damff,crnn,classical --folds 3",
        "moodscope compare --config configs/tagger_synthetic.yaml --models tagger,classical "
        "--metrics f1_macro,roc_auc_macro --resume",
        "moodscope compare --config configs/damff_synthetic.yaml --models damff,bcrsn --device cuda --precision auto",
    ],
    "corpus": ["moodscope corpus synth --out corpus/ --n-clips 40 --duration 45 --seed 0"],
    "features": ["moodscope features a.mp3 b.flac --out feats/"],
    "datasets": ["moodscope datasets check deam --root ~/data/DEAM"],
    "models": ["moodscope models                 # registered architectures and the bundled models"],
    "query": [
        "moodscope query results/ --near calm --limit 50            # the 50 calmest tracks",
        "moodscope query results/ --quadrant happy --format m3u > happy.m3u",
    ],
    "playlist": ["moodscope playlist results/ --from calm --to energetic --n 20 --out calm-to-energetic.m3u"],
    "serve": [
        "moodscope serve                  # then open http://127.0.0.1:8000/ (pip install 'moodscope[serve]')",
        "moodscope serve --model demo --port 8080 --queue 4 --max-mb 50",
        "moodscope serve --frontend student   # the default model on its distilled, faster front end",
        "curl -F file=@song.mp3 http://127.0.0.1:8000/predict   # the JSON of moodscope predict",
    ],
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _add_frontend(s: argparse.ArgumentParser) -> None:
    """``--frontend student|full``: what computes the MusiCNN features of models that read them."""
    from .config import DEFAULT_FRONTEND, FRONTENDS

    s.add_argument(
        "--frontend",
        choices=FRONTENDS,
        default=DEFAULT_FRONTEND,
        help=f"for models on MusiCNN features (the default model): student = its distilled front end "
        f"(1.9x fewer operations, close numbers), full = the network itself, exact (default {DEFAULT_FRONTEND})",
    )


def _add_precision(s: argparse.ArgumentParser, default: str | None) -> None:
    """``--precision auto|float32|bf16`` (and ``--bf16``, its alias for ``bf16``)."""
    s.add_argument(
        "--precision",
        choices=["auto", "float32", "bf16"],
        default=default,
        help=(
            "float32 (default: the same numbers on every machine)"
            if default
            else "default: the config's train.precision (float32)"
        )
        + "; bf16: bfloat16 autocast, about 2x faster where the CPU (AVX512-BF16/AMX) or GPU has it "
        "natively, float32 with a warning elsewhere; auto: bf16 only where native",
    )
    s.add_argument("--bf16", action="store_const", const="bf16", dest="precision", help="= --precision bf16")


def _add_resume_restart(s: argparse.ArgumentParser, resume_help: str, restart_help: str) -> None:
    """``--resume`` / ``--restart`` (exclusive) of train and compare."""
    again = s.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help=resume_help)
    again.add_argument("--restart", action="store_true", help=restart_help)


def _add(sub, name: str, help_: str, description: str = "") -> argparse.ArgumentParser:
    examples = EXAMPLES[name]
    epilog = ("examples:\n" if len(examples) > 1 else "example:\n") + "\n".join(f"  {e}" for e in examples)
    return sub.add_parser(
        name,
        help=help_,
        description=textwrap.dedent(description or help_),
        epilog=epilog,
        formatter_class=_Formatter,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="moodscope",
        description="Music emotion recognition: valence-arousal per track, a V-A curve every 0.5 s, emotion tags.",
        formatter_class=_Formatter,
        epilog="examples:\n"
        + "\n".join(f"  {ex[0]}" for ex in EXAMPLES.values())
        + "\n\nRun 'moodscope VERB --help' for a verb's options.",
    )
    p.add_argument("--version", action="version", version=f"moodscope {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = p.add_subparsers(dest="verb", metavar="VERB")

    s = _add(
        sub,
        "predict",
        "predict emotion of audio files or folders",
        """Predict valence/arousal (and tags, for tagger models) of audio files or whole folders (recursive).
        Without --out, one JSON object per track is printed on stdout. With --out, a JSON or CSV per track,
        a summary and (with --plot) a PNG per track are written there. Bad files are reported and skipped;
        the exit code is 1 if any file failed.""",
    )
    s.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    s.add_argument(
        "--model",
        help="model file (.safetensors) or a bundled model: default (MusiCNN + EMOPIA, the default) or demo",
    )
    s.add_argument(
        "--out", help="output folder (created; another run may not write into it at the same time)"
    )
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that already exist in --out (default: refuse before any work, naming them)",
    )
    s.add_argument(
        "--format",
        choices=["json", "csv", "none"],
        default="json",
        help="per-track output format beside the results store (default json; none: the store only)",
    )
    s.add_argument(
        "--jobs",
        type=count(1, 256),
        help="worker processes, each loading the model once (default: all cores for 8 files or more, else 1; "
        "MOODSCOPE_JOBS sets the default)",
    )
    s.add_argument(
        "--force", action="store_true", help="recompute tracks the results store in --out already has"
    )
    s.add_argument(
        "--prune",
        action="store_true",
        help="remove from the results store in --out the tracks of the given folders that are no longer there "
        "(deleted or moved; their output files are left)",
    )
    s.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local processes (default) or a Ray cluster (pip install 'moodscope[ray]'; RAY_ADDRESS)",
    )
    s.add_argument(
        "--plot", action="store_true", help="also write a PNG per track (into --out, else the current folder)"
    )
    s.add_argument(
        "--hop-valence", type=float, help="sliding-window hop for valence in seconds (default: model's)"
    )
    s.add_argument(
        "--hop-arousal", type=float, help="sliding-window hop for arousal in seconds (default: model's)"
    )
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto (default cpu)")
    _add_precision(s, "float32")
    _add_frontend(s)
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = _add(
        sub,
        "demo",
        "synthetic corpus -> train a CPU-sized DAMFF -> evaluate -> predict with a plot",
        """The whole pipeline on the built-in synthetic corpus (no download): render the corpus, train a
        CPU-sized DAMFF, evaluate it on held-out songs (CCC/PCC/RMSE per dimension) and predict one held-out
        song with its plot. Everything goes to --out (default demo-output/).""",
    )
    s.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    s.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="stop training after this many minutes (default: no limit; the demo trains a fixed 20 epochs, "
        "and a limit makes its result depend on the machine's speed)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    _add_precision(s, "float32")
    s.add_argument("--quiet", action="store_true")

    s = _add(
        sub,
        "train",
        "train (k-fold) from a YAML config",
        """Train and evaluate a model as a config describes (see configs/). Results per fold and mean ± std
        go to the run directory (results.json, results.md), with the model file of each fold.""",
    )
    s.add_argument("--config", required=True, help="YAML config file")
    s.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 --set data.root=~/DEAM (repeatable)",
    )
    s.add_argument(
        "--out", help="run directory (default <output_dir>/<name>; created and locked before any work)"
    )
    _add_resume_restart(
        s,
        "skip finished folds, continue an interrupted one (refused if the config differs)",
        "remove the run directory's earlier results and start over",
    )
    s.add_argument("--folds", type=int, help="number of folds (= --set split.folds=N)")
    s.add_argument("--device", help="cpu, cuda or auto (= --set train.device=...)")
    _add_precision(s, None)
    s.add_argument("--fast-dev-run", action="store_true", help="one batch of training per fold (smoke test)")
    s.add_argument("--quiet", action="store_true")

    s = _add(
        sub,
        "evaluate",
        "score a model file on a labelled dataset",
        """Predict every labelled track of a dataset with a model file and print the metrics
        (CCC/PCC/RMSE per song for dynamic models, R²/RMSE or accuracy for static ones, P/R/F1/AUC for taggers).""",
    )
    s.add_argument("--model", help="model file or bundled name: default (the default) or demo")
    s.add_argument("--dataset", default="folder", help="dataset adapter name (default folder)")
    s.add_argument("--root", required=True, help="dataset folder")
    s.add_argument("--ids", help="file with the track ids to evaluate (default: all labelled tracks)")
    s.add_argument("--device", default="cpu")
    s.add_argument("--json", dest="json_out", help="also write the metrics to this JSON file")

    s = _add(sub, "corpus", "build the synthetic labelled corpus", "Synthetic corpus tools.")
    csub = s.add_subparsers(dest="corpus_verb", metavar="ACTION")
    c = csub.add_parser(
        "synth",
        help="render a synthetic labelled corpus",
        epilog=f"example:\n  {EXAMPLES['corpus']}",
        formatter_class=_Formatter,
    )
    c.add_argument("--out", required=True)
    c.add_argument("--n-clips", type=int, default=40)
    c.add_argument("--duration", type=float, default=45.0, help="clip length in seconds")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--workers", type=count(1, 256), default=None, help="processes (default: all cores)")

    s = _add(
        sub,
        "features",
        "write log-Mel features (.npy) of audio files",
        "Compute the log-Mel features (128 bands, 60 ms window, 10 ms hop, dB) of each file into DIR/<stem>.npy.",
    )
    s.add_argument("paths", nargs="+", metavar="AUDIO")
    s.add_argument("--out", required=True)
    s.add_argument("--no-cache", action="store_true", help="do not use the feature cache")

    s = _add(
        sub,
        "datasets",
        "list dataset adapters or check a release on disk",
        "List the dataset adapters, or check that a release on disk reads as expected.",
    )
    dsub = s.add_subparsers(dest="datasets_verb", metavar="ACTION")
    dsub.add_parser("list", help="list dataset adapters")
    d = dsub.add_parser(
        "check",
        help="check a dataset release",
        epilog=f"example:\n  {EXAMPLES['datasets']}",
        formatter_class=_Formatter,
    )
    d.add_argument("name")
    d.add_argument("--root", required=True)
    d.add_argument("--no-audio-check", action="store_true", help="skip decoding each audio file's header")
    d.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="let dataset.yaml's audio_dir and split file lie outside --root (default: refused; a tree cannot "
        "allow this itself)",
    )

    _add(
        sub,
        "models",
        "list the registered models",
        "List the registered models with their paper and output kind.",
    )

    s = _add(
        sub,
        "compare",
        "train several models under one protocol and tabulate them",
        """Train and evaluate each model under the identical protocol of a config (same splits, seeds,
             metrics) and write one table (markdown + CSV) with mean ± std per metric per model, the paper's
             numbers where the config has them, and a paired t-test across folds against the first model.
             "classical" in the list adds the hand-crafted reference (log-Mel/MFCC statistics, linear model)
             solving the same task under the same folds.""",
    )
    s.add_argument("--config", required=True)
    s.add_argument("--models", required=True, help="comma-separated model names; the first is the reference")
    s.add_argument("--folds", type=int)
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--device", help="cpu, cuda or auto (= --set train.device=...)")
    _add_precision(s, None)
    s.add_argument("--out", help="output folder (default runs/compare-<config name>; locked while it runs)")
    _add_resume_restart(
        s,
        "keep finished folds of each model and continue interrupted ones (refused if the config differs)",
        "remove each model's earlier results and start over",
    )
    s.add_argument(
        "--metrics", help="comma-separated metrics shown in the markdown table (default all; the CSV has all)"
    )
    s.add_argument("--quiet", action="store_true")
    from .library import commands as _verbs

    s = _add(
        sub,
        "query",
        "filter and sort the results store of a predict --out run",
        "Filter and sort the tracks of a results store (predict --out DIR) by quadrant, valence, arousal and "
        "tags; print a table, CSV, JSON lines or an .m3u playlist.",
    )
    _verbs.add_query_arguments(s)
    s = _add(
        sub,
        "playlist",
        "a playlist whose mood moves smoothly between two points of the valence-arousal plane",
        "Pick N tracks from a results store whose valence-arousal points move evenly along the path from one mood "
        "to another (quadrant names or V,A points), each track used once; write an .m3u playlist.",
    )
    _verbs.add_playlist_arguments(s)
    s = _add(
        sub,
        "serve",
        "a local web page and API: upload a song, see its emotion",
        """Serve a web page (GET /) and a JSON API (POST /predict with an audio file, GET /models, GET /health)
        on this machine. The model is loaded once; uploads go to a private temporary folder and are deleted
        after each request. Binds 127.0.0.1 (this machine only) unless --host says otherwise. Needs the serve
        extra: pip install "moodscope[serve]".""",
    )
    s.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    s.add_argument(
        "--model", help="model file (.safetensors) or a bundled model: default (the default) or demo"
    )
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto (default cpu)")
    _add_precision(s, "float32")
    _add_frontend(s)
    s.add_argument(
        "--max-mb", type=float, default=100, help="largest upload in MiB (default 100; 413 beyond)"
    )
    s.add_argument(
        "--max-minutes", type=float, default=20, help="longest audio in minutes (default 20; 422 beyond)"
    )
    s.add_argument(
        "--queue",
        type=int,
        default=8,
        help="most requests in progress at once, uploading, waiting or running (default 8; 503 with Retry-After beyond)",
    )
    s.add_argument(
        "--workers", type=int, default=1, help="threads running predictions (default 1, at most 64)"
    )
    s.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this host name (the public name of a reverse proxy in front); "
        "bound to loopback, the server otherwise answers only to 127.0.0.1, localhost and ::1",
    )
    return p


# --------------------------------------------------------------------------------------------------------------
def cmd_predict(a) -> int:
    from .library.batch import predict_paths

    results, failures = predict_paths(
        a.paths,
        model=a.model,
        out_dir=a.out,
        fmt=a.format,
        plot=a.plot,
        overwrite=a.overwrite,
        force=a.force,
        prune=a.prune,
        jobs=a.jobs,
        backend=a.backend,
        device=a.device,
        hop_valence=a.hop_valence,
        hop_arousal=a.hop_arousal,
        precision=a.precision,
        progress=not a.quiet,
        frontend=a.frontend,
    )
    if a.plot and not a.out:
        for r in results:
            print(f"plot: {shown_path(r.extra['plot'])}", file=sys.stderr)
    if a.out:
        if not a.quiet:
            for r in results:
                print(shown_path(r.summary_line()), file=sys.stderr)
        print(f"{len(results)} track(s) predicted -> {shown_path(a.out)}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} file(s) failed:", file=sys.stderr)
        for f, m in failures:
            print(f"  {shown_path(f)}: {m}", file=sys.stderr)
        return 1
    return 0


def cmd_train(a) -> int:
    from .training.experiment import run_experiment

    ov = list(a.overrides)
    if a.folds:
        ov.append(f"split.folds={a.folds}")
    if a.device:
        ov.append(f"train.device={a.device}")
    if a.fast_dev_run:
        ov.append("train.fast_dev_run=true")
    if a.precision:
        ov.append(f"train.precision={a.precision}")
    out = run_experiment(
        a.config, ov, out_dir=a.out, resume=a.resume, restart=a.restart, progress=not a.quiet
    )
    print(out["table"])
    print(f"run directory: {out['run_dir']}")
    return 0


def cmd_evaluate(a) -> int:
    from .fileio import json_text, write_atomic
    from .training.experiment import evaluate_model_on_dataset
    from .training.rundir import check_writable_file

    if a.json_out:  # before any prediction: an unwritable destination costs no work
        check_writable_file(a.json_out, "--json file")
    ids = None
    if a.ids:
        ids = [t for t in Path(a.ids).read_text().replace(",", " ").split() if t]
    metrics, n = evaluate_model_on_dataset(a.model, a.dataset, a.root, ids=ids, device=a.device)
    print(f"{n} track(s) evaluated")
    for k, v in metrics.items():
        print(f"{k:>24s}  {v:.4f}")
    if a.json_out:
        write_atomic(a.json_out, json_text(dict(metrics), indent=2))
    return 0


def cmd_demo(a) -> int:
    from .demo import run_demo

    run_demo(
        out=a.out,
        minutes=a.minutes,
        seed=a.seed,
        device=a.device,
        precision=a.precision,
        progress=not a.quiet,
    )
    return 0


def cmd_corpus(a) -> int:
    from .datasets.corpus import synthesize

    if a.corpus_verb != "synth":
        raise MoodscopeError("usage: moodscope corpus synth --out DIR [--n-clips N --duration S --seed K]")
    synthesize(a.out, n_clips=a.n_clips, duration=a.duration, seed=a.seed, workers=a.workers)
    print(f"corpus written to {a.out}")
    return 0


def cmd_features(a) -> int:
    from .audio.cache import extract_to_dir

    written, failures = extract_to_dir(a.paths, a.out, cache=False if a.no_cache else None)
    print(f"{len(written)} feature file(s) written to {a.out}")
    for f, m in failures:
        print(f"error: {f}: {m}", file=sys.stderr)
    return 1 if failures else 0


def cmd_datasets(a) -> int:
    from .datasets import check, list_datasets

    if a.datasets_verb == "list":
        for name, desc in list_datasets():
            print(f"{name:<12s} {desc}")
        return 0
    if a.datasets_verb == "check":
        from .errors import DatasetError

        opts = {"allow_outside_root": True} if a.allow_outside_root else {}
        try:
            report = check.check_dataset(
                a.name, a.root, durations=not a.no_audio_check, progress=True, **opts
            )
        except DatasetError as e:  # the tree cannot be read at all: nothing was checked
            print(f"moodscope datasets check: error: {shown_path(str(e))}", file=sys.stderr)
            return 2
        print(report.format())
        return 0 if report.ok else 1
    raise MoodscopeError("usage: moodscope datasets list | moodscope datasets check NAME --root DIR")


def cmd_models(a) -> int:
    from .models import MODELS

    for name in MODELS.names():
        cls = MODELS.get(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:<10s} [{cls.output}] {doc[0] if doc else ''}")
    print(
        "classical  [any] Hand-crafted reference: log-Mel/MFCC statistics + linear models (scikit-learn); "
        "for train/compare, not predict."
    )
    from .inference.predictor import BUNDLED_MODELS, bundled_model_path
    from .modelfile import read_metadata

    print("\nbundled models (predict --model NAME; the first is the default):")
    for name in BUNDLED_MODELS:
        path = bundled_model_path(name)
        if not path.is_file():
            print(f"{name:<10s} (missing from this installation)")
            continue
        meta = read_metadata(path)
        info = meta.get("info") or {}
        print(f"{name:<10s} {meta.get('model_name', '?')}: {info.get('description', '')}")
        for key in ("trained_on", "licences"):
            if info.get(key):
                print(f"{'':<10s} {key.replace('_', ' ')}: {info[key]}")
        measured = info.get("measured") or {}
        # the headline numbers (the model file's metadata has the rest): real recordings first where measured
        for key, label in (("fourq_cv", "4Q, artist-grouped 5-fold"), ("emopia_test", "EMOPIA test split")):
            if measured.get(key):
                nums = ", ".join(f"{k} {v['mean']:.3f}" for k, v in measured[key].items())
                print(f"{'':<10s} measured on {label}: {nums}")
        vg = (measured.get("vgmidi_cv") or {}).get("ours")
        if vg:
            print(
                f"{'':<10s} measured on VGMIDI, series-grouped 5-fold (listeners' curves): per-piece PCC "
                f"V {vg['valence_piece_pcc']:.3f} A {vg['arousal_piece_pcc']:.3f}, per-piece CCC "
                f"V {vg['valence_piece_ccc']:.3f} A {vg['arousal_piece_ccc']:.3f}, static PCC across pieces "
                f"V {vg['valence_static_pcc']:.3f} A {vg['arousal_static_pcc']:.3f}"
            )
        if measured.get("protocol"):
            print(f"{'':<10s} protocol: {measured['protocol']}")
        if info.get("moods_vocabulary"):
            print(f"{'':<10s} moods: {len(info['moods_vocabulary'])} ({info.get('moods_source', '')})")
    _print_student()
    return 0


def _print_student() -> None:
    """The bundled student front end (``--frontend student``): what it learnt from and how close it is."""
    from .config import DEFAULT_FRONTEND
    from .errors import ModelFileError
    from .models.musicnn import load_musicnn
    from .models.musicnn_student import load_student

    print(f"\nMusiCNN front ends (predict/serve --frontend NAME; default {DEFAULT_FRONTEND}):")
    print(f"{'full':<10s} the network itself (exact)")
    try:
        info = load_student(load_musicnn("msd")).info
    except ModelFileError as e:
        print(f"{'student':<10s} unavailable: {e}")
        return
    held, trained = info.get("held_out") or {}, info.get("trained_on") or {}
    print(
        f"{'student':<10s} distilled front and mid end at every second frequency position (1.9x fewer multiply-adds), same back end"
    )
    print(
        f"{'':<10s} trained on: {trained.get('hours', '?')} h of audio ({'; '.join(trained.get('sources', []))})"
    )
    if held:
        print(
            f"{'':<10s} held out ({held['files']} files it never heard): embedding cosine mean "
            f"{held['embedding_cosine_mean']:.4f}, worst file {held['embedding_cosine_worst_file_mean']:.4f}"
        )
    print(f"{'':<10s} licences: {info.get('licences', '?')}")


def cmd_compare(a) -> int:
    from .training.compare import run_compare

    ov = list(a.overrides)
    if a.folds:
        ov.append(f"split.folds={a.folds}")
    if a.device:
        ov.append(f"train.device={a.device}")
    if a.precision:
        ov.append(f"train.precision={a.precision}")
    out = run_compare(
        a.config,
        [m for m in a.models.split(",") if m],
        ov,
        out_dir=a.out,
        resume=a.resume,
        restart=a.restart,
        metrics=[m for m in (a.metrics or "").split(",") if m] or None,
        progress=not a.quiet,
    )
    print(out["table"])
    return 0


def cmd_query(a) -> int:
    from .library.commands import cmd_query as run

    return run(a)


def cmd_playlist(a) -> int:
    from .library.commands import cmd_playlist as run

    return run(a)


def cmd_serve(a) -> int:
    from .serve import serve

    return serve(
        host=a.host,
        port=a.port,
        model=a.model,
        device=a.device,
        precision=a.precision,
        max_mb=a.max_mb,
        max_minutes=a.max_minutes,
        queue=a.queue,
        workers=a.workers,
        allow_hosts=tuple(a.allow_host),
        verbose=a.verbose,
        frontend=a.frontend,
    )


COMMANDS = {
    "predict": cmd_predict,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "demo": cmd_demo,
    "corpus": cmd_corpus,
    "features": cmd_features,
    "datasets": cmd_datasets,
    "models": cmd_models,
    "compare": cmd_compare,
    "query": cmd_query,
    "playlist": cmd_playlist,
    "serve": cmd_serve,
}


def _warnings_as_lines(verb: str) -> None:
    """Show moodscope's own warnings (e.g. bf16 without native support) as one line on stderr."""
    from .precision import PrecisionWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PrecisionWarning):
            print(f"moodscope {verb}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("default", PrecisionWarning)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if a.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.INFO if a.verbose else logging.ERROR)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    if not a.verb:
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():  # restores the warning hooks when the verb returns
            _warnings_as_lines(a.verb)
            return COMMANDS[a.verb](a)
    except BrokenPipeError:
        # the reader went away (``moodscope predict DIR | head -1``): stop quietly, as Unix tools do
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (MoodscopeError, OSError) as e:
        # moodscope's own errors, and the file system's (a missing or unwritable path), are the user's to
        # fix: one line. Anything else is a bug and keeps its traceback.
        print(f"moodscope {a.verb}: error: {shown_path(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
