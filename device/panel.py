"""The front panel: class buttons, a function button and LEDs, through gpiozero.

The same code drives real pins on a Pi (gpiozero's default pin factory, lgpio) and
simulated ones everywhere else (``MockFactory(pin_class=MockPWMPin)``).  gpiozero's
callbacks only enqueue events; the loop thread applies them in :meth:`Panel.poll`
before every capture and writes the LEDs in :meth:`Panel.update` after it, from
:func:`device.leds.led_levels` (a pure function of the state).
"""

from __future__ import annotations

import functools
import logging
import math
import queue
import threading
import time
import warnings
from typing import Callable, Dict, List, Optional

from gpiozero import LED, PWMLED, Button, Device
from gpiozero.exc import BadPinFactory
from gpiozero.pins.mock import MockFactory, MockPWMPin

from .camera import OFFLINE, is_raspberry_pi
from .config import PanelConfig
from .errors import ConfigError
from .gestures import FUNCTION, Gestures
from .leds import LedView, led_levels

log = logging.getLogger(__name__)

RESERVED_PINS = {0: "ID_SD (HAT EEPROM)", 1: "ID_SC (HAT EEPROM)"}


def pin_uses(config: PanelConfig) -> Dict[str, int]:
    """``{use: BCM pin}`` for every pin the panel would claim."""
    uses = {f"class_buttons[{i}]": pin for i, pin in enumerate(config.class_buttons)}
    uses.update({f"class_leds[{i}]": pin for i, pin in enumerate(config.class_leds)})
    uses["function_button"] = config.function_button
    if config.status_led >= 0:
        uses["status_led"] = config.status_led
    return uses


def validate_pins(config: PanelConfig, classes: int) -> None:
    """Refuse wiring that cannot work, naming the pin and its uses."""
    if len(config.class_buttons) != len(config.class_leds):
        raise ConfigError(f"[panel] has {len(config.class_buttons)} class_buttons but {len(config.class_leds)} "
                          "class_leds: give one LED per button")
    if not 1 <= len(config.class_buttons) <= classes:
        raise ConfigError(f"[panel] has {len(config.class_buttons)} class buttons but [head] classes = {classes}")
    seen: Dict[int, str] = {}
    for use, pin in pin_uses(config).items():
        if pin in RESERVED_PINS:
            raise ConfigError(f"[panel] {use} = {pin}: GPIO{pin} is {RESERVED_PINS[pin]}, not a free GPIO; "
                              "use one of GPIO2 to GPIO27")
        if not 2 <= pin <= 27:
            raise ConfigError(f"[panel] {use} = {pin}: not a GPIO of the 40-pin header (GPIO2 to GPIO27)")
        if pin in seen:
            raise ConfigError(f"[panel] GPIO{pin} is used twice: by {seen[pin]} and by {use}")
        seen[pin] = use


def make_pin_factory(mode: str, *, simulate: bool = False, on_pi: Optional[bool] = None):
    """gpiozero's default pin factory on a Pi; its MockFactory when simulating or elsewhere.

    On a Pi whose GPIO cannot be used the box refuses to start rather than quietly
    simulating its buttons (and offering simulated ones on the page).
    """
    if mode == "mock" or simulate:
        return MockFactory(pin_class=MockPWMPin)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Device._default_pin_factory()
    except BadPinFactory as exc:
        if on_pi if on_pi is not None else is_raspberry_pi():
            raise ConfigError(
                f"this Raspberry Pi's GPIO cannot be used ({exc}): install lgpio "
                "(sudo apt install python3-lgpio, venv made with --system-site-packages), "
                "or set [panel] gpio = \"off\" to run without buttons and LEDs") from None
        log.warning("no GPIO here (%s): the front panel is simulated", exc)
        return MockFactory(pin_class=MockPWMPin)


