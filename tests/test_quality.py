"""Leave-one-out quality per class (device/quality.py)."""

from __future__ import annotations

import numpy as np
import pytest

from device.head import NearestCentroidHead
from device.quality import NO_ANSWER, assess, loo_answers

NAMES = ["Cup", "Mug", "Ball", "Box"]


def clusters(rng, centres, per_class, spread, dim=32, start_id=100):
    """``per_class[c]`` examples around ``centres[c]``: ``(id, class, float32 vector)``."""
    examples = []
    next_id = start_id
    for class_id, (centre, n) in enumerate(zip(centres, per_class)):
        for _ in range(n):
            vector = centre + spread * rng.standard_normal(dim)
            examples.append((next_id, class_id, vector.astype(np.float32)))
            next_id += 1
    return examples


def head_loo_answer(examples, left_out, num_classes, dim):
    """What a real NearestCentroidHead taught all examples but ``left_out`` answers for it."""
    head = NearestCentroidHead(dim, num_classes)
    for i, (_, class_id, vector) in enumerate(examples):
        if i != left_out:
            head.teach(class_id, vector)
    prediction = head.predict(examples[left_out][2])
    return prediction.class_id if prediction.status == "ok" else NO_ANSWER


# -- what it finds ---------------------------------------------------------------------
def test_well_separated_clusters_are_all_recognised():
    rng = np.random.default_rng(1)
    centres = 10 * np.eye(32)[:4]
    report = assess(clusters(rng, centres, [5, 6, 7, 8], 0.3), num_classes=4, names=NAMES)
    assert [q.loo_accuracy for q in report.classes] == [1.0, 1.0, 1.0, 1.0]
    assert [q.correct for q in report.classes] == [5, 6, 7, 8]
    assert all(q.confused_with is None for q in report.classes)
    assert report.classes[2].hint == "Ball: every example is recognised (all 7)"
    assert report.confusion == [[5, 0, 0, 0], [0, 6, 0, 0], [0, 0, 7, 0], [0, 0, 0, 8]]
    assert report.examples == 26 and report.skipped == ()


def test_overlapping_classes_are_confused_with_each_other():
    rng = np.random.default_rng(2)
    shared = rng.standard_normal(32) * 3
    centres = [shared, shared + 0.2 * rng.standard_normal(32), 10 * np.eye(32)[5], 10 * np.eye(32)[6]]
    report = assess(clusters(rng, centres, [20, 20, 10, 10], 1.0), num_classes=4, names=NAMES)
    cup, mug, ball, box = report.classes
    assert cup.confused_with == 1 and mug.confused_with == 0
    assert ball.loo_accuracy == 1.0 and box.loo_accuracy == 1.0
    assert report.confusion[0][1] > 0 and report.confusion[1][0] > 0
    wrong = report.confusion[0][1]
    assert cup.hint == f"Cup is mistaken for Mug in {wrong} of 20 examples: teach both from more sides"
    assert cup.correct == report.confusion[0][0] == 20 - wrong
    assert cup.loo_accuracy == pytest.approx((20 - wrong) / 20)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.float64])
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_loo_answers_agree_with_a_head_taught_without_each_example(dtype, seed):
    rng = np.random.default_rng(seed)
    dim, num_classes = 16, 5
    centres = rng.random((num_classes, dim)) * 4
    per_class = [1, 2, 3, 6, 8]  # a lone example, a pair, and confusable crowds
    examples = clusters(rng, centres, per_class, 1.5, dim=dim)
    if dtype == np.uint8:
        examples = [(i, c, np.clip(v * 40, 0, 255).astype(np.uint8)) for i, c, v in examples]
    else:
        examples = [(i, c, v.astype(dtype)) for i, c, v in examples]
    labels = np.array([c for _, c, _ in examples])
    vectors = np.stack([v.astype(np.float64) for _, _, v in examples])
    ours = loo_answers(labels, vectors, num_classes).tolist()
    theirs = [head_loo_answer(examples, i, num_classes, dim) for i in range(len(examples))]
    assert ours == theirs
    assert len(set(theirs)) > 1  # the data is not trivially one answer


def test_the_only_taught_example_has_no_answer():
    vectors = np.ones((1, 4))
    assert loo_answers(np.array([2]), vectors, 3).tolist() == [NO_ANSWER]
    assert head_loo_answer([(1, 2, vectors[0])], 0, 3, 4) == NO_ANSWER


def test_a_class_whose_other_examples_cancel_out_scores_zero_like_the_head():
    # without example 3, Cup's sum is a + (-a) = 0: the head keeps Cup taught with a zero
    # centroid (similarity 0), so example 3 goes to Mug if it leans towards Mug at all
    a, b = np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])
    for lean in (0.5, -0.5):
        examples = [(1, 0, a), (2, 0, -a), (3, 0, b + lean * np.array([0, 0, 1.0, 0])),
                    (4, 1, np.array([0, 0, 1.0, 0])), (5, 1, np.array([0, 0, 1.0, 0.1]))]
        labels = np.array([c for _, c, _ in examples])
        ours = loo_answers(labels, np.stack([v for _, _, v in examples]), 2).tolist()
        assert ours == [head_loo_answer(examples, i, 2, 4) for i in range(5)]
        assert ours[2] == (1 if lean > 0 else 0)


