"""Give trained ``musicnn_va`` models the piano level (``piano_level``), fitted as the recipe fits it.

    python tools/add_piano_level.py --run runs/default-model/vgmidi_cv_net --out runs/default-model/vgmidi_cv_level
    python tools/add_piano_level.py --run runs/default-model/cv --out runs/default-model/cv_level
    python tools/add_piano_level.py --model src/moodscope/assets/default_musicnn_va.safetensors \\
        --config runs/default-model/final/config.yaml --out new.safetensors

The piano level is fitted after the network in closed form, on features and labels alone
(:func:`moodscope.training.fold.refit_piano_level` -> :func:`moodscope.models.piano_level.fit_piano_level`), and
the model's construction with it draws nothing from the training's random stream; so a model given it here is
the model the recipe with ``piano_level`` would have trained, without training the network again.

``--run``: every fold model of a cross-validation run (``moodscope train``; VGMIDI's series-grouped or 4Q's
artist-grouped folds), each fitted on its fold's training tracks with the config's ``data.also`` datasets (as in
training), written with the run's config, each fold's test metrics and their summary (``results.json``) to
``--out`` for ``tools/vgmidi_report.py`` / ``tools/fourq_report.py --run OUT``. ``--model``: one model, fitted
on the training tracks of ``--config`` (the final model's run config: one fold; its test split left out, as
in training); ``info`` gains
``level_fit``, its test metrics (``test_metrics``, and ``measured.emopia_test`` for the default model) and the
unseen synthetic corpus's curve figures are measured again, and ``--vgmidi-run`` / ``--fourq-run`` (``--run``
outputs after ``tools/vgmidi_report.py`` / ``tools/fourq_report.py``) replace the cross-validation figures of
``info["measured"]``. The fit's settings come from ``--weight`` and ``train.level_fit`` of the config when it has one,
else the default model's (sources vgmidi and emopia -- ``main`` for VGMIDI when it is the main dataset --,
alpha 100, quadrant scale 0.2, gate C 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from add_movement_net import write_fold_results  # tools/: the script's own folder
from make_default_model import DESCRIPTION, TRAINED_ON, curve_on_unseen_corpus, rounded

from moodscope.modelfile import load_model, save_model
from moodscope.models import build
from moodscope.training.config import dump_config
from moodscope.training.experiment import _prepare, experiment_task, resolve_config
from moodscope.training.fold import refit_piano_level


def with_level(path: Path, weight: float):
    """``(model, bundle)``: the model of ``path`` rebuilt with an unfitted piano level of ``weight``."""
    bundle = load_model(path)
    if bundle.model.model_name != "musicnn_va" or bundle.model.model_args.get("movement_past_s") is None:
        raise SystemExit(f"{path}: not a musicnn_va model with a movement part (movement_past_s)")
    if bundle.model.model_args.get("piano_level"):
        raise SystemExit(
            f"{path}: has a piano level already (piano_level {bundle.model.model_args['piano_level']})"
        )
    args = dict(bundle.model.model_args, piano_level=float(weight))
    model = build(bundle.model.model_name, **args)
    missing, unexpected = model.load_state_dict(bundle.model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("piano.") for k in missing):
        raise SystemExit(f"{path}: has a piano level already, or other weights ({unexpected or missing})")
    return model.eval(), bundle


def level_settings(cfg: dict) -> dict:
    given = (cfg.get("train") or {}).get("level_fit")
    if given:
        return dict(given)
    main = cfg["data"]["dataset"]
    piano = ["vgmidi", "emopia"]
    return {"sources": ["main" if s == main else s for s in piano], "alpha": 100.0, "quadrant_scale": 0.2}


def _figures(vgmidi_run: Path | None, fourq_run: Path | None) -> dict:
    """The ``measured`` entries of the default model's metadata from the runs given the level (``--run``)."""
    out = {}
    if vgmidi_run:
        rows = json.loads((vgmidi_run / "report" / "report.json").read_text())["rows"]
        summary = json.loads((vgmidi_run / "results.json").read_text())["summary"]
        out["vgmidi_cv"] = {k: rows[k] for k in rows}
        out["vgmidi_cv_summary"] = {k: {"mean": v["mean"], "std": v["std"]} for k, v in summary.items()}
    if fourq_run:
        rep = json.loads((fourq_run / "report" / "report.json").read_text())
        summary = json.loads((fourq_run / "results.json").read_text())["summary"]
        out["fourq_cv"] = {k: {"mean": v["mean"], "std": v["std"]} for k, v in summary.items()}
        out["fourq_cv_report"] = {k: rep[k] for k in ("table", "confusion", "level")}
        out["fourq_cv_moods_auc"] = {m: sum(v) / len(v) for m, v in rep["moods"]["auc"].items()}
        out["fourq_cv_moods_macro_auc"] = rep["moods"]["macro_auc"]
    return rounded(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--run", type=Path, help="a cross-validation run (config.yaml, fold_*/model.safetensors)"
    )
    src.add_argument(
        "--model",
        type=Path,
        help="one model file, fitted on the training tracks of --config (not its test split)",
    )
    ap.add_argument("--config", type=Path, help="with --model: the run config it was trained with")
    ap.add_argument("--weight", type=float, default=0.5, help="piano_level (default 0.5: half and half)")
    ap.add_argument(
        "--vgmidi-run", type=Path, help="with --model: a --run output on VGMIDI after its report: its figures"
    )
    ap.add_argument(
        "--fourq-run",
        type=Path,
        help="with --model: a --run output on 4Q after tools/fourq_report.py: its figures",
    )
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if a.model and not a.config:
        ap.error("--model needs --config (the run config of the model's training)")
    if a.run and (a.vgmidi_run or a.fourq_run):
        ap.error("--vgmidi-run and --fourq-run go with --model")
    cfg = resolve_config(a.run / "config.yaml" if a.run else a.config)
    settings = level_settings(cfg)
    items_by_id, folds, tag_names, _ = _prepare(cfg, progress=True)
    if a.run:
        paths = sorted(a.run.glob("fold_*/model.safetensors"), key=lambda p: int(p.parent.name[5:]))
        if len(folds) != len(paths):
            raise SystemExit(f"{a.run}: {len(paths)} fold models for {len(folds)} folds")
        a.out.mkdir(parents=True, exist_ok=True)
        # the models' config: the run's, with the piano level it now has
        model_cfg = dict(cfg["model"], args=dict(cfg["model"]["args"], piano_level=a.weight))
        dump_config(
            dict(cfg, model=model_cfg, train=dict(cfg["train"], level_fit=settings)), a.out / "config.yaml"
        )
        results = []
        for k, (fold, path) in enumerate(zip(folds, paths)):
            dest = a.out / f"fold_{k}" / "model.safetensors"
            model, bundle = with_level(path, a.weight)
            task = experiment_task(cfg, "mood", bundle.features, model.model_args, tag_names)
            train = [items_by_id[i] for i in list(fold.train) + list(fold.val or []) + list(fold.aux or [])]
            fit = refit_piano_level(model, task, train, **settings)
            test = task.labelled([items_by_id[i] for i in fold.test])
            metrics = task.evaluate(test, [task.predict(model, it.feats) for it in test])
            save_model(
                dest, model, bundle.features, dict(bundle.info, test_metrics=dict(metrics), level_fit=fit)
            )
            results.append({"fold": k, "metrics": dict(metrics), "level_fit": fit})
            print(f"fold {k}: {json.dumps(fit)}", flush=True)
        write_fold_results(a.out, cfg, a.run, results, piano_level=a.weight)
    else:
        if len(folds) != 1:
            raise SystemExit(
                f"{a.config}: {len(folds)} folds; --model takes the final model's config (one fold)"
            )
        model, bundle = with_level(a.model, a.weight)
        task = experiment_task(cfg, "mood", bundle.features, model.model_args, tag_names)
        fold = folds[0]
        ids = (
            list(fold.train) + list(fold.val or []) + list(fold.aux or [])
        )  # as training: never the test split
        fit = refit_piano_level(model, task, [items_by_id[i] for i in ids], **settings)
        test = task.labelled([items_by_id[i] for i in fold.test])
        metrics = task.evaluate(test, [task.predict(model, it.feats) for it in test])
        info = dict(bundle.info, level_fit=fit, test_metrics=dict(metrics))
        measured = dict(info.get("measured") or {})
        if "emopia_test" in measured and cfg["data"]["dataset"] == "emopia":  # the final model's test split
            measured["emopia_test"] = {k: {"mean": round(v, 4), "std": 0.0} for k, v in metrics.items()}
        for k, v in _figures(a.vgmidi_run, a.fourq_run).items():  # the other models' rows stay
            if k == "vgmidi_cv":
                v = {**measured.get(k, {}), **v}
            elif k == "fourq_cv_report":
                mine = {r["model"] for r in v["table"]}
                kept = [r for r in (measured.get(k) or {}).get("table", []) if r["model"] not in mine]
                v = dict(v, table=v["table"] + kept)
            measured[k] = v
        info["measured"] = measured
        if "measured" in info and "emopia_test" in measured:  # the bundled default model
            info.update(description=DESCRIPTION, trained_on=TRAINED_ON)
        save_model(a.out, model, bundle.features, info)
        if "synthetic_curve_unseen" in measured:  # the corpus's curves, measured again with the level
            measured["synthetic_curve_unseen"] = rounded(curve_on_unseen_corpus(a.out))
            save_model(a.out, model, bundle.features, dict(info, measured=measured))
        print(json.dumps(fit), flush=True)
    return None


if __name__ == "__main__":
    sys.exit(main())
