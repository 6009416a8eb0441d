"""Saving and loading the learned head: round trips, generations, damage, hostile files, full disks."""

from __future__ import annotations

import errno
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import device.atomic
from device.atomic import atomic_file
from device.errors import ForeignStateError, StateError
from device.head import NearestCentroidHead
from device.storage import (
    CURRENT,
    MAX_STATE_BYTES,
    PREVIOUS,
    ModelIdentity,
    StateStore,
    decode_head,
    encode_head,
    model_identity,
)

DIM = 32
MODEL = ModelIdentity(sha256="5e" * 32, dim=DIM, name="mobilenet-test")
OTHER_SHA = ModelIdentity(sha256="77" * 32, dim=DIM, name="other-model")
OTHER_DIM = ModelIdentity(sha256=MODEL.sha256, dim=DIM * 2, name=MODEL.name)


def make_head(examples=3, seed=0, names=None, num_classes=3, dim=DIM):
    r = np.random.default_rng(seed)
    head = NearestCentroidHead(dim, num_classes, names=names)
    for i in range(examples):
        head.teach(i % num_classes, r.standard_normal(dim))
    return head


def state_of(head):
    meta, arrays = head.to_state()
    return meta, arrays["sums"].tolist(), arrays["counts"].tolist()


def files_in(directory):
    return sorted(p.name for p in Path(directory).iterdir())


def envelope_bytes(envelope, **arrays):
    """An npz like encode_head's but with a hand-made meta (dict -> JSON, bytes as is)."""
    raw = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode("utf-8")
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(raw, dtype=np.uint8), **arrays)
    return buffer.getvalue()


def good_envelope(head=None):
    head = head or make_head()
    meta, arrays = head.to_state()
    envelope = {"teachbox_state": 1, "model_sha256": MODEL.sha256, "model": MODEL.name,
                "saved_at": 0.0, "head": meta}
    return envelope, arrays


# -- encode / decode ----------------------------------------------------------------------

def test_encode_decode_round_trip_is_exact():
    head = make_head(10, names=["Äpfel", "猫", "a/b.c"])
    copy = decode_head(encode_head(head, MODEL), MODEL)
    assert state_of(copy) == state_of(head)
    assert copy.names == ["Äpfel", "猫", "a/b.c"]
    query = np.random.default_rng(5).standard_normal(DIM)
    np.testing.assert_array_equal(copy.predict(query).scores, head.predict(query).scores)


def test_encoded_state_is_a_plain_npz_without_pickle():
    data = encode_head(make_head(), MODEL)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["counts.npy", "meta.npy", "sums.npy"]
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        envelope = json.loads(archive["meta"].tobytes().decode("utf-8"))
    assert envelope["model_sha256"] == MODEL.sha256
    assert envelope["model"] == MODEL.name
    assert envelope["head"]["dim"] == DIM


def test_decode_passes_head_options():
    head = decode_head(encode_head(make_head(), MODEL), MODEL, threshold=0.7, temperature=0.2)
    assert head.threshold == 0.7
    assert head.temperature == 0.2


@pytest.mark.parametrize("other", [OTHER_SHA, OTHER_DIM], ids=["other-sha256", "other-dim"])
def test_state_of_another_model_is_refused(other):
    data = encode_head(make_head(), MODEL)
    with pytest.raises(ForeignStateError) as info:
        decode_head(data, other)
    assert isinstance(info.value, StateError)
    assert "model" in str(info.value)


def test_model_identity_from_description():
    ident = model_identity({"model_sha256": "ab" * 32, "dim": "1024", "model": "mobilenet"})
    assert ident == ModelIdentity("ab" * 32, 1024, "mobilenet")


# -- hostile or damaged bytes ----------------------------------------------------------------

PICKLE_CALLS = []


def _record_unpickling(tag):
    PICKLE_CALLS.append(tag)
    return tag


class Booby:
    """Unpickling this calls _record_unpickling: proof that pickle ran."""

    def __reduce__(self):
        return (_record_unpickling, ("pickle ran",))


def _pickle_npz(where):
    envelope, arrays = good_envelope()
    payload = np.array([Booby(), 1], dtype=object)
    buffer = io.BytesIO()
    if where == "meta":
        np.savez(buffer, meta=payload, **arrays)
    else:
        raw = np.frombuffer(json.dumps(envelope).encode(), dtype=np.uint8)
        np.savez(buffer, meta=raw, sums=payload, counts=arrays["counts"])
    return buffer.getvalue()


