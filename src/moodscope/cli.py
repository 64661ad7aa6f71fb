"""The ``moodscope`` command line. Each verb is a thin wrapper over one library function.

``main(argv=None)`` returns the exit code, so tests call it directly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path

from .cli_parser import build_parser
from .errors import MoodscopeError, shown_path


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
