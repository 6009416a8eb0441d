"""Few-shot evaluation of the appliance's own pipeline on a class-per-folder data set.

Exactly what the box does: a feature *source* (``picture``: :func:`~device.embedder.prepare_frame`
+ the MobileNet embedder; ``hand``, ``face``, ``pose``: landmarks turned into shape
features, see :mod:`device.sources`) + the real head, taught ``shots`` examples per
class and asked about the other images.

Protocols:

- ``random`` draws the examples from all of a class's images;
- ``arc`` takes ``shots`` consecutive images in natural filename order (as when someone
  holds an object in a few similar poses and the box must recognise it from other sides);
- ``person`` splits by the people in the pictures: each split picks ``teach_people`` of
  them at random (default: half), draws the examples from their images only and asks
  about every image of the *other* people.  The person id comes from the file name: by
  default the part before the first ``_`` or ``-`` (``s03_happy.png`` -> ``s03``), else
  the first group (or the whole match) of ``person_pattern``.  A data set whose names
  carry no id, or only one person's, is refused (:class:`DataError`).  ``random`` and
  ``arc`` mix the same person into teaching and asking, which rewards recognising the
  person (their face, hand, clothes, room) rather than the expression or gesture.

Images the source finds nothing in (no hand, face or person: ``embed`` returns ``None``):

- every image is embedded once (``reset`` before each: images are unrelated) and its
  features, or ``None``, cached; ``fps`` is images per second through the source,
  detection included (file decoding excluded), ``no_detection_rate`` the share of the
  embedded images with nothing found (``images`` were embedded: only the classes some
  split drew);
- an image with no detection is never taught: a draw takes its ``shots`` examples from
  the class's images *with* a detection (``arc``: consecutive among those).  A class with
  fewer teaches what it has (counted in ``short_draws``); a class with none in a draw (or,
  person protocol, none of a teaching person) is not taught in that split
  (``classes_untaught``: class -> splits, also logged) and its queries are all wrong;
- a query with no detection is a wrong answer in ``accuracy`` (the box answers "no hand",
  not the class) and in ``open_set_accuracy`` (even for a never-taught class: the box did
  not see the thing); ``accuracy_detected`` is the accuracy over the queries with a
  detection (``queries_detected`` of them).  Novelty (AUROC) and calibration figures use
  the images with a detection only: the others get no answer to score.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from .camera import list_images, load_rgb, natural_key
from .errors import DataError
from .head import MAX_CLASSES, MIN_CLASSES, NearestCentroidHead, STATUS_OK

log = logging.getLogger(__name__)
PROTOCOLS = ("random", "arc", "person")
DEFAULT_PERSON_PATTERN = r"^([^_-]+)[_-]"
DEFAULT_PERSON_RULE = "the part of the file name before the first '_' or '-'"


def load_dataset(root) -> Dict[str, List[Path]]:
    """``{class name: image paths in natural order}`` for every sub-folder holding images."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {str(root)!r} does not exist")
    classes = {}
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
        images = list_images(folder)
        if images:
            classes[folder.name] = images
    if len(classes) < MIN_CLASSES:
        raise DataError(f"data folder {str(root)!r} needs at least {MIN_CLASSES} sub-folders of images "
                        f"(one per class); found {len(classes)}")
    return classes


# -- people ---------------------------------------------------------------------------------------


def _compile_person_pattern(pattern: Optional[str]) -> "re.Pattern[str]":
    try:
        return re.compile(pattern or DEFAULT_PERSON_PATTERN)
    except re.error as exc:
        raise DataError(f"--person-pattern '{pattern}' is not a regular expression ({exc})") from None


def person_of(file_name: str, pattern: Optional[str] = None) -> Optional[str]:
    """The person id in ``file_name`` (``None`` when it carries none).

    Default rule: the part before the first ``_`` or ``-`` (``s03_happy.png`` -> ``s03``,
    ``person7-0042.jpg`` -> ``person7``; ``a7Bx.jpg`` -> ``None``).  With ``pattern`` (a
    regular expression searched in the file name): its first group, or the whole match.
    """
    found = _compile_person_pattern(pattern).search(file_name)
    if found is None:
        return None
    person = found.group(1) if found.re.groups else found.group(0)
    return person or None