def test_classes_with_too_few_examples_are_not_judged():
    rng = np.random.default_rng(6)
    centres = 10 * np.eye(32)[:4]
    report = assess(clusters(rng, centres, [4, 1, 0, 3], 0.3), num_classes=4, names=NAMES)
    cup, mug, ball, box = report.classes
    assert (mug.examples, mug.correct, mug.loo_accuracy, mug.confused_with) == (1, None, None, None)
    assert mug.hint == "Mug: teach at least 2 examples to judge it (it has 1)"
    assert ball.loo_accuracy is None
    assert ball.hint == "Ball has no examples yet: teach at least 2 to judge it"
    assert report.confusion[1] == [0, 0, 0, 0]  # the lone Mug is in no cell
    assert cup.loo_accuracy == 1.0 and box.loo_accuracy == 1.0

    stricter = assess(clusters(rng, centres, [4, 1, 0, 3], 0.3), num_classes=4, names=NAMES, min_examples=4)
    assert stricter.classes[0].loo_accuracy == 1.0
    assert stricter.classes[3].hint == "Box: teach at least 4 examples to judge it (it has 3)"


def test_a_class_always_mistaken_says_so_with_true_counts():
    # Cup's three examples each sit nearer Mug's centroid than Cup's without themselves
    e = np.eye(8)
    examples = [
        (1, 0, e[0] + e[1]), (2, 0, e[2] + e[1]), (3, 0, e[3] + e[1]),
        (4, 1, e[1] + 0.1 * e[0]), (5, 1, e[1] + 0.1 * e[2]), (6, 1, e[1] + 0.1 * e[3]),
    ]
    report = assess(examples, num_classes=2, names=["Cup", "Mug"])
    cup, mug = report.classes
    assert (cup.correct, cup.loo_accuracy, cup.confused_with) == (0, 0.0, 1)
    assert cup.hint.startswith("Cup is never recognised: it is mistaken for Mug in 3 of 3 examples")
    assert mug.hint == "Mug: every example is recognised (all 3)"
    assert report.cells == {(0, 1): (1, 2, 3), (1, 1): (4, 5, 6)}


def test_mistakes_spread_over_classes_are_all_counted():
    e = np.eye(8)
    examples = [  # Cup: one right, one taken for Mug, one for Ball
        (10, 0, e[0]), (11, 0, e[0] + 0.01 * e[5]), (12, 0, e[1] + 0.1 * e[0]), (13, 0, e[2] + 0.1 * e[0]),
        (20, 1, e[1]), (21, 1, e[1]), (30, 2, e[2]), (31, 2, e[2]),
    ]
    report = assess(examples, num_classes=3, names=["Cup", "Mug", "Ball"])
    cup = report.classes[0]
    assert report.confusion[0] == [2, 1, 1]
    assert cup.confused_with == 1  # a tie goes to the lower class id
    assert cup.hint == ("Cup is mistaken for Mug in 1 of 4 examples, and for other classes in 1 more: "
                        "teach both from more sides")
    assert report.cells[(0, 0)] == (10, 11)
    assert report.cells[(0, 1)] == (12,) and report.cells[(0, 2)] == (13,)


def test_cells_list_the_ids_of_every_counted_example():
    rng = np.random.default_rng(7)
    shared = rng.standard_normal(32)
    centres = [shared, shared + 0.1 * rng.standard_normal(32), -shared, 10 * np.eye(32)[3]]
    examples = clusters(rng, centres, [9, 9, 4, 4], 1.0, start_id=1000)
    report = assess(examples, num_classes=4, names=NAMES)
    labels = np.array([c for _, c, _ in examples])
    answers = loo_answers(labels, np.stack([v.astype(np.float64) for _, _, v in examples]), 4)
    for (true, answered), ids in report.cells.items():
        assert report.confusion[true][answered] == len(ids) > 0
        assert list(ids) == [i for (i, c, _), a in zip(examples, answers) if c == true and a == answered]
    assert sorted(i for ids in report.cells.values() for i in ids) == [i for i, _, _ in examples]
    assert sum(map(sum, report.confusion)) == len(examples)


def test_zero_vectors_are_skipped_like_the_head_skips_them():
    e = np.eye(4, dtype=np.uint8)
    examples = [(1, 0, e[0]), (2, 0, np.zeros(4, np.uint8)), (3, 0, e[0]), (4, 1, e[1]), (5, 1, e[1])]
    report = assess(examples, num_classes=2, names=["Cup", "Mug"])
    assert report.skipped == (2,)
    assert report.classes[0].examples == 2 and report.classes[0].loo_accuracy == 1.0
    assert report.classes[0].hint == "Cup: both examples are recognised"
    assert all(2 not in ids for ids in report.cells.values())


