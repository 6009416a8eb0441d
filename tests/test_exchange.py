"""The examples export: exact round trips, the old head export told apart, and hostile files refused in plain words."""

from __future__ import annotations

import io
import json
import logging
import math
import pickle
import re
import struct
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.errors import ClassNameError, StateError
from device.exchange import (
    EXPORT_FORMAT,
    MAX_CROP_BYTES,
    SNIFF_BYTES,
    VERSION,
    ExportContents,
    ExportedExample,
    ExportError,
    decode_export,
    encode_export,
    looks_like_export,
)
from device.head import NearestCentroidHead, validate_class_name
from device.library import SOURCES
from device.storage import ModelIdentity, encode_head

log = logging.getLogger(__name__)

DIM = 16
MODEL = ModelIdentity(sha256="5e" * 32, dim=DIM, name="mobilenet-test.tflite")


def jpeg(seed, size=40):
    """Bytes that start like a JPEG (the export checks the SOI marker, not the picture)."""
    return b"\xff\xd8" + np.random.default_rng(seed).bytes(size) + b"\xff\xd9"


def vector(seed, dtype="uint8", dim=DIM):
    r = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return r.integers(info.min, info.max, size=dim, endpoint=True).astype(dtype)
    return r.standard_normal(dim).astype(dtype)


def make_contents(n=5, *, crops=True, vectors="uint8", seeds=True, model=MODEL, num_classes=4):
    """An export of ``n`` examples; ``vectors`` is a dtype, a list of dtypes to cycle through, or None."""
    dtypes = [vectors] if isinstance(vectors, str) else (vectors or [])
    examples = tuple(
        ExportedExample(class_id=i % num_classes, taken=1_712_345_678.123456 + i * 0.37,
                        source=SOURCES[i % len(SOURCES)], crop=jpeg(i) if crops else None,
                        vector=vector(i, dtypes[i % len(dtypes)], model.dim) if dtypes else None)
        for i in range(n))
    seed_sums = {}
    if seeds:
        big = np.iinfo(np.int64)
        seed_sums = {0: (np.arange(model.dim, dtype=np.int64) * -123_456_789, 7),
                     num_classes - 1: (np.full(model.dim, big.max, dtype=np.int64), 0),
                     num_classes - 2: (np.full(model.dim, big.min, dtype=np.int64), 2**40 - 1)}
    names = {0: "Apple", 1: "Banana (ripe)", 3: "Ünïcode 3"}
    return ExportContents(model=model, num_classes=num_classes, names=names, examples=examples, seeds=seed_sums)


def unzip(data):
    """``(manifest dict, {member name: bytes})`` of an export, in the file's order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        members = {info.filename: archive.read(info) for info in archive.infolist() if info.filename != "manifest.json"}
    return manifest, members


def rezip(manifest, members, *, raw_manifest=None, compression=zipfile.ZIP_STORED):
    """An export written by hand: ``manifest`` (a dict, or ``raw_manifest`` bytes) first, then ``members``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose by some tests
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            raw = raw_manifest if raw_manifest is not None else json.dumps(manifest, separators=(",", ":")).encode()
            archive.writestr("manifest.json", raw)
            for name, data in (members.items() if isinstance(members, dict) else members):
                archive.writestr(name, data)
    return buffer.getvalue()


def legacy_head_export():
    head = NearestCentroidHead(DIM, 3, names=["a", "b", "c"])
    r = np.random.default_rng(0)
    for i in range(6):
        head.teach(i % 3, r.standard_normal(DIM))
    return encode_head(head, MODEL)


BASE = make_contents(6, vectors=["uint8", "float32"])
BASE_DATA = encode_export(BASE)