class Panel:
    """Buttons and LEDs wired to a :class:`~device.loop.TeachLoop` (an observer of it).

    :param loop: the loop to teach and read.
    :param config: the ``[panel]`` configuration.
    :param pin_factory: a gpiozero pin factory (keyword-only, as in gpiozero).
    :param clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, loop, config: PanelConfig, *, pin_factory, clock: Callable[[], float] = time.monotonic) -> None:
        validate_pins(config, loop.head.num_classes)
        self.loop = loop
        self.config = config
        self.pin_factory = pin_factory
        self._clock = clock
        self._events: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self.gestures = Gestures(hold_time=config.hold_time, clear_all_time=config.clear_all_time,
                                 countdown_start=min(1.0, config.clear_all_time / 3))
        self._devices: List[Device] = []
        # mechanical buttons bounce; simulated ones do not (and gpiozero's mock would drop edges)
        bounce = None if isinstance(pin_factory, MockFactory) else (config.bounce_time or None)
        self.class_buttons = [self._button(pin, i, bounce) for i, pin in enumerate(config.class_buttons)]
        self.function_button = self._button(config.function_button, FUNCTION, bounce)
        led_class = PWMLED if config.pwm else LED
        self.class_leds = [self._claim(led_class(pin, active_high=config.led_active_high, pin_factory=pin_factory))
                           for pin in config.class_leds]
        self.status_led = None
        if config.status_led >= 0:
            self.status_led = self._claim(LED(config.status_led, active_high=config.led_active_high,
                                              pin_factory=pin_factory))
        self.pairing = None  # a device.pairing.PairingBroker: a short function press approves it
        self._boot = clock()
        self._feedback = None
        self._last_taught = -math.inf
        self._written = None

    def __repr__(self) -> str:
        pins = ", ".join(f"{u}=GPIO{p}" for u, p in pin_uses(self.config).items())
        return f"<Panel {pins} gestures={self.gestures!r}>"

    def _claim(self, device):
        self._devices.append(device)
        return device

    def _button(self, pin: int, name, bounce: Optional[float]) -> Button:
        button = self._claim(Button(pin, pull_up=True, bounce_time=bounce, pin_factory=self.pin_factory))
        button.when_pressed = functools.partial(self._enqueue, "press", name)
        button.when_released = functools.partial(self._enqueue, "release", name)
        return button

    def _enqueue(self, kind: str, name) -> None:
        """Runs in gpiozero's callback thread: only records the event, never blocks."""
        self._events.put((kind, name, self._clock()))

    # -- called by the loop before and after every frame ------------------------------------
    def poll(self) -> None:
        """Apply the button events that arrived since the last frame (loop thread)."""
        now = self._clock()
        camera_ok = self.loop.camera.state != OFFLINE
        while True:
            try:
                kind, name, when = self._events.get_nowait()
            except queue.Empty:
                break
            handler = self.gestures.press if kind == "press" else self.gestures.release
            for action in handler(name, when):
                self._apply(action, when, camera_ok)
        for action in self.gestures.tick(now):
            self._apply(action, now, camera_ok)

    def update(self, result) -> None:
        """Show the frame's outcome on the LEDs (loop thread)."""
        now = self._clock()
        camera_ok = result.camera_state != OFFLINE
        if result.taught is not None:
            self._last_taught = now
        burst = self.loop.teacher.active  # from a button or from the phone
        teaching = burst.class_id if burst is not None and burst.pressed and camera_ok else None
        view = LedView(answer=result.answer, confidence=result.confidence, fault=not camera_ok,
                       teaching=teaching, last_taught=self._last_taught, countdown=self.gestures.countdown(now),
                       pairing=self.pairing is not None and self.pairing.has_pending(),
                       feedback=self._feedback, boot_started=self._boot)
        self._write(*led_levels(view, now, len(self.class_leds), pwm=self.config.pwm))

    def _apply(self, action, now: float, camera_ok: bool) -> None:
        kind = action[0]
        if kind == "teach":
            if camera_ok:  # nothing is taught while the camera is offline
                self.loop.start_teaching(action[1], hold=False)
        elif kind == "hold":
            self.loop.hold_teaching(action[1])
        elif kind == "release":
            self.loop.stop_teaching(action[1])
        elif kind == "undo" and self.pairing is not None and self.pairing.approve_pending():
            self._feedback = ("abort", None, now)  # one short flash: the phone is unlocked
            log.info("function button pressed: a browser is paired")
        elif kind == "undo":
            undone = self.loop.undo()
            self._feedback = ("undo", undone[0] if undone else None, now)
            log.info("undo: %s", f"{undone[1]} example(s) of class {undone[0] + 1}" if undone else "nothing to undo")
        elif kind == "clear":
            forgotten = self.loop.clear(action[1])
            self._feedback = ("clear", action[1], now)
            log.info("cleared class %d (%d examples)", action[1] + 1, forgotten)
        elif kind == "clear_all":
            forgotten = self.loop.clear_all()
            self._feedback = ("clear_all", None, now)
            log.info("cleared everything (%d examples)", forgotten)
        elif kind == "abort":
            self._feedback = ("abort", None, now)

    def _write(self, levels, status_level) -> None:
        if (levels, status_level) == self._written:
            return
        for led, level in zip(self.class_leds, levels):
            led.value = level
        if self.status_led is not None:
            self.status_led.value = status_level
        self._written = (levels, status_level)

    def close(self) -> None:
        """Every LED off, every pin released."""
        for led in self.class_leds + ([self.status_led] if self.status_led is not None else []):
            _quietly(led.off)
        # each gpiozero Button joins its hold thread (~0.1 s): release them side by side
        closers = [threading.Thread(target=_quietly, args=(device.close,)) for device in self._devices]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()
        self._devices.clear()


def _quietly(action) -> None:
    try:
        action()
    except Exception as exc:  # closing must never raise
        log.debug("closing the panel: %s", exc)
