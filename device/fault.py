"""When the model cannot be loaded at start: say so on the LEDs and wait for it to be fixed.

A box without a screen must not just die silently: every LED blinks the slow fault
pattern, systemd hears READY=1 and a STATUS= line naming the problem (and watchdog
pings, so it is not restarted in a loop), and the model is tried again every few
seconds.  Once it loads (someone ran ``teachbox fetch-model``), the LEDs are released
and start-up goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from gpiozero import LED, PWMLED

from .config import Config
from .embedder import Embedder
from .errors import ModelError
from .leds import LedView, led_levels
from .notify import Notifier, watchdog_interval
from .panel import make_pin_factory, validate_pins

log = logging.getLogger(__name__)


def wait_for_model(config: Config, error: ModelError, stop: threading.Event, *, simulate: bool = False,
                   retry: float = 10.0, clock: Callable[[], float] = time.monotonic,
                   pin_factory=None, notifier: Optional[Notifier] = None) -> bool:
    """Blink the fault pattern until the model loads (``True``) or ``stop`` is set (``False``)."""
    log.error("%s. Waiting for it: the LEDs blink slowly until it can be loaded.", error)
    notifier = notifier or Notifier()
    notifier.send("READY=1", f"STATUS=model error: {error}"[:400])
    leds = _fault_leds(config, simulate, pin_factory)
    ping = watchdog_interval() or retry
    next_try = next_ping = clock()
    try:
        while not stop.is_set():
            now = clock()
            levels, status = led_levels(LedView(fault=True), now, max(1, len(leds) - 1))
            for led, level in zip(leds, (*levels, status)):
                led.value = level
            if now >= next_ping:
                notifier.send("WATCHDOG=1")
                next_ping = now + ping
            if now >= next_try:
                next_try = now + retry
                try:
                    Embedder(config.model_path, num_threads=config.threads)
                    log.info("the model loads now: starting")
                    return True
                except ModelError as again:
                    log.debug("model still unusable: %s", again)
            stop.wait(0.1)
        return False
    finally:
        for led in leds:
            led.off()
            led.close()


def _fault_leds(config: Config, simulate: bool, pin_factory):
    panel = config.panel
    if panel.gpio == "off":
        return []
    validate_pins(panel, config.head.classes)
    factory = pin_factory or make_pin_factory(panel.gpio, simulate=simulate)
    led_class = PWMLED if panel.pwm else LED
    leds = [led_class(pin, active_high=panel.led_active_high, pin_factory=factory) for pin in panel.class_leds]
    if panel.status_led >= 0:
        leds.append(LED(panel.status_led, active_high=panel.led_active_high, pin_factory=factory))
    else:
        leds.append(_NoLed())
    return leds


class _NoLed:
    """Stands in for a status LED that is not wired."""

    value = 0.0

    def off(self) -> None:
        pass

    def close(self) -> None:
        pass