def members_read(monkeypatch, data, **limits):
    """``(names of the members decode_export opened, its ExportError or None)``."""
    names = []
    original = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        names.append(getattr(name, "filename", name))
        return original(self, name, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(zipfile.ZipFile, "open", spy)
        try:
            decode_export(data, **limits)
        except ExportError as exc:
            return names, exc
    return names, None


def refused_unread(monkeypatch, data, *words, **limits):
    """Like :func:`refused`, and no member was read: the refusal came from the zip's directory alone."""
    message = refused(data, *words, **limits)
    names, error = members_read(monkeypatch, data, **limits)
    assert names == [] and str(error) == message
    return message


def test_the_read_spy_sees_what_is_read(monkeypatch):
    """The control for refused_unread: a sound file is read, member by member."""
    names, error = members_read(monkeypatch, BASE_DATA)
    assert error is None and names[0] == "manifest.json" and "crops/6.jpg" in names


def refused(data, *words, **limits):
    """Decode ``data``, expecting an ExportError whose message holds every one of ``words``; the message."""
    with pytest.raises(ExportError) as caught:
        decode_export(data, **limits)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    log.info("refused: %s", message)
    return message


# -- round trips ---------------------------------------------------------------------------------

ROUND_TRIPS = {
    "one example, crop and uint8 vector": dict(n=1),
    "many examples, crops and uint8 vectors": dict(n=60),
    "float32 vectors": dict(n=9, vectors="float32"),
    "every dtype in one file": dict(n=12, vectors=["uint8", "int8", "float16", "float32"]),
    "crops only (no vectors)": dict(n=7, vectors=None),
    "vectors only (no crops)": dict(n=7, crops=False),
    "neither crop nor vector": dict(n=3, crops=False, vectors=None),
    "no seeds": dict(n=4, seeds=False),
    "seeds only": dict(n=0),
    "nothing at all": dict(n=0, seeds=False),
    "64 classes and a 1-value model": dict(n=70, num_classes=64, model=ModelIdentity("0f" * 32, 1, "")),
    "the largest model": dict(n=2, model=ModelIdentity("ab" * 32, 4096, "big")),
}


@pytest.mark.parametrize("case", sorted(ROUND_TRIPS))
def test_round_trip_is_exact(case):
    contents = make_contents(**ROUND_TRIPS[case])
    back = decode_export(encode_export(contents))
    assert back == contents
    # the same, spelled out without ExportContents.__eq__
    assert back.model == contents.model and back.num_classes == contents.num_classes
    assert back.names == contents.names
    assert len(back.examples) == len(contents.examples)
    for got, sent in zip(back.examples, contents.examples):
        assert (got.class_id, got.taken, got.source, got.crop) == (sent.class_id, sent.taken, sent.source, sent.crop)
        if sent.vector is None:
            assert got.vector is None
        else:
            assert got.vector.dtype == sent.vector.dtype and got.vector.tobytes() == sent.vector.tobytes()
    assert sorted(back.seeds) == sorted(contents.seeds)
    for class_id, (sums, count) in contents.seeds.items():
        assert back.seeds[class_id][0].dtype == np.int64
        assert back.seeds[class_id][0].tolist() == sums.tolist() and back.seeds[class_id][1] == count


def test_equality_sees_every_difference():
    """What the round-trip tests rely on: contents differing in any one part are not equal."""
    example = BASE.examples[0]
    changed_examples = {
        "class": ExportedExample(1, example.taken, example.source, example.crop, example.vector),
        "taken": ExportedExample(example.class_id, example.taken + 1e-6, example.source, example.crop, example.vector),
        "source": ExportedExample(example.class_id, example.taken, "phone", example.crop, example.vector),
        "crop byte": ExportedExample(example.class_id, example.taken, example.source, example.crop[:-1] + b"\x00",
                                     example.vector),
        "no crop": ExportedExample(example.class_id, example.taken, example.source, None, example.vector),
        "vector value": ExportedExample(example.class_id, example.taken, example.source, example.crop,
                                        example.vector ^ np.uint8(1)),
        "vector dtype": ExportedExample(example.class_id, example.taken, example.source, example.crop,
                                        example.vector.astype(np.int16)),
        "no vector": ExportedExample(example.class_id, example.taken, example.source, example.crop, None),
    }
    assert example == ExportedExample(example.class_id, example.taken, example.source, bytes(example.crop),
                                      example.vector.copy())
    for what, other in changed_examples.items():
        assert other != example, what
        assert ExportContents(BASE.model, BASE.num_classes, BASE.names, (other,) + BASE.examples[1:],
                              BASE.seeds) != BASE, what
    sums, count = BASE.seeds[0]
    for what, seeds in {"seed sums": {**BASE.seeds, 0: (sums + 1, count)},
                        "seed count": {**BASE.seeds, 0: (sums, count + 1)},
                        "seed dtype": {**BASE.seeds, 0: (sums.astype(np.int32), count)},
                        "no seed": {k: v for k, v in BASE.seeds.items() if k != 0}}.items():
        assert ExportContents(BASE.model, BASE.num_classes, BASE.names, BASE.examples, seeds) != BASE, what
    assert ExportContents(BASE.model, BASE.num_classes, {**BASE.names, 0: "Pear"}, BASE.examples, BASE.seeds) != BASE
    assert ExportContents(BASE.model, 5, BASE.names, BASE.examples, BASE.seeds) != BASE
    assert ExportContents(ModelIdentity("77" * 32, DIM, MODEL.name), BASE.num_classes, BASE.names, BASE.examples,
                          BASE.seeds) != BASE


def _example(dim):
    vectors = st.one_of(
        st.none(),
        st.sampled_from(["uint8", "int8", "float16", "float32"]).flatmap(
            lambda dtype: st.binary(min_size=dim * np.dtype(dtype).itemsize, max_size=dim * np.dtype(dtype).itemsize)
            .map(lambda raw: np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype))))
    return st.builds(ExportedExample,
                     class_id=st.integers(0, 63),
                     taken=st.floats(allow_nan=False, allow_infinity=False),
                     source=st.sampled_from(SOURCES),
                     crop=st.one_of(st.none(), st.binary(max_size=300).map(lambda b: b"\xff\xd8" + b)),
                     vector=vectors)


