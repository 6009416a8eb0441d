"""Which frames get taught: bursts of examples, rate-bounded, without near-duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from device.bursts import Burst, BurstTeacher

DIM = 16


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def teacher():
    return BurstTeacher(DIM, rate=4.0, duplicate_similarity=0.98)


def unit(rng):
    v = rng.normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def at_cosine(cos):
    """Two unit vectors with exactly this cosine similarity."""
    a = np.zeros(DIM, dtype=np.float32)
    a[0] = 1.0
    b = np.zeros(DIM, dtype=np.float32)
    b[0], b[1] = cos, np.sqrt(1 - cos * cos)
    return a, b


def feed(teacher, frames):
    """Run frames ``(seq, now, embedding)`` like the loop does; return ``[(seq, now, class)]`` taught."""
    taught = []
    for seq, now, emb in frames:
        c = teacher.choose(seq, now, emb)
        if c is not None:
            teacher.taught(now, emb)
            taught.append((seq, now, c))
    return taught


def stream(rng, first_seq, count, start=0.0, step=0.05):
    return [(first_seq + i, start + i * step, unit(rng)) for i in range(count)]


# -- single presses -------------------------------------------------------------------

def test_nothing_is_taught_without_a_burst(teacher, rng):
    assert feed(teacher, stream(rng, 0, 10)) == []
    assert teacher.pop_last() is None


def test_frames_captured_before_the_press_are_never_taught(teacher, rng):
    teacher.start(2, next_seq=10)
    # Frames 5..9 were captured before the press (even if they arrive afterwards).
    assert feed(teacher, stream(rng, 5, 5)) == []
    assert teacher.active is not None
    taught = feed(teacher, stream(rng, 10, 3, start=1.0))
    assert [seq for seq, _, _ in taught] == [10]
    assert taught[0][2] == 2


def test_a_stale_frame_arriving_late_is_still_rejected(teacher, rng):
    teacher.start(0, next_seq=10, hold=True)
    assert teacher.choose(9, 100.0, unit(rng)) is None
    assert teacher.choose(10, 0.0, unit(rng)) == 0


@pytest.mark.parametrize("c", [0, 3])
def test_single_press_teaches_exactly_one_frame_then_stops(teacher, rng, c):
    burst = teacher.start(c, next_seq=0)
    assert isinstance(burst, Burst)
    taught = feed(teacher, stream(rng, 0, 20))
    assert taught == [(0, 0.0, c)]
    assert teacher.active is None
    assert list(teacher.history) == [burst]
    assert burst.taught == 1 and burst.class_id == c


@pytest.mark.parametrize("wanted", [2, 3, 5])
def test_wanted_n_teaches_n_consecutive_frames(teacher, rng, wanted):
    teacher.start(1, next_seq=4, wanted=wanted)
    taught = feed(teacher, stream(rng, 0, 20))
    assert [seq for seq, _, _ in taught] == list(range(4, 4 + wanted))
    assert teacher.active is None
    assert [b.taught for b in teacher.history] == [wanted]


def test_wanted_frames_ignore_rate_and_duplicates(teacher, rng):
    """The frames a press asked for are taught even when identical and close together."""
    same = unit(rng)
    teacher.start(1, next_seq=0, wanted=3)
    taught = feed(teacher, [(i, 0.001 * i, same) for i in range(5)])
    assert len(taught) == 3


# -- held bursts ------------------------------------------------------------------

def test_held_burst_is_rate_limited(teacher, rng):
    teacher.start(0, next_seq=0, hold=True)
    taught = feed(teacher, stream(rng, 0, 40, step=0.05))  # 2 s of frames at 20 fps
    times = [now for _, now, _ in taught]
    assert 7 <= len(times) <= 9
    assert all(b - a >= 0.25 - 1e-9 for a, b in zip(times, times[1:]))
    assert teacher.active is not None  # still held: the burst goes on
    teacher.release(0)
    assert teacher.active is None
    assert [b.taught for b in teacher.history] == [len(times)]


@pytest.mark.parametrize("rate", [1.0, 2.0, 10.0])
def test_held_burst_rate_follows_setting(rng, rate):
    teacher = BurstTeacher(DIM, rate=rate)
    teacher.start(0, next_seq=0, hold=True)
    taught = feed(teacher, stream(rng, 0, 200, step=0.01))  # 2 s at 100 fps
    times = [now for _, now, _ in taught]
    assert abs(len(times) - 2.0 * rate) <= 1
    assert all(b - a >= 1.0 / rate - 1e-9 for a, b in zip(times, times[1:]))


def test_held_burst_skips_near_duplicates_but_takes_distinct_frames(teacher, rng):
    base = unit(rng)
    teacher.start(1, next_seq=0, hold=True)
    frames = [(i, i * 0.5, base + rng.normal(scale=1e-4, size=DIM).astype(np.float32))
              for i in range(6)]  # far apart in time: only duplicates could stop them
    taught = feed(teacher, frames)
    assert [seq for seq, _, _ in taught] == [0]
    other = unit(rng)
    assert feed(teacher, [(6, 3.0, other)]) == [(6, 3.0, 1)]
    # A duplicate of the new last example is skipped, the old one is not a duplicate of it.
    assert feed(teacher, [(7, 3.5, other * 1.5)]) == []
    assert feed(teacher, [(8, 4.0, base)]) == [(8, 4.0, 1)]


def test_a_held_burst_counts_what_it_skipped_and_says_when_it_keeps_seeing_the_same_picture(teacher, rng):
    base = unit(rng)
    burst = teacher.start(1, next_seq=0, hold=True)
    feed(teacher, [(0, 0.0, base)])
    assert (burst.taught, burst.skipped, burst.same_picture) == (1, 0, False)
    feed(teacher, [(i, i * 0.5, base) for i in range(1, 3)])
    assert burst.skipped == 2 and not burst.same_picture  # two frames alike may be chance
    feed(teacher, [(3, 1.5, base)])
    assert burst.skipped == 3 and burst.same_picture
    feed(teacher, [(4, 2.0, unit(rng))])  # the thing moved: a new example, the hint goes
    assert (burst.taught, burst.skipped, burst.same_picture) == (2, 3, False)


def test_frames_skipped_by_the_rate_limit_are_not_called_the_same_picture(teacher, rng):
    burst = teacher.start(1, next_seq=0, hold=True)
    feed(teacher, [(i, i * 0.01, unit(rng)) for i in range(20)])  # 100 fps, distinct frames
    assert burst.taught == 1 and burst.skipped == 0 and not burst.same_picture


@pytest.mark.parametrize("cos, taken", [(1.0, False), (0.99, False), (0.98, False),
                                        (0.97, True), (0.5, True), (-1.0, True)])
def test_duplicate_threshold(teacher, cos, taken):
    first, second = at_cosine(cos)
    teacher.start(0, next_seq=0, hold=True)
    assert feed(teacher, [(0, 0.0, first)]) != []
    assert bool(feed(teacher, [(1, 1.0, second)])) is taken


def test_duplicates_are_judged_by_direction_not_length(teacher, rng):
    v = unit(rng)
    teacher.start(0, next_seq=0, hold=True)
    feed(teacher, [(0, 0.0, v)])
    assert feed(teacher, [(1, 1.0, 3.0 * v)]) == []


def test_first_example_is_taken_even_if_identical_to_previous_burst(teacher, rng):
    same = unit(rng)
    teacher.start(0, next_seq=0, hold=True)
    assert len(feed(teacher, [(0, 0.0, same)])) == 1
    teacher.release(0)
    # A new press right away, seeing exactly the same thing, still teaches one example.
    teacher.start(1, next_seq=1)
    assert feed(teacher, [(1, 0.01, same)]) == [(1, 0.01, 1)]
    teacher.start(2, next_seq=2, hold=True)
    assert feed(teacher, [(2, 0.02, same)]) == [(2, 0.02, 2)]
    assert [(b.class_id, b.taught) for b in teacher.history] == [(0, 1), (1, 1)]


def test_hold_turns_an_unfinished_burst_into_a_held_one(teacher, rng):
    teacher.start(3, next_seq=0, wanted=1, hold=False)
    teacher.hold(3)
    taught = feed(teacher, stream(rng, 0, 20, step=0.05))  # 1 s
    assert len(taught) >= 3
    teacher.hold(1)  # another class's hold changes nothing
    assert teacher.active is not None and teacher.active.class_id == 3


# -- release and cancel ---------------------------------------------------------------

def test_very_short_press_still_gives_one_example(teacher, rng):
    teacher.start(2, next_seq=5, hold=True)
    teacher.release(2)  # released before any frame after the press came in
    assert teacher.active is not None
    assert feed(teacher, stream(rng, 4, 1)) == []  # pre-press frame
    taught = feed(teacher, stream(rng, 5, 10, start=1.0))
    assert [seq for seq, _, _ in taught] == [5]
    assert teacher.active is None
    assert [(b.class_id, b.taught) for b in teacher.history] == [(2, 1)]


def test_release_of_another_class_does_not_end_the_burst(teacher, rng):
    teacher.start(1, next_seq=0, hold=True)
    feed(teacher, stream(rng, 0, 1))
    teacher.release(0)
    assert teacher.active is not None
    teacher.release()  # any class
    assert teacher.active is None
    assert len(teacher.history) == 1


def test_release_ends_a_held_burst(teacher, rng):
    teacher.start(0, next_seq=0, hold=True)
    feed(teacher, stream(rng, 0, 20))
    teacher.release(0)
    assert feed(teacher, stream(rng, 20, 20, start=5.0)) == []


def test_cancel_closes_with_what_it_has(teacher, rng):
    teacher.start(1, next_seq=0, wanted=5)
    feed(teacher, stream(rng, 0, 2))
    teacher.cancel()
    assert teacher.active is None
    assert feed(teacher, stream(rng, 2, 5, start=1.0)) == []
    assert [(b.class_id, b.taught) for b in teacher.history] == [(1, 2)]


def test_cancel_with_no_example_leaves_no_burst(teacher, rng):
    teacher.start(1, next_seq=0, hold=True)
    teacher.cancel()
    assert teacher.active is None
    assert len(teacher.history) == 0
    assert feed(teacher, stream(rng, 0, 5)) == []
    assert teacher.pop_last() is None
    teacher.cancel()  # harmless without a burst


def test_a_new_press_closes_the_previous_burst(teacher, rng):
    teacher.start(0, next_seq=0, hold=True)
    feed(teacher, stream(rng, 0, 1))
    teacher.start(1, next_seq=1, hold=True)
    taught = feed(teacher, stream(rng, 1, 1, start=0.05))
    assert taught[0][2] == 1
    teacher.release(1)
    assert [(b.class_id, b.taught) for b in teacher.history] == [(0, 1), (1, 1)]


def test_a_new_press_drops_an_empty_previous_burst(teacher, rng):
    teacher.start(0, next_seq=0, hold=True)
    teacher.start(1, next_seq=0)
    feed(teacher, stream(rng, 0, 1))
    assert [(b.class_id, b.taught) for b in teacher.history] == [(1, 1)]


# -- undo and forgetting --------------------------------------------------------------

def teach_bursts(teacher, rng, classes):
    seq = 0
    for c in classes:
        teacher.start(c, next_seq=seq)
        feed(teacher, [(seq, float(seq), unit(rng))])
        seq += 1
    return seq


def test_pop_last_returns_latest_burst_and_removes_it(teacher, rng):
    teacher.start(0, next_seq=0, wanted=2)
    feed(teacher, stream(rng, 0, 2))
    teacher.start(1, next_seq=2, wanted=3)
    feed(teacher, stream(rng, 2, 3, start=1.0))
    last = teacher.pop_last()
    assert (last.class_id, last.taught) == (1, 3)
    first = teacher.pop_last()
    assert (first.class_id, first.taught) == (0, 2)
    assert teacher.pop_last() is None


def test_pop_last_skips_an_empty_active_burst(teacher, rng):
    teach_bursts(teacher, rng, [0, 2])
    teacher.start(1, next_seq=99, hold=True)  # pressed, nothing taught yet
    burst = teacher.pop_last()
    assert (burst.class_id, burst.taught) == (2, 1)
    assert teacher.active is None
    assert [b.class_id for b in teacher.history] == [0]


def test_pop_last_ends_and_returns_a_held_burst_with_examples(teacher, rng):
    teach_bursts(teacher, rng, [0])
    teacher.start(1, next_seq=10, hold=True)
    feed(teacher, stream(rng, 10, 20, start=10.0))
    burst = teacher.pop_last()
    assert burst.class_id == 1 and burst.taught >= 2
    assert teacher.active is None
    assert feed(teacher, stream(rng, 30, 5, start=20.0)) == []
    assert [b.class_id for b in teacher.history] == [0]


def test_forget_class_removes_only_that_class(teacher, rng):
    teach_bursts(teacher, rng, [0, 1, 0, 2, 1])
    teacher.forget_class(0)
    assert [b.class_id for b in teacher.history] == [1, 2, 1]
    assert teacher.pop_last().class_id == 1
    assert teacher.pop_last().class_id == 2
    assert teacher.pop_last().class_id == 1
    assert teacher.pop_last() is None


def test_forget_class_ends_its_active_burst_only(teacher, rng):
    teacher.start(1, next_seq=0, hold=True)
    feed(teacher, stream(rng, 0, 1))
    teacher.forget_class(0)
    assert teacher.active is not None
    teacher.forget_class(1)
    assert teacher.active is None
    assert feed(teacher, stream(rng, 1, 10, start=1.0)) == []
    assert teacher.pop_last() is None


def test_forget_all(teacher, rng):
    teach_bursts(teacher, rng, [0, 1, 2])
    teacher.start(3, next_seq=10, hold=True)
    teacher.forget_all()
    assert teacher.active is None
    assert len(teacher.history) == 0
    assert teacher.pop_last() is None
    assert feed(teacher, stream(rng, 10, 5)) == []


@pytest.mark.parametrize("history", [1, 3, 5])
def test_history_is_bounded(rng, history):
    teacher = BurstTeacher(DIM, history=history)
    teach_bursts(teacher, rng, list(range(10)))
    assert len(teacher.history) == history
    popped = []
    while (burst := teacher.pop_last()) is not None:
        popped.append(burst.class_id)
    assert popped == list(range(9, 9 - history, -1))  # the newest ones are kept


def test_history_bound_survives_forget_class(rng):
    teacher = BurstTeacher(DIM, history=3)
    teach_bursts(teacher, rng, [0, 1, 2])
    teacher.forget_class(1)
    teach_bursts(teacher, rng, [3, 4, 5])
    assert len(teacher.history) == 3


@pytest.mark.parametrize("rate", [0, 0.0, -1.0])
def test_rate_must_be_positive(rate):
    with pytest.raises(ValueError):
        BurstTeacher(DIM, rate=rate)


def test_a_pressed_burst_stays_open_so_a_later_hold_continues_it():
    # What the panel does: press -> start(pressed=True); the first frame is taught;
    # after hold_time -> hold(); the burst goes on until release.
    rng = np.random.default_rng(5)
    teacher = BurstTeacher(16, rate=4.0, duplicate_similarity=0.98)
    teacher.start(0, 0, pressed=True)
    taught = 0
    for i in range(40):  # 20 fps for 2 s
        now = i * 0.05
        if now >= 0.5:
            teacher.hold(0)
        embedding = rng.normal(size=16).astype(np.float32)
        if teacher.choose(i, now, embedding) is not None:
            teacher.taught(now, embedding)
            taught += 1
        if i == 5:
            assert taught == 1  # a short press gives exactly one example
    assert 6 <= taught <= 8
    teacher.release(0)
    assert teacher.active is None and teacher.history[-1].taught == taught


def test_a_leased_hold_ends_by_itself_unless_renewed():
    rng = np.random.default_rng(9)
    teacher = BurstTeacher(16, rate=100.0, duplicate_similarity=2.0)
    burst = teacher.start(2, 0, hold=True, pressed=True)
    burst.lease_until = 1.0
    taught = []
    for i in range(40):  # 10 frames a second for 4 s; renewed until t = 1.5 s, then silence
        now = i * 0.1
        if now <= 1.5:
            assert teacher.renew(2, now + 1.0)
        embedding = rng.normal(size=16)
        if teacher.choose(i, now, embedding) is not None:
            teacher.taught(now, embedding)
            taught.append(now)
    assert taught and max(taught) <= 2.5 + 1e-9  # stopped one lease after the last renewal
    assert teacher.active is None and teacher.history[-1].taught == len(taught)
    assert not teacher.renew(2, 10.0)  # nothing left to renew
