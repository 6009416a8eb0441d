"""The export file that carries every example: class names, crops, embeddings and seeds.

Pure: bytes in, bytes out, no disk I/O and no pickle.  The file is a ZIP (members are
written stored, JPEGs do not compress; deflated members are read too) holding:

``manifest.json``
    The first member: UTF-8 JSON that begins with ``format`` (:data:`EXPORT_FORMAT`; so
    :func:`looks_like_export` can tell from a file's first bytes), then ``version``
    (:data:`VERSION`), ``model`` (``sha256``, ``dim``, ``name``: the model the vectors
    belong to), ``num_classes``, ``names`` (``{"0": "Apple", ...}``), ``examples`` (one
    record per example, in order: ``class``, ``taken``, ``source``, ``crop`` (the
    member holding its JPEG, or ``null``) and ``vector`` (the dtype of its embedding,
    or ``null``)), ``vectors`` (``{dtype: {"count": n, "dim": d}}``) and ``seeds``
    (``[{"class": c, "count": n}, ...]``).
``vectors-<dtype>.bin``
    The embeddings of that dtype (``uint8``, ``int8``, ``float16``, ``float32``),
    little endian, concatenated in example order: ``count * dim`` values.
``seeds.bin``
    The seeds' fixed-point sums, int64 little endian, ``dim`` values per seed in the
    order of the manifest's ``seeds``.
``crops/<n>.jpg``
    An example's crop, the JPEG bytes as stored.

Class ids are 0 to 63 in the file (shown to people as 1 to 64) and are not bounded by
``num_classes``: a library may keep examples of classes the box no longer shows, and
what to do with them is the importer's decision.  Examples are numbered from 1 in
messages.

:func:`decode_export` treats its input as hostile: the archive's directory, member count
and declared sizes are checked before any member is read, every member's size is
bounded, only the member names above are accepted (each once, each referenced), every
manifest field is checked for type and range, and every refusal is an
:class:`ExportError` that says what is wrong.  Saying that nothing was changed is the
caller's job (decoding changes nothing).  :func:`encode_export` applies the same rules,
so it never writes a file that :func:`decode_export` would refuse.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .errors import ClassNameError, StateError
from .head import MAX_CLASSES, MIN_CLASSES, validate_class_name
from .library import EMBEDDING_DTYPES, MAX_DIM, SOURCES
from .storage import ModelIdentity

log = logging.getLogger(__name__)

EXPORT_FORMAT = "teachbox-examples"
VERSION = 1
MANIFEST = "manifest.json"
SEEDS = "seeds.bin"
MAX_BYTES = 600 << 20
MAX_EXAMPLES = 200_000
MAX_CROP_BYTES = 512 << 10
MAX_COUNT = 1 << 40  # counts are below this
MAX_MODEL_NAME = 256
MANIFEST_BASE_BYTES = 1 << 20  # names, seeds and the rest; each example adds at most:
MANIFEST_BYTES_PER_EXAMPLE = 256
DIRECTORY_BYTES_PER_MEMBER = 128  # a directory entry of ours is 46 bytes and a short name
SNIFF_BYTES = 512  # looks_like_export needs no more than the file's first SNIFF_BYTES

_DTYPES = tuple(sorted(EMBEDDING_DTYPES))
_VECTOR_MEMBERS = {f"vectors-{dtype}.bin": dtype for dtype in _DTYPES}
_CROP_NAME = re.compile(r"crops/([1-9][0-9]{0,8})\.jpg")
_CLASS_KEY = re.compile(r"0|[1-9][0-9]?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_JPEG_SOI = b"\xff\xd8"
_FORMAT_FIRST = re.compile(rb'\s*\{\s*"format"\s*:\s*"' + EXPORT_FORMAT.encode("ascii") + rb'"')
_MANIFEST_KEYS = {"format", "version", "model", "num_classes", "names", "examples", "vectors", "seeds"}
_EXAMPLE_KEYS = {"class", "taken", "source", "crop", "vector"}
_STAMP = (1980, 1, 1, 0, 0, 0)  # the same contents give the same bytes
_CLASSES = f"classes are 1 to {MAX_CLASSES}"

# what the zip and zlib modules raise on damaged input (an ExportError is a ValueError: re-raised first)
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError, KeyError,
           IndexError, NotImplementedError, RuntimeError, struct.error, OverflowError, UnicodeDecodeError)


class ExportError(StateError):
    """An export file cannot be read (or contents cannot be written as one); the message says what is wrong."""


def _same_array(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


@dataclass(frozen=True)
class ExportedExample:
    """One example: ``vector`` is its embedding under the export's model (dtype as stored), or ``None``."""

    class_id: int
    taken: float
    source: str  # one of library.SOURCES
    crop: Optional[bytes]  # JPEG bytes as stored, or None
    vector: Optional[np.ndarray]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExportedExample):
            return NotImplemented
        return ((self.class_id, self.taken, self.source, self.crop) == (other.class_id, other.taken, other.source,
                                                                         other.crop)
                and _same_array(self.vector, other.vector))


