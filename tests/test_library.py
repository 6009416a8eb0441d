"""The examples library (device.library): SQLite on disk, real files, real crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from device.library import (DB_NAME, Caps, ExampleLibrary, LibraryError, LibraryFull, NewExample, decode_vector,
                            encode_vector)

MODEL = "a" * 64
OTHER_MODEL = "b" * 64
DIM = 1024
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vector(seed, dtype=np.uint8):
    values = np.random.default_rng(seed).integers(0, 255, DIM)
    return values.astype(dtype)


def burst(class_id, seeds, source="button", crop=b"\xff\xd8 jpeg"):
    return [NewExample(class_id, vector(s), crop=crop, source=source) for s in seeds]


@pytest.fixture
def library(tmp_path):
    library = ExampleLibrary(tmp_path, clock=lambda: 1_700_000_000.0)
    yield library
    library.close()


def test_a_burst_is_stored_whole_and_read_back_exactly(library):
    ids = library.add(burst(2, [1, 2, 3]), model=MODEL)
    assert len(ids) == 3 and ids == sorted(ids)
    stored = list(library.embeddings(MODEL, DIM))
    assert [(i, c) for i, c, _ in stored] == [(i, 2) for i in ids]
    for (_, _, got), seed in zip(stored, [1, 2, 3]):
        np.testing.assert_array_equal(got, vector(seed))
        assert got.dtype == np.uint8
    assert library.counts() == {2: 3}
    assert library.crop(ids[0]) == b"\xff\xd8 jpeg"
    assert library.integrity() == "ok"


def test_float_embeddings_keep_their_type(library):
    value = np.linspace(0, 1, DIM, dtype=np.float32)
    library.add([NewExample(0, value)], model=MODEL)
    (_, _, got), = library.embeddings(MODEL, DIM)
    assert got.dtype == np.float32 and np.array_equal(got, value)


def test_the_gallery_pages_newest_first(library):
    ids = library.add(burst(1, range(7)), model=MODEL)
    first = library.page(1, limit=3)
    assert [e.id for e in first] == ids[::-1][:3]
    second = library.page(1, before=first[-1].id, limit=3)
    assert [e.id for e in second] == ids[::-1][3:6]
    assert all(e.source == "button" and e.has_crop and e.taken == 1_700_000_000.0 for e in first + second)
    assert library.page(0) == []


def test_delete_move_clear_and_rename(library, tmp_path):
    a = library.add(burst(0, [1, 2]), model=MODEL)
    b = library.add(burst(1, [3]), model=MODEL)
    assert library.move([a[1]], 1) == 1
    assert library.counts() == {0: 1, 1: 2}
    assert library.delete([b[0], 99999]) == 1
    assert [i for i, _, _ in library.embeddings(MODEL, DIM)] == [a[0], a[1]]
    library.rename(1, "Mug")
    assert library.clear_class(0) == 1
    assert library.counts() == {1: 1}
    library.close()
    again = ExampleLibrary(tmp_path)
    assert again.names() == {1: "Mug"} and again.counts() == {1: 1}
    again.close()


def test_a_cap_refuses_the_whole_burst_and_says_which(tmp_path):
    library = ExampleLibrary(tmp_path, caps=Caps(per_class=4, total_bytes=10_000))
    library.add(burst(0, [1, 2, 3]), model=MODEL)
    with pytest.raises(LibraryFull, match="class 1 has 3 examples.*most a class keeps is 4"):
        library.add(burst(0, [4, 5]), model=MODEL)
    assert library.count() == 3  # nothing of the refused burst
    with pytest.raises(LibraryFull, match=r"holds 3 KB, the most it keeps is 10 KB"):
        library.add(burst(1, range(10, 14)) + burst(2, range(14, 18)), model=MODEL)
    assert library.count() == 3
    assert isinstance(LibraryFull("x"), OSError)
    library.close()


@pytest.mark.parametrize("bad", [np.zeros(DIM, np.float64), np.zeros(0, np.uint8), np.zeros(5000, np.uint8),
                                 np.array(["x"] * 4)])
def test_embeddings_of_the_wrong_kind_are_refused_before_storing(library, bad):
    with pytest.raises(ValueError):
        library.add([NewExample(0, bad)], model=MODEL)
    assert library.count() == 0


def test_a_stored_vector_of_the_wrong_length_is_refused_not_reshaped():
    dtype, data = encode_vector(vector(1))
    with pytest.raises(LibraryError, match="1024 bytes, expected 512"):
        decode_vector(dtype, data, 512)
    with pytest.raises(LibraryError, match="unknown type"):
        decode_vector("object", data, DIM)


def test_wal_and_full_sync_are_on(library):
    db = sqlite3.connect(library.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert library._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_model_switch_embeds_the_crops_again_and_keeps_the_old_embeddings(library):
    ids = library.add(burst(0, [1, 2]), model=MODEL)
    library.add([NewExample(1, vector(3), crop=None)], model=MODEL)  # no crop: cannot be embedded again
    assert library.missing_embeddings(OTHER_MODEL) == ids
    library.add_embeddings([(i, np.full(DIM, 7, np.uint8)) for i in ids], model=OTHER_MODEL)
    assert library.missing_embeddings(OTHER_MODEL) == []
    assert len(list(library.embeddings(MODEL, DIM))) == 3
    assert [c for _, c, _ in library.embeddings(OTHER_MODEL, DIM)] == [0, 0]


def test_seeds_carry_a_migrated_heads_sums(library):
    sums = np.arange(DIM, dtype=np.int64) * (1 << 20)
    library.set_seed(2, model=MODEL, sums=sums, count=17)
    seeds = library.seeds(MODEL, DIM)
    assert list(seeds) == [2] and seeds[2][1] == 17
    np.testing.assert_array_equal(seeds[2][0], sums)
    assert library.seeds(OTHER_MODEL, DIM) == {}
    with pytest.raises(LibraryError, match="does not fit"):
        library.seeds(MODEL, 512)


def test_a_reader_for_another_thread_sees_committed_examples(library):
    library.add(burst(0, [1]), model=MODEL)
    reader = library.reader()
    try:
        assert reader.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 1
        with pytest.raises(sqlite3.OperationalError):
            reader.execute("DELETE FROM examples")
    finally:
        reader.close()


def test_a_damaged_database_is_set_aside_and_a_new_one_started(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    library = ExampleLibrary(tmp_path)
    assert library.recovered_from is not None and library.count() == 0
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith(DB_NAME + ".damaged-")]
    assert len(aside) == 1  # kept, never deleted
    library.add(burst(0, [1]), model=MODEL)
    assert library.integrity() == "ok"
    library.close()


def test_a_damaged_database_falls_back_to_the_last_good_backup(tmp_path):
    library = ExampleLibrary(tmp_path)
    library.add(burst(0, [1, 2]), model=MODEL)
    library.backup()
    library.add(burst(0, [3]), model=MODEL)
    library.close()
    for name in (DB_NAME, DB_NAME + "-wal"):
        path = tmp_path / name
        if path.exists():
            data = bytearray(path.read_bytes())
            data[100:4096] = os.urandom(3996)  # a torn page
            path.write_bytes(bytes(data))
    again = ExampleLibrary(tmp_path)
    assert again.recovered_from is not None
    assert again.counts() == {0: 2}  # what the backup held
    again.close()


def test_a_database_from_a_newer_teachbox_is_set_aside_not_misread(tmp_path):
    library = ExampleLibrary(tmp_path)
    library.add(burst(0, [1]), model=MODEL)
    library._db.execute("PRAGMA user_version = 99")
    library._db.commit()
    library.close()
    again = ExampleLibrary(tmp_path)
    assert "newer teachbox" in again.recovered_from and again.count() == 0
    again.close()


CRASH = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    sys.path.insert(0, {repo!r})
    from device.library import ExampleLibrary, NewExample
    library = ExampleLibrary({state!r})
    for n in range(5):
        library.add([NewExample(n % 3, np.full(1024, n, np.uint8), crop=b"jpeg" * 100) for _ in range(4)],
                    model="a" * 64)
    print("committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the power goes: no close, no checkpoint
""")


