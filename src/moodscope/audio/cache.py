"""The feature cache: log-Mel arrays keyed by a content hash of the audio plus the feature settings, and ``moodscope features``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import FeatureConfig
from ..errors import AudioError, UsageError
from ..fileio import cache_root
from . import content
from .decode import audio_info, load_audio, native_span
from .features import (
    DEFAULT_FEATURES,
    compute_features,
    extra_features,
    iter_file_features,
    musicnn_file_features,
)

#: Bump when the feature computation changes in a way that invalidates cached arrays.
CACHE_VERSION = 1


#: ``file_features`` decodes files (regions) longer than this in chunks to bound memory
#: (``MOODSCOPE_LONG_FILE_S`` overrides it: ``benchmarks/long_track_memory.py`` measures both roads).
LONG_FILE_S = 600.0
#: The same for MusiCNN features, read in blocks in two passes beyond it: a 5-minute 48 kHz stereo track read
#: whole peaks at about 0.77 GB, a 10-minute one at 1.2 GB.
MUSICNN_LONG_FILE_S = 300.0


def long_file_s(kind: str = "logmel") -> float:
    """:data:`LONG_FILE_S` (:data:`MUSICNN_LONG_FILE_S` for ``kind="musicnn"``), or ``MOODSCOPE_LONG_FILE_S``
    when set to a positive number."""
    default = MUSICNN_LONG_FILE_S if kind == "musicnn" else LONG_FILE_S
    try:
        value = float(os.environ.get("MOODSCOPE_LONG_FILE_S", ""))
    except ValueError:
        return default
    return value if value > 0 and value == value else default


def default_cache_dir() -> Path:
    """``$MOODSCOPE_CACHE/features`` if ``MOODSCOPE_CACHE`` is set, else ``~/.cache/moodscope/features``.

    ``MOODSCOPE_CACHE`` is moodscope's cache root (the synthetic corpus lives there too).
    """
    return cache_root() / "features"


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` as ``.npy`` through a temporary file in the same directory + rename.

    Readers never see a partial file; the temporary file is removed if writing fails.
    """
    from ..fileio import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    return path


