"""EMOPIA 1.0 (Hung et al., ISMIR 2021): 1,078 pop-piano clips as MIDI, each with a Russell quadrant.

The release, as distributed (``root`` is this folder, or a folder holding ``EMOPIA_1.0/`` or ``EMOPIA/``)::

    midis/Q{1-4}_{songID}_{clip}.mid     transcriptions of the clips (GiantMIDI); song ids may contain "_"
    label.csv                            ID,4Q,annotator      (ID without extension; annotator A-D)
    split/{train,val,test}_clip.csv      ,clip_name           (an unnamed index column; names end in .mid)
    split/*_SL.csv, metadata_by_song.csv, README.release.md   (not read)

The release has no audio: every clip is rendered from its MIDI with FluidSynth
(:mod:`moodscope.audio.midi`) into the cache, ``<cache>/emopia/<variant key>/<id>-<MIDI hash>.flac``, where
``<cache>`` is :func:`moodscope.fileio.cache_root` (``$MOODSCOPE_CACHE``) and the variant key names the
soundfont, rate, gain, program, velocity/tempo factors, effects and mode
(:meth:`~moodscope.audio.midi.RenderVariant.key`). A render is reused when a file of that name exists, so it
is keyed by the MIDI's content and the variant. FLAC, mono, 16-bit: lossless like WAV at about a third of the
size of FluidSynth's stereo WAV (the whole release at 22.05 kHz is about 0.75 GB instead of 3.8 GB); soundfile
reads it natively.

Labels
------
- ``Track.tags``: the quadrant one-hot, ``{"Q1": 1.0, "Q2": 0.0, "Q3": 0.0, "Q4": 0.0}`` (tag names
  :data:`TAG_NAMES`; Q1..Q4 are moodscope's happy / angry / sad / calm quadrants,
  :data:`moodscope.emotion.QUADRANT_TAGS`).
- ``Track.meta``: ``midi`` (path), ``quadrant`` (1-4), ``valence_sign`` and ``arousal_sign`` (+1 / -1: Q1 = V+A+,
  Q2 = V-A+, Q3 = V-A-, Q4 = V+A-), ``annotator``, ``song`` (YouTube id), ``clip`` (index within the song).
- ``Track.valence`` / ``Track.arousal`` stay ``None``: the release has signs, not values. With
  ``sign_labels=True`` they are set to the quadrant's centre, ``+-0.5`` (the centres
  :class:`moodscope.tasks.static.StaticTask` maps quadrant probabilities to), so the static task's
  ``binary`` and ``quadrant`` heads, which take their classes from the signs, train on EMOPIA as they are.
  Regression heads and R² on those values mean nothing.
- ``Track.split``: ``"train"`` / ``"val"`` / ``"test"``, the authors' song-disjoint split;
  :func:`moodscope.datasets.splits.emopia_split` gives it as a :class:`~moodscope.datasets.splits.Split`.

Quirks handled (each counted in :attr:`Dataset.issues`): names with or without ``.mid``, BOMs and spaces in the
CSV files, duplicate rows, a quadrant in ``label.csv`` that differs from the file name's ``Q<n>`` prefix (the
``4Q`` column wins), clips in ``label.csv`` without a MIDI file (kept, ``audio=None``) and MIDI files without a
label (kept as unlabelled tracks), split entries naming no clip, clips in two split files or in none, and MIDI
files that FluidSynth cannot render (``audio=None``, one line each naming the file).

Licence: CC BY-NC-SA 4.0 per the authors' dataset card; record it in the metadata of a model trained on it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..audio.midi_render import DEFAULT_GAIN, DEFAULT_SR, RenderVariant, find_fluidsynth, find_soundfont
from ..errors import AudioError, DatasetError, MissingToolError
from ..fileio import cache_root
from ..tracks import Track
from .base import CANONICAL, DATASETS, UNIT, Dataset, DatasetAdapter, IssueLog
from .reading import cell, find_child, find_column, iter_id_rows, read_csv

#: tag names, in quadrant order
TAG_NAMES = ("Q1", "Q2", "Q3", "Q4")
#: quadrant -> (valence sign, arousal sign)
SIGNS = {1: (1, 1), 2: (-1, 1), 3: (-1, -1), 4: (1, -1)}
SPLITS = ("train", "val", "test")
MIDI_SUFFIXES = (".mid", ".midi")
LICENCE = "CC BY-NC-SA 4.0"
_NAME = re.compile(r"^Q([1-4])_(.+)_(\d+)$")


def label_quadrant(track: Track, q: int, *, sign_labels: bool) -> None:
    """Give ``track`` the labels of Russell quadrant ``q`` (1-4): the one-hot tags :data:`TAG_NAMES`, the
    quadrant and its signs in ``meta``, and with ``sign_labels`` valence/arousal at the quadrant's centre
    (+-0.5). Shared by the quadrant-labelled releases (EMOPIA, 4Q)."""
    vs, as_ = SIGNS[q]
    track.tags = {name: float(k + 1 == q) for k, name in enumerate(TAG_NAMES)}
    track.meta.update(quadrant=q, valence_sign=vs, arousal_sign=as_)
    if sign_labels:
        track.valence, track.arousal = 0.5 * vs, 0.5 * as_


def quadrant_counts(tracks) -> str:
    """``"Q1 n1, Q2 n2, Q3 n3, Q4 n4 (Q1 V+A+, ...)"``: the tracks per quadrant, for a release's description."""
    counts = {q: sum(t.meta.get("quadrant") == q for t in tracks) for q in SIGNS}
    return ", ".join(f"Q{q} {n}" for q, n in counts.items()) + " (Q1 V+A+, Q2 V-A+, Q3 V-A-, Q4 V+A-)"


