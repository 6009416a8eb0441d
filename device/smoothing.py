"""Temporal smoothing of answers so the shown answer does not flicker between frames.

Pure, no I/O.  A majority vote over the last ``window`` raw answers with hysteresis:
the shown answer changes only when another answer holds a strict majority of the
window.  ``window=1`` turns smoothing off.
"""

from __future__ import annotations

from typing import Dict, Hashable, List, Optional


class MajoritySmoother:
    """Shows an answer only once it has won a majority of the last ``window`` frames.

    >>> s = MajoritySmoother(3)
    >>> [s.push(x) for x in "aaaba"]     # one stray "b" is not shown
    ['a', 'a', 'a', 'a', 'a']
    >>> [s.push(x) for x in "b"]         # two in the last three are
    ['b']
    """

    def __init__(self, window: int = 5) -> None:
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"smoothing window must be a whole number >= 1, not {window!r}")
        self.window = window
        self._ring: List[Optional[Hashable]] = [None] * window
        self._pos = 0
        self._filled = 0
        self._votes: Dict[Hashable, int] = {}
        self.shown: Optional[Hashable] = None

    def push(self, answer: Hashable) -> Hashable:
        if self._filled == self.window:
            outgoing = self._ring[self._pos]
            left = self._votes[outgoing] - 1
            if left:
                self._votes[outgoing] = left
            else:
                del self._votes[outgoing]
        else:
            self._filled += 1
        self._ring[self._pos] = answer
        self._pos = (self._pos + 1) % self.window
        votes = self._votes.get(answer, 0) + 1
        self._votes[answer] = votes
        if self.shown is None or (answer != self.shown and 2 * votes > self._filled):
            self.shown = answer
        return self.shown

    def reset(self) -> None:
        self._ring = [None] * self.window
        self._pos = self._filled = 0
        self._votes.clear()
        self.shown = None

    def __repr__(self) -> str:
        return f"<MajoritySmoother window={self.window} shown={self.shown!r}>"