def _contents(dim):
    seeds = st.dictionaries(
        st.integers(0, 63),
        st.tuples(st.lists(st.integers(-2**63, 2**63 - 1), min_size=dim, max_size=dim).map(
            lambda values: np.array(values, dtype=np.int64)), st.integers(0, 2**40 - 1)),
        max_size=4)
    name = st.one_of(st.text(alphabet=st.characters(categories=["L", "Nd"]), min_size=1, max_size=32),
                     st.text(max_size=40))
    return st.builds(ExportContents,
                     model=st.just(ModelIdentity("c" * 64, dim, "hypothesis")),
                     num_classes=st.integers(2, 64),
                     names=st.dictionaries(st.integers(0, 63), name, max_size=5),
                     examples=st.lists(_example(dim), max_size=8).map(tuple),
                     seeds=seeds)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 6).flatmap(_contents))
def test_any_contents_the_encoder_takes_come_back_exactly(contents):
    """Names come back as the class-name rules clean them; everything else exactly (NaN payloads too: by bytes)."""
    try:
        cleaned = {class_id: validate_class_name(name) for class_id, name in contents.names.items()}
    except ClassNameError:
        with pytest.raises(ExportError, match="name of class"):
            encode_export(contents)
        return
    back = decode_export(encode_export(contents))
    assert back.names == cleaned and back.seeds.keys() == contents.seeds.keys()
    assert (back.model, back.num_classes) == (contents.model, contents.num_classes)
    for got, sent in zip(back.examples, contents.examples, strict=True):
        assert (got.class_id, got.taken, got.source, got.crop) == (sent.class_id, sent.taken, sent.source, sent.crop)
        assert (got.vector is None) == (sent.vector is None)
        if sent.vector is not None:
            assert got.vector.dtype == sent.vector.dtype and got.vector.tobytes() == sent.vector.tobytes()
    for class_id, (sums, count) in contents.seeds.items():
        assert back.seeds[class_id][0].tobytes() == sums.tobytes() and back.seeds[class_id][1] == count


def test_the_same_contents_give_the_same_bytes():
    assert encode_export(make_contents(8)) == encode_export(make_contents(8))


def test_decoded_arrays_cannot_be_changed_in_place():
    """Vectors share one block per dtype: writing through one example must not be possible."""
    back = decode_export(BASE_DATA)
    with pytest.raises(ValueError):
        back.examples[0].vector[0] = 1
    with pytest.raises(ValueError):
        back.seeds[0][0][0] = 1


