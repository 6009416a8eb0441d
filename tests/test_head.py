"""The nearest-centroid head: exact teaching/undo/round trips, answers, names and limits.

Pure numpy with synthetic embeddings; no model needed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from device.errors import ClassIndexError, ClassNameError, StateError
from device.head import (
    MAX_CLASSES,
    MAX_NAME_LENGTH,
    STATUS_EMPTY,
    STATUS_OK,
    STATUS_UNKNOWN,
    NearestCentroidHead,
    validate_class_name,
)
from device.storage import ModelIdentity, decode_head, encode_head

DIM = 64
HYPO_DIM = 16
HYPO_CLASSES = 4
MODEL = ModelIdentity(sha256="ab" * 32, dim=HYPO_DIM, name="synthetic")

hypo_settings = settings(max_examples=60, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

embeddings = hnp.arrays(
    np.float32, HYPO_DIM,
    elements=st.floats(-1000, 1000, allow_nan=False, allow_infinity=False, width=32),
)
examples = st.lists(st.tuples(st.integers(0, HYPO_CLASSES - 1), embeddings), max_size=25)


def rng(seed=0):
    return np.random.default_rng(seed)


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def clusters(num_classes, dim=DIM, per_class=5, queries=5, noise=0.05, seed=0):
    """Well-separated synthetic clusters: (centers, train[(class, emb)], test[(class, emb)])."""
    r = rng(seed)
    centers = r.standard_normal((num_classes, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)

    def sample(c):
        return (centers[c] + noise * r.standard_normal(dim)).astype(np.float32)

    train = [(c, sample(c)) for c in range(num_classes) for _ in range(per_class)]
    test = [(c, sample(c)) for c in range(num_classes) for _ in range(queries)]
    return centers, train, test


def state_arrays(head):
    meta, arrays = head.to_state()
    return meta, arrays["sums"], arrays["counts"]


def assert_same_state(a, b):
    meta_a, sums_a, counts_a = state_arrays(a)
    meta_b, sums_b, counts_b = state_arrays(b)
    assert meta_a == meta_b
    assert sums_a.dtype == sums_b.dtype == np.int64
    np.testing.assert_array_equal(sums_a, sums_b)
    np.testing.assert_array_equal(counts_a, counts_b)


def assert_same_predictions(a, b, probes):
    for probe in probes:
        pa, pb = a.predict(probe), b.predict(probe)
        assert (pa.status, pa.class_id) == (pb.status, pb.class_id)
        np.testing.assert_array_equal(pa.scores, pb.scores)
        np.testing.assert_array_equal(pa.probabilities, pb.probabilities)
        assert pa.confidence == pb.confidence


def probes(dim, n=4, seed=99):
    return [rng(seed).standard_normal(dim).astype(np.float32) + i for i in range(n)]


# -- exactness (property based) --------------------------------------------------------

@hypo_settings
@given(data=st.data(), taught=examples)
def test_teaching_order_does_not_matter(data, taught):
    order = data.draw(st.permutations(range(len(taught))))
    first = NearestCentroidHead(HYPO_DIM, HYPO_CLASSES)
    second = NearestCentroidHead(HYPO_DIM, HYPO_CLASSES)
    for class_id, emb in taught:
        first.teach(class_id, emb)
    for i in order:
        second.teach(taught[i][0], taught[i][1])
    assert_same_state(first, second)
    assert first.counts == second.counts
    for c in range(HYPO_CLASSES):
        np.testing.assert_array_equal(first.centroid(c), second.centroid(c))
    assert_same_predictions(first, second, probes(HYPO_DIM))


@hypo_settings
@given(before=examples, after=examples)
def test_undo_of_last_examples_restores_previous_state_exactly(before, after):
    head = NearestCentroidHead(HYPO_DIM, HYPO_CLASSES)
    for class_id, emb in before:
        head.teach(class_id, emb)
    reference = NearestCentroidHead.from_state(*head.to_state())
    saved_meta, saved_sums, saved_counts = state_arrays(head)
    predictions_before = [head.predict(p) for p in probes(HYPO_DIM)]

    added = [0] * HYPO_CLASSES
    for class_id, emb in after:
        if head.teach(class_id, emb):
            added[class_id] += 1
    for class_id, k in enumerate(added):
        assert head.undo(class_id, k) == k

    meta, sums, counts = state_arrays(head)
    assert meta == saved_meta
    np.testing.assert_array_equal(sums, saved_sums)
    np.testing.assert_array_equal(counts, saved_counts)
    assert_same_predictions(head, reference, probes(HYPO_DIM))
    for probe, old in zip(probes(HYPO_DIM), predictions_before):
        new = head.predict(probe)
        assert (new.status, new.class_id) == (old.status, old.class_id)
        np.testing.assert_array_equal(new.scores, old.scores)


@hypo_settings
@given(taught=examples, names=st.lists(st.sampled_from(["Äpfel", "猫", "cup", "Class 9", "a/b.c"]),
                                       min_size=HYPO_CLASSES, max_size=HYPO_CLASSES))
def test_state_round_trip_is_exact(taught, names):
    head = NearestCentroidHead(HYPO_DIM, HYPO_CLASSES, names=names)
    for class_id, emb in taught:
        head.teach(class_id, emb)

    copy = NearestCentroidHead.from_state(*head.to_state())
    assert_same_state(head, copy)
    assert copy.names == names
    assert_same_predictions(head, copy, probes(HYPO_DIM))

    via_bytes = decode_head(encode_head(head, MODEL), MODEL)
    assert_same_state(head, via_bytes)
    assert via_bytes.names == names
    assert_same_predictions(head, via_bytes, probes(HYPO_DIM))


def test_to_state_returns_copies():
    head = NearestCentroidHead(DIM, 2)
    head.teach(0, np.ones(DIM))
    _, arrays = head.to_state()
    arrays["sums"][:] = 0
    arrays["counts"][:] = 0
    assert head.counts == [1, 0]
    assert head.predict(np.ones(DIM)).class_id == 0


# -- answers ------------------------------------------------------------------------------

def test_nothing_learned_answer():
    head = NearestCentroidHead(DIM, 4)
    p = head.predict(rng().standard_normal(DIM))
    assert p.status == STATUS_EMPTY
    assert p.class_id is None
    assert p.confidence == 0.0
    assert np.isnan(p.scores).all()
    assert not p.probabilities.any()


def test_one_class_taught_answers_it_for_anything():
    head = NearestCentroidHead(DIM, 4)
    assert head.teach(2, rng(1).standard_normal(DIM))
    for i in range(5):
        p = head.predict(rng(10 + i).standard_normal(DIM))
        assert p.status == STATUS_OK
        assert p.class_id == 2
        assert p.confidence == pytest.approx(0.5)  # one example: only half sure, however alone it is
        assert np.isnan(p.scores[[0, 1, 3]]).all()
        assert not np.isnan(p.scores[2])


@pytest.mark.parametrize("num_classes", [2, 16, MAX_CLASSES])
def test_well_separated_clusters_are_classified_right(num_classes):
    _, train, test = clusters(num_classes, seed=num_classes)
    head = NearestCentroidHead(DIM, num_classes)
    for class_id, emb in train:
        assert head.teach(class_id, emb)
    assert head.counts == [5] * num_classes
    for class_id, emb in test:
        p = head.predict(emb)
        assert p.status == STATUS_OK
        assert p.class_id == class_id
        assert p.confidence == p.probabilities[class_id]


def test_probabilities_are_a_softmax_weighed_by_the_examples_behind_each_class():
    _, train, test = clusters(6, seed=3)
    head = NearestCentroidHead(DIM, 8)
    for class_id, emb in train:
        head.teach(class_id, emb)
    for _, emb in test:
        p = head.predict(emb)
        assert p.probabilities.sum() == pytest.approx(5 / 6, abs=1e-5)  # 5 examples each: 1/6 is doubt
        assert (p.probabilities[:6] > 0).all()
        assert (p.probabilities[6:] == 0).all()
        assert np.isnan(p.scores[6:]).all()
        assert np.all(np.abs(p.scores[:6]) <= 1.0 + 1e-5)


def test_scale_of_an_embedding_does_not_matter():
    _, train, test = clusters(3, seed=5)
    head = NearestCentroidHead(DIM, 3)
    scaled = NearestCentroidHead(DIM, 3)
    for class_id, emb in train:
        head.teach(class_id, emb)
        scaled.teach(class_id, emb * 1000)
    for class_id, emb in test:
        assert head.predict(emb).class_id == scaled.predict(emb * 0.001).class_id == class_id


def test_threshold_gives_unknown_below_it():
    head = NearestCentroidHead(DIM, 2, threshold=0.5)
    e = np.eye(DIM, dtype=np.float32)
    head.teach(0, e[0])
    head.teach(1, e[1])
    p = head.predict(e[2])  # orthogonal to both: similarity 0
    assert p.status == STATUS_UNKNOWN
    assert p.class_id is None
    assert p.scores[0] == pytest.approx(0.0)
    near = e[1] + 0.2 * e[2]
    p = head.predict(near)
    assert p.status == STATUS_OK
    assert p.class_id == 1


def test_threshold_none_never_answers_unknown():
    head = NearestCentroidHead(DIM, 2, threshold=None)
    e = np.eye(DIM, dtype=np.float32)
    head.teach(0, e[0])
    for query in (-e[0], e[5], rng(4).standard_normal(DIM)):
        p = head.predict(query)
        assert p.status == STATUS_OK
        assert p.class_id == 0


@pytest.mark.parametrize("threshold", [-1.5, 1.01, float("nan")])
def test_out_of_range_threshold_is_refused(threshold):
    with pytest.raises(ValueError):
        NearestCentroidHead(DIM, 2, threshold=threshold)


def test_all_zero_embedding_teaches_nothing():
    head = NearestCentroidHead(DIM, 2)
    before = head.generation
    assert head.teach(0, np.zeros(DIM)) is False
    assert head.counts == [0, 0]
    assert head.generation == before
    assert head.predict(np.ones(DIM)).status == STATUS_EMPTY


def test_all_zero_embedding_query_is_unknown_not_a_class():
    head = NearestCentroidHead(DIM, 2)
    head.teach(0, np.ones(DIM))
    p = head.predict(np.zeros(DIM))
    assert p.status == STATUS_UNKNOWN
    assert p.class_id is None


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embedding_is_refused(bad):
    head = NearestCentroidHead(DIM, 2)
    head.teach(0, np.ones(DIM))
    emb = np.ones(DIM, dtype=np.float32)
    emb[7] = bad
    before = state_arrays(head)
    with pytest.raises(ValueError, match="NaN or infinity"):
        head.teach(1, emb)
    with pytest.raises(ValueError):
        head.predict(emb)
    after = state_arrays(head)
    np.testing.assert_array_equal(before[1], after[1])
    assert head.counts == [1, 0]


@pytest.mark.parametrize("length", [0, 1, DIM - 1, DIM + 1, 2 * DIM])
def test_wrong_embedding_length_is_refused(length):
    head = NearestCentroidHead(DIM, 2)
    with pytest.raises(ValueError, match=str(DIM)):
        head.teach(0, np.ones(length))
    head.teach(0, np.ones(DIM))
    with pytest.raises(ValueError):
        head.predict(np.ones(length))
    assert head.counts == [1, 0]


def test_embedding_with_batch_axis_is_accepted():
    head = NearestCentroidHead(DIM, 2)
    assert head.teach(0, np.ones((1, DIM), dtype=np.float32))
    assert head.predict(np.ones((1, DIM))).class_id == 0


# -- undo / clear / rename -------------------------------------------------------------------

def test_undo_removes_only_the_latest_examples_of_that_class():
    _, train, _ = clusters(2, seed=8)
    head = NearestCentroidHead(DIM, 2)
    for class_id, emb in train:
        head.teach(class_id, emb)
    assert head.undo(0, 2) == 2
    assert head.counts == [3, 5]
    assert head.undo(0, 100) == 3  # only as many as there are
    assert head.counts == [0, 5]
    assert head.undo(0) == 0
    assert head.predict(train[0][1]).class_id == 1


def test_undo_is_limited_to_undo_depth():
    head = NearestCentroidHead(DIM, 2, undo_depth=3)
    for i in range(5):
        head.teach(0, rng(i).standard_normal(DIM))
    assert head.undo(0, 10) == 3
    assert head.counts == [2, 0]


def test_undo_after_load_cannot_undo_loaded_examples():
    head = NearestCentroidHead(DIM, 2)
    head.teach(0, np.ones(DIM))
    loaded = NearestCentroidHead.from_state(*head.to_state())
    assert loaded.undo(0) == 0
    assert loaded.counts == [1, 0]


def test_clear_one_class_keeps_its_name_and_the_others():
    _, train, test = clusters(3, seed=9)
    head = NearestCentroidHead(DIM, 3, names=["cup", "pen", "key"])
    for class_id, emb in train:
        head.teach(class_id, emb)
    assert head.clear(1) == 5
    assert head.counts == [5, 0, 5]
    assert head.names == ["cup", "pen", "key"]
    assert head.undo(1) == 0
    for class_id, emb in test:
        p = head.predict(emb)
        assert p.class_id != 1
        if class_id != 1:
            assert p.class_id == class_id
    assert np.isnan(head.predict(test[0][1]).scores[1])
    assert not head.centroid(1).any()


def test_clear_all_forgets_everything_but_names():
    _, train, _ = clusters(3, seed=10)
    head = NearestCentroidHead(DIM, 3, names=["cup", "pen", "key"])
    for class_id, emb in train:
        head.teach(class_id, emb)
    assert head.clear_all() == 15
    assert head.counts == [0, 0, 0]
    assert head.total == 0
    assert head.names == ["cup", "pen", "key"]
    assert not state_arrays(head)[1].any()
    assert head.predict(train[0][1]).status == STATUS_EMPTY
    assert head.undo(0) == 0


@pytest.mark.parametrize("name, expected", [
    ("Äpfel", "Äpfel"),
    ("猫", "猫"),
    ("  mug  ", "mug"),
    ("a/b.c", "a/b.c"),
    ("Tom's cup (blue) #2!", "Tom's cup (blue) #2!"),
    ("x" * MAX_NAME_LENGTH, "x" * MAX_NAME_LENGTH),
    ("A\u0308pfel", "Äpfel"),  # decomposed umlaut is normalised
])
def test_rename_accepts_and_returns_clean_names(name, expected):
    head = NearestCentroidHead(DIM, 2)
    assert head.rename(1, name) == expected
    assert head.names == ["Class 1", expected]


@pytest.mark.parametrize("name", [
    "", "   ", "\t", "a\nb", "tab\there", "bell\x07", "nul\x00", "<script>", "a>b", "a<b",
    "x" * (MAX_NAME_LENGTH + 1), 42, None, b"bytes",
])
def test_rename_refuses_bad_names_and_keeps_the_old_one(name):
    head = NearestCentroidHead(DIM, 2, names=["cup", "pen"])
    generation = head.generation
    with pytest.raises(ClassNameError) as info:
        head.rename(0, name)
    assert isinstance(info.value, ValueError)
    assert str(info.value)
    assert head.names == ["cup", "pen"]
    assert head.generation == generation


def test_validate_class_name_too_long_message_says_limit():
    with pytest.raises(ClassNameError, match=str(MAX_NAME_LENGTH)):
        validate_class_name("y" * 40)


def test_constructor_validates_names():
    with pytest.raises(ClassNameError):
        NearestCentroidHead(DIM, 2, names=["ok", "b\nad"])
    with pytest.raises(ValueError):
        NearestCentroidHead(DIM, 3, names=["only", "two"])
    assert NearestCentroidHead(DIM, 2).names == ["Class 1", "Class 2"]


@pytest.mark.parametrize("num_classes", [0, 1, MAX_CLASSES + 1, 2.0, "4"])
def test_number_of_classes_is_limited(num_classes):
    with pytest.raises(ValueError):
        NearestCentroidHead(DIM, num_classes)


@pytest.mark.parametrize("class_id", [-1, 4, 100, 1.0, "0", None])
def test_class_index_out_of_range_raises_class_index_error(class_id):
    head = NearestCentroidHead(DIM, 4)
    calls = [
        lambda: head.teach(class_id, np.ones(DIM)),
        lambda: head.undo(class_id),
        lambda: head.clear(class_id),
        lambda: head.rename(class_id, "x"),
        lambda: head.centroid(class_id),
    ]
    for call in calls:
        with pytest.raises(ClassIndexError) as info:
            call()
        assert isinstance(info.value, IndexError)
        assert "0 to 3" in str(info.value)
    assert head.counts == [0, 0, 0, 0]
    assert head.names == ["Class 1", "Class 2", "Class 3", "Class 4"]


def test_numpy_integer_class_ids_work():
    head = NearestCentroidHead(DIM, 4)
    assert head.teach(np.int64(3), np.ones(DIM))
    assert head.counts == [0, 0, 0, 1]


# -- size, generation, resizing -------------------------------------------------------------

def test_memory_stays_o_d_per_class_after_many_examples():
    head = NearestCentroidHead(DIM, 4)
    r = rng(11)
    for i in range(1000):
        assert head.teach(i % 2, r.standard_normal(DIM).astype(np.float32))
    _, sums, counts = state_arrays(head)
    assert sums.shape == (4, DIM)
    assert counts.tolist() == [500, 500, 0, 0]
    assert head.total == 1000
    # The undo history is bounded too: only undo_depth examples per class can be undone.
    assert head.undo(0, 1000) == head.undo_depth
    assert head.counts[0] == 500 - head.undo_depth


def test_generation_changes_only_when_something_changes():
    head = NearestCentroidHead(DIM, 2)
    g = head.generation
    head.predict(np.ones(DIM))
    assert head.generation == g
    head.teach(0, np.ones(DIM))
    assert head.generation > g
    g = head.generation
    head.predict(np.ones(DIM))
    assert head.generation == g
    head.rename(0, "mug")
    assert head.generation > g
    g = head.generation
    head.undo(0)
    assert head.generation > g


def test_resized_keeps_counts_names_and_answers():
    _, train, test = clusters(3, seed=12)
    head = NearestCentroidHead(DIM, 4, names=["a", "b", "c", "d"], threshold=0.2, temperature=0.1)
    for class_id, emb in train:
        head.teach(class_id, emb)

    bigger = head.resized(6)
    assert bigger.num_classes == 6
    assert bigger.counts == [5, 5, 5, 0, 0, 0]
    assert bigger.names == ["a", "b", "c", "d", "Class 5", "Class 6"]
    assert bigger.threshold == 0.2 and bigger.temperature == 0.1
    np.testing.assert_array_equal(state_arrays(bigger)[1][:4], state_arrays(head)[1])
    for class_id, emb in test:
        assert bigger.predict(emb).class_id == class_id

    smaller = head.resized(2)
    assert smaller.counts == [5, 5]
    assert smaller.names == ["a", "b"]
    for class_id, emb in test:
        if class_id < 2:
            assert smaller.predict(emb).class_id == class_id
    # the original is untouched
    assert head.counts == [5, 5, 5, 0]
    with pytest.raises(ValueError):
        head.resized(1)


def test_fitted_never_drops_learned_examples():
    _, train, _ = clusters(3, seed=13)
    head = NearestCentroidHead(DIM, 4)
    for class_id, emb in train:
        head.teach(class_id, emb)
    assert head.fitted(4) is head
    assert head.fitted(6).counts == [5, 5, 5, 0, 0, 0]
    assert head.fitted(3).counts == [5, 5, 5]  # the dropped slot was empty
    assert head.fitted(2) is head  # would lose class 3's examples: unchanged


# -- from_state refuses what does not fit ------------------------------------------------------

def _good_state():
    head = NearestCentroidHead(8, 3)
    head.teach(0, np.ones(8))
    return head.to_state()


def _broken(change):
    meta, arrays = _good_state()
    meta, arrays = dict(meta), dict(arrays)
    change(meta, arrays)
    return meta, arrays


BROKEN_STATES = {
    "wrong kind": lambda m, a: m.update(kind="k-means"),
    "no kind": lambda m, a: m.pop("kind"),
    "wrong format": lambda m, a: m.update(format=2),
    "format as text": lambda m, a: m.update(format="1"),
    "no dim": lambda m, a: m.pop("dim"),
    "no names": lambda m, a: m.pop("names"),
    "dim is text": lambda m, a: m.update(dim="eight"),
    "no sums": lambda m, a: a.pop("sums"),
    "no counts": lambda m, a: a.pop("counts"),
    "sums too short": lambda m, a: a.update(sums=a["sums"][:, :4]),
    "sums wrong classes": lambda m, a: a.update(sums=a["sums"][:2]),
    "counts wrong shape": lambda m, a: a.update(counts=a["counts"][:2]),
    "dim does not match arrays": lambda m, a: m.update(dim=9),
    "negative count": lambda m, a: a.update(counts=np.array([1, -1, 0], dtype=np.int64)),
    "float sums": lambda m, a: a.update(sums=a["sums"].astype(np.float64)),
    "int32 counts": lambda m, a: a.update(counts=a["counts"].astype(np.int32)),
    "too many names": lambda m, a: m.update(names=["a", "b", "c", "d"]),
    "bad name": lambda m, a: m.update(names=["a", "b\nb", "c"]),
    "one class": lambda m, a: (m.update(num_classes=1, names=["a"]),
                               a.update(sums=a["sums"][:1], counts=a["counts"][:1])),
    "zero dim": lambda m, a: (m.update(dim=0), a.update(sums=np.zeros((3, 0), dtype=np.int64))),
}


@pytest.mark.parametrize("what", sorted(BROKEN_STATES))
def test_from_state_refuses_states_that_do_not_fit(what):
    meta, arrays = _broken(BROKEN_STATES[what])
    with pytest.raises(StateError):
        NearestCentroidHead.from_state(meta, arrays)


def test_from_state_applies_options():
    meta, arrays = _good_state()
    head = NearestCentroidHead.from_state(meta, arrays, threshold=0.99, temperature=0.5)
    assert head.threshold == 0.99
    assert head.temperature == 0.5
    assert head.counts == [1, 0, 0]
    assert head.predict(-np.ones(8)).status == STATUS_UNKNOWN
    with pytest.raises(StateError):
        NearestCentroidHead.from_state(meta, arrays, threshold=2.0)


def test_one_example_per_class_never_reads_as_sure_and_more_examples_raise_confidence():
    """A newcomer taught one example per class saw "99% sure"; more examples earn more confidence."""
    _, train, test = clusters(3, seed=8)
    confidences = []
    for shots in (1, 2, 5):
        head = NearestCentroidHead(DIM, 3)
        taught = {c: 0 for c in range(3)}
        for class_id, emb in train:
            if taught[class_id] < shots:
                head.teach(class_id, emb)
                taught[class_id] += 1
        right = [head.predict(emb) for class_id, emb in test if head.predict(emb).class_id == class_id]
        confidences.append(max(p.confidence for p in right))
    assert confidences[0] <= 0.5
    assert confidences[0] < confidences[1] < confidences[2] <= 5 / 6 + 1e-6
