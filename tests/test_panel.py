"""The front panel on gpiozero's MockFactory, driving the real loop and the real model."""

from __future__ import annotations


import random

import pytest
from gpiozero.pins.mock import MockFactory

from device.bursts import BurstTeacher
from device.camera import CameraSupervisor, SyntheticCamera
from device.config import Config, PanelConfig
from device.errors import ConfigError
from device.head import NearestCentroidHead
from device.loop import TeachLoop
from device.panel import Panel, validate_pins
from device.storage import model_identity

BUTTONS = (5, 6, 13, 19)
LEDS = (12, 16, 20, 21)
FUNCTION = 26
SCENES = ("red ball", "blue box", "green stripes", "yellow ring")


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def build(embedder, factory, *, camera=None, timeout=2.0, pairing=None, **panel_options):
    camera = camera or SyntheticCamera(fps=0)
    supervisor = CameraSupervisor(camera, timeout=timeout, open_timeout=max(1.0, timeout), backoff=(0.05, 0.1))
    # no rate limit here, so each frame of a hold can be an example; near-duplicates are still skipped
    teacher = BurstTeacher(embedder.dim, rate=1e6, duplicate_similarity=0.98)
    loop = TeachLoop(supervisor, embedder, NearestCentroidHead(embedder.dim, 4),
                     model=model_identity(embedder.describe()), teacher=teacher, smoothing=1)
    clock = Clock()
    config = PanelConfig(hold_time=0.5, clear_all_time=5.0, **panel_options)
    if pairing is not None:
        pairing = pairing(clock)
    panel = Panel(loop, config, pin_factory=factory, pairing=pairing, clock=clock)
    loop.add_input(panel)
    loop.add_observer(panel)
    clock.t += 5  # past the boot chase
    return loop, panel, clock, camera


def press(factory, pin):
    factory.pin(pin).drive_low()


def release(factory, pin):
    factory.pin(pin).drive_high()


def tap(factory, pin):
    press(factory, pin)
    release(factory, pin)


def led_states(factory):
    return [round(factory.pin(p).state, 3) for p in LEDS]


def teach_scene(loop, factory, camera, class_id, scene):
    camera.select(scene)
    tap(factory, BUTTONS[class_id])
    loop.step()


@pytest.fixture
def box(embedder, factory):
    loop, panel, clock, camera = build(embedder, factory)
    loop.step()
    yield loop, panel, clock, camera
    panel.close()


def test_short_press_adds_one_example_of_what_the_camera_sees_after_it(box, factory):
    loop, panel, clock, camera = box
    tap(factory, BUTTONS[1])
    results = [loop.step() for _ in range(4)]
    assert [r.taught for r in results] == [1, None, None, None]
    assert loop.head.counts == [0, 1, 0, 0]


def test_holding_keeps_adding_examples_but_skips_copies(box, factory):
    loop, panel, clock, camera = box
    press(factory, BUTTONS[2])
    loop.step()
    clock.t += 0.6  # now it is held
    for _ in range(6):  # the scene does not change: near-identical frames are skipped
        loop.step()
    held_same = loop.head.counts[2]
    for scene in SCENES:  # the camera sees other things: each becomes an example
        camera.select(scene)
        loop.step()
    release(factory, BUTTONS[2])
    loop.step()
    assert held_same <= 2
    assert loop.head.counts[2] >= held_same + 3
    taught = loop.head.counts[2]
    for _ in range(3):
        loop.step()
    assert loop.head.counts[2] == taught  # letting go stops teaching


def test_function_press_undoes_the_last_burst(box, factory):
    loop, panel, clock, camera = box
    teach_scene(loop, factory, camera, 0, "red ball")
    press(factory, BUTTONS[1])
    loop.step()
    clock.t += 0.6
    for scene in SCENES:
        camera.select(scene)
        loop.step()
    release(factory, BUTTONS[1])
    loop.step()
    assert loop.head.counts[0] == 1 and loop.head.counts[1] >= 3
    tap(factory, FUNCTION)
    loop.step()
    assert loop.head.counts == [1, 0, 0, 0]  # the whole hold is undone, class 0 is kept
    tap(factory, FUNCTION)
    loop.step()
    assert loop.head.counts == [0, 0, 0, 0]


def test_function_plus_class_clears_that_class_only(box, factory):
    loop, panel, clock, camera = box
    teach_scene(loop, factory, camera, 0, "red ball")
    teach_scene(loop, factory, camera, 1, "blue box")
    press(factory, FUNCTION)
    tap(factory, BUTTONS[0])
    release(factory, FUNCTION)
    loop.step()
    loop.step()
    assert loop.head.counts == [0, 1, 0, 0]