def test_decoding_uses_no_pickle_and_no_numpy_load(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle or np.load was used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    assert decode_export(BASE_DATA) == BASE


def test_a_hand_written_copy_of_the_format_decodes_the_same():
    """The baseline of the hostile tests below: unzip + rezip alone changes nothing."""
    manifest, members = unzip(BASE_DATA)
    assert decode_export(rezip(manifest, members)) == BASE
    assert decode_export(rezip(manifest, members, compression=zipfile.ZIP_DEFLATED)) == BASE
    assert manifest["format"] == EXPORT_FORMAT and manifest["version"] == VERSION
    assert set(members) == {"vectors-uint8.bin", "vectors-float32.bin", "seeds.bin",
                            *(f"crops/{n}.jpg" for n in range(1, 7))}


# -- the encoder refuses what the decoder would ------------------------------------------------------

def _with_example(**change):
    example = BASE.examples[0]
    fields = dict(class_id=example.class_id, taken=example.taken, source=example.source, crop=example.crop,
                  vector=example.vector)
    fields.update(change)
    return ExportContents(BASE.model, BASE.num_classes, BASE.names, (ExportedExample(**fields),), BASE.seeds)


def _with(**change):
    fields = dict(model=BASE.model, num_classes=BASE.num_classes, names=BASE.names, examples=BASE.examples,
                  seeds=BASE.seeds)
    fields.update(change)
    return ExportContents(**fields)


UNWRITABLE = {
    "class 64": (lambda: _with_example(class_id=64), "example 1 has class 65; classes are 1 to 64"),
    "class -1": (lambda: _with_example(class_id=-1), "example 1 has class 0"),
    "class True": (lambda: _with_example(class_id=True), "class True"),
    "taken NaN": (lambda: _with_example(taken=math.nan), "finite"),
    "taken infinite": (lambda: _with_example(taken=math.inf), "finite"),
    "taken text": (lambda: _with_example(taken="now"), "finite"),
    "unknown source": (lambda: _with_example(source="camera"), "source 'camera'"),
    "crop not a JPEG": (lambda: _with_example(crop=b"\x89PNG\r\n"), "not a JPEG"),
    "empty crop": (lambda: _with_example(crop=b""), "not a JPEG"),
    "crop too big": (lambda: _with_example(crop=b"\xff\xd8" + bytes(MAX_CROP_BYTES)), "at most 524288"),
    "crop text": (lambda: _with_example(crop="\xff\xd8"), "bytes"),
    "vector too short": (lambda: _with_example(vector=np.zeros(DIM - 1, np.uint8)), "16 values"),
    "vector 2-d": (lambda: _with_example(vector=np.zeros((1, DIM), np.uint8)), "shape"),
    "vector float64": (lambda: _with_example(vector=np.zeros(DIM)), "float64"),
    "seed float sums": (lambda: _with(seeds={0: (np.zeros(DIM), 1)}), "int64"),
    "seed short sums": (lambda: _with(seeds={0: (np.zeros(DIM - 1, np.int64), 1)}), "16 int64"),
    "seed negative count": (lambda: _with(seeds={0: (np.zeros(DIM, np.int64), -1)}), "count"),
    "seed count 2**40": (lambda: _with(seeds={0: (np.zeros(DIM, np.int64), 2**40)}), "count"),
    "seed of class 64": (lambda: _with(seeds={64: (np.zeros(DIM, np.int64), 1)}), "class 65"),
    "seed not a pair": (lambda: _with(seeds={0: np.zeros(DIM, np.int64)}), "pair"),
    "bad name": (lambda: _with(names={0: "<script>"}), "name of class 1"),
    "empty name": (lambda: _with(names={2: "  "}), "name of class 3"),
    "name of class 64": (lambda: _with(names={64: "x"}), "class 65"),
    "1 class": (lambda: _with(num_classes=1), "number of classes"),
    "65 classes": (lambda: _with(num_classes=65), "number of classes"),
    "model sha not hex": (lambda: _with(model=ModelIdentity("zz" * 32, DIM, "m")), "sha256"),
    "model sha upper-case": (lambda: _with(model=ModelIdentity("5E" * 32, DIM, "m")), "sha256"),
    "model dim 0": (lambda: _with(model=ModelIdentity("5e" * 32, 0, "m")), "feature size"),
    "model dim 4097": (lambda: _with(model=ModelIdentity("5e" * 32, 4097, "m")), "feature size"),
    "not an example": (lambda: _with(examples=({"class": 0},)), "not an ExportedExample"),
}


@pytest.mark.parametrize("case", sorted(UNWRITABLE))
def test_the_encoder_refuses_what_the_decoder_would(case):
    build, words = UNWRITABLE[case]
    with pytest.raises(ExportError) as caught:
        encode_export(build())
    assert words in str(caught.value)


# -- telling formats apart ---------------------------------------------------------------------------

def test_an_export_is_recognised_from_its_first_bytes():
    assert looks_like_export(BASE_DATA)
    assert looks_like_export(BASE_DATA[:SNIFF_BYTES])
    assert looks_like_export(encode_export(make_contents(0, seeds=False)))
    manifest, members = unzip(BASE_DATA)
    # what decode_export reads, the sniff recognises: a deflated or re-indented manifest too
    for data in (rezip(manifest, members, compression=zipfile.ZIP_DEFLATED),
                 rezip(None, members, raw_manifest=json.dumps(manifest, indent=2).encode())):
        assert looks_like_export(data) and decode_export(data) == BASE


def _manifest_not_first():
    manifest, members = unzip(BASE_DATA)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", json.dumps(manifest))
    return buffer.getvalue()


@pytest.mark.parametrize("what", ["old head export", "empty", "junk", "png", "other json zip", "manifest not first",
                                  "sorted manifest", "deflated manifest of another format"])
def test_other_files_are_not_mistaken_for_an_export(what):
    other_manifest = rezip({"format": "something-else", "version": 1}, {})
    data = {
        "old head export": legacy_head_export(),
        "sorted manifest": rezip(None, unzip(BASE_DATA)[1],
                                 raw_manifest=json.dumps(unzip(BASE_DATA)[0], sort_keys=True).encode()),
        "empty": b"",
        "junk": np.random.default_rng(3).bytes(2000),
        "png": b"\x89PNG\r\n\x1a\n" + bytes(100),
        "other json zip": other_manifest,
        "manifest not first": _manifest_not_first(),
        "deflated manifest of another format": rezip({"format": "x"}, {}, compression=zipfile.ZIP_DEFLATED),
    }[what]
    assert not looks_like_export(data)
    refused(data)  # what the sniff does not know, the decoder refuses


def test_the_old_head_export_is_refused_in_plain_words(monkeypatch):
    data = legacy_head_export()
    assert data[:4] == b"PK\x03\x04"  # it is a zip too: the sniff must look further
    message = refused_unread(monkeypatch, data, "not a teachbox examples export", "head.npz")
    assert isinstance(ExportError(message), StateError) and isinstance(ExportError(message), ValueError)


# -- damaged files -------------------------------------------------------------------------------------

def test_every_truncation_is_refused():
    data = encode_export(make_contents(3))
    cuts = sorted(set(range(0, len(data), 7)) | set(range(len(data) - 120, len(data))))
    for cut in cuts:
        with pytest.raises(ExportError):
            decode_export(data[:cut])


def _decodes_the_same_or_refuses(data, original):
    """``True`` if ``data`` decodes (to ``original``, and then the sniff knows it too), ``False`` if refused."""
    try:
        back = decode_export(data)
    except ExportError:
        return False
    assert back == original
    assert looks_like_export(data)
    return True


SMALL = make_contents(3, vectors=["uint8", "float32"])
SMALL_DATA = encode_export(SMALL)


def test_a_flip_of_any_one_bit_is_refused_or_changes_nothing():
    accepted = 0
    for position in range(len(SMALL_DATA)):
        damaged = bytearray(SMALL_DATA)
        damaged[position] ^= 1 << (position % 8)
        accepted += _decodes_the_same_or_refuses(bytes(damaged), SMALL)
    # flips in fields the reader ignores (local header copies, dates) are harmless; most are caught
    assert accepted < len(SMALL_DATA) // 2


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SMALL_DATA) - 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_damage_is_refused_or_changes_nothing(changes):
    damaged = bytearray(SMALL_DATA)
    for position, mask in changes:
        damaged[position] ^= mask
    _decodes_the_same_or_refuses(bytes(damaged), SMALL)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_are_refused(data):
    with pytest.raises(ExportError):
        decode_export(data)
    assert not looks_like_export(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(BASE_DATA)), st.binary(min_size=1, max_size=64))
