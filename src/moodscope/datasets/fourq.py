"""4Q audio emotion dataset (Panda, Malheiro & Paiva, IEEE TAFFC 2018): 30 s AllMusic previews of real,
commercially released songs, each with a Russell quadrant and the song's AllMusic mood tags.

The release, as distributed (``root`` is this folder, or a folder holding ``MER_audio_taffc_dataset/``)::

    Q{1-4}/<Song>.mp3     the clips, one folder per quadrant (Song is AllMusic's id, e.g. MT0000040632)
    metadata.csv          Song,Artist,Title,Quadrant,PQuad,MoodsTotal,Moods,MoodsFoundStr,MoodsStr,
                          MoodsStrSplit,Genres,GenresStr        (one row per clip; quoted cells, CRLF;
                          panda_dataset_taffc_metadata.csv in the authors' archive is read too)
    README.md             (not read)

The project's copy (``shared/data/4q-given``) holds 461 of the 900 clips, every clip of 331 artists
(Q1 113, Q2 107, Q3 129, Q4 112; 331 distinct Artist cells: 330 names, and an empty cell on 3 clips); the
other clips, by other artists, are held out. Audio is MP3 at 22.05,
32 or 44.1 kHz; any extension of :data:`moodscope.audio.decode.AUDIO_EXTENSIONS` is accepted.

Labels
------
- ``Track.tags``: the quadrant one-hot, ``{"Q1": 1.0, "Q2": 0.0, "Q3": 0.0, "Q4": 0.0}``, as for EMOPIA
  (:data:`moodscope.datasets.emopia.TAG_NAMES`; Q1 = V+A+, Q2 = V-A+, Q3 = V-A-, Q4 = V+A-).
- ``Track.meta``: ``quadrant`` (1-4), ``valence_sign`` and ``arousal_sign`` (+1 / -1), ``artist``, ``title``,
  ``moods`` (the AllMusic mood tags, a list: ``MoodsStrSplit``, where AllMusic's combined moods such as
  "Nervous/Jittery" are split, else ``MoodsStr``), ``moods_allmusic`` (``MoodsStr``: AllMusic's moods as
  AllMusic groups them, "Nervous/Jittery" one mood; the default model's mood vocabulary), ``moods_found`` (``MoodsFoundStr``: those in Warriner's
  norms, lower case), ``genres`` (``GenresStr``, a list; "Pop/Rock" is one genre), ``pquad`` (the share of
  the song's mood tags in its quadrant), ``audio_quadrant`` (the folder's quadrant, when the file is in one).
  Absent cells leave their key out.
- ``Track.valence`` / ``Track.arousal`` stay ``None``; ``sign_labels=True`` sets them to the quadrant's
  centre, ``+-0.5``, as EMOPIA's option does (the static task's ``binary`` / ``quadrant`` heads).
- ``Track.split`` stays unset: the release has no split. Split by artist
  (:func:`moodscope.datasets.splits.kfold_by_group`, ``group="artist"``): several artists have 2-12 clips.

Quirks handled (each counted in :attr:`Dataset.issues`): BOMs, spaces and CRLF in ``metadata.csv``, song ids
written with an audio extension, duplicate rows (first kept), a ``Quadrant`` that differs from the clip's
folder (the column wins), a ``Quadrant`` that is empty or not Q1-Q4 (the folder's quadrant used, else the clip
is kept without a label), rows without an audio file (kept, ``audio=None``), audio files without a row (kept
as unlabelled tracks), one song in two quadrant folders (first folder kept), rows without an artist (the song
id is its own group in artist splits: ``artist`` is left out), and a ``PQuad`` that is not a number.

Licence: :data:`LICENCE`: copyrighted preview audio that the authors distribute for research; research and
non-commercial models only, never redistribute the audio, cite the paper. Record it in the metadata of a
model trained on it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..audio.decode import AUDIO_EXTENSIONS
from ..errors import DatasetError
from ..tracks import Track
from .base import DATASETS, Dataset, DatasetAdapter, IssueLog
from .emopia import SIGNS, TAG_NAMES, label_quadrant, quadrant_counts, quadrant_native_scale
from .reading import cell, find_child, find_column, index_audio, iter_id_rows, parse_float, read_csv

LICENCE = (
    "research and non-commercial use only (copyrighted AllMusic previews; do not redistribute the audio; "
    "cite Panda, Malheiro & Paiva, IEEE TAFFC 2018)"
)
#: names of the label file, first found wins
METADATA_FILES = ("metadata.csv", "panda_dataset_taffc_metadata.csv")
_EXT = re.compile("(" + "|".join(re.escape(e) for e in AUDIO_EXTENSIONS) + ")$", re.IGNORECASE)
_QUADRANT = re.compile(r"^Q?\s*([0-9]+)(\.0*)?$", re.IGNORECASE)


def song_id(name: str) -> str:
    """A song name as an id: stripped of spaces and BOMs and of an audio extension (``MT0000040632.mp3``)."""
    s = name.strip().strip("\ufeff").strip()
    return _EXT.sub("", s)


def parse_quadrant(text: str | None) -> int | None:
    """``"Q2"``, ``"q2"``, ``"2"`` or ``"2.0"`` -> 2; ``None`` for anything that is not a quadrant 1-4."""
    m = _QUADRANT.match((text or "").strip())
    q = int(m.group(1)) if m else 0
    return q if q in SIGNS else None


def split_list(text: str | None) -> list[str]:
    """Cells such as ``"Negative; Nervous; Jittery"`` as a list (``;`` or ``,`` separated; empty items and
    repeats dropped, order kept). ``/`` is not a separator: AllMusic's "Pop/Rock" is one genre."""
    items = (s.strip() for s in re.split(r"[;,]", text or ""))
    return list(dict.fromkeys(s for s in items if s))