@pytest.mark.parametrize("where", ["meta", "sums"])
def test_pickle_inside_the_state_is_never_executed(where):
    data = _pickle_npz(where)
    # the file really carries a pickle that would run on an unsafe load
    with np.load(io.BytesIO(data), allow_pickle=True) as archive:
        archive[where]
    assert PICKLE_CALLS == ["pickle ran"]
    PICKLE_CALLS.clear()

    with pytest.raises(StateError):
        decode_head(data, MODEL)
    assert PICKLE_CALLS == []


def _truncated():
    data = encode_head(make_head(), MODEL)
    return data[: len(data) // 2]


def _flipped():
    data = bytearray(encode_head(make_head(), MODEL))
    data[len(data) // 2] ^= 0xFF  # zip CRC catches it
    return bytes(data)


HOSTILE = {
    "empty": lambda: b"",
    "random bytes": lambda: np.random.default_rng(1).bytes(4096),
    "not a zip": lambda: b"hello, this is not a teachbox state\n" * 10,
    "truncated": _truncated,
    "bit flip": _flipped,
    "too big": lambda: b"PK\x03\x04" + bytes(MAX_STATE_BYTES),
    "npy not npz": lambda: _npy(),
    "meta not json": lambda: envelope_bytes(b"{not json", **good_envelope()[1]),
    "meta not utf-8": lambda: envelope_bytes(b'{"a": "\xff\xfe"}', **good_envelope()[1]),
    "meta is a list": lambda: envelope_bytes([1, 2, 3], **good_envelope()[1]),
    "meta is a string": lambda: envelope_bytes("head", **good_envelope()[1]),
    "no meta": lambda: _without_meta(),
    "no head": lambda: _envelope_without("head"),
    "no format": lambda: _envelope_without("teachbox_state"),
    "no model hash": lambda: _envelope_without("model_sha256"),
    "future format": lambda: _envelope_with(teachbox_state=2),
    "unknown head kind": lambda: _head_with(kind="transformer"),
    "head without names": lambda: _head_without("names"),
    "head without num_classes": lambda: _head_without("num_classes"),
    "head with bad name": lambda: _head_with(names=["a", "<script>", "c"]),
    "no sums": lambda: _arrays_without("sums"),
    "sums wrong shape": lambda: _arrays_with(sums=np.zeros((3, DIM + 1), dtype=np.int64)),
    "negative counts": lambda: _arrays_with(counts=np.array([-1, 0, 0], dtype=np.int64)),
}


def _npy():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(10))
    return buffer.getvalue()


def _without_meta():
    buffer = io.BytesIO()
    np.savez(buffer, **good_envelope()[1])
    return buffer.getvalue()


def _envelope_without(key):
    envelope, arrays = good_envelope()
    del envelope[key]
    return envelope_bytes(envelope, **arrays)


def _envelope_with(**values):
    envelope, arrays = good_envelope()
    envelope.update(values)
    return envelope_bytes(envelope, **arrays)


def _head_without(key):
    envelope, arrays = good_envelope()
    del envelope["head"][key]
    return envelope_bytes(envelope, **arrays)


def _head_with(**values):
    envelope, arrays = good_envelope()
    envelope["head"].update(values)
    return envelope_bytes(envelope, **arrays)


def _arrays_without(name):
    envelope, arrays = good_envelope()
    del arrays[name]
    return envelope_bytes(envelope, **arrays)


def _arrays_with(**values):
    envelope, arrays = good_envelope()
    arrays.update(values)
    return envelope_bytes(envelope, **arrays)


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_damaged_or_hostile_bytes_raise_state_error(what):
    with pytest.raises(StateError):
        decode_head(HOSTILE[what](), MODEL)


def test_deeply_nested_meta_json_is_a_state_error():
    data = envelope_bytes(b"[" * 100_000, **good_envelope()[1])
    with pytest.raises(StateError):
        decode_head(data, MODEL)


def test_zip_bomb_is_refused():
    envelope, arrays = good_envelope()
    buffer = io.BytesIO()
    meta = np.frombuffer(json.dumps(envelope).encode(), dtype=np.uint8)
    np.savez_compressed(buffer, meta=meta, junk=np.zeros(4 * MAX_STATE_BYTES, dtype=np.uint8), **arrays)
    data = buffer.getvalue()
    assert len(data) < MAX_STATE_BYTES // 100  # small on disk, 64 MiB once inflated
    with pytest.raises(StateError):
        decode_head(data, MODEL)


# -- the store on disk ----------------------------------------------------------------------

def test_load_from_an_empty_or_missing_folder_starts_empty(tmp_path):
    for folder in (tmp_path, tmp_path / "not-yet"):
        result = StateStore(folder).load(MODEL)
        assert result.head is None
        assert result.source is None
        assert result.set_aside == ()


def test_save_load_round_trip(tmp_path):
    store = StateStore(tmp_path / "state")  # created on first save
    head = make_head(7, names=["cup", "pen", "猫"])
    store.save(encode_head(head, MODEL))
    result = StateStore(tmp_path / "state").load(MODEL, threshold=0.5)
    assert result.source == tmp_path / "state" / CURRENT
    assert result.set_aside == ()
    assert state_of(result.head) == state_of(head)
    assert result.head.threshold == 0.5


def test_save_keeps_the_previous_generation(tmp_path):
    store = StateStore(tmp_path)
    first, second, third = (encode_head(make_head(n), MODEL) for n in (1, 2, 3))
    store.save(first)
    assert files_in(tmp_path) == [CURRENT]
    store.save(second)
    assert (tmp_path / CURRENT).read_bytes() == second
    assert (tmp_path / PREVIOUS).read_bytes() == first
    store.save(third)
    assert (tmp_path / CURRENT).read_bytes() == third
    assert (tmp_path / PREVIOUS).read_bytes() == second
    assert files_in(tmp_path) == sorted([CURRENT, PREVIOUS])  # no temp files left


def _corruptions():
    data = encode_head(make_head(5), MODEL)
    return {
        "truncated": data[: len(data) // 3],
        "random": np.random.default_rng(7).bytes(len(data)),
        "zero-length": b"",
    }


@pytest.mark.parametrize("kind", ["truncated", "random", "zero-length"])
def test_corrupt_current_is_set_aside_and_previous_used(tmp_path, kind):
    store = StateStore(tmp_path)
    old, new = make_head(4, seed=1), make_head(6, seed=2)
    store.save(encode_head(old, MODEL))
    store.save(encode_head(new, MODEL))
    bad = _corruptions()[kind]
    (tmp_path / CURRENT).write_bytes(bad)

    result = store.load(MODEL)

    assert state_of(result.head) == state_of(old)
    assert result.source == tmp_path / PREVIOUS
    assert len(result.set_aside) == 1
    moved = result.set_aside[0]
    assert moved.parent == tmp_path
    assert moved.name.startswith(CURRENT + ".corrupt-")
    assert moved.read_bytes() == bad  # kept, never deleted
    assert not (tmp_path / CURRENT).exists()
    assert (tmp_path / PREVIOUS).exists()

    # the box carries on: the next save becomes current again and loads cleanly
    store.save(encode_head(new, MODEL))
    again = store.load(MODEL)
    assert again.source == tmp_path / CURRENT
    assert state_of(again.head) == state_of(new)
    assert moved.exists()


def test_both_generations_corrupt_starts_empty_with_both_set_aside(tmp_path):
    (tmp_path / CURRENT).write_bytes(b"garbage")
    (tmp_path / PREVIOUS).write_bytes(b"")
    result = StateStore(tmp_path).load(MODEL)
    assert result.head is None
    assert result.source is None
    names = sorted(p.name for p in result.set_aside)
    assert len(names) == 2
    assert names[0].startswith(CURRENT + ".corrupt-")
    assert names[1].startswith(PREVIOUS + ".corrupt-")
    assert sorted(p.read_bytes() for p in result.set_aside) == [b"", b"garbage"]
    assert files_in(tmp_path) == names


def test_repeated_set_asides_never_overwrite_each_other(tmp_path):
    store = StateStore(tmp_path)
    contents = [b"first bad", b"second bad", b"third bad"]
    for bad in contents:
        (tmp_path / CURRENT).write_bytes(bad)
        assert store.load(MODEL).head is None
    kept = sorted(p.read_bytes() for p in tmp_path.glob(CURRENT + ".corrupt-*"))
    assert kept == sorted(contents)


@pytest.mark.parametrize("other", [OTHER_SHA, OTHER_DIM], ids=["other-sha256", "other-dim"])
def test_foreign_state_is_set_aside_and_box_starts_empty(tmp_path, other):
    store = StateStore(tmp_path)
    foreign = make_head(5, dim=other.dim)
    data = encode_head(foreign, other)
    store.save(data)
    result = store.load(MODEL)
    assert result.head is None
    assert result.source is None
    assert len(result.set_aside) == 1
    moved = result.set_aside[0]
    assert moved.name.startswith(CURRENT + ".foreign-")
    assert moved.read_bytes() == data
    assert files_in(tmp_path) == [moved.name]
    # and the other model can still use it once moved back
    assert state_of(decode_head(moved.read_bytes(), other)) == state_of(foreign)


def test_unreadable_current_is_an_error_not_a_crash(tmp_path):
    # a directory where the file should be: reading it raises OSError
    (tmp_path / CURRENT).mkdir()
    good = encode_head(make_head(2), MODEL)
    (tmp_path / PREVIOUS).write_bytes(good)
    result = StateStore(tmp_path).load(MODEL)
    assert result.source == tmp_path / PREVIOUS
    assert result.set_aside[0].name.startswith(CURRENT + ".corrupt-")


# -- atomic writes and crashes ---------------------------------------------------------------

def failing_open(after_bytes=10):
    """An ``open`` whose files, opened for writing, write a little and then fail like a full disk."""
    real_open = open

    def fake_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" not in mode:
            return handle
        real_write = handle.write

        class Wrapper:
            def __init__(self):
                self.name = handle.name

            def write(self, data):
                real_write(bytes(data[:after_bytes]))
                raise OSError(errno.ENOSPC, "No space left on device")

            def __getattr__(self, attr):
                return getattr(handle, attr)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handle.close()
                return False

        return Wrapper()

    return fake_open


def test_atomic_file_replaces_only_on_success(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with atomic_file(target) as out:
        out.write(b"new")
        assert Path(out.name).parent == tmp_path
        assert target.read_bytes() == b"old"  # not visible before the block ends
    assert target.read_bytes() == b"new"
    assert files_in(tmp_path) == ["x.bin"]


@pytest.mark.parametrize("existing", [True, False])
def test_atomic_file_exception_in_block_leaves_target_and_no_temp(tmp_path, existing):
    target = tmp_path / "x.bin"
    if existing:
        target.write_bytes(b"old contents")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as out:
            out.write(b"half of the ne")
            raise RuntimeError("power cut")
    if existing:
        assert target.read_bytes() == b"old contents"
        assert files_in(tmp_path) == ["x.bin"]
    else:
        assert files_in(tmp_path) == []


def test_atomic_file_failing_rename_leaves_target_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old contents")

    def broken_replace(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(device.atomic.os, "replace", broken_replace)
    with pytest.raises(OSError):
        with atomic_file(target) as out:
            out.write(b"new contents")
    monkeypatch.undo()
    assert target.read_bytes() == b"old contents"
    assert files_in(tmp_path) == ["x.bin"]


def test_crash_mid_write_in_store_keeps_old_state(tmp_path, monkeypatch):
    store = StateStore(tmp_path)
    old = encode_head(make_head(3), MODEL)
    store.save(old)
    monkeypatch.setattr(device.atomic, "open", failing_open(), raising=False)
    with pytest.raises(OSError):
        store.save(encode_head(make_head(9), MODEL))
    monkeypatch.undo()
    assert (tmp_path / CURRENT).read_bytes() == old
    assert not [name for name in files_in(tmp_path) if name.endswith(".tmp")]
    result = store.load(MODEL)
    assert result.source == tmp_path / CURRENT
    assert state_of(result.head) == state_of(make_head(3))


def test_failing_fsync_in_store_keeps_old_state(tmp_path, monkeypatch):
    store = StateStore(tmp_path)
    old = encode_head(make_head(3), MODEL)
    store.save(old)

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(device.atomic.os, "fsync", no_space)
    with pytest.raises(OSError):
        store.save(encode_head(make_head(9), MODEL))
    monkeypatch.undo()
    assert (tmp_path / CURRENT).read_bytes() == old
    assert not [name for name in files_in(tmp_path) if name.endswith(".tmp")]


