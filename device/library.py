"""The examples library: every example taught, kept in SQLite (standard library only).

An example is what one frame taught: its class, when and how it was taken (``button``,
``phone``, ``inbox``, ``import``), the model-input-sized crop it was computed from (a
small JPEG the caller encodes, so it can be shown and embedded again with another
model) and its embedding under one or more models.  Classes have names.  A head is
derived from the library (:meth:`ExampleLibrary.embeddings`), so the library is the one
source of truth; migrated ``head.npz`` states become per-class *seeds* (their sums and
counts) that a head starts from.

Durability: WAL journal, ``synchronous=FULL``, one transaction per call (a burst is one
:meth:`~ExampleLibrary.add` call, never one per frame); a database that fails
``PRAGMA quick_check`` at open is moved aside, never deleted, and the last good backup
(:meth:`~ExampleLibrary.backup`) is used instead.  Size is capped per class and in total
bytes; :class:`LibraryFull` says which cap and what to do.

Threads: one connection for writing, guarded by a lock (the appliance gives it one writer
thread); :meth:`~ExampleLibrary.reader` opens a read-only connection for another thread.
No pickle: embeddings are raw little-endian arrays with their dtype and length.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .atomic import fsync_dir
from .errors import StateError, TeachboxError
from .vocab import ExampleSource

log = logging.getLogger(__name__)

DB_NAME = "examples.db"
BACKUP_SUFFIX = ".bak"
SCHEMA_VERSION = 1
SOURCES = tuple(source.value for source in ExampleSource)
EMBEDDING_DTYPES = {"uint8", "int8", "float16", "float32"}
MAX_DIM = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    class INTEGER NOT NULL,
    burst INTEGER NOT NULL,
    taken REAL NOT NULL,
    source TEXT NOT NULL,
    crop BLOB
);
CREATE INDEX IF NOT EXISTS examples_by_class ON examples (class, id);
CREATE INDEX IF NOT EXISTS examples_by_burst ON examples (burst);
CREATE TABLE IF NOT EXISTS embeddings (
    example INTEGER NOT NULL REFERENCES examples (id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dtype TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (example, model)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seeds (
    class INTEGER NOT NULL,
    model TEXT NOT NULL,
    sums BLOB NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (class, model)
);
"""


class LibraryFull(TeachboxError, OSError):
    """A size cap of the library is reached: nothing of the batch was stored."""


class LibraryError(StateError):
    """The library cannot be opened or read (the message says what to do)."""


class LibraryInUse(LibraryError):
    """Another teachbox (the service, most likely) has this library open for writing."""


@dataclass(frozen=True)
class Caps:
    """How much the library keeps: sized for an SD card (a 224x224 JPEG crop is ~10 KB)."""

    per_class: int = 2000
    total_bytes: int = 512 << 20


@dataclass(frozen=True)
class NewExample:
    """One example to store: ``embedding`` under ``model`` (its sha256), ``crop`` JPEG bytes or ``None``."""

    class_id: int
    embedding: np.ndarray
    crop: Optional[bytes] = None
    source: str = "button"
    taken: Optional[float] = None


@dataclass(frozen=True)
class ExampleInfo:
    id: int
    class_id: int
    taken: float
    source: str
    has_crop: bool


def encode_vector(vector: np.ndarray) -> Tuple[str, bytes]:
    array = np.asarray(vector).reshape(-1)
    if array.dtype.name not in EMBEDDING_DTYPES:
        raise ValueError(f"embeddings are stored as {', '.join(sorted(EMBEDDING_DTYPES))}, not {array.dtype}")
    if not 1 <= array.size <= MAX_DIM:
        raise ValueError(f"an embedding has 1 to {MAX_DIM} values, not {array.size}")
    return array.dtype.name, array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def decode_vector(dtype: str, data: bytes, dim: int) -> np.ndarray:
    """The stored vector, checked against ``dim`` before anything else is made of it."""
    if dtype not in EMBEDDING_DTYPES:
        raise LibraryError(f"a stored embedding has the unknown type {dtype!r}")
    kind = np.dtype(dtype).newbyteorder("<")
    if len(data) != dim * kind.itemsize:
        raise LibraryError(f"a stored embedding has {len(data)} bytes, expected {dim} values of {dtype}")
    return np.frombuffer(data, dtype=kind).astype(dtype)


