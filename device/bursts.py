"""Which frames to teach: bursts of examples, bounded in rate, without near-duplicates.

Pure (numpy only).  A *burst* is what one press (or hold) of a class button taught;
undo removes the last burst.  A burst teaches at least ``wanted`` frames captured
after it started; while *held* it goes on teaching, at most ``rate`` examples per
second and skipping frames whose embedding is nearly identical (cosine similarity
at or above ``duplicate_similarity``) to the last example taken, so a long hold does
not flood a class with copies.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional

import numpy as np

SAME_PICTURE_FRAMES = 3  # near-duplicates in a row before the user is told to move the thing


@dataclass
class Burst:
    class_id: int
    first_seq: int  # frames with a smaller sequence number were captured before the press
    wanted: int = 1
    holding: bool = False  # goes on teaching (rate-bounded, no near-duplicates)
    pressed: bool = False  # the button is still down: the burst stays open
    taught: int = 0
    skipped: int = 0  # frames passed over as near-duplicates of the last example
    skipped_run: int = 0  # ... since the last example was taken
    lease_until: Optional[float] = None  # a held burst from afar ends by itself unless renewed
    source: str = "button"  # who asked: "button" (the panel) or "phone" (the page)

    @property
    def same_picture(self) -> bool:
        """The camera keeps seeing what was just taken: the user should move the thing a little."""
        return self.skipped_run >= SAME_PICTURE_FRAMES

    @property
    def done(self) -> bool:
        return not (self.holding or self.pressed) and self.taught >= self.wanted


class BurstTeacher:
    """Decides, frame by frame, whether the current frame is taught and to which class."""

    def __init__(self, dim: int, *, rate: float = 4.0, duplicate_similarity: float = 0.98,
                 history: int = 64) -> None:
        if rate <= 0:
            raise ValueError(f"teaching rate must be > 0 examples per second, not {rate!r}")
        self.rate = rate
        self.duplicate_similarity = duplicate_similarity
        self.active: Optional[Burst] = None
        self.history: Deque[Burst] = deque(maxlen=history)
        self._last = np.zeros(dim, dtype=np.float32)
        self._last_norm = 0.0
        self._last_time = -np.inf

    def __repr__(self) -> str:
        return f"<BurstTeacher active={self.active} bursts={len(self.history)}>"

    def start(self, class_id: int, next_seq: int, *, wanted: int = 1, hold: bool = False,
              pressed: bool = False, source: str = "button") -> Burst:
        """Open a burst for frames from ``next_seq`` on.

        ``hold``: keep teaching until :meth:`release`.  ``pressed``: a button is down;
        the burst takes its ``wanted`` examples and stays open (so that a later
        :meth:`hold` continues it) until :meth:`release`.
        """
        self._close()
        self.active = Burst(class_id, next_seq, wanted, hold, pressed or hold, source=source)
        self._last_norm = 0.0
        return self.active

    def hold(self, class_id: int) -> None:
        if self.active is not None and self.active.class_id == class_id:
            self.active.holding = True

    def release(self, class_id: Optional[int] = None) -> None:
        burst = self.active
        if burst is not None and (class_id is None or burst.class_id == class_id):
            burst.holding = burst.pressed = False
            if burst.done:
                self._close()

    def cancel(self) -> None:
        """End the burst with what it has (the camera went offline: nothing more is taught)."""
        if self.active is not None:
            self.active.holding = self.active.pressed = False
            self.active.wanted = self.active.taught
            self._close()

    def renew(self, class_id: int, until: float) -> bool:
        """Extend the lease of the held burst of ``class_id``; ``False`` if there is none."""
        burst = self.active
        if burst is None or burst.class_id != class_id or not burst.pressed:
            return False
        burst.lease_until = until
        return True

    def choose(self, seq: int, now: float, embedding: np.ndarray) -> Optional[int]:
        """The class to teach this frame to, or ``None``."""
        burst = self._lease(now)
        if burst is None or seq < burst.first_seq:
            return None
        if burst.taught < burst.wanted:
            return burst.class_id
        if not burst.holding or now - self._last_time < 1.0 / self.rate:
            return None
        if self._last_norm > 0:
            norm = float(np.linalg.norm(embedding))
            if norm > 0 and float(self._last @ embedding) >= self.duplicate_similarity * norm * self._last_norm:
                burst.skipped += 1
                burst.skipped_run += 1
                return None
        return burst.class_id

    def choose_none(self, now: float) -> None:
        """A frame with nothing to teach from (no hand in view): a held burst waits, a lapsed lease ends."""
        self._lease(now)

    def _lease(self, now: float) -> Optional[Burst]:
        burst = self.active
        if burst is not None and burst.lease_until is not None and now > burst.lease_until:
            self.release()  # the phone holding it went quiet: stop, as if it let go
            burst = self.active
        return burst

    def taught(self, now: float, embedding: np.ndarray) -> None:
        burst = self.active
        burst.taught += 1
        burst.skipped_run = 0
        self._last[:] = embedding
        self._last_norm = float(np.linalg.norm(embedding))
        self._last_time = now
        if burst.done:
            self._close()

    def pop_last(self) -> Optional[Burst]:
        """The most recent burst that taught something, removed from the history (for undo)."""
        self._close()
        while self.history:
            burst = self.history.pop()
            if burst.taught:
                return burst
        return None

    def forget_class(self, class_id: int) -> None:
        if self.active is not None and self.active.class_id == class_id:
            self.active = None
        self.history = deque((b for b in self.history if b.class_id != class_id), maxlen=self.history.maxlen)

    def forget_all(self) -> None:
        self.active = None
        self.history.clear()

    def _close(self) -> None:
        if self.active is not None:
            if self.active.taught:
                self.history.append(self.active)
            self.active = None