def _rule(pattern: Optional[str]) -> str:
    return f"--person-pattern '{pattern}'" if pattern else f"the default rule ({DEFAULT_PERSON_RULE})"


def person_ids(dataset: Dict[str, List[Path]], pattern: Optional[str] = None) -> Dict[str, List[str]]:
    """``{class name: the person id of each image}``; :class:`DataError` when an image has none or
    fewer than 2 people are found."""
    compiled = _compile_person_pattern(pattern)
    ids, missing, total = {}, [], 0
    for name, paths in dataset.items():
        ids[name] = []
        for path in paths:
            total += 1
            person = person_of(path.name, compiled.pattern)
            if person is None:
                missing.append(f"{name}/{path.name}")
            ids[name].append(person)
    fix = ("name the files after the person first, e.g. s03_happy.png or person7-0042.jpg, or give "
           "--person-pattern REGEX (its first group, or the whole match, is the person id)")
    if missing:
        raise DataError(f"--protocol person needs a person id in every file name: {len(missing)} of {total} "
                        f"images have none by {_rule(pattern)}, e.g. {', '.join(missing[:3])}. To fix: {fix}")
    people = sorted({p for persons in ids.values() for p in persons}, key=natural_key)
    if len(people) < 2:
        raise DataError(f"--protocol person needs images of at least 2 people; by {_rule(pattern)} every file "
                        f"name gives the person {people[0]!r}. To fix: {fix}")
    if not any(len({n for n, persons in ids.items() if p in persons}) > 1 for p in people):
        raise DataError(f"--protocol person needs people seen in more than one class, but by {_rule(pattern)} "
                        f"every id ({', '.join(people[:3])}, ...) occurs in one class only: those are not person "
                        f"ids (a class is then only taught or only asked). To fix: {fix}")
    return ids


# -- features ------------------------------------------------------------------------------------


class EmbeddingCache:
    """Embeds each image once, lazily, with the source's own preprocessing (``None`` kept as not found).

    ``cache.features(name)`` gives ``(vectors, found)``: one row per image of the class
    (zeros where nothing was found) and the boolean mask of the images with a
    detection; ``cache[name]`` the rows of the images with a detection (every image for
    the picture source).
    """

    def __init__(self, source, dataset: Dict[str, List[Path]]) -> None:
        self.source = source
        self.dataset = dataset
        self._cache: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        self.images = 0
        self.missed = 0
        self.seconds = 0.0

    def features(self, name: str) -> Tuple[np.ndarray, np.ndarray]:
        if name not in self._cache:
            reset = getattr(self.source, "reset", None)
            rows: List[Optional[np.ndarray]] = []
            for path in self.dataset[name]:
                try:
                    frame = load_rgb(path)
                except OSError as exc:
                    raise DataError(f"cannot read image {str(path)!r}: {exc}") from None
                started = time.perf_counter()
                if reset is not None:
                    reset()  # unrelated images: no tracking from the last one
                vector = self.source.embed(frame)
                self.seconds += time.perf_counter() - started
                rows.append(None if vector is None else np.array(vector, dtype=np.float32))
            found = np.array([row is not None for row in rows], dtype=bool)
            dim = next((row.size for row in rows if row is not None), int(self.source.dim))
            vectors = np.zeros((len(rows), dim), dtype=np.float32)
            for index, row in enumerate(rows):
                if row is not None:
                    vectors[index] = row.reshape(-1)
            self.images += len(rows)
            self.missed += int(np.sum(~found))
            self._cache[name] = (vectors, found)
        return self._cache[name]

    def __getitem__(self, name: str) -> np.ndarray:
        vectors, found = self.features(name)
        return vectors[found]

    def figures(self) -> dict:
        return {"images": self.images,
                "no_detection_rate": round(self.missed / self.images, 6) if self.images else 0.0,
                "fps": round(self.images / self.seconds, 2) if self.seconds > 0 else None}


