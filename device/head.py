"""The learned part of teachbox: a nearest-centroid head over L2-normalised embeddings.

Pure numpy, no I/O.  Per class the head keeps a running *sum* and a *count* of the
normalised embeddings it was taught, so memory per class is O(D) and teaching one
example is O(D) however many examples a class already has.

The sums are kept in fixed point (int64, :data:`FIXED_POINT_SCALE` per unit), which
makes them exact: teaching in any order gives bit-identical sums, undoing an example
restores the previous sums exactly, and a save/load round trip is exact.  The
resolution (about 1e-6 of a unit vector component) is far below what the quantized
models can tell apart.

A head is serialised with :meth:`NearestCentroidHead.to_state` into a JSON-able ``meta``
dict plus named numpy arrays (``kind`` and ``format`` name the layout), so a later
head variant can add arrays without breaking old files; :mod:`device.storage` does the
file I/O.
"""

from __future__ import annotations

import math
import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Mapping, Optional, Sequence

import numpy as np

from .errors import ClassIndexError, ClassNameError, StateError
from .vocab import AnswerState

FIXED_POINT_SCALE = 1 << 20
MIN_CLASSES = 2
MAX_CLASSES = 64
MAX_NAME_LENGTH = 32
_NAME_PUNCTUATION = frozenset(" -_.,'()&+!?#:/")

# imagined examples of "something else" beside every class's own: with few examples
# the box cannot tell a look-alike from the real thing, and its confidence says so
DOUBT = 1.0

STATUS_OK = AnswerState.OK
STATUS_UNKNOWN = AnswerState.UNKNOWN
STATUS_EMPTY = AnswerState.EMPTY


@dataclass(frozen=True)
class Prediction:
    """What the head thinks of one embedding.

    ``status`` is ``"ok"`` (``class_id`` is the answer), ``"unknown"`` (the best
    similarity is under the threshold) or ``"nothing-learned"`` (no class has an
    example yet).  ``scores`` holds the cosine similarity to every class's centroid
    (NaN for classes without examples).  ``probabilities`` is a softmax over the
    taught classes (0 for the others), each weighed by the evidence behind it: a class
    of ``n`` examples gets at most ``n / (n + DOUBT)`` (see :func:`evidence`), so one
    example never reads as "100% sure"; what is left is doubt, and the values need
    not add up to 1.  ``confidence`` is the answer's probability.
    """

    status: str
    class_id: Optional[int]
    confidence: float
    scores: np.ndarray
    probabilities: np.ndarray


def evidence(counts: np.ndarray) -> np.ndarray:
    """How far examples let a class be trusted: ``n / (n + DOUBT)`` (1 example: 1/2, 9: 9/10)."""
    return counts / (counts + DOUBT)


def validate_class_name(name: object) -> str:
    """Return ``name`` stripped, or raise :class:`ClassNameError` saying what is wrong."""
    if not isinstance(name, str):
        raise ClassNameError(f"class name must be text, not {type(name).__name__}")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise ClassNameError("class name is empty: give it at least one letter or digit")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ClassNameError(
            f"class name {cleaned[:MAX_NAME_LENGTH]!r}... is {len(cleaned)} characters long; "
            f"at most {MAX_NAME_LENGTH} are allowed"
        )
    for char in cleaned:
        if not (char.isalnum() or char in _NAME_PUNCTUATION):
            raise ClassNameError(
                f"class name {cleaned!r} contains {char!r}; use letters, digits, spaces "
                f"and {''.join(sorted(_NAME_PUNCTUATION - {' '}))}"
            )
    return cleaned


def default_class_names(num_classes: int) -> List[str]:
    return [f"Class {i + 1}" for i in range(num_classes)]


def _check_num_classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or not MIN_CLASSES <= num_classes <= MAX_CLASSES:
        raise ValueError(
            f"num_classes must be a whole number from {MIN_CLASSES} to {MAX_CLASSES}, "
            f"not {num_classes!r}"
        )
    return num_classes


