"""An experiment (``moodscope train``): all folds of a config, sweeps, single-task heads, resume; and ``moodscope evaluate``."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

from ..datasets import load_dataset
from ..errors import MoodscopeError, UsageError
from ..fileio import write_atomic
from ..inference.predictor import Predictor
from ..modelfile import load_model
from ..precision import resolve as resolve_precision
from ..precision import resolve_device
from .config import apply_overrides, dump_config, load_config
from .data import (
    announce_repairs,
    dataset_repairs,
    load_aux_items,
    load_tracks,
    log,
    make_folds,
    tracks_to_items,
)
from .fold import experiment_task, fold_done, model_features, train_fold
from .reports import per_tag_table, results_table, summarize, write_json
from .rundir import locked_folder, open_run, warn


def resolve_config(config: str | Path | dict | None = None, overrides: list[str] | None = None) -> dict:
    """The resolved config of a run: a YAML path or a mapping, merged over the defaults, ``--set`` overrides
    applied, checked, and ``train.precision`` decided for the device (warning once where bf16 is not native).

    Resolving a resolved config gives it back unchanged, so a run directory's stored ``config.yaml`` can be
    compared with a new run's."""
    cfg = (
        load_config(None, overrides, base=config)
        if isinstance(config, dict)
        else load_config(config, overrides)
    )
    cfg["train"]["precision"] = resolve_precision(
        cfg["train"]["precision"], resolve_device(cfg["train"].get("device"))
    )
    return cfg


def check_flags(resume: bool, restart: bool) -> None:
    if resume and restart:
        raise UsageError("--resume and --restart exclude each other (continue the run, or start it over)")


def run_experiment(
    config: str | Path | dict | None = None,
    overrides: list[str] | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    restart: bool = False,
    progress: bool = True,
) -> dict:
    """Run a whole experiment (all folds). Returns the results dict also written to ``results.json``.

    The run directory (``out_dir``, default ``<output_dir>/<name>``) is created and locked before any work
    (:mod:`moodscope.training.rundir`: one run at a time; an unwritable folder fails at once) and keeps the
    resolved config as ``config.yaml``. An earlier run there is continued with ``resume`` (finished folds
    kept, an interrupted fold continued from its last good checkpoint) only if its config is the same in
    every key that matters for the result (:data:`moodscope.training.config.RESUME_FREE_KEYS` may differ);
    ``restart`` removes its results first. Without either, a finished earlier run of the same config is run
    again (with a warning) and anything else is refused: a run directory never mixes two configurations.
    The dataset's repairs (what its loader fixed or skipped) are printed before training and kept in
    ``results.json`` as ``data_repairs``.

    Two config forms expand into several runs:

    - ``sweep``: an ordered mapping ``{row label: {dotted.key: value, ...}}``; each row is run with its
      overrides into ``<run_dir>/<label>/`` and ``results.md`` gets one row per label, with the paper's numbers
      from ``paper.results[label]`` beside ours (e.g. ADFF Table 3 over ``task.seg_len_s``).
    - ``model.args.task: [valence, arousal]`` (static models): the papers' *single-task* setting, one model per
      dimension; the fold metrics of the heads are merged.
    """
    check_flags(resume, restart)
    # the precision actually used, decided (and warned about) once, before any work
    cfg = resolve_config(config, overrides)
    run_dir = Path(out_dir) if out_dir else Path(cfg["output_dir"]) / cfg["name"]
    with locked_folder(run_dir, "run directory", "train"):
        open_run(cfg, run_dir, resume=resume, restart=restart)
        if cfg.get("sweep"):
            return _run_sweep(cfg, run_dir, resume=resume, progress=progress)
        heads = (cfg["model"].get("args") or {}).get("task")
        if isinstance(heads, list):
            return _run_heads(cfg, heads, run_dir, resume=resume, progress=progress)
        return _run_single(cfg, out_dir=run_dir, resume=resume, progress=progress)


def _run_heads(cfg: dict, heads: list[str], run_dir: Path, *, resume: bool, progress: bool) -> dict:
    """One single-task model per head; fold metrics merged (fold k of every head uses the same split)."""
    import copy

    parts = []
    for h in heads:
        c = copy.deepcopy(cfg)
        c["model"]["args"]["task"] = h
        (run_dir / h).mkdir(parents=True, exist_ok=True)
        dump_config(c, run_dir / h / "config.yaml")  # the head's run directory (the run's config is checked)
        parts.append(_run_single(c, out_dir=run_dir / h, resume=resume, progress=progress))
    folds = []
    for k in range(len(parts[0]["folds"])):
        merged = OrderedDict()
        for p in parts:
            merged.update(p["folds"][k]["metrics"])
        folds.append(
            {"fold": k, "metrics": dict(merged), "heads": {h: p["folds"][k] for h, p in zip(heads, parts)}}
        )
    extra = {"heads": heads, "n_tracks": parts[0]["n_tracks"], "data_repairs": parts[0]["data_repairs"]}
    return _finish(cfg, run_dir, folds, extra=extra)