def test_function_held_five_seconds_clears_everything_with_a_countdown(box, factory):
    loop, panel, clock, camera = box
    teach_scene(loop, factory, camera, 0, "red ball")
    teach_scene(loop, factory, camera, 1, "blue box")
    press(factory, FUNCTION)
    lit = []
    for second in range(1, 5):
        clock.t += 1.0 - (clock.t % 0.25)  # in the "on" phase of the countdown blink
        loop.step()
        lit.append(sum(1 for s in led_states(factory) if s > 0))
        assert loop.head.total == 2
    assert lit == sorted(lit, reverse=True) and lit[0] == 4 and lit[-1] >= 1 and lit[-1] < 4
    clock.t += 1.1
    loop.step()
    assert loop.head.total == 0
    release(factory, FUNCTION)
    loop.step()
    assert loop.head.total == 0


def test_letting_go_during_the_countdown_aborts_clear_all(box, factory):
    loop, panel, clock, camera = box
    teach_scene(loop, factory, camera, 0, "red ball")
    press(factory, FUNCTION)
    clock.t += 3.0
    loop.step()
    release(factory, FUNCTION)
    clock.t += 3.0
    loop.step()
    assert loop.head.counts == [1, 0, 0, 0]  # neither cleared nor undone


def test_led_of_the_predicted_class_is_lit_as_bright_as_the_confidence(box, factory):
    loop, panel, clock, camera = box
    for class_id, scene in enumerate(SCENES[:3]):
        teach_scene(loop, factory, camera, class_id, scene)
    clock.t += 2  # past the confirmation blinks
    camera.select("blue box")
    result = loop.step()
    states = led_states(factory)
    assert result.answer == 1
    assert states[1] == pytest.approx(max(0.15, result.confidence), abs=1 / 64)
    assert states[0] == states[2] == states[3] == 0


def test_nothing_learned_lights_no_class_led(box, factory):
    loop, panel, clock, camera = box
    loop.step()
    assert led_states(factory) == [0, 0, 0, 0]


def test_teaching_blinks_the_class_led_once_per_example(box, factory):
    loop, panel, clock, camera = box
    press(factory, BUTTONS[3])
    loop.step()  # the example of the press is taken: the LED blinks dark
    assert led_states(factory) == [0, 0, 0, 0]
    clock.t += 0.2
    loop.step()  # not yet held: no example, the class's LED is lit
    assert led_states(factory) == [0, 0, 0, 1]
    clock.t += 0.4
    camera.select("blue box")
    loop.step()  # held, and the camera sees something new: one more example, one more blink
    assert led_states(factory) == [0, 0, 0, 0]
    assert loop.head.counts[3] == 2
    release(factory, BUTTONS[3])


def test_without_pwm_the_answer_led_is_fully_on(embedder, factory):
    loop, panel, clock, camera = build(embedder, factory, pwm=False)
    teach_scene(loop, factory, camera, 2, "green stripes")
    teach_scene(loop, factory, camera, 0, "red ball")
    clock.t += 2
    camera.select("green stripes")
    loop.step()
    assert led_states(factory) == [0, 0, 1, 0]
    panel.close()


def test_active_low_leds_are_lit_by_a_low_pin(embedder, factory):
    loop, panel, clock, camera = build(embedder, factory, led_active_high=False, pwm=False)
    teach_scene(loop, factory, camera, 1, "blue box")
    clock.t += 2
    loop.step()
    assert led_states(factory) == [1, 0, 1, 1]
    panel.close()
    for pin in LEDS:  # driven high (off) last, then released: a floating pin lights nothing
        assert factory.pin(pin).states[-2].state == 1 and factory.pin(pin).function == "input"


def test_boot_chase_shows_every_led_in_turn(embedder, factory):
    loop, panel, clock, camera = build(embedder, factory)
    clock.t -= 5  # back to boot
    seen = []
    for _ in range(4):
        loop.step()
        seen.append(led_states(factory))
        clock.t += 0.12
    assert seen == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    panel.close()


def test_shutdown_turns_every_led_off(box, factory):
    loop, panel, clock, camera = box
    teach_scene(loop, factory, camera, 0, "red ball")
    clock.t += 2
    loop.step()
    assert led_states(factory)[0] > 0
    panel.close()
    assert led_states(factory) == [0, 0, 0, 0]
    assert all(factory.pin(p).function == "input" for p in LEDS + BUTTONS + (FUNCTION,))


