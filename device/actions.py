"""GPIO actions of the rules: one gpiozero output per pin, driven by :class:`device.rules.RuleEvent`\\ s.

Modes (``[[rules.then]]``: at the rule's start; ``[[rules.ended]]``: at its end):

* ``on`` — a :class:`~gpiozero.DigitalOutputDevice` high while the rule is on, low at its end
  (in ``ended``: high from the end until the rule starts again);
* ``pulse`` — the same device high for ``ms`` milliseconds (gpiozero's own background ``blink``, n=1);
* ``servo`` — an :class:`~gpiozero.AngularServo` (-90..90 degrees, 1-2 ms pulses) turned to ``angle``
  and left there (an ``ended`` action can turn it back);
* ``pwm`` — a :class:`~gpiozero.PWMOutputDevice` at ``value`` while the rule is on, 0 at its end
  (in ``ended``: from the end until the next start).

Pins shared by several rules (same mode, config checks it): an ``on`` pin is high while *any* of its
rules holds it, a ``pwm`` pin at the highest value held.  :meth:`GpioActions.apply` only writes pins
and starts gpiozero's blink thread: it never sleeps, so the loop thread may call it.  The pin factory
is injected (the panel's: real pins on a Pi, ``MockFactory(pin_class=MockPWMPin)`` elsewhere).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from gpiozero import AngularServo, DigitalOutputDevice, PWMOutputDevice

from .errors import PanelError
from .rules import END, START, Action, Rule, RuleEvent

log = logging.getLogger(__name__)

SERVO_MIN_PULSE, SERVO_MAX_PULSE = 1e-3, 2e-3  # seconds, at -90 and +90 degrees (a hobby servo; 50 Hz)
HOLDING_MODES = ("on", "pwm")  # held from one event to the next (the others act once)


@dataclass(frozen=True)
class RulePin:
    """An output pin of the rules: ``value`` is 0/1 (on, pulse), 0..1 (pwm) or the servo's angle (None: limp)."""

    gpio: int
    mode: str
    value: Optional[float]
    rules: Tuple[str, ...]


def _level(output) -> Optional[float]:
    try:
        if output.mode == "servo":
            angle = output.device.angle
            return None if angle is None else round(float(angle), 1)
        return round(float(output.device.value), 3)
    except Exception:  # a closed device
        return None


class _Output:
    """One pin: its gpiozero device and, for on / pwm, who holds it at what level."""

    def __init__(self, pin: int, mode: str, pin_factory, active_high: bool = True) -> None:
        self.pin, self.mode = pin, mode
        if mode in ("on", "pulse"):
            self.device = DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                              pin_factory=pin_factory)
        elif mode == "servo":
            self.device = AngularServo(pin, initial_angle=None, min_angle=-90, max_angle=90,
                                       min_pulse_width=SERVO_MIN_PULSE, max_pulse_width=SERVO_MAX_PULSE,
                                       pin_factory=pin_factory)
        else:
            self.device = PWMOutputDevice(pin, initial_value=0.0, pin_factory=pin_factory)
        self.holders: Dict[Tuple[str, str], float] = {}

    def act(self, action: Action, holder: Tuple[str, str]) -> None:
        if self.mode == "pulse":
            self.device.blink(on_time=action.ms / 1000, off_time=0, n=1, background=True)
        elif self.mode == "servo":
            self.device.angle = action.angle
        else:
            self.holders[holder] = 1.0 if self.mode == "on" else action.value
            self._write()

    def release(self, holder: Tuple[str, str]) -> None:
        if self.holders.pop(holder, None) is not None:
            self._write()

    def _write(self) -> None:
        level = max(self.holders.values(), default=0.0)
        if self.mode == "on":
            self.device.value = bool(level)
        else:
            self.device.value = level

    def close(self) -> None:
        self.device.close()


class GpioActions:
    """The GPIO outputs of ``rules``; :meth:`apply` every event of the rule engine, :meth:`close` at the end.

    :param rules: the rules (``Config.rules``); their pins are claimed at once.
    :param pin_factory: gpiozero's pin factory (the panel's); required, so that tests never touch real pins.
    :raises PanelError: a pin cannot be claimed (used by something else, not a GPIO of this board).
    """

    def __init__(self, rules: Sequence[Rule], pin_factory) -> None:
        self._rules: Dict[str, Rule] = {rule.name: rule for rule in rules}
        self.outputs: Dict[int, _Output] = {}
        try:
            for rule in rules:
                for action in (*rule.then, *rule.ended):
                    if action.gpio not in self.outputs:
                        self.outputs[action.gpio] = _Output(action.gpio, action.mode, pin_factory,
                                                            action.active_high)
        except Exception as exc:
            self.close()
            raise PanelError(f"[[rules]] cannot use GPIO{action.gpio} ({action.mode}): {exc}") from exc

    def apply(self, event: RuleEvent) -> None:
        """Do what ``event`` (a start or end of a rule) asks of the pins; never blocks."""
        rule = self._rules.get(event.rule)
        if rule is None:
            return
        act, release = (rule.then, rule.ended) if event.kind == START else (rule.ended, rule.then)
        act_as, release_as = ("then", "ended") if event.kind == START else ("ended", "then")
        for action in release:
            if action.mode in HOLDING_MODES:
                self._do(action, lambda output: output.release((rule.name, release_as)))
        for action in act:
            self._do(action, lambda output: output.act(action, (rule.name, act_as)))

    def _do(self, action: Action, step: Callable[[_Output], None]) -> None:
        try:
            step(self.outputs[action.gpio])
        except Exception:  # one broken output must not stop the others (nor the loop)
            log.exception("rule action on GPIO%d (%s) failed", action.gpio, action.mode)

    def pins(self) -> List[RulePin]:
        """What each output pin does now (the simulated panel shows them), by pin number."""
        users: Dict[int, List[str]] = {}
        for rule in self._rules.values():
            for action in (*rule.then, *rule.ended):
                names = users.setdefault(action.gpio, [])
                if rule.name not in names:
                    names.append(rule.name)
        return [RulePin(pin, output.mode, _level(output), tuple(users.get(pin, ())))
                for pin, output in sorted(self.outputs.items())]

    def close(self) -> None:
        """Release every pin (outputs go low / the servo goes limp)."""
        for output in self.outputs.values():
            try:
                output.close()
            except Exception:
                log.exception("closing GPIO%d failed", output.pin)
        self.outputs = {}


__all__ = ["GpioActions", "RulePin", "END", "START"]
