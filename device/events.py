"""The event log: every "start" and "end" of a rule or an answer, kept in SQLite (standard library only).

An event (``device/rules.py``) is a small object with ``rule`` (the rule's name, ``""`` for an
answer's own start and end, ``null`` in JSON),
``kind`` (``"start"`` or ``"end"``), ``answer`` (a class name, ``"unknown"`` or
``"absent"``), ``class_id`` (or ``None``), ``confidence`` and ``time`` (unix seconds);
a mapping with those keys works too.  :func:`event_json` is its payload.

The log is ``events.db`` in the state folder, apart from ``examples.db``: an event storm
never touches what was taught, and a damaged event log never costs an example.

Durability: WAL journal, ``synchronous=NORMAL``.  In WAL mode that never corrupts the
database, whatever moment the power goes or the process is killed, and a commit survives
the process being killed; only a power cut may lose the last commits (those since the
last checkpoint), which an event log can afford.  What it buys: no fsync per commit, so
an event storm costs the SD card one write per batch, not two flushes per batch.
A database that fails ``PRAGMA quick_check`` at open (or was made by a newer teachbox)
is moved aside as ``events.db.damaged-<time>``, never deleted, named in a warning, and a
new one is started.

Threads: :meth:`EventLog.record` never touches the disk and never raises: it puts the
event on a bounded queue (full: the oldest is dropped and counted).  One writer thread
commits what is queued in batches — at most one transaction per ``flush_interval``
seconds unless ``batch`` events are waiting — and sleeps, writing nothing, while nothing
happens.  When writing fails (full card, read-only, I/O error) the events stay queued
(bounded), the error is logged once and kept in :attr:`EventStats.error`, and the write
is tried again every ``retry`` seconds.  The table keeps at most ``max_events`` rows: the
oldest are deleted in the same transaction.  Readers (any thread) open their own
read-only connection per call.
"""

from __future__ import annotations

import collections
import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Deque, Dict, List, Mapping, Optional, Tuple

from .library import database_problem, set_aside

log = logging.getLogger(__name__)

DB_NAME = "events.db"
SCHEMA_VERSION = 1
KINDS = ("start", "end")
BUCKETS = {"hour": 3600, "day": 86400}
MAX_BUCKETS = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    answer TEXT NOT NULL,
    class_id INTEGER,
    confidence REAL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