def test_every_committed_burst_survives_a_kill(tmp_path):
    script = CRASH.format(repo=REPO, state=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL and "committed" in result.stdout, result.stderr
    library = ExampleLibrary(tmp_path)
    assert library.recovered_from is None
    assert library.count() == 20 and library.integrity() == "ok"
    library.close()


def test_undo_forgets_the_newest_burst_even_after_a_restart(tmp_path):
    library = ExampleLibrary(tmp_path)
    first = library.add(burst(0, [1, 2]), model=MODEL)
    second = library.add(burst(1, [3, 4, 5]), model=MODEL)
    library.close()
    again = ExampleLibrary(tmp_path)
    assert again.undo() == (1, second)
    assert again.undo() == (0, first)
    assert again.undo() is None and again.count() == 0
    assert list(again.embeddings(MODEL, DIM)) == []  # the embeddings went with them
    again.close()


# -- the writer thread --------------------------------------------------------------------------------------


def wait_for(condition, seconds=10.0):
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_the_writer_stores_bursts_in_order_off_the_callers_thread(library):
    from device.library import LibraryWriter

    writer = LibraryWriter(library)
    for n in range(5):
        writer.submit(lambda lib, n=n: lib.add(burst(n % 2, [n]), model=MODEL))
    writer.submit(lambda lib: lib.undo())
    assert writer.close() is True
    assert library.counts() == {0: 2, 1: 2}
    assert [c for _, c, _ in library.embeddings(MODEL, DIM)] == [0, 1, 0, 1]


def test_a_failing_disk_keeps_the_work_and_tries_again(library, monkeypatch):
    from device.library import LibraryWriter

    real_add, failures = library.add, [2]

    def flaky_add(*args, **kwargs):
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real_add(*args, **kwargs)

    monkeypatch.setattr(library, "add", flaky_add)
    writer = LibraryWriter(library, retry=0.05)
    writer.submit(lambda lib: lib.add(burst(0, [1, 2]), model=MODEL))
    writer.submit(lambda lib: lib.add(burst(1, [3]), model=MODEL))
    assert wait_for(lambda: writer.last_error is not None and "disk is full" in writer.last_error)
    assert wait_for(lambda: writer.pending == 0)
    assert writer.last_error is None
    assert library.counts() == {0: 2, 1: 1}  # nothing lost, order kept
    writer.close()


def test_a_cap_is_final_for_that_burst_and_reported(tmp_path):
    from device.library import LibraryWriter

    library = ExampleLibrary(tmp_path, caps=Caps(per_class=2))
    refused = []
    writer = LibraryWriter(library, on_refused=refused.append)
    writer.submit(lambda lib: lib.add(burst(0, [1, 2, 3]), model=MODEL))
    writer.submit(lambda lib: lib.add(burst(1, [4]), model=MODEL))
    assert writer.close() is True
    assert len(refused) == 1 and "most a class keeps is 2" in str(refused[0])
    assert library.counts() == {1: 1}
    library.close()
