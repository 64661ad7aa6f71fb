"""VGMIDI (Ferreira & Whitehead, ISMIR 2019): piano arrangements of video-game music with listeners'
valence and arousal per bar -- human *curves*, the labels that teach a curve to follow listeners.

The release, as the project holds it (``root`` is this folder)::

    midi/<Series>_<Platform>_<Game>_<Title>.mid    the pieces
    dynamic_per_bar.csv    midi_path,piece,bar,t_start_s,t_end_s,valence_mean,arousal_mean   (one row per slot)
    static_per_piece.csv   midi_path,piece,valence_mean,arousal_mean                         (not needed: the
                           static label is recomputed as the mean of the piece's slots, and compared)

The annotation tool divided each piece into equal-time slots ("bars") and about 30 listeners moved a cursor in
the valence-arousal plane while it played; the values are the listeners' mean per slot, on -1..1, and times are
seconds in a FluidSynth rendering that follows the MIDI's tempo map from all its tracks (as our renderer does:
FluidSynth plays the file). The MIDI is rendered as EMOPIA's is (:class:`moodscope.datasets.emopia.
EmopiaDataset`: the same options, FluidSynth with a General MIDI soundfont, every channel on piano by default),
into ``<cache>/vgmidi/<variant key>/``.

Labels
------
- ``Track.dynamic``: the curve on moodscope's 2 Hz grid: step *i* (``[0.5 i, 0.5 i + 0.5)``) takes the value
  of the slot its centre falls in (``t_start_s <= 0.5 i + 0.25 < t_end_s``); steps in no slot -- after the
  last labelled slot (a render's reverb tail), or where a slot was dropped by the release (heard by fewer than
  10 listeners) -- are not in the curve, i.e. unlabelled, never zero.
- ``Track.valence`` / ``Track.arousal``: the mean of the piece's slots (what ``static_per_piece.csv`` holds).
- ``Track.meta``: ``midi`` (path), ``series``, ``platform``, ``game``, ``title`` (from the file name),
  ``slots`` (the number of labelled slots), ``slot_s`` (their mean length).
- ``Track.split`` stays unset: split by series (:func:`moodscope.datasets.splits.kfold_by_group` with
  ``group="series"``), never by piece or bar: the pieces that measure the project are of other series.

Quirks handled (each counted in :attr:`Dataset.issues`): BOMs and spaces in the CSV, slot rows naming no MIDI
file (ignored), MIDI files without slot rows (kept as unlabelled tracks), rows whose times or values are not
finite numbers, values outside -1..1, slots that overlap or end before they start (skipped), a duplicate
(piece, bar) pair (first kept), and a piece whose static row disagrees with the mean of its slots by more than
0.01 (noted; the slots win).

Licence: :data:`LICENCE`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..config import SEGMENT_S
from ..tracks import Dynamic, Track
from .base import DATASETS, Dataset, IssueLog
from .emopia import MIDI_SUFFIXES, EmopiaDataset, midi_digest
from .reading import cell, find_child, find_column, parse_float, read_csv

LICENCE = (
    "research use only (VGMIDI states no licence; the arrangements are of copyrighted game music; never "
    "redistribute the MIDI; cite Ferreira & Whitehead, ISMIR 2019)"
)


def piece_fields(name: str) -> dict:
    """``series``, ``platform``, ``game``, ``title`` of a ``Series_Platform_Game_Title`` name (a title may
    hold ``_``); a name with fewer fields gives what it has, the series always (the whole name at worst)."""
    parts = name.split("_", 3)
    keys = ("series", "platform", "game", "title")
    return {k: v.strip() for k, v in zip(keys, parts) if v.strip()}


def slots_to_grid(starts, ends, valence, arousal) -> Dynamic:
    """The 2 Hz curve of labelled slots: each 0.5 s step whose centre lies in a slot takes its values."""
    starts, ends = np.asarray(starts, float), np.asarray(ends, float)
    if len(starts) == 0:
        return Dynamic(np.zeros(0), np.zeros(0), np.zeros(0))
    n = int(math.ceil(float(ends.max()) / SEGMENT_S))
    centres = (np.arange(n) + 0.5) * SEGMENT_S
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    j = np.searchsorted(s, centres, side="right") - 1
    ok = (j >= 0) & (centres < e[np.clip(j, 0, None)])
    idx = order[j[ok]]
    return Dynamic(
        np.flatnonzero(ok) * SEGMENT_S, np.asarray(valence, float)[idx], np.asarray(arousal, float)[idx]
    )


@DATASETS.register("vgmidi")
class VgmidiDataset(EmopiaDataset):
    """VGMIDI pieces with per-slot listener valence-arousal; audio rendered from the MIDI with FluidSynth.

    Options are EMOPIA's (:class:`~moodscope.datasets.emopia.EmopiaDataset`: ``render``, the rendering
    variant, ``jobs``, ``progress``, ``cache_dir``); ``sign_labels`` is accepted and ignored (the pieces have
    values, not quadrants).
    """

    name = "vgmidi"
    description = (
        "VGMIDI: piano arrangements of video-game music with listeners' valence-arousal per bar (2 Hz curves), "
        "audio rendered with FluidSynth"
    )
    check_options = {"render": False}

    def load(self, root: Path) -> Dataset:
        log = IssueLog()
        folder = find_child(root, "midi", "midis")
        if folder is None or not folder.is_dir():
            from ..errors import DatasetError

            raise DatasetError(
                f"{root / 'midi'}: missing folder (VGMIDI's <Series>_<Platform>_<Game>_<Title>.mid)"
            )
        tracks: dict[str, Track] = {}
        for f in sorted(folder.iterdir()):
            if f.name.startswith("."):
                continue
            if not f.is_file() or f.suffix.lower() not in MIDI_SUFFIXES:
                log.add(folder.name, "files that are not .mid ignored", f.name)
                continue
            t = Track(id=f.stem, meta={"midi": f, **piece_fields(f.stem)})
            tracks[f.stem] = t
        slots = self._read_slots(root, log, tracks)
        for tid, rows in slots.items():
            self._label(tracks[tid], rows, log)
        self._compare_static(root, log, tracks)
        out_dir = self.audio_dir()
        for t in tracks.values():
            t.audio = out_dir / f"{t.id}-{midi_digest(t.meta['midi'])}.flac"
        if self.render:
            self._render_missing(tracks, log)
        rendered = sum(1 for t in tracks.values() if t.audio is not None and t.audio.is_file())
        labelled = sum(1 for t in tracks.values() if t.dynamic is not None)
        n_slots = sum(t.meta.get("slots", 0) for t in tracks.values())
        series = len({t.meta.get("series") for t in tracks.values()})
        description = (
            f"VGMIDI: {len(tracks)} pieces of {series} series, {labelled} with curves ({n_slots} slots); "
            f"audio {self.variant.key()}: {rendered} rendered; licence: research use only"
        )
        return self.finish(
            root,
            tracks,
            log,
            native_scale={"static": (-1.0, 1.0), "dynamic": (-1.0, 1.0)},
            description=description,
        )

    @staticmethod
    def _read_slots(root: Path, log: IssueLog, tracks: dict[str, Track]) -> dict[str, list]:
        path = find_child(root, "dynamic_per_bar.csv")
        if path is None:
            from ..errors import DatasetError

            raise DatasetError(f"{root / 'dynamic_per_bar.csv'}: missing file (VGMIDI's per-bar labels)")
        header, rows = read_csv(path, log)
        cols = {
            k: find_column(header, names, path, what=names[0])
            for k, names in (
                ("piece", ("piece",)),
                ("bar", ("bar",)),
                ("start", ("t_start_s",)),
                ("end", ("t_end_s",)),
                ("v", ("valence_mean", "valence")),
                ("a", ("arousal_mean", "arousal")),
            )
        }
        i_midi = find_column(header, ("midi_path",), path, required=False)
        out: dict[str, list] = {}
        seen: set = set()
        for row in rows:
            piece = (cell(row, cols["piece"]) or "").strip()
            if not piece and i_midi is not None:
                piece = Path((cell(row, i_midi) or "").strip()).stem
            if piece not in tracks:
                log.add(path.name, "rows naming no MIDI file of midi/ (ignored)", piece or "(empty)")
                continue
            bar = (cell(row, cols["bar"]) or "").strip()
            if (piece, bar) in seen:
                log.add(path.name, "duplicate (piece, bar) rows (first kept)", f"{piece} bar {bar}")
                continue
            seen.add((piece, bar))
            s, e, v, a = (parse_float(cell(row, cols[k])) for k in ("start", "end", "v", "a"))
            if not all(math.isfinite(x) for x in (s, e, v, a)):
                log.add(
                    path.name,
                    "rows with a time or value that is not a finite number (skipped)",
                    f"{piece} bar {bar}",
                )
                continue
            if not (e > s >= 0):
                log.add(path.name, "slots that end before they start (skipped)", f"{piece} bar {bar}")
                continue
            if abs(v) > 1 or abs(a) > 1:
                log.add(path.name, "values outside -1..1 (skipped)", f"{piece} bar {bar}")
                continue
            out.setdefault(piece, []).append((s, e, v, a))
        return out

    @staticmethod
    def _label(t: Track, rows: list, log: IssueLog) -> None:
        rows = sorted(rows)
        kept = [rows[0]]
        for r in rows[1:]:
            if r[0] < kept[-1][1] - 1e-6:
                log.add("dynamic_per_bar.csv", "slots overlapping the one before (skipped)", t.id)
                continue
            kept.append(r)
        s, e, v, a = (np.array(c) for c in zip(*kept))
        t.dynamic = slots_to_grid(s, e, v, a)
        t.valence, t.arousal = float(v.mean()), float(a.mean())
        t.meta.update(slots=len(kept), slot_s=round(float((e - s).mean()), 3))

    @staticmethod
    def _compare_static(root: Path, log: IssueLog, tracks: dict[str, Track]) -> None:
        path = find_child(root, "static_per_piece.csv")
        if path is None:
            log.note("static_per_piece.csv", "missing (the static label is the mean of the slots anyway)")
            return
        header, rows = read_csv(path, log)
        i_p = find_column(header, ("piece",), path, what="piece")
        i_v = find_column(header, ("valence_mean", "valence"), path, what="valence_mean")
        i_a = find_column(header, ("arousal_mean", "arousal"), path, what="arousal_mean")
        for row in rows:
            t = tracks.get((cell(row, i_p) or "").strip())
            if t is None or t.valence is None:
                continue
            v, a = parse_float(cell(row, i_v)), parse_float(cell(row, i_a))
            if not (abs(v - t.valence) <= 0.01 and abs(a - t.arousal) <= 0.01):
                log.add(
                    path.name,
                    "pieces whose static row differs from the mean of their slots (slots used)",
                    t.id,
                )
