"""GPIO actions of the rules on gpiozero's own mock pins: pulses in time, on until the end, servo, PWM."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from gpiozero import DigitalOutputDevice

from conftest import Clock
from device.actions import GpioActions
from device.errors import PanelError
from device.outputs import EventsOutput
from device.rules import END, START, Action, Rule, RuleEvent


FRAME = object()  # a camera frame (None: the camera is offline)


def start(rule, t=0.0):
    return RuleEvent(rule, START, "cat", 0, 0.9, t)


def end(rule, t=1.0):
    return RuleEvent(rule, END, "cat", 0, 0.9, t)


def states(pin):
    return [round(s.state, 4) for s in pin.states]


def test_pulse_goes_high_then_low_after_ms_without_blocking(factory):
    actions = GpioActions([Rule("r", "cat", then=(Action(17, "pulse", ms=200),))], factory)
    pin = factory.pin(17)
    pin.clear_states()
    began = time.monotonic()
    actions.apply(start("r"))
    assert time.monotonic() - began < 0.05  # the loop thread is not held for the pulse
    assert pin.state
    time.sleep(0.4)
    assert len(pin.states) == 3
    pin.assert_states_and_times([(0.0, False), (0.0, True), (0.2, False)])
    actions.apply(end("r"))  # a pulse has nothing to undo
    assert len(pin.states) == 3
    actions.close()


def test_a_pulse_started_again_restarts(factory):
    actions = GpioActions([Rule("r", "cat", then=(Action(17, "pulse", ms=300),))], factory)
    pin = factory.pin(17)
    actions.apply(start("r"))
    time.sleep(0.15)
    actions.apply(start("r"))
    time.sleep(0.2)
    assert pin.state  # 0.35 s after the first start, 0.2 s into the second pulse
    time.sleep(0.25)
    assert not pin.state
    actions.close()


def test_on_stays_on_until_the_end_event(factory):
    clock = Clock(0.0)
    names = ["cat", "dog"]
    made = []
    output = EventsOutput([Rule("r", "cat", hold=0.2, until=0.5, then=(Action(17, "on"),))], names=lambda: names,
                          clock=clock, make_rule_outputs=lambda rules: made.append(GpioActions(rules, factory)) or made)
    actions = made[0]
    pin = factory.pin(17)
    pin.clear_states()

    def frames(answer, seconds, confidence=0.9):
        for _ in range(round(seconds * 10)):
            output.update(SimpleNamespace(frame=FRAME, answer=answer, confidence=confidence))
            clock.t = round(clock.t + 0.1, 6)

    frames(0, 0.2)
    assert not pin.state  # held 0.1 s of 0.2
    frames(0, 3)
    assert pin.state
    frames(1, 0.1)
    frames(0, 1)  # a one-frame drop: still on
    assert pin.state and states(pin) == [0, 1]
    frames(1, 0.6)
    assert not pin.state and states(pin) == [0, 1, 0]
    output.close()
    assert actions.outputs == {}


def test_servo_pwm_for_an_angle(factory):
    rules = [Rule("up", "cat", then=(Action(18, "servo", angle=90),), ended=(Action(18, "servo", angle=-90),)),
             Rule("mid", "dog", then=(Action(18, "servo", angle=0),))]
    actions = GpioActions(rules, factory)
    pin = factory.pin(18)
    assert pin.state == 0  # no pulses before the first action: the servo is not moved at start
    actions.apply(start("up"))
    assert pin.frequency == 50
    assert pin.state == pytest.approx(2e-3 / 20e-3)  # 2 ms of a 20 ms frame
    actions.apply(end("up"))
    assert pin.state == pytest.approx(1e-3 / 20e-3)
    actions.apply(start("mid"))
    assert pin.state == pytest.approx(1.5e-3 / 20e-3)
    actions.apply(end("mid"))  # a servo stays where it was turned
    assert pin.state == pytest.approx(1.5e-3 / 20e-3)
    actions.close()


def test_pwm_value_while_on_and_shared_pins_held_by_any_rule(factory):
    rules = [Rule("a", "cat", then=(Action(13, "pwm", value=0.4),)),
             Rule("b", "dog", then=(Action(13, "pwm", value=0.8), Action(17, "on"))),
             Rule("c", "unknown", then=(Action(17, "on"),))]
    actions = GpioActions(rules, factory)
    pwm, led = factory.pin(13), factory.pin(17)
    actions.apply(start("b"))
    assert pwm.state == pytest.approx(0.8) and led.state
    actions.apply(start("a"))
    assert pwm.state == pytest.approx(0.8)  # the highest value held
    actions.apply(start("c"))
    actions.apply(end("b"))
    assert pwm.state == pytest.approx(0.4)  # "a" still holds it
    assert led.state  # "c" still holds it
    actions.apply(end("c"))
    actions.apply(end("a"))
    assert pwm.state == 0 and not led.state
    actions.close()


def test_ended_actions(factory):
    rules = [Rule("r", "cat", then=(Action(17, "pulse", ms=100),),
                  ended=(Action(22, "on"), Action(23, "pulse", ms=100)))]
    actions = GpioActions(rules, factory)
    door, done = factory.pin(22), factory.pin(23)
    actions.apply(start("r"))
    assert not door.state and not done.state
    actions.apply(end("r"))
    assert door.state and done.state  # "on" in ended: on from the end ...
    time.sleep(0.25)
    assert door.state and not done.state
    actions.apply(start("r"))
    assert not door.state  # ... until the rule starts again
    actions.close()


def test_events_of_unknown_rules_are_ignored_and_a_broken_output_does_not_stop_the_others(factory, caplog):
    rules = [Rule("r", "cat", then=(Action(17, "on"), Action(22, "on")))]
    actions = GpioActions(rules, factory)
    actions.apply(start("someone else's"))
    assert not factory.pin(17).state

    def broken(*args):
        raise RuntimeError("pin gone")

    actions.outputs[17].act = broken
    actions.apply(start("r"))
    assert factory.pin(22).state
    assert "GPIO17" in caplog.text
    actions.close()


def test_close_releases_the_pins_and_a_taken_pin_is_refused(factory):
    actions = GpioActions([Rule("r", "cat", then=(Action(17, "on"),))], factory)
    actions.close()
    DigitalOutputDevice(17, pin_factory=factory).close()  # free again
    taken = DigitalOutputDevice(22, pin_factory=factory)
    with pytest.raises(PanelError, match="GPIO22"):
        GpioActions([Rule("r", "cat", then=(Action(17, "on"), Action(22, "on")))], factory)
    DigitalOutputDevice(17, pin_factory=factory).close()  # the half-built outputs were released
    taken.close()


def test_rules_output_sends_every_event_to_every_consumer_and_ends_on_close(factory):
    class Log:
        def __init__(self):
            self.events, self.closed = [], False

        def apply(self, event):
            self.events.append(event)

        def close(self):
            self.closed = True

    class Broken:
        def apply(self, event):
            raise RuntimeError("down")

    clock, log = Clock(100.0), Log()
    rules = [Rule("s", "absent", hold=0.0, then=(Action(17, "on"),))]
    made = []
    output = EventsOutput(rules, names=lambda: (), clock=clock, wall=lambda: clock.t + 1000,
                          make_rule_outputs=lambda rules: made.append(GpioActions(rules, factory)) or made[-1:],
                          consumers=[Broken(), log])
    actions = made[0]
    output.update(SimpleNamespace(frame=FRAME, answer="absent", confidence=0.0))
    # consumers get unix time (the wall clock), not the loop's monotonic one
    assert [(e.kind, e.time) for e in log.events] == [(START, 1100.0)] and factory.pin(17).state
    clock.t = 101.0
    output.close()
    assert [(e.kind, e.time) for e in log.events] == [(START, 1100.0), (END, 1101.0)] and log.closed
    assert actions.outputs == {}


def test_while_the_camera_is_offline_nothing_is_seen(factory):
    """The loop keeps showing the last answer while the camera is offline: it matches no rule."""
    clock = Clock(0.0)
    output = EventsOutput([Rule("s", "unknown", hold=0.0, until=0.5, then=(Action(17, "on"),))],
                          names=lambda: (), clock=clock, make_rule_outputs=lambda rules: [GpioActions(rules, factory)])
    output.update(SimpleNamespace(frame=FRAME, answer="unknown", confidence=0.0))
    assert factory.pin(17).state
    for t in (0.1, 0.3, 0.6):
        clock.t = t
        output.update(SimpleNamespace(frame=None, answer="unknown", confidence=0.0))
    assert not factory.pin(17).state
    output.close()


def test_the_pins_say_what_each_output_does_now(factory):
    rules = [Rule("lamp", "cat", then=(Action(17, "on"),)), Rule("arm", "dog", then=(Action(18, "servo", angle=45),)),
             Rule("dim", "cat", then=(Action(19, "pwm", value=0.25),))]
    actions = GpioActions(rules, factory)
    assert [(p.gpio, p.mode, p.value, p.rules) for p in actions.pins()] == [
        (17, "on", 0.0, ("lamp",)), (18, "servo", None, ("arm",)), (19, "pwm", 0.0, ("dim",))]
    for name in ("lamp", "arm", "dim"):
        actions.apply(start(name))
    assert [p.value for p in actions.pins()] == [1.0, 45.0, 0.25]
    actions.close()


def test_an_active_low_relay_is_driven_low_while_on(factory):
    from device.config import config_from_mapping
    rules = config_from_mapping({"rules": [{"name": "flap", "when": "cat", "then": [
        {"gpio": 17, "mode": "on", "active_high": False}]}]}).rules
    actions = GpioActions(rules, factory)
    pin = factory.pin(17)
    assert pin.state == 1  # off: the relay board's input is high
    actions.apply(start("flap"))
    assert pin.state == 0
    actions.apply(end("flap"))
    assert pin.state == 1
    actions.close()