def test_nothing_is_taught_while_the_camera_is_offline_and_the_leds_say_so(embedder, factory, hanging_camera):
    camera = hanging_camera
    loop, panel, clock, _ = build(embedder, factory, camera=camera, timeout=0.2, status_led=25)
    clock.t = 2000.0  # in the "on" half of the slow blink
    tap(factory, BUTTONS[0])
    loop.step()
    loop.step()
    assert loop.head.total == 0
    assert led_states(factory) == [1, 1, 1, 1] and factory.pin(25).state == 1
    clock.t += 1.0  # the "off" half
    loop.step()
    assert led_states(factory) == [0, 0, 0, 0] and factory.pin(25).state == 0
    panel.close()


@pytest.mark.parametrize("changes, message", [
    ({"class_leds": (12, 16, 20, 5)}, "GPIO5 is used twice: by class_buttons[0] and by class_leds[3]"),
    ({"function_button": 13}, "GPIO13 is used twice: by class_buttons[2] and by function_button"),
    ({"status_led": 21}, "GPIO21 is used twice: by class_leds[3] and by status_led"),
    ({"class_buttons": (5, 6, 13, 1)}, "class_buttons[3] = 1: GPIO1 is ID_SC"),
    ({"class_leds": (12, 16, 20)}, "4 class_buttons but 3 class_leds"),
    ({"class_buttons": (5, 6, 13, 19, 22), "class_leds": (12, 16, 20, 21, 23)}, "5 class buttons but [head] classes = 4"),
])
def test_bad_wiring_is_refused_naming_the_pin_and_its_uses(changes, message):
    config = PanelConfig(**changes)
    with pytest.raises(ConfigError) as excinfo:
        validate_pins(config, classes=4)
    assert message in str(excinfo.value)


def test_panel_pins_come_from_the_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[panel]\nclass_buttons = [17, 27]\nclass_leds = [22, 23]\nfunction_button = 24\n")
    from device.config import load_config

    config = load_config(path)
    assert config.panel.class_buttons == (17, 27)
    validate_pins(config.panel, classes=config.head.classes)
    with pytest.raises(ConfigError, match=r"class_buttons = \['a'\]"):
        Config().override("panel", class_buttons=["a"])


def test_a_pi_whose_gpio_fails_refuses_to_start_instead_of_simulating(monkeypatch):
    from gpiozero import Device

    from device.panel import make_pin_factory

    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-pin-factory")  # as a Pi without lgpio fails
    with pytest.raises(ConfigError, match="python3-lgpio.*gpio = \"off\""):
        make_pin_factory("auto", on_pi=True)
    assert isinstance(make_pin_factory("auto", on_pi=False), MockFactory)  # a PC: simulated
    assert isinstance(make_pin_factory("auto", simulate=True, on_pi=True), MockFactory)


def test_real_pins_are_debounced_simulated_ones_are_not(embedder, factory):
    assert PanelConfig().bounce_time == 0.02
    loop, panel, clock, camera = build(embedder, factory)
    assert all(b.pin.bounce is None for b in panel.class_buttons)  # mock buttons never bounce
    panel.close()


def test_function_and_the_class_button_a_pairing_names_approve_it_and_clear_nothing(embedder, factory):
    from device.pairing import PairingBroker

    code = random.Random(5).randrange(4)  # the code the broker's seeded generator draws
    loop, panel, clock, camera = build(embedder, factory,
                                       pairing=lambda clock: PairingBroker(4, clock=clock, rng=random.Random(5)))
    broker = panel.pairing
    teach_scene(loop, factory, camera, 0, "red ball")
    teach_scene(loop, factory, camera, 1, "blue box")
    clock.t += 2
    press(factory, FUNCTION)
    press(factory, BUTTONS[code])  # a chord that began before the request: it never approves it
    clock.t += 0.5
    request = broker.request("10.0.0.7")
    assert request.code == code
    loop.step()
    assert panel.view().pattern == "pairing"
    release(factory, BUTTONS[code])
    release(factory, FUNCTION)
    loop.step()
    assert broker.state(request.id) == "pending"
    clock.t += 1
    tap(factory, FUNCTION)  # undo, as always: nothing approved
    loop.step()
    tap(factory, BUTTONS[code])  # a plain press of that button teaches: nothing approved
    loop.step()
    assert broker.state(request.id) == "pending"
    counts = list(loop.head.counts)
    clock.t += 1
    press(factory, FUNCTION)
    tap(factory, BUTTONS[request.code])  # function + that button: the chord that approves
    release(factory, FUNCTION)
    loop.step()
    assert broker.state(request.id) == "approved"
    assert loop.head.counts == counts  # nothing cleared
    panel.close()


def test_the_panel_describes_itself_for_a_person(embedder, factory):
    loop, panel, clock, camera = build(embedder, factory)
    text = panel.describe()
    assert "GPIO 5, 6, 13, 19" in text and "function button on GPIO 26" in text and "simulated" in text
    assert "<" not in text
    panel.close()
