"""What a query or a playlist asks for: moods (named points of the valence-arousal plane or ``V,A``),
ranges, tags, quadrants and sort keys, parsed and checked (one :class:`~moodscope.errors.UsageError` line each).

Moods
-----
A mood is a named point of the valence-arousal plane or a point written ``V,A`` (e.g. ``0.5,-0.2``; both in
[-1, 1]). The four quadrants of :mod:`moodscope.emotion` are at their centres, ±0.5, and have synonyms:

============  =============  ==========================================
point         quadrant       names
============  =============  ==========================================
(+0.5, +0.5)  happy (V+ A+)  happy, joyful, excited, energetic, cheerful
(-0.5, +0.5)  angry (V- A+)  angry, tense, aggressive, anxious
(-0.5, -0.5)  sad (V- A-)    sad, depressed, melancholic, gloomy
(+0.5, -0.5)  calm (V+ A-)   calm, relaxed, peaceful, serene
( 0.0,  0.0)  (none)         neutral
============  =============  ==========================================

(:data:`MOODS` is the table.) A quadrant filter (``--quadrant calm``) uses the sign convention of
:mod:`moodscope.emotion` (a value of exactly zero counts as positive), not the distance to the centre.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..emotion import QUADRANT_NAMES, QUADRANT_TAGS, quadrant_index
from ..errors import UsageError

# -- moods ------------------------------------------------------------------------------------------------
#: synonyms of the quadrant tags of :mod:`moodscope.emotion` (each names the quadrant's centre)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "happy": ("joyful", "excited", "energetic", "cheerful"),
    "angry": ("tense", "aggressive", "anxious"),
    "sad": ("depressed", "melancholic", "gloomy"),
    "calm": ("relaxed", "peaceful", "serene"),
}


def _quadrant_centres() -> dict[str, tuple[float, float]]:
    """``{quadrant tag: centre}``, the centre (±0.5, ±0.5) found through :func:`quadrant_index`."""
    centres = {}
    for v in (0.5, -0.5):
        for a in (0.5, -0.5):
            centres[QUADRANT_TAGS[int(quadrant_index(v, a))]] = (v, a)
    return centres


#: the quadrant centres
CENTRES: dict[str, tuple[float, float]] = _quadrant_centres()

#: every named mood point: the quadrant tags, their synonyms and ``neutral`` (the origin)
MOODS: dict[str, tuple[float, float]] = {
    **CENTRES,
    **{syn: CENTRES[q] for q, syns in SYNONYMS.items() for syn in syns},
    "neutral": (0.0, 0.0),
}

#: what ``--tag NAME`` without ``:MIN`` asks of a tag's probability
DEFAULT_TAG_MIN = 0.5

#: the columns of ``query`` results in CSV order (the store's scalar columns)
SCALAR_COLUMNS = (
    "path", "model_id", "content_hash", "size", "mtime_ns", "model", "duration_s", "valence", "arousal",
    "quadrant", "hop_s", "seconds", "added",
)  # fmt: skip
FULL_COLUMNS = ("curve_valence", "curve_arousal", "result")
#: ``--sort`` keys that are columns (anything else must be a tag of the model)
SORT_COLUMNS = {
    "valence": "valence",
    "arousal": "arousal",
    "duration": "duration_s",
    "path": "path",
    "added": "added",
}
#: ``--format`` values, and the format an ``--out`` file's extension implies
FORMATS = ("table", "csv", "jsonl", "m3u")
FORMAT_BY_SUFFIX = {
    ".m3u": "m3u",
    ".m3u8": "m3u",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "table",
}


def mood_list() -> str:
    groups = [f"{'/'.join((q, *SYNONYMS[q]))} {point_text(CENTRES[q])}" for q in QUADRANT_TAGS]
    return "; ".join([*groups, f"neutral {point_text(MOODS['neutral'])}"])


def point_text(p: Sequence[float]) -> str:
    return f"({p[0]:+.2f},{p[1]:+.2f})"


def parse_point(text: str | Sequence[float], what: str = "mood") -> tuple[float, float]:
    """A mood name of :data:`MOODS` (any case) or ``"V,A"`` (or a pair of numbers), both in [-1, 1]."""
    if not isinstance(text, str):
        pair = tuple(text)
        if len(pair) != 2:
            raise UsageError(f"{what}: a point is two numbers (valence, arousal), got {pair!r}")
        return _check_point(pair, what, repr(pair))
    name = text.strip().lower()
    if name in MOODS:
        return MOODS[name]
    parts = name.split(",")
    if len(parts) == 2:
        try:
            pair = (float(parts[0]), float(parts[1]))
        except ValueError:
            pass
        else:
            return _check_point(pair, what, repr(text))
    raise UsageError(f"{what}: unknown mood {text!r} (known: {mood_list()}; or a point V,A such as 0.5,-0.2)")


def _check_point(pair, what: str, shown: str) -> tuple[float, float]:
    try:
        v, a = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        raise UsageError(f"{what}: {shown} is not a point V,A") from None
    if not (math.isfinite(v) and math.isfinite(a) and -1 <= v <= 1 and -1 <= a <= 1):
        raise UsageError(f"{what}: point {shown} is outside [-1, 1] x [-1, 1]")
    return v, a


def parse_range(text: str | Sequence[float | None] | None, what: str) -> tuple[float | None, float | None]:
    """``"LO,HI"`` (either side may be empty: open) or a pair ``(lo, hi)`` (None: open); within [-1, 1]."""
    if text is None:
        return None, None
    if isinstance(text, str):
        parts = text.split(",")
        if len(parts) != 2:
            raise UsageError(f"{what} {text!r}: give LO,HI (e.g. 0.2,1; 0.2, for >= 0.2; ,-0.3 for <= -0.3)")
        try:
            bounds = [float(p) if p.strip() else None for p in parts]
        except ValueError:
            raise UsageError(f"{what} {text!r}: LO and HI must be numbers (e.g. 0.2,1)") from None
    else:
        bounds = list(text)
        if len(bounds) != 2:
            raise UsageError(f"{what} {text!r}: give (lo, hi)")
        try:
            bounds = [None if b is None else float(b) for b in bounds]
        except (TypeError, ValueError):
            raise UsageError(f"{what} {text!r}: lo and hi must be numbers or None") from None
    lo, hi = bounds
    if lo is None and hi is None:
        raise UsageError(f"{what} {text!r}: empty range (give LO, HI or both)")
    for b in (lo, hi):
        if b is not None and not (math.isfinite(b) and -1 <= b <= 1):
            raise UsageError(f"{what} {text!r}: bounds must be within [-1, 1]")
    if lo is not None and hi is not None and lo > hi:
        raise UsageError(f"{what} {text!r}: LO {lo:g} is above HI {hi:g}")
    return lo, hi


def parse_tag(spec: str | tuple[str, float]) -> tuple[str, float]:
    """``"NAME"`` (probability >= :data:`DEFAULT_TAG_MIN`), ``"NAME:MIN"`` or ``(name, min)``; MIN in [0, 1]."""
    if isinstance(spec, str):
        name, sep, lo = spec.rpartition(":")
        if not sep:
            name, lo = spec, None
        try:
            p = DEFAULT_TAG_MIN if lo is None else float(lo)
        except ValueError:
            raise UsageError(f"--tag {spec!r}: give NAME or NAME:MIN (e.g. happy:0.3)") from None
    else:
        name, p = spec
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise UsageError(f"tag {spec!r}: the minimum probability must be a number") from None
    name = name.strip()
    if not name:
        raise UsageError(f"--tag {spec!r}: no tag name")
    if not (math.isfinite(p) and 0 <= p <= 1):
        raise UsageError(f"--tag {spec!r}: the minimum probability must be within [0, 1]")
    return name, p


def parse_quadrants(spec: str | Iterable[str] | None) -> list[int]:
    """Quadrant names (tags, synonyms or display names such as ``calm (V+ A-)``), comma-separated or a list,
    as indices into :data:`moodscope.emotion.QUADRANT_TAGS`."""
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
    out = []
    for item in items:
        name = item.strip().lower()
        if name in (n.lower() for n in QUADRANT_NAMES):
            name = name.split(" (")[0]
        if name not in MOODS or name == "neutral":
            raise UsageError(
                f"--quadrant {item.strip()!r}: not a quadrant (known: "
                + "; ".join("/".join((q, *SYNONYMS[q])) for q in QUADRANT_TAGS)
                + ")"
            )
        q = int(quadrant_index(*MOODS[name]))
        if q not in out:
            out.append(q)
    return out


def parse_sort(spec: str | Iterable[str] | None) -> list[tuple[str, bool]]:
    """``"valence,-arousal"`` or a list of keys: ``[(key, descending)]``; a key is a column of
    :data:`SORT_COLUMNS` or a tag name (checked against the store later)."""
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    keys = []
    for item in items:
        key = item.strip()
        desc = key.startswith("-")
        key = key.lstrip("-+").strip()
        if not key:
            raise UsageError(f"--sort {spec!r}: empty key (keys: {', '.join(SORT_COLUMNS)} or a tag name)")
        keys.append((key, desc))
    return keys
