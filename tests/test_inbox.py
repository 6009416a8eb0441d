"""The inbox of doubtful frames: what is kept, how it stays bounded, and that the loop's check is free."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from device.errors import TeachboxError
from device.head import STATUS_EMPTY, STATUS_OK, STATUS_UNKNOWN, NearestCentroidHead, Prediction
from device.inbox import DEFAULT_MARGIN, DoubtfulInbox, FrameGoneError

DIM = 1280  # MobileNetV2's feature size: an embedding copy is 5 KB, easy to see in tracemalloc


def unit(vector):
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(9)


@pytest.fixture
def head(rng):
    """Three classes taught from noisy clusters around random centres."""
    head = NearestCentroidHead(DIM, 4)
    for class_id in range(3):
        centre = unit(rng.standard_normal(DIM))
        for _ in range(5):
            head.teach(class_id, centre + 0.05 * rng.standard_normal(DIM).astype(np.float32))
    return head


def confident(head, class_id=0):
    return head.centroid(class_id).astype(np.float32)


def between(head, rng, a=0, b=1, spread=1.5):
    """An embedding exactly as similar to classes a and b (a random part orthogonal to both)."""
    ca, cb = head.centroid(a), head.centroid(b)
    basis, _ = np.linalg.qr(np.stack([ca, cb], axis=1))
    noise = rng.standard_normal(DIM)
    noise -= basis @ (basis.T @ noise)
    return (ca + cb + spread * unit(noise)).astype(np.float32)


def prediction(status, scores, class_id=None, confidence=0.5):
    scores = np.array(scores, dtype=np.float32)
    return Prediction(status, class_id, confidence, scores, np.zeros_like(scores))


def feed(inbox, head, embedding, now, thumbnail=b"jpeg", **options):
    return inbox.consider(now, head.predict(embedding), embedding, thumbnail, **options)


# -- what is doubtful -----------------------------------------------------------------------
def test_a_close_call_is_kept_with_its_two_best_classes(head, rng):
    inbox = DoubtfulInbox()
    embedding = between(head, rng, 0, 2)
    frame_id = feed(inbox, head, embedding, 10.0, thumbnail=b"picture")
    [frame] = inbox.entries()
    assert frame.id == frame_id == 1
    assert frame.time == 10.0 and frame.reason == "close" and not frame.filed
    assert {frame.best, frame.runner_up} == {0, 2}
    assert frame.margin < DEFAULT_MARGIN and frame.best_score >= frame.runner_up_score
    assert frame.answer == head.predict(embedding).class_id == frame.best
    assert frame.thumbnail() == b"picture" and frame.thumbnail_ready
    np.testing.assert_array_equal(frame.embedding, embedding)


def test_confident_frames_are_not_kept(head):
    inbox = DoubtfulInbox()
    for class_id in range(3):
        assert feed(inbox, head, confident(head, class_id), 10.0 + 5 * class_id) is None
    assert inbox.entries() == [] and len(inbox) == 0


def test_the_margin_is_a_parameter(head, rng):
    embedding = between(head, rng, 0, 1) + 0.3 * confident(head, 0)  # a clear lead for class 0
    lead = head.predict(embedding).scores[0] - head.predict(embedding).scores[1]
    assert 0.05 < lead < 0.5
    assert feed(DoubtfulInbox(), head, embedding, 0.0) is None
    assert feed(DoubtfulInbox(margin=float(lead) + 0.01), head, embedding, 0.0) == 1


@pytest.mark.parametrize("scores", [[0.9, 0.2, 0.1], [np.nan, 0.9, np.nan]], ids=["three-classes", "one-class"])
def test_an_answer_given_with_little_confidence_is_kept_as_unsure(rng, scores):
    """A clear lead in the scores, yet the head gives the answer little chance (maybe something never taught)."""
    best = int(np.nanargmax(scores))
    inbox = DoubtfulInbox()
    assert inbox.consider(0.0, prediction(STATUS_OK, scores, best, confidence=0.5), rng.standard_normal(8)) is None
    assert inbox.consider(5.0, prediction(STATUS_OK, scores, best, confidence=0.2), rng.standard_normal(8)) == 1
    [frame] = inbox.entries()
    assert frame.reason == "unsure" and frame.best == best and frame.answer == best
    assert DoubtfulInbox(unsure_below=0.1).consider(0.0, prediction(STATUS_OK, scores, best, confidence=0.2),
                                                    rng.standard_normal(8)) is None


def test_an_unknown_answer_is_kept_with_the_shown_answer(rng):
    inbox = DoubtfulInbox()
    scores = [0.4, 0.1, np.nan]  # a clear lead, but under the head's threshold
    assert inbox.consider(1.0, prediction(STATUS_UNKNOWN, scores), rng.standard_normal(8), None,
                          answer=1) == 1
    [frame] = inbox.entries()
    assert frame.reason == "unknown" and frame.answer == 1 and frame.best == 0 and frame.runner_up == 1
    assert frame.thumbnail() is None


def test_a_real_unknown_from_a_head_with_a_threshold(head, rng):
    strict = NearestCentroidHead.from_state(*head.to_state(), threshold=0.9)
    stranger = unit(rng.standard_normal(DIM))
    inbox = DoubtfulInbox()
    assert feed(inbox, strict, stranger, 0.0) == 1
    assert inbox.entries()[0].answer == "unknown" and inbox.entries()[0].reason == "unknown"


def test_with_one_class_taught_only_unknown_is_doubtful(rng):
    inbox = DoubtfulInbox()
    scores = [np.nan, 0.6, np.nan]
    assert inbox.consider(0.0, prediction(STATUS_OK, scores, 1), rng.standard_normal(8), b"") is None
    assert inbox.consider(5.0, prediction(STATUS_UNKNOWN, scores), rng.standard_normal(8), b"") == 1
    [frame] = inbox.entries()
    assert frame.best == 1 and frame.runner_up is None and frame.runner_up_score is None
    assert frame.margin == float("inf")


def test_never_while_nothing_is_learned(rng):
    empty = NearestCentroidHead(DIM, 4)
    inbox = DoubtfulInbox(margin=2.0)  # everything taught would be doubtful
    for now in range(0, 100, 10):
        embedding = rng.standard_normal(DIM).astype(np.float32)
        assert empty.predict(embedding).status == STATUS_EMPTY
        assert feed(inbox, empty, embedding, float(now)) is None
    assert inbox.entries() == []


def test_never_while_the_camera_is_offline(head, rng):
    inbox = DoubtfulInbox()
    doubtful = between(head, rng)
    assert inbox.consider(0.0, None, None, None) is None
    assert inbox.consider(5.0, head.predict(doubtful), None, None) is None
    assert inbox.consider(10.0, None, doubtful, None) is None
    assert inbox.entries() == []


def test_never_a_frame_that_was_just_taught_even_to_class_0(head, rng):
    inbox = DoubtfulInbox()
    assert feed(inbox, head, between(head, rng), 0.0, taught=0) is None
    assert feed(inbox, head, between(head, rng), 5.0, taught=2) is None
    assert feed(inbox, head, between(head, rng), 10.0, taught=None) == 1


def test_an_all_zero_embedding_is_not_kept(head):
    zero = np.zeros(DIM, dtype=np.float32)
    assert head.predict(zero).status == STATUS_UNKNOWN  # scores all NaN: nothing to file
    assert feed(DoubtfulInbox(), head, zero, 0.0) is None


# -- bounded ----------------------------------------------------------------------------------
def test_at_most_one_frame_every_min_interval(head, rng):
    inbox = DoubtfulInbox(min_interval=3.0)
    assert feed(inbox, head, between(head, rng), 100.0) == 1
    assert feed(inbox, head, between(head, rng), 101.0) is None
    assert feed(inbox, head, between(head, rng), 102.99) is None
    assert feed(inbox, head, between(head, rng), 103.0) == 2
    assert [f.time for f in inbox.entries(newest_first=False)] == [100.0, 103.0]


def test_a_near_duplicate_of_the_last_kept_frame_is_skipped(head, rng):
    inbox = DoubtfulInbox(duplicate_similarity=0.98)
    view = between(head, rng)
    assert feed(inbox, head, view, 0.0) == 1
    again = view + 0.002 * rng.standard_normal(DIM).astype(np.float32)  # the same view, a bit of noise
    assert float(unit(again) @ unit(view)) > 0.98
    for now in range(5, 100, 5):
        assert feed(inbox, head, again, float(now)) is None
    assert feed(inbox, head, between(head, rng), 100.0) == 2  # a different doubtful view
    assert len(inbox) == 2


def test_a_filed_frame_still_counts_as_the_last_view(head, rng):
    """Filing a frame must not make the same view pop straight back into the inbox."""
    inbox = DoubtfulInbox()
    view = between(head, rng)
    inbox.take(feed(inbox, head, view, 0.0))
    assert feed(inbox, head, view, 10.0) is None
    inbox.clear()
    assert feed(inbox, head, view, 20.0) == 2


def test_capacity_drops_the_oldest_and_ids_keep_increasing(head, rng):
    inbox = DoubtfulInbox(capacity=3, min_interval=1.0)
    ids = [feed(inbox, head, between(head, rng), float(t)) for t in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert [f.id for f in inbox.entries()] == [5, 4, 3]
    assert [f.id for f in inbox.entries(newest_first=False)] == [3, 4, 5]
    assert inbox.clear() == 3 and inbox.entries() == []
    assert feed(inbox, head, between(head, rng), 10.0) == 6  # never reused within a run
    with pytest.raises(FrameGoneError, match="keeps the last 3"):
        inbox.take(1)


def test_the_default_capacity_is_50(head, rng):
    inbox = DoubtfulInbox(min_interval=0.0)
    for t in range(60):
        feed(inbox, head, between(head, rng), float(t))
    assert len(inbox) == 50 and inbox.entries()[-1].id == 11


# -- filing -----------------------------------------------------------------------------------
def test_take_removes_the_frame_and_a_second_take_says_it_is_gone(head, rng):
    inbox = DoubtfulInbox()
    embedding = between(head, rng)
    frame_id = feed(inbox, head, embedding, 0.0)
    taken = inbox.take(frame_id)
    assert taken.id == frame_id and taken.filed
    np.testing.assert_array_equal(taken.embedding, embedding)
    assert inbox.entries() == []
    with pytest.raises(FrameGoneError) as caught:
        inbox.take(frame_id)
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, TeachboxError)
    assert str(caught.value).startswith("that frame (1) has left the inbox (it keeps the last 50)")
    with pytest.raises(FrameGoneError, match="has left the inbox"):
        inbox.get(frame_id)


def test_an_id_never_given_is_named_as_such(head, rng):
    inbox = DoubtfulInbox()
    feed(inbox, head, between(head, rng), 0.0)
    with pytest.raises(FrameGoneError, match="there is no doubtful frame 7: ids so far run from 1 to 1"):
        inbox.take(7)


def test_get_leaves_the_frame_in_place(head, rng):
    inbox = DoubtfulInbox()
    frame_id = feed(inbox, head, between(head, rng), 0.0)
    assert inbox.get(frame_id).id == frame_id and len(inbox) == 1


def test_only_one_of_two_racing_takes_gets_the_frame(head, rng):
    inbox = DoubtfulInbox()
    frame_id = feed(inbox, head, between(head, rng), 0.0)
    results, start = [], threading.Barrier(8)

    def tap():
        start.wait()
        try:
            results.append(inbox.take(frame_id).id)
        except FrameGoneError:
            results.append("gone")

    threads = [threading.Thread(target=tap) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(results, key=str) == [frame_id] + ["gone"] * 7


def test_the_embedding_is_a_read_only_copy(head, rng):
    inbox = DoubtfulInbox()
    buffer = between(head, rng)  # the embedder reuses one buffer for every frame
    kept = buffer.copy()
    feed(inbox, head, buffer, 0.0)
    buffer[:] = 0.0
    [frame] = inbox.entries()
    np.testing.assert_array_equal(frame.embedding, kept)
    with pytest.raises(ValueError):
        frame.embedding[0] = 1.0


def test_a_mutable_thumbnail_buffer_is_copied(head, rng):
    inbox = DoubtfulInbox()
    buffer = bytearray(b"first")
    feed(inbox, head, between(head, rng), 0.0, thumbnail=buffer)
    buffer[:] = b"other"
    assert inbox.entries()[0].thumbnail() == b"first"


def test_a_lazy_thumbnail_is_made_once_and_not_under_the_lock(head, rng):
    inbox = DoubtfulInbox()
    calls = []

    def encode():
        calls.append(threading.current_thread().name)
        # another thread must be able to read the inbox while the picture is being made
        other = threading.Thread(target=lambda: seen.append(len(inbox.entries())))
        other.start()
        other.join(5)
        assert not other.is_alive(), "entries() blocked while a thumbnail was being made"
        return b"made"

    seen = []
    feed(inbox, head, between(head, rng), 0.0, thumbnail=encode)
    assert calls == []  # nothing is encoded on the loop thread
    [frame] = inbox.entries()
    assert not frame.thumbnail_ready
    readers = [threading.Thread(target=frame.thumbnail) for _ in range(4)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(5)
    assert frame.thumbnail() == b"made" and frame.thumbnail_ready
    assert len(calls) == 1 and seen == [1]
    assert inbox.take(frame.id).thumbnail() == b"made" and len(calls) == 1


def test_a_failing_thumbnail_is_tried_again_and_a_wrong_type_is_named(head, rng):
    inbox = DoubtfulInbox(min_interval=0.0)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("encoder busy")
        return b"ok"

    feed(inbox, head, between(head, rng), 0.0, thumbnail=flaky)
    feed(inbox, head, between(head, rng), 1.0, thumbnail=lambda: "not bytes")
    wrong, frame = inbox.entries()
    with pytest.raises(OSError):
        frame.thumbnail()
    assert frame.thumbnail() == b"ok" and len(attempts) == 2
    with pytest.raises(TypeError, match="returned str; it must return bytes"):
        wrong.thumbnail()
    with pytest.raises(TypeError, match="not int"):
        feed(inbox, head, between(head, rng), 2.0, thumbnail=42)
    assert len(inbox) == 2  # a bad argument keeps nothing and uses no id
    assert feed(inbox, head, between(head, rng), 3.0) == 3


def test_the_loop_and_web_threads_together(head, rng):
    """A loop thread keeps frames while web threads list and take them: nothing breaks or repeats."""
    inbox = DoubtfulInbox(capacity=10, min_interval=0.0)
    views = [between(head, rng) for _ in range(200)]
    predictions = [head.predict(v) for v in views]
    stop, taken, errors = threading.Event(), [], []

    def web():
        while not stop.is_set():
            try:
                for frame in inbox.entries()[:1]:
                    taken.append(inbox.take(frame.id).id)
            except FrameGoneError:
                pass
            except Exception as exc:  # pragma: no cover - the failure being tested for
                errors.append(exc)

    webs = [threading.Thread(target=web) for _ in range(3)]
    for thread in webs:
        thread.start()
    kept = [inbox.consider(float(t), p, v, b"") for t, (p, v) in enumerate(zip(predictions, views))]
    stop.set()
    for thread in webs:
        thread.join(5)
    assert errors == []
    assert len(taken) == len(set(taken))
    assert [k for k in kept if k is not None] == list(range(1, 201))


# -- the loop's check is free ------------------------------------------------------------------
def test_the_common_path_allocates_nothing(head, rng):
    inbox = DoubtfulInbox(min_interval=3.0)
    sure = confident(head, 1)
    sure_prediction = head.predict(sure)
    doubtful = between(head, rng)
    doubtful_prediction = head.predict(doubtful)
    assert sure_prediction.status == STATUS_OK
    assert inbox.consider(0.0, doubtful_prediction, doubtful, b"x") == 1
    inbox.consider(0.5, sure_prediction, sure, b"x")  # warm up (the score buffer is made once)

    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        for i in range(1000):
            now = 1.0 + i * 0.001  # all within min_interval of the kept frame
            assert inbox.consider(now, sure_prediction, sure, b"x") is None
            assert inbox.consider(now, doubtful_prediction, doubtful, b"x") is None
        for i in range(1000):
            assert inbox.consider(10.0 + i, sure_prediction, sure, b"x") is None  # past the interval
        _, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    only_inbox = [tracemalloc.Filter(True, "*device/inbox.py")]
    growth = [s for s in after.filter_traces(only_inbox).compare_to(before.filter_traces(only_inbox), "lineno")
              if s.size_diff > 0]
    assert growth == []
    assert peak - base < sure.nbytes // 4, "something the size of an embedding was allocated per frame"
    assert len(inbox) == 1


@pytest.mark.parametrize("options, message", [
    ({"capacity": 0}, "capacity must be a whole number of frames, 1 or more, not 0"),
    ({"capacity": 2.5}, "not 2.5"),
    ({"min_interval": -1}, "min_interval must be seconds, 0 or more, not -1"),
    ({"margin": 3}, "margin must be a cosine difference from 0 to 2, not 3"),
    ({"duplicate_similarity": "high"}, "duplicate_similarity must be a cosine from -1 to 1, not 'high'"),
    ({"unsure_below": 1.5}, "unsure_below must be a probability from 0 to 1, not 1.5"),
])
def test_settings_out_of_range_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        DoubtfulInbox(**options)