class ExampleLibrary:
    """
    :param directory: the state folder (the database is ``examples.db`` in it).
    :param caps: the size caps.
    :param clock: wall-clock seconds for ``taken`` (tests pass their own).
    """

    def __init__(self, directory, *, caps: Caps = Caps(), clock=time.time, exclusive: bool = True) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.caps = caps
        self._clock = clock
        self._lock = threading.Lock()
        self.recovered_from: Optional[str] = None  # why the database was set aside at open, if it was
        self.directory.mkdir(parents=True, exist_ok=True)
        self._owner = _take_ownership(self.directory) if exclusive else None
        try:
            self._db = self._open()
        except BaseException:
            if self._owner is not None:
                os.close(self._owner)
            raise

    def __repr__(self) -> str:
        return f"<ExampleLibrary {self.path} examples={self.count()}>"

    # -- opening ------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        problem = self._problem(self.path) if self.path.exists() else None
        if problem is not None:
            aside = self._set_aside(problem)
            backup = self.path.with_name(DB_NAME + BACKUP_SUFFIX)
            if backup.exists() and self._problem(backup) is None:
                shutil.copyfile(backup, self.path)
                log.error("the examples library was damaged (%s); it was moved to %s and the last good backup "
                          "is used", problem, aside.name)
            else:
                log.error("the examples library was damaged (%s); it was moved to %s and a new one is started",
                          problem, aside.name)
            self.recovered_from = problem
        db = _connect(self.path)
        with db:
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return db

    @staticmethod
    def _problem(path: Path) -> Optional[str]:
        """What is wrong with the database at ``path``, or ``None`` if it is sound and ours."""
        return database_problem(path, SCHEMA_VERSION)

    def _set_aside(self, why: str) -> Path:
        return set_aside(self.path)

    def reader(self) -> sqlite3.Connection:
        """A read-only connection for another thread (the page); close it when done."""
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._owner is not None:
                os.close(self._owner)
                self._owner = None

    def integrity(self) -> str:
        """``"ok"``, or what SQLite's full integrity check found."""
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def backup(self) -> None:
        """Copy the database to ``examples.db.bak`` atomically: the copy used if the database is damaged."""
        target = self.path.with_name(DB_NAME + BACKUP_SUFFIX)
        tmp = target.with_name(target.name + ".tmp")
        copy = sqlite3.connect(tmp)
        try:
            with self._lock:
                self._db.backup(copy)
            copy.close()
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            fsync_dir(self.directory)
        finally:
            copy.close()
            tmp.unlink(missing_ok=True)

    # -- writing (one transaction per call) -------------------------------------------------------
    def add(self, examples: Sequence[NewExample], *, model: str, continues: bool = False) -> List[int]:
        """Store a burst of examples (all or none, one burst: one undo); their ids.

        ``continues``: the examples belong to the newest burst (a long hold saved in parts).
        :class:`LibraryFull` if a cap is reached.
        """
        if not examples:
            return []
        rows = []
        for example in examples:
            if example.source not in SOURCES:
                raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {example.source!r}")
            rows.append((example, *encode_vector(example.embedding)))
        with self._lock, self._db:
            self._check_caps(examples, rows)
            burst = self._db.execute("SELECT COALESCE(MAX(burst), 0) + ? FROM examples",
                                     (0 if continues else 1,)).fetchone()[0] or 1
            ids = []
            for example, dtype, vector in rows:
                cursor = self._db.execute(
                    "INSERT INTO examples (class, burst, taken, source, crop) VALUES (?, ?, ?, ?, ?)",
                    (int(example.class_id), burst, example.taken if example.taken is not None else self._clock(),
                     example.source, example.crop))
                ids.append(cursor.lastrowid)
                self._db.execute("INSERT INTO embeddings (example, model, dtype, vector) VALUES (?, ?, ?, ?)",
                                 (cursor.lastrowid, model, dtype, vector))
            return ids

    def _check_caps(self, examples: Sequence[NewExample], rows) -> None:
        per_class: Dict[int, int] = {}
        for example in examples:
            per_class[example.class_id] = per_class.get(example.class_id, 0) + 1
        for class_id, adding in per_class.items():
            have = self._db.execute("SELECT COUNT(*) FROM examples WHERE class = ?", (class_id,)).fetchone()[0]
            if have + adding > self.caps.per_class:
                raise LibraryFull(f"class {class_id + 1} has {have} examples, the most a class keeps is "
                                  f"{self.caps.per_class}: delete some in the gallery first")
        adding_bytes = sum(len(e.crop or b"") + len(vector) for e, _, vector in rows)
        if self._bytes() + adding_bytes > self.caps.total_bytes:
            raise LibraryFull(f"the examples library holds {_size(self._bytes())}, the most it keeps is "
                              f"{_size(self.caps.total_bytes)}: delete examples in the gallery first")

    def add_embeddings(self, vectors: Iterable[Tuple[int, np.ndarray]], *, model: str) -> int:
        """Store embeddings of existing examples under another ``model`` (a model switch); how many."""
        rows = [(example_id, model, *encode_vector(vector)) for example_id, vector in vectors]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings (example, model, dtype, vector) "
                                 "VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def delete(self, ids: Iterable[int]) -> int:
        ids = [int(i) for i in ids]
        with self._lock, self._db:  # their embeddings go with them (ON DELETE CASCADE)
            return sum(self._db.execute("DELETE FROM examples WHERE id = ?", (i,)).rowcount for i in ids)

    def undo(self) -> Optional[Tuple[int, List[int]]]:
        """Forget the newest burst: ``(its class, the ids removed)``, or ``None`` when there is none.

        Bursts are kept on disk, so undo reaches back across restarts as far as the user likes.
        """
        with self._lock, self._db:
            row = self._db.execute("SELECT burst FROM examples ORDER BY burst DESC, id DESC LIMIT 1").fetchone()
            if row is None:
                return None
            rows = self._db.execute("SELECT id, class FROM examples WHERE burst = ? ORDER BY id", row).fetchall()
            self._db.execute("DELETE FROM examples WHERE burst = ?", row)
            return rows[-1][1], [example_id for example_id, _ in rows]

    def move(self, ids: Iterable[int], class_id: int) -> int:
        with self._lock, self._db:
            return sum(self._db.execute("UPDATE examples SET class = ? WHERE id = ?", (int(class_id), int(i))).rowcount
                       for i in ids)

    def clear_class(self, class_id: int) -> int:
        with self._lock, self._db:
            forgotten = self._db.execute("DELETE FROM examples WHERE class = ?", (class_id,)).rowcount
            self._db.execute("DELETE FROM seeds WHERE class = ?", (class_id,))
            return forgotten

    def clear_all(self) -> int:
        """Forget every example and starting point; class names stay."""
        with self._lock, self._db:
            forgotten = self._db.execute("DELETE FROM examples").rowcount
            self._db.execute("DELETE FROM seeds")
            return forgotten

    def replace_all(self, names: Dict[int, str], examples: Sequence[NewExample], *, model: Optional[str],
                    seeds: Dict[int, Tuple[np.ndarray, int]], seed_model: Optional[str] = None) -> List[int]:
        """Replace everything by an import, in one transaction: all of it or nothing.

        Examples without an embedding (``embedding`` ``None``) keep only their crop: a
        model switch embeds them.  :class:`LibraryFull` if the import exceeds a cap.
        """
        rows = [(e, *(encode_vector(e.embedding) if e.embedding is not None else (None, None))) for e in examples]
        for example in examples:
            if example.source not in SOURCES:
                raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {example.source!r}")
        with self._lock, self._db:
            self._db.execute("DELETE FROM examples")
            self._db.execute("DELETE FROM seeds")
            self._db.execute("DELETE FROM classes")
            self._check_caps(examples, [(e, d, v or b"") for e, d, v in rows])
            self._db.executemany("INSERT INTO classes (id, name) VALUES (?, ?)", sorted(names.items()))
            ids = []
            for number, (example, dtype, vector) in enumerate(rows, start=1):
                cursor = self._db.execute(
                    "INSERT INTO examples (class, burst, taken, source, crop) VALUES (?, ?, ?, ?, ?)",
                    (int(example.class_id), number, example.taken if example.taken is not None else self._clock(),
                     example.source, example.crop))
                ids.append(cursor.lastrowid)
                if vector is not None:
                    self._db.execute("INSERT INTO embeddings (example, model, dtype, vector) VALUES (?, ?, ?, ?)",
                                     (cursor.lastrowid, model, dtype, vector))
            for class_id, (sums, count) in seeds.items():
                sums = np.asarray(sums, dtype=np.int64).reshape(-1)
                self._db.execute("INSERT INTO seeds (class, model, sums, count) VALUES (?, ?, ?, ?)",
                                 (int(class_id), seed_model or model, sums.astype("<i8").tobytes(), int(count)))
            return ids

    def rename(self, class_id: int, name: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO classes (id, name) VALUES (?, ?)", (int(class_id), name))

    def set_seed(self, class_id: int, *, model: str, sums: np.ndarray, count: int) -> None:
        """A class's starting point carried over from a ``head.npz`` (its fixed-point sums and count)."""
        sums = np.asarray(sums, dtype=np.int64).reshape(-1)
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO seeds (class, model, sums, count) VALUES (?, ?, ?, ?)",
                             (int(class_id), model, sums.astype("<i8").tobytes(), int(count)))

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- reading -----------------------------------------------------------------------------------
    def meta(self, key: str) -> Optional[str]:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def names(self) -> Dict[int, str]:
        with self._lock:
            return dict(self._db.execute("SELECT id, name FROM classes"))

    def count(self, class_id: Optional[int] = None) -> int:
        with self._lock:
            if class_id is None:
                return self._db.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM examples WHERE class = ?", (class_id,)).fetchone()[0]

    def counts(self) -> Dict[int, int]:
        with self._lock:
            return dict(self._db.execute("SELECT class, COUNT(*) FROM examples GROUP BY class"))

    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes()

    def _bytes(self) -> int:
        crops = self._db.execute("SELECT COALESCE(SUM(LENGTH(crop)), 0) FROM examples").fetchone()[0]
        vectors = self._db.execute("SELECT COALESCE(SUM(LENGTH(vector)), 0) FROM embeddings").fetchone()[0]
        return crops + vectors

    def bursts(self) -> List[Tuple[int, int]]:
        """``(class of its newest example, examples)`` of every burst, oldest first (what undo can reach)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT (SELECT class FROM examples l WHERE l.burst = e.burst ORDER BY id DESC LIMIT 1), COUNT(*) "
                "FROM examples e GROUP BY burst ORDER BY burst").fetchall()
        return [(int(c), int(n)) for c, n in rows]

    def dump(self) -> Iterator[Tuple[int, int, float, str, Optional[bytes], Dict[str, Tuple[str, bytes]]]]:
        """Every example, oldest first: ``(id, class, taken, source, crop, {model: (dtype, vector bytes)})``."""
        with self._lock:
            examples = self._db.execute("SELECT id, class, taken, source, crop FROM examples ORDER BY id").fetchall()
            vectors: Dict[int, Dict[str, Tuple[str, bytes]]] = {}
            for example_id, model, dtype, vector in self._db.execute(
                    "SELECT example, model, dtype, vector FROM embeddings"):
                vectors.setdefault(example_id, {})[model] = (dtype, vector)
        for example_id, class_id, taken, source, crop in examples:
            yield example_id, class_id, taken, source, crop, vectors.get(example_id, {})

    def all_seeds(self) -> List[Tuple[int, str, bytes, int]]:
        """Every starting point: ``(class, model, int64 sums bytes, count)``."""
        with self._lock:
            return self._db.execute("SELECT class, model, sums, count FROM seeds ORDER BY class, model").fetchall()

    def models(self) -> Dict[str, int]:
        """How many examples have an embedding under each model (by sha256)."""
        with self._lock:
            return dict(self._db.execute("SELECT model, COUNT(*) FROM embeddings GROUP BY model"))

    def embeddings(self, model: str, dim: int) -> Iterator[Tuple[int, int, np.ndarray]]:
        """``(example id, class, vector)`` of every example embedded with ``model``, oldest first.

        Read in chunks (a few hundred rows in memory at a time), under the library's lock.
        """
        with self._lock:
            cursor = self._db.execute(
                "SELECT e.id, e.class, m.dtype, m.vector FROM examples e JOIN embeddings m ON m.example = e.id "
                "WHERE m.model = ? ORDER BY e.id", (model,))
            while True:
                rows = cursor.fetchmany(256)
                if not rows:
                    break
                for example_id, class_id, dtype, vector in rows:
                    yield example_id, class_id, decode_vector(dtype, vector, dim)

    def training_set(self, model: str, dim: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(stored vectors (n, dim), classes (n,), bursts (n,))`` of every example embedded with ``model``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.class, e.burst, m.dtype, m.vector FROM examples e JOIN embeddings m ON m.example = e.id "
                "WHERE m.model = ? ORDER BY e.id", (model,)).fetchall()
        vectors = np.empty((len(rows), dim), dtype=np.float32)
        for row, (_, _, dtype, vector) in enumerate(rows):
            vectors[row] = decode_vector(dtype, vector, dim)
        classes = np.array([r[0] for r in rows], dtype=np.int64)
        bursts = np.array([r[1] for r in rows], dtype=np.int64)
        return vectors, classes, bursts

    def missing_embeddings(self, model: str) -> List[int]:
        """Examples with a crop but no embedding under ``model`` (what a model switch must embed)."""
        with self._lock:
            return [row[0] for row in self._db.execute(
                "SELECT id FROM examples WHERE crop IS NOT NULL AND id NOT IN "
                "(SELECT example FROM embeddings WHERE model = ?) ORDER BY id", (model,))]

    def seeds(self, model: str, dim: int) -> Dict[int, Tuple[np.ndarray, int]]:
        with self._lock:
            rows = self._db.execute("SELECT class, sums, count FROM seeds WHERE model = ?", (model,)).fetchall()
        seeds = {}
        for class_id, sums, count in rows:
            if len(sums) != dim * 8 or count < 0:
                raise LibraryError(f"the starting point of class {class_id + 1} does not fit this model")
            seeds[class_id] = (np.frombuffer(sums, dtype="<i8").astype(np.int64), int(count))
        return seeds

    def page(self, class_id: int, *, before: Optional[int] = None, limit: int = 50) -> List[ExampleInfo]:
        """A class's examples, newest first, ``limit`` at most, older than ``before`` when given."""
        with self._lock:
            return _page(self._db, class_id, before, limit)

    def crop(self, example_id: int) -> Optional[bytes]:
        with self._lock:
            return _crop(self._db, example_id)


