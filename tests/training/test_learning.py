"""Learning is real: CPU-sized models learn the synthetic corpus within CI's budget.

These are the CI-sized checks (a minute or two of training each on a small corpus). The demo's own targets
(DAMFF CCC >= 0.7 arousal, >= 0.5 valence) are printed and checked by ``moodscope demo`` itself, and the
bundled demo model is checked cue by cue in ``test_bundled_model.py``.

They train in float32 for a fixed number of epochs, with no wall-clock limit: the result must not depend on
the CPU (bf16 is native on some and emulated 10-50x slower on others) or on how busy the machine is. A time
cap once starved the ADFF test on a slow machine (held-out R² 0.38 instead of 0.72).

Nor may it depend on the float rounding of one CPU's kernels: each claim must hold for every seed (model
initialisation, data order *and* which songs are held out) and under oneDNN's native ISA as well as with
``ONEDNN_MAX_CPU_ISA=AVX2``. ``MOODSCOPE_LEARN_SEEDS`` (default ``0``) lists the seeds to run, e.g.
``MOODSCOPE_LEARN_SEEDS=0,1,2`` (``make test-seeds`` runs 0, 1 and 2 both ways). Each test's figures, its seed
and the ISA are printed at the end of the module's run, pass or fail, so the margin is in the log.
"""

from __future__ import annotations

import os

import pytest

from moodscope.datasets.corpus import synthesize
from moodscope.precision import onednn_isa_cap
from moodscope.training.experiment import run_experiment
from tools import needs

pytestmark = [pytest.mark.slow, pytest.mark.learning]


def _seeds() -> list[int]:
    raw = os.environ.get("MOODSCOPE_LEARN_SEEDS", "0")
    try:
        return [int(s) for s in raw.split(",") if s.strip()] or [0]
    except ValueError:
        raise ValueError(f"MOODSCOPE_LEARN_SEEDS: a comma-separated list of integers, not {raw!r}") from None


SEEDS = _seeds()
seeded = pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])


@pytest.fixture(scope="module")
def figures(request):
    """``figures(name, seed, metrics)`` records a test's held-out figures; ``tests/conftest.py`` prints them at the
    end of the run (pytest's terminal summary: output of a fixture's teardown would be captured)."""
    rows = request.config.__dict__.setdefault("moodscope_learning_figures", [])
    isa = f"ONEDNN_MAX_CPU_ISA={onednn_isa_cap()}" if onednn_isa_cap() else "native ISA"

    def record(name: str, seed: int, metrics: dict) -> None:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        rows.append(f"{name} seed {seed} ({isa}): {shown}")

    return record


def _train(**over) -> dict:
    """Training settings shared by the learning tests: fixed epochs (no early stop, no time limit), float32."""
    return {"lr": 1e-3, "patience": 100, "max_time_s": None, "precision": "float32", **over}


@pytest.fixture(scope="module", autouse=True)
def _all_cores():
    """Training is the one place where the suite uses every core (the rest runs on one thread, conftest.py)."""
    import os

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """32 clips of 45 s: 7 overlapping 30 s DAMFF windows each (every 2.5 s), as in the demo."""
    root = tmp_path_factory.mktemp("learn") / "corpus"
    return synthesize(root, n_clips=32, duration=45.0, seed=7, progress=False)


@pytest.fixture(scope="module")
def static_corpus(tmp_path_factory):
    """300 clips of 10 s with the cues' jitter halved: a static model learns from one label per clip, so it needs
    many clips whose cues say what their label is (see the ADFF test); each clip is one 10 s segment."""
    root = tmp_path_factory.mktemp("learn-static") / "corpus"
    return synthesize(root, n_clips=300, duration=10.0, seed=7, progress=False, cue_jitter=0.5)


@seeded
def test_damff_learns_dynamic_labels(corpus, tmp_path, seed, figures):
    cfg = {
        "name": "learn-damff",
        "seed": seed,
        "model": {"name": "damff", "args": {"width": 0.25}},
        "data": {"dataset": "folder", "root": str(corpus)},
        "task": {"train_hop_s": 2.5, "train_reuse": True},
        "split": {"kind": "holdout", "folds": 1, "seed": seed, "test_fraction": 0.25, "val_fraction": 0.1},
        "train": _train(epochs=20, batch_size=16, milestones=[12, 16], gamma=0.3, keep="last"),
    }
    res = run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    m = res["folds"][0]["metrics"]
    figures("DAMFF", seed, {k: m[k] for k in ("arousal_ccc", "valence_ccc")})
    # the demo's bars (a model that does not learn sits near CCC 0). 12 epochs at a constant learning rate left
    # it still learning, its validation CCC swinging by 0.1-0.2 from epoch to epoch, and the best epoch on 3
    # validation songs decided the result: held-out arousal CCC 0.86, 0.60 and 0.68 for seeds 0-2 (native ISA).
    # 20 epochs with the rate decayed at 12 and 16 let it settle, and the fold keeps the settled weights.
    assert m["arousal_ccc"] >= 0.7
    assert m["valence_ccc"] >= 0.5


