"""Keeps what is taught: the examples library behind its writer thread, and the head derived from it.

The loop teaches its head at once (the LEDs follow the button) and hands each taught
example here; a burst is written as one transaction when it ends, and a long hold every
``flush_after`` seconds, so a power cut loses at most that much of a hold.  The crop's
JPEG is encoded on the writer thread, never on the camera loop.

Edits of stored examples (undo, delete, move, clear, import) run on the writer thread
after everything handed over before them.  Each then rebuilds the head from the library,
adds what was taught but is not written yet, and gives the result to the loop (which
answers with the old head until then).  Because the head's sums are exact fixed point, the
head kept incrementally and the one rebuilt are identical.

Lock order: the loop's lock, then this keeper's; the writer thread takes only this one
(and the loop's through :meth:`TeachLoop.swap_head`, before this one).
"""

from __future__ import annotations

import io
import sqlite3
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .learned import head_from_library, migrate_head_state
from .library import BACKUP_SUFFIX, ExampleLibrary, LibraryFull, LibraryWriter, NewExample
from .storage import ModelIdentity, StateStore

log = logging.getLogger(__name__)

MODEL_CHOICE_KEY = "model"  # the model file chosen on the phone (library meta)
JPEG_QUALITY = 85  # a 224x224 crop is about 9 KB
FLUSH_AFTER = 5.0  # seconds of a long hold written at a time
BACKUP_EVERY = 3600.0  # seconds: a changed library is copied to examples.db.bak at most this often


def encode_jpeg(crop, quality: int = JPEG_QUALITY) -> bytes:
    """A model-sized RGB crop (HxWx3 uint8) as JPEG bytes; bytes are passed through."""
    if isinstance(crop, (bytes, bytearray)):
        return bytes(crop)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(crop)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@dataclass
class _Hold:
    """One burst as the user made it (a press, a hold, a filed frame), perhaps written in parts."""

    in_library: bool = False  # a part of it is written: later parts continue that burst
    refused: bool = False  # a cap refused a part of it


@dataclass
class _Part:
    """Examples of one burst handed to the writer together (one transaction)."""

    class_id: int
    source: str
    hold: _Hold
    started: float
    model: ModelIdentity  # whose embeddings the vectors are (a model switch may come in between)
    vectors: List[np.ndarray] = field(default_factory=list)  # as the model gives them (Embedder.to_stored)
    crops: List[object] = field(default_factory=list)  # RGB arrays, or JPEG bytes already made
    taken: List[float] = field(default_factory=list)


@dataclass
class _Undoable:
    """A burst undo can reach, newest last: its class and how many examples it has."""

    class_id: int
    examples: int
    hold: Optional[_Hold] = None  # None: written before this run


