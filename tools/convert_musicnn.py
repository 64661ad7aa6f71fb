"""Convert musicnn's TensorFlow-1 checkpoints to safetensors for ``moodscope.models.musicnn``.

The ``musicnn`` package (0.1.0, ISC licence, Jordi Pons / Music Technology Group, Universitat Pompeu
Fabra) ships its pre-trained networks as TF1 checkpoints with an empty file prefix inside
``musicnn/MSD_musicnn/`` and ``musicnn/MTT_musicnn/``. This script reads them with
``tf.compat.v1.train.NewCheckpointReader(folder + "/")`` (``tf.train.load_checkpoint(folder)`` fails on
the empty prefix), drops the Adam slots and the optimiser's ``beta1_power``/``beta2_power``, renames the
64 remaining variables to the state-dict names of :class:`moodscope.models.musicnn.MusiCNN`, converts the
kernel layouts (TF ``[kh, kw, in, out]`` -> PyTorch ``[out, in, kh, kw]``; dense ``[in, out]`` ->
``[out, in]``) and writes one ``.safetensors`` file per model whose metadata entry ``"musicnn"`` (a JSON
string) names the source package and version, the checkpoint, the tag names, the feature settings and
musicnn's ISC licence. The output is byte-for-byte reproducible.

It needs TensorFlow, which moodscope itself never imports; run it with a separate environment::

    python3 -m venv /work/tfenv
    /work/tfenv/bin/pip install tensorflow-cpu==2.15.1 "numpy<2" librosa safetensors
    /work/tfenv/bin/pip install --no-deps musicnn==0.1.0

Usage (from the repository root)::

    # both models: the MSD one into the package's assets (bundled), the MTT one elsewhere
    /work/tfenv/bin/python tools/convert_musicnn.py --mtt-out /work/musicnn_mtt.safetensors

    # only the bundled MSD model
    /work/tfenv/bin/python tools/convert_musicnn.py --model msd

    # the test fixture: musicnn's own TF graph (models.define_model, is_training=False) restored from the
    # MSD checkpoint and run on a synthetic clip -> tests/fixtures/musicnn_msd_reference.json
    /work/tfenv/bin/python tools/convert_musicnn.py --reference

The reference clip is a short formula (sums of decaying harmonic tones and Hann-windowed chirps, 16 kHz,
9.6 s, no random numbers); its recipe is stored in the JSON so the test can render it again. The features
fed to the TF graph are librosa's mel power (n_fft 512, hop 256, 96 Slaney bands, power 2) in float64
compressed as ``log10(1 + 10000 * S)`` -- *not* musicnn's ``batch_data``, which casts ``S`` to float16
first and overflows on loud bins. The taggram uses non-overlapping 187-frame patches, as musicnn's
``extractor(input_overlap=False)`` does.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MSD_OUT = REPO / "src" / "moodscope" / "assets" / "musicnn_msd.safetensors"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
warnings.filterwarnings("ignore", message=".*is deprecated and will be removed.*")  # tf.compat.v1.layers

DEFAULT_REFERENCE_OUT = REPO / "tests" / "fixtures" / "musicnn_msd_reference.json"

CHECKPOINTS = {"msd": "MSD_musicnn", "mtt": "MTT_musicnn"}
FORMAT = "moodscope.musicnn/1"
META_KEY = "musicnn"  # the safetensors metadata entry holding all of the JSON below
PATCH_FRAMES = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1, as extractor.py

#: Constructor arguments of moodscope's MusiCNN for both checkpoints (build_musicnn with num_filt=1.6,
#: num_filt_midend=64, num_units_backend=200, 96 mel bands).
MODEL_ARGS = {"n_tags": 50, "n_mels": 96, "n_timbral": 204, "n_temporal": 51, "n_midend": 64, "n_dense": 200}

#: moodscope.config.FeatureConfig(sr=16000, n_mels=96, n_fft=512, hop_length=256, compression="musicnn"),
#: written out (this script runs without torch, so it cannot import moodscope).
FEATURES = {
    "kind": "logmel",
    "sr": 16000,
    "n_mels": 96,
    "n_fft": 512,
    "hop_length": 256,
    "fmin": 0.0,
    "fmax": None,
    "power": 2.0,
    "amin": 1e-10,
    "top_db": None,
    "center": True,
    "compression": "musicnn",
}

#: TF variable scope -> (moodscope module, kind). The TF names follow the order in which
#: musicnn.models.build_musicnn creates its layers: input batch norm; timbral 7x38 and 7x67 (f74, f77);
#: temporal 128x1, 64x1, 32x1 (s1, s2, s3); mid-end convs 1-3; batch norm of the pooled features;
#: the 200-unit dense layer, its batch norm and the output layer.
LAYERS = [
    ("batch_normalization", "input_bn", "bn"),
    ("conv2d", "timbral.0.conv", "conv2d"),
    ("batch_normalization_1", "timbral.0.bn", "bn"),
    ("conv2d_1", "timbral.1.conv", "conv2d"),
    ("batch_normalization_2", "timbral.1.bn", "bn"),
    ("conv2d_2", "temporal.0.conv", "conv2d"),
    ("batch_normalization_3", "temporal.0.bn", "bn"),
    ("conv2d_3", "temporal.1.conv", "conv2d"),
    ("batch_normalization_4", "temporal.1.bn", "bn"),
    ("conv2d_4", "temporal.2.conv", "conv2d"),
    ("batch_normalization_5", "temporal.2.bn", "bn"),
    ("conv2d_5", "midend.0.conv", "conv1d"),
    ("batch_normalization_6", "midend.0.bn", "bn"),
    ("conv2d_6", "midend.1.conv", "conv1d"),
    ("batch_normalization_7", "midend.1.bn", "bn"),
    ("conv2d_7", "midend.2.conv", "conv1d"),
    ("batch_normalization_8", "midend.2.bn", "bn"),
    ("batch_normalization_9", "pool_bn", "bn"),
    ("dense", "dense", "dense"),
    ("batch_normalization_10", "dense_bn", "bn"),
    ("dense_1", "out", "dense"),
]


# ---------------------------------------------------------------------------------------------- package


def musicnn_dir(override: str | None = None) -> Path:
    """The installed ``musicnn`` package folder (found without importing TensorFlow)."""
    if override:
        return Path(override)
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("musicnn is not installed in this environment (pip install --no-deps musicnn==0.1.0)")
    return Path(next(iter(spec.submodule_search_locations)))


def musicnn_version() -> str:
    try:
        return importlib.metadata.version("musicnn")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def licence_text() -> str:
    """musicnn's licence file (``LICENSE.md`` in the dist-info), verbatim."""
    dist = importlib.metadata.distribution("musicnn")
    for f in dist.files or []:
        if f.name.upper().startswith("LICEN"):
            return Path(dist.locate_file(f)).read_text(encoding="utf-8").strip()
    sys.exit("musicnn's licence file was not found in its dist-info")


