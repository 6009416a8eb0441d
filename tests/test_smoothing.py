"""The majority-vote smoother that keeps the shown answer from flickering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.smoothing import MajoritySmoother


def push_all(smoother, answers):
    return [smoother.push(a) for a in answers]


def test_window_one_passes_every_answer_through():
    s = MajoritySmoother(1)
    answers = ["a", "b", "a", "c", "c", 3, None, "a"]
    assert push_all(s, answers) == answers


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", 0, 1]), max_size=40))
def test_window_one_is_identity_for_any_sequence(answers):
    s = MajoritySmoother(1)
    assert push_all(s, answers) == answers


def test_first_answer_is_shown_at_once():
    s = MajoritySmoother(5)
    assert s.shown is None
    assert s.push("cup") == "cup"
    assert s.shown == "cup"


@pytest.mark.parametrize("window", [3, 4, 5, 7, 9])
def test_a_single_stray_frame_does_not_change_the_shown_answer(window):
    s = MajoritySmoother(window)
    push_all(s, ["cup"] * window)
    assert s.push("pen") == "cup"
    assert push_all(s, ["cup"] * window) == ["cup"] * window
    # strays spread out never show either
    for _ in range(3):
        assert s.push("key") == "cup"
        assert push_all(s, ["cup"] * (window - 1)) == ["cup"] * (window - 1)


@pytest.mark.parametrize("window", [1, 2, 3, 4, 5, 6, 7, 9, 15])
def test_a_sustained_change_is_shown_once_it_holds_a_strict_majority(window):
    s = MajoritySmoother(window)
    push_all(s, ["cup"] * window)
    needed = window // 2 + 1
    shown = push_all(s, ["pen"] * window)
    assert shown == ["cup"] * (needed - 1) + ["pen"] * (window - needed + 1)
    assert needed <= window


def test_docstring_example():
    s = MajoritySmoother(3)
    assert push_all(s, "aaaba") == list("aaaaa")
    assert s.push("b") == "b"


def test_no_majority_keeps_the_shown_answer():
    s = MajoritySmoother(6)
    push_all(s, ["a"] * 6)
    # a, b and c each hold 2 of 6: nobody has a strict majority, so "a" stays.
    assert push_all(s, ["b", "c", "b", "c"]) == ["a"] * 4
    assert s.shown == "a"
    # "b" now holds 3 of 6 (not strict); one more makes 4 of 6.
    assert s.push("b") == "a"
    assert s.push("b") == "b"


def test_answers_of_any_hashable_kind():
    s = MajoritySmoother(3)
    assert push_all(s, [0, 0, 1, 1]) == [0, 0, 0, 1]
    assert push_all(s, [("unknown", None)] * 2) == [1, ("unknown", None)]


def test_reset_forgets_history_and_shows_the_next_answer_at_once():
    s = MajoritySmoother(5)
    push_all(s, ["cup"] * 5)
    s.reset()
    assert s.shown is None
    assert s.push("pen") == "pen"
    # the old "cup" votes are gone: a single cup is now a stray
    assert s.push("cup") == "pen"
    assert push_all(s, ["pen"] * 3) == ["pen"] * 3


@settings(max_examples=200, deadline=None)
@given(window=st.integers(1, 9), answers=st.lists(st.sampled_from("abc"), min_size=1, max_size=60))
def test_shown_answer_matches_a_plain_majority_model(window, answers):
    s = MajoritySmoother(window)
    shown = None
    for i, answer in enumerate(answers):
        recent = answers[max(0, i + 1 - window): i + 1]
        if shown is None or (answer != shown and 2 * recent.count(answer) > len(recent)):
            shown = answer
        assert s.push(answer) == shown
        assert s.shown == shown


@pytest.mark.parametrize("window", [0, -1, 2.5, "5", None])
def test_bad_window_is_refused(window):
    with pytest.raises(ValueError):
        MajoritySmoother(window)