def draw(found: np.ndarray, shots: int, protocol: str, rng: np.random.Generator,
         teaching: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(support, queries)``: image indices of one class taught and asked in one split.

    The support holds up to ``shots`` images with a detection (``found``); ``teaching``
    (person protocol) marks the images of the teaching people: the support comes from
    them and the queries are every other image, else the queries are every image not taught.
    """
    n = len(found)
    pool = np.flatnonzero(found if teaching is None else found & teaching)
    take = min(shots, len(pool))
    if protocol == "arc":
        start = int(rng.integers(0, len(pool) - take + 1))
        support = pool[start:start + take]
    elif take:
        support = np.sort(rng.choice(pool, size=take, replace=False))
    else:
        support = pool[:0]
    if teaching is not None:
        return support, np.flatnonzero(~teaching)
    return support, np.setdiff1d(np.arange(n), support)


HEADS = ("centroid", "metric", "knn")


def _describe(source) -> dict:
    try:
        return dict(source.describe())
    except Exception as exc:  # a figure for the report, never a reason to fail the evaluation
        log.warning("the source cannot describe itself: %s", exc)
        return {}


def evaluate(source, data_dir, *, shots: int, ways: Optional[int] = None, protocol: str = "random",
             splits: int = 10, seed: int = 0, head: str = "metric", unknown_classes: int = 0,
             person_pattern: Optional[str] = None, teach_people: Optional[int] = None,
             record: Optional[list] = None, sensitivity: Optional[float] = None, **head_options) -> dict:
    """Mean and spread of few-shot accuracy over ``splits`` random draws.

    ``source``: what turns a frame into features (``embed``, ``describe``, ``dim``; ``reset``
    and ``name`` when it has them; the picture :class:`~device.embedder.Embedder` is one).
    ``head``: ``centroid`` (the live head, taught one example at a time), ``metric`` or
    ``knn`` (:mod:`device.metric`, fitted to the examples; "unknown" counts as wrong).
    ``sensitivity``: the metric head's (0: it never answers "unknown", a closed-set figure).
    ``unknown_classes``: that many more classes per split are never taught; their images
    are asked too and are right only when answered "unknown" (open set).  Thresholds
    never see them.  ``protocol``, ``person_pattern`` and ``teach_people``: see the module.
    ``record``: when a list, each split appends ``{"taught": [paths], "asked": [paths],
    "strangers": [paths]}`` (for tests and for looking into a result).
    """
    if head not in HEADS:
        raise DataError(f"head {head!r} is not one of {', '.join(HEADS)}")
    if protocol not in PROTOCOLS:
        raise DataError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if shots < 1 or splits < 1:
        raise DataError(f"shots ({shots}) and splits ({splits}) must be at least 1")
    if protocol != "person" and (person_pattern is not None or teach_people is not None):
        raise DataError("--person-pattern and --teach-people go with --protocol person")
    dataset = load_dataset(data_dir)
    names = list(dataset)
    ways = len(names) if ways is None else ways
    if not MIN_CLASSES <= ways <= min(len(names), MAX_CLASSES):
        raise DataError(f"ways = {ways}: the data has {len(names)} classes and the head takes "
                        f"{MIN_CLASSES} to {MAX_CLASSES}")
    if unknown_classes < 0 or ways + unknown_classes > len(names):
        raise DataError(f"ways ({ways}) + unknown classes ({unknown_classes}) must be at most the "
                        f"{len(names)} classes of the data")
    persons: Dict[str, np.ndarray] = {}
    people: List[str] = []
    if protocol == "person":
        persons = {name: np.array(ids, dtype=object) for name, ids in person_ids(dataset, person_pattern).items()}
        people = sorted({p for ids in persons.values() for p in ids}, key=natural_key)
        teach_people = max(1, len(people) // 2) if teach_people is None else teach_people
        if not 1 <= teach_people < len(people):
            raise DataError(f"teach people ({teach_people}) must be from 1 to {len(people) - 1}: the data has "
                            f"{len(people)} people and the others are asked")
    else:
        small = [n for n in names if len(dataset[n]) <= shots]
        if small:
            raise DataError(f"classes {', '.join(small[:5])} have no more than {shots} images: "
                            "nothing left to test")
    facts = _describe(source)
    dim = int(getattr(source, "dim", None) or facts.get("dim"))
    cache = EmbeddingCache(source, dataset)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    accuracies, detected_accuracies, open_set = [], [], OpenSet()
    queries = queries_detected = short_draws = empty_splits = 0
    untaught: Counter = Counter()
    for _ in range(splits):
        drawn = [names[i] for i in rng.choice(len(names), size=ways + unknown_classes, replace=False)]
        chosen, strangers = sorted(drawn[:ways], key=names.index), drawn[ways:]
        teachers: Set[str] = set()
        if protocol == "person":
            teachers = {people[i] for i in rng.choice(len(people), size=teach_people, replace=False)}
        live = NearestCentroidHead(dim, ways, **head_options)
        taught, labels, truth, asked, asked_found = [], [], [], [], []
        trace = {"taught": [], "asked": [], "strangers": []}
        for class_id, name in enumerate(chosen):
            vectors, found = cache.features(name)
            teaching = np.isin(persons[name], list(teachers)) if protocol == "person" else None
            support, tests = draw(found, shots, protocol, rng, teaching)
            if not len(support):
                untaught[name] += 1
            elif len(support) < shots:
                short_draws += 1
            for index in support:
                live.teach(class_id, vectors[index])
                taught.append(vectors[index])
                labels.append(class_id)
            truth.extend([class_id] * len(tests))
            asked.append(vectors[tests])
            asked_found.append(found[tests])
            trace["taught"].extend(dataset[name][i] for i in support)
            trace["asked"].extend(dataset[name][i] for i in tests)
        strange_vectors, strange_found = [], []
        for name in strangers:
            vectors, found = cache.features(name)
            keep = ~np.isin(persons[name], list(teachers)) if protocol == "person" else np.ones(len(found), bool)
            strange_vectors.append(vectors[keep])
            strange_found.append(found[keep])
            trace["strangers"].extend(p for p, k in zip(dataset[name], keep) if k)
        if record is not None:
            record.append(trace)
        if not truth:
            empty_splits += 1
            continue
        truth_ids = np.array(truth)
        asked_vectors, asked_mask = np.concatenate(asked), np.concatenate(asked_found)
        if unknown_classes or head != "centroid":
            fitted = (_fit(head, np.stack(taught), np.array(labels), ways, sensitivity=sensitivity, **head_options)
                      if taught else None)
            strange = (np.concatenate(strange_vectors), np.concatenate(strange_found)) if strangers else None
            right = open_set.add(fitted, asked_vectors, truth_ids, asked_mask, strange)
        else:
            right = 0
            for class_id, embedding in zip(truth_ids[asked_mask], asked_vectors[asked_mask]):
                prediction = live.predict(embedding)
                right += prediction.status == STATUS_OK and prediction.class_id == class_id
        accuracies.append(right / len(truth_ids))
        if asked_mask.any():
            detected_accuracies.append(right / int(asked_mask.sum()))
        queries += len(truth_ids)
        queries_detected += int(asked_mask.sum())
    if not accuracies:
        raise DataError(f"no split had anything to ask: every image of the {splits} splits' classes is of a "
                        "teaching person; use more people or --teach-people fewer")
    if untaught:
        log.warning("classes not taught in some splits (no image with a detection%s), their queries counted "
                    "wrong: %s", " from a teaching person" if protocol == "person" else "",
                    ", ".join(f"{n} ({k})" for n, k in untaught.most_common(5)))
    result = {
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "split_accuracies": [round(a, 6) for a in accuracies],
        "accuracy_detected": round(float(np.mean(detected_accuracies)), 6) if detected_accuracies else None,
        "shots": shots, "ways": ways, "protocol": protocol, "splits": splits, "seed": seed, "head": head,
        "unknown_classes": unknown_classes, **open_set.figures(),
        "queries": queries, "queries_detected": queries_detected, "classes_available": len(names),
        "source": getattr(source, "name", None) or facts.get("source") or "picture",
        "model": facts.get("model") or getattr(getattr(source, "model_path", None), "name", None),
        "dim": dim, **cache.figures(),
        "short_draws": short_draws, "classes_untaught": dict(untaught),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if protocol == "person":
        result.update(people=len(people), teach_people=teach_people, person_pattern=person_pattern,
                      splits_without_queries=empty_splits)
    return result


def _fit(head: str, vectors: np.ndarray, labels: np.ndarray, num_classes: int, *,
         sensitivity: Optional[float] = None, **head_options):
    from . import metric

    if head == "knn":
        return metric.fit_neighbours(vectors, labels, num_classes)
    if head == "centroid":
        return metric.fit_cosine(vectors, labels, num_classes, threshold=head_options.get("threshold"))
    if sensitivity is None:
        return metric.fit(vectors, labels, num_classes)
    return metric.fit(vectors, labels, num_classes, sensitivity=sensitivity)


CONFIDENT = 0.9  # confident_accuracy: the share right among the answers given at least this sure


class OpenSet:
    """Open-set figures over every split: unknown AUROC, open-set accuracy and calibration.

    Calibration counts every answer that names a class, to a taught class's query or to
    a never-taught one (always wrong): ``calibration_error`` (expected, 10 bins) and
    ``confident_accuracy``, the share right of the ``confident_answers`` given with
    confidence >= 0.9.
    """

    BINS = 10

    def __init__(self) -> None:
        self.known_novelty: List[float] = []
        self.strange_novelty: List[float] = []
        self.right = 0
        self.asked = 0
        self.confidence: List[float] = []
        self.correct: List[bool] = []

    def add(self, fitted, taught_queries, truth, found=None, strange=None) -> int:
        """Ask ``fitted`` the taught classes' queries (and the strangers'); how many taught ones were right.

        ``found``: which queries have a detection (default: all); the others are asked but
        never right, and give no novelty or confidence.  ``strange``: the never-taught
        classes' ``(vectors, found)``, or ``None``.  ``fitted`` ``None`` (nothing taught
        in the split) names nothing.
        """
        found = np.ones(len(truth), dtype=bool) if found is None else np.asarray(found, dtype=bool)
        self.asked += len(truth)
        right = 0
        if fitted is not None and found.any():
            known = fitted.assess(taught_queries[found])
            hits = known.class_ids == truth[found]
            named = known.class_ids >= 0
            self.known_novelty.extend(np.nan_to_num(known.novelty, nan=-np.inf).tolist())
            self.confidence.extend(known.confidence[named].tolist())
            self.correct.extend(hits[named].tolist())
            right = int(hits.sum())
            self.right += right
        if strange is not None:
            vectors, seen = strange
            seen = np.asarray(seen, dtype=bool)
            self.asked += len(seen)
            if fitted is None:
                self.right += int(seen.sum())  # seen, and nothing to name it after
            elif seen.any():
                other = fitted.assess(vectors[seen])
                self.strange_novelty.extend(np.nan_to_num(other.novelty, nan=-np.inf).tolist())
                named = other.class_ids >= 0
                self.confidence.extend(other.confidence[named].tolist())  # naming a thing never taught is wrong
                self.correct.extend([False] * int(named.sum()))
                self.right += int(np.sum(~named))
        return right

    def figures(self) -> dict:
        if not self.asked:
            return {}
        confidence, correct = np.array(self.confidence), np.array(self.correct, dtype=bool)
        sure = confidence >= CONFIDENT
        out = {"open_set_accuracy": round(self.right / self.asked, 6),
               "calibration_error": round(calibration_error(confidence, correct, self.BINS), 6),
               "confident_answers": int(sure.sum()),
               "confident_accuracy": round(float(correct[sure].mean()), 6) if sure.any() else None}
        if self.strange_novelty:
            out["unknown_auroc"] = round(auroc(np.array(self.known_novelty), np.array(self.strange_novelty)), 6)
        return out


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half (Mann-Whitney); NaN when a side is empty."""
    if not len(positive) or not len(negative):
        return float("nan")
    both = np.concatenate([positive, negative])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(len(both))
    _, first, counts = np.unique(both[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts - 1) / 2.0 + 1, counts)  # average ranks of ties
    return float((ranks[:len(positive)].sum() - len(positive) * (len(positive) + 1) / 2)
                 / (len(positive) * len(negative)))


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """Expected calibration error: |accuracy - confidence| per confidence bin, weighted by its share."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)
