r"""The built-in synthetic labelled corpus: music-like audio whose emotion is known by construction.

:func:`synthesize` writes a small data set in the generic layout (``audio/``, ``static.csv``,
``dynamic.csv``, ``tags.csv``, ``dataset.yaml``, plus ``cues.csv``) so that training, evaluation and the
demo run on a fresh machine with no download. :func:`render_clip` renders one clip from 2 Hz valence
and arousal curves and is what cue-isolation tests use (``cue_overrides`` pins one cue).

How a clip is made
------------------
1. **Labels.** Valence *V(t)* and arousal *A(t)* are drawn independently of each other: each clip has
   its own mood per axis (uniform in +-0.5, so static labels differ between clips and static models have
   something to learn), and its curve moves around that mood through random control points 5-11 s apart
   (cosine interpolation) within +-0.7 of it and within [-0.9, 0.9], each step moving at least 0.5, so
   a clip sweeps about half of the axis. The 2 Hz value *i* is the curve at the centre of
   the segment ``[0.5 i, 0.5 (i + 1))``. The labels are the ground truth.
2. **Cues.** Each label drives several musical cues taken from the music-emotion literature
   (Gabrielsson & Lindström 2010; Juslin & Laukka 2003; Eerola, Friberg & Bresin 2013, whose cue model is
   linear and additive). Cue *k* of label *L* is ``c_k(t) = clip(L(t) + e_k(t), -1, 1)`` where the jitter
   ``e_k`` is a per-clip offset (std ``jitter_clip``) plus a smooth random curve with control points 3-8 s
   apart (std ``jitter_time``), drawn independently per cue and then centred across the cues of the same
   label so that ``sum_k w_k e_k = 0``. Hence the label is exactly the weighted mix ``L = sum_k w_k c_k``
   (up to clipping) while no single cue follows it closely: a listener (or model) must combine cues.
   Arousal cues never depend on valence and vice versa, so loudness, tempo, brightness... carry no
   valence information and mode, register... carry no arousal information.
3. **Music.** A chord every two beats (roots from a per-clip progression over a random key), a pad
   re-struck on beats, 8ths or 16ths, an FM lead melody on a 16th-note grid, a bass and a drum kit of
   noise bursts are scheduled from the cue curves (each event reads the cues at its onset) and rendered
   by inverse-FFT additive synthesis (pad, bass), 2-operator FM (lead) and filtered noise (drums). The
   tonal material sits where 128 mel bands at 44.1 kHz resolve a semitone (pad around A4 in root
   position with the third doubled an octave up, lead around A5: mostly above 500 Hz, harmonics above
   1 kHz); the bass (root only) carries no mode information.
4. **Level.** The drum bus is set to a cue-given ratio of the tonal bus, then a slowly varying gain
   (1 s RMS smoothing) makes the mix follow the loudness cue (-30 to -18 dBFS RMS). Instead of scaling
   each clip to its peak, a soft-knee limiter squashes the rare samples above 0.8 (tanh, peak < 0.99;
   about 1e-5 of the samples), so loudness is an absolute cue within and across clips.

Cue table (``c`` is the cue value in [-1, 1]; ``u = (c + 1) / 2`` in [0, 1])

=============  =========  ======  ===========  ===========  ===============================================
cue            driven by  weight  jitter_clip  jitter_time  rendering, from c = -1 to c = +1
=============  =========  ======  ===========  ===========  ===============================================
tempo          arousal    0.25    0.25         0.55         74 -> 158 BPM (``108 * 2**(0.55 c)``)
density        arousal    0.20    0.25         0.55         lead notes per beat 0.17 -> 2.8 (16th grid);
                                                            pad struck per beat / 8th / 16th (u <= 0.4,
                                                            <= 0.8, above); bass per 2 beats -> 8ths
loudness       arousal    0.20    0.25         0.55         mix RMS -30 -> -18 dBFS (1 s smoothing)
brightness     arousal    0.20    0.25         0.55         harmonic roll-off ``k**-2.8 -> k**-0.9``
                                                            (+-0.2 per clip), FM index 0.3 -> 3.5
percussion     arousal    0.15    0.25         0.55         drums -24 -> 0 dB re tonal RMS; snare from
                                                            u > 0.25, 8th hats u > 0.4, kick on every
                                                            beat u > 0.6, 16th hats u > 0.75
mode           valence    0.30    0.25         0.55         share of major chords
                                                            ``clip(0.5 + 0.8 c, 0, 1)``, drawn per chord:
                                                            all minor for c <= -0.625, all major for
                                                            c >= 0.625; lead uses that chord's scale
consonance     valence    0.25    0.25         0.55         dissonance ``d = 1 - u``: detuned doubling of
                                                            pad and lead (0 -> 30 cents: beating),
                                                            tritone + minor 9th added to the pad
                                                            (amplitude ``0.7 clip((d - 0.3) / 0.7)``),
                                                            chromatic lead notes (probability ``0.35 d``)
register       valence    0.25    0.25         0.55         pad root within +-6 of MIDI 63 -> 75, lead
                                                            around MIDI 74 -> 88 (+-2 per clip)
articulation   valence    0.20    0.25         0.55         legato -> staccato: note length 1.1 -> 0.2 of
                                                            the inter-onset interval, attack 60 -> 3 ms
                                                            (lead: 12 -> 3 ms), release 0.25 -> 0.04 s
=============  =========  ======  ===========  ===========  ===============================================

Directions follow the reviews above: faster, denser, louder, brighter and more percussive music is
heard as more aroused; major mode, consonance, higher register and staccato as more positive.
Weights are normalised per label (they sum to 1). Every clip also draws its own key, chord progression,
timbres (harmonic jitter, FM ratio), mix balance (+-2 dB) and drum sounds.

Tags
----
``tags.csv`` is multi-label from the V-A quadrant of the written 2 Hz curve: a tag is 1 when the clip
spends at least 25 % of its segments in that quadrant (happy V > 0, A > 0; angry V <= 0, A > 0;
sad V <= 0, A <= 0; calm V > 0, A <= 0 -- a value of exactly 0 counts as negative).

Examples
--------
>>> import numpy as np
>>> from moodscope.datasets.corpus import render_clip
>>> v = np.linspace(-0.8, 0.8, 20)          # 10 s at 2 Hz
>>> a = np.zeros(20)
>>> y, cues = render_clip(v, a, seed=1, cue_overrides={"mode": 1.0})
>>> y.shape, y.dtype, sorted(cues)[:3]
((441000,), dtype('float32'), ['arousal', 'articulation', 'brightness'])
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..config import SEGMENT_S
from ..errors import DatasetError
from .corpus_cues import CUE_NAMES, CUES, GENERATOR_VERSION, TAG_MIN_FRACTION, TAG_NAMES, Cue, label_curves
from .corpus_render import quadrant_tags, render_clip

__all__ = [
    "CUES",
    "GENERATOR_VERSION",
    "TAG_NAMES",
    "Cue",
    "label_curves",
    "quadrant_tags",
    "render_clip",
    "synthesize",
]

_FORMATS = {"wav": "WAV", "flac": "FLAC"}


# -------------------------------------------------------------------------------------------- data set


def _clip_job(args: tuple) -> tuple[int, dict[str, np.ndarray]]:
    index, seed, n_steps, sr, path, fmt, jitter = args
    import soundfile as sf

    valence, arousal = label_curves(n_steps, seed=[seed, index, 0])
    # Round the labels as they are written so that the audio follows exactly the published curve.
    valence, arousal = np.round(valence, 6), np.round(arousal, 6)
    audio, cues = render_clip(valence, arousal, sr=sr, seed=[seed, index, 1], cue_jitter=jitter)
    sf.write(path, audio, sr, format=_FORMATS[fmt], subtype="PCM_16")
    return index, cues


def _fmt(x: float) -> str:
    s = f"{x:.6f}"
    return "0.000000" if s == "-0.000000" else s


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def _is_corpus_dir(path: Path) -> bool:
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    meta = path / "dataset.yaml"
    return meta.is_file() and "generator: moodscope.datasets.corpus" in meta.read_text(
        encoding="utf-8", errors="replace"
    )


def synthesize(
    out_dir: str | os.PathLike,
    *,
    n_clips: int = 40,
    duration: float = 45.0,
    seed: int = 0,
    sr: int = 44100,
    fmt: str = "wav",
    workers: int | None = None,
    progress: bool = True,
    cue_jitter: float = 1.0,
) -> Path:
    """Render the synthetic corpus into ``out_dir`` in the generic data set layout.

    Writes ``audio/syn0000.wav ...``, ``static.csv`` (track_id,valence,arousal = mean of the dynamic
    curve), ``dynamic.csv`` (track_id,time_s,valence,arousal at 2 Hz, ``time_s`` = start of the 0.5 s
    segment), ``tags.csv`` (track_id,happy,angry,sad,calm; see :func:`quadrant_tags`), ``cues.csv``
    (track_id,time_s,<cue>...: the cue curves of the module docstring) and ``dataset.yaml``. Everything
    is written to a temporary sibling directory that is renamed to ``out_dir`` at the end; an existing
    ``out_dir`` is replaced only when it is empty or a previous synthetic corpus.

    The output is byte-identical for the same arguments, whatever ``workers``: clip *i* is rendered
    from the seed ``(seed, i)``.

    Parameters
    ----------
    out_dir : path
        Directory to create.
    n_clips : int > 0
        Number of clips (track ids ``syn0000``, ``syn0001``, ...).
    duration : float
        Clip length in seconds, a positive multiple of 0.5.
    seed : int >= 0
        Corpus seed.
    sr : int
        Sample rate (>= 16000).
    fmt : {"wav", "flac"}
        Audio format (16-bit PCM).
    workers : int, optional
        Worker processes; default ``min(os.cpu_count(), n_clips)``; 1 renders in this process.
    progress : bool
        Show a progress bar and the elapsed time on stderr.
    cue_jitter : float >= 0
        Scale of the cues' jitter (:func:`render_clip`); 1 is the corpus of the module docstring. The labels
        are the same for every value; only how closely each cue follows them changes.

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    if n_clips <= 0:
        raise ValueError(f"n_clips must be positive, not {n_clips}")
    n_steps = duration / SEGMENT_S
    if duration <= 0 or abs(n_steps - round(n_steps)) > 1e-9:
        raise ValueError(f"duration must be a positive multiple of {SEGMENT_S} s, not {duration}")
    n_steps = int(round(n_steps))
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {sorted(_FORMATS)}, not {fmt!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, not {seed}")
    if sr < 16000:
        raise ValueError(f"sr must be at least 16000 Hz, not {sr}")
    if not (np.isfinite(cue_jitter) and cue_jitter >= 0):
        raise ValueError(f"cue_jitter must be a finite number >= 0, not {cue_jitter}")
    if not _is_corpus_dir(out_dir):
        raise DatasetError(
            f"{out_dir}: exists and is not a moodscope synthetic corpus; refusing to overwrite it"
        )
    workers = min(os.cpu_count() or 1, n_clips) if workers is None else max(1, min(int(workers), n_clips))

    t_start = time.perf_counter()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "audio").mkdir(parents=True)
    try:
        ids = [f"syn{i:04d}" for i in range(n_clips)]
        jobs = [
            (i, seed, n_steps, sr, str(tmp / "audio" / f"{ids[i]}.{fmt}"), fmt, float(cue_jitter))
            for i in range(n_clips)
        ]
        results: dict[int, dict[str, np.ndarray]] = {}
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_clips, desc="synthesizing", unit="clip", file=sys.stderr)
        if workers == 1:
            for job in jobs:
                i, cues = _clip_job(job)
                results[i] = cues
                if bar is not None:
                    bar.update()
        else:
            # fork needs no ``if __name__ == "__main__"`` guard in the caller's script; the workers use
            # only numpy/scipy/soundfile, so threads held by the parent (e.g. torch's) are not touched.
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for i, cues in pool.map(_clip_job, jobs):
                    results[i] = cues
                    if bar is not None:
                        bar.update()
        if bar is not None:
            bar.close()
        _write_tables(tmp, ids, [results[i] for i in range(n_clips)])
        _write_meta(tmp, n_clips=n_clips, duration=duration, seed=seed, sr=sr, fmt=fmt, cue_jitter=cue_jitter)
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    elapsed = time.perf_counter() - t_start
    if progress:
        print(
            f"synthesized {n_clips} clips x {duration:g} s ({n_clips * duration / 60:.1f} min of audio) "
            f"in {elapsed:.1f} s with {workers} worker(s) -> {out_dir}",
            file=sys.stderr,
        )
    return out_dir


