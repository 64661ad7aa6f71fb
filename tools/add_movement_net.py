"""Give trained ``musicnn_va`` models the DAMFF-style movement net (``movement_net``), trained as the recipe does.

    python tools/add_movement_net.py --run runs/default-model/vgmidi_cv --out runs/default-model/vgmidi_cv_net
    python tools/add_movement_net.py --model src/moodscope/assets/default_musicnn_va.safetensors \\
        --vgmidi ../shared/data/vgmidi-given --out new.safetensors

The movement net is trained after the network, on features and listeners' curves alone
(:func:`moodscope.training.fold.refit_movement` -> :func:`moodscope.models.musicnn_va.fit_movement_net`, seeds
from the fold's seed), and the model's construction with it draws nothing from the training's random stream; so a
model given its members here is the model the recipe with ``movement_net`` would have trained, without training
the network again.

``--run``: every fold model of a series-grouped VGMIDI cross-validation (``configs/mood_vgmidi.yaml``), each net
trained on its fold's training pieces (validation pieces included, as in training), written with the run's
config, each fold's test metrics and their summary (``results.json``, as ``moodscope train`` writes it) to
``--out`` for ``tools/vgmidi_report.py --run OUT``. ``--model``: one model, trained on every piece of ``--vgmidi``
(the final model's training set); ``info`` gains ``movement_net``, and with ``--run-report OUT`` (the ``--run``
output after its report) the VGMIDI figures of ``info["measured"]`` are replaced by that run's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from moodscope.datasets import load_dataset
from moodscope.inference.predictor import Predictor
from moodscope.modelfile import load_model, save_model
from moodscope.models import build
from moodscope.models.movement_net import fit_movement_net
from moodscope.training.data import load_tracks, make_folds, tracks_to_items
from moodscope.training.experiment import resolve_config
from moodscope.training.reports import summarize, write_json


def write_fold_results(out: Path, cfg: dict, run: Path, results: list[dict], **args) -> None:
    """``out/results.json`` as ``moodscope train`` writes it, for fold models of ``run`` given a part fitted after
    training: the run's config with the model arguments ``args`` changed, each fold's result, their summary."""
    summary = summarize(results)
    write_json(
        out / "results.json",
        {
            "name": cfg["name"],
            "model": dict(cfg["model"], args=dict(cfg["model"]["args"], **args)),
            "from_run": str(run),
            "folds": results,
            "summary": {k: {"mean": m, "std": s} for k, (m, s) in summary.items()},
        },
    )


def with_net(path: Path, members: int):
    """``(model, bundle)``: the model of ``path`` rebuilt with ``members`` unfitted movement-net members."""
    bundle = load_model(path)
    if bundle.model.model_name != "musicnn_va" or bundle.model.model_args.get("movement_past_s") is None:
        raise SystemExit(f"{path}: not a musicnn_va model with a movement part (movement_past_s)")
    args = dict(bundle.model.model_args, movement_net=int(members))
    model = build(bundle.model.model_name, **args)
    missing, unexpected = model.load_state_dict(bundle.model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("motion_nets") for k in missing):
        raise SystemExit(f"{path}: has a movement net already, or other weights ({unexpected or missing})")
    return model.eval(), bundle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="a VGMIDI cross-validation run (fold_*/model.safetensors)")
    src.add_argument("--model", type=Path, help="one model file, trained on all of --vgmidi")
    ap.add_argument(
        "--vgmidi", default="../shared/data/vgmidi-given", help="VGMIDI, the given half (--model)"
    )
    ap.add_argument("--members", type=int, default=3, help="movement-net members (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="first member's seed with --model (default 0)")
    ap.add_argument(
        "--run-report", type=Path, help="with --model: a --run output whose report replaces the figures"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--resume", action="store_true", help="with --run: keep the fold models --out already has"
    )
    a = ap.parse_args()
    if a.run and (a.run_report or a.seed):
        ap.error(
            "--run-report and --seed go with --model (with --run each fold's seed is the run's seed + fold)"
        )
    if a.run:
        cfg = resolve_config(a.run / "config.yaml")
        ds = load_tracks(cfg)
        paths = sorted(a.run.glob("fold_*/model.safetensors"), key=lambda p: int(p.parent.name[5:]))
        items, _ = tracks_to_items(ds.tracks, load_model(paths[0]).features, progress=True)
        items = [it for it in items if it.dynamic is not None]
        folds = make_folds(cfg, ds, items)
        if len(folds) != len(paths):
            raise SystemExit(f"{a.run}: {len(paths)} fold models for {len(folds)} folds")
        by_id = {it.id: it for it in items}
        a.out.mkdir(parents=True, exist_ok=True)
        shutil.copy(a.run / "config.yaml", a.out / "config.yaml")
        results = []
        for k, (fold, path) in enumerate(zip(folds, paths)):
            dest = a.out / f"fold_{k}" / "model.safetensors"
            done = load_model(dest).info if a.resume and dest.is_file() else {}
            if "movement_net" in done:  # finished by an earlier run of this command
                results.append(
                    {"fold": k, "metrics": done["test_metrics"], "movement_net": done["movement_net"]}
                )
                print(f"fold {k}: done before", flush=True)
                continue
            model, bundle = with_net(path, a.members)
            # sorted by id, as refit_movement orders them (the fit depends on the order)
            train = sorted(
                (by_id[i] for i in list(fold.train) + list(fold.val or []) if i in by_id),
                key=lambda it: it.id,
            )
            fit = fit_movement_net(model, [(it.feats, it.dynamic) for it in train], seed=int(cfg["seed"]) + k)
            save_model(dest, model, bundle.features, bundle.info)
            pred = Predictor.from_file(dest)
            test = pred.task.labelled([by_id[i] for i in fold.test])
            metrics = pred.task.evaluate(test, [pred.task.predict_item(pred.model, it) for it in test])
            save_model(
                dest, model, bundle.features, dict(bundle.info, test_metrics=dict(metrics), movement_net=fit)
            )
            results.append({"fold": k, "metrics": dict(metrics), "movement_net": fit})
            print(f"fold {k}: {fit}", flush=True)
        write_fold_results(a.out, cfg, a.run, results, movement_net=a.members)
    else:
        model, bundle = with_net(a.model, a.members)
        ds = load_dataset("vgmidi", a.vgmidi, soundfont="FluidR3_GM", sr=16000)
        items, _ = tracks_to_items(ds.tracks, bundle.features, progress=True)
        tracks = [
            (it.feats, it.dynamic) for it in sorted(items, key=lambda it: it.id) if it.dynamic is not None
        ]
        fit = fit_movement_net(model, tracks, seed=a.seed)
        info = dict(bundle.info, movement_net=dict(fit, trained_on="VGMIDI given half, every piece"))
        if a.run_report:
            rows = json.loads((a.run_report / "report" / "report.json").read_text())["rows"]
            summary = json.loads((a.run_report / "results.json").read_text())["summary"]
            measured = dict(info.get("measured") or {})
            vg = dict(measured.get("vgmidi_cv") or {})
            vg["ours"] = {k: round(v, 4) for k, v in rows["ours"].items()}
            measured["vgmidi_cv"] = vg
            measured["vgmidi_cv_summary"] = {
                k: {"mean": round(v["mean"], 4), "std": round(v["std"], 4)} for k, v in summary.items()
            }
            info["measured"] = measured
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from make_default_model import DESCRIPTION

            info["description"] = DESCRIPTION
        save_model(a.out, model, bundle.features, info)
        print(json.dumps(fit), flush=True)
    return None


if __name__ == "__main__":
    sys.exit(main())
