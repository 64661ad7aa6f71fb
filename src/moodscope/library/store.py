"""The results store of a library run: one SQLite file, ``OUT/moodscope.sqlite``.

Why SQLite rather than Parquet: a library run appends one track at a time for hours, may be killed at any
moment, and is queried while or after it runs. SQLite (in the standard library: nothing to install) commits
each track in its own transaction in write-ahead-log mode, so a ``kill -9`` loses at most the tracks in
flight and never leaves a half-written row or a corrupt file, and ``moodscope query`` filters and sorts with
SQL on an index. Parquet is immutable once written: appends would be a growing heap of part files to compact.
``moodscope query OUT --format csv`` (or ``jsonl``) exports it when a data tool wants a flat table.

One row per (file path, model id):

========================  ====================================================================================
``path``                  the file as given (absolute)
``content_hash``          BLAKE2b-128 of the file's bytes: a file that moved or is a duplicate is not recomputed
``size``, ``mtime_ns``    what a re-run compares first, so unchanged files are not even re-read
``model_id``              the model's name and the first 16 hex digits of the SHA-256 of its model file
``duration_s``            seconds of audio
``valence``, ``arousal``  the static point, [-1, 1] (NULL where the model gives none)
``quadrant``              e.g. ``calm (V+ A-)``
``tags``                  JSON object ``{tag: probability}`` (NULL for models without tags)
``hop_s``, ``curve_valence``, ``curve_arousal``  the curve every ``hop_s`` seconds, JSON arrays (NULL for static
                          models); ``times_s[i] = i * hop_s``
``result``                the whole JSON object ``moodscope predict`` prints for the track
``seconds``, ``added``    compute time and when the row was written (Unix time)
========================  ====================================================================================

Failed files are kept in a second table, ``failures`` (path, model id, error, when), and retried by the next
run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError, shown_path, text_path
from ..fileio import json_text

STORE_NAME = "moodscope.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (
    path TEXT NOT NULL,
    model_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    model TEXT,
    duration_s REAL,
    valence REAL,
    arousal REAL,
    quadrant TEXT,
    tags TEXT,
    hop_s REAL,
    curve_valence TEXT,
    curve_arousal TEXT,
    result TEXT NOT NULL,
    seconds REAL,
    added REAL NOT NULL,
    PRIMARY KEY (path, model_id)
);
CREATE INDEX IF NOT EXISTS tracks_by_hash ON tracks (content_hash, model_id);
CREATE INDEX IF NOT EXISTS tracks_by_va ON tracks (model_id, valence, arousal);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT NOT NULL,
    model_id TEXT NOT NULL,
    error TEXT NOT NULL,
    added REAL NOT NULL,
    PRIMARY KEY (path, model_id)
);
"""

#: the columns of ``tracks``, in order
COLUMNS = (
    "path", "model_id", "content_hash", "size", "mtime_ns", "model", "duration_s", "valence", "arousal",
    "quadrant", "tags", "hop_s", "curve_valence", "curve_arousal", "result", "seconds", "added",
)  # fmt: skip