class ExampleKeeper:
    """The library's writer, the bursts not written yet, and the rebuilt heads.

    :param library: the open :class:`~device.library.ExampleLibrary`.
    :param model: the identity of the running model (embeddings are stored under its sha256).
    :param to_stored: float embedding -> the model's own output values (a copy), e.g. ``Embedder.to_stored``.
    :param from_stored: the inverse (exact), e.g. ``Embedder.from_stored``.
    :param head_options: ``threshold`` and ``temperature`` of rebuilt heads.
    """

    def __init__(self, library: ExampleLibrary, *, model: ModelIdentity,
                 to_stored: Callable[[np.ndarray], np.ndarray], from_stored: Callable[[np.ndarray], np.ndarray],
                 head_options: Optional[Dict[str, object]] = None, flush_after: float = FLUSH_AFTER,
                 retry: float = 5.0, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, backup_every: float = BACKUP_EVERY) -> None:
        self.library = library
        self.model = model
        self._to_stored = to_stored
        self._from_stored = from_stored
        self.decode = from_stored  # a stored vector -> the float embedding the head takes
        self._head_options = dict(head_options or {})
        self.flush_after = flush_after
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._open: Optional[_Part] = None
        self._open_key: object = None  # the loop's burst the open part belongs to
        self._queued: List[_Part] = []  # handed to the writer, not written yet
        self._undoable: List[_Undoable] = []
        self._install: Optional[Callable] = None
        self._watchers: List[Callable[[], None]] = []
        self.notice: Optional[str] = None  # the last thing a cap refused, for the page
        self.changes = 0  # bumps after every write: readers (quality, gallery) can tell
        self.size_bytes = library.size_bytes()
        self.backup_every = backup_every
        self._backed_up = monotonic()
        self._changed_since_backup = False
        self.writer = LibraryWriter(library, retry=retry)
        if not library.path.with_name(library.path.name + BACKUP_SUFFIX).exists():
            self.writer.submit(self._backup)  # the good copy a damaged database is replaced by

    def __repr__(self) -> str:
        return f"<ExampleKeeper {self.library.path} queued={len(self._queued)} open={self._open is not None}>"

    # -- start -----------------------------------------------------------------------------------
    def load(self, num_classes: int, *, store: Optional[StateStore] = None):
        """The head of everything stored (a ``head.npz`` in ``store`` is carried over once, first)."""
        if store is not None:
            migrate_head_state(store, self.library, self.model)
        head = head_from_library(self.library, self.model, num_classes=num_classes, decode=self._from_stored,
                                 **self._head_options)
        self._undoable = [_Undoable(c, n) for c, n in self.library.bursts()]
        return head

    def attach(self, install: Callable[[Callable], None]) -> None:
        """``install(build)`` swaps the loop's head for ``build(current head)`` under the loop's lock."""
        self._install = install

    def watch(self, changed: Callable[[], None]) -> None:
        """``changed()`` after every write that changed what is stored (from the writer thread)."""
        self._watchers.append(changed)

    def training_set(self):
        """``(model, vectors (n, D) float32, classes (n,), bursts (n,))``: everything stored and taught not yet written."""
        model, decode = self.model, self._from_stored
        stored, classes, bursts = self.library.training_set(model.sha256, model.dim)
        vectors = [decode(v) for v in stored] if decode is not None else list(stored)
        labels, groups = list(classes), list(bursts)
        with self._lock:
            unwritten = self._queued + ([self._open] if self._open is not None else [])
            holds = {}
            for part in unwritten:
                if part.model != model:
                    continue
                group = holds.setdefault(id(part.hold), -1 - len(holds))  # its own burst until it is written
                for vector in part.vectors:
                    vectors.append(decode(vector))
                    labels.append(part.class_id)
                    groups.append(group)
        array = np.array(vectors, dtype=np.float32).reshape(len(vectors), model.dim)
        return model, array, np.array(labels, dtype=np.int64), np.array(groups, dtype=np.int64)

    @property
    def saving_error(self) -> Optional[str]:
        return self.writer.last_error

    @property
    def pending(self) -> int:
        """Examples taught but not written yet."""
        with self._lock:
            parts = self._queued + ([self._open] if self._open is not None else [])
            return sum(len(p.vectors) for p in parts)

    # -- the loop thread (under the loop's lock) ----------------------------------------------------
    def taught(self, key: object, class_id: int, source: str, embedding: np.ndarray, crop) -> None:
        """The loop taught ``embedding`` (of the burst ``key``) to ``class_id``; ``crop`` is what the model saw."""
        now = self._monotonic()
        if self._open is not None and self._open_key is not key:
            self.flush()
        if self._open is None:
            self._open = _Part(class_id, source, _Hold(), now, self.model)
            self._open_key = key
        part = self._open
        part.vectors.append(self._to_stored(embedding))
        part.crops.append(crop if isinstance(crop, bytes) else np.array(crop))  # the camera's frame is not ours
        part.taken.append(self._clock())
        if now - part.started >= self.flush_after:
            self._submit(part, ends=False)
            self._open = _Part(class_id, source, part.hold, now, self.model)

    def check(self, active: object) -> None:
        """Called every frame with the loop's active burst: a burst that ended is written."""
        if self._open is not None and self._open_key is not active:
            self.flush()

    def flush(self) -> None:
        """Hand the open burst to the writer (it has ended)."""
        part, self._open, self._open_key = self._open, None, None
        if part is not None and part.vectors:
            self._submit(part, ends=True)

    def add_example(self, class_id: int, embedding: np.ndarray, crop, source: str) -> None:
        """One example taught on its own (a filed doubtful frame): a burst of one."""
        self.flush()
        self.taught(object(), class_id, source, embedding, crop)
        self.flush()

    def _submit(self, part: _Part, *, ends: bool) -> None:
        with self._lock:
            self._queued.append(part)
            last = self._undoable[-1] if self._undoable else None
            if last is not None and last.hold is part.hold:
                last.examples += len(part.vectors)
            else:
                self._undoable.append(_Undoable(part.class_id, len(part.vectors), part.hold))
        self.writer.submit(lambda library: self._write(library, part))

    # -- edits (any thread holding the loop's lock) --------------------------------------------------
    def undo(self) -> Optional[Tuple[int, int]]:
        """Forget the newest burst (also one written before a restart): ``(class, examples)`` or ``None``."""
        self.flush()
        with self._lock:
            if not self._undoable:
                return None
            target = self._undoable.pop()
        self.writer.submit(lambda library: self._undo(library, target))
        return target.class_id, target.examples

    def clear(self, class_id: int) -> None:
        """Forget a class's examples (the loop clears its head at once; this forgets the stored ones)."""
        if self._open is not None and self._open.class_id == class_id:
            self._open, self._open_key = None, None
        with self._lock:
            self._undoable = [u for u in self._undoable if u.class_id != class_id]
        self._edit(lambda library: library.clear_class(class_id))

    def clear_all(self) -> None:
        self._open, self._open_key = None, None
        with self._lock:
            self._undoable.clear()
        self._edit(lambda library: library.clear_all())

    def rename(self, class_id: int, name: str) -> None:
        self.writer.submit(lambda library: library.rename(class_id, name))

    def delete(self, ids: Sequence[int]) -> "Future[int]":
        """Delete examples by id; the future gives how many were found (the head follows before it is set)."""
        return self._edit(lambda library: library.delete(ids))

    def move(self, ids: Sequence[int], class_id: int) -> "Future[int]":
        return self._edit(lambda library: library.move(ids, class_id))

    def replace_all(self, replace: Callable[[ExampleLibrary], object]) -> "Future":
        """Replace everything (an import): ``replace(library)`` on the writer thread, then the head follows."""
        self._open, self._open_key = None, None
        return self._edit(replace, keep_names=False)

    def _edit(self, change: Callable[[ExampleLibrary], object], *, keep_names: bool = True) -> "Future":
        done: "Future" = Future()

        def work(library: ExampleLibrary) -> None:
            if done.done():
                return
            try:
                result = change(library)
            except (OSError, sqlite3.OperationalError):
                raise  # the writer keeps it and tries again
            except Exception as exc:  # a refusal (a cap, a bad id): reported to whoever asked
                done.set_exception(exc)
                return
            self._rebuild(library, keep_names=keep_names)
            done.set_result(result)

        self.writer.submit(work)
        return done

    # -- the writer thread ---------------------------------------------------------------------------
    def _write(self, library: ExampleLibrary, part: _Part) -> None:
        part.crops = [encode_jpeg(crop) for crop in part.crops]  # once, even if the disk makes us retry
        examples = [NewExample(part.class_id, vector, crop, part.source, taken)
                    for vector, crop, taken in zip(part.vectors, part.crops, part.taken)]
        try:
            library.add(examples, model=part.model.sha256, continues=part.hold.in_library)
        except LibraryFull as exc:
            log.warning("%s", exc)
            self.notice = str(exc)
            part.hold.refused = True
            with self._lock:
                self._queued.remove(part)
            self._rebuild(library)
            return
        part.hold.in_library = True
        self.notice = None  # what a cap refused before is no longer the news
        with self._lock:
            self._queued.remove(part)
        self._written(library)

    def _undo(self, library: ExampleLibrary, target: _Undoable) -> None:
        if target.hold is not None and not target.hold.in_library:
            self._rebuild(library)  # refused by a cap: nothing of it is stored
            return
        library.undo()
        self._rebuild(library)

    def _written(self, library: ExampleLibrary) -> None:
        self.size_bytes = library.size_bytes()
        self.changes += 1
        for changed in self._watchers:
            changed()
        self._changed_since_backup = True
        if self._monotonic() - self._backed_up >= self.backup_every:
            self._backup(library)

    def _backup(self, library: ExampleLibrary) -> None:
        try:
            library.backup()
        except (OSError, sqlite3.Error) as exc:  # the next change tries again; the database itself is fine
            log.warning("could not copy the examples library to its backup: %s", exc)
            return
        self._backed_up = self._monotonic()
        self._changed_since_backup = False

    def _rebuild(self, library: ExampleLibrary, *, keep_names: bool = True) -> None:
        """The head of what is stored plus what is not written yet, given to the loop."""
        fresh = head_from_library(library, self.model, num_classes=2, decode=self._from_stored, **self._head_options)
        bursts = library.bursts()
        self._written(library)
        if self._install is None:
            return

        def build(current):
            head = fresh.fitted(current.num_classes) if fresh.num_classes < current.num_classes else fresh
            for class_id, name in enumerate(current.names if keep_names else ()):
                if class_id < head.num_classes:  # names in memory are newer than the library's
                    head.rename(class_id, name)
            with self._lock:
                unwritten = self._queued + ([self._open] if self._open is not None else [])
                for part in unwritten:
                    for vector in part.vectors if part.model == self.model else ():
                        head.teach(part.class_id, self._from_stored(vector))
                undoable = [_Undoable(c, n) for c, n in bursts]
                for part in self._queued:
                    last = undoable[-1] if undoable else None
                    if last is not None and last.hold is part.hold:
                        last.examples += len(part.vectors)
                    else:
                        undoable.append(_Undoable(part.class_id, len(part.vectors), part.hold))
                self._undoable = undoable
            head.generation = current.generation + 1
            return head

        self._install(build)

    # -- a model switch ---------------------------------------------------------------------------------
    def switch_model(self, embedder, *, swap: Optional[Callable] = None) -> "Future":
        """From now on store and rebuild under ``embedder``'s model (on the writer thread, after what came before).

        Everything stored is expected to be embedded with it already (see :mod:`device.reembed`);
        examples taught since and not written yet are embedded again here from their crops.
        ``swap(embedder, build)`` hands the loop over (``None``: the loop runs this model already).
        """
        from .storage import model_identity

        identity = model_identity(embedder.describe())

        def change(library: ExampleLibrary) -> None:
            for example_id, vector in _embed_missing(library, embedder, identity):
                library.add_embeddings([(example_id, vector)], model=identity.sha256)
            fresh = head_from_library(library, identity, num_classes=2, decode=embedder.from_stored,
                                      **self._head_options)

            def build(current):
                head = fresh.fitted(current.num_classes) if fresh.num_classes < current.num_classes else fresh
                for class_id, name in enumerate(current.names):
                    if class_id < head.num_classes:
                        head.rename(class_id, name)
                with self._lock:
                    self.model = identity
                    self._to_stored, self._from_stored = embedder.to_stored, embedder.from_stored
                    self.decode = embedder.from_stored
                    for part in self._queued + ([self._open] if self._open is not None else []):
                        if part.model != identity:  # taught during the switch: embedded again from its crop
                            part.vectors = [embedder.to_stored(embedder.infer(embedder.prepare(_picture(crop))))
                                            for crop in part.crops]
                            part.model = identity
                        for vector in part.vectors:
                            head.teach(part.class_id, embedder.from_stored(vector))
                head.generation = current.generation + 1
                return head

            if swap is not None:
                swap(embedder, build)
            elif self._install is not None:
                self._install(build)
            library.set_meta(MODEL_CHOICE_KEY, identity.name)
            self._written(library)

        done: "Future" = Future()

        def work(library: ExampleLibrary) -> None:
            if done.done():
                return
            try:
                change(library)
            except (OSError, sqlite3.OperationalError):
                raise
            except Exception as exc:
                log.exception("switching the model failed")
                done.set_exception(exc)
                return
            done.set_result(None)

        self.writer.submit(work)
        return done

    def settle(self, timeout: float = 15.0) -> bool:
        """Wait until everything handed over is written and the head has followed; ``False`` on timeout."""
        return self.writer.settle(timeout)

    # -- stopping ------------------------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> bool:
        """Write what is left; ``True`` if everything taught is stored."""
        self.flush()
        if self._changed_since_backup:
            self.writer.submit(self._backup)
        written = self.writer.close(timeout)
        if not written:
            log.error("%d examples could not be written to %s: %s", self.pending, self.library.path,
                      self.writer.last_error)
        self.library.close()
        return written