def _write_tables(root: Path, ids: list[str], results: list[dict[str, np.ndarray]]) -> None:
    static, dynamic, tags, cues = (io.StringIO() for _ in range(4))
    ws, wd, wt, wc = (csv.writer(f, lineterminator="\n") for f in (static, dynamic, tags, cues))
    ws.writerow(["track_id", "valence", "arousal"])
    wd.writerow(["track_id", "time_s", "valence", "arousal"])
    wt.writerow(["track_id", *TAG_NAMES])
    wc.writerow(["track_id", "time_s", *CUE_NAMES])
    for tid, r in zip(ids, results):
        v, a = np.round(r["valence"], 6), np.round(r["arousal"], 6)
        ws.writerow([tid, _fmt(float(np.mean(v))), _fmt(float(np.mean(a)))])
        for i in range(len(v)):
            t = f"{i * SEGMENT_S:.1f}"
            wd.writerow([tid, t, _fmt(v[i]), _fmt(a[i])])
            wc.writerow([tid, t, *(_fmt(r[c][i]) for c in CUE_NAMES)])
        tag = quadrant_tags(v, a)
        wt.writerow([tid, *(tag[k] for k in TAG_NAMES)])
    for name, buf in (("static", static), ("dynamic", dynamic), ("tags", tags), ("cues", cues)):
        _write_text(root / f"{name}.csv", buf.getvalue())