class FeatureCache:
    """Content-addressed on-disk cache of feature arrays.

    The key is the sha256 of the file's bytes (streamed), the feature settings
    (:meth:`FeatureConfig.key`), the ``offset``/``duration`` read and :data:`CACHE_VERSION`, so a renamed
    file hits and an edited file or a changed setting misses. Entries are ``<root>/<k[:2]>/<k>.npy``,
    written atomically. An entry that does not load or fails the checks (2-D float32, ``n_bins``
    columns, at least one frame, all finite) is removed and reported as a miss.

    Parameters
    ----------
    root : path-like, optional
        Cache directory; default :func:`default_cache_dir`.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self._hashes: dict[tuple, str] = {}

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    def file_hash(self, path: str | os.PathLike) -> str:
        """sha256 hex digest of a file's bytes (remembered per path, size and mtime within this object)."""
        path = Path(path)
        st = path.stat()
        ident = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
        if ident not in self._hashes:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self._hashes[ident] = h.hexdigest()
        return self._hashes[ident]

    def key(
        self,
        path: str | os.PathLike,
        config: FeatureConfig = DEFAULT_FEATURES,
        *,
        offset: float = 0.0,
        duration: float | None = None,
    ) -> str:
        """Cache key of ``path``'s features for ``config`` and the region ``offset``/``duration``."""
        region = f"{float(offset)!r}:{None if duration is None else float(duration)!r}"
        parts = [f"v{CACHE_VERSION}", self.file_hash(path), config.key(), region]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def entry(self, key: str) -> Path:
        """Path of the ``.npy`` file for ``key``."""
        return self.root / key[:2] / f"{key}.npy"

    def load(self, key: str, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray | None:
        """The cached array for ``key``, or ``None`` (missing, or corrupted and now removed)."""
        p = self.entry(key)
        if not p.is_file():
            return None
        try:
            arr = np.load(p, allow_pickle=False)
            ok = (
                isinstance(arr, np.ndarray)
                and arr.dtype == np.float32
                and arr.ndim == 2
                and arr.shape[0] > 0
                and arr.shape[1] == config.n_bins
                and bool(np.isfinite(arr).all())
            )
        except Exception:  # any failure to read means a corrupted entry
            ok = False
        if not ok:
            p.unlink(missing_ok=True)
            return None
        return arr

    def save(self, key: str, array: np.ndarray) -> Path:
        """Store ``array`` under ``key`` atomically; returns the entry's path."""
        return save_npy_atomic(self.entry(key), np.ascontiguousarray(array, dtype=np.float32))

    def save_notes(self, key: str, notes: list[str]) -> None:
        """Keep the content notes (:mod:`moodscope.audio.content`) of the audio under ``key`` beside its features
        (nothing is written when there are none)."""
        if notes:
            from ..fileio import atomic_path

            with atomic_path(self.entry(key).with_suffix(".notes.json")) as tmp:
                tmp.write_text(json.dumps(list(notes)))

    def notes(self, key: str) -> list[str]:
        """The content notes kept for ``key`` (none kept, or unreadable: ``[]``)."""
        p = self.entry(key).with_suffix(".notes.json")
        try:
            got = json.loads(p.read_text()) if p.is_file() and p.stat().st_size < 65536 else []
        except (OSError, ValueError):
            return []
        return [str(n) for n in got] if isinstance(got, list) else []

    def clear(self) -> None:
        """Remove every cached entry."""
        if self.root.is_dir():
            for p in [*self.root.glob("*/*.npy"), *self.root.glob("*/*.notes.json")]:
                p.unlink(missing_ok=True)


def _resolve_cache(cache: FeatureCache | bool | None) -> FeatureCache | None:
    if cache is None or cache is True:
        return FeatureCache()
    if cache is False:
        return None
    if isinstance(cache, FeatureCache):
        return cache
    raise TypeError(f"cache must be a FeatureCache, True, False or None, not {type(cache).__name__}")


def file_features(
    path: str | os.PathLike,
    config: FeatureConfig = DEFAULT_FEATURES,
    *,
    cache: FeatureCache | bool | None = None,
    device: str = "cpu",
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Features of an audio file (decoded with :func:`~moodscope.audio.decode.load_audio` at ``config.sr``).

    Parameters
    ----------
    path : path-like
    config : FeatureConfig
    cache : FeatureCache, bool or None
        ``None`` or ``True``: the default cache (:func:`default_cache_dir`); ``False``: no cache;
        or a :class:`FeatureCache`.
    device : str
        Torch device for the feature computation.
    offset, duration : float
        Region of the file in seconds (as in ``load_audio``).

    Returns
    -------
    np.ndarray [shape=(frames, n_bins), dtype=float32]

    Raises
    ------
    AudioError
        Bad input, as :func:`~moodscope.audio.decode.load_audio`.

    Notes
    -----
    A cache that cannot be written (read-only, full) gives a ``RuntimeWarning``, not an error.
    Regions longer than :data:`LONG_FILE_S` seconds are decoded chunk by chunk (:func:`iter_file_features`;
    MusiCNN features: :func:`~moodscope.audio.features.musicnn_file_features`), so peak memory is a block of
    audio plus the result.
    """
    store = _resolve_cache(cache)
    info = audio_info(path)  # bad input fails here, before the file is hashed
    start, stop = native_span(info, offset, duration, path=path)
    # the cache stores the features without extras; the extras (mode: ~0.1 s for 3 minutes) are computed
    # from the audio each time, decoded once with the features when those are not cached
    base = config.without_extras()
    key = feats = y = whole = None
    long = (stop - start) / info.samplerate > long_file_s(base.kind)
    if store is not None:
        key = store.key(path, base, offset=offset, duration=duration)
        feats = store.load(key, base)
    if feats is None:
        # measured whenever features are cached, so that a later hit can tell what a decode would have
        measure = content.collect() if store is not None else contextlib.nullcontext([])
        with measure as notes:
            if base.kind == "musicnn" and long:  # read in blocks, twice: memory bounded
                whole = musicnn_file_features(path, config, offset=offset, duration=duration, device=device)
                feats = whole[:, : base.n_bins]
            elif base.streams and long:
                blocks = iter_file_features(path, base, offset=offset, duration=duration, device=device)
                feats = np.concatenate(list(blocks), axis=0)
                if base.kind == "logmel" and base.compression == "db" and base.top_db is not None:
                    feats = np.maximum(feats, feats.max() - np.float32(base.top_db))
            else:
                y = load_audio(path, sr=config.sr, offset=offset, duration=duration)
                feats = compute_features(y, base, device=device)
        content.report_notes(notes)
        if store is not None:
            try:
                store.save(key, feats)
                store.save_notes(key, notes)
            except OSError as e:  # a read-only or full cache must not cost the user the result
                warnings.warn(
                    f"{path}: features not cached in {store.root} ({e})", RuntimeWarning, stacklevel=2
                )
    elif not config.extras:  # a hit, no audio decoded: the notes kept with the features
        content.report_notes(store.notes(key))
    if not config.extras:
        return feats
    if whole is not None:
        return whole
    if long and base.kind == "musicnn":  # a hit: the extras of a long file in blocks too (measured then)
        return musicnn_file_features(path, config, offset=offset, duration=duration, device=device)
    if y is None:  # a hit: decoded for the extras, and measured then
        y = load_audio(path, sr=config.sr, offset=offset, duration=duration)
    return np.concatenate([feats, extra_features(y, config, len(feats)).numpy()], axis=1)


class Extraction(NamedTuple):
    """What :func:`extract_to_dir` did: unpack as ``written, failures = extract_to_dir(...)``."""

    written: list[Path]
    """The ``.npy`` files written, in input order."""
    failures: list[tuple[Path, str]]
    """Each input that failed, with the cause (e.g. ``"silent: every sample is zero"``)."""


def extract_to_dir(
    paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: FeatureConfig = DEFAULT_FEATURES,
    *,
    cache: FeatureCache | bool | None = None,
    device: str = "cpu",
) -> Extraction:
    """Write the features of each audio file to ``out_dir/<stem>.npy`` (atomically).

    Bad files do not stop the batch: each failure is recorded with its cause and the other files are
    still written; the caller reports the failures (``moodscope features AUDIO... --out DIR`` prints
    one line per failed file and exits non-zero).

    Parameters
    ----------
    paths : iterable of path-like
        Audio files. Two inputs with the same stem would write the same output: ``ValueError``
        before anything is written.
    out_dir : path-like
        Created if missing.
    config, cache, device
        As in :func:`file_features`.

    Returns
    -------
    Extraction
        ``(written, failures)``: the written ``.npy`` paths in input order, and ``(path, cause)``
        for each input that failed (bad audio, :class:`~moodscope.errors.AudioError`, or an OS error).

    Examples
    --------
    >>> written, failures = extract_to_dir(["a.mp3", "b.flac"], "feats/")  # doctest: +SKIP
    """
    paths = [Path(p) for p in paths]
    out_dir = Path(out_dir)
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen:
            raise UsageError(f"{seen[p.stem]} and {p} would both write {out_dir / (p.stem + '.npy')}")
        seen[p.stem] = p
    out_dir.mkdir(parents=True, exist_ok=True)
    result = Extraction([], [])
    for p in paths:
        try:
            result.written.append(
                save_npy_atomic(
                    out_dir / f"{p.stem}.npy", file_features(p, config, cache=cache, device=device)
                )
            )
        except AudioError as e:
            result.failures.append((p, e.cause))
        except OSError as e:
            result.failures.append((p, e.strerror or str(e)))
    return result