class LibraryReader:
    """Reads for the page, on their own read-only connection (never waits for the writer: WAL)."""

    def __init__(self, library: ExampleLibrary) -> None:
        self.path = library.path
        self._lock = threading.Lock()
        self._db: Optional[sqlite3.Connection] = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        return self._db

    def page(self, class_id: int, *, before: Optional[int] = None, limit: int = 50) -> List[ExampleInfo]:
        with self._lock:
            return _page(self._connection(), class_id, before, limit)

    def crop(self, example_id: int) -> Optional[bytes]:
        with self._lock:
            return _crop(self._connection(), example_id)

    def embeddings(self, model: str, dim: int) -> List[Tuple[int, int, np.ndarray]]:
        """``(example id, class, stored vector)`` of every example embedded with ``model``, oldest first."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT e.id, e.class, m.dtype, m.vector FROM examples e JOIN embeddings m ON m.example = e.id "
                "WHERE m.model = ? ORDER BY e.id", (model,)).fetchall()
        return [(i, c, decode_vector(d, v, dim)) for i, c, d, v in rows]

    def missing_embeddings(self, model: str) -> List[int]:
        with self._lock:
            return [row[0] for row in self._connection().execute(
                "SELECT id FROM examples WHERE crop IS NOT NULL AND id NOT IN "
                "(SELECT example FROM embeddings WHERE model = ?) ORDER BY id", (model,))]

    def classes_of(self, ids: Iterable[int]) -> Dict[int, int]:
        """``{id: class}`` of those of ``ids`` that exist."""
        ids = [int(i) for i in ids]
        with self._lock:
            db = self._connection()
            return {i: c for i in ids for (c,) in db.execute("SELECT class FROM examples WHERE id = ?", (i,))}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _page(db: sqlite3.Connection, class_id: int, before: Optional[int], limit: int) -> List[ExampleInfo]:
    limit = max(1, min(int(limit), 500))
    query = ("SELECT id, class, taken, source, crop IS NOT NULL FROM examples WHERE class = ?"
             + (" AND id < ?" if before is not None else "") + " ORDER BY id DESC LIMIT ?")
    args = (int(class_id), int(before), limit) if before is not None else (int(class_id), limit)
    return [ExampleInfo(i, c, t, s, bool(h)) for i, c, t, s, h in db.execute(query, args)]


def _crop(db: sqlite3.Connection, example_id: int) -> Optional[bytes]:
    row = db.execute("SELECT crop FROM examples WHERE id = ?", (int(example_id),)).fetchone()
    return None if row is None else row[0]


def _take_ownership(directory: Path) -> int:
    """An exclusive lock on the state folder: one teachbox writes to it at a time (freed when the process ends)."""
    handle = os.open(directory / (DB_NAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        raise LibraryInUse(f"another teachbox is using {directory} (is the service running? stop it first: "
                           "sudo systemctl stop teachbox)") from None
    return handle


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n / 1024:.0f} KB"


def set_aside(path: Path) -> Path:
    """Move a damaged SQLite file (and its -wal and -shm) to ``<name>.damaged-<time>``, never over another."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{number}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            os.replace(source, Path(str(aside) + suffix))
    fsync_dir(path.parent)
    return aside


