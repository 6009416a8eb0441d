"""The inbox of doubtful frames: recent frames the box was unsure of, kept for filing by hand.

While the box answers, a frame whose two best taught classes scored almost alike (or
that the head called "unknown") is kept in a small bounded ring, with a copy of its
embedding.  On the phone the user files it into the right class with one tap: the
stored embedding is taught, no new capture is needed.

Pure module: numpy only, no I/O, no threads, no image encoding.  The caller passes the
thumbnail as bytes or as a callable that makes them; a callable is only called when
someone asks for the picture (on a web thread), at most once, and never under the
inbox's lock.

:meth:`DoubtfulInbox.consider` runs on the camera loop after every frame, so the common
case (a confident frame, or one within ``min_interval`` of the last kept) returns before
copying or allocating anything.  :meth:`~DoubtfulInbox.entries` and
:meth:`~DoubtfulInbox.take` run on web threads and hand out immutable snapshots.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional, Tuple, Union

import numpy as np

from .errors import TeachboxError
from .head import STATUS_EMPTY, STATUS_OK, STATUS_UNKNOWN, Prediction
from .vocab import DoubtReason

# At the head's default temperature (0.05) a 0.05 cosine lead is a logit lead of 1: the
# best class is only e (about 2.7) times as likely as the runner-up, 73/27 between the
# two - close to a coin toss, and the frames worth a person's look.
DEFAULT_MARGIN = 0.05
DEFAULT_CAPACITY = 50
# a few seconds apart: a doubtful stretch yields a handful of frames, not one per frame
DEFAULT_MIN_INTERVAL = 3.0
# cosine at or above which a frame is "the same view" as the last one kept
DEFAULT_DUPLICATE_SIMILARITY = 0.98

REASON_CLOSE = DoubtReason.CLOSE  # the two best classes scored within the margin
REASON_UNKNOWN = DoubtReason.UNKNOWN  # the head answered "unknown"
REASON_UNSURE = DoubtReason.UNSURE  # the head named a class at less than ``unsure_below``
# an answer less likely than not to be right is worth a person's look, whatever the scores
DEFAULT_UNSURE_BELOW = 0.5

Answer = Union[int, str]  # a class id, or "unknown" / "nothing-learned" (as device.loop shows it)
ThumbnailSource = Union[bytes, bytearray, memoryview, Callable[[], bytes], None]


class FrameGoneError(TeachboxError, KeyError):
    """The frame asked for is not in the inbox (filed already, cleared, or pushed out by newer ones)."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class _Thumbnail:
    """A thumbnail given as bytes, or made once by a callable on first use (then cached).

    Its own small lock makes "at most once" hold when two web threads ask together;
    it is never the inbox's lock, so a slow encoder never blocks the camera loop.
    Once made, the callable (and whatever frame it holds) is let go.
    """

    __slots__ = ("_lock", "_source", "_data")

    def __init__(self, source: ThumbnailSource) -> None:
        self._lock = threading.Lock()
        if source is None or isinstance(source, (bytes, bytearray, memoryview)):
            self._source = None
            self._data = None if source is None else bytes(source)  # the caller may reuse its buffer
        elif callable(source):
            self._source = source
            self._data = None
        else:
            raise TypeError(
                f"thumbnail must be bytes, a callable returning bytes, or None, not {type(source).__name__}"
            )

    @property
    def ready(self) -> bool:
        return self._source is None

    def get(self) -> Optional[bytes]:
        if self._source is None:
            return self._data
        with self._lock:
            source = self._source
            if source is not None:
                self._data = _as_bytes(source())
                self._source = None
        return self._data


def _as_bytes(made: object) -> bytes:
    if not isinstance(made, (bytes, bytearray, memoryview)):
        raise TypeError(f"the thumbnail callable returned {type(made).__name__}; it must return bytes")
    return bytes(made)


@dataclass(frozen=True)
class DoubtfulFrame:
    """One kept frame, as handed to the web threads (immutable; the embedding is read-only).

    ``time`` is the caller's monotonic clock when it was kept.  ``best`` / ``runner_up``
    are the two best taught classes and ``best_score`` / ``runner_up_score`` their
    cosine similarities (``runner_up`` is ``None`` when only one class is taught).
    ``answer`` is what the box showed.  ``reason`` is ``"close"`` or ``"unknown"``.
    ``filed`` is ``True`` on the copy :meth:`DoubtfulInbox.take` returns.
    """

    id: int
    time: float
    best: int
    best_score: float
    runner_up: Optional[int]
    runner_up_score: Optional[float]
    answer: Answer
    reason: str
    embedding: np.ndarray = field(repr=False, compare=False)
    filed: bool = False
    _thumbnail: _Thumbnail = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    @property
    def margin(self) -> float:
        """How far the best class led the runner-up (``inf`` with only one class taught)."""
        return math.inf if self.runner_up_score is None else self.best_score - self.runner_up_score

    @property
    def thumbnail_ready(self) -> bool:
        """Whether :meth:`thumbnail` would return at once (bytes given, or already made)."""
        return self._thumbnail is None or self._thumbnail.ready

    def thumbnail(self) -> Optional[bytes]:
        """The picture's bytes (``None`` if none was given); a lazy one is made now, once."""
        return None if self._thumbnail is None else self._thumbnail.get()


