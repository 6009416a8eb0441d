"""The event log (device.events): SQLite on disk, a real writer thread, real files, real kills."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from typing import Optional

import pytest

from device.events import DB_NAME, EventLog, StoredEvent, event_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@dataclass(frozen=True)
class Event:  # the shape of device.rules' event
    rule: str
    kind: str
    answer: str
    class_id: Optional[int]
    confidence: float
    time: float


def event(n: int, kind: str = "start", answer: str = "cup", at: Optional[float] = None) -> Event:
    return Event(f"rule{n}", kind, answer, 0 if answer == "cup" else None, 0.9, T0 + n if at is None else at)


@pytest.fixture
def events(tmp_path):
    log = EventLog(tmp_path, flush_interval=0.05, retry=0.05, clock=lambda: T0 + 3600)
    yield log
    log.close()


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_recorded_on_one_thread_read_on_another_newest_first(events):
    recorder = threading.Thread(target=lambda: [events.record(event(n)) for n in range(1, 121)])
    recorder.start()
    recorder.join()
    seen = []
    reader = threading.Thread(target=lambda: (wait_for(lambda: events.stats().rows == 120),
                                              seen.extend(events.recent(limit=50))))
    reader.start()
    reader.join()
    assert [e.rule for e in seen] == [f"rule{n}" for n in range(120, 70, -1)]
    assert seen[0] == StoredEvent(120, T0 + 120, "rule120", "start", "cup", 0, 0.9)
    older = events.recent(limit=100, before=seen[-1].id)
    assert [e.rule for e in older] == [f"rule{n}" for n in range(70, 0, -1)]
    stats = events.stats()
    assert (stats.rows, stats.pending, stats.dropped, stats.written, stats.error) == (120, 0, 0, 120, None)
    assert stats.transactions < 120  # batched, not one commit per event


def test_the_log_keeps_at_most_max_events_the_oldest_go(tmp_path):
    events = EventLog(tmp_path, max_events=30, flush_interval=0.01)
    for n in range(1, 101):
        events.record(event(n))
        if n % 7 == 0:
            assert events.flush()
    assert events.flush()
    assert events.stats().rows == 30
    assert [e.rule for e in events.recent(1000)] == [f"rule{n}" for n in range(100, 70, -1)]
    assert events.close()
    again = EventLog(tmp_path, max_events=30)
    assert again.stats().rows == 30
    again.close()


def test_nothing_is_written_while_nothing_happens(tmp_path):
    events = EventLog(tmp_path, flush_interval=0.05)
    events.record(event(1))
    assert events.flush()
    time.sleep(0.2)  # let the writer settle back to sleep
    files = [tmp_path / name for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm")]
    before = [(f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else None for f in files]
    transactions = events.stats().transactions
    time.sleep(1.5)
    assert events.recent() and events.stats().rows == 1  # reading writes nothing either
    assert events.stats().transactions == transactions == 1
    assert [(f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else None for f in files] == before
    events.close()


def test_a_batch_is_one_transaction_when_it_waits_for_the_interval(tmp_path):
    events = EventLog(tmp_path, flush_interval=0.5, batch=50)
    for n in range(1, 11):
        events.record(event(n))
    time.sleep(0.2)
    assert events.stats().transactions == 0 and events.stats().pending == 10  # not yet: the interval
    wait_for(lambda: events.stats().rows == 10)
    assert events.stats().transactions == 1
    for n in range(11, 61):  # a full batch goes at once
        events.record(event(n))
    wait_for(lambda: events.stats().rows == 60, timeout=0.4)
    events.close()


def test_counts_per_hour_and_day_of_start_events_per_answer(tmp_path):
    now = [T0 + 5 * 3600 + 600]  # 2023-11-15T03:23:20Z
    events = EventLog(tmp_path, clock=lambda: now[0], flush_interval=0.01)
    hour0 = (T0 // 3600) * 3600  # 22:00Z
    for at, kind, answer in [(hour0 + 10, "start", "cup"), (hour0 + 20, "end", "cup"), (hour0 + 30, "start", "cup"),
                             (hour0 + 3600 + 5, "start", "unknown"), (hour0 + 3 * 3600, "start", "cup"),
                             (hour0 + 3 * 3600 + 1, "start", "absent"), (hour0 - 86400, "start", "cup")]:
        events.record(Event("", kind, answer, None, 0.5, at))  # the answers' own starts and ends
    events.record(Event("cup rule", "start", "cup", 0, 0.9, hour0 + 40))  # a rule's start counts apart
    assert events.flush()
    assert events.counts("hour", since=hour0, rules=True)["answers"] == {"cup": [1, 0, 0, 0, 0, 0]}
    chart = events.counts("hour", since=hour0)
    assert chart["bucket"] == "hour"
    assert chart["starts"] == [hour0 + i * 3600 for i in range(6)]  # 22:00 .. 03:00, up to now
    assert chart["answers"] == {"cup": [2, 0, 0, 1, 0, 0], "unknown": [0, 1, 0, 0, 0, 0],
                                "absent": [0, 0, 0, 1, 0, 0]}
    assert events.counts("hour")["answers"]["cup"][-6:] == [2, 0, 0, 1, 0, 0]  # default: the last 24 h
    assert len(events.counts("hour")["starts"]) == 25
    days = events.counts("day", since=hour0 - 86400)
    day0 = (hour0 // 86400) * 86400
    assert days["starts"] == [day0 - 86400, day0, day0 + 86400]
    assert days["answers"] == {"cup": [1, 2, 1], "unknown": [0, 1, 0], "absent": [0, 0, 1]}  # 23:00Z: day0
    local = events.counts("day", since=hour0, offset=3 * 3600)  # the viewer is at UTC+3: 01:00 .. 06:23 local
    assert local["starts"] == [day0 + 86400 - 3 * 3600] and local["answers"]["cup"] == [3]
    with pytest.raises(ValueError):
        events.counts("week")
    events.close()


def test_a_damaged_event_log_is_moved_aside_and_a_new_one_works(tmp_path, caplog):
    (tmp_path / DB_NAME).write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    with caplog.at_level(logging.WARNING, logger="device.events"):
        events = EventLog(tmp_path, flush_interval=0.01)
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith(DB_NAME + ".damaged-")]
    assert len(aside) == 1 and aside[0] in caplog.text
    assert events.stats().recovered_from is not None
    events.record(event(1))
    assert events.flush() and [e.rule for e in events.recent()] == ["rule1"]
    assert events.close()
    assert EventLog(tmp_path).recovered_from is None


def test_a_log_damaged_inside_is_moved_aside_too(tmp_path):
    events = EventLog(tmp_path, flush_interval=0.01)
    for n in range(1, 2001):
        events.record(event(n, answer="x" * 200))
    assert events.close()
    data = bytearray((tmp_path / DB_NAME).read_bytes())
    data[4096 * 3:4096 * 3 + 512] = os.urandom(512)  # a page of rows scribbled over
    (tmp_path / DB_NAME).write_bytes(bytes(data))
    again = EventLog(tmp_path)
    assert again.recovered_from is not None and again.stats().rows == 0
    again.close()


def test_close_writes_what_is_queued(tmp_path):
    events = EventLog(tmp_path, flush_interval=60, batch=1000)
    for n in range(1, 11):
        events.record(event(n))
    assert events.stats().rows == 0
    assert events.close(timeout=5) is True
    assert events.record(event(11)) is False  # closed: refused, not raised
    again = EventLog(tmp_path)
    assert [e.rule for e in again.recent()] == [f"rule{n}" for n in range(10, 0, -1)]
    again.close()


class FailingDisk:
    """The writer's connection on a card that fails every write."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, *args):
        raise sqlite3.OperationalError("disk I/O error")

    executemany = execute

    def close(self):
        self.db.close()


