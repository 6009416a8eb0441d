"""A model switch that keeps what was taught: every stored crop is embedded again with the new model.

Runs on its own thread with its own interpreter (the camera loop keeps answering with
the old model and head meanwhile); the vectors are stored by the library's writer in
chunks, and the last step (:meth:`~device.keeper.ExampleKeeper.switch_model`) embeds what
was taught in between, rebuilds the head and hands the loop over to the new model.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from .keeper import ExampleKeeper, decode_jpeg, embed_crop
from .library import LibraryReader
from .storage import model_identity
from .vocab import SwitchState

log = logging.getLogger(__name__)

CHUNK = 32  # crops embedded per write


@dataclass(frozen=True)
class SwitchProgress:
    """Where a model switch is: ``state`` is ``embedding``, ``done`` or ``failed``."""

    model: str
    state: str
    done: int
    total: int
    error: Optional[str] = None


class ModelSwitcher:
    """Embeds the stored crops with another model in the background, then switches.

    :param keeper: the box's :class:`~device.keeper.ExampleKeeper`.
    :param swap: ``swap(embedder, build)``, the loop's :meth:`~device.loop.TeachLoop.switch_model`.
    """

    def __init__(self, keeper: ExampleKeeper, *, swap: Callable, on_done: Optional[Callable] = None) -> None:
        self.keeper = keeper
        self._swap = swap
        self._on_done = on_done
        self._lock = threading.Lock()
        self._progress: Optional[SwitchProgress] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def progress(self) -> Optional[SwitchProgress]:
        return self._progress

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self, embedder, *, swap: bool = True) -> None:
        """Embed everything with ``embedder`` (its own instance), then switch to it.

        ``swap=False``: the loop already runs this model (it was changed in the config),
        only the head is rebuilt when the stored examples are embedded.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("a model switch is already going on")
            self._progress = SwitchProgress(embedder.model_path.name, SwitchState.EMBEDDING, 0, 0)
            self._thread = threading.Thread(target=self._run, args=(embedder, swap), name="teachbox-reembed",
                                            daemon=True)
            self._thread.start()

    def wait(self, timeout: float) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _run(self, embedder, swap: bool) -> None:
        identity = model_identity(embedder.describe())
        name = embedder.model_path.name
        reader = LibraryReader(self.keeper.library)
        started = time.monotonic()
        try:
            missing = reader.missing_embeddings(identity.sha256)
            total = len(missing)
            log.info("embedding %d stored examples with %s", total, name)
            done = 0
            last_log = started
            for first in range(0, total, CHUNK):
                vectors = []
                for example_id in missing[first:first + CHUNK]:
                    crop = reader.crop(example_id)
                    if crop is None:
                        continue
                    try:
                        picture = decode_jpeg(crop)
                    except ValueError as exc:
                        log.warning("example %d: %s", example_id, exc)
                        continue
                    vector = embed_crop(embedder, picture)
                    if vector is None:
                        log.warning("example %d: no %s found in its picture; it does not count", example_id,
                                    embedder.name)
                        continue
                    vectors.append((example_id, vector))
                self.keeper.writer.submit(lambda library, v=vectors: library.add_embeddings(v, model=identity.sha256))
                done = min(total, first + CHUNK)
                self._progress = SwitchProgress(name, SwitchState.EMBEDDING, done, total)
                if time.monotonic() - last_log >= 5:
                    log.info("embedding with %s: %d of %d", name, done, total)
                    last_log = time.monotonic()
            self.keeper.switch_model(embedder, swap=self._swap if swap else None).result()
        except Exception as exc:  # a failed switch leaves the box on its old model
            log.error("switching to %s failed (%s); the box goes on with the model it had", name, exc)
            self._progress = SwitchProgress(name, SwitchState.FAILED, 0, 0, str(exc))
            return
        finally:
            reader.close()
        log.info("now using %s: %d stored examples embedded in %.1f s", name, total, time.monotonic() - started)
        self._progress = SwitchProgress(name, SwitchState.DONE, total, total)
        if self._on_done is not None:
            self._on_done(embedder)
