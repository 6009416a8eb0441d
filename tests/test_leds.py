"""What the LEDs show: a pure function of the appliance state and an explicit time."""

from __future__ import annotations

import itertools
import math

import pytest

from device.leds import (FAULT_PERIOD, FEEDBACK_SECONDS, MIN_LEVEL, TAUGHT_BLINK, LedView, led_state,
                         boot_seconds, led_levels)
from device.vocab import LedPattern

STEP = 0.02  # sampling step, seconds


def samples(view, start, duration, n, *, pwm=True, step=STEP):
    """``led_levels`` at ``start + k*step`` for every k with ``k*step < duration``."""
    count = int(round(duration / step))
    return [led_levels(view, start + k * step, n, pwm=pwm) for k in range(count)]


def off_to_on(levels):
    """How many times the level goes from off to on (starting from off)."""
    count, previous = 0, 0.0
    for level in levels:
        if level > 0 and previous == 0:
            count += 1
        previous = level
    return count


# -- boot --------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 4, 6])
def test_boot_chase_lights_one_led_at_a_time_in_order(n):
    view = LedView(boot_started=50.0, answer=0, confidence=0.9)
    seen = []
    for levels, status in samples(view, 50.0, boot_seconds(n), n, step=0.01):
        lit = [i for i, level in enumerate(levels) if level > 0]
        assert len(lit) == 1, levels
        assert levels[lit[0]] == 1.0
        assert status == 1.0
        if not seen or seen[-1] != lit[0]:
            seen.append(lit[0])
    # Visits every LED, in order, at least once per round (two rounds).
    if n == 1:
        assert seen == [0]
    else:
        assert seen == list(range(n)) * 2


@pytest.mark.parametrize("n", [3, 5])
def test_after_boot_the_answer_is_shown(n):
    view = LedView(boot_started=50.0, answer=1, confidence=0.8)
    levels, status = led_levels(view, 50.0 + boot_seconds(n) + 0.01, n)
    assert levels == tuple(pytest.approx(0.8, abs=1 / 64) if i == 1 else 0.0 for i in range(n))
    assert status == 1.0


def test_boot_chase_shows_even_when_the_camera_is_faulty():
    view = LedView(boot_started=0.0, fault=True)
    levels, _ = led_levels(view, 0.05, 4)
    assert levels == (1.0, 0.0, 0.0, 0.0)


def test_before_boot_started_no_chase():
    view = LedView(boot_started=50.0, answer=2, confidence=1.0)
    levels, _ = led_levels(view, 49.0, 4)
    assert levels == (0.0, 0.0, 1.0, 0.0)


def test_boot_seconds_grows_with_led_count():
    assert 0 < boot_seconds(2) < boot_seconds(4) < boot_seconds(8)


# -- the answer --------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [0, 1, 3])
@pytest.mark.parametrize("confidence", [0.3, 0.7, 1.0])
def test_answer_lights_only_its_led_as_bright_as_the_confidence(answer, confidence):
    levels, status = led_levels(LedView(answer=answer, confidence=confidence), 10.0, 4)
    assert levels[answer] == pytest.approx(confidence, abs=1 / 64)
    assert all(level == 0.0 for i, level in enumerate(levels) if i != answer)
    assert status == 1.0


@pytest.mark.parametrize("confidence, expected", [
    (0.0, MIN_LEVEL), (0.01, MIN_LEVEL), (MIN_LEVEL, MIN_LEVEL), (0.5, 0.5), (1.0, 1.0), (1.7, 1.0),
])
def test_answer_brightness_is_clamped(confidence, expected):
    levels, _ = led_levels(LedView(answer=2, confidence=confidence), 10.0, 3)
    assert levels == (0.0, 0.0, pytest.approx(expected, abs=1 / 64))
    assert levels[2] >= MIN_LEVEL