def test_a_failing_disk_never_reaches_the_caller_and_is_reported(tmp_path, caplog):
    events = EventLog(tmp_path, flush_interval=0.01, retry=0.05, queue_size=100)
    good = events._db
    events._db = FailingDisk(good)
    with caplog.at_level(logging.ERROR, logger="device.events"):
        for n in range(1, 151):
            assert events.record(event(n)) is True
        wait_for(lambda: events.stats().error is not None)
        time.sleep(0.3)  # several retries
    stats = events.stats()
    assert "disk I/O error" in stats.error and stats.rows == 0
    assert stats.pending == 100 and stats.dropped == 50  # bounded in memory: the oldest went
    assert caplog.text.count("disk I/O error") == 1  # said once, not per retry
    events._db = good  # the card works again: what was kept is written
    wait_for(lambda: events.stats().rows == 100)
    assert events.stats().error is None
    assert [e.rule for e in events.recent(1)] == ["rule150"]
    assert events.close()


def test_close_says_when_events_could_not_be_written(tmp_path):
    events = EventLog(tmp_path, flush_interval=0.01, retry=0.05)
    good = events._db
    events._db = FailingDisk(good)
    events.record(event(1))
    assert events.close(timeout=2) is False
    good.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only folder")
def test_a_read_only_state_folder_is_reported_not_raised(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        events = EventLog(folder, flush_interval=0.01, retry=0.05)
        assert events.record(event(1)) is True
        assert events.stats().error is not None and events.recent() == []
        assert events.close(timeout=1) is False
    finally:
        folder.chmod(0o700)


def test_a_state_folder_that_cannot_be_made_is_reported_not_raised(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    events = EventLog(tmp_path / "file" / "state", flush_interval=0.01, retry=0.05)
    assert events.record(event(1)) is True
    wait_for(lambda: events.stats().error is not None)
    assert "could not" in events.stats().error and events.recent() == [] and events.counts()["answers"] == {}
    assert events.close(timeout=1) is False


def test_a_bad_event_is_refused_without_raising(events):
    assert events.record(Event("r", "middle", "cup", 0, 0.9, T0)) is False
    assert events.record(object()) is False
    assert events.record({"rule": "r", "kind": "end", "answer": "absent", "class_id": None, "confidence": None,
                          "time": T0}) is True


def test_event_json_has_the_payload_keys():
    payload = event_json(Event("door", "start", "cup", 2, 0.87654, T0 + 0.25))
    assert payload == {"rule": "door", "kind": "start", "answer": "cup", "class_id": 2, "confidence": 0.8765,
                       "time": "2023-11-14T22:13:20.250Z", "unix": T0 + 0.25}
    stored = StoredEvent(7, T0, "door", "end", "absent", None, None)
    assert event_json(stored)["id"] == 7 and event_json(stored)["class_id"] is None


WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from device.events import EventLog
    from dataclasses import dataclass

    @dataclass
    class Event:
        rule: str
        kind: str
        answer: str
        class_id: int
        confidence: float
        time: float

    events = EventLog({state!r}, flush_interval=0.002, batch=7, max_events=500)
    n = 0
    while True:
        n += 1
        events.record(Event(f"rule{{n}}", "start", "cup", 0, 0.5, 1.7e9 + n))
        if n % 5 == 0:
            print("written", events.stats().written, flush=True)
            time.sleep(0.001)
""")


def test_a_killed_writer_leaves_a_sound_log_with_only_committed_events(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", WRITER.format(repo=REPO, state=str(tmp_path))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = 0
    try:
        for line in child.stdout:
            written = int(line.split()[1])
            if written >= 800:  # past max_events: rows are being deleted too
                break
        os.kill(child.pid, signal.SIGKILL)  # mid-write, most likely: no close, no checkpoint
    finally:
        child.kill()
        child.wait()
    assert written >= 800, child.stderr.read()
    events = EventLog(tmp_path)  # the box starts again: the kill is no damage
    assert events.recovered_from is None and events.stats().rows == 500
    numbers = [int(e.rule[4:]) for e in reversed(events.recent(1000))]
    events.close()
    assert len(numbers) == 500  # whole transactions only: the cap held in every one of them
    assert numbers == list(range(numbers[0], numbers[0] + 500)) and numbers[-1] >= written
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    db.close()