def test_bytes_spliced_into_an_export_are_refused_or_change_nothing(at, junk):
    _decodes_the_same_or_refuses(BASE_DATA[:at] + junk + BASE_DATA[at:], BASE)


# -- hostile archives ------------------------------------------------------------------------------------

def _central_entries(data):
    """``(offset, name)`` of every central directory entry."""
    count, size, start = struct.unpack_from("<HLL", data, len(data) - 12)
    entries, offset = [], start
    for _ in range(count):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, offset + 28)
        entries.append((offset, data[offset + 46:offset + 46 + name_length].decode()))
        offset += 46 + name_length + extra_length + comment_length
    return entries


def _declaring(data, name, size):
    """``data`` with member ``name``'s declared uncompressed size in the central directory set to ``size``."""
    patched = bytearray(data)
    offset = dict((n, o) for o, n in _central_entries(data))[name]
    struct.pack_into("<L", patched, offset + 24, size)
    return bytes(patched)


def test_a_member_declaring_a_huge_size_is_refused_before_anything_is_read(monkeypatch):
    data = _declaring(BASE_DATA, "crops/1.jpg", 0xFFFF_FFFE)
    refused_unread(monkeypatch, data, "unpack to 4294", "more than the 629145600")


def test_a_zip_bomb_is_refused_before_it_is_inflated(monkeypatch):
    manifest, members = unzip(BASE_DATA)
    members["vectors-uint8.bin"] = bytes(8 << 20)  # 8 MB of zeros, a few KB once deflated
    data = rezip(manifest, members, compression=zipfile.ZIP_DEFLATED)
    assert len(data) < 100_000
    refused_unread(monkeypatch, data, "unpack to", max_bytes=4 << 20)


@pytest.mark.parametrize("member, limit", [("crops/1.jpg", MAX_CROP_BYTES), ("seeds.bin", 64 * 4096 * 8),
                                           ("manifest.json", (1 << 20) + 256 * 10)])
def test_a_member_larger_than_its_kind_can_be_is_refused_unread(monkeypatch, member, limit):
    manifest, members = unzip(BASE_DATA)
    big = b"\xff\xd8" + bytes(limit)  # just over the limit
    if member == "manifest.json":
        data = rezip(None, members, raw_manifest=json.dumps(manifest).encode() + b" " * limit,
                     compression=zipfile.ZIP_DEFLATED)
    else:
        members[member] = big
        data = rezip(manifest, members, compression=zipfile.ZIP_DEFLATED)
    refused_unread(monkeypatch, data, repr(member), f"at most {limit}", max_examples=10)


