"""Distil MusiCNN's front and mid end into the frequency-strided student (issue 25; ``moodscope.models.musicnn_student``).

1. **Targets**: every file is decoded at 16 kHz (at most ``--max-seconds``), brought to -14 LUFS like the default
   model's input (half the files then moved by a random gain of -12 to +4 dB), and its log-Mel and the
   teacher's 753 frame features are stored (float16) under ``--cache`` (computed once; reruns reuse them).
2. **Training**: random crops of ``--crop`` frames; loss = mean squared error of the frame features (each
   channel divided by its standard deviation over the training audio) on the frames whose receptive field lies
   in the crop, plus that of the teacher's back end outputs (embedding and tag logits, standardised the same
   way) on one 3 s window per crop. Adam, cosine learning rate, batch norms' statistics frozen.
3. **Held out**: the files of ``--holdout`` (4Q's artist fold 0 by default: no artist of it is heard in
   training) and every fourth Debian track are scored at the end -- frame and embedding cosine, the
   largest deviations -- and the figures go into the file's metadata.

Usage::

    python tools/distil_musicnn.py --fourq ../shared/data/4q-given \\
        --audio ~/.cache/moodscope/emopia/FluidR3_GM-sr16000-g0.5-p0-v1-t1-rev-r1:3 \\
        --audio ~/.cache/moodscope/vgmidi/<variant> \\
        --audio /usr/share/games/singularity/music --audio /usr/share/games/wesnoth/1.16/data/core/music \\
        --out src/moodscope/assets/musicnn_msd_student.safetensors

``--audio DIR[:N]`` takes every N-th audio file of DIR (sorted, recursive).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from moodscope.audio.decode import SUPPORTED_EXTENSIONS, load_audio
from moodscope.audio.features import LogMel, MusicnnEmbedding
from moodscope.audio.loudness import loudness_gain
from moodscope.config import FeatureConfig
from moodscope.models.musicnn import PATCH_FRAMES
from moodscope.models.musicnn_student import MusicnnStudent, save_student

SR = 16000
#: Frames of the teacher's receptive field before / after a frame (its 128-frame temporal kernel, 3 x 7 mid end).
CONTEXT = 73
TARGET_LUFS = -14.0


def audio_files(spec: str) -> list[Path]:
    folder, _, every = spec.partition(":")
    files = sorted(
        p for p in Path(folder).expanduser().rglob("*") if p.suffix.lower() in SUPPORTED_EXTENSIONS
    )
    if not files:
        sys.exit(f"{folder}: no audio files")
    return files[:: int(every or 1)]


def describe(spec: str) -> str:
    """A source named for the model file's metadata (no local paths)."""
    folder, _, every = spec.partition(":")
    low = folder.lower()
    names = {
        "emopia": "EMOPIA 1.0 MIDI rendered with FluidR3_GM",
        "vgmidi": "VGMIDI (given half) MIDI rendered with FluidR3_GM",
        "singularity": "Debian singularity-music",
        "wesnoth": "Debian wesnoth-1.16-music",
    }
    name = next((v for k, v in names.items() if k in low), Path(folder).name)
    held = ", every fourth track held out" if "/usr/share" in folder else ""
    return name + (
        f" (one file in {every}{held})" if every and every != "1" else (f" ({held[2:]})" if held else "")
    )


def fourq_files(root: Path, holdout_fold: int) -> tuple[list[Path], list[Path]]:
    """(training, held-out) MP3s of 4Q: the held-out ones are the artist fold ``holdout_fold`` of the CV."""
    from moodscope.datasets import load_dataset
    from moodscope.datasets.splits import kfold_by_group

    ds = load_dataset("4q", root)
    usable = ds.select()
    splits = kfold_by_group(usable, 5, 0, group="artist")
    _, test_ids = splits[holdout_fold]
    held = set(test_ids)
    train, test = [], []
    for t in usable:
        (test if t.id in held else train).append(Path(t.audio))
    return train, test