def quadrant_native_scale(sign_labels: bool) -> dict:
    """The native scales of a quadrant-labelled release: tags on [0, 1]; static values (``sign_labels``) canonical."""
    native = {"tags": UNIT.as_tuple()}
    if sign_labels:
        native["static"] = CANONICAL.as_tuple()
    return native


def clip_id(name: str) -> str:
    """A clip name as an id: stripped, without a ``.mid``/``.midi`` (or ``.mp3``/``.wav``) extension."""
    s = name.strip().strip("\ufeff").strip()
    return re.sub(r"\.(midi?|mp3|wav)$", "", s, flags=re.IGNORECASE)


def parse_clip_name(name: str) -> tuple[int, str, int] | None:
    """``(quadrant, song id, clip index)`` of ``Q{1-4}_{songID}_{clip}``, or ``None`` for another name."""
    m = _NAME.match(clip_id(name))
    return None if m is None else (int(m.group(1)), m.group(2), int(m.group(3)))


def midi_digest(path: Path) -> str:
    """First 12 hex digits of the SHA-1 of a file's bytes (the cache key of its renders), read in chunks."""
    h = hashlib.sha1()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()[:12]


def _locate(root: Path) -> Path:
    for c in (root, find_child(root, "EMOPIA_1.0"), find_child(root, "EMOPIA")):
        if c is not None and c.is_dir() and find_child(c, "label.csv") is not None:
            return c
    raise DatasetError(f"{root / 'label.csv'}: missing file (EMOPIA labels: ID,4Q,annotator)")


def _render_job(job: tuple[str, str, str, RenderVariant]) -> tuple[str, str | None]:
    """Render one clip (in a worker process); ``(id, None)`` or ``(id, cause)``. Exceptions do not cross the
    process boundary: AudioError does not pickle."""
    tid, midi_path, out_path, variant = job
    try:
        variant.render(midi_path, out_path)
    except AudioError as e:
        return tid, e.cause
    except MissingToolError as e:
        return tid, f"missing tool: {e}"
    return tid, None


