"""How well the head knows each class: leave-one-out accuracy, confusions and hints.

Pure numpy, no I/O.  For every stored example we ask: *what would the head answer
for this example if it had been taught everything except this example?*  Counting
those answers per class gives each class's leave-one-out (LOO) accuracy, the class
it is most often mistaken for, a confusion matrix whose cells list the example ids
involved, and a hint in plain words for whoever is teaching.

The maths follows :class:`device.head.NearestCentroidHead` step by step, so the LOO
answer is the head's answer: every embedding is L2-normalised to float32 and rounded
to the head's fixed point (:data:`device.head.FIXED_POINT_SCALE`), a class's sum is
the exact integer sum of those vectors, and a centroid is a sum divided by its
length.  Leaving example ``x`` of class ``c`` out only changes class ``c``: its sum
becomes ``sum_c - fixed(x)``, whose length follows from ``|sum_c|^2 -
2 fixed(x).sum_c + |fixed(x)|^2``, so all answers come from one ``N x C`` matrix
product plus O(N*D) per-example terms: O(N*C*D) in all, no head rebuilt per example.
Scores are computed in float64 where the head uses float32, so the two can only
disagree on a tie within float32 rounding (about 1e-7).

All-zero embeddings are skipped, as the head skips them (they teach nothing); their
ids are listed in :attr:`QualityReport.skipped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Hashable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .head import FIXED_POINT_SCALE

ExampleId = Hashable
Example = Tuple[ExampleId, int, np.ndarray]

# the LOO answer when, without the example, no class has any example left ("nothing learned")
NO_ANSWER = -1


@dataclass(frozen=True)
class ClassQuality:
    """What leave-one-out says about one class.

    ``examples`` counts the usable (non-zero) examples.  ``correct`` and
    ``loo_accuracy`` are ``None`` when the class has fewer than ``min_examples``
    examples: there is too little to judge.  ``confused_with`` is the class its
    examples are most often mistaken for (the lowest class id on a tie), ``None``
    when none is mistaken.  ``hint`` says in plain words what to do.
    """

    class_id: int
    name: str
    examples: int
    correct: Optional[int]
    loo_accuracy: Optional[float]
    confused_with: Optional[int]
    hint: str


@dataclass(frozen=True)
class QualityReport:
    """Leave-one-out quality of a whole library.

    ``confusion[true][answered]`` counts the examples of class ``true`` that the head,
    taught without them, answers as ``answered``; ``cells[(true, answered)]`` lists
    their ids in input order (only non-empty cells are present).  Only examples of
    judged classes (at least ``min_examples`` examples) are counted: the lone example
    of a class can never be recognised without itself, which says nothing about it.
    """

    classes: Tuple[ClassQuality, ...]
    confusion: List[List[int]]
    cells: Dict[Tuple[int, int], Tuple[ExampleId, ...]] = field(default_factory=dict)
    skipped: Tuple[ExampleId, ...] = ()

    @property
    def examples(self) -> int:
        """How many usable examples were assessed."""
        return sum(quality.examples for quality in self.classes)


def assess(
    examples: Iterable[Example],
    *,
    num_classes: int,
    names: Sequence[str],
    min_examples: int = 2,
) -> QualityReport:
    """Leave-one-out quality per class of the head taught ``examples``.

    :param examples: ``(example_id, class_id, embedding)`` triples (any iterable, such
        as :meth:`device.library.ExampleLibrary.embeddings`); an embedding is a
        1-D numeric array of the model's length (uint8 as the model gives it, float32,
        ...); ids must be distinct.
    :param num_classes: number of class slots; class ids run from 0 to ``num_classes - 1``.
    :param names: one name per class, used in the hints.
    :param min_examples: fewest examples a class needs to be judged (at least 2: a
        single example left out leaves its class with nothing to be recognised by).
    :raises ValueError: naming the example or argument that is wrong.
    """
    _check_arguments(num_classes, names, min_examples)
    ids, labels, vectors, skipped = _collect(examples, num_classes)
    answers = loo_answers(labels, vectors, num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    judged = counts >= min_examples
    confusion, cells = _confusion(ids, labels, answers, judged, num_classes)
    classes = tuple(
        _class_quality(c, names, int(counts[c]), confusion, bool(judged[c]), min_examples)
        for c in range(num_classes)
    )
    return QualityReport(classes, confusion, cells, tuple(skipped))


def loo_answers(labels: np.ndarray, vectors: np.ndarray, num_classes: int) -> np.ndarray:
    """The class the head answers for each example when taught all the others.

    ``labels`` is an int array of ``N`` class ids, ``vectors`` an ``N x D`` array of
    non-zero, finite embeddings.  Returns ``N`` class ids, :data:`NO_ANSWER` where no
    class would be left with an example.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    units = _units(np.asarray(vectors, dtype=np.float64))
    fixed = _fixed(units)
    sums, counts, cross = _class_sums(labels, fixed, num_classes)
    dots = units @ sums.T  # the one N x C x D product
    rows = np.arange(len(labels))
    own_dots = dots[rows, labels] - _row_dots(units, fixed)
    scores = _full_scores(dots, sums, counts)
    scores[rows, labels] = _own_scores(labels, own_dots, cross, fixed, sums, counts)
    answers = np.argmax(scores, axis=1)  # first best wins, as in the head
    answers[np.isneginf(scores[rows, answers])] = NO_ANSWER
    return answers