def content_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """BLAKE2b-128 (hex) of a file's bytes, read in 1 MiB pieces."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_id(model_path: str | os.PathLike, name: str) -> str:
    """``<name>-<first 16 hex digits of the model file's SHA-256>``: a retrained model is another model."""
    h = hashlib.sha256()
    with open(model_path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return f"{name}-{h.hexdigest()[:16]}"


@dataclass(frozen=True)
class FileKey:
    """What identifies a file's content cheaply (``size``, ``mtime_ns``) and exactly (``content_hash``)."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike) -> FileKey:
        st = os.stat(path)
        return cls(text_path(Path(path).absolute()), st.st_size, st.st_mtime_ns)


def row_from_result(res, key: FileKey, digest: str, mid: str) -> dict:
    """The ``tracks`` row of one :class:`~moodscope.inference.predictor.Result`."""
    d = json.loads(json_text(res.to_dict()))
    dyn = d.get("dynamic") or {}
    static = d.get("static") or {}
    return {
        "path": key.path,
        "model_id": mid,
        "content_hash": digest,
        "size": key.size,
        "mtime_ns": key.mtime_ns,
        "model": d.get("model"),
        "duration_s": d.get("duration_s"),
        "valence": static.get("valence"),
        "arousal": static.get("arousal"),
        "quadrant": d.get("quadrant") or None,
        "tags": json_text(d["tags"]) if d.get("tags") is not None else None,
        "hop_s": dyn.get("hop_s"),
        "curve_valence": json_text(dyn["valence"]) if dyn else None,
        "curve_arousal": json_text(dyn["arousal"]) if dyn else None,
        "result": json_text(d),
        "seconds": d.get("seconds"),
        "added": time.time(),
    }


class ResultStore:
    """``OUT/moodscope.sqlite``: open (or create) it, look up what is done, add tracks one transaction each.

    One process writes (the run's driver); any number may read. Use as a context manager or :meth:`close`.
    """

    def __init__(self, folder: str | os.PathLike, *, create: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / STORE_NAME
        if not create and not self.path.is_file():
            raise OutputError(
                f"{shown_path(self.folder)}: no results store here ({STORE_NAME}); run predict --out first"
            )
        try:
            self.db = self._connect(create)
            self.db.row_factory = sqlite3.Row
            if create:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process never corrupts
                self.db.executescript(_SCHEMA)
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            version = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise OutputError(f"{shown_path(self.path)}: not a moodscope results store ({e})") from None
        if version is None or int(version[0]) > SCHEMA_VERSION:
            raise OutputError(
                f"{shown_path(self.path)}: results store of a newer moodscope (schema {version and version[0]})"
            )

    def _connect(self, create: bool) -> sqlite3.Connection:
        """Read-write for a run; read-only for ``create=False`` (``query``, ``playlist``), so that a store on a
        read-only disk or folder can be read: SQLite's WAL mode wants to create ``-shm``/``-wal`` files beside
        the store even to read, and where it cannot, the store is opened as immutable (nobody can be writing
        to a folder that cannot be written)."""
        if create:
            return sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        from urllib.parse import quote

        uri = "file:" + quote(str(self.path.absolute()))
        db = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=30.0, isolation_level=None)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError as e:
            db.close()
            if (
                os.access(self.folder, os.W_OK)
                and "readonly" not in str(e)
                and "unable to open" not in str(e)
            ):
                raise
        return sqlite3.connect(uri + "?immutable=1", uri=True, timeout=30.0, isolation_level=None)

    # -- what is done ------------------------------------------------------------------------------------
    def unchanged(self, key: FileKey, mid: str) -> bool:
        """True when ``key.path`` has a row for ``mid`` with the same size and modification time."""
        r = self.db.execute(
            "SELECT size, mtime_ns FROM tracks WHERE path = ? AND model_id = ?", (key.path, mid)
        ).fetchone()
        return r is not None and (r["size"], r["mtime_ns"]) == (key.size, key.mtime_ns)

    def row(self, path: str, mid: str) -> dict | None:
        r = self.db.execute(
            "SELECT * FROM tracks WHERE path = ? AND model_id = ?", (text_path(path), mid)
        ).fetchone()
        return dict(r) if r is not None else None

    def has_path(self, path: str) -> bool:
        """True when any model's row (or failure) names ``path``: moodscope has analysed that file here."""
        q = "SELECT 1 FROM tracks WHERE path = ? UNION ALL SELECT 1 FROM failures WHERE path = ? LIMIT 1"
        return self.db.execute(q, (text_path(path), text_path(path))).fetchone() is not None

    def by_hash(self, digest: str, mid: str) -> dict | None:
        """A row of the same content for ``mid`` (a duplicate or moved file), or None."""
        r = self.db.execute(
            "SELECT * FROM tracks WHERE content_hash = ? AND model_id = ? LIMIT 1", (digest, mid)
        ).fetchone()
        return dict(r) if r is not None else None

    def done_paths(self, mid: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT path FROM tracks WHERE model_id = ?", (mid,))}

    # -- writing ----------------------------------------------------------------------------------------
    def add(self, row: dict) -> None:
        """Insert or replace one track (one transaction: all of it or nothing); clears its failure."""
        cols = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        row = {**row, "path": text_path(row["path"])}
        with self._transaction():
            self.db.execute(
                f"INSERT OR REPLACE INTO tracks ({cols}) VALUES ({marks})",
                [text_path(row[c]) if isinstance(row[c], str) else row[c] for c in COLUMNS],
            )
            self.db.execute(
                "DELETE FROM failures WHERE path = ? AND model_id = ?", (row["path"], row["model_id"])
            )

    def add_failure(self, path: str, mid: str, error: str) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?)",
                (text_path(path), mid, text_path(error), time.time()),
            )

    def prune(self, roots: list[str], present: set[str]) -> list[str]:
        """Remove the tracks and failures, of every model, whose path lies below one of the folders ``roots``
        (absolute, as stored) and is not in ``present`` (what a scan of them found now); return those paths."""
        prefixes = [r.rstrip(os.sep) + os.sep for r in roots]
        stored = {r[0] for r in self.db.execute("SELECT path FROM tracks UNION SELECT path FROM failures")}
        gone = sorted(p for p in stored if p not in present and any(p.startswith(x) for x in prefixes))
        with self._transaction():
            for p in gone:
                self.db.execute("DELETE FROM tracks WHERE path = ?", (p,))
                self.db.execute("DELETE FROM failures WHERE path = ?", (p,))
        return gone

    def _transaction(self):
        """One write transaction; a write SQLite refuses (a full disk, an I/O error, a store made read-only
        under the run) becomes one :class:`OutputError` line -- what was committed before stays, so a later
        run resumes from there."""
        db, path = self.db, self.path

        def refused(e: sqlite3.Error) -> OutputError:
            return OutputError(
                f"{shown_path(path)}: cannot write ({e}); the tracks finished before are kept -- free space or "
                "fix the folder and run again to resume"
            )

        class _Tx:
            def __enter__(self):
                try:
                    db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    raise refused(e) from None

            def __exit__(self, exc_type, exc, tb):
                try:
                    if exc_type is None:
                        db.execute("COMMIT")
                    else:
                        db.execute("ROLLBACK")
                except sqlite3.Error as e:
                    if exc_type is None:
                        raise refused(e) from None
                if isinstance(exc, sqlite3.Error):
                    raise refused(exc) from None
                return False

        return _Tx()

    # -- reading ----------------------------------------------------------------------------------------
    def tracks(self, mid: str | None = None) -> Iterator[dict]:
        """Every row (of one model id, or all), as dicts; JSON columns decoded."""
        sql, args = (
            ("SELECT * FROM tracks", ())
            if mid is None
            else ("SELECT * FROM tracks WHERE model_id = ?", (mid,))
        )
        for r in self.db.execute(sql + " ORDER BY path", args):
            yield decode_row(dict(r))

    def failures(self, mid: str | None = None) -> list[dict]:
        sql, args = (
            ("SELECT * FROM failures", ())
            if mid is None
            else ("SELECT * FROM failures WHERE model_id = ?", (mid,))
        )
        return [dict(r) for r in self.db.execute(sql + " ORDER BY path", args)]

    def model_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT model_id FROM tracks ORDER BY model_id")]

    def count(self, mid: str | None = None) -> int:
        if mid is None:
            return self.db.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM tracks WHERE model_id = ?", (mid,)).fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_row(row: dict) -> dict:
    """A ``tracks`` row with its JSON columns (tags, curves) decoded. A column that is not the JSON moodscope
    writes (a store damaged by hand or by another program) becomes ``None`` and is named in ``row["damaged"]``,
    as is a valence/arousal that is not a finite number; readers show such values as missing and say so."""
    damaged = []
    for c, kind in (("tags", dict), ("curve_valence", list), ("curve_arousal", list)):
        if row.get(c) is not None:
            try:
                value = json.loads(row[c])
            except (TypeError, ValueError):
                value = None
            if not isinstance(value, kind):
                damaged.append(c)
                value = None
            row[c] = value
    for c in ("valence", "arousal"):
        v = row.get(c)
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
            damaged.append(c)
            row[c] = None
    if damaged:
        row["damaged"] = damaged
    return row
