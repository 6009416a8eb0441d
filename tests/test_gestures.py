"""Front-panel button gestures: what each press, hold and release asks the appliance to do."""

from __future__ import annotations

import pytest

from device.gestures import FUNCTION, Gestures


@pytest.fixture
def g() -> Gestures:
    return Gestures(hold_time=0.5, countdown_start=1.0, clear_all_time=5.0)


def all_actions(gestures, events):
    """Feed ``(kind, button_or_None, now)`` events; return every action, in order."""
    out = []
    for kind, button, now in events:
        if kind == "press":
            out += gestures.press(button, now)
        elif kind == "release":
            out += gestures.release(button, now)
        else:
            out += gestures.tick(now)
    return out


# -- class buttons -------------------------------------------------------------------

@pytest.mark.parametrize("c", [0, 1, 2, 3])
def test_short_class_press_teaches_once_and_release_ends_it_without_hold(g, c):
    assert g.press(c, 10.0) == [("teach", c)]
    assert g.teaching == c
    assert g.tick(10.1) == []
    assert g.tick(10.3) == []
    assert g.release(c, 10.4) == [("release", c)]
    assert g.teaching is None
    assert g.tick(20.0) == []  # nothing later either


@pytest.mark.parametrize("c", [0, 2])
def test_held_class_button_emits_hold_exactly_once(g, c):
    assert g.press(c, 0.0) == [("teach", c)]
    assert g.tick(0.49) == []
    ticks = [g.tick(t) for t in (0.5, 0.6, 0.9, 2.0, 7.0)]
    assert ticks[0] == [("hold", c)]
    assert all(t == [] for t in ticks[1:])
    assert g.release(c, 7.5) == [("release", c)]
    assert g.tick(8.0) == []


def test_hold_fires_once_even_when_first_tick_is_late(g):
    g.press(1, 0.0)
    assert g.tick(3.0) == [("hold", 1)]
    assert g.tick(3.1) == []


def test_pressing_b_while_a_teaches_releases_a_then_teaches_b(g):
    assert g.press(0, 0.0) == [("teach", 0)]
    assert g.press(1, 0.2) == [("release", 0), ("teach", 1)]
    assert g.teaching == 1
    # A's later release does nothing: B is still being taught.
    assert g.release(0, 0.3) == []
    assert g.teaching == 1
    # The hold timer belongs to B (pressed at 0.2), not A (pressed at 0.0).
    assert g.tick(0.6) == []
    assert g.tick(0.75) == [("hold", 1)]
    assert g.release(1, 0.8) == [("release", 1)]
    assert g.teaching is None


def test_release_of_a_button_never_pressed_does_nothing(g):
    assert g.release(2, 1.0) == []
    assert g.release(FUNCTION, 1.0) == []


# -- function button -----------------------------------------------------------------

@pytest.mark.parametrize("held", [0.05, 0.5, 0.99])
def test_short_function_press_is_undo(g, held):
    assert g.press(FUNCTION, 10.0) == []
    assert g.tick(10.0 + held / 2) == []
    assert g.release(FUNCTION, 10.0 + held) == [("undo",)]
    assert g.tick(20.0) == []


@pytest.mark.parametrize("released_at", [1.5, 3.0, 4.9])
def test_function_released_during_countdown_aborts_and_never_clears_all(g, released_at):
    g.press(FUNCTION, 0.0)
    ticks = []
    t = 0.1
    while t < released_at:
        ticks += g.tick(t)
        t += 0.1
    actions = ticks + g.release(FUNCTION, released_at)
    assert actions == [("abort",)]
    assert "undo" not in [a[0] for a in actions]
    # Later ticks (even past clear_all_time) do nothing.
    assert g.tick(6.0) == []
    assert g.tick(10.0) == []


def test_function_held_to_clear_all_time_clears_all_exactly_once(g):
    g.press(FUNCTION, 0.0)
    assert g.tick(4.99) == []
    assert g.tick(5.0) == [("clear_all",)]
    assert g.tick(5.1) == []
    assert g.tick(9.0) == []
    # Letting go afterwards is neither an abort nor an undo.
    assert g.release(FUNCTION, 9.5) == []


def test_clear_all_fires_on_release_when_no_tick_came_in_time(g):
    g.press(FUNCTION, 0.0)
    assert g.release(FUNCTION, 5.2) == [("clear_all",)]


def test_a_second_function_press_starts_afresh(g):
    g.press(FUNCTION, 0.0)
    assert g.tick(5.0) == [("clear_all",)]
    g.release(FUNCTION, 5.5)
    g.press(FUNCTION, 10.0)
    assert g.release(FUNCTION, 10.2) == [("undo",)]


# -- combinations ----------------------------------------------------------------------

