"""The inbox of doubtful frames as an output of the loop: it keeps what the box was unsure of.

Only a frame the inbox keeps pays for a copy of what the model saw (its crop, turned into
a JPEG when someone first looks at it); every other frame costs one comparison.
"""

from __future__ import annotations

import functools
import time
from typing import Callable

from .inbox import DoubtfulInbox
from .keeper import encode_jpeg


class DoubtfulOutput:
    """Feeds the loop's frames to a :class:`~device.inbox.DoubtfulInbox` (an observer of the loop)."""

    def __init__(self, inbox: DoubtfulInbox, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.inbox = inbox
        self._clock = clock

    def __repr__(self) -> str:
        return f"<DoubtfulOutput {self.inbox!r}>"

    def update(self, result) -> None:
        if result.prediction is None or result.embedding is None:
            return
        kept = self.inbox.consider(self._clock(), result.prediction, result.embedding,
                                   answer=result.answer, taught=result.taught)
        if kept is not None and result.prepared is not None:
            self.inbox.attach_thumbnail(kept, functools.partial(encode_jpeg, result.prepared.copy()))