@pytest.mark.parametrize("confidence", [0.0, 0.2, 0.9])
def test_answer_without_pwm_is_fully_on(confidence):
    levels, status = led_levels(LedView(answer=1, confidence=confidence), 10.0, 3, pwm=False)
    assert levels == (0.0, 1.0, 0.0)
    assert status == 1.0


@pytest.mark.parametrize("answer", ["unknown", "nothing-learned", None, 7, -1])
def test_no_class_answer_lights_no_class_led_but_status_is_on(answer):
    levels, status = led_levels(LedView(answer=answer, confidence=0.9), 10.0, 4)
    assert levels == (0.0,) * 4
    assert status == 1.0


# -- fault ----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 4])
def test_fault_blinks_every_led_and_status_slowly_together(n):
    view = LedView(fault=True)
    seq = samples(view, 100.0, FAULT_PERIOD, n)
    for levels, status in seq:
        assert all(level == status for level in levels)
        assert status in (0.0, 1.0)
    on = [status for _, status in seq]
    assert 1.0 in on and 0.0 in on
    # Slow: a single blink per period, mostly off (0.5 s on out of 2 s).
    assert off_to_on(on) == 1
    assert 0.15 <= sum(on) / len(on) <= 0.35
    t_on = 100.0 + on.index(1.0) * STEP
    levels_on, status_on = led_levels(view, t_on, n)
    levels_off, status_off = led_levels(view, t_on + 1.0, n)
    assert levels_on == (1.0,) * n and status_on == 1.0
    assert levels_off == (0.0,) * n and status_off == 0.0


@pytest.mark.parametrize("extra", [
    dict(answer=1, confidence=0.9),
    dict(teaching=1, last_taught=-10.0),
    dict(countdown=0.5),
    dict(feedback=("clear_all", None, 100.0)),
])
def test_fault_overrides_the_rest(extra):
    faulty = LedView(fault=True, **extra)
    for now in (100.1, 101.1, 101.5, 101.9):
        levels, status = led_levels(faulty, now, 3)
        assert levels == (status,) * 3
        assert led_levels(faulty, now, 3) == led_levels(LedView(fault=True), now, 3)