def tag_names(pkg: Path, which: str) -> list[str]:
    """MSD_LABELS / MTT_LABELS of musicnn/configuration.py (a plain module, no TensorFlow)."""
    spec = importlib.util.spec_from_file_location("_musicnn_configuration", pkg / "configuration.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.MSD_LABELS if which == "msd" else mod.MTT_LABELS)


# ------------------------------------------------------------------------------------------- conversion


def read_checkpoint(folder: Path) -> dict[str, np.ndarray]:
    """The checkpoint's model variables (Adam slots and ``beta*_power`` left out)."""
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(str(folder) + "/")
    names = reader.get_variable_to_shape_map()
    return {
        k: np.asarray(reader.get_tensor(k))
        for k in sorted(names)
        if "Adam" not in k and not k.startswith(("beta1_power", "beta2_power"))
    }


def convert(variables: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """TF variables -> (moodscope state dict, TF name of each tensor). Every variable must be used."""
    out: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    used: set[str] = set()

    def take(tf_name: str) -> np.ndarray:
        used.add(tf_name)
        return variables[tf_name].astype(np.float32)

    for scope, name, kind in LAYERS:
        if kind == "bn":
            parts = {
                "weight": "gamma",
                "bias": "beta",
                "running_mean": "moving_mean",
                "running_var": "moving_variance",
            }
            for ours, theirs in parts.items():
                out[f"{name}.{ours}"] = take(f"{scope}/{theirs}")
                origin[f"{name}.{ours}"] = f"{scope}/{theirs}"
            # PyTorch's BatchNorm buffer (unused in eval mode), so the state dict loads strictly
            out[f"{name}.num_batches_tracked"] = np.zeros((), dtype=np.int64)
            continue
        kernel = take(f"{scope}/kernel")
        if kind == "conv2d":  # [kh, kw, in, out] -> [out, in, kh, kw]
            w = kernel.transpose(3, 2, 0, 1)
        elif kind == "conv1d":
            # [7, C_in, 1, out] (the mid end's kernel spans all channels) -> Conv1d [out, C_in, 7]
            if kernel.shape[2] != 1:
                raise ValueError(f"{scope}/kernel: expected one input channel, got shape {kernel.shape}")
            w = kernel[:, :, 0, :].transpose(2, 1, 0)
        else:  # dense [in, out] -> [out, in]
            w = kernel.T
        out[f"{name}.weight"] = np.ascontiguousarray(w)
        out[f"{name}.bias"] = take(f"{scope}/bias")
        origin[f"{name}.weight"] = f"{scope}/kernel"
        origin[f"{name}.bias"] = f"{scope}/bias"
    unused = sorted(set(variables) - used)
    if unused:
        raise ValueError(f"checkpoint variables not mapped: {unused}")
    return out, origin


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_model(which: str, out_path: Path, pkg: Path) -> None:
    from safetensors.numpy import save_file

    ckpt_name = CHECKPOINTS[which]
    folder = pkg / ckpt_name
    variables = read_checkpoint(folder)
    tensors, origin = convert(variables)
    tags = tag_names(pkg, which)
    if len(tags) != MODEL_ARGS["n_tags"] or tensors["out.weight"].shape[0] != len(tags):
        raise ValueError(f"{ckpt_name}: {len(tags)} tag names vs output layer {tensors['out.weight'].shape}")
    licence = licence_text()
    n_params = sum(int(v.size) for k, v in tensors.items() if not k.endswith("num_batches_tracked"))
    meta = {
        "format": FORMAT,
        "model": "musicnn",
        "model_args": MODEL_ARGS,
        "tags": tags,
        "features": FEATURES,
        "patch_frames": PATCH_FRAMES,
        "source": {
            "package": "musicnn",
            "version": musicnn_version(),
            "url": "https://github.com/jordipons/musicnn",
            "checkpoint": f"musicnn/{ckpt_name}/",
            "checkpoint_data_sha256": sha256(folder / ".data-00000-of-00001"),
            "dataset": "Million Song Dataset (last.fm tags)" if which == "msd" else "MagnaTagATune",
            "n_parameters": n_params,
            "tf_variables": origin,
        },
        "licence": {
            "name": "ISC",
            "copyright": licence.splitlines()[0].strip(),
            "text": licence,
            "note": "weights converted from the musicnn package; the ISC notice above must accompany copies",
        },
        "outputs": {
            "logits": "dense_1 (sigmoid = musicnn's taggram)",
            "embedding": "dense/BiasAdd: the 200-unit dense layer before its ReLU and batch norm "
            "(Essentia's MSD-MusiCNN embedding)",
            "penultimate": "batch_norm(relu(dense)): musicnn's 'penultimate' feature, the output layer's input",
        },
        "converted_by": "tools/convert_musicnn.py",
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    # one metadata entry: safetensors stores the metadata as an unordered map, so several keys would come
    # out in a different order on every run; with one the file is byte-for-byte reproducible
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    tmp.chmod(0o644)  # safetensors creates the file owner-only
    tmp.replace(out_path)
    print(
        f"{ckpt_name}: {len(variables)} variables, {n_params:,} parameters -> {out_path} "
        f"({out_path.stat().st_size / 1e6:.2f} MB)"
    )


# ------------------------------------------------------------------------------------------- reference


def make_recipe() -> dict:
    """The fixture clip: 9.6 s at 16 kHz of harmonic tones and chirps, fully described by the recipe."""
    sr, duration = 16000, 9.6
    a3 = 220.0
    semis = lambda n: round(a3 * 2.0 ** (n / 12.0), 3)  # noqa: E731
    notes = []
    # part 1 (0-3.2 s): slow A-minor arpeggio over a bass note; part 2 (3.2-6.4 s): F major, faster;
    # part 3 (6.4-9.6 s): C major, fast and high (gives the three patches different tag profiles)
    parts = [
        (0.0, 0.4, [0, 3, 7, 12], -12),
        (3.2, 0.2, [-4, 0, 3, 8], -16),
        (6.4, 0.1, [3, 7, 10, 15, 19], -9),
    ]
    for t0, step, chord, bass in parts:
        for k in range(int(round(3.2 / 1.6))):
            notes.append([round(t0 + 1.6 * k, 3), 1.6, semis(bass), 0.12])
        n_steps = int(round(3.2 / step))
        for i in range(n_steps):
            notes.append([round(t0 + i * step, 3), round(2 * step, 3), semis(chord[i % len(chord)]), 0.06])
    chirps = [
        [1.0, 1.5, 300.0, 2400.0, 0.03],
        [5.0, 1.0, 3000.0, 600.0, 0.03],
        [7.5, 1.8, 500.0, 5000.0, 0.02],
    ]
    return {
        "sr": sr,
        "duration_s": duration,
        "formula": (
            "t = n / sr for n in 0 .. round(sr * duration_s) - 1 (float64); y(t) = sum over notes "
            "[t0, dur, f, a] of a * env(t - t0) * sum_h harmonics[h-1] * sin(2 pi h f (t - t0)) with "
            "env(u) = min(1, u / attack_s) * exp(-u / decay_s) for 0 <= u < dur, else 0; plus sum over "
            "chirps [t0, dur, f0, f1, a] of a * sin(pi u / dur)^2 * sin(2 pi (f0 u + (f1 - f0) u^2 / (2 dur))) "
            "for 0 <= u = t - t0 < dur, else 0"
        ),
        "harmonics": [1.0, 0.5, 0.25, 0.125],
        "attack_s": 0.01,
        "decay_s": 0.35,
        "notes": notes,
        "chirps": chirps,
    }


def render_recipe(r: dict) -> np.ndarray:
    """The waveform of :func:`make_recipe`'s recipe, float64 (the test renders it the same way)."""
    sr = r["sr"]
    t = np.arange(int(round(sr * r["duration_s"]))) / sr
    y = np.zeros_like(t)
    for t0, dur, f, a in r["notes"]:
        u = t - t0
        on = (u >= 0) & (u < dur)
        env = np.minimum(1.0, u[on] / r["attack_s"]) * np.exp(-u[on] / r["decay_s"])
        tone = sum(w * np.sin(2 * np.pi * (h + 1) * f * u[on]) for h, w in enumerate(r["harmonics"]))
        y[on] += a * env * tone
    for t0, dur, f0, f1, a in r["chirps"]:
        u = t - t0
        on = (u >= 0) & (u < dur)
        v = u[on]
        y[on] += (
            a * np.sin(np.pi * v / dur) ** 2 * np.sin(2 * np.pi * (f0 * v + (f1 - f0) * v**2 / (2 * dur)))
        )
    return y


def musicnn_features(y: np.ndarray) -> np.ndarray:
    """log10(1 + 10000 * mel power) in float64 (Essentia's way, not musicnn's float16), (frames, 96)."""
    import librosa

    s = librosa.feature.melspectrogram(
        y=y,
        sr=FEATURES["sr"],
        n_fft=FEATURES["n_fft"],
        hop_length=FEATURES["hop_length"],
        n_mels=FEATURES["n_mels"],
    ).T.astype(np.float64)
    return np.log10(10000.0 * s + 1.0)


def run_tf_reference(pkg: Path, which: str, patches: np.ndarray) -> dict[str, np.ndarray]:
    """musicnn's own graph, restored from its checkpoint, on ``patches`` (n, 187, 96)."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    sys.path.insert(0, str(pkg.parent))
    from musicnn import models  # needs TensorFlow

    ckpt_name = CHECKPOINTS[which]
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, FEATURES["n_mels"]])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
            x, is_training, ckpt_name, MODEL_ARGS["n_tags"]
        )
        probs = tf.nn.sigmoid(logits)
    graph = tf.compat.v1.get_default_graph()
    embedding = graph.get_tensor_by_name("model/dense/BiasAdd:0")  # Essentia's embedding output
    if tuple(embedding.shape.as_list()[1:]) != (MODEL_ARGS["n_dense"],):
        raise ValueError(f"model/dense/BiasAdd has shape {embedding.shape}, expected (None, 200)")
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, str(pkg / ckpt_name) + "/")
        out = sess.run(
            {
                "probs": probs,
                "logits": logits,
                "embedding": embedding,
                "penultimate": penultimate,
                "mean_pool": mean_pool,
                "max_pool": max_pool,
            },
            feed_dict={x: patches.astype(np.float32), is_training: False},
        )
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def write_reference(out_path: Path, pkg: Path, decimals: int = 4) -> None:
    recipe = make_recipe()
    y = render_recipe(recipe)
    feats = musicnn_features(y)
    n = feats.shape[0] // PATCH_FRAMES  # non-overlapping patches, as extractor(input_overlap=False)
    patches = np.stack([feats[i * PATCH_FRAMES : (i + 1) * PATCH_FRAMES] for i in range(n)])
    ref = run_tf_reference(pkg, "msd", patches)
    rnd = lambda a: np.round(a, decimals).tolist()  # noqa: E731
    doc = {
        "description": (
            "musicnn 0.1.0's MSD_musicnn TF graph (models.define_model, is_training=False) restored from its "
            "checkpoint, run on the synthetic clip of 'recipe'; written by tools/convert_musicnn.py --reference"
        ),
        "model": "MSD_musicnn",
        "musicnn_version": musicnn_version(),
        "recipe": recipe,
        "peak": round(float(np.abs(y).max()), 4),
        "features": FEATURES,
        "feature_note": "librosa.feature.melspectrogram (float64) then log10(1 + 10000 S); frames x 96",
        "n_frames": int(feats.shape[0]),
        "feature_mean": round(float(feats.mean()), 6),
        "patch_frames": PATCH_FRAMES,
        "patch_starts": [i * PATCH_FRAMES for i in range(n)],
        "decimals": decimals,
        "taggram": rnd(ref["probs"]),
        "embedding": rnd(ref["embedding"]),
        "penultimate": rnd(ref["penultimate"]),
        "embedding_note": (
            "embedding = model/dense/BiasAdd (the 200-unit dense layer before ReLU and batch norm; Essentia's "
            "MSD-MusiCNN embedding); penultimate = batch_norm(relu(dense)) (musicnn's 'penultimate' feature)"
        ),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"))
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(out_path)
    print(
        f"reference: {n} patches of {PATCH_FRAMES} frames, peak {doc['peak']}, "
        f"{len(text) / 1e3:.1f} kB -> {out_path}"
    )
    top = np.argsort(-ref["probs"].mean(0))[:5]
    tags = tag_names(pkg, "msd")
    print("top tags:", ", ".join(f"{tags[i]} {ref['probs'][:, i].mean():.3f}" for i in top))
    if not all(math.isfinite(v) for v in np.ravel(ref["probs"])):
        raise ValueError("non-finite reference outputs")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        choices=["msd", "mtt", "all"],
        default="all",
        help="which checkpoint(s) to convert (default: all; 'all' needs --mtt-out)",
    )
    p.add_argument(
        "--msd-out",
        type=Path,
        default=DEFAULT_MSD_OUT,
        help=f"output of the MSD model (default: the bundled {DEFAULT_MSD_OUT.relative_to(REPO)})",
    )
    p.add_argument(
        "--mtt-out",
        type=Path,
        default=None,
        help="output of the MTT model (not bundled; e.g. /work/musicnn_mtt.safetensors)",
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="instead of converting, run musicnn's TF graph on the fixture clip and write the reference JSON",
    )
    p.add_argument(
        "--reference-out",
        type=Path,
        default=DEFAULT_REFERENCE_OUT,
        help=f"where --reference writes (default: {DEFAULT_REFERENCE_OUT.relative_to(REPO)})",
    )
    p.add_argument(
        "--musicnn-dir", default=None, help="the musicnn package folder (default: the installed one)"
    )
    args = p.parse_args(argv)
    pkg = musicnn_dir(args.musicnn_dir)
    if args.reference:
        write_reference(args.reference_out, pkg)
        return
    if args.model in ("msd", "all"):
        write_model("msd", args.msd_out, pkg)
    if args.model in ("mtt", "all"):
        if args.mtt_out is None:
            if args.model == "mtt":
                p.error("--model mtt needs --mtt-out (the MTT model is not bundled)")
            print("MTT_musicnn: skipped (give --mtt-out to convert it)")
        else:
            write_model("mtt", args.mtt_out, pkg)


if __name__ == "__main__":
    main()