def test_too_many_members_are_refused_before_the_directory_is_parsed(monkeypatch):
    manifest, members = unzip(encode_export(make_contents(20)))
    data = rezip(manifest, members)
    assert decode_export(data) == make_contents(20)
    parsed = []
    original = zipfile.ZipFile.__init__

    def spy(self, *args, **kwargs):
        parsed.append(args)
        original(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "__init__", spy)
    # 20 crops, 1 vector file, seeds and the manifest: 23 members; 10 examples allow 16
    refused(data, "23 members", "at most 16", max_examples=10)
    assert parsed == []


def test_a_directory_larger_than_its_members_need_is_refused():
    data = bytearray(BASE_DATA)
    count = struct.unpack_from("<H", data, len(data) - 12)[0]
    struct.pack_into("<L", data, len(data) - 12 + 2, count * 128 + 1)
    refused(bytes(data), f"directory is {count * 128 + 1} bytes for {count} members")


def test_an_export_of_more_than_65535_members_reads_back():
    """ZIP64 end records (what zipfile writes past 65535 members) are read, and their count checked."""
    examples = tuple(ExportedExample(i % 4, float(i), "button", b"\xff\xd8" + i.to_bytes(3, "little"), None)
                     for i in range(70_000))
    contents = ExportContents(MODEL, 4, {}, examples, {})
    data = encode_export(contents)
    assert decode_export(data) == contents
    refused(data, "70001 members", "at most 60006", max_examples=60_000)


@pytest.mark.parametrize("name", ["../evil.jpg", "/etc/passwd", "crops/../../x.jpg", "crops\\..\\x.jpg",
                                  "C:/windows/x.jpg", "crops/1.jpg/../../../a", "\\\\server\\share"])
def test_path_traversal_names_are_refused(name):
    manifest, members = unzip(BASE_DATA)
    members[name] = b"\xff\xd8 gotcha"
    refused(rezip(manifest, members), "absolute path or one with '..'")


@pytest.mark.parametrize("name", ["notes.txt", "crops/", "crops/0.jpg", "crops/01.jpg", "crops/1.jpeg",
                                  "vectors-float64.bin", "meta.npy", "Manifest.json", "crops/1.jpg\n"])
def test_unexpected_members_are_refused(name):
    manifest, members = unzip(BASE_DATA)
    members[name] = b"\xff\xd8"
    refused(rezip(manifest, members), "unexpected member")


def test_a_name_with_a_nul_is_refused():
    manifest, members = unzip(BASE_DATA)
    data = rezip(manifest, members)
    # rename crops/6.jpg to crops/6.jp\0 in its central directory entry (zipfile would cut the name at the NUL)
    offset = dict((n, o) for o, n in _central_entries(data))["crops/6.jpg"]
    patched = bytearray(data)
    patched[offset + 46 + len("crops/6.jp")] = 0
    refused(bytes(patched), "'crops/6.jp\\x00'", "NUL")


def test_two_members_of_one_name_are_refused():
    manifest, members = unzip(BASE_DATA)
    refused(rezip(manifest, list(members.items()) + [("crops/2.jpg", jpeg(99))]), "two members named 'crops/2.jpg'")


def test_a_member_the_manifest_does_not_describe_is_refused():
    manifest, members = unzip(BASE_DATA)
    members["crops/99.jpg"] = jpeg(1)
    refused(rezip(manifest, members), "'crops/99.jpg'", "does not describe")
    manifest, members = unzip(encode_export(make_contents(3, seeds=False)))
    members["seeds.bin"] = bytes(8 * DIM)
    refused(rezip(manifest, members), "'seeds.bin'", "does not describe")


@pytest.mark.parametrize("member", ["crops/3.jpg", "vectors-float32.bin", "seeds.bin"])
def test_a_member_the_manifest_describes_must_be_there(member):
    manifest, members = unzip(BASE_DATA)
    del members[member]
    refused(rezip(manifest, members), member)


@pytest.mark.parametrize("member, change", [("vectors-uint8.bin", b"\x00"), ("vectors-float32.bin", b"\x00" * 4),
                                            ("seeds.bin", b"\x00" * 8)])
def test_binary_members_must_be_exactly_the_described_length(member, change):
    manifest, members = unzip(BASE_DATA)
    members[member] += change
    refused(rezip(manifest, members), repr(member), "the manifest describes")
    members[member] = members[member][:-2 * len(change)]
    refused(rezip(manifest, members), repr(member), "the manifest describes")


def test_a_crop_that_is_not_a_jpeg_is_refused():
    manifest, members = unzip(BASE_DATA)
    members["crops/4.jpg"] = b"\x89PNG\r\n\x1a\n" + bytes(20)
    refused(rezip(manifest, members), "example 4", "not a JPEG")


