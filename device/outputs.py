"""What the box *does* with its answers: rule and answer events, handed to every output.

:class:`EventsOutput` is one observer of the loop.  On every frame it runs the rules
(:class:`~device.rules.RuleEngine`) and the debounced answer (:class:`~device.rules.AnswerEvents`);
the events they return (rarely: the per-frame path allocates nothing when nothing happens) are
stamped with the wall clock (unix seconds) and given to each consumer's ``apply(event)``:

* the rules' GPIO outputs (:class:`~device.actions.GpioActions`) and sounds, rule events only;
* the event log (:class:`~device.events.EventLog`), rule events and, with ``[events] log_answers``,
  answer events;
* MQTT and the webhook, every event (they queue it; their own threads do the network).

Consumers must return at once (queue, write a pin); one that raises is logged and the others
still run.  The rules can be replaced while the loop runs (the page edits them):
:meth:`EventsOutput.set_rules` ends the active ones first (their ``end`` goes out, an ``on`` pin
goes low), then swaps engine and outputs under a lock that the frame path holds only for its
update.  Phone-edited rules are kept in ``rules.json`` in the state folder (written atomically).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from .atomic import atomic_file
from .errors import ConfigError
from .rules import ANSWER, AnswerEvents, Rule, RuleEngine, RuleEvent

log = logging.getLogger(__name__)

RULES_FILE = "rules.json"
MAX_RULES_BYTES = 256 * 1024


class EventsOutput:
    """The loop observer behind rules, the event log, MQTT and the webhook.

    :param rules: the rules to run.
    :param names: the current class names (``lambda: loop.head.names``).
    :param answers: the debounced answer (``None``: no answer events).
    :param make_rule_outputs: ``make_rule_outputs(rules)`` -> consumers of the rules' own events (GPIO, sound);
        called again by :meth:`set_rules`, so it must claim pins afresh (and may raise ``PanelError``).
    :param consumers: consumers of every event (event log, MQTT, webhook).
    :param log_answers: whether the event log (``event_log``) also gets answer events.
    :param clock: monotonic seconds, for the engines; ``wall``: unix seconds, stamped on the events.
    """

    def __init__(self, rules: Sequence[Rule], *, names: Callable[[], Sequence[str]],
                 answers: Optional[AnswerEvents] = None,
                 make_rule_outputs: Callable[[Sequence[Rule]], List[object]] = lambda rules: [],
                 consumers: Iterable[object] = (), event_log=None, log_answers: bool = True,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._names = names
        self._make_rule_outputs = make_rule_outputs
        self.answers = answers
        self.consumers: List[object] = list(consumers)
        self.event_log = event_log
        self.log_answers = log_answers
        self._clock, self._wall = clock, wall
        self._lock = threading.Lock()
        self.engine = RuleEngine(rules, names=names)
        self.rule_outputs: List[object] = list(make_rule_outputs(rules)) if rules else []

    def __repr__(self) -> str:
        return f"<EventsOutput rules={len(self.engine.rules)} consumers={len(self.consumers)}>"

    @property
    def rules(self) -> Tuple[Rule, ...]:
        return self.engine.rules

    def add_consumer(self, consumer) -> None:
        """Another consumer of every event (e.g. MQTT, once the box exists)."""
        with self._lock:
            self.consumers.append(consumer)

    # -- the frame path ---------------------------------------------------------------------
    def update(self, result) -> None:
        """``observer.update(result)`` with a :class:`device.loop.FrameResult` (the camera offline: nothing seen)."""
        answer = result.answer if result.frame is not None else None
        with self._lock:
            now = self._clock()
            events = self.engine.update(answer, None, result.confidence, now)
            if events:
                self._send(events)
            if self.answers is not None:
                events = self.answers.update(answer, None, result.confidence, now)
                if events:
                    self._send(events)

    def _send(self, events: Tuple[RuleEvent, ...]) -> None:
        wall = self._wall()
        for event in events:
            event = dataclasses.replace(event, time=wall)
            is_rule = event.rule != ANSWER
            if is_rule:
                for consumer in self.rule_outputs:
                    _apply(consumer, event)
            if self.event_log is not None and (is_rule or self.log_answers):
                _apply(self.event_log, event)
            for consumer in self.consumers:
                _apply(consumer, event)

    # -- changing the rules (the page) ------------------------------------------------------
    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Run ``rules`` from now on: the active rules end, their outputs are released, the new ones claimed.

        :raises PanelError: a new rule's pin cannot be claimed (the old rules are then restored).
        """
        with self._lock:
            self._send(self.engine.end_all(self._clock()))
            old = self.rule_outputs
            _close_all(old)
            try:
                outputs = list(self._make_rule_outputs(rules)) if rules else []
            except Exception:
                self.rule_outputs = list(self._make_rule_outputs(self.engine.rules)) if self.engine.rules else []
                raise
            self.engine = RuleEngine(rules, names=self._names)
            self.rule_outputs = outputs

    def close(self) -> None:
        """End what is active (end events go out, pins go low), then close every output."""
        with self._lock:
            now = self._clock()
            self._send(self.engine.end_all(now))
            if self.answers is not None:
                self._send(self.answers.end_all(now))
            _close_all(self.rule_outputs)
            _close_all(self.consumers)
            if self.event_log is not None:
                _close_all([self.event_log])


def _apply(consumer, event: RuleEvent) -> None:
    try:
        consumer.apply(event)
    except Exception:
        log.exception("output %r failed on %s", consumer, event)


def _close_all(consumers: Iterable[object]) -> None:
    for consumer in consumers:
        close = getattr(consumer, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing output %r failed", consumer)


# -- rules.json: the rules edited on the page ------------------------------------------------

def load_phone_rules(state_dir: Path, check: Callable[[object], Tuple[Rule, ...]]) -> Tuple[Rule, ...]:
    """The rules kept in ``rules.json`` (none if there is no file); ``check`` validates the list.

    A file that cannot be read or is no longer valid (e.g. a pin now used by the panel) is named in
    a warning and left where it is: the box starts without those rules rather than not at all.
    """
    path = Path(state_dir) / RULES_FILE
    try:
        if not path.is_file():
            return ()
        if path.stat().st_size > MAX_RULES_BYTES:
            raise ValueError(f"it is larger than {MAX_RULES_BYTES // 1024} KB")
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            raise ValueError('it is not {"rules": [...]}')
        return check(data["rules"])
    except (OSError, ValueError, ConfigError) as exc:
        log.warning("the rules saved from the page (%s) are not used: %s; set them again on the page", path, exc)
        return ()


def save_phone_rules(state_dir: Path, tables: Sequence[dict]) -> None:
    """Keep ``tables`` (checked ``[[rules]]`` tables) in ``rules.json``, atomically and durably."""
    data = json.dumps({"version": 1, "rules": list(tables)}, indent=1, ensure_ascii=False).encode("utf-8")
    with atomic_file(Path(state_dir) / RULES_FILE, mode=0o600) as out:
        out.write(data)


__all__ = ["EventsOutput", "load_phone_rules", "save_phone_rules", "RULES_FILE"]