def test_empty_input_gives_a_report_with_no_examples():
    report = assess([], num_classes=3, names=["Cup", "Mug", "Ball"])
    assert report.examples == 0 and report.cells == {} and report.skipped == ()
    assert report.confusion == [[0] * 3] * 3
    assert [q.loo_accuracy for q in report.classes] == [None, None, None]
    assert report.classes[0].hint == "Cup has no examples yet: teach at least 2 to judge it"


def test_examples_may_come_from_a_generator_with_mixed_dtypes():
    e = np.eye(4)
    rows = [(1, 0, e[0].astype(np.uint8)), (2, 0, (e[0] + 0.1 * e[2]).astype(np.float32)),
            (3, 1, e[1].astype(np.uint8)), (4, 1, (e[1] + 0.2 * e[3]).astype(np.float64))]
    report = assess((row for row in rows), num_classes=2, names=["Cup", "Mug"])
    assert report.confusion == [[2, 0], [0, 2]]
    assert report.cells == {(0, 0): (1, 2), (1, 1): (3, 4)}


# -- bad input -------------------------------------------------------------------------
def good(n=4, dim=6):
    return [(i, i % 2, np.arange(1, dim + 1, dtype=np.float32) + i) for i in range(n)]


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_nan_or_infinity_names_the_example(bad_value):
    examples = good()
    vector = examples[2][2].copy()
    vector[3] = bad_value
    examples[2] = (77, 0, vector)
    with pytest.raises(ValueError, match="example 77 .*NaN or infinity"):
        assess(examples, num_classes=2, names=["A", "B"])


def test_values_too_large_to_measure_name_the_example():
    examples = good() + [(8, 1, np.full(6, 1e200))]
    with pytest.raises(ValueError, match="example 8 .*too large"):
        assess(examples, num_classes=2, names=["A", "B"])


def test_mismatched_lengths_are_refused():
    examples = good() + [(9, 1, np.ones(7, np.float32))]
    with pytest.raises(ValueError, match="example 9 has 7 values, the examples before it have 6"):
        assess(examples, num_classes=2, names=["A", "B"])


@pytest.mark.parametrize("embedding", [np.ones((2, 3)), np.ones(0), np.float32(1.0)])
def test_embeddings_must_be_one_dimensional(embedding):
    with pytest.raises(ValueError, match="example 9 has an embedding of shape"):
        assess(good() + [(9, 1, embedding)], num_classes=2, names=["A", "B"])


@pytest.mark.parametrize("embedding", [np.array(["a", "b"]), np.array([True, False]), np.array([1j, 2j])])
def test_embeddings_must_be_real_numbers(embedding):
    with pytest.raises(ValueError, match="example 9 has an embedding of type"):
        assess([(9, 0, embedding)], num_classes=2, names=["A", "B"])


@pytest.mark.parametrize("class_id", [-1, 2, 1.0, True, "0", None])
def test_class_ids_outside_the_classes_are_refused(class_id):
    with pytest.raises(ValueError, match="classes run from 0 to 1"):
        assess(good() + [(9, class_id, np.ones(6))], num_classes=2, names=["A", "B"])


def test_numpy_class_ids_are_accepted():
    report = assess([(i, np.int64(c), v) for i, c, v in good()], num_classes=2, names=["A", "B"])
    assert report.examples == 4


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="example id 3 appears more than once"):
        assess(good() + [(3, 1, np.ones(6))], num_classes=2, names=["A", "B"])


@pytest.mark.parametrize("options, message", [
    (dict(num_classes=0, names=[]), "num_classes must be a positive whole number"),
    (dict(num_classes=2, names=["A"]), "give one name per class"),
    (dict(num_classes=2, names="AB"), "give one name per class"),
    (dict(num_classes=2, names=["A", "B"], min_examples=1), "min_examples must be a whole number of at least 2"),
])
def test_bad_arguments_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        assess(good(), **options)


# -- real embeddings ---------------------------------------------------------------------
def test_real_embeddings_of_three_coil100_objects(coil100, embedder):
    from device.camera import load_rgb

    objects = sorted(p for p in coil100.iterdir() if p.is_dir())[:3]
    examples = []
    for class_id, folder in enumerate(objects):
        photos = sorted(folder.glob("*.png"), key=lambda p: int(p.stem.rsplit("_", 1)[-1]))[::15][:5]
        for photo in photos:
            examples.append((f"{folder.name}/{photo.name}", class_id, np.array(embedder.embed(load_rgb(photo)))))
    assert len(examples) == 15
    names = [folder.name for folder in objects]
    report = assess(examples, num_classes=3, names=names)
    labels = np.array([c for _, c, _ in examples])
    answers = loo_answers(labels, np.stack([v.astype(np.float64) for _, _, v in examples]), 3)
    dim = examples[0][2].size
    assert answers.tolist() == [head_loo_answer(examples, i, 3, dim) for i in range(len(examples))]
    assert [q.examples for q in report.classes] == [5, 5, 5]
    for quality in report.classes:  # distinct COIL objects: mostly recognised
        assert quality.loo_accuracy >= 0.6, quality.hint
        assert quality.hint.startswith(quality.name)
