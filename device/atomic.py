"""Crash-safe file replacement: temp file in the same folder, fsync, rename, fsync the folder.

At every instant the target path holds either the complete old file or the complete
new one, whatever moment the power goes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(target: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Write ``target`` (permissions ``mode``) through a temp file that replaces it only if the block succeeds.

    The block may raise (a failed check, a full disk): the temp file is then removed
    and ``target`` is untouched.
    """
    target = Path(target)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    os.fchmod(handle, mode)
    os.close(handle)
    try:
        with open(tmp, "wb") as out:  # out.name is the temp file's path
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