# -- the maths -------------------------------------------------------------------------
def _units(vectors: np.ndarray) -> np.ndarray:
    """Each row L2-normalised to float32, as the head normalises what it is taught.

    Like the head, rows are multiplied by the inverse of their length and rounded to
    float32; the values are handed back in float64 (exactly) for the sums to come.
    """
    inverse = 1.0 / np.sqrt(_row_dots(vectors, vectors))
    units = np.empty(vectors.shape, dtype=np.float32)
    np.multiply(vectors, inverse[:, None], out=units, casting="unsafe")
    return units.astype(np.float64)


def _fixed(units: np.ndarray) -> np.ndarray:
    """The head's fixed-point form of each unit vector: whole numbers, held in float64."""
    fixed = units * FIXED_POINT_SCALE
    return np.rint(fixed, out=fixed)


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row by row dot products of two ``N x D`` float64 arrays."""
    return np.einsum("nd,nd->n", a, b)


def _class_sums(labels: np.ndarray, fixed: np.ndarray, num_classes: int):
    """Per class the exact sum of its fixed-point vectors, its count, and each example's
    dot product with its own class's sum (``C x D``, ``C`` and ``N`` arrays).

    The sums are whole numbers well below 2**53, so float64 holds them exactly.
    """
    sums = np.zeros((num_classes, fixed.shape[1]), dtype=np.float64)
    cross = np.zeros(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        rows = labels == c
        block = fixed[rows]
        sums[c] = block.sum(axis=0)
        cross[rows] = block @ sums[c]
    return sums, np.bincount(labels, minlength=num_classes), cross


def _full_scores(dots: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cosine similarity of every example to every full class centroid (``N x C``).

    Classes without examples cannot be answered (``-inf``); a taught class whose sum
    is zero has a zero centroid and scores 0, as in the head.
    """
    norms = np.linalg.norm(sums, axis=1)
    scores = dots / np.where(norms > 0, norms, 1.0)
    scores[:, counts == 0] = -np.inf
    return scores


def _own_scores(labels, own_dots, cross, fixed, sums, counts) -> np.ndarray:
    """Similarity of each example to its own class's centroid taught without it.

    ``own_dots`` is each example's dot product with its class's sum less itself,
    ``cross`` its dot product with its class's full sum.  The length of the sum less
    the example comes from ``|sum_c|^2 - 2 f.sum_c + |f|^2``; as the vectors are
    integers, a sum left non-zero has ``|v|^2 >= 1``, so anything under 1/2 is a zero
    centroid (score 0, as in the head).  A class left with no example scores ``-inf``.
    """
    squares = np.einsum("cd,cd->c", sums, sums)
    left = squares[labels] - 2 * cross + _row_dots(fixed, fixed)
    left_norms = np.sqrt(np.where(left >= 0.5, left, 1.0))
    scores = np.where(left >= 0.5, own_dots / left_norms, 0.0)
    scores[counts[labels] <= 1] = -np.inf
    return scores


