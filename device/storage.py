"""The learned head as a file: the ``head.npz`` of older boxes (carried into the examples library once) and
the old export format, which imports still take.

File format (no pickle): a NumPy ``.npz`` (zip, CRC-checked) holding a ``meta`` array
of UTF-8 JSON — format version, model sha256 and name, feature size, head kind and
class names — plus the head's own arrays (for the nearest-centroid head: ``sums``
and ``counts``).  The same bytes are what an export/import moves around.

Writes are atomic (:mod:`device.atomic`) and keep the previous generation as
``head.prev.npz``: a corrupt current file is moved aside and the previous one used.
A state made with another model is moved aside (never deleted) and the box starts
empty.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .atomic import atomic_file, fsync_dir
from .errors import ForeignStateError, StateError
from .head import NearestCentroidHead

log = logging.getLogger(__name__)

STATE_FORMAT = 1
CURRENT = "head.npz"
PREVIOUS = "head.prev.npz"
MAX_STATE_BYTES = 16 << 20
MAX_UNPACKED_BYTES = 64 << 20  # a 64-class head, or a D x D matrix for D = 1280, fits many times
HEAD_KINDS = {NearestCentroidHead.KIND: NearestCentroidHead}


@dataclass(frozen=True)
class ModelIdentity:
    """What a saved head must match to be usable: the model file's sha256 and feature size."""

    sha256: str
    dim: int
    name: str = ""


def encode_head(head, model: ModelIdentity) -> bytes:
    """The head as bytes (the state file's content)."""
    if head.dim != model.dim:
        raise ValueError(f"head has {head.dim} features but model {model.name} gives {model.dim}")
    meta, arrays = head.to_state()
    envelope = {"teachbox_state": STATE_FORMAT, "model_sha256": model.sha256, "model": model.name,
                "saved_at": time.time(), "head": meta}
    buffer = io.BytesIO()
    meta_bytes = np.frombuffer(json.dumps(envelope).encode("utf-8"), dtype=np.uint8)
    np.savez(buffer, meta=meta_bytes, **arrays)
    return buffer.getvalue()


def decode_head(data: bytes, model: ModelIdentity, **head_options):
    """Rebuild a head from :func:`encode_head` bytes.

    :raises StateError: the bytes are not a teachbox state (damaged, truncated, hostile).
    :raises ForeignStateError: the state was made with another model.
    """
    if len(data) > MAX_STATE_BYTES:
        raise StateError(f"state is {len(data)} bytes, more than the {MAX_STATE_BYTES} a head can need")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_unpacked_size(archive)
            envelope = json.loads(_read_member(archive, "meta").tobytes().decode("utf-8"))
            head_meta = envelope["head"]
            state_format = envelope["teachbox_state"]
            saved_sha = envelope["model_sha256"]
            head_class = HEAD_KINDS.get(head_meta.get("kind"))
            if head_class is None:
                raise StateError(f"state holds a head of unknown kind {head_meta.get('kind')!r}")
            arrays = {name: _read_member(archive, name) for name in head_class.ARRAYS}
    except StateError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, RecursionError,
            zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise StateError(f"not a readable teachbox state ({type(exc).__name__}: {exc})") from None
    if state_format != STATE_FORMAT:
        raise StateError(f"state format {state_format!r} is not one this teachbox reads ({STATE_FORMAT})")
    saved_dim = head_meta.get("dim")
    if saved_sha != model.sha256 or saved_dim != model.dim:
        raise ForeignStateError(
            f"state was learned with model {envelope.get('model') or '?'} (sha256 {str(saved_sha)[:12]}..., "
            f"{saved_dim} features) but this box runs {model.name or '?'} (sha256 {model.sha256[:12]}..., "
            f"{model.dim} features); embeddings of different models cannot be mixed"
        )
    return head_class.from_state(head_meta, arrays, **head_options)


def _check_unpacked_size(archive: zipfile.ZipFile) -> None:
    """Refuse archives that would unpack to more than a head can need (zip bombs)."""
    unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_UNPACKED_BYTES:
        raise ValueError(f"it would unpack to {unpacked} bytes, more than {MAX_UNPACKED_BYTES}")


def _read_member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """One ``.npy`` member, its header checked before anything is allocated (no pickle, no huge shapes)."""
    with archive.open(name + ".npy") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"member {name} has .npy version {version}")
        if dtype.hasobject or fortran:
            raise ValueError(f"member {name} holds objects or is not in C order")
        count = 1
        for size in shape:
            count *= size
        if count * dtype.itemsize > archive.getinfo(name + ".npy").file_size:
            raise ValueError(f"member {name} claims shape {shape}, more than it holds")
        raw = member.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise ValueError(f"member {name} is truncated")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


@dataclass(frozen=True)
class LoadResult:
    head: Optional[object]
    source: Optional[Path]  # the file it came from, None when starting empty
    set_aside: Tuple[Path, ...]  # files moved out of the way


class StateStore:
    """The learned head on disk, in ``directory``."""

    def __init__(self, directory) -> None:
        self.directory = Path(directory)
        self.current = self.directory / CURRENT
        self.previous = self.directory / PREVIOUS

    def __repr__(self) -> str:
        return f"<StateStore {str(self.directory)!r}>"

    def check_writable(self) -> None:
        """Refuse to start when what is learned could not be saved (named folder, reason, fix)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".write-test"
            with atomic_file(probe, mode=0o640) as out:  # the very path a save takes
                out.write(bytes(4096))
            probe.unlink()
        except OSError as exc:
            raise StateError(f"the state folder {str(self.directory)!r} cannot be written ({exc.strerror or exc}): "
                             "what the box learns could not be saved. Give a writable folder with "
                             "--state-dir or [storage] state_dir") from None

    def save(self, data: bytes) -> None:
        """Atomically replace the current state with ``data``, keeping the old one as previous."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.current.exists():
            self._keep_previous()
        with atomic_file(self.current, mode=0o640) as out:
            out.write(data)

    def _keep_previous(self) -> None:
        link = self.directory / (PREVIOUS + ".tmp")
        link.unlink(missing_ok=True)
        try:
            os.link(self.current, link)
        except OSError:  # a file system without hard links
            shutil.copyfile(self.current, link)
        os.replace(link, self.previous)

    def load(self, model: ModelIdentity, **head_options) -> LoadResult:
        """The newest usable head, setting aside (never deleting) files that cannot be used."""
        aside = []
        for path in (self.current, self.previous):
            if not path.exists():
                continue
            try:
                head = decode_head(path.read_bytes(), model, **head_options)
            except ForeignStateError as exc:
                aside.append(self._set_aside(path, "foreign"))
                log.error("%s: %s. It was moved to %s; the box starts empty.", path, exc, aside[-1].name)
            except (StateError, OSError) as exc:
                aside.append(self._set_aside(path, "corrupt"))
                log.error("%s cannot be read (%s); it was moved to %s.", path, exc, aside[-1].name)
            else:
                if path == self.previous:
                    log.warning("using the previous saved generation %s", path)
                return LoadResult(head, path, tuple(aside))
        return LoadResult(None, None, tuple(aside))

    def _set_aside(self, path: Path, why: str) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.name}.{why}-{stamp}")
        counter = 1
        while target.exists():
            target = path.with_name(f"{path.name}.{why}-{stamp}-{counter}")
            counter += 1
        os.replace(path, target)
        fsync_dir(self.directory)
        return target


def model_identity(description: Dict[str, object]) -> ModelIdentity:
    return ModelIdentity(sha256=str(description["model_sha256"]), dim=int(description["dim"]),
                         name=str(description["model"]))