def database_problem(path: Path, schema_version: int) -> Optional[str]:
    """What is wrong with the SQLite file at ``path`` (``quick_check``, a newer schema), or ``None``."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        result = db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            return f"integrity check: {result}"
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > schema_version:
            return f"made by a newer teachbox (schema {version}; this one reads {schema_version})"
        return None
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        db.close()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    return db


class LibraryWriter:
    """The library's one writer thread: the camera loop hands it work and never waits on the disk.

    Work runs in the order given.  When the disk fails (full, read-only, I/O error) the
    work is kept in memory, :attr:`last_error` says so, and it is tried again every
    ``retry`` seconds; a cap (:class:`LibraryFull`) is final for that work and reported
    to ``on_refused``.

    :param library: the :class:`ExampleLibrary` (only this thread writes to it).
    :param on_refused: called with the :class:`LibraryFull` of work that a cap refused.
    """

    def __init__(self, library: ExampleLibrary, *, retry: float = 5.0, on_refused=None) -> None:
        self.library = library
        self.retry = retry
        self._on_refused = on_refused
        self._pending: "list" = []
        self._wake = threading.Condition()
        self._stopping = False
        self._busy = False
        self.last_error: Optional[str] = None
        self._thread = threading.Thread(target=self._run, name="teachbox-library", daemon=True)
        self._thread.start()

    def submit(self, work) -> None:
        """Run ``work(library)`` on the writer thread, after everything submitted before."""
        with self._wake:
            self._pending.append(work)
            self._wake.notify()

    @property
    def pending(self) -> int:
        with self._wake:
            return len(self._pending) + self._busy

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if not self._pending:
                    return
                work = self._pending[0]
                self._busy = True
            done = self._do(work)
            with self._wake:
                self._busy = False
                if done:
                    self._pending.pop(0)
                    self._wake.notify_all()
                elif not self._stopping:
                    self._wake.wait(self.retry)
                else:
                    return

    def settle(self, timeout: float) -> bool:
        """Wait until everything submitted so far is done; ``False`` if it was not within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    return False
                self._wake.wait(min(left, 0.5))
            return True

    def _do(self, work) -> bool:
        """``True`` when ``work`` is finished with (done, or refused by a cap)."""
        try:
            work(self.library)
        except LibraryFull as exc:
            log.warning("%s", exc)
            if self._on_refused is not None:
                self._on_refused(exc)
            return True
        except (OSError, sqlite3.OperationalError) as exc:
            message = f"could not write to the examples library in {self.library.directory}: {exc}"
            if message != self.last_error:
                log.error("%s. What was taught is kept in memory and written again every %.0f s; free some "
                          "space or check the storage card.", message, self.retry)
            self.last_error = message
            return False
        if self.last_error is not None:
            log.info("writing to the examples library works again")
            self.last_error = None
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Finish what was submitted (one more try for failed work); ``True`` if nothing is left unwritten."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout)
        while self._pending and self._do(self._pending[0]):
            self._pending.pop(0)
        return not self._pending