def _picture(crop) -> np.ndarray:
    """An RGB array of a crop kept as an array or as JPEG bytes."""
    if isinstance(crop, (bytes, bytearray)):
        return decode_jpeg(crop)
    return crop


def decode_jpeg(data: bytes) -> np.ndarray:
    """A stored crop back as an HxWx3 uint8 RGB array (:class:`ValueError` if it is not a picture)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > 4096 * 4096:
                raise ValueError(f"a stored picture is {image.width}x{image.height}, too big to be a crop")
            return np.asarray(image.convert("RGB"))
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"a stored picture cannot be read: {exc}") from None


def _embed_missing(library: ExampleLibrary, embedder, identity: ModelIdentity):
    """``(example id, stored vector)`` for every stored crop not yet embedded with ``identity`` (writer thread)."""
    for example_id in library.missing_embeddings(identity.sha256):
        crop = library.crop(example_id)
        try:
            picture = decode_jpeg(crop)
        except ValueError as exc:
            log.warning("example %d: %s; it keeps no embedding under %s", example_id, exc, identity.name)
            continue
        vector = embed_crop(embedder, picture)
        if vector is None:
            log.warning("example %d: no %s found in its picture; it keeps no embedding under %s", example_id,
                        getattr(embedder, "name", "picture"), identity.name)
            continue
        yield example_id, vector


def embed_crop(embedder, picture: np.ndarray) -> Optional[np.ndarray]:
    """A stored crop's vector under ``embedder`` (``None``: a landmark source finds nothing in it)."""
    embedder.reset()  # a stored crop is no continuation of the one before
    features = embedder.infer(embedder.prepare(picture))
    return None if features is None else embedder.to_stored(features)