class Targets:
    """The log-Mel and teacher frame features of the files, computed once into ``cache``."""

    def __init__(self, cache: Path, max_seconds: float):
        self.cache = cache
        self.max_seconds = max_seconds
        self.extractor = MusicnnEmbedding(FeatureConfig.for_kind("musicnn"))
        self.logmel = LogMel(FeatureConfig.for_kind("musicnn").input_config(), dtype=torch.float32)
        cache.mkdir(parents=True, exist_ok=True)

    def get(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        key = hashlib.sha1(f"{path.resolve()}|{self.max_seconds}|v1".encode()).hexdigest()[:16]
        out = self.cache / f"{key}.npz"
        if out.is_file():
            z = np.load(out)
            return z["mel"], z["frames"]
        try:
            y = load_audio(path, sr=SR, duration=self.max_seconds)
        except Exception as e:  # noqa: BLE001 - one bad file is skipped, named
            print(f"  skipped {path}: {e}", file=sys.stderr)
            return None
        rng = np.random.default_rng(int(key, 16) % (1 << 32))
        gain = loudness_gain(y, SR, TARGET_LUFS)
        if rng.random() < 0.5:
            gain *= 10 ** (rng.uniform(-12, 4) / 20)
        y = np.clip(y * gain, -1, 1).astype(np.float32)
        with torch.inference_mode():
            mel = self.logmel(torch.from_numpy(y))[None]
            if mel.shape[1] < PATCH_FRAMES:
                mel = F.pad(mel, (0, 0, 0, PATCH_FRAMES - mel.shape[1]))
            frames = self.extractor._frame_features(mel)[0]
        mel, frames = mel[0].numpy().astype(np.float16), frames.numpy().astype(np.float16)
        np.savez(out, mel=mel, frames=frames)
        return mel, frames


def crop_batch(items, batch: int, crop: int, rng: random.Random):
    """``(mel, frames, valid_lo, valid_hi)`` of ``batch`` random crops (files drawn by their length)."""
    weights = [len(m) for m, _ in items]
    mels, frames, lo, hi = [], [], [], []
    for m, f in rng.choices(items, weights=weights, k=batch):
        n = len(m)
        if n <= crop:
            a = 0
            pad = crop - n
        else:
            a, pad = rng.randrange(0, n - crop + 1), 0
        b = min(n, a + crop)
        mc = torch.from_numpy(m[a:b].astype(np.float32))
        fc = torch.from_numpy(f[a:b].astype(np.float32))
        if pad:
            mc, fc = F.pad(mc, (0, 0, 0, pad)), F.pad(fc, (0, 0, 0, pad))
        mels.append(mc)
        frames.append(fc)
        lo.append(0 if a == 0 else CONTEXT)
        hi.append((b - a) if b == n else (b - a) - CONTEXT)
    return torch.stack(mels), torch.stack(frames), lo, hi


def schedule(warmup: int, steps: int):
    """Linear warm-up over ``warmup`` steps, then a cosine decay to 0 at ``steps``."""

    def factor(s: int) -> float:
        return min(1.0, (s + 1) / max(1, warmup)) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))

    return factor


def head_out(teacher, frames: torch.Tensor) -> torch.Tensor:
    out = teacher.head(frames)
    return torch.cat([out["embedding"], out["logits"]], dim=-1)