class NearestCentroidHead:
    """Nearest class centroid by cosine similarity, taught one example at a time.

    :param dim: length of the embeddings (the model's feature size).
    :param num_classes: number of class slots (one per button), 2 to 64.
    :param names: optional class names (default ``Class 1`` ... ``Class N``).
    :param threshold: cosine similarity under which the answer is "unknown";
        ``None`` (the default) turns the unknown answer off.
    :param temperature: softmax temperature turning similarities into confidences.
    :param undo_depth: how many recent examples per class can be undone.
    """

    KIND = "nearest-centroid"
    FORMAT = 1
    ARRAYS = ("sums", "counts")  # what to_state/from_state exchange

    def __init__(
        self,
        dim: int,
        num_classes: int = 4,
        *,
        names: Optional[Sequence[str]] = None,
        threshold: Optional[float] = None,
        temperature: float = 0.05,
        undo_depth: int = 256,
    ) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive whole number, not {dim!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, not {temperature!r}")
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between -1 and 1 (or None), not {threshold!r}")
        self.dim = dim
        self.num_classes = _check_num_classes(num_classes)
        self.threshold = threshold
        self.temperature = float(temperature)
        self.undo_depth = int(undo_depth)
        self._names = default_class_names(num_classes)
        if names is not None:
            if len(names) != num_classes:
                raise ValueError(f"got {len(names)} names for {num_classes} classes")
            self._names = [validate_class_name(n) for n in names]
        self._sums = np.zeros((num_classes, dim), dtype=np.int64)
        self._counts = np.zeros(num_classes, dtype=np.int64)
        self._history: List[Deque[np.ndarray]] = [deque(maxlen=self.undo_depth) for _ in range(num_classes)]
        # Derived, rebuilt lazily after any change.
        self._centroids = np.zeros((num_classes, dim), dtype=np.float32)
        self._stale = False
        self._unit = np.empty(dim, dtype=np.float32)
        self.generation = 0  # bumps on every change; lets savers tell if anything changed

    # -- reading -----------------------------------------------------------------
    @property
    def names(self) -> List[str]:
        return list(self._names)

    @property
    def counts(self) -> List[int]:
        return [int(c) for c in self._counts]

    @property
    def total(self) -> int:
        return int(self._counts.sum())

    def centroid(self, class_id: int) -> np.ndarray:
        """The unit-length centroid of a class (zeros while it has no example)."""
        self.check_class(class_id)
        self._refresh()
        return self._centroids[class_id].copy()

    def __repr__(self) -> str:
        taught = ", ".join(f"{n!r}: {int(c)}" for n, c in zip(self._names, self._counts))
        return f"<NearestCentroidHead dim={self.dim} classes={{{taught}}} threshold={self.threshold}>"

    # -- teaching ----------------------------------------------------------------
    def teach(self, class_id: int, embedding: np.ndarray) -> bool:
        """Add one example to a class; ``False`` if the embedding is all zeros (nothing to learn)."""
        self.check_class(class_id)
        unit = self._normalise(embedding)
        if unit is None:
            return False
        fixed = np.rint(unit * FIXED_POINT_SCALE).astype(np.int32)
        self._sums[class_id] += fixed
        self._counts[class_id] += 1
        self._history[class_id].append(fixed)
        self._changed()
        return True

    def add_sums(self, class_id: int, sums: np.ndarray, count: int) -> None:
        """Start a class from fixed-point ``sums`` of ``count`` examples (a migrated head's, as :meth:`to_state`)."""
        self.check_class(class_id)
        sums = np.asarray(sums)
        if sums.shape != (self.dim,) or sums.dtype != np.int64 or count < 0:
            raise StateError(f"sums for class {class_id} must be {self.dim} int64 values and a count >= 0")
        self._sums[class_id] += sums
        self._counts[class_id] += int(count)
        self._changed()

    def undo(self, class_id: int, n: int = 1) -> int:
        """Remove the last ``n`` examples taught to a class; returns how many were removed.

        Only the most recent ``undo_depth`` examples of each class (taught since the
        head was built or loaded) can be undone.
        """
        self.check_class(class_id)
        removed = 0
        history = self._history[class_id]
        while removed < n and history:
            self._sums[class_id] -= history.pop()
            self._counts[class_id] -= 1
            removed += 1
        if removed:
            self._changed()
        return removed

    def clear(self, class_id: int) -> int:
        """Forget every example of a class (its name stays); returns how many were forgotten."""
        self.check_class(class_id)
        forgotten = int(self._counts[class_id])
        self._sums[class_id] = 0
        self._counts[class_id] = 0
        self._history[class_id].clear()
        self._changed()
        return forgotten

    def clear_all(self) -> int:
        forgotten = self.total
        self._sums[:] = 0
        self._counts[:] = 0
        for history in self._history:
            history.clear()
        self._changed()
        return forgotten

    def rename(self, class_id: int, name: str) -> str:
        self.check_class(class_id)
        self._names[class_id] = validate_class_name(name)
        self.generation += 1
        return self._names[class_id]

    # -- predicting --------------------------------------------------------------
    def predict(self, embedding: np.ndarray) -> Prediction:
        self._refresh()
        taught = self._counts > 0
        scores = np.full(self.num_classes, np.nan, dtype=np.float32)
        probabilities = np.zeros(self.num_classes, dtype=np.float32)
        unit = self._normalise(embedding)
        if not taught.any():
            return Prediction(STATUS_EMPTY, None, 0.0, scores, probabilities)
        if unit is None:
            return Prediction(STATUS_UNKNOWN, None, 0.0, scores, probabilities)
        similarities = self._centroids @ unit
        scores[taught] = similarities[taught]
        logits = similarities[taught] / self.temperature
        logits -= logits.max()
        weights = np.exp(logits)
        probabilities[taught] = weights / weights.sum() * evidence(self._counts[taught])
        best = int(np.flatnonzero(taught)[np.argmax(similarities[taught])])
        if self.threshold is not None and scores[best] < self.threshold:
            return Prediction(STATUS_UNKNOWN, None, 0.0, scores, probabilities)
        return Prediction(STATUS_OK, best, float(probabilities[best]), scores, probabilities)

    # -- serialisation (pure: arrays in, arrays out) ------------------------------
    def to_state(self):
        """``(meta, arrays)``: a JSON-able dict and named arrays that describe the head exactly."""
        meta = {
            "kind": self.KIND,
            "format": self.FORMAT,
            "dim": self.dim,
            "num_classes": self.num_classes,
            "names": list(self._names),
        }
        return meta, {"sums": self._sums.copy(), "counts": self._counts.copy()}

    @classmethod
    def from_state(cls, meta: Mapping, arrays: Mapping[str, np.ndarray], **options) -> "NearestCentroidHead":
        """Rebuild a head from :meth:`to_state` output; :class:`StateError` if it does not fit."""
        if meta.get("kind") != cls.KIND:
            raise StateError(f"saved head is of kind {meta.get('kind')!r}, expected {cls.KIND!r}")
        if meta.get("format") != cls.FORMAT:
            raise StateError(
                f"saved head has format {meta.get('format')!r}; this teachbox reads format {cls.FORMAT}"
            )
        try:
            dim = int(meta["dim"])
            num_classes = int(meta["num_classes"])
            names = list(meta["names"])
            sums = np.asarray(arrays["sums"])
            counts = np.asarray(arrays["counts"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"saved head is incomplete: {exc}") from None
        if sums.shape != (num_classes, dim) or counts.shape != (num_classes,):
            raise StateError(
                f"saved head arrays have shapes {sums.shape} and {counts.shape}, "
                f"expected ({num_classes}, {dim}) and ({num_classes},)"
            )
        if sums.dtype != np.int64 or counts.dtype != np.int64 or (counts < 0).any():
            raise StateError("saved head arrays have the wrong type or negative counts")
        try:
            head = cls(dim, num_classes, names=names, **options)
        except (ValueError, TypeError) as exc:
            raise StateError(f"saved head is not valid: {exc}") from None
        head._sums[:] = sums
        head._counts[:] = counts
        head._changed()
        head.generation = 0
        return head

    def fitted(self, num_classes: int) -> "NearestCentroidHead":
        """This head with ``num_classes`` slots, or itself unchanged if that would drop learned examples."""
        if num_classes == self.num_classes or sum(self.counts[num_classes:]):
            return self
        return self.resized(num_classes)

    def resized(self, num_classes: int) -> "NearestCentroidHead":
        """A copy with ``num_classes`` slots: extra slots start empty, dropped ones are lost."""
        _check_num_classes(num_classes)
        keep = min(num_classes, self.num_classes)
        names = (self._names[:keep] + default_class_names(num_classes)[keep:])[:num_classes]
        head = NearestCentroidHead(
            self.dim, num_classes, names=names, threshold=self.threshold,
            temperature=self.temperature, undo_depth=self.undo_depth,
        )
        head._sums[:keep] = self._sums[:keep]
        head._counts[:keep] = self._counts[:keep]
        head._changed()
        return head

    # -- internals ---------------------------------------------------------------
    def check_class(self, class_id: int) -> None:
        """Raise :class:`ClassIndexError` unless ``class_id`` is one of this head's classes."""
        if not isinstance(class_id, (int, np.integer)) or not 0 <= class_id < self.num_classes:
            raise ClassIndexError(
                f"class {class_id!r} does not exist: this box has classes 0 to {self.num_classes - 1}"
            )

    def _normalise(self, embedding: np.ndarray) -> Optional[np.ndarray]:
        vector = np.asarray(embedding)
        if vector.shape != (self.dim,):
            vector = vector.reshape(-1)
            if vector.shape != (self.dim,):
                raise ValueError(f"embedding has {vector.size} values, this head expects {self.dim}")
        norm = float(np.linalg.norm(vector))
        if not math.isfinite(norm):
            raise ValueError("embedding contains NaN or infinity")
        if norm < 1e-12:
            return None
        np.multiply(vector, 1.0 / norm, out=self._unit, casting="unsafe")
        return self._unit

    def _changed(self) -> None:
        self._stale = True
        self.generation += 1

    def _refresh(self) -> None:
        if not self._stale:
            return
        norms = np.linalg.norm(self._sums, axis=1).astype(np.float64)
        safe = np.where(norms > 0, norms, 1.0)
        np.divide(self._sums, safe[:, None], out=self._centroids, casting="unsafe")
        self._stale = False

