"""Rules: *when* the answer is X, sure enough, for long enough, *then* act; pure, driven by the caller's clock.

A rule watches the shown answer (:class:`device.loop.FrameResult`'s ``answer`` and ``confidence``):

* it **starts** when its answer (a class by name or id, or ``unknown`` / ``absent``) has been
  shown, with at least ``confidence``, for ``hold`` seconds, at most once every ``cooldown``
  seconds (start to start; while still seen, a start held back by the cooldown comes when it is over);
* it **ends** when something else (or its answer, less sure) has been shown for ``until`` seconds:
  a drop shorter than that does not end it.

Every start and end is a :class:`RuleEvent`; :meth:`RuleEngine.update` returns them and does
nothing else: no I/O, no threads, no clock (``now`` is the caller's monotonic time).  Outputs
(GPIO actions in :mod:`device.actions`, the event log, later MQTT) consume the events.

Class names are resolved at every frame through the ``names`` callable given to the engine
(the head's current names), so a rule follows the *name*: rename the class "cat" to "dog" and a
rule on "cat" stops matching it (an active one ends after ``until``), name another class "cat"
and the rule matches that one.  A rule on an id (``when = 2``) follows the id whatever its name.
Names match ignoring case and surrounding spaces; ``unknown``, ``absent`` and ``nothing`` (= absent)
are the special answers, whatever a class is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

from .vocab import AnswerState

START, END = "start", "end"
MODES = ("on", "pulse", "servo", "pwm")
SPECIAL_ANSWERS = {"unknown": AnswerState.UNKNOWN.value, "absent": AnswerState.ABSENT.value,
                   "nothing": AnswerState.ABSENT.value}
NO_EVENTS: Tuple["RuleEvent", ...] = ()  # what update() returns when nothing happens (shared, never allocated)


@dataclass(frozen=True)
class Action:
    """One GPIO action of a rule (``[[rules.then]]`` or ``[[rules.ended]]``)."""

    gpio: int  # BCM pin
    mode: str  # one of MODES
    ms: int = 500  # pulse: how long the pin is high
    angle: float = 0.0  # servo: -90..90 degrees
    value: float = 1.0  # pwm: 0..1
    active_high: bool = True  # on / pulse: False for a relay board that switches on a low input


@dataclass(frozen=True)
class Rule:
    """One ``[[rules]]`` table, validated (see :mod:`device.config`)."""

    name: str
    when: Union[str, int]  # a class name, a class id, or "unknown" / "absent" / "nothing"
    confidence: float = 0.7
    hold: float = 0.3
    cooldown: float = 5.0
    until: float = 1.0
    then: Tuple[Action, ...] = ()
    ended: Tuple[Action, ...] = ()
    sound: str = ""  # a WAV file played at the start ("" = none)

    @property
    def special(self) -> Optional[str]:
        """The answer state this rule waits for ("unknown" / "absent"), or None for a class."""
        return SPECIAL_ANSWERS.get(self.when.strip().casefold()) if isinstance(self.when, str) else None


@dataclass(frozen=True)
class RuleEvent:
    """A rule started or ended: what any output (GPIO, log, MQTT, web) consumes."""

    rule: str  # the rule's name ("" for an answer's own start and end: :class:`AnswerEvents`)
    kind: str  # START or END
    answer: str  # the class's name then (or "unknown" / "absent")
    class_id: Optional[int]  # None for unknown / absent
    confidence: float  # of the last frame that matched
    time: float  # the caller's time of the frame that started / ended it (consumers get unix seconds)


class _State:
    __slots__ = ("rule", "special", "class_id", "folded", "since", "active", "last_start", "other_since",
                 "answer", "matched_id", "confidence")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.special = rule.special
        self.class_id = rule.when if isinstance(rule.when, int) else None
        self.folded = rule.when.strip().casefold() if isinstance(rule.when, str) and self.special is None else None
        self.since: Optional[float] = None  # first frame of the current matching run
        self.active = False
        self.last_start = -float("inf")
        self.other_since: Optional[float] = None  # active: first frame of something else
        self.answer = ""
        self.matched_id: Optional[int] = None
        self.confidence = 0.0


class RuleEngine:
    """Turns the answer of every frame into rule starts and ends.

    :param rules: the rules (``Config.rules``).
    :param names: returns the current class names, indexed by class id (e.g. ``lambda: head.names``);
        asked only on frames whose answer is a class, when a rule goes by name. ``None``: no names
        (rules by name never match).
    """

    def __init__(self, rules: Sequence[Rule], names: Optional[Callable[[], Sequence[str]]] = None) -> None:
        seen = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"two rules are called {rule.name!r}")
            seen.add(rule.name)
        self.rules: Tuple[Rule, ...] = tuple(rules)
        self._states = tuple(_State(rule) for rule in self.rules)
        self._names = names
        self._by_name = any(state.folded is not None for state in self._states)
        self._folds: Dict[str, str] = {}

    @property
    def active(self) -> Tuple[str, ...]:
        """Names of the rules started and not yet ended."""
        return tuple(state.rule.name for state in self._states if state.active)

    def _fold(self, name: str) -> str:
        folded = self._folds.get(name)
        if folded is None:
            if len(self._folds) > 1024:
                self._folds.clear()
            folded = self._folds[name] = name.strip().casefold()
        return folded

    def update(self, answer: Union[str, int, None], class_id: Optional[int], confidence: float,
               now: float) -> Tuple[RuleEvent, ...]:
        """The events of one frame (usually none: then the shared empty tuple :data:`NO_EVENTS`).

        ``answer`` is the answer state ("ok", "unknown", "nothing-learned", "absent") with ``class_id``
        the class when "ok"; a ``FrameResult.answer`` (a class id, or a state) is taken as well.  Any
        other answer (``None``: the camera is offline) matches no rule.
        """
        if isinstance(answer, int) and not isinstance(answer, bool):
            answer, class_id = AnswerState.OK.value, answer
        is_class = answer == AnswerState.OK and class_id is not None
        name: Optional[str] = None
        folded: Optional[str] = None
        if is_class and self._by_name and self._names is not None:
            names = self._names()
            if 0 <= class_id < len(names):
                name = names[class_id]
                folded = self._fold(name)
        events = None
        for state in self._states:
            rule = state.rule
            if state.special is not None:
                match = answer == state.special
            elif not is_class or confidence < rule.confidence:
                match = False
            elif state.class_id is not None:
                match = class_id == state.class_id
            else:
                match = folded is not None and folded == state.folded
            event = None
            if match:
                state.other_since = None
                state.confidence = confidence
                if state.since is None:
                    state.since = now
                if (not state.active and now - state.since >= rule.hold
                        and now - state.last_start >= rule.cooldown):
                    state.active = True
                    state.last_start = now
                    if is_class:
                        state.matched_id = class_id
                        state.answer = name if name is not None else (self._name_of(class_id))
                    else:
                        state.matched_id, state.answer = None, state.special
                    event = RuleEvent(rule.name, START, state.answer, state.matched_id, confidence, now)
            else:
                state.since = None
                if state.active:
                    if state.other_since is None:
                        state.other_since = now
                    if now - state.other_since >= rule.until:
                        state.active = False
                        state.other_since = None
                        event = RuleEvent(rule.name, END, state.answer, state.matched_id, state.confidence, now)
            if event is not None:
                if events is None:
                    events = [event]
                else:
                    events.append(event)
        return NO_EVENTS if events is None else tuple(events)

    def _name_of(self, class_id: int) -> str:
        names = self._names() if self._names is not None else ()
        return names[class_id] if 0 <= class_id < len(names) else str(class_id)

    def end_all(self, now: float) -> Tuple[RuleEvent, ...]:
        """End every active rule at once (shutting down, the camera gone): their end events."""
        events = []
        for state in self._states:
            if state.active:
                state.active = False
                state.since = state.other_since = None
                events.append(RuleEvent(state.rule.name, END, state.answer, state.matched_id, state.confidence, now))
        return tuple(events) if events else NO_EVENTS


ANSWER = ""  # the ``rule`` of an answer's own events


class AnswerEvents:
    """The debounced answer: one ``start`` when an answer settles, one ``end`` when it is gone.

    What MQTT, webhooks and the event log report without any rule: an answer (a class with at least
    ``confidence``, ``unknown`` or ``absent``) *starts* once shown for ``hold`` seconds (ending the
    previous one at the same moment) and *ends* once nothing settled has replaced it for ``until``
    seconds.  Pure like :class:`RuleEngine`; its events have ``rule`` = :data:`ANSWER` (``""``).
    """

    __slots__ = ("confidence", "hold", "until", "_names", "_current", "_current_id", "_answer", "_pending",
                 "_pending_since", "_other_since", "_last_confidence")

    def __init__(self, *, confidence: float = 0.6, hold: float = 0.5, until: float = 1.0,
                 names: Optional[Callable[[], Sequence[str]]] = None) -> None:
        self.confidence, self.hold, self.until = float(confidence), float(hold), float(until)
        self._names = names
        self._current: Optional[object] = None  # the settled answer: a class id or a state, or None
        self._current_id: Optional[int] = None
        self._answer = ""
        self._pending: Optional[object] = None
        self._pending_since = 0.0
        self._other_since: Optional[float] = None
        self._last_confidence = 0.0

    @property
    def current(self) -> Optional[str]:
        """The settled answer's name (``"unknown"`` / ``"absent"`` / a class's name), or None."""
        return self._answer if self._current is not None else None

    def update(self, answer: Union[str, int, None], class_id: Optional[int], confidence: float,
               now: float) -> Tuple[RuleEvent, ...]:
        """Like :meth:`RuleEngine.update`: the events of one frame, usually :data:`NO_EVENTS`."""
        if isinstance(answer, int) and not isinstance(answer, bool):
            answer, class_id = AnswerState.OK.value, answer
        if answer == AnswerState.OK and class_id is not None:
            seen: Optional[object] = class_id if confidence >= self.confidence else None
        elif answer == AnswerState.UNKNOWN or answer == AnswerState.ABSENT:
            seen = str(answer.value if isinstance(answer, AnswerState) else answer)
        else:
            seen = None
        if seen is not None and seen == self._current:
            self._other_since = None
            self._pending = None
            self._last_confidence = confidence
            return NO_EVENTS
        if self._other_since is None:
            self._other_since = now
        if seen != self._pending:
            self._pending, self._pending_since = seen, now
        if seen is not None and now - self._pending_since >= self.hold:
            ended = self._end(now)
            self._start(seen, confidence, now)
            started = RuleEvent(ANSWER, START, self._answer, self._current_id, confidence, now)
            return (ended, started) if ended is not None else (started,)
        if self._current is not None and now - self._other_since >= self.until:
            return (self._end(now),)
        return NO_EVENTS

    def _start(self, seen: object, confidence: float, now: float) -> None:
        self._current, self._pending, self._other_since = seen, None, None
        self._last_confidence = confidence
        if isinstance(seen, int):
            names = self._names() if self._names is not None else ()
            self._current_id = seen
            self._answer = names[seen] if 0 <= seen < len(names) else str(seen)
        else:
            self._current_id, self._answer = None, str(seen)

    def _end(self, now: float) -> Optional[RuleEvent]:
        if self._current is None:
            return None
        event = RuleEvent(ANSWER, END, self._answer, self._current_id, self._last_confidence, now)
        self._current = self._current_id = None
        self._other_since = None
        return event

    def end_all(self, now: float) -> Tuple[RuleEvent, ...]:
        """End the settled answer at once (shutting down): its end event, if any."""
        event = self._end(now)
        self._pending = None
        return NO_EVENTS if event is None else (event,)