@dataclass(frozen=True)
class ExportContents:
    """Everything an export carries; equal contents have equal names, examples, vectors (and dtypes) and seeds."""

    model: ModelIdentity
    num_classes: int
    names: Dict[int, str]
    examples: Tuple[ExportedExample, ...]
    seeds: Dict[int, Tuple[np.ndarray, int]]  # class id -> (int64 sums of length model.dim, count)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExportContents):
            return NotImplemented
        return ((self.model, self.num_classes, self.names, tuple(self.examples))
                == (other.model, other.num_classes, other.names, tuple(other.examples))
                and self.seeds.keys() == other.seeds.keys()
                and all(self.seeds[c][1] == other.seeds[c][1] and _same_array(self.seeds[c][0], other.seeds[c][0])
                        for c in self.seeds))


# -- checks shared by encode and decode ---------------------------------------------------------

def _shown(value: object) -> str:
    """``value`` as a message shows it: its repr, cut short."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python prints
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_count(value: object, what: str) -> int:
    if not _is_int(value) or not 0 <= value < MAX_COUNT:
        raise ExportError(f"{what} is {_shown(value)}; it must be a whole number from 0 to {MAX_COUNT - 1}")
    return int(value)


def _check_class(value: object, what: str) -> int:
    if not _is_int(value):
        raise ExportError(f"{what} has class {_shown(value)}; a class is a whole number ({_CLASSES})")
    if not 0 <= value < MAX_CLASSES:
        raise ExportError(f"{what} has class {_shown(int(value) + 1)}; {_CLASSES}")
    return int(value)


def _check_model(sha256: object, dim: object, name: object) -> ModelIdentity:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ExportError(f"the model's sha256 is {_shown(sha256)}, not 64 lower-case hex digits")
    if not _is_int(dim) or not 1 <= dim <= MAX_DIM:
        raise ExportError(f"the model's feature size is {_shown(dim)}; it must be a whole number from 1 to {MAX_DIM}")
    if not isinstance(name, str) or len(name) > MAX_MODEL_NAME:
        raise ExportError(f"the model's name must be text of at most {MAX_MODEL_NAME} characters, "
                          f"not {_shown(name)}")
    return ModelIdentity(sha256=sha256, dim=int(dim), name=name)


def _check_num_classes(value: object) -> int:
    if not _is_int(value) or not MIN_CLASSES <= value <= MAX_CLASSES:
        raise ExportError(f"the number of classes is {_shown(value)}; it must be from {MIN_CLASSES} to {MAX_CLASSES}")
    return int(value)


def _check_name(class_id: int, name: object) -> str:
    try:
        return validate_class_name(name)
    except ClassNameError as exc:
        raise ExportError(f"the name of class {class_id + 1} is refused: {exc}") from None


def _check_taken(value: object, what: str) -> float:
    taken = math.nan
    if not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating)):
        try:
            taken = float(value)
        except OverflowError:  # an int too large for a float
            pass
    if not math.isfinite(taken):
        raise ExportError(f"{what} was taken at {_shown(value)}; it must be a finite number of seconds")
    return taken


def _check_choice(value: object, choices, message: str) -> str:
    """``value`` if it is one of ``choices``; else :class:`ExportError` with ``message`` (``{value}`` filled in)."""
    if not isinstance(value, str) or value not in choices:
        raise ExportError(message.format(value=_shown(value)))
    return value


def _check_source(value: object, what: str) -> str:
    return _check_choice(value, SOURCES, f"{what} has the source {{value}}; sources are {', '.join(SOURCES)}")


def _check_crop(data: bytes, what: str) -> bytes:
    if len(data) > MAX_CROP_BYTES:
        raise ExportError(f"the crop of {what} is {len(data)} bytes; a crop is at most {MAX_CROP_BYTES}")
    if not data.startswith(_JPEG_SOI):
        raise ExportError(f"the crop of {what} is not a JPEG (it does not start with FF D8)")
    return data


def _check_dtype(value: object, what: str) -> str:
    return _check_choice(value, EMBEDDING_DTYPES,
                         f"{what} has a vector of type {{value}}; types are {', '.join(_DTYPES)}")


# -- encoding ----------------------------------------------------------------------------------------

def encode_export(contents: ExportContents) -> bytes:
    """The export file's bytes.

    :raises ExportError: ``contents`` break a rule :func:`decode_export` checks (the message names it).
    """
    model = contents.model
    if not isinstance(model, ModelIdentity):
        raise ExportError(f"the model must be a ModelIdentity, not {type(model).__name__}")
    model = _check_model(model.sha256, model.dim, model.name)
    dim = model.dim
    num_classes = _check_num_classes(contents.num_classes)
    names = {_check_class(class_id, "a class name"): _check_name(class_id, name)
             for class_id, name in contents.names.items()}
    names = {str(class_id): name for class_id, name in sorted(names.items())}
    examples = tuple(contents.examples)
    if len(examples) > MAX_EXAMPLES:
        raise ExportError(f"an export carries at most {MAX_EXAMPLES} examples, not {len(examples)}")
    records: List[dict] = []
    crops: List[Tuple[str, bytes]] = []
    vectors: Dict[str, List[np.ndarray]] = {}
    for number, example in enumerate(examples, 1):
        what = f"example {number}"
        if not isinstance(example, ExportedExample):
            raise ExportError(f"{what} is a {type(example).__name__}, not an ExportedExample")
        record = {"class": _check_class(example.class_id, what), "taken": _check_taken(example.taken, what),
                  "source": _check_source(example.source, what), "crop": None, "vector": None}
        if example.crop is not None:
            if not isinstance(example.crop, (bytes, bytearray, memoryview)):
                raise ExportError(f"the crop of {what} must be bytes, not {type(example.crop).__name__}")
            record["crop"] = f"crops/{number}.jpg"
            crops.append((record["crop"], _check_crop(bytes(example.crop), what)))
        if example.vector is not None:
            vector = np.asarray(example.vector)
            record["vector"] = _check_dtype(vector.dtype.name, what)
            if vector.shape != (dim,):
                raise ExportError(f"{what} has a vector of shape {vector.shape}; the model gives {dim} values")
            vectors.setdefault(record["vector"], []).append(vector)
        records.append(record)
    seed_records = []
    seed_sums = []
    seeds = {_check_class(class_id, "a seed"): seed for class_id, seed in contents.seeds.items()}
    for class_id, seed in sorted(seeds.items()):
        what = f"the seed of class {class_id + 1}"
        if not isinstance(seed, tuple) or len(seed) != 2:
            raise ExportError(f"{what} must be a pair (sums, count), not {type(seed).__name__}")
        sums, count = np.asarray(seed[0]), seed[1]
        if sums.dtype != np.int64 or sums.shape != (dim,):
            raise ExportError(f"{what} has {sums.dtype} sums of shape {sums.shape}; it must be {dim} int64 values")
        seed_records.append({"class": int(class_id), "count": _check_count(count, f"the count of {what}")})
        seed_sums.append(sums)
    manifest = {"format": EXPORT_FORMAT, "version": VERSION,  # first: looks_like_export finds them
                "model": {"sha256": model.sha256, "dim": dim, "name": model.name},
                "num_classes": num_classes, "names": names, "examples": records,
                "vectors": {dtype: {"count": len(rows), "dim": dim} for dtype, rows in sorted(vectors.items())},
                "seeds": seed_records}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        _write(archive, MANIFEST, json.dumps(manifest, separators=(",", ":"), allow_nan=False).encode("utf-8"))
        for dtype, rows in sorted(vectors.items()):
            _write(archive, f"vectors-{dtype}.bin", np.stack(rows).astype(np.dtype(dtype).newbyteorder("<")).tobytes())
        if seed_sums:
            _write(archive, SEEDS, np.stack(seed_sums).astype("<i8").tobytes())
        for name, crop in crops:
            _write(archive, name, crop)
    data = buffer.getvalue()
    if len(data) > MAX_BYTES:
        raise ExportError(f"the export would be {len(data) >> 20} MB; a teachbox reads at most {MAX_BYTES >> 20} MB")
    return data


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_STAMP)
    info.external_attr = 0o644 << 16
    archive.writestr(info, data, compress_type=zipfile.ZIP_STORED)


# -- sniffing ------------------------------------------------------------------------------------------

def looks_like_export(data: bytes) -> bool:
    """Whether ``data`` starts like an export (its first :data:`SNIFF_BYTES` suffice).

    Cheap, and only a sniff: a ZIP whose first member is ``manifest.json`` and whose
    first bytes name this format (:func:`encode_export` writes ``format`` first).  The
    old ``head.npz`` export (first member ``meta.npy``) and junk say ``False``;
    :func:`decode_export` is the judge of whether the file is sound.
    """
    head = bytes(data[:SNIFF_BYTES])
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        return False
    name_length, extra_length = struct.unpack_from("<HH", head, 26)
    if head[30:30 + name_length] != MANIFEST.encode("ascii"):
        return False
    start = head[30 + name_length + extra_length:]
    if _FORMAT_FIRST.match(start):  # stored (the reader, like zipfile, goes by the directory, not this header)
        return True
    try:  # or deflated
        return _FORMAT_FIRST.match(zlib.decompressobj(-zlib.MAX_WBITS).decompress(start, SNIFF_BYTES)) is not None
    except zlib.error:
        return False


# -- decoding ------------------------------------------------------------------------------------------

def decode_export(data: bytes, *, max_bytes: int = MAX_BYTES, max_examples: int = MAX_EXAMPLES) -> ExportContents:
    """The contents of an export file, every part checked (see the module's docstring).

    :param max_bytes: the most the file may be, and the most its members may unpack to.
    :param max_examples: the most examples it may carry.
    :raises ExportError: the bytes are not a sound export this teachbox reads (the message says why).
    """
    data = bytes(data)
    if len(data) > max_bytes:
        raise ExportError(f"the file is {len(data)} bytes; an export this teachbox reads is at most {max_bytes}")
    max_members = max_examples + len(_VECTOR_MEMBERS) + 2
    _check_directory(data, max_members)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = _check_members(archive, max_bytes, max_members, max_examples)
            manifest = _parse_manifest(_read(archive, members[MANIFEST]))
            return _decode(archive, members, manifest, max_examples)
    except ExportError:
        raise
    except _DAMAGE as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ExportError(f"the file is damaged or not an export ({detail})") from None


def _check_directory(data: bytes, max_members: int) -> None:
    """The member count and directory size, read from the end record before the zip module parses anything.

    The end record is found as :mod:`zipfile` finds it in a file without a comment (ours
    have none), so the numbers checked are the ones it then uses.
    """
    if len(data) < 22 or data[-22:-18] != b"PK\x05\x06" or data[-2:] != b"\x00\x00":
        if data[:4] == b"PK\x03\x04":
            raise ExportError("the file is a ZIP but its end is missing or has a comment: it is cut short, "
                              "damaged, or not an export")
        raise ExportError("the file is not an export (it is not a ZIP file)")
    _, _, _, _, count, directory_size, _, _ = struct.unpack("<4s4H2LH", data[-22:])
    if data[-42:-38] == b"PK\x06\x07":  # a ZIP64 locator: zipfile then reads the record right before it
        record = data[-98:-42]
        if len(record) != 56 or record[:4] != b"PK\x06\x06":
            raise ExportError("the file's ZIP64 end record is missing: it is damaged or not an export")
        count, directory_size = struct.unpack_from("<QQ", record, 32)
    if count > max_members:
        raise ExportError(f"the file has {count} members; an export has at most {max_members}")
    if directory_size > max(count, 1) * DIRECTORY_BYTES_PER_MEMBER:
        raise ExportError(f"the file's directory is {directory_size} bytes for {count} members: it is damaged "
                          "or not an export")


def _check_members(archive: zipfile.ZipFile, max_bytes: int, max_members: int,
                   max_examples: int) -> Dict[str, zipfile.ZipInfo]:
    """Names, count and declared sizes of the members, checked before any is read."""
    infos = archive.infolist()
    if len(infos) > max_members:
        raise ExportError(f"the file has {len(infos)} members; an export has at most {max_members}")
    unpacked = sum(info.file_size for info in infos)
    if unpacked > max_bytes:
        raise ExportError(f"the file would unpack to {unpacked} bytes, more than the {max_bytes} an export may")
    if MANIFEST not in {info.filename for info in infos}:
        old = " (it looks like a saved or exported head, head.npz)" if any(
            info.filename == "meta.npy" for info in infos) else ""
        raise ExportError(f"the file has no {MANIFEST}: it is not a teachbox examples export{old}")
    if infos[0].filename != MANIFEST or infos[0].header_offset != 0:
        raise ExportError(f"the file's first member is not {MANIFEST}: it is not an export as a teachbox writes it")
    members: Dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        shown = repr(info.orig_filename[:80])
        if info.orig_filename != name or "\0" in name:
            raise ExportError(f"the file holds a member named {shown}, with a NUL character in it")
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in re.split(r"[/\\]", name):
            raise ExportError(f"the file holds a member named {shown}: an absolute path or one with '..'; "
                              "an export holds no such names")
        if name in members:
            raise ExportError(f"the file holds two members named {shown}")
        if name == MANIFEST:
            limit = MANIFEST_BASE_BYTES + MANIFEST_BYTES_PER_EXAMPLE * max_examples
        elif name == SEEDS:
            limit = MAX_CLASSES * MAX_DIM * 8
        elif name in _VECTOR_MEMBERS:
            limit = max_examples * MAX_DIM * np.dtype(_VECTOR_MEMBERS[name]).itemsize
        elif _CROP_NAME.fullmatch(name):
            limit = MAX_CROP_BYTES
        else:
            raise ExportError(f"the file holds an unexpected member {shown}; an export holds only {MANIFEST}, "
                              f"{SEEDS}, vectors-<type>.bin and crops/<n>.jpg")
        if info.file_size > limit:
            raise ExportError(f"member {shown} declares {info.file_size} bytes; it may hold at most {limit}")
        if info.flag_bits & 0x1:
            raise ExportError(f"member {shown} is encrypted; an export never is")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ExportError(f"member {shown} is compressed in a way exports never are (method {info.compress_type})")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise ExportError(f"member {shown} is stored in {info.compress_size} bytes but declares "
                              f"{info.file_size}: the file is damaged")
        members[name] = info
    return members


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than it declares (its size was bounded), CRC checked."""
    with archive.open(info) as member:
        raw = member.read(info.file_size + 1)  # to the end: the CRC is checked there
    if len(raw) != info.file_size:
        raise ExportError(f"member {info.filename!r} holds {len(raw)} bytes, not the {info.file_size} it declares")
    return raw


def _refuse_constant(name: str):
    raise ExportError(f"the manifest holds {name}, which is not a number an export uses")


def _unique_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ExportError(f"the manifest names the field {_shown(key)} twice")
        result[key] = value
    return result


def _parse_manifest(raw: bytes) -> dict:
    try:
        manifest = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except ExportError:
        raise
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, a number of too many digits
        raise ExportError(f"the manifest is not readable JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(manifest, dict):
        raise ExportError(f"the manifest is a JSON {type(manifest).__name__}, not an object")
    if manifest.get("format") != EXPORT_FORMAT:
        raise ExportError(f"the file is not a teachbox examples export (its format is "
                          f"{_shown(manifest.get('format'))}, not {EXPORT_FORMAT!r})")
    if next(iter(manifest)) != "format":
        raise ExportError("the manifest does not begin with its format field, as an export a teachbox writes does")
    version = manifest.get("version")
    if not _is_int(version) or version < 1:
        raise ExportError(f"the export's version is {_shown(version)}, not a version number")
    if version > VERSION:
        raise ExportError(f"the export was made by a newer teachbox (export version {version}; this one reads "
                          f"version {VERSION} and older): update this teachbox to import it")
    _check_fields(manifest, _MANIFEST_KEYS, "the manifest")
    return manifest


def _check_fields(record: object, keys: set, what: str) -> dict:
    if not isinstance(record, dict):
        raise ExportError(f"{what} is a JSON {type(record).__name__}, not an object")
    missing = sorted(keys - record.keys())
    if missing:
        raise ExportError(f"{what} lacks the field {missing[0]!r}")
    unexpected = sorted(record.keys() - keys)
    if unexpected:
        raise ExportError(f"{what} has the unexpected field {_shown(unexpected[0])}")
    return record


def _check_list(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise ExportError(f"{what} is a JSON {type(value).__name__}, not a list")
    return value


def _decode(archive: zipfile.ZipFile, members: Dict[str, zipfile.ZipInfo], manifest: dict,
            max_examples: int) -> ExportContents:
    model_record = _check_fields(manifest["model"], {"sha256", "dim", "name"}, "the manifest's model")
    model = _check_model(model_record["sha256"], model_record["dim"], model_record["name"])
    dim = model.dim
    num_classes = _check_num_classes(manifest["num_classes"])

    names_record = manifest["names"]
    if not isinstance(names_record, dict):
        raise ExportError(f"the class names are a JSON {type(names_record).__name__}, not an object")
    names = {}
    for key, name in names_record.items():
        if not _CLASS_KEY.fullmatch(key):
            raise ExportError(f"a class name is given for {_shown(key)}, not a class number")
        names[_check_class(int(key), "a class name")] = _check_name(int(key), name)

    records = _check_list(manifest["examples"], "the list of examples")
    if len(records) > max_examples:
        raise ExportError(f"the file carries {len(records)} examples; this teachbox imports at most {max_examples}")
    examples = []
    crop_members = {}
    vector_rows: Dict[str, List[int]] = {}
    for number, record in enumerate(records, 1):
        what = f"example {number}"
        _check_fields(record, _EXAMPLE_KEYS, what)
        crop = record["crop"]
        if crop is not None:
            if not isinstance(crop, str) or not _CROP_NAME.fullmatch(crop):
                raise ExportError(f"the crop of {what} is named {_shown(crop)}, not crops/<n>.jpg")
            if crop in crop_members:
                raise ExportError(f"{what} and example {crop_members[crop] + 1} name the same crop {crop!r}")
            if crop not in members:
                raise ExportError(f"the crop of {what} ({crop}) is missing from the file")
            crop_members[crop] = number - 1
        dtype = record["vector"]
        if dtype is not None:
            vector_rows.setdefault(_check_dtype(dtype, what), []).append(number - 1)
        examples.append([_check_class(record["class"], what), _check_taken(record["taken"], what),
                         _check_source(record["source"], what), None, None])

    vectors_record = manifest["vectors"]
    if not isinstance(vectors_record, dict):
        raise ExportError(f"the vectors' description is a JSON {type(vectors_record).__name__}, not an object")
    for dtype in sorted(vectors_record.keys() | vector_rows.keys()):
        what = f"the {_shown(dtype)} vectors"
        if dtype not in vector_rows:
            raise ExportError(f"the manifest describes {what} but no example has one")
        if dtype not in vectors_record:
            raise ExportError(f"examples have {what} but the manifest does not describe them")
        entry = _check_fields(vectors_record[dtype], {"count", "dim"}, f"the description of {what}")
        count = _check_count(entry["count"], f"the count of {what}")
        if count != len(vector_rows[dtype]):
            raise ExportError(f"the manifest counts {count} of {what} but {len(vector_rows[dtype])} examples have one")
        if entry["dim"] != dim or not _is_int(entry["dim"]):
            raise ExportError(f"{what} have {_shown(entry['dim'])} values each; the model gives {dim}")

    seed_records = _check_list(manifest["seeds"], "the list of seeds")
    if len(seed_records) > MAX_CLASSES:
        raise ExportError(f"the file has {len(seed_records)} seeds; there is at most one per class ({MAX_CLASSES})")
    seed_counts = {}
    for number, record in enumerate(seed_records, 1):
        _check_fields(record, {"class", "count"}, f"seed {number}")
        class_id = _check_class(record["class"], f"seed {number}")
        if class_id in seed_counts:
            raise ExportError(f"the file has two seeds of class {class_id + 1}")
        seed_counts[class_id] = _check_count(record["count"], f"the count of seed {number}")

    # every member is described by the manifest, and every one it names is there
    expected = {MANIFEST, *crop_members, *(f"vectors-{dtype}.bin" for dtype in vector_rows)}
    if seed_counts:
        expected.add(SEEDS)
    undescribed, missing = sorted(members.keys() - expected), sorted(expected - members.keys())
    if undescribed:
        raise ExportError(f"the file holds {undescribed[0]!r}, which the manifest does not describe")
    if missing:
        raise ExportError(f"the file lacks {missing[0]!r}, which the manifest describes")

    # sizes first, reading after: a member of the wrong length is refused unread
    for dtype, rows in vector_rows.items():
        _check_size(members[f"vectors-{dtype}.bin"], len(rows) * dim * np.dtype(dtype).itemsize)
    if seed_counts:
        _check_size(members[SEEDS], len(seed_counts) * dim * 8)

    for dtype, rows in sorted(vector_rows.items()):
        raw = _read(archive, members[f"vectors-{dtype}.bin"])
        block = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(len(rows), dim)
        block.flags.writeable = False
        for index, row in zip(rows, block):
            examples[index][4] = row
    for name, index in sorted(crop_members.items(), key=lambda item: item[1]):
        examples[index][3] = _check_crop(_read(archive, members[name]), f"example {index + 1}")
    seeds = {}
    if seed_counts:
        sums = np.frombuffer(_read(archive, members[SEEDS]), dtype="<i8").astype(np.int64).reshape(-1, dim)
        sums.flags.writeable = False
        seeds = {class_id: (sums[row], count) for row, (class_id, count) in enumerate(seed_counts.items())}

    log.debug("decoded an export of %d examples, %d seeds, model %s", len(examples), len(seeds), model.name)
    return ExportContents(model=model, num_classes=num_classes, names=dict(sorted(names.items())),
                          examples=tuple(ExportedExample(*fields) for fields in examples), seeds=seeds)


def _check_size(info: zipfile.ZipInfo, expected: int) -> None:
    if info.file_size != expected:
        raise ExportError(f"member {info.filename!r} is {info.file_size} bytes; the manifest describes {expected}")