# -- countdown ----------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 4, 6])
@pytest.mark.parametrize("countdown, lit", [
    (1.0, lambda n: n), (0.5, lambda n: n // 2), (0.01, lambda n: 1), (0.0, lambda n: 0),
])
def test_countdown_lights_a_share_of_the_leds(n, countdown, lit):
    view = LedView(countdown=countdown, answer=0, confidence=1.0)
    seq = samples(view, 10.0, 1.0, n)
    brightest = max(sum(1 for level in levels if level > 0) for levels, _ in seq)
    assert brightest == lit(n)
    for levels, _ in seq:
        count = sum(1 for level in levels if level > 0)
        assert count in (0, lit(n))  # blinking: all of them or none
        assert all(level == 0.0 for level in levels[lit(n):])  # lit from the first LED on


def test_countdown_blinks():
    view = LedView(countdown=1.0)
    on = [levels[0] for levels, _ in samples(view, 10.0, 1.0, 3)]
    assert off_to_on(on) >= 2  # blinks fast: several times per second
    assert 0.0 in on


def test_countdown_shrinks_as_time_runs_out():
    n = 5
    counts = []
    for countdown in (1.0, 0.8, 0.6, 0.4, 0.2, 0.05):
        seq = samples(LedView(countdown=countdown), 10.0, 0.5, n)
        counts.append(max(sum(1 for level in levels if level > 0) for levels, _ in seq))
    assert counts == [5, 4, 3, 2, 1, 1]


# -- feedback ----------------------------------------------------------------------

FEEDBACKS = {
    "undo": ("undo", 1, 20.0),
    "clear": ("clear", 1, 20.0),
    "clear_all": ("clear_all", None, 20.0),
    "abort": ("abort", None, 20.0),
}


def feedback_samples(kind, n=4, duration=None, answer=None):
    view = LedView(feedback=FEEDBACKS[kind], answer=answer, confidence=0.9)
    return samples(view, 20.0, duration if duration is not None else FEEDBACK_SECONDS[kind], n)


def test_feedback_patterns_are_distinct():
    longest = max(FEEDBACK_SECONDS.values())
    seqs = {kind: [levels for levels, _ in feedback_samples(kind, duration=longest)] for kind in FEEDBACKS}
    own = {kind: [levels for levels, _ in feedback_samples(kind)] for kind in FEEDBACKS}
    for a, b in itertools.combinations(FEEDBACKS, 2):
        assert seqs[a] != seqs[b], f"{a} and {b} look the same"
        assert own[a] != own[b], f"{a} and {b} look the same"


def test_feedback_patterns_all_light_something():
    for kind in FEEDBACKS:
        assert any(any(levels) for levels, _ in feedback_samples(kind)), kind


def test_undo_blinks_the_class_led_twice_and_nothing_else():
    seq = feedback_samples("undo", answer=2)
    for levels, status in seq:
        assert levels[0] == levels[2] == levels[3] == 0.0  # not even the answer's LED
    assert off_to_on([levels[1] for levels, _ in seq]) == 2


def test_clear_flickers_the_class_led_four_times():
    seq = feedback_samples("clear", answer=2)
    for levels, _ in seq:
        assert levels[0] == levels[2] == levels[3] == 0.0
    assert off_to_on([levels[1] for levels, _ in seq]) == 4


@pytest.mark.parametrize("n", [2, 4])
def test_clear_all_blinks_every_led_twice(n):
    seq = feedback_samples("clear_all", n=n)
    for levels, _ in seq:
        assert len(set(levels)) == 1  # all together
    assert off_to_on([levels[0] for levels, _ in seq]) == 2


def test_abort_flashes_everything_once_briefly():
    seq = feedback_samples("abort", duration=max(FEEDBACK_SECONDS.values()))
    for levels, _ in seq:
        assert len(set(levels)) == 1
    on = [levels[0] for levels, _ in seq]
    assert off_to_on(on) == 1
    assert 0 < sum(1 for level in on if level > 0) * STEP <= FEEDBACK_SECONDS["abort"] + STEP
    assert FEEDBACK_SECONDS["abort"] < min(v for k, v in FEEDBACK_SECONDS.items() if k != "abort")


@pytest.mark.parametrize("kind", list(FEEDBACKS))
def test_after_feedback_the_answer_comes_back(kind):
    view = LedView(feedback=FEEDBACKS[kind], answer=2, confidence=0.6)
    answer_only = led_levels(LedView(answer=2, confidence=0.6), 0.0, 4)
    end = 20.0 + FEEDBACK_SECONDS[kind]
    assert led_levels(view, end + 0.01, 4) == answer_only
    assert led_levels(view, end + 5.0, 4) == answer_only
    # ... and before it started, too
    assert led_levels(view, 19.9, 4) == answer_only


def test_unknown_feedback_kind_is_ignored():
    view = LedView(feedback=("bogus", 0, 20.0), answer=1, confidence=1.0)
    assert led_levels(view, 20.05, 3) == ((0.0, 1.0, 0.0), 1.0)


def test_undo_with_nothing_to_undo_shows_dark_leds_briefly():
    view = LedView(feedback=("undo", None, 20.0), answer=1, confidence=1.0)
    assert led_levels(view, 20.05, 3)[0] == (0.0, 0.0, 0.0)


def test_countdown_overrides_feedback():
    view = LedView(countdown=1.0, feedback=("undo", 0, 10.0))
    seq = samples(view, 10.0, 0.5, 3)
    assert any(levels == (1.0, 1.0, 1.0) for levels, _ in seq)


# -- teaching ----------------------------------------------------------------------

def test_teaching_lights_the_class_led_and_dims_it_after_each_example():
    view = LedView(teaching=1, last_taught=30.0, answer=3, confidence=1.0)
    n = 4
    # Before the example and well after it: the class's LED on, every other (the answer's too) off.
    for now in (29.5, 30.0 + TAUGHT_BLINK + 0.001, 31.0, 40.0):
        levels, status = led_levels(view, now, n)
        assert levels == (0.0, 1.0, 0.0, 0.0), now
        assert status == 1.0
    # Right after an example is taken: dark, for TAUGHT_BLINK.
    for now in (30.0, 30.0 + TAUGHT_BLINK / 2, 30.0 + TAUGHT_BLINK - 0.001):
        levels, _ = led_levels(view, now, n)
        assert levels == (0.0,) * n, now


def test_teaching_without_any_example_yet_is_steady_on():
    view = LedView(teaching=0)
    for levels, _ in samples(view, 0.0, 1.0, 3):
        assert levels == (1.0, 0.0, 0.0)


def test_teaching_ignores_pwm_and_confidence():
    view = LedView(teaching=2, answer=2, confidence=0.2)
    assert led_levels(view, 10.0, 3, pwm=True)[0] == (0.0, 0.0, 1.0)


def test_feedback_overrides_teaching():
    view = LedView(teaching=0, feedback=("clear", 2, 10.0))
    levels, _ = led_levels(view, 10.01, 3)
    assert levels == (0.0, 0.0, 1.0)


# -- purity ------------------------------------------------------------------------

@pytest.mark.parametrize("view", [
    LedView(answer=1, confidence=0.5),
    LedView(fault=True),
    LedView(countdown=0.4),
    LedView(feedback=("clear", 0, 5.0)),
    LedView(teaching=2, last_taught=5.0),
    LedView(boot_started=5.0),
])
def test_same_inputs_give_same_outputs(view):
    times = [5.0 + k * 0.037 for k in range(60)]
    first = [led_levels(view, t, 4) for t in times]
    # Interleave other calls, then ask again in reverse order.
    led_levels(LedView(fault=True), 1.0, 4)
    second = [led_levels(view, t, 4) for t in reversed(times)][::-1]
    assert first == second
    assert all(isinstance(levels, tuple) and len(levels) == 4 for levels, _ in first)
    assert all(0.0 <= level <= 1.0 for levels, status in first for level in (*levels, status))


def test_view_is_immutable():
    view = LedView(answer=1)
    with pytest.raises(Exception):
        view.answer = 2  # type: ignore[misc]


def test_default_view_is_dark_class_leds_status_on():
    assert led_levels(LedView(), 0.0, 3) == ((0.0, 0.0, 0.0), 1.0)
    assert math.isinf(LedView().boot_started)


def test_a_pending_pairing_blinks_only_the_led_of_the_button_that_approves_it():
    view = LedView(answer=0, confidence=1.0, pairing=2)
    seen = {led_state(view, 100.0 + t / 20, 4)[1:] for t in range(20)}
    assert {levels for levels, _ in seen} == {(0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 0.0)}
    assert led_state(view, 100.0, 4)[0] == LedPattern.PAIRING
    fault = led_state(LedView(fault=True, pairing=2), 100.0, 4)
    assert fault[0] == LedPattern.FAULT and fault[1] == (1.0,) * 4  # a fault comes first


@pytest.mark.parametrize("view, pattern", [
    (LedView(), LedPattern.OFF),
    (LedView(answer=1, confidence=0.9), LedPattern.ANSWER),
    (LedView(teaching=1), LedPattern.TEACHING),
    (LedView(feedback=("undo", 1, 99.9)), LedPattern.FEEDBACK),
    (LedView(countdown=0.5), LedPattern.COUNTDOWN),
    (LedView(fault=True), LedPattern.FAULT),
    (LedView(boot_started=99.9), LedPattern.BOOT),
])
def test_the_pattern_shown_is_named(view, pattern):
    assert led_state(view, 100.0, 4)[0] == pattern