# -- checking and gathering the input --------------------------------------------------
def _check_arguments(num_classes: int, names: Sequence[str], min_examples: int) -> None:
    """Raise ValueError unless the class count, names and ``min_examples`` fit together."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive whole number, not {num_classes!r}")
    if isinstance(names, str) or len(names) != num_classes:
        raise ValueError(f"give one name per class: got {names!r} for {num_classes} classes")
    if isinstance(min_examples, bool) or not isinstance(min_examples, (int, np.integer)) or min_examples < 2:
        raise ValueError(
            f"min_examples must be a whole number of at least 2, not {min_examples!r}: "
            "a class's only example left out leaves nothing to recognise it by"
        )


def _collect(examples: Iterable[Example], num_classes: int):
    """Check every example and stack the usable ones.

    Returns ``(ids, labels, vectors, skipped)``: ids and an int64 label array of the
    non-zero examples, their embeddings as an ``N x D`` float64 array (exact for the
    model's uint8 and float32 values), and the ids of all-zero embeddings.
    """
    ids: List[ExampleId] = []
    labels: List[int] = []
    rows: List[np.ndarray] = []
    seen = set()
    dim: Optional[int] = None
    for example_id, class_id, embedding in examples:
        if example_id in seen:
            raise ValueError(f"example id {example_id!r} appears more than once; ids must be distinct")
        seen.add(example_id)
        _check_class_id(example_id, class_id, num_classes)
        vector = _check_vector(example_id, embedding, dim)
        dim = vector.size
        ids.append(example_id)
        labels.append(int(class_id))
        rows.append(vector)
    if not rows:
        return [], np.zeros(0, dtype=np.int64), np.zeros((0, 0)), []
    # numpy promotes mixed rows without loss (uint8 with float32 gives float32); float64
    # then holds the model's uint8 and float32 values exactly
    vectors = np.stack(rows).astype(np.float64, copy=False)
    labels_array = np.asarray(labels, dtype=np.int64)
    norms = np.sqrt(_row_dots(vectors, vectors))
    _check_finite(ids, norms)
    usable = norms >= 1e-12  # the head's own "nothing to learn" bound
    if usable.all():  # the usual case: no 40 MB copy
        return ids, labels_array, vectors, []
    skipped = [i for i, ok in zip(ids, usable) if not ok]
    kept = [i for i, ok in zip(ids, usable) if ok]
    return kept, labels_array[usable], vectors[usable], skipped


def _check_class_id(example_id: ExampleId, class_id: object, num_classes: int) -> None:
    if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) \
            or not 0 <= class_id < num_classes:
        raise ValueError(
            f"example {example_id!r} has class {class_id!r}; classes run from 0 to {num_classes - 1}"
        )


def _check_vector(example_id: ExampleId, embedding: object, dim: Optional[int]) -> np.ndarray:
    """The embedding as a numeric 1-D array, or ValueError naming the example."""
    vector = np.asarray(embedding)
    if vector.dtype.kind not in "uif":  # unsigned, signed, floating (not bool or complex)
        raise ValueError(f"example {example_id!r} has an embedding of type {vector.dtype}; give numbers")
    if vector.ndim != 1 or vector.size == 0:
        raise ValueError(f"example {example_id!r} has an embedding of shape {vector.shape}; give a 1-D array")
    if dim is not None and vector.size != dim:
        raise ValueError(
            f"example {example_id!r} has {vector.size} values, the examples before it have {dim}: "
            "all embeddings must come from the same model"
        )
    return vector


def _check_finite(ids: Sequence[ExampleId], norms: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(norms))
    if bad.size:
        raise ValueError(
            f"example {ids[bad[0]]!r} has an embedding with NaN or infinity (or values too large "
            "to measure); re-embed or delete it"
        )


# -- counting and wording --------------------------------------------------------------
def _confusion(ids, labels, answers, judged, num_classes):
    """The confusion matrix and its cells' example ids, over examples of judged classes."""
    confusion = [[0] * num_classes for _ in range(num_classes)]
    cells: Dict[Tuple[int, int], List[ExampleId]] = {}
    for example_id, true, answered in zip(ids, labels.tolist(), answers.tolist()):
        if not judged[true] or answered == NO_ANSWER:
            continue
        confusion[true][answered] += 1
        cells.setdefault((true, answered), []).append(example_id)
    return confusion, {cell: tuple(members) for cell, members in cells.items()}


def _class_quality(class_id, names, count, confusion, judged, min_examples) -> ClassQuality:
    """One class's figures and hint, from its row of the confusion matrix."""
    name = str(names[class_id])
    if not judged:
        return ClassQuality(class_id, name, count, None, None, None, _hint_too_few(name, count, min_examples))
    row = confusion[class_id]
    correct = row[class_id]
    mistakes = [(n, other) for other, n in enumerate(row) if other != class_id and n]
    confused_with = max(mistakes, key=lambda m: (m[0], -m[1]))[1] if mistakes else None
    hint = _hint(name, count, correct, row, confused_with, names)
    return ClassQuality(class_id, name, count, correct, correct / count, confused_with, hint)


def _examples(n: int) -> str:
    return f"{n} example" if n == 1 else f"{n} examples"


def _hint_too_few(name: str, count: int, min_examples: int) -> str:
    if count == 0:
        return f"{name} has no examples yet: teach at least {min_examples} to judge it"
    return f"{name}: teach at least {_examples(min_examples)} to judge it (it has {count})"


def _hint(name, count, correct, row, confused_with, names) -> str:
    """Plain words for a teacher or a child; every number is a true count."""
    if confused_with is None:
        if count == 2:
            return f"{name}: both examples are recognised"
        return f"{name}: every example is recognised (all {count})"
    other = str(names[confused_with])
    worst = row[confused_with]
    rest = count - correct - worst
    also = f", and for other classes in {rest} more" if rest else ""
    if correct == 0:
        return (f"{name} is never recognised: it is mistaken for {other} in {worst} of {count} "
                f"examples{also}; check that these photos really show {name}, then teach it "
                f"again with clearer, different views")
    return (f"{name} is mistaken for {other} in {worst} of {count} examples{also}: "
            f"teach both from more sides")


if __name__ == "__main__":  # a benchmark: python -m device.quality [examples classes dims]
    import sys
    import time

    n, c, d = (int(a) for a in (sys.argv[1:4] if len(sys.argv) >= 4 else (5000, 16, 1024)))
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 256, (c, d))
    data = [(i, i % c, np.clip(centres[i % c] + rng.integers(-60, 60, d), 0, 255).astype(np.uint8))
            for i in range(n)]
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        result = assess(data, num_classes=c, names=[f"Class {k + 1}" for k in range(c)])
        timings.append(time.perf_counter() - started)
    print(f"assess: {n} examples x {c} classes x {d} dims (uint8): best {min(timings) * 1000:.0f} ms, "
          f"median {sorted(timings)[2] * 1000:.0f} ms; LOO accuracy of class 1: {result.classes[0].loo_accuracy}")
