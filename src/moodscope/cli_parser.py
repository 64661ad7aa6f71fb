"""The ``moodscope`` command line's arguments: every verb's options, help text and examples (:func:`build_parser`).
What each verb does is in :mod:`moodscope.cli`."""

from __future__ import annotations

import argparse
import textwrap

from . import __version__
from .argtypes import count

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