def test_a_stored_member_whose_sizes_disagree_is_refused():
    """A damaged directory entry: zipfile would read the declared size and let the rest pass unchecked."""
    data = bytearray(BASE_DATA)
    offset = dict((n, o) for o, n in _central_entries(data))["crops/2.jpg"]
    size = struct.unpack_from("<L", data, offset + 20)[0]
    struct.pack_into("<L", data, offset + 20, size + 10)
    refused(bytes(data), "'crops/2.jpg' is stored in", "damaged")


def test_an_encrypted_member_is_refused():
    data = bytearray(BASE_DATA)
    offset = dict((n, o) for o, n in _central_entries(data))["crops/1.jpg"]
    data[offset + 8] |= 1
    refused(bytes(data), "encrypted")


# -- the manifest, field by field ------------------------------------------------------------------------

def _set(path, value):
    def change(manifest):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _drop(path):
    def change(manifest):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


MANIFESTS = {
    "format of the old state": (_set(["format"], "teachbox-state"), "not a teachbox examples export"),
    "no format": (_drop(["format"]), "not a teachbox examples export"),
    "version text": (_set(["version"], "1"), "version"),
    "version 0": (_set(["version"], 0), "version"),
    "version 1.0": (_set(["version"], 1.0), "version"),
    "version true": (_set(["version"], True), "version"),
    "no version": (_drop(["version"]), "version"),
    "unexpected field": (_set(["comment"], "hi"), "unexpected field 'comment'"),
    "format not first": (lambda m: m.update({"format": m.pop("format")}), "begin with its format"),
    "no names": (_drop(["names"]), "lacks the field 'names'"),
    "model a list": (_set(["model"], []), "model is a JSON list"),
    "model sha short": (_set(["model", "sha256"], "5e"), "sha256"),
    "model sha number": (_set(["model", "sha256"], 5), "sha256"),
    "model dim 0": (_set(["model", "dim"], 0), "feature size"),
    "model dim 4097": (_set(["model", "dim"], 4097), "feature size"),
    "model dim text": (_set(["model", "dim"], "16"), "feature size"),
    "model dim float": (_set(["model", "dim"], 16.0), "feature size"),
    "model dim other": (_set(["model", "dim"], 8), "8"),
    "model name number": (_set(["model", "name"], 3), "name"),
    "model name long": (_set(["model", "name"], "m" * 300), "name"),
    "model extra field": (_set(["model", "url"], "x"), "unexpected field 'url'"),
    "num_classes 1": (_set(["num_classes"], 1), "number of classes is 1"),
    "num_classes 65": (_set(["num_classes"], 65), "number of classes is 65"),
    "num_classes text": (_set(["num_classes"], "4"), "number of classes"),
    "num_classes null": (_set(["num_classes"], None), "number of classes"),
    "names a list": (_set(["names"], ["a", "b"]), "names are a JSON list"),
    "name key not a number": (_set(["names"], {"x": "a"}), "not a class number"),
    "name key with zero": (_set(["names"], {"01": "a"}), "not a class number"),
    "name key 64": (_set(["names"], {"64": "a"}), "class 65"),
    "name empty": (_set(["names", "0"], ""), "name of class 1"),
    "name with markup": (_set(["names", "1"], "<b>"), "name of class 2"),
    "name too long": (_set(["names", "1"], "x" * 33), "name of class 2"),
    "name a number": (_set(["names", "1"], 7), "name of class 2"),
    "examples an object": (_set(["examples"], {}), "examples is a JSON dict"),
    "example a list": (_set(["examples", 2], [0, 1.0]), "example 3 is a JSON list"),
    "example lacks taken": (_drop(["examples", 0, "taken"]), "example 1 lacks the field 'taken'"),
    "example extra field": (_set(["examples", 0, "burst"], 1), "unexpected field 'burst'"),
    "example class 98": (_set(["examples", 5, "class"], 98), "example 6 has class 99; classes are 1 to 64"),
    "example class -1": (_set(["examples", 0, "class"], -1), "example 1 has class 0"),
    "example class text": (_set(["examples", 0, "class"], "1"), "example 1 has class '1'"),
    "example class float": (_set(["examples", 0, "class"], 1.0), "example 1 has class 1.0"),
    "example class true": (_set(["examples", 0, "class"], True), "class True"),
    "example taken text": (_set(["examples", 1, "taken"], "now"), "example 2 was taken at 'now'"),
    "example taken null": (_set(["examples", 1, "taken"], None), "finite"),
    "example taken huge": (_set(["examples", 1, "taken"], 10**400), "finite"),
    "example source": (_set(["examples", 0, "source"], "camera"), "example 1 has the source 'camera'"),
    "example source null": (_set(["examples", 0, "source"], None), "source None"),
    "example crop number": (_set(["examples", 0, "crop"], 5), "not crops/<n>.jpg"),
    "example crop traversal": (_set(["examples", 0, "crop"], "../crops/1.jpg"), "not crops/<n>.jpg"),
    "example crop missing": (_set(["examples", 0, "crop"], "crops/77.jpg"), "missing"),
    "example crop shared": (_set(["examples", 1, "crop"], "crops/1.jpg"), "same crop"),
    "example vector float64": (_set(["examples", 0, "vector"], "float64"), "float64"),
    "example vector true": (_set(["examples", 0, "vector"], True), "type"),
    "example vector of another dtype": (_set(["examples", 0, "vector"], "float32"), "counts 3"),
    "vectors a list": (_set(["vectors"], []), "vectors' description is a JSON list"),
    "vectors undescribed": (_drop(["vectors", "uint8"]), "does not describe"),
    "vectors of no example": (_set(["vectors", "int8"], {"count": 0, "dim": 16}), "no example has one"),
    "vectors count": (_set(["vectors", "uint8", "count"], 4), "counts 4"),
    "vectors count negative": (_set(["vectors", "uint8", "count"], -1), "count"),
    "vectors count 2**40": (_set(["vectors", "uint8", "count"], 2**40), "count"),
    "vectors dim": (_set(["vectors", "uint8", "dim"], 15), "15 values"),
    "vectors dim true": (_set(["vectors", "uint8", "dim"], True), "values"),
    "vectors extra field": (_set(["vectors", "uint8", "order"], "C"), "unexpected field"),
    "seeds an object": (_set(["seeds"], {}), "seeds is a JSON dict"),
    "seed class 64": (_set(["seeds", 0, "class"], 64), "seed 1 has class 65"),
    "seed class repeated": (_set(["seeds", 1, "class"], 0), "two seeds of class 1"),
    "seed count negative": (_set(["seeds", 0, "count"], -5), "count of seed 1"),
    "seed count 2**40": (_set(["seeds", 2, "count"], 2**40), "count of seed 3"),
    "seed count float": (_set(["seeds", 0, "count"], 7.0), "count of seed 1"),
    "seed lacks count": (_drop(["seeds", 0, "count"]), "seed 1 lacks the field 'count'"),
    "too many seeds": (_set(["seeds"], [{"class": i % 64, "count": 1} for i in range(65)]), "65 seeds"),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_a_manifest_field_of_the_wrong_type_or_range_is_refused(case):
    change, words = MANIFESTS[case]
    manifest, members = unzip(BASE_DATA)
    change(manifest)
    refused(rezip(manifest, members), words)


RAW_MANIFESTS = {
    "not JSON": (b"{not json", "not readable JSON"),
    "not UTF-8": (b'{"format": "\xff\xfe"}', "not readable JSON"),
    "a list": (b"[1, 2]", "JSON list, not an object"),
    "deeply nested": (b"[" * 100_000, "not readable JSON"),
    "NaN": (None, "NaN"),
    "a field twice": (None, "field 'names' twice"),
    "a number of 5000 digits": (None, "not readable JSON"),
    "taken 1e400": (None, "example 1 was taken at inf; it must be a finite number"),
}


@pytest.mark.parametrize("case", sorted(RAW_MANIFESTS))
def test_a_manifest_that_is_not_plain_json_is_refused(case):
    raw, words = RAW_MANIFESTS[case]
    manifest, members = unzip(BASE_DATA)
    text = json.dumps(manifest)
    if case == "NaN":
        raw = text.replace('"taken": ', '"taken": NaN, "x": ', 1).encode()
    elif case == "a field twice":
        raw = ('{"names": {}, ' + text[1:]).encode()
    elif case == "a number of 5000 digits":
        raw = text.replace('"num_classes": 4', '"num_classes": ' + "9" * 5000).encode()
    elif case == "taken 1e400":
        raw = re.sub(r'"taken": [0-9.]+', '"taken": 1e400', text, count=1).encode()
    assert raw != text.encode()
    refused(rezip(None, members, raw_manifest=raw), words)


def test_more_examples_than_allowed_are_refused():
    data = encode_export(make_contents(30, crops=False))
    assert len(decode_export(data, max_examples=30).examples) == 30
    refused(data, "30 examples", "at most 29", max_examples=29)


def test_a_file_over_the_size_limit_is_refused_unread(monkeypatch):
    refused_unread(monkeypatch, BASE_DATA, f"{len(BASE_DATA)} bytes", max_bytes=len(BASE_DATA) - 1)
    assert decode_export(BASE_DATA, max_bytes=len(BASE_DATA)) == BASE


@pytest.mark.parametrize("version", [VERSION + 1, 99])
def test_an_export_from_a_newer_teachbox_says_so(version):
    manifest, members = unzip(BASE_DATA)
    manifest["version"] = version
    manifest["albums"] = []  # a newer version may add fields: the version is what is reported
    message = refused(rezip(manifest, members), "newer teachbox", f"version {version}", "update")
    assert "albums" not in message
