"""The feature cache: log-Mel arrays keyed by a content hash of the audio plus the feature settings, and ``moodscope features``."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import FeatureConfig
from ..errors import AudioError, UsageError
from ..fileio import cache_root
from . import content
from .features import DEFAULT_FEATURES, features_of
from .source import Source

#: Bump when the feature computation changes in a way that invalidates cached arrays.
CACHE_VERSION = 1


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


def cached_features(
    source: Source,
    config: FeatureConfig = DEFAULT_FEATURES,
    *,
    cache: FeatureCache | bool | None = None,
    device: str = "cpu",
    stream: bool = False,
) -> Iterator[np.ndarray]:
    """:func:`~moodscope.audio.features.features_of`, wrapped by the feature cache: the same blocks of rows.

    Without a cache (``cache=False``, or an array source) it is that road as it is. With one, a file's rows
    (without ``extras``) are kept under a hash of its content and the settings: a hit yields them, with the
    extras computed from the audio (the mode features, ~0.1 s for 3 minutes) and the content notes kept with
    them; a miss computes them whole (``stream`` does not apply: the cache keeps the whole road's rows) and
    keeps them. A cache that cannot be written (read-only, full) gives a ``RuntimeWarning``, not an error.
    """
    store = _resolve_cache(cache)
    if store is None or source.path is None:
        yield from features_of(source, config, device=device, stream=stream)
        return
    base = config.without_extras()
    key = store.key(source.path, base, offset=source.offset, duration=source.duration)
    feats = store.load(key, base)
    if feats is not None:  # a hit: the notes kept with the rows; the audio is read only for the extras
        content.report_notes(store.notes(key))
        if not config.extras:
            yield feats
            return
        with content.collect():  # measured when the rows were kept
            blocks = list(features_of(source, config, device=device, cached=feats))
        yield from blocks
        return
    # measured whenever rows are kept, so that a later hit can tell what a decode would have
    with content.collect() as notes:
        blocks = list(features_of(source, config, device=device))
    content.report_notes(notes)
    try:
        store.save(key, np.concatenate(blocks, axis=0)[:, : base.n_bins])
        store.save_notes(key, notes)
    except OSError as e:  # a read-only or full cache must not cost the user the result
        warnings.warn(
            f"{source.path}: features not cached in {store.root} ({e})", RuntimeWarning, stacklevel=2
        )
    yield from blocks


def file_features(
    path: str | os.PathLike,
    config: FeatureConfig = DEFAULT_FEATURES,
    *,
    cache: FeatureCache | bool | None = None,
    device: str = "cpu",
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Features of an audio file (decoded with :func:`~moodscope.audio.decode.load_audio` at ``config.sr``):
    :func:`cached_features` of the file, as one array.

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
    Regions longer than :func:`~moodscope.audio.source.long_file_s` seconds are decoded block by block
    (:func:`~moodscope.audio.features.features_of`), so peak memory is a block of audio plus the result.
    """
    source = Source.file(path, config.sr, offset=offset, duration=duration)  # bad input fails before the hash
    return np.concatenate(list(cached_features(source, config, cache=cache, device=device)), axis=0)


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