#: config keys that change only the evaluation of trained models, not their training
EVALUATION_KEYS = frozenset({"task.hop_valence", "task.hop_arousal"})


def _run_sweep(cfg: dict, run_dir: Path, *, resume: bool, progress: bool) -> dict:
    rows = OrderedDict()
    paper_rows = ((cfg.get("paper") or {}).get("results")) or {}
    lines = [f"### {cfg['name']}: sweep of {len(cfg['sweep'])} settings", ""]
    metric_names: list[str] = []
    # rows that change only how trained models are evaluated share one training run (the first row's)
    eval_only = all(set(over or {}) <= EVALUATION_KEYS for over in cfg["sweep"].values())
    trained = prepared = None
    if eval_only:
        lines[-1:] = ["Rows change evaluation only: the models of the first row are re-evaluated.", ""]
    for label, over in cfg["sweep"].items():
        sub = apply_overrides(
            {k: v for k, v in cfg.items() if k != "sweep"},
            [f"{k}={_yaml_value(v)}" for k, v in (over or {}).items()],
        )
        sub["paper"] = {
            **(cfg.get("paper") or {}),
            "results": paper_rows.get(label) or paper_rows.get(str(label)) or {},
        }
        if trained is None:
            res = run_experiment(sub, out_dir=run_dir / _slug(label), resume=resume, progress=progress)
            if eval_only and "folds" in res:  # (a run of single-task heads has no fold models of its own)
                trained = Path(res["run_dir"])
        else:
            prepared = prepared or _prepare(sub, progress)
            res = _evaluate_trained(sub, trained, prepared, out_dir=run_dir / _slug(label))
        rows[str(label)] = res
        for m in res["summary"]:
            if m not in metric_names:
                metric_names.append(m)
    lines.append("| setting | " + " | ".join(metric_names) + " |")
    lines.append("|---|" + "---|" * len(metric_names))
    for label, res in rows.items():
        pub = paper_rows.get(label) or paper_rows.get(_maybe_number(label)) or {}
        cells = []
        for m in metric_names:
            s = res["summary"].get(m)
            cell = "" if s is None else f"{s['mean']:.4f} ± {s['std']:.4f}"
            if m in pub:
                cell += f" (paper {pub[m]:.4f})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    write_atomic(run_dir / "results.md", table)
    out = {
        "name": cfg["name"],
        "sweep": {k: {"summary": v["summary"], "run_dir": v["run_dir"]} for k, v in rows.items()},
    }
    write_json(run_dir / "results.json", out)
    out["table"] = table
    out["run_dir"] = str(run_dir)
    return out


def _yaml_value(v) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def _slug(label) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(label)).strip("_.") or "row"


def _maybe_number(label: str):
    try:
        return int(label)
    except ValueError:
        try:
            return float(label)
        except ValueError:
            return label


def _finish(cfg: dict, run_dir: Path, results: list[dict], extra: dict | None = None) -> dict:
    """Write ``results.json`` / ``results.md`` for a list of fold results."""
    summary = summarize(results)
    out = {
        "name": cfg["name"],
        "model": cfg["model"],
        "dataset": cfg["data"].get("dataset"),
        **(extra or {}),
        "folds": results,
        "summary": {k: {"mean": m, "std": s} for k, (m, s) in summary.items()},
        "paper": cfg.get("paper") or {},
    }
    write_json(run_dir / "results.json", out)
    table = results_table(summary, cfg.get("paper"), title=f"{cfg['name']} ({len(results)} fold(s))")
    if any(r.get("per_tag") for r in results):
        per_tag_md, per_tag_csv = per_tag_table([r["per_tag"] for r in results if r.get("per_tag")])
        write_atomic(run_dir / "per_tag.csv", per_tag_csv)
        write_atomic(run_dir / "per_tag.md", per_tag_md)
        table += "\n" + per_tag_md
    write_atomic(run_dir / "results.md", table)
    out["table"] = table
    out["run_dir"] = str(run_dir)
    return out


def _prepare(cfg: dict, progress: bool):
    """Features of the config's dataset and its folds: ``(items_by_id, folds, tag_names, extra)``."""
    features = model_features(cfg, cfg["model"]["name"])
    dataset = load_tracks(cfg)
    repairs = dataset_repairs(dataset)
    tracks = dataset.tracks
    min_d = cfg["data"].get("min_duration_s")
    tag_names = list(getattr(dataset, "tag_names", None) or [])
    items, failures = tracks_to_items(
        tracks, features, cache=bool(cfg["data"].get("cache", True)), tag_names=tag_names, progress=progress
    )
    for tid, msg in failures:
        log.warning("skipped track %s: %s", tid, msg)
    if min_d:
        items = [it for it in items if it.n_frames / features.frames_per_second > float(min_d)]
    if not items:
        raise MoodscopeError(f"{dataset.root}: no usable tracks (all {len(tracks)} failed or were filtered)")
    items_by_id = {it.id: it for it in items}
    folds = make_folds(cfg, dataset, items)
    aux = load_aux_items(cfg, features, tag_names, progress=progress, repairs=repairs)
    if aux:
        items_by_id.update({it.id: it for it in aux})
        folds = [f._replace(aux=[it.id for it in aux]) for f in folds]
    announce_repairs(repairs)  # before any training: the user sees what the loaders changed
    extra = {
        "n_tracks": len(items),
        "skipped_tracks": [{"id": t, "error": m} for t, m in failures],
        "data_repairs": repairs,
    }
    if aux:
        extra["n_aux_tracks"] = len(aux)
    return items_by_id, folds, tag_names, extra