@pytest.mark.parametrize("c", [0, 1, 3])
def test_function_plus_class_clears_that_class_and_releases_do_nothing_else(g, c):
    assert g.press(FUNCTION, 0.0) == []
    assert g.press(c, 0.3) == [("clear", c)]
    assert g.teaching is None
    assert g.release(c, 0.5) == []  # no teach/release of the class
    assert g.release(FUNCTION, 0.7) == []  # no undo
    assert g.teaching is None


def test_combo_with_function_released_first_still_emits_nothing_more(g):
    g.press(FUNCTION, 0.0)
    assert g.press(2, 0.2) == [("clear", 2)]
    assert g.release(FUNCTION, 0.4) == []
    assert g.release(2, 0.6) == []
    # The class button works normally again afterwards.
    assert g.press(2, 1.0) == [("teach", 2)]
    assert g.release(2, 1.1) == [("release", 2)]


def test_combo_cancels_countdown_and_clear_all(g):
    g.press(FUNCTION, 0.0)
    g.press(1, 0.5)
    assert g.countdown(2.0) is None
    assert g.tick(5.0) == []
    assert g.tick(8.0) == []
    assert g.release(1, 8.1) == []
    assert g.release(FUNCTION, 8.2) == []


def test_combo_while_another_class_teaches_keeps_that_class_teaching(g):
    assert g.press(0, 0.0) == [("teach", 0)]
    g.press(FUNCTION, 0.1)
    assert g.press(1, 0.2) == [("clear", 1)]
    assert g.teaching == 0
    assert g.release(1, 0.3) == []
    assert g.release(FUNCTION, 0.35) == []
    assert g.release(0, 0.4) == [("release", 0)]


def test_action_sequence_of_a_whole_session(g):
    actions = all_actions(g, [
        ("press", 0, 0.0), ("tick", None, 0.2), ("release", 0, 0.3),
        ("press", 1, 1.0), ("tick", None, 1.6), ("tick", None, 2.0), ("release", 1, 2.5),
        ("press", FUNCTION, 3.0), ("release", FUNCTION, 3.2),
        ("press", FUNCTION, 4.0), ("tick", None, 6.0), ("release", FUNCTION, 6.5),
        ("press", FUNCTION, 7.0), ("tick", None, 12.0), ("release", FUNCTION, 12.5),
    ])
    assert actions == [
        ("teach", 0), ("release", 0),
        ("teach", 1), ("hold", 1), ("release", 1),
        ("undo",),
        ("abort",),
        ("clear_all",),
    ]


# -- countdown ------------------------------------------------------------------------

def test_no_countdown_without_function_press(g):
    assert g.countdown(0.0) is None
    g.press(0, 0.0)
    assert g.countdown(3.0) is None


@pytest.mark.parametrize("elapsed, expected", [
    (0.0, None), (0.5, None), (0.999, None),
    (1.0, 1.0), (2.0, 0.75), (3.0, 0.5), (4.0, 0.25), (5.0, 0.0),
])
def test_countdown_fraction(g, elapsed, expected):
    g.press(FUNCTION, 100.0)
    value = g.countdown(100.0 + elapsed)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected, abs=1e-9)


def test_countdown_decreases_monotonically(g):
    g.press(FUNCTION, 0.0)
    values = [g.countdown(1.0 + i * 0.1) for i in range(41)]
    assert all(v is not None for v in values)
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[0] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.0, abs=1e-9)


def test_countdown_gone_after_clear_all_fired(g):
    g.press(FUNCTION, 0.0)
    assert g.countdown(4.0) is not None
    assert g.tick(5.0) == [("clear_all",)]
    assert g.countdown(5.0) is None
    assert g.countdown(6.0) is None


def test_countdown_gone_after_release(g):
    g.press(FUNCTION, 0.0)
    assert g.countdown(2.0) == pytest.approx(0.75)
    assert g.release(FUNCTION, 2.0) == [("abort",)]
    assert g.countdown(2.0) is None
    assert g.countdown(3.0) is None


def test_custom_timings_are_honoured():
    g = Gestures(hold_time=0.2, countdown_start=0.5, clear_all_time=2.5)
    g.press(0, 0.0)
    assert g.tick(0.19) == []
    assert g.tick(0.2) == [("hold", 0)]
    g.release(0, 0.3)
    g.press(FUNCTION, 1.0)
    assert g.countdown(1.4) is None
    assert g.countdown(1.5) == pytest.approx(1.0)
    assert g.countdown(2.5) == pytest.approx(0.5)
    assert g.tick(3.5) == [("clear_all",)]


@pytest.mark.parametrize("countdown_start, clear_all_time", [
    (5.0, 5.0), (6.0, 5.0), (1.0, 0.5), (0.0, 5.0), (-1.0, 5.0),
])
def test_invalid_timings_are_rejected(countdown_start, clear_all_time):
    with pytest.raises(ValueError):
        Gestures(countdown_start=countdown_start, clear_all_time=clear_all_time)