@seeded
def test_adff_learns_static_labels(static_corpus, tmp_path, seed, figures):
    """ADFF (width 0.125) learns the static labels of 300 clips of 10 s: held-out R² on 90 clips.

    Why this recipe (issue 22). The old one (120 clips of 20 s, two 10 s segments each, 30 test clips, 40 epochs
    at a constant rate, best validation epoch kept) passed for one seed and ISA and not others, for four reasons:
    (1) at a constant rate the validation R² swung by +-0.2 from epoch to epoch, and the best of 18 validation
    clips was a winner's curse (one seed: 0.80 there, 0.05 on the test clips): now the rate drops to 0.3x at
    epochs 24 and 32 and the last weights are kept; (2) on 30 test clips R² itself moves by +-0.1 from split
    to split: now 90; (3) a static model sees one label per clip: 72 training clips were too few (a ridge
    regression on log-Mel statistics, split by split: arousal R² 0.67 +- 0.11 with 90 training clips, 0.83 +-
    0.03 with 225); (4) the corpus's valence is weakly audible in a clip-level summary: each cue follows its
    label only to r = 0.6-0.7 (the cue jitter), and the same ridge regression reached valence R² 0.47 +- 0.07,
    so the bar of 0.4 sat inside the noise of what the fixture allows -- ADFF's valence came out 0.47 / 0.58
    / 0.50 (seeds 0-2) natively and 0.31 for seed 0 capped at AVX2. With the cue jitter halved
    (``cue_jitter=0.5``: the labels are the same, each cue follows them more closely) the ridge regression
    reaches valence 0.71 +- 0.05, arousal 0.91 +- 0.02, and ADFF clears both bars with room on every seed
    and ISA (README: "Tests on every CPU")."""
    cfg = {
        "name": "learn-adff",
        "seed": seed,
        "model": {"name": "adff", "args": {"width": 0.125, "seg_num": 6, "task": "multitask"}},
        "data": {"dataset": "folder", "root": str(static_corpus)},
        "task": {"seg_len_s": 10.0, "dataset": "full"},
        "split": {"kind": "holdout", "folds": 1, "seed": seed, "test_fraction": 0.3, "val_fraction": 0.15},
        "train": _train(
            epochs=40, batch_size=16, weight_decay=1e-5, milestones=[24, 32], gamma=0.3, keep="last"
        ),
    }
    res = run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    m = res["folds"][0]["metrics"]
    figures("ADFF", seed, {k: m[k] for k in ("arousal_r2", "valence_r2")})
    assert m["arousal_r2"] >= 0.6  # the issue's bar
    assert m["valence_r2"] >= 0.4


@seeded
def test_tagger_learns_quadrant_tags(static_corpus, tmp_path, seed, figures):
    """The spectrogram-CNN tagger learns the corpus's quadrant tags (happy/angry/sad/calm), song level."""
    cfg = {
        "name": "learn-tagger",
        "seed": seed,
        "model": {"name": "tagger", "args": {"width": 0.25}},
        "data": {"dataset": "folder", "root": str(static_corpus)},
        "task": {"seg_len_s": 10.0},
        "split": {"kind": "holdout", "folds": 1, "seed": seed, "test_fraction": 0.3, "val_fraction": 0.15},
        "train": _train(epochs=8, batch_size=16),
    }
    res = run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    m = res["folds"][0]["metrics"]
    figures("tagger", seed, {k: m[k] for k in ("roc_auc_macro", "f1_macro")})
    assert m["roc_auc_macro"] >= 0.8  # chance is 0.5
    assert m["f1_macro"] >= 0.6


@seeded
@needs("fluidsynth", "soundfont:FluidR3_GM")
def test_mood_model_learns_quadrants_from_musical_cues(tmp_path, seed, figures):
    """The default model's recipe (musicnn_va on frozen MusiCNN embeddings, trained on quadrant labels) learns
    an EMOPIA-shaped release whose quadrants follow tempo and loudness (arousal), mode and register (valence),
    rendered with FluidSynth."""
    from fixtures_datasets import make_emopia_cues

    root = make_emopia_cues(tmp_path)
    cfg = {
        "name": "learn-mood",
        "seed": seed,
        "model": {"name": "musicnn_va", "args": {"width": 0.5}},
        "data": {"dataset": "emopia", "root": str(root), "options": {"sr": 16000, "progress": False}},
        "task": {"window_s": 10.0, "train_hop_s": 5.0},
        "split": {"kind": "predefined", "folds": 1},
        "train": _train(epochs=40, batch_size=8),
    }
    res = run_experiment(cfg, out_dir=tmp_path / "run", progress=False)
    m = {k: v["mean"] for k, v in res["summary"].items()}
    figures(
        "mood recipe",
        seed,
        {k: m[k] for k in ("arousal_sign_accuracy", "valence_sign_accuracy", "quadrant_accuracy")},
    )
    # 24 training clips; with mode alone for valence, its sign came out anywhere between chance and inverted at
    # this size (random keys and registers decided it), so the fixture adds register, as the synthetic corpus does
    assert m["arousal_sign_accuracy"] >= 0.85
    assert m["valence_sign_accuracy"] >= 0.75
    assert m["quadrant_accuracy"] >= 0.6
