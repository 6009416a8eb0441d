"""Few-shot evaluation of the appliance's own pipeline on a class-per-folder data set.

Exactly what the box does: :func:`~device.embedder.prepare_frame` + the embedder +
the real head, taught ``shots`` examples per class and asked about every other image.

Protocols: ``random`` draws the examples from all of a class's images; ``arc`` takes
``shots`` consecutive images in natural filename order (as when someone holds an
object in a few similar poses and the box must recognise it from other sides).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .camera import list_images, load_rgb, natural_key
from .errors import DataError
from .head import MAX_CLASSES, MIN_CLASSES, NearestCentroidHead, STATUS_OK

log = logging.getLogger(__name__)
PROTOCOLS = ("random", "arc")


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


class EmbeddingCache:
    """Embeds each image once, lazily, with the appliance's own preprocessing."""

    def __init__(self, embedder, dataset: Dict[str, List[Path]]) -> None:
        self.embedder = embedder
        self.dataset = dataset
        self._cache: Dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            rows = []
            for path in self.dataset[name]:
                try:
                    frame = load_rgb(path)
                except OSError as exc:
                    raise DataError(f"cannot read image {str(path)!r}: {exc}") from None
                rows.append(self.embedder.embed(frame).copy())
            self._cache[name] = np.stack(rows)
        return self._cache[name]


def support_indices(n: int, shots: int, protocol: str, rng: np.random.Generator) -> np.ndarray:
    if protocol == "random":
        return np.sort(rng.choice(n, size=shots, replace=False))
    start = int(rng.integers(0, n - shots + 1))
    return np.arange(start, start + shots)


HEADS = ("centroid", "metric", "knn")


def evaluate(embedder, data_dir, *, shots: int, ways: Optional[int] = None, protocol: str = "random",
             splits: int = 10, seed: int = 0, head: str = "metric", unknown_classes: int = 0,
             **head_options) -> dict:
    """Mean and spread of few-shot accuracy over ``splits`` random draws.

    ``head``: ``centroid`` (the live head, taught one example at a time), ``metric`` or
    ``knn`` (:mod:`device.metric`, fitted to the examples; "unknown" counts as wrong).
    ``unknown_classes``: that many more classes per split are never taught; their images
    are asked too and are right only when answered "unknown" (open set).  Thresholds
    never see them.
    """
    if head not in HEADS:
        raise DataError(f"head {head!r} is not one of {', '.join(HEADS)}")
    if protocol not in PROTOCOLS:
        raise DataError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if shots < 1 or splits < 1:
        raise DataError(f"shots ({shots}) and splits ({splits}) must be at least 1")
    dataset = load_dataset(data_dir)
    names = list(dataset)
    ways = len(names) if ways is None else ways
    if not MIN_CLASSES <= ways <= min(len(names), MAX_CLASSES):
        raise DataError(f"ways = {ways}: the data has {len(names)} classes and the head takes "
                        f"{MIN_CLASSES} to {MAX_CLASSES}")
    if unknown_classes < 0 or ways + unknown_classes > len(names):
        raise DataError(f"ways ({ways}) + unknown classes ({unknown_classes}) must be at most the "
                        f"{len(names)} classes of the data")
    small = [n for n in names if len(dataset[n]) <= shots]
    if small:
        raise DataError(f"classes {', '.join(small[:5])} have no more than {shots} images: nothing left to test")
    cache = EmbeddingCache(embedder, dataset)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    accuracies, queries, open_set = [], 0, OpenSet()
    for _ in range(splits):
        drawn = [names[i] for i in rng.choice(len(names), size=ways + unknown_classes, replace=False)]
        chosen, strangers = sorted(drawn[:ways], key=names.index), drawn[ways:]
        live = NearestCentroidHead(embedder.dim, ways, **head_options)
        tests, taught, labels = [], [], []
        for class_id, name in enumerate(chosen):
            embeddings = cache[name]
            support = support_indices(len(embeddings), shots, protocol, rng)
            for index in support:
                live.teach(class_id, embeddings[index])
                taught.append(embeddings[index])
                labels.append(class_id)
            mask = np.ones(len(embeddings), dtype=bool)
            mask[support] = False
            tests.extend((class_id, e) for e in embeddings[mask])
        if unknown_classes or head != "centroid":
            fitted = _fit(head, np.stack(taught), np.array(labels), ways, **head_options)
            truth = np.array([c for c, _ in tests])
            strange = np.concatenate([cache[name] for name in strangers]) if strangers else None
            right = open_set.add(fitted, np.stack([e for _, e in tests]), truth, strange)
        elif head == "centroid":
            right = 0
            for class_id, embedding in tests:
                prediction = live.predict(embedding)
                right += prediction.status == STATUS_OK and prediction.class_id == class_id
        accuracies.append(right / len(tests))
        queries += len(tests)
    return {
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "split_accuracies": [round(a, 6) for a in accuracies],
        "shots": shots, "ways": ways, "protocol": protocol, "splits": splits, "seed": seed, "head": head,
        "unknown_classes": unknown_classes, **open_set.figures(),
        "queries": queries, "classes_available": len(names),
        "model": embedder.model_path.name, "seconds": round(time.perf_counter() - started, 2),
    }


def _fit(head: str, vectors: np.ndarray, labels: np.ndarray, num_classes: int, **head_options):
    from . import metric

    if head == "knn":
        return metric.fit_neighbours(vectors, labels, num_classes)
    if head == "centroid":
        return metric.fit_cosine(vectors, labels, num_classes, threshold=head_options.get("threshold"))
    return metric.fit(vectors, labels, num_classes)


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

    def add(self, fitted, taught_queries, truth, strange) -> int:
        """Ask ``fitted`` the taught classes' queries (and the strangers'); how many taught ones were right."""
        known = fitted.assess(taught_queries)
        right = known.class_ids == truth
        named = known.class_ids >= 0
        self.known_novelty.extend(np.nan_to_num(known.novelty, nan=-np.inf).tolist())
        self.confidence.extend(known.confidence[named].tolist())
        self.correct.extend(right[named].tolist())
        self.right += int(right.sum())
        self.asked += len(truth)
        if strange is not None:
            other = fitted.assess(strange)
            self.strange_novelty.extend(np.nan_to_num(other.novelty, nan=-np.inf).tolist())
            named = other.class_ids >= 0
            self.confidence.extend(other.confidence[named].tolist())  # naming a thing never taught is wrong
            self.correct.extend([False] * int(named.sum()))
            self.right += int(np.sum(~named))
            self.asked += len(strange)
        return int(right.sum())

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