class DoubtfulInbox:
    """A bounded ring of the frames the box was unsure of, newest last.

    :param capacity: most frames kept; when full, the oldest goes.
    :param min_interval: fewest seconds (caller's monotonic clock) between two kept frames.
    :param margin: a frame whose best taught class leads the runner-up by less than this
        (cosine similarity) is doubtful; see :data:`DEFAULT_MARGIN` for why 0.05.
    :param duplicate_similarity: a doubtful frame this similar (cosine) to the last kept
        one is the same view and is not kept again.
    :param unsure_below: a frame answered with a probability under this is doubtful too
        (a head whose confidence counts the chance of a thing never taught says so here).
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        margin: float = DEFAULT_MARGIN,
        duplicate_similarity: float = DEFAULT_DUPLICATE_SIMILARITY,
        unsure_below: float = DEFAULT_UNSURE_BELOW,
    ) -> None:
        self.capacity = _check_capacity(capacity)
        self.min_interval = _check_number("min_interval", min_interval, 0.0, math.inf, "seconds, 0 or more")
        self.margin = _check_number("margin", margin, 0.0, 2.0, "a cosine difference from 0 to 2")
        self.duplicate_similarity = _check_number(
            "duplicate_similarity", duplicate_similarity, -1.0, 1.0, "a cosine from -1 to 1"
        )
        self.unsure_below = _check_number("unsure_below", unsure_below, 0.0, 1.0, "a probability from 0 to 1")
        self._lock = threading.Lock()
        self._frames: "OrderedDict[int, DoubtfulFrame]" = OrderedDict()
        self._next_id = 1
        self._last_kept = -math.inf  # when the last frame was kept (caller's clock)
        self._last_unit: Optional[np.ndarray] = None  # its unit embedding, for the duplicate check
        self._scratch = np.empty(0, dtype=np.float32)  # reused by _two_best: no allocation per frame

    # -- the loop thread ---------------------------------------------------------------
    def consider(
        self,
        now: float,
        prediction: Optional[Prediction],
        embedding: Optional[np.ndarray],
        thumbnail: ThumbnailSource = None,
        *,
        answer: Optional[Answer] = None,
        taught: Optional[int] = None,
    ) -> Optional[int]:
        """Keep this frame if it is doubtful; its new id, or ``None`` if it was not kept.

        Call after every frame.  ``now`` is a monotonic time in seconds.  ``prediction``
        or ``embedding`` ``None`` means the camera is offline (never kept).  ``answer``
        is the answer shown (default: the raw prediction's).  ``taught`` is the class an
        example was added to in this frame (``FrameResult.taught``; class 0 counts):
        a frame just taught is never doubtful.  ``thumbnail`` is bytes, a callable that
        makes them (called later, on whoever asks), or ``None``; a callable must not
        read a buffer the caller reuses for the next frame.
        """
        if prediction is None or embedding is None or taught is not None:
            return None
        if prediction.status == STATUS_EMPTY:
            return None
        with self._lock:
            if now - self._last_kept < self.min_interval:
                return None
            best, best_score, second, second_score = self._two_best(prediction.scores)
            if best_score == -math.inf:
                return None  # no taught class scored (e.g. an all-zero embedding): nothing to file
            reason = self._doubt(prediction, best_score, second_score)
            if reason is None:
                return None
            unit = _unit(embedding)
            if unit is None or self._is_duplicate(unit):
                return None
            return self._keep(now, prediction, unit, embedding, thumbnail, answer, reason,
                              best, best_score, second, second_score)

    def _two_best(self, scores: np.ndarray) -> Tuple[int, float, int, float]:
        """The two best taught classes and their scores (NaN = untaught), in a reused buffer."""
        if self._scratch.shape != scores.shape or self._scratch.dtype != scores.dtype:
            self._scratch = np.empty_like(scores)  # only when the head's class count changes
        scratch = self._scratch
        np.fmax(scores, -np.inf, out=scratch)  # NaN -> -inf
        best = int(scratch.argmax())
        best_score = float(scratch[best])
        scratch[best] = -np.inf
        second = int(scratch.argmax())
        return best, best_score, second, float(scratch[second])

    def _doubt(self, prediction: Prediction, best_score: float, second_score: float) -> Optional[str]:
        """Why a frame is doubtful (``"unknown"`` / ``"close"`` / ``"unsure"``), or ``None`` if it is not."""
        if prediction.status == STATUS_UNKNOWN:
            return REASON_UNKNOWN
        if prediction.status != STATUS_OK:
            return None
        if best_score - second_score < self.margin:
            return REASON_CLOSE  # with one class taught the runner-up is -inf: never close
        if prediction.confidence < self.unsure_below:
            return REASON_UNSURE
        return None

    def _is_duplicate(self, unit: np.ndarray) -> bool:
        last = self._last_unit
        if last is None or last.shape != unit.shape:
            return False
        return float(np.dot(unit, last)) >= self.duplicate_similarity

    def _keep(self, now, prediction, unit, embedding, thumbnail, answer, reason,
              best, best_score, second, second_score) -> int:
        """Store a copy of the frame (called under the lock); returns its id."""
        runner_up: Optional[int] = second if second_score != -math.inf else None
        frame = DoubtfulFrame(
            id=self._next_id,
            time=float(now),
            best=best,
            best_score=best_score,
            runner_up=runner_up,
            runner_up_score=second_score if runner_up is not None else None,
            answer=_shown(prediction) if answer is None else answer,
            reason=reason,
            embedding=_frozen_copy(embedding),
            _thumbnail=_Thumbnail(thumbnail),
        )
        self._next_id += 1
        self._frames[frame.id] = frame
        while len(self._frames) > self.capacity:
            self._frames.popitem(last=False)
        self._last_kept = now
        self._last_unit = unit
        return frame.id

    # -- the web threads ---------------------------------------------------------------
    def entries(self, newest_first: bool = True) -> List[DoubtfulFrame]:
        """A snapshot of the frames in the inbox (immutable, safe to hand to another thread)."""
        with self._lock:
            frames = list(self._frames.values())
        if newest_first:
            frames.reverse()
        return frames

    def get(self, frame_id: int) -> DoubtfulFrame:
        """The frame ``frame_id`` without removing it (e.g. to show its thumbnail)."""
        with self._lock:
            frame = self._frames.get(frame_id)
        if frame is None:
            raise self._gone(frame_id)
        return frame

    def take(self, frame_id: int) -> DoubtfulFrame:
        """Remove the frame ``frame_id`` for filing and return it (``filed=True``).

        Taking is the claim: of two taps on the same frame, one gets it and the other
        :class:`FrameGoneError`.
        """
        with self._lock:
            frame = self._frames.pop(frame_id, None)
        if frame is None:
            raise self._gone(frame_id)
        return _filed(frame)

    def attach_thumbnail(self, frame_id: int, thumbnail: ThumbnailSource) -> None:
        """Give a kept frame its picture after :meth:`consider` kept it (so only kept frames pay for one)."""
        with self._lock:
            frame = self._frames.get(frame_id)
            if frame is not None:
                self._frames[frame_id] = replace(frame, _thumbnail=_Thumbnail(thumbnail))

    def clear(self) -> int:
        """Empty the inbox (ids still never repeat); returns how many frames were dropped."""
        with self._lock:
            dropped = len(self._frames)
            self._frames.clear()
            self._last_kept = -math.inf
            self._last_unit = None
        return dropped

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def __repr__(self) -> str:
        return (f"<DoubtfulInbox {len(self)}/{self.capacity} margin={self.margin} "
                f"min_interval={self.min_interval}>")

    def _gone(self, frame_id: object) -> FrameGoneError:
        if isinstance(frame_id, int) and not isinstance(frame_id, bool) and not 1 <= frame_id < self._next_id:
            return FrameGoneError(f"there is no doubtful frame {frame_id!r}: ids so far run from 1 to "
                                  f"{self._next_id - 1}; reload the inbox")
        return FrameGoneError(
            f"that frame ({frame_id!r}) has left the inbox (it keeps the last {self.capacity}): "
            "it was filed, cleared or pushed out by newer frames; reload the inbox"
        )


# -- helpers ------------------------------------------------------------------------------
def _shown(prediction: Prediction) -> Answer:
    return prediction.class_id if prediction.status == STATUS_OK else prediction.status


def _unit(embedding: np.ndarray) -> Optional[np.ndarray]:
    """The embedding as a new unit-length float32 vector, or ``None`` if it is zero or not finite."""
    vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm < 1e-12:
        return None
    return vector / norm


def _frozen_copy(embedding: np.ndarray) -> np.ndarray:
    copy = np.array(embedding, dtype=np.float32, copy=True).reshape(-1)
    copy.setflags(write=False)
    return copy


def _filed(frame: DoubtfulFrame) -> DoubtfulFrame:
    return replace(frame, filed=True)


def _check_capacity(capacity: object) -> int:
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise ValueError(f"capacity must be a whole number of frames, 1 or more, not {capacity!r}")
    return capacity


def _check_number(name: str, value: object, low: float, high: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be {what}, not {value!r}")
    return float(value)