def score(student, teacher, items) -> dict:
    """Agreement of student and teacher on whole files: frame-feature cosine and the back end's outputs on
    every 0.5 s step (embedding cosine, largest logit difference), averaged over files and the worst."""
    from moodscope.models.musicnn import window_starts

    frame_cos, emb_cos, worst_emb, logit_err = [], [], [], []
    with torch.inference_mode():
        for m, f in items:
            mel = torch.from_numpy(m.astype(np.float32))[None]
            fs = student.frame_features(mel)
            ft = torch.from_numpy(f.astype(np.float32))[None]
            frame_cos.append(F.cosine_similarity(fs, ft, dim=-1).mean().item())
            steps = max(1, (len(m) * 256) // 8000)
            starts = window_starts(ft.shape[1], steps, fps=SR / 256, step_s=0.5)
            hs = teacher.head_windows(fs, starts)
            ht = teacher.head_windows(ft, starts)
            c = F.cosine_similarity(hs["embedding"], ht["embedding"], dim=-1)[0]
            emb_cos.append(c.mean().item())
            worst_emb.append(c.min().item())
            logit_err.append((hs["logits"] - ht["logits"]).abs().max().item())
    return {
        "files": len(items),
        "frame_cosine_mean": float(np.mean(frame_cos)),
        "embedding_cosine_mean": float(np.mean(emb_cos)),
        "embedding_cosine_worst_file_mean": float(np.min(emb_cos)),
        "embedding_cosine_worst_step": float(np.min(worst_emb)),
        "logit_abs_diff_max": float(np.max(logit_err)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fourq", type=Path, help="4q-given root (its artist fold --holdout is held out)")
    ap.add_argument("--holdout", type=int, default=0, help="4Q artist fold held out (default 0)")
    ap.add_argument("--audio", action="append", default=[], help="DIR[:N]: every N-th audio file of DIR")
    ap.add_argument("--cache", type=Path, default=Path("runs/distil-cache"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-seconds", type=float, default=240.0)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=448)
    ap.add_argument(
        "--lr", type=float, default=2e-4, help="Adam's peak learning rate (1e-3 undoes the teacher's init)"
    )
    ap.add_argument("--warmup", type=int, default=100, help="steps of linear warm-up")
    ap.add_argument("--head-weight", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", type=Path, help="start from this student file (e.g. to train it longer)")
    ap.add_argument(
        "--save-every", type=int, default=500, help="score the held-out files and save every N steps"
    )
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    train_files, held_files = [], []
    if args.fourq:
        tr, te = fourq_files(args.fourq, args.holdout)
        train_files += tr
        held_files += te
    for spec in args.audio:
        files = audio_files(spec)
        if "/usr/share" in spec:  # Debian music: every fourth track held out
            held_files += files[3::4]
            files = [f for i, f in enumerate(files) if i % 4 != 3]
        train_files += files
    print(f"{len(train_files)} training files, {len(held_files)} held out", flush=True)

    targets = Targets(args.cache, args.max_seconds)
    t0 = time.perf_counter()
    train, held = [], []
    for i, p in enumerate(train_files + held_files):
        got = targets.get(p)
        if got is not None:
            (train if i < len(train_files) else held).append(got)
        if (i + 1) % 100 == 0:
            print(
                f"  targets {i + 1}/{len(train_files) + len(held_files)} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    hours = sum(len(m) for m, _ in train) / (SR / 256) / 3600
    print(f"targets ready: {hours:.2f} h of training audio ({time.perf_counter() - t0:.0f} s)", flush=True)

    teacher = targets.extractor.net
    student = MusicnnStudent.from_teacher(teacher).eval()  # batch norm statistics stay the teacher's
    if args.init is not None:  # go on from an earlier student of this teacher
        from moodscope.models.musicnn_student import load_student

        student.load_state_dict(load_student(teacher, args.init).state_dict())
        student.eval()
    # channel scales of the targets: standard deviations over (a sample of) the training frames
    sample = np.concatenate([f[::7].astype(np.float32) for _, f in train])
    frame_sd = torch.from_numpy(sample.std(0) + 1e-3)
    with torch.no_grad():
        probe = torch.stack(
            [
                torch.from_numpy(f[a : a + PATCH_FRAMES].astype(np.float32))
                for _, f in train[:: max(1, len(train) // 400)]
                for a in [max(0, (len(f) - PATCH_FRAMES) // 2)]
                if len(f) >= PATCH_FRAMES
            ]
        )
        head_sd = head_out(teacher, probe).std(0) + 1e-3
    print("before training:", json.dumps(score(student, teacher, held)), flush=True)

    student.eval()  # batch norm statistics stay the teacher's
    params = [p for p in student.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule(args.warmup, args.steps))
    t0 = time.perf_counter()
    run_f = run_h = 0.0
    for step in range(1, args.steps + 1):
        mel, ft, lo, hi = crop_batch(train, args.batch, args.crop, rng)
        fs = student.frame_features(mel)
        mask = torch.zeros(fs.shape[:2], dtype=torch.bool)
        wins_s, wins_t = [], []
        for b in range(len(lo)):
            mask[b, lo[b] : hi[b]] = True
            if hi[b] - lo[b] >= PATCH_FRAMES:
                a = rng.randrange(lo[b], hi[b] - PATCH_FRAMES + 1)
                wins_s.append(fs[b, a : a + PATCH_FRAMES])
                wins_t.append(ft[b, a : a + PATCH_FRAMES])
        diff = ((fs - ft) / frame_sd)[mask]
        loss_f = diff.pow(2).mean()
        loss_h = torch.zeros(())
        if wins_s:
            with torch.no_grad():
                target_h = head_out(teacher, torch.stack(wins_t))
            loss_h = ((head_out(teacher, torch.stack(wins_s)) - target_h) / head_sd).pow(2).mean()
        loss = loss_f + args.head_weight * loss_h
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run_f = 0.98 * run_f + 0.02 * loss_f.item() if step > 1 else loss_f.item()
        run_h = 0.98 * run_h + 0.02 * loss_h.item() if step > 1 else loss_h.item()
        if step % 100 == 0 or step == args.steps:
            print(
                f"step {step}/{args.steps}: frame loss {run_f:.4f}, head loss {run_h:.4f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        if step % args.save_every == 0 and step < args.steps:
            student.requires_grad_(False)
            held_score = score(student, teacher, held)
            print("  held out:", json.dumps(held_score), flush=True)
            extra = metadata(args, hours, len(train), held_score, step)
            save_student(student, args.out, teacher=teacher, extra=extra)
            student.requires_grad_(True)
    student.requires_grad_(False)
    held_score = score(student, teacher, held)
    print("held out:", json.dumps(held_score), flush=True)
    extra = metadata(args, hours, len(train), held_score, args.steps)
    save_student(student, args.out, teacher=teacher, extra=extra)
    print(f"wrote {args.out}")
    return 0


def metadata(args, hours: float, n_files: int, held_score: dict, steps: int) -> dict:
    """What the student file says of its training."""
    return {
        "trained_on": {
            "hours": round(hours, 2),
            "files": n_files,
            "sources": [f"4q-given audio (artist folds other than {args.holdout} of the default recipe's CV)"]
            * bool(args.fourq)
            + [describe(a) for a in args.audio],
        },
        "licences": "distilled from MSD_musicnn (ISC); 4q-given audio and EMOPIA / VGMIDI renderings: research "
        "and non-commercial use only (see their READMEs)",
        "held_out": held_score,
        "recipe": {
            **{
                k: getattr(args, k)
                for k in ("steps", "batch", "crop", "lr", "head_weight", "seed", "max_seconds")
            },
            "steps_done": steps,
            "init": None if args.init is None else Path(args.init).name,
        },
    }


if __name__ == "__main__":
    raise SystemExit(main())
