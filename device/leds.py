"""What the LEDs show, as a pure function of the appliance state and the time.

No timers, no threads: the panel calls :func:`led_levels` after every frame and writes
the levels (0..1) to the LEDs.  Patterns, from most to least important:

* boot: a chase, two rounds, so the user sees every LED works;
* fault (camera offline or model error): every LED blinks slowly (0.5 s on, 1.5 s off);
* clear-all countdown: the lit LEDs count down to none, blinking fast;
* a browser asks to pair: the LED of the button that approves it blinks fast, the
  others are dark (pressing that class button approves; nothing else does);
* confirmations: undo = the class's LED blinks twice; clear class = it flickers four
  times; clear all = every LED blinks twice; abort = every LED flashes once, briefly;
* teaching: the class's LED is on and goes dark for a moment per example taken;
* otherwise: the predicted class's LED is lit (with PWM, as bright as the confidence);
  unknown or nothing learned: none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from .vocab import LedPattern

CHASE_STEP = 0.12
CHASE_ROUNDS = 2
FAULT_PERIOD, FAULT_ON = 2.0, 0.5
PAIRING_PERIOD, PAIRING_ON = 0.4, 0.2  # fast, unlike the slow fault blink
TAUGHT_BLINK = 0.1
MIN_LEVEL = 5 / 32  # a dimmer answer LED would look off (a multiple of the 1/32 step)
FEEDBACK_SECONDS = {"undo": 0.6, "clear": 0.8, "clear_all": 1.0, "abort": 0.2}


@dataclass(frozen=True)
class LedView:
    """The part of the appliance state the LEDs show."""

    answer: Union[int, str, None] = None
    confidence: float = 0.0
    fault: bool = False
    teaching: Optional[int] = None
    last_taught: float = -math.inf  # when the last example was taken
    countdown: Optional[float] = None  # clear-all countdown left, 1 -> 0
    pairing: Optional[int] = None  # a browser asks to be unlocked: pressing this class button approves it
    feedback: Optional[Tuple[str, Optional[int], float]] = None  # (kind, class, started)
    boot_started: float = -math.inf


def boot_seconds(n: int) -> float:
    return CHASE_ROUNDS * n * CHASE_STEP


def _blink(t: float, on: float, period: float) -> bool:
    return (t % period) < on


def _feedback_levels(kind: str, class_id: Optional[int], t: float, n: int):
    if kind == "undo":
        lit = _blink(t, 0.15, 0.3)
        return tuple(1.0 if lit and i == class_id else 0.0 for i in range(n))
    if kind == "clear":
        lit = _blink(t, 0.1, 0.2)
        return tuple(1.0 if lit and i == class_id else 0.0 for i in range(n))
    if kind == "clear_all":
        return (1.0 if _blink(t, 0.25, 0.5) else 0.0,) * n
    return (1.0,) * n  # abort: one short flash of everything


def led_levels(view: LedView, now: float, n: int, *, pwm: bool = True) -> Tuple[Tuple[float, ...], float]:
    """``(class LED levels, status LED level)`` for ``n`` class LEDs at time ``now``."""
    _, levels, status = led_state(view, now, n, pwm=pwm)
    return levels, status


def led_state(view: LedView, now: float, n: int, *,
              pwm: bool = True) -> Tuple[LedPattern, Tuple[float, ...], float]:
    """``(pattern shown, class LED levels, status LED level)`` for ``n`` class LEDs at ``now``."""
    since_boot = now - view.boot_started
    if 0 <= since_boot < boot_seconds(n):
        step = int(since_boot / CHASE_STEP) % n
        return LedPattern.BOOT, tuple(1.0 if i == step else 0.0 for i in range(n)), 1.0
    if view.fault:
        level = 1.0 if _blink(now, FAULT_ON, FAULT_PERIOD) else 0.0
        return LedPattern.FAULT, (level,) * n, level
    if view.countdown is not None:
        lit = math.ceil(view.countdown * n)
        on = 1.0 if _blink(now, 0.125, 0.25) else 0.0
        return LedPattern.COUNTDOWN, tuple(on if i < lit else 0.0 for i in range(n)), 0.0
    if view.pairing is not None:
        on = 1.0 if _blink(now, PAIRING_ON, PAIRING_PERIOD) else 0.0
        return LedPattern.PAIRING, tuple(on if i == view.pairing else 0.0 for i in range(n)), 1.0
    if view.feedback is not None:
        kind, class_id, started = view.feedback
        t = now - started
        if 0 <= t < FEEDBACK_SECONDS.get(kind, 0.0):
            return LedPattern.FEEDBACK, _feedback_levels(kind, class_id, t, n), 1.0
    if view.teaching is not None:
        dark = 0 <= now - view.last_taught < TAUGHT_BLINK
        return LedPattern.TEACHING, tuple(0.0 if dark or i != view.teaching else 1.0 for i in range(n)), 1.0
    if isinstance(view.answer, int) and 0 <= view.answer < n:
        # in 1/32 steps: the PWM pin is written only when the brightness visibly changes
        level = round(max(MIN_LEVEL, min(1.0, view.confidence)) * 32) / 32 if pwm else 1.0
        return LedPattern.ANSWER, tuple(level if i == view.answer else 0.0 for i in range(n)), 1.0
    return LedPattern.OFF, (0.0,) * n, 1.0