def _write_meta(
    root: Path, *, n_clips: int, duration: float, seed: int, sr: int, fmt: str, cue_jitter: float = 1.0
) -> None:
    import yaml

    meta = {
        "name": "synthetic",
        "description": (
            "moodscope's built-in synthetic corpus: music-like clips rendered offline whose valence and "
            "arousal follow musical cues (tempo, note density, loudness, brightness, percussion -> arousal; "
            "mode, consonance, register, articulation -> valence), each label a jittered mix of several "
            "cues. Labels are the ground truth; see cues.csv and the moodscope.datasets.corpus docstring."
        ),
        "scale": {"min": -1, "max": 1},
        "generator": "moodscope.datasets.corpus",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_clips": int(n_clips),
        "duration_s": float(duration),
        "sr": int(sr),
        "format": fmt,
        **({"cue_jitter": float(cue_jitter)} if cue_jitter != 1.0 else {}),
        "hop_s": SEGMENT_S,
        "time_s": "start of the 0.5 s segment the value describes",
        "tags": list(TAG_NAMES),
        "tag_rule": (
            f"tag = 1 when >= {TAG_MIN_FRACTION:.0%} of the 2 Hz values lie in its quadrant: happy V>0,A>0; "
            "angry V<=0,A>0; sad V<=0,A<=0; calm V>0,A<=0"
        ),
        "cues": [
            {
                "name": c.name,
                "driven_by": c.label,
                "weight": c.weight,
                "jitter_clip": c.jitter_clip,
                "jitter_time": c.jitter_time,
                "rendering": c.rendering,
            }
            for c in CUES
        ],
    }
    _write_text(root / "dataset.yaml", yaml.safe_dump(meta, sort_keys=False, allow_unicode=False, width=100))