def _locate(root: Path) -> tuple[Path, Path]:
    """The folder holding the label file and the label file."""
    for c in (root, find_child(root, "MER_audio_taffc_dataset"), find_child(root, "4q-given")):
        if c is not None and c.is_dir():
            meta = find_child(c, *METADATA_FILES)
            if meta is not None:
                return c, meta
    raise DatasetError(
        f"{root / METADATA_FILES[0]}: missing file (the 4Q labels: Song,Artist,Title,Quadrant,...)"
    )


@DATASETS.register("4q")
class FourQDataset(DatasetAdapter):
    """4Q audio emotion dataset (Panda et al. 2018): song previews with quadrant labels and AllMusic moods.

    Parameters
    ----------
    sign_labels : bool
        Also set ``valence``/``arousal`` to the quadrant centre (+-0.5) for the static task's class heads.
    """

    name = "4q"
    description = (
        "4Q (Panda et al. 2018): 30 s previews of real songs, 4 quadrants (Q1 V+A+, Q2 V-A+, Q3 V-A-, "
        "Q4 V+A-), AllMusic moods; research / non-commercial"
    )

    def __init__(self, sign_labels: bool = False):
        self.sign_labels = bool(sign_labels)

    def load(self, root: Path) -> Dataset:
        base, meta_path = _locate(root)
        log = IssueLog()
        audio = self._index_audio(base, log)
        tracks = self._read_metadata(meta_path, audio, log)
        for tid in sorted(set(audio) - set(tracks)):
            tracks[tid] = Track(id=tid)  # counted by finish(): audio without any label
        for tid, (path, q) in audio.items():
            tracks[tid].audio = path
            tracks[tid].meta["audio_quadrant"] = q

        artists = {t.meta["artist"].casefold() for t in tracks.values() if "artist" in t.meta}
        description = (
            f"4Q (Panda et al. 2018): {len(tracks)} clips, {quadrant_counts(tracks.values())}; "
            + f"{len(artists)} artists; "
            + f"{sum(t.audio is not None for t in tracks.values())} audio files; licence: {LICENCE}"
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
    @staticmethod
    def _index_audio(base: Path, log: IssueLog) -> dict[str, tuple[Path, int]]:
        """``song id -> (audio file, folder quadrant)`` over the ``Q1``..``Q4`` folders."""
        out: dict[str, tuple[Path, int]] = {}
        found = False
        for q, name in enumerate(TAG_NAMES, start=1):
            folder = find_child(base, name)
            if folder is None or not folder.is_dir():
                log.note(base.name, f"no {name}/ audio folder")
                continue
            found = True
            for stem, path in index_audio(folder, log).items():
                tid = song_id(stem)
                if tid in out:
                    log.add(folder.name, "songs already in another quadrant folder (first kept)", tid)
                    continue
                out[tid] = (path, q)
        if not found:
            log.note(base.name, "no Q1-Q4 audio folders found (all tracks without audio)")
        return out

    def _read_metadata(
        self, path: Path, audio: dict[str, tuple[Path, int]], log: IssueLog
    ) -> dict[str, Track]:
        header, rows = read_csv(path, log)
        i_id = find_column(header, ("Song", "song_id", "id", "clip"), path, what="Song")
        i_q = find_column(header, ("Quadrant", "4Q", "quadrant_label"), path, what="Quadrant")
        i_artist = find_column(header, ("Artist",), path, required=False)
        i_title = find_column(header, ("Title",), path, required=False)
        i_pquad = find_column(header, ("PQuad",), path, required=False)
        i_moods = find_column(header, ("MoodsStrSplit", "MoodsStr"), path, required=False)
        i_moods_all = find_column(header, ("MoodsStr",), path, required=False)
        i_found = find_column(header, ("MoodsFoundStr",), path, required=False)
        i_genres = find_column(header, ("GenresStr",), path, required=False)
        where = path.name
        if i_artist is None:
            log.note(where, "no Artist column (every clip its own group in artist splits)")
        cleaned = [[song_id(c) if j == i_id else c for j, c in enumerate(r)] for r in rows]
        tracks: dict[str, Track] = {}
        for tid, row in iter_id_rows(cleaned, i_id, log, where, id_name="Song"):
            t = tracks[tid] = Track(id=tid)
            folder_q = audio[tid][1] if tid in audio else None
            q = parse_quadrant(cell(row, i_q))
            if q is None and folder_q is not None:
                log.add(where, "rows with a Quadrant not in Q1-Q4 (the audio folder's quadrant used)", tid)
                q = folder_q
            elif q is None:
                log.add(
                    where, "rows with a Quadrant not in Q1-Q4 and no audio folder (kept without a label)", tid
                )
            elif folder_q is not None and folder_q != q:
                log.add(
                    where, "clips in another quadrant folder than the Quadrant column says (column used)", tid
                )
            if q is not None:
                label_quadrant(t, q, sign_labels=self.sign_labels)
            artist = (cell(row, i_artist) or "").strip()
            if artist:
                t.meta["artist"] = artist
            # an empty Artist cell is how the release is (3 clips), not a fault: no issue is logged, and
            # artist splits make such a clip its own group (kfold_by_group says so in the split's notes)
            title = (cell(row, i_title) or "").strip()
            if title:
                t.meta["title"] = title
            moods = split_list(cell(row, i_moods)) or split_list(cell(row, i_moods_all))
            for key, value in (
                ("moods", moods),
                ("moods_allmusic", split_list(cell(row, i_moods_all))),
                ("moods_found", split_list(cell(row, i_found))),
                ("genres", split_list(cell(row, i_genres))),
            ):
                if value:
                    t.meta[key] = value
            raw = cell(row, i_pquad)
            if raw:
                p = parse_float(raw)
                if math.isfinite(p) and 0.0 <= p <= 1.0:
                    t.meta["pquad"] = p
                else:
                    log.add(where, "PQuad cells not a number in [0, 1] (left out)", tid)
        return tracks