@DATASETS.register("emopia")
class EmopiaDataset(DatasetAdapter):
    """EMOPIA 1.0: pop-piano MIDI clips with quadrant labels; audio rendered from the MIDI with FluidSynth.

    Parameters
    ----------
    render : bool
        Render the clips not rendered yet (default). ``False`` renders nothing: tracks point at where their
        audio would be (which may not exist), and a missing ``fluidsynth`` or soundfont is noted in the issues.
    soundfont, program, velocity, tempo, reverb, chorus, gain, sr, mode
        The rendering variant (:class:`moodscope.audio.midi.RenderVariant`).
    jobs : int, optional
        Renders in parallel (a process pool); default all cores.
    progress : bool
        A progress bar on stderr while rendering two clips or more.
    sign_labels : bool
        Also set ``valence``/``arousal`` to the quadrant centre (+-0.5) for the static task's class heads.
    cache_dir : path, optional
        Where renders go (default ``cache_root() / "emopia"``); one folder per variant below it.
    """

    name = "emopia"
    description = (
        "EMOPIA 1.0: 1,078 pop-piano MIDI clips, 4 quadrants (Q1 V+A+, Q2 V-A+, Q3 V-A-, Q4 V+A-), "
        "audio rendered with FluidSynth"
    )
    #: what ``moodscope datasets check`` passes unless told otherwise: check without rendering
    check_options = {"render": False}

    def __init__(
        self,
        render: bool = True,
        soundfont: str = "FluidR3_GM",
        program: int | None = 0,
        velocity: float = 1.0,
        tempo: float = 1.0,
        reverb: bool = True,
        chorus: bool = False,
        gain: float = DEFAULT_GAIN,
        sr: int = DEFAULT_SR,
        mode: str | None = None,
        jobs: int | None = None,
        progress: bool = True,
        sign_labels: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ):
        try:
            self.variant = RenderVariant(
                soundfont=str(soundfont),
                program=None if program is None else int(program),
                velocity=float(velocity),
                tempo=float(tempo),
                reverb=bool(reverb),
                gain=float(gain),
                sr=int(sr),
                mode=mode,
                chorus=bool(chorus),
            )
        except (TypeError, ValueError) as e:
            raise DatasetError(f"emopia: {e}") from None
        if jobs is not None and int(jobs) < 1:
            raise DatasetError(f"emopia: jobs must be >= 1, not {jobs}")
        self.render = bool(render)
        self.jobs = None if jobs is None else int(jobs)
        self.progress = bool(progress)
        self.sign_labels = bool(sign_labels)
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()

    def audio_dir(self) -> Path:
        """The folder of this variant's renders."""
        return (self.cache_dir or cache_root() / self.name) / self.variant.key()

    # ------------------------------------------------------------------------------------------------------
    def load(self, root: Path) -> Dataset:
        base = _locate(root)
        log = IssueLog()
        tracks: dict[str, Track] = {}
        self._read_labels(find_child(base, "label.csv"), log, tracks)
        midis = self._index_midis(base, log)
        for tid in sorted(set(tracks) - set(midis)):
            log.add("midis", "labelled clips without a MIDI file (kept, audio=None)", tid)
        for tid in sorted(set(midis) - set(tracks)):
            log.add("label.csv", "MIDI files without a label (kept as unlabelled tracks)", tid)
            tracks[tid] = Track(id=tid)
            parsed = parse_clip_name(tid)
            if parsed is not None:
                tracks[tid].meta.update(song=parsed[1], clip=parsed[2])
        self._read_splits(base, log, tracks)

        out_dir = self.audio_dir()
        for tid, path in midis.items():
            t = tracks[tid]
            t.meta["midi"] = path
            t.audio = out_dir / f"{tid}-{midi_digest(path)}.flac"
        if self.render:
            self._render_missing(tracks, log)
        else:
            for probe in (find_fluidsynth, lambda: find_soundfont(self.variant.soundfont)):
                try:
                    probe()
                except MissingToolError as e:
                    log.note("render", f"{e} (render=False: nothing rendered)")

        rendered = sum(1 for t in tracks.values() if t.audio is not None and t.audio.is_file())
        with_midi = sum(1 for t in tracks.values() if t.audio is not None)
        description = (
            f"EMOPIA 1.0: {len(tracks)} clips, {quadrant_counts(tracks.values())}; "
            + f"audio {self.variant.key()}: {rendered} of {with_midi} MIDI files rendered; licence {LICENCE}"
        )
        return self.finish(
            root,
            tracks,
            log,
            tag_names=TAG_NAMES,
            native_scale=quadrant_native_scale(self.sign_labels),
            description=description,
        )

    # ------------------------------------------------------------------------------------------------------
    def _read_labels(self, path: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        header, rows = read_csv(path, log)
        i_id = find_column(header, ("ID", "clip_name", "clip", "name"), path, what="ID")
        i_q = find_column(header, ("4Q", "quadrant", "Q"), path, what="4Q")
        i_ann = find_column(header, ("annotator",), path, required=False)
        where = path.name
        cleaned = [[clip_id(c) if j == i_id else c for j, c in enumerate(r)] for r in rows]
        for tid, row in iter_id_rows(cleaned, i_id, log, where, id_name="clip ID"):
            raw = (cell(row, i_q) or "").strip().upper().removeprefix("Q")
            try:
                q = int(float(raw))
            except ValueError:
                q = 0
            t = Track(id=tid)
            tracks[tid] = t
            parsed = parse_clip_name(tid)
            if parsed is None:
                log.add(where, "clip names not of the form Q<n>_<songID>_<clip> (song unknown)", tid)
            else:
                t.meta.update(song=parsed[1], clip=parsed[2])
            if q not in SIGNS:
                log.add(where, "rows with a quadrant not in 1-4 (kept without a label)", tid)
                continue
            if parsed is not None and parsed[0] != q:
                log.add(where, "clips whose name says another quadrant than the 4Q column (4Q used)", tid)
            label_quadrant(t, q, sign_labels=self.sign_labels)
            ann = cell(row, i_ann)
            if ann:
                t.meta["annotator"] = ann

    @staticmethod
    def _index_midis(base: Path, log: IssueLog) -> dict[str, Path]:
        folder = find_child(base, "midis", "midi")
        if folder is None or not folder.is_dir():
            raise DatasetError(f"{base / 'midis'}: missing folder (EMOPIA's Q<n>_<songID>_<clip>.mid files)")
        out: dict[str, Path] = {}
        for f in sorted(folder.iterdir()):
            if f.name.startswith("."):
                continue
            if not f.is_file() or f.suffix.lower() not in MIDI_SUFFIXES:
                log.add(folder.name, "files that are not .mid ignored", f.name)
                continue
            tid = clip_id(f.name)
            if tid in out:
                log.add(folder.name, "MIDI files with the same clip name (first kept)", f.name)
                continue
            out[tid] = f
        if not out:
            log.note(folder.name, "no .mid files")
        return out

    @staticmethod
    def _read_splits(base: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        folder = find_child(base, "split")
        found = {s: find_child(folder, f"{s}_clip.csv") if folder is not None else None for s in SPLITS}
        found = {s: p if p is not None else find_child(base, f"{s}_clip.csv") for s, p in found.items()}
        if not any(found.values()):
            log.note("split", "no split/{train,val,test}_clip.csv (Track.split unset)")
            return
        for s, path in found.items():
            if path is None:
                log.note("split", f"{s}_clip.csv missing (no {s} clips)")
                continue
            header, rows = read_csv(path, log)
            i_name = find_column(header, ("clip_name", "clip", "ID", "name"), path, what="clip_name")
            cleaned = [[clip_id(c) if j == i_name else c for j, c in enumerate(r)] for r in rows]
            for tid, _ in iter_id_rows(cleaned, i_name, log, path.name, id_name="clip_name"):
                t = tracks.get(tid)
                if t is None:
                    log.add(path.name, "entries naming no clip of label.csv or midis/ (ignored)", tid)
                elif t.split is not None and t.split != s:
                    log.add(path.name, f"clips already in the {t.split} split (first kept)", tid)
                else:
                    t.split = s
        for tid, t in tracks.items():
            if t.split is None:
                log.add("split", "clips in no split file (split unset)", tid)

    # ------------------------------------------------------------------------------------------------------
    def _render_missing(self, tracks: dict[str, Track], log: IssueLog) -> None:
        todo = [t for t in tracks.values() if t.audio is not None and not t.audio.is_file()]
        if not todo:
            return
        find_fluidsynth()  # one clear line before any work when the tools are missing
        find_soundfont(self.variant.soundfont)
        jobs = [(t.id, str(t.meta["midi"]), str(t.audio), self.variant) for t in todo]
        workers = min(os.cpu_count() or 1, len(jobs)) if self.jobs is None else min(self.jobs, len(jobs))
        bar = None
        if self.progress and len(jobs) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc=f"rendering MIDI ({self.variant.soundfont})", unit="clip",
                       file=sys.stderr)  # fmt: skip
        failures: list[tuple[str, str]] = []
        try:
            if workers <= 1:
                results = map(_render_job, jobs)
                for tid, err in results:
                    if err is not None:
                        failures.append((tid, err))
                    if bar is not None:
                        bar.update()
            else:
                methods = multiprocessing.get_all_start_methods()
                ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                    for tid, err in pool.map(_render_job, jobs):
                        if err is not None:
                            failures.append((tid, err))
                        if bar is not None:
                            bar.update()
        finally:
            if bar is not None:
                bar.close()
        for tid, err in failures:
            if err.startswith("missing tool: "):
                raise MissingToolError(err.removeprefix("missing tool: "))
            t = tracks[tid]
            log.note(Path(t.meta["midi"]).name, f"not rendered: {err} (audio=None)")
            t.audio = None
