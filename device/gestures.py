"""Button gestures of the front panel, as a pure state machine (no GPIO, no clock of its own).

Inputs: :meth:`Gestures.press` / :meth:`Gestures.release` with the time they
happened, and :meth:`Gestures.tick` with the current time.  Outputs: lists of
actions, tuples the panel hands to the loop:

* ``("teach", c)`` - class button pressed: take one example of what the camera sees next;
* ``("hold", c)`` - still held after ``hold_time``: keep taking examples;
* ``("release", c)`` - let go: the burst ends;
* ``("undo",)`` - function button pressed briefly: undo the last burst;
* ``("clear", c)`` - class button pressed while the function button is down;
* ``("clear_all",)`` - function button held for ``clear_all_time``;
* ``("abort",)`` - function button let go during the clear-all countdown.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from .vocab import Button

FUNCTION = Button.FUNCTION
Action = Tuple


class Gestures:
    """
    :param hold_time: seconds before a pressed class button counts as held.
    :param countdown_start: seconds of holding the function button before the
        clear-all countdown shows (a shorter press is an undo).
    :param clear_all_time: seconds of holding the function button that clear everything.
    """

    def __init__(self, *, hold_time: float = 0.5, countdown_start: float = 1.0,
                 clear_all_time: float = 5.0) -> None:
        if not 0 < countdown_start < clear_all_time:
            raise ValueError(f"countdown_start ({countdown_start}) must be between 0 and "
                             f"clear_all_time ({clear_all_time})")
        self.hold_time = hold_time
        self.countdown_start = countdown_start
        self.clear_all_time = clear_all_time
        self.teaching: Optional[int] = None  # class button currently teaching
        self._teach_since = 0.0
        self._held = False
        self._function_since: Optional[float] = None
        self._function_used = False  # a combo or clear-all happened during this press
        self._consumed = set()  # class buttons pressed as part of a combo

    def __repr__(self) -> str:
        return f"<Gestures teaching={self.teaching} function_down={self._function_since is not None}>"

    def press(self, button, now: float) -> List[Action]:
        if button == FUNCTION:
            self._function_since, self._function_used = now, False
            return []
        if self._function_since is not None:
            self._function_used = True
            self._consumed.add(button)
            actions: List[Action] = []
            if self.teaching == button:
                actions.append(("release", button))
                self.teaching = None
            return actions + [("clear", button)]
        actions = []
        if self.teaching is not None:  # another class was being taught: the newest press wins
            actions.append(("release", self.teaching))
        self.teaching, self._teach_since, self._held = button, now, False
        return actions + [("teach", button)]

    def release(self, button, now: float) -> List[Action]:
        actions = self.tick(now)
        if button == FUNCTION:
            since, self._function_since = self._function_since, None
            if since is None or self._function_used:
                return actions
            return actions + [("undo",) if now - since < self.countdown_start else ("abort",)]
        if button in self._consumed:
            self._consumed.discard(button)
            return actions
        if self.teaching == button:
            self.teaching = None
            actions.append(("release", button))
        return actions

    def tick(self, now: float) -> List[Action]:
        actions: List[Action] = []
        if self.teaching is not None and not self._held and now - self._teach_since >= self.hold_time:
            self._held = True
            actions.append(("hold", self.teaching))
        if (self._function_since is not None and not self._function_used
                and now - self._function_since >= self.clear_all_time):
            self._function_used = True
            actions.append(("clear_all",))
        return actions

    def countdown(self, now: float) -> Optional[float]:
        """Fraction of the clear-all countdown left (1 -> 0), or ``None`` when none is shown."""
        if self._function_since is None or self._function_used:
            return None
        elapsed = now - self._function_since
        if elapsed < self.countdown_start:
            return None
        span = self.clear_all_time - self.countdown_start
        return max(0.0, 1.0 - (elapsed - self.countdown_start) / span)
