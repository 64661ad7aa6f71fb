"""CAL500 (Turnbull et al. 2007): 502 Western popular songs, 174 tags, multi-label.

::

    CAL500/
      songNames.txt          502 lines "artist-title" (also the mp3 file stem)
      vocab.txt              174 tag names, one a line
      hardAnnotations.txt    502 x 174, comma separated 0/1, no header
      softAnnotations.txt    502 x 174, fraction of listeners
      mp3/<artist-title>.mp3

``root`` may be ``CAL500/`` or the folder holding it. Row *i* of the annotation file belongs to line *i* of
``songNames.txt``; a different number of rows is an error (the alignment would be unknowable). A row with a
cell count other than the vocabulary size is skipped and counted; values are checked on [0, 1].

Tag selection (option ``tags``):

- ``None`` (default): the 18 positive emotion tags (:data:`EMOTION_TAGS`), the usual emotion task;
- ``"emotion"``: all 36 ``Emotion-*`` and ``NOT-Emotion-*`` columns;
- ``"all"``: the 174 tags;
- a list of names: exactly those, in that order; a name may omit the ``Emotion-`` prefix.

``annotations="hard"`` (default) reads ``hardAnnotations.txt`` (1 = at least 80 % of >= 2 listeners agree),
``"soft"`` reads ``softAnnotations.txt`` (fraction of listeners).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import DatasetError
from ..tracks import Track
from .base import DATASETS, UNIT, Dataset, DatasetAdapter, IssueLog, convert_tags
from .limits import excerpt
from .reading import find_child, index_audio, norm_name, parse_float, read_text

#: The 18 positive emotion tags of CAL500 (spelling as in the release, "Agressive" included).
EMOTION_TAGS = tuple(
    "Emotion-" + t
    for t in (
        "Angry_/_Agressive",
        "Arousing_/_Awakening",
        "Bizarre_/_Weird",
        "Calming_/_Soothing",
        "Carefree_/_Lighthearted",
        "Cheerful_/_Festive",
        "Emotional_/_Passionate",
        "Exciting_/_Thrilling",
        "Happy",
        "Laid-back_/_Mellow",
        "Light_/_Playful",
        "Loving_/_Romantic",
        "Pleasant_/_Comfortable",
        "Positive_/_Optimistic",
        "Powerful_/_Strong",
        "Sad",
        "Tender_/_Soft",
        "Touching_/_Loving",
    )
)


def _key(name: str) -> str:
    return norm_name(name).replace("aggressive", "agressive")


def select_tags(
    vocab: Sequence[str], tags, source: Path, *, default: Sequence[str] | None = None
) -> list[int]:
    """Column indices of the requested tags in ``vocab``.

    Parameters
    ----------
    vocab : sequence of str
        All tag names, in column order.
    tags : None, "all", "emotion", "emotion+" or list of str
        ``None`` selects ``default`` (when given) else the positive ``Emotion-*`` tags; ``"emotion+"`` the
        positive ``Emotion-*`` columns; ``"emotion"`` those and the ``NOT-Emotion-*`` ones.
    source : Path
        The file the vocabulary came from (named in errors).
    """
    keys: dict[str, int] = {}
    for i, v in enumerate(vocab):
        keys.setdefault(_key(v), i)
    positive = [i for i, v in enumerate(vocab) if norm_name(v).startswith("emotion")]
    if tags is None and default is not None:
        wanted: Sequence[str] = default
    elif tags is None or tags == "emotion+":
        if not positive:
            raise DatasetError(
                f"{source}: no 'Emotion-*' tag columns (the names begin {excerpt(', '.join(list(vocab)[:5]))!r})"
            )
        return positive
    elif tags == "all":
        return list(range(len(vocab)))
    elif tags == "emotion":
        out = [i for i, v in enumerate(vocab) if norm_name(v).startswith(("emotion", "notemotion"))]
        if not out:
            raise DatasetError(f"{source}: no 'Emotion-*' or 'NOT-Emotion-*' tag columns")
        return out
    elif isinstance(tags, str):
        raise DatasetError(
            f"tags must be None, 'all', 'emotion', 'emotion+' or a list of names, not {excerpt(repr(tags))}"
        )
    else:
        wanted = list(tags)
    idx, missing = [], []
    for name in wanted:
        k = _key(name)
        if k not in keys and _key("Emotion-" + name) in keys:
            k = _key("Emotion-" + name)
        if k in keys:
            idx.append(keys[k])
        else:
            missing.append(name)
    if missing:
        raise DatasetError(
            f"{source}: unknown tag(s) {[excerpt(m, 40) for m in missing[:5]]}"
            f"{' and more' if len(missing) > 5 else ''}; the vocabulary has {len(vocab)} tags"
        )
    return idx


def read_lines(path: Path, log: IssueLog) -> list[str]:
    """Non-empty stripped lines of a text file."""
    return [ln.strip() for ln in read_text(path, log).splitlines() if ln.strip()]


def _locate(root: Path) -> Path:
    for c in (root, find_child(root, "CAL500"), find_child(root, "CAL500_noAudioFeatures")):
        if c is not None and c.is_dir() and find_child(c, "songNames.txt") is not None:
            return c
    raise DatasetError(
        f"{root}: missing songNames.txt (expected a CAL500 folder with songNames.txt, vocab.txt, ...)"
    )


@DATASETS.register("cal500")
class CAL500Dataset(DatasetAdapter):
    """CAL500: 502 songs, track-level tags (hard 0/1 or soft fractions).

    Parameters
    ----------
    tags : None, "all", "emotion" or list of str
        Which tags to keep (default: the 18 positive emotion tags).
    annotations : {"hard", "soft"}
    """

    name = "cal500"
    description = "CAL500: 502 songs, 174 tags (default: the 18 positive emotion tags), hard or soft labels"

    def __init__(self, tags=None, annotations: str = "hard"):
        if annotations not in ("hard", "soft"):
            raise DatasetError(f"cal500: annotations must be 'hard' or 'soft', not {annotations!r}")
        self.tags = tags
        self.annotations = annotations

    def load(self, root: Path) -> Dataset:
        base = _locate(root)
        log = IssueLog()
        names_path = base / find_child(base, "songNames.txt").name
        vocab_path = find_child(base, "vocab.txt")
        if vocab_path is None:
            raise DatasetError(f"{base / 'vocab.txt'}: missing file (174 tag names, one a line)")
        ann_name = f"{self.annotations}Annotations.txt"
        ann_path = find_child(base, ann_name)
        if ann_path is None:
            raise DatasetError(
                f"{base / ann_name}: missing file ({self.annotations} annotations, songs x tags)"
            )
        songs = read_lines(names_path, log)
        vocab = read_lines(vocab_path, log)
        cols = select_tags(vocab, self.tags, vocab_path, default=EMOTION_TAGS)
        tag_names = [vocab[i] for i in cols]
        rows = read_lines(ann_path, log)
        if len(rows) != len(songs):
            raise DatasetError(
                f"{ann_path}: {len(rows)} rows for {len(songs)} songs in {names_path.name} (rows must align)"
            )
        tracks: dict[str, Track] = {}
        for song, line in zip(songs, rows):
            if song in tracks:
                log.add(names_path.name, "duplicate song names (first kept)", song)
                continue
            cells = [c for c in line.replace("\t", ",").replace(" ", ",").split(",") if c != ""]
            if len(cells) != len(vocab):
                log.add(ann_path.name, f"rows without {len(vocab)} values skipped (no tags)", song)
                tracks[song] = Track(id=song)
                continue
            raw = [parse_float(cells[i]) for i in cols]
            tracks[song] = Track(
                id=song, tags=convert_tags(tag_names, raw, log, ann_path.name, song), meta={}
            )
        mp3 = find_child(base, "mp3") or find_child(base, "audio")
        if mp3 is None:
            log.note(base.name, "no mp3/ audio folder found (all tracks without audio)")
        else:
            for stem, path in index_audio(mp3, log).items():
                tracks.setdefault(stem, Track(id=stem)).audio = path
        return self.finish(
            root,
            tracks,
            log,
            tag_names=tag_names,
            native_scale={"tags": UNIT.as_tuple()},
            description=f"{self.description} ({self.annotations}, {len(tag_names)} tags)",
        )
