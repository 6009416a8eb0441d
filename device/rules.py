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

    @property
    def special(self) -> Optional[str]:
        """The answer state this rule waits for ("unknown" / "absent"), or None for a class."""
        return SPECIAL_ANSWERS.get(self.when.strip().casefold()) if isinstance(self.when, str) else None


@dataclass(frozen=True)
class RuleEvent:
    """A rule started or ended: what any output (GPIO, log, MQTT, web) consumes."""

    rule: str  # the rule's name
    kind: str  # START or END
    answer: str  # the class's name then (or "unknown" / "absent")
    class_id: Optional[int]  # None for unknown / absent
    confidence: float  # of the last frame that matched
    time: float  # the caller's monotonic time of the frame that started / ended it


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