def _run_single(cfg: dict, *, out_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    """All folds of one resolved configuration (no sweep, one model head)."""
    run_dir = Path(out_dir)
    items_by_id, folds, tag_names, extra = _prepare(cfg, progress)
    only = cfg["split"].get("only_fold")
    results = []
    for k, fold in enumerate(folds):
        tr, te = fold.train, fold.test
        if only is not None and k != int(only):
            continue
        fold_dir = run_dir / f"fold_{k}"
        finished = _finished_fold(fold_dir) if resume else None
        if finished is not None:
            results.append(finished)
            continue
        log.info("fold %d/%d: %d train, %d test tracks", k + 1, len(folds), len(tr), len(te))
        results.append(
            train_fold(
                cfg,
                items_by_id,
                tr,
                te,
                fold_dir,
                fold=k,
                resume=resume,
                tag_names=tag_names,
                progress=progress,
                val_ids=fold.val,
                aux_ids=fold.aux,
            )
        )
    return _finish(cfg, run_dir, results, extra)


def _finished_fold(fold_dir: Path) -> dict | None:
    """The result a finished fold wrote (``metrics.json``), or ``None`` when the fold is to be trained: not
    finished, or its ``metrics.json`` is unreadable (then with a warning)."""
    done = fold_dir / "metrics.json"
    if not done.is_file():
        return None
    try:
        result = json.loads(done.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        cause = e.strerror if isinstance(e, OSError) else "not valid JSON"
        warn(f"{done}: unreadable ({cause}); the fold is trained again")
        return None
    if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
        warn(f"{done}: not a fold's result; the fold is trained again")
        return None
    return result


def _evaluate_trained(cfg: dict, trained_dir: Path, prepared, *, out_dir: Path) -> dict:
    """Score the fold models of an earlier run (``trained_dir``) under ``cfg``'s evaluation settings.

    Used by sweeps whose rows change evaluation only (the sliding-window hops of DAMFF Figure 3): the models
    are trained once and each row re-evaluates them on the same test tracks. ``prepared`` is
    :func:`_prepare`'s result for ``cfg`` (the rows share their data, so the sweep prepares it once).
    """

    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    items_by_id, folds, tag_names, extra = prepared
    device = resolve_device(cfg["train"].get("device"))
    results = []
    for k, fold in enumerate(folds):
        te = fold.test
        src = trained_dir / f"fold_{k}" / "metrics.json"
        if not src.is_file():
            continue  # a fold the trained run skipped (split.only_fold)
        bundle = load_model(trained_dir / f"fold_{k}" / "model.safetensors", device=device)
        task = experiment_task(cfg, bundle.model.output, bundle.features, bundle.model.model_args, tag_names)
        test_items = task.labelled([items_by_id[i] for i in te])
        preds = [task.predict_item(bundle.model, it, device=device) for it in test_items]
        trained = json.loads(src.read_text())
        result = {
            **{
                key: trained[key] for key in ("n_train", "n_val", "epochs", "train_seconds", "best_val_score")
            },
            "fold": k,
            "metrics": dict(task.evaluate(test_items, preds)),
            "n_test": len(test_items),
            "test_ids": list(te),
            "trained_in": str(trained_dir / f"fold_{k}"),
        }
        (run_dir / f"fold_{k}").mkdir(parents=True, exist_ok=True)
        results.append(fold_done(run_dir / f"fold_{k}", result, task, test_items, preds))
    if not results:
        raise MoodscopeError(f"{trained_dir}: no trained fold to evaluate")
    return _finish(cfg, run_dir, results, extra)


def evaluate_model_on_dataset(
    model_path, dataset: str, root, *, ids=None, device: str = "cpu", progress=True
):
    """Score a model file on the labelled tracks of a dataset; returns ``(metrics, n_tracks)``."""

    pred = Predictor.from_file(model_path, device=device)
    ds = load_dataset(dataset, root)
    announce_repairs(dataset_repairs(ds))
    tracks = [t for t in ds.tracks if ids is None or t.id in set(ids)]
    tag_names = getattr(pred.task, "tag_names", None)
    items, failures = tracks_to_items(tracks, pred.features, tag_names=tag_names, progress=progress)
    for tid, msg in failures:
        log.warning("skipped track %s: %s", tid, msg)
    items = pred.task.labelled(items)
    if not items:
        raise MoodscopeError(f"{root}: no track has the labels a {pred.task.kind} model is scored on")
    preds = [pred.task.predict_item(pred.model, it, device=pred.device) for it in items]
    return pred.task.evaluate(items, preds), len(items)
