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
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

from gpiozero import LED, PWMLED, Button, Device
from gpiozero.exc import BadPinFactory
from gpiozero.pins.mock import MockFactory, MockPWMPin

from .camera import OFFLINE, is_raspberry_pi
from .config import PanelConfig
from .errors import ConfigError, PanelError
from .gestures import FUNCTION, Gestures
from .leds import LedView, led_state
from .vocab import LedPattern

log = logging.getLogger(__name__)

RESERVED_PINS = {0: "ID_SD (HAT EEPROM)", 1: "ID_SC (HAT EEPROM)"}
ButtonName = Union[int, str]  # a class number (0-based) or FUNCTION


@dataclass(frozen=True)
class PanelView:
    """What the front panel shows and which of its buttons are down."""

    leds: Tuple[float, ...]
    status_led: Optional[float]
    buttons: Tuple[bool, ...]
    function: bool
    simulated: bool
    pattern: LedPattern


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
            Device.ensure_pin_factory()  # gpiozero's own choice (lgpio on a Pi), or GPIOZERO_PIN_FACTORY
        return Device.pin_factory
    except BadPinFactory as exc:
        if on_pi if on_pi is not None else is_raspberry_pi():
            raise ConfigError(
                f"this Raspberry Pi's GPIO cannot be used ({exc}): install lgpio "
                "(sudo apt install python3-lgpio, venv made with --system-site-packages), "
                "or set [panel] gpio = \"off\" to run without buttons and LEDs") from None
        log.debug("no GPIO here (%s): the front panel is simulated", exc)
        return MockFactory(pin_class=MockPWMPin)


class Panel:
    """Buttons and LEDs wired to a :class:`~device.loop.TeachLoop` (an observer of it).

    :param loop: the loop to teach and read.
    :param config: the ``[panel]`` configuration.
    :param pin_factory: a gpiozero pin factory (keyword-only, as in gpiozero).
    :param pairing: a :class:`~device.pairing.PairingBroker`: function + the class button
        its waiting request names approves it (and clears nothing).
    :param clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, loop, config: PanelConfig, *, pin_factory, pairing=None,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
        self.pairing = pairing
        self._boot = clock()
        self._pattern = LedPattern.BOOT
        self._feedback = None
        self._last_taught = -math.inf
        self._written = None

    def __repr__(self) -> str:
        pins = ", ".join(f"{u}=GPIO{p}" for u, p in pin_uses(self.config).items())
        return f"<Panel {pins} gestures={self.gestures!r}>"

    def describe(self) -> str:
        """One line for a person: which pins, and whether the panel is real or simulated."""
        buttons = ", ".join(str(pin) for pin in self.config.class_buttons)
        leds = ", ".join(str(pin) for pin in self.config.class_leds)
        where = "simulated (on the phone page)" if self.simulated else "GPIO"
        return (f"{len(self.class_buttons)} class buttons on GPIO {buttons}, LEDs on GPIO {leds}, "
                f"function button on GPIO {self.config.function_button}: {where}")

    # -- for clients of the box -----------------------------------------------------------
    @property
    def simulated(self) -> bool:
        """The pins are gpiozero's mock pins: nobody can press these buttons but software."""
        return isinstance(self.pin_factory, MockFactory)

    def press(self, button: ButtonName) -> None:
        """Press a simulated button (as a finger would: the pin goes low)."""
        self._simulated_button(button).pin.drive_low()

    def release(self, button: ButtonName) -> None:
        self._simulated_button(button).pin.drive_high()

    def view(self) -> PanelView:
        return PanelView(
            leds=tuple(round(float(led.value), 3) for led in self.class_leds),
            status_led=None if self.status_led is None else float(self.status_led.value),
            buttons=tuple(b.is_pressed for b in self.class_buttons),
            function=self.function_button.is_pressed,
            simulated=self.simulated,
            pattern=self._pattern,
        )

    def _simulated_button(self, button: ButtonName) -> Button:
        if not self.simulated:
            raise PanelError("the front panel is real on this box: press its buttons")
        if button == FUNCTION:
            return self.function_button
        if isinstance(button, int) and not isinstance(button, bool) and 0 <= button < len(self.class_buttons):
            return self.class_buttons[button]
        raise PanelError(f"button must be 0 to {len(self.class_buttons) - 1} or {FUNCTION!r}, not {button!r}")

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
                       pairing=self.pairing.pending_code() if self.pairing is not None else None,
                       feedback=self._feedback, boot_started=self._boot)
        self._pattern, levels, status = led_state(view, now, len(self.class_leds), pwm=self.config.pwm)
        self._write(levels, status)

    def _apply(self, action, now: float, camera_ok: bool) -> None:
        kind = action[0]
        if kind == "clear" and self.pairing is not None and self.pairing.approve(action[1], now):
            self._feedback = ("abort", None, now)  # one short flash: the browser is unlocked, nothing cleared
            log.info("function + button %d: the browser that asked is unlocked", action[1] + 1)
        elif kind == "teach":
            if camera_ok:  # nothing is taught while the camera is offline
                self.loop.start_teaching(action[1], hold=False)
        elif kind == "hold":
            self.loop.hold_teaching(action[1])
        elif kind == "release":
            self.loop.stop_teaching(action[1])
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