"""

_COLUMNS = "id, time, rule, kind, answer, class_id, confidence"


@dataclass(frozen=True)
class StoredEvent:
    """One event as the log keeps it (``id`` grows with every event recorded)."""

    id: int
    time: float
    rule: str
    kind: str
    answer: str
    class_id: Optional[int]
    confidence: Optional[float]


@dataclass(frozen=True)
class EventStats:
    """``rows`` stored, ``pending`` queued, ``dropped`` (queue full) and ``written`` since start;
    ``error``: why the last write failed while writing fails (``None`` when it works)."""

    rows: int
    pending: int
    dropped: int
    written: int
    transactions: int
    error: Optional[str]
    recovered_from: Optional[str]


def _get(event, *names):
    for name in names:
        if isinstance(event, Mapping):
            if name in event:
                return event[name]
        elif hasattr(event, name):
            return getattr(event, name)
    raise AttributeError(f"an event has no {names[0]!r}")


def _row(event) -> Tuple[float, str, str, str, Optional[int], Optional[float]]:
    """``(time, rule, kind, answer, class id, confidence)`` of a rule event, checked."""
    kind = str(_get(event, "kind"))
    if kind not in KINDS:
        raise ValueError(f"an event's kind is one of {', '.join(KINDS)}, not {kind!r}")
    moment = float(_get(event, "time"))
    if not math.isfinite(moment):
        raise ValueError(f"an event's time is unix seconds, not {moment!r}")
    class_id = _get(event, "class_id")
    confidence = _get(event, "confidence")
    confidence = None if confidence is None else float(confidence)
    if confidence is not None and not math.isfinite(confidence):
        confidence = None
    return (moment, str(_get(event, "rule", "rule_name", "name")), kind, str(_get(event, "answer")),
            None if class_id is None else int(class_id), confidence)


def iso_utc(seconds: float) -> str:
    """``2026-12-02T05:40:25.123Z``: unix seconds as ISO-8601 UTC, to the millisecond."""
    moment = datetime.fromtimestamp(float(seconds), tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def event_json(event) -> Dict[str, object]:
    """The event's payload (the page, MQTT, a webhook): ``rule`` (``None``: the answer's own), ``kind``, ``answer``, ``class_id``,
    ``confidence``, ``time`` (ISO-8601 UTC) and ``unix`` (seconds); a :class:`StoredEvent` adds ``id``."""
    moment, rule, kind, answer, class_id, confidence = _row(event)
    payload: Dict[str, object] = {"rule": rule or None, "kind": kind, "answer": answer, "class_id": class_id,
                                  "confidence": None if confidence is None else round(confidence, 4),
                                  "time": iso_utc(moment), "unix": round(moment, 3)}
    if isinstance(event, StoredEvent):
        payload["id"] = event.id
    return payload


class EventLog:
    """
    :param state_dir: the state folder (the log is ``events.db`` in it).
    :param max_events: how many events the log keeps (the oldest go first).
    :param clock: wall-clock seconds, for the default ``since`` of :meth:`counts` (tests pass their own).
    :param queue_size: how many events wait in memory for the disk at most (a failing card).
    :param flush_interval: at most one transaction per this many seconds ...
    :param batch: ... unless this many events are waiting.
    :param retry: seconds between tries while writing fails.
    """

    def __init__(self, state_dir, *, max_events: int = 10000, clock=time.time, queue_size: int = 2000,
                 flush_interval: float = 1.0, batch: int = 50, retry: float = 5.0) -> None:
        if max_events < 1 or queue_size < 1 or batch < 1:
            raise ValueError("max_events, queue_size and batch are at least 1")
        self.directory = Path(state_dir)
        self.path = self.directory / DB_NAME
        self.max_events = int(max_events)
        self.flush_interval = float(flush_interval)
        self.batch = int(batch)
        self.retry = float(retry)
        self._clock = clock
        self._queue: Deque[Tuple[int, tuple]] = collections.deque()
        self._queue_size = int(queue_size)
        self._wake = threading.Condition()
        self._seq = 0  # events recorded so far (the queue's entries are numbered)
        self._dropped = 0
        self._written = 0
        self._transactions = 0
        self._rows = 0
        self._error: Optional[str] = None
        self._stopping = False
        self._flush_now = False
        self.recovered_from: Optional[str] = None  # why the database was set aside at open, if it was
        self._db: Optional[sqlite3.Connection] = None
        try:
            self._db = self._open()
        except (OSError, sqlite3.Error) as exc:  # the writer tries again; the box runs without its log
            self._failed(f"could not open the event log {self.path}: {exc}")
        self._thread = threading.Thread(target=self._run, name="teachbox-events", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<EventLog {self.path} rows={self._rows}>"

    # -- the caller's side (the frame loop): no disk, no exceptions ------------------------------
    def record(self, event) -> bool:
        """Queue ``event`` for the writer thread; ``False`` if it was not kept (invalid, or the log is closed).

        Never raises and never waits on the disk.  A full queue drops its oldest event (counted).
        """
        try:
            row = _row(event)
        except Exception as exc:  # a bad event costs that event, never the frame loop
            log.warning("an event was not logged: %s", exc)
            return False
        with self._wake:
            if self._stopping:
                return False
            self._seq += 1
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    log.warning("the event log's queue is full: %d events dropped so far (the oldest first)",
                                self._dropped)
            self._queue.append((self._seq, row))
            if len(self._queue) >= self.batch:
                self._wake.notify()
            elif len(self._queue) == 1:
                self._wake.notify()
        return True

    def stats(self) -> EventStats:
        with self._wake:
            return EventStats(rows=self._rows, pending=len(self._queue), dropped=self._dropped,
                              written=self._written, transactions=self._transactions, error=self._error,
                              recovered_from=self.recovered_from)

    def flush(self, timeout: float = 5.0) -> bool:
        """Write what is queued now, without waiting for the batch; ``True`` when it was written in time."""
        deadline = time.monotonic() + timeout
        with self._wake:
            target = self._seq
            self._flush_now = True
            self._wake.notify_all()
            while self._queue and self._queue[0][0] <= target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._wake.wait(min(left, 0.5))
            return True

    def apply(self, event) -> None:
        """A consumer of rule events (:class:`device.actions.RulesOutput`): record it."""
        self.record(event)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued (one more try if writing failed) and stop; ``False`` if some could not be written.

        (Events dropped earlier because the queue was full are counted in :meth:`stats`, not here.)
        """
        with self._wake:
            already = self._stopping
            self._stopping = True
            self._wake.notify_all()
        if not already:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the event log's writer did not finish within %.1f s", timeout)
        with self._wake:
            lost = len(self._queue)
            if lost:
                log.error("%d events could not be written to %s: %s", lost, self.path, self._error)
            if not self._thread.is_alive() and self._db is not None:
                self._db.close()
                self._db = None
            return lost == 0

    # -- the writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        failing = False
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._flush_now = False
                    self._wake.wait()  # nothing happens: nothing is written
                if not self._queue:
                    return
                # gather a batch: until `batch` wait, the interval passes, a flush is asked or we stop
                deadline = time.monotonic() + (self.retry if failing else self.flush_interval)
                while (len(self._queue) < self.batch or failing) and not self._stopping and not self._flush_now:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                self._flush_now = False
                stopping = self._stopping
                work = list(self._queue)
            ok = self._write(work)
            failing = not ok
            if stopping and not ok:
                return  # close() says what was lost

    def _write(self, work: List[Tuple[int, tuple]]) -> bool:
        try:
            if self._db is None:
                self._db = self._open()
            db = self._db
            rows = self._rows
            with db:
                db.executemany("INSERT INTO events (time, rule, kind, answer, class_id, confidence) "
                               "VALUES (?, ?, ?, ?, ?, ?)", [row for _, row in work])
                rows += len(work)
                if rows > self.max_events:
                    rows -= db.execute(
                        "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC "
                        "LIMIT 1 OFFSET ?)", (self.max_events,)).rowcount
        except Exception as exc:  # a full card, I/O, anything: the thread lives on and tries again
            self._failed(f"could not write to the event log {self.path}: {exc}")
            return False
        last = work[-1][0]
        with self._wake:
            while self._queue and self._queue[0][0] <= last:
                self._queue.popleft()
            self._rows = rows
            self._written += len(work)
            self._transactions += 1
            recovered = self._error is not None
            self._error = None
            self._wake.notify_all()
        if recovered:
            log.info("writing to the event log works again")
        return True

    def _failed(self, message: str) -> None:
        with self._wake:
            same = message == self._error
            self._error = message
        if not same:
            log.error("%s. Events are kept in memory (up to %d) and written again every %.0f s; free some space "
                      "or check the storage card.", message, self._queue_size, self.retry)

    # -- opening ---------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        problem = _problem(self.path) if self.path.exists() else None
        if problem is not None:
            aside = self._set_aside()
            log.warning("the event log was damaged (%s); it was moved to %s and a new one is started",
                        problem, aside.name)
            self.recovered_from = problem
        db = sqlite3.connect(self.path, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA journal_size_limit = 4194304")
            with db:
                db.executescript(_SCHEMA)
                if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            rows = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        except BaseException:
            db.close()
            raise
        with self._wake:
            self._rows = rows
        return db

    def _set_aside(self) -> Path:
        return set_aside(self.path)

    # -- reading (any thread, a read-only connection of its own) ----------------------------------
    def _reader(self) -> Optional[sqlite3.Connection]:
        if not self.path.exists():
            return None
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def recent(self, limit: int = 100, before: Optional[int] = None) -> List[StoredEvent]:
        """Up to ``limit`` (1 to 1000) stored events, newest first; ``before``: an id, for the next page.

        Events still queued for the disk are not among them (:meth:`flush` first to see them).
        """
        limit = max(1, min(int(limit), 1000))
        query = f"SELECT {_COLUMNS} FROM events" + (" WHERE id < ?" if before is not None else "") + \
            " ORDER BY id DESC LIMIT ?"
        args = (int(before), limit) if before is not None else (limit,)
        db = self._reader()
        if db is None:
            return []
        try:
            return [StoredEvent(*row) for row in db.execute(query, args)]
        finally:
            db.close()

    def counts(self, bucket: str = "hour", since: Optional[float] = None, *,
               offset: float = 0.0, rules: bool = False) -> Dict[str, object]:
        """How many times each answer *started* per hour or day, for a chart: the answers' own starts,
        or with ``rules`` the rules' starts (by the answer that started them).

        ``since``: unix seconds (default: 24 hours ago for ``"hour"``, 30 days for ``"day"``);
        buckets begin on UTC hours/days shifted by ``offset`` seconds (the viewer's UTC offset,
        e.g. 3600 for UTC+1).  Returns ``{"bucket": "hour", "starts": [bucket start, unix s, ...],
        "answers": {answer: [count per bucket, ...]}}``, buckets oldest first up to now.
        """
        if bucket not in BUCKETS:
            raise ValueError(f"bucket is one of {', '.join(BUCKETS)}, not {bucket!r}")
        size = BUCKETS[bucket]
        now = float(self._clock())
        if since is None:
            since = now - (24 if bucket == "hour" else 30) * size
        since = max(float(since), now - MAX_BUCKETS * size)

        def start_of(seconds: float) -> float:
            return math.floor((seconds + offset) / size) * size - offset

        first = start_of(since)
        count = max(1, int((start_of(now) - first) // size) + 1)
        starts = [first + i * size for i in range(count)]
        answers: Dict[str, List[int]] = {}
        db = self._reader()
        if db is None:
            return {"bucket": bucket, "starts": starts, "answers": answers}
        try:  # times are after 1970, so CAST (towards zero) is floor
            rows = db.execute("SELECT answer, CAST((time + ?) / ? AS INTEGER), COUNT(*) FROM events "
                              "WHERE kind = 'start' AND time >= ? AND (rule = '') = ? GROUP BY 1, 2",
                              (offset, size, first, 0 if rules else 1)).fetchall()
        finally:
            db.close()
        base = math.floor((first + offset) / size)
        for answer, index, number in rows:
            position = int(index) - base
            if 0 <= position < count:
                answers.setdefault(answer, [0] * count)[position] += number
        return {"bucket": bucket, "starts": starts, "answers": answers}


def _problem(path: Path) -> Optional[str]:
    """What is wrong with the event log at ``path``, or ``None`` if it is sound and ours."""
    return database_problem(path, SCHEMA_VERSION)
