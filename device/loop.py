"""The appliance loop: capture -> features -> teach (while asked) -> predict -> smooth -> publish.

The features come from the box's source (:mod:`device.sources`: the whole picture, or the
landmarks of a hand, face or body); a frame where a landmark source finds nothing is
answered "absent" ("no hand") and never taught.

The loop owns the head.  Other threads (buttons, web page) ask for changes through
the methods of :class:`TeachLoop`; those that need a camera frame (teaching) are
applied by the loop to frames captured *after* the request.  Outputs (LEDs, the web
page, the log) are observers: objects with ``update(result)`` called from the loop
thread after every frame, which must return quickly and never block.  Inputs (the
front panel) have ``poll()``, called before every capture, so that a request made
before a capture applies to the frame it captures.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .camera import OFFLINE, CameraSupervisor
from .bursts import BurstTeacher
from .head import STATUS_EMPTY, STATUS_OK, STATUS_UNKNOWN, Prediction
from .smoothing import MajoritySmoother
from .storage import ModelIdentity, model_identity
from .vocab import AnswerState, CameraState

log = logging.getLogger(__name__)

STAGES = ("capture", "preprocess", "invoke", "classify")
SURE = 0.7  # a shown class at least this confident reads as sure; below, "not sure - maybe ..."
Answer = Union[int, str]  # a class id, or "unknown" / "nothing-learned" / "absent"
STATUS_ABSENT = AnswerState.ABSENT


@dataclass(frozen=True)
class FrameResult:
    """What one pass of the loop saw and decided (given to observers)."""

    frame: Optional[np.ndarray]  # the camera frame (None while the camera is offline)
    camera_state: str
    prediction: Optional[Prediction]  # the raw answer for this frame
    answer: Answer  # the smoothed answer that is shown
    confidence: float  # of the shown answer (0 when it is not a class)
    taught: Optional[int] = None  # class an example was added to in this frame
    seq: int = 0
    # what the model saw and gave; buffers reused by the next frame: read them in update() only
    prepared: Optional[np.ndarray] = field(default=None, repr=False, compare=False)  # what an example keeps
    embedding: Optional[np.ndarray] = field(default=None, repr=False, compare=False)
    look: Optional[object] = field(default=None, repr=False, compare=False)  # landmarks found (device.sources.Look)


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    examples: int
    score: Optional[float]  # cosine similarity to the class centroid (None: no example yet)
    confidence: float


@dataclass(frozen=True)
class BurstInfo:
    """The teaching burst going on: what it took and what it passed over as the same picture."""

    class_id: int
    taught: int
    skipped: int
    same_picture: bool


@dataclass(frozen=True)
class CameraInfo:
    name: str
    state: CameraState
    error: Optional[str]
    frames: int
    sources: Tuple[str, ...] = ()
    source: Optional[str] = None


@dataclass(frozen=True)
class LoopSnapshot:
    """A consistent view of the loop, for status pages and other clients (no JSON here)."""

    state: AnswerState
    answer_id: Optional[int]
    answer_name: Optional[str]
    confidence: float
    sure: bool
    classes: Tuple[ClassInfo, ...]
    burst: Optional[BurstInfo]  # the teaching going on, if any
    fps: float
    latency_ms: Dict[str, float]
    camera: CameraInfo
    uptime_s: float
    saving_error: Optional[str]
    model: Dict[str, object]  # model, runtime, runtime_version, threads, dim
    source: str = "picture"  # what the box looks at (device.sources)
    look: Optional[object] = None  # the landmarks of the last frame (device.sources.Look), if any


@dataclass
class _Stats:
    alpha: float = 0.1
    latency: Dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frame_interval: float = 0.0
    last_frame: float = 0.0
    samples: Optional[Dict[str, List[float]]] = None  # every frame's stage times, while a benchmark asks

    def record(self, stage: str, seconds: float) -> None:
        if self.samples is not None:
            self.samples[stage].append(seconds)
        previous = self.latency[stage]
        self.latency[stage] = seconds if previous == 0.0 else previous + self.alpha * (seconds - previous)

    def tick(self, now: float) -> None:
        if self.last_frame:
            interval = now - self.last_frame
            previous = self.frame_interval
            self.frame_interval = interval if previous == 0.0 else previous + self.alpha * (interval - previous)
        self.last_frame = now

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_interval if self.frame_interval > 0 else 0.0


class TeachLoop:
    """Runs the appliance.  Build it, add observers, then :meth:`run` (or :meth:`step` in tests).

    :param camera: a :class:`~device.camera.CameraSupervisor`.
    :param embedder: the feature source (:mod:`device.sources`): an :class:`~device.embedder.Embedder`
        or a landmark source (``prepare``, ``infer`` -> features or ``None``, ``seen``, ``describe``).
    :param head: the classifier head, already loaded or empty.
    :param model: identity of the model, written with every save.
    :param keeper: the :class:`~device.keeper.ExampleKeeper` that stores every example taught
        and edits them; ``None`` keeps what is learned in memory only.
    :param smoothing: frames in the majority vote (1 = off).
    :param observers: outputs, ``update(result)`` after every frame (see :meth:`add_observer`).
    :param inputs: objects with ``poll()``, called before every capture (see :meth:`add_input`).
    """

    def __init__(self, camera: CameraSupervisor, embedder, head, *, model: ModelIdentity,
                 keeper=None, smoothing: int = 5,
                 observers: Sequence[object] = (), inputs: Sequence[object] = (),
                 teacher: Optional[BurstTeacher] = None) -> None:
        self.camera = camera
        self.embedder = embedder
        self.head = head
        self.model = model
        self.keeper = keeper
        self.observers: List[object] = list(observers)
        self.inputs: List[object] = list(inputs)
        self.lock = threading.RLock()
        self._smoother = MajoritySmoother(smoothing)
        self._stats = _Stats()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self.teacher = teacher or BurstTeacher(head.dim)
        self._last: Optional[FrameResult] = None
        self._description = embedder.describe()
        self._fit = None  # the fitted head that answers (device.fitter), or None: the live head answers
        if keeper is not None:
            keeper.attach(self.swap_head)

    def __repr__(self) -> str:
        return f"<TeachLoop camera={self.camera.state} head={self.head!r}>"

    def add_observer(self, observer) -> None:
        """``observer.update(result)`` is called after every frame, from the loop thread."""
        self.observers.append(observer)

    def add_input(self, source) -> None:
        """``source.poll()`` is called before every capture, from the loop thread."""
        self.inputs.append(source)

    # -- requests from other threads ------------------------------------------------
    def start_teaching(self, class_id: int, *, hold: bool = True, examples: int = 1,
                       lease: Optional[float] = None, source: str = "button") -> None:
        """A class button went down: teach ``class_id`` the next ``examples`` frames captured after this call.

        With ``hold`` the burst goes on (rate-bounded, skipping near-duplicates) until
        :meth:`stop_teaching`; without, :meth:`hold_teaching` makes it go on later.
        With ``lease`` (a hold from the phone) it also ends ``lease`` seconds after the
        last :meth:`keep_teaching`, so a phone that drops off the network stops teaching.
        """
        with self.lock:
            self.head.check_class(class_id)
            # A frame whose capture began before this call is not eligible.
            burst = self.teacher.start(class_id, self.camera.next_seq(), wanted=examples, hold=hold, pressed=True,
                                       source=source)
            if lease is not None:
                burst.lease_until = time.perf_counter() + lease

    def keep_teaching(self, class_id: int, lease: float) -> bool:
        """A remote hold is still going: teaching ``class_id`` goes on for ``lease`` more seconds."""
        with self.lock:
            return self.teacher.renew(class_id, time.perf_counter() + lease)

    def hold_teaching(self, class_id: int) -> None:
        with self.lock:
            self.teacher.hold(class_id)

    def stop_teaching(self, class_id: Optional[int] = None) -> None:
        """End the held burst (of ``class_id``, or whichever); it still takes its first example."""
        with self.lock:
            self.teacher.release(class_id)

    def teach_next(self, class_id: int, n: int = 1, *, source: str = "button") -> None:
        """Teach the next ``n`` frames captured after this call to ``class_id`` (one burst)."""
        with self.lock:
            self.head.check_class(class_id)
            self.teacher.start(class_id, self.camera.next_seq(), wanted=n, source=source)

    def teach_example(self, class_id: int, embedding: np.ndarray, crop: bytes, *, source: str) -> None:
        """Teach one example that was seen earlier (a filed doubtful frame): its own burst."""
        with self.lock:
            self.head.check_class(class_id)
            if self.head.teach(class_id, embedding) and self.keeper is not None:
                self.keeper.add_example(class_id, embedding, crop, source)
            self._smoother.reset()

    def undo(self) -> Optional[Tuple[int, int]]:
        """Undo the last burst: ``(class, examples removed)``, or ``None`` if there is nothing to undo."""
        with self.lock:
            if self.keeper is not None:  # the stored bursts: back across restarts; the head follows
                self.teacher.cancel()
                self.keeper.check(None)
                self.teacher.forget_all()
                undone = self.keeper.undo()
                self._smoother.reset()
                return undone
            burst = self.teacher.pop_last()
            if burst is None:
                return None
            removed = self.head.undo(burst.class_id, burst.taught)
            self._smoother.reset()
            return burst.class_id, removed

    def clear(self, class_id: int) -> int:
        with self.lock:
            forgotten = self.head.clear(class_id)
            self._fit = None  # it knows the class: the live head answers until the next fit
            self.teacher.forget_class(class_id)
            if self.keeper is not None:
                self.keeper.clear(class_id)
            self._smoother.reset()
            return forgotten

    def clear_all(self) -> int:
        with self.lock:
            forgotten = self.head.clear_all()
            self._fit = None
            self.teacher.forget_all()
            if self.keeper is not None:
                self.keeper.clear_all()
            self._smoother.reset()
            return forgotten

    def swap_head(self, build) -> None:
        """Answer with ``build(current head)`` from the next frame on (a rebuilt or imported head)."""
        with self.lock:
            self.head = build(self.head)
            if self._fit is not None and self._fit.num_classes != self.head.num_classes:
                self._fit = None
            self._smoother.reset()

    def switch_source(self, source, head, keeper, teacher: BurstTeacher) -> None:
        """Look with ``source`` from the next frame on, with its own head, examples and teacher."""
        with self.lock:
            self.teacher.cancel()
            if self.keeper is not None:
                self.keeper.check(None)
            self.embedder = source
            self.model = model_identity(source.describe())
            self._description = source.describe()
            self.head = head
            self.keeper = keeper
            self.teacher = teacher
            self._fit = None
            self._last = None
            self._smoother.reset()
            if keeper is not None:
                keeper.attach(self.swap_head)

    def switch_model(self, embedder, build) -> None:
        """Embed with ``embedder`` and answer with ``build(current head)`` from the next frame on."""
        with self.lock:
            head = build(self.head)
            self.teacher.cancel()
            if self.keeper is not None:
                self.keeper.check(None)
            old = self.teacher
            self.teacher = BurstTeacher(embedder.dim, rate=old.rate, duplicate_similarity=old.duplicate_similarity)
            self.embedder = embedder
            self.model = model_identity(embedder.describe())
            self._fit = None
            self._description = embedder.describe()
            self.head = head
            self._smoother.reset()

    def forget_teaching(self) -> None:
        """End the burst going on and forget the bursts in memory (before everything is replaced)."""
        with self.lock:
            self.teacher.cancel()
            if self.keeper is not None:
                self.keeper.check(None)
            self.teacher.forget_all()

    def rename(self, class_id: int, name: str) -> str:
        with self.lock:
            name = self.head.rename(class_id, name)
            if self.keeper is not None:
                self.keeper.rename(class_id, name)
            return name

    # -- the loop --------------------------------------------------------------------
    def step(self) -> FrameResult:
        """Capture and process one frame (or note that the camera is offline)."""
        for source in self.inputs:  # requests made before this capture apply to its frame
            try:
                source.poll()
            except Exception:
                log.exception("input %r failed", source)
        started = time.perf_counter()
        frame = self.camera.read()
        captured = time.perf_counter()
        seq = self.camera.last_seq  # numbered when its read began: teaching takes frames begun after a press
        if frame is None:
            with self.lock:
                self.teacher.cancel()  # nothing is taught while the camera is offline
                if self.keeper is not None:
                    self.keeper.check(None)
                shown = self._shown(None)
            return self._publish(FrameResult(None, self.camera.state, None, shown, 0.0, seq=seq))
        self._stats.record("capture", captured - started)
        embedder = self.embedder
        prepared = embedder.prepare(frame)
        prepared_at = time.perf_counter()
        embedding = embedder.infer(prepared)
        invoked = time.perf_counter()
        look = embedder.look
        with self.lock:
            if embedder is not self.embedder:  # the model was switched during this frame: it does not count
                return self._publish(FrameResult(frame, self.camera.state, None, self._shown(None), 0.0, seq=seq))
            if embedding is None:  # no hand (face, person) in view: its own answer, and nothing is taught
                return self._publish(self._absent(frame, seq, invoked))
            seen = embedder.seen(prepared)
            taught = self._teach(seq, invoked, embedding, seen)
            fit = self._fit
            prediction = (fit if fit is not None else self.head).predict(embedding)
            answer = self._shown(prediction)
        classified = time.perf_counter()
        stats = self._stats
        stats.record("preprocess", prepared_at - captured)
        stats.record("invoke", invoked - prepared_at)
        stats.record("classify", classified - invoked)
        stats.tick(classified)
        confidence = float(prediction.probabilities[answer]) if isinstance(answer, int) else 0.0
        return self._publish(FrameResult(frame, self.camera.state, prediction, answer, confidence, taught, seq,
                                         seen, embedding, look))

    def _absent(self, frame: np.ndarray, seq: int, now: float) -> FrameResult:
        """A frame without a hand (face, person): a held burst waits for one; the answer says so."""
        self.teacher.choose_none(now)
        if self.keeper is not None:
            self.keeper.check(self.teacher.active)
        answer = self._smoother.push(STATUS_ABSENT)
        self._stats.tick(now)
        return FrameResult(frame, self.camera.state, None, answer, 0.0, seq=seq)

    def install_fit(self, fit, model) -> None:
        """Answer with ``fit`` from the next frame on (from the fitter; a fit of another model is dropped)."""
        with self.lock:
            if model == self.model and getattr(fit, "num_classes", None) == self.head.num_classes:
                self._fit = fit

    def _teach(self, seq: int, now: float, embedding: np.ndarray, prepared: np.ndarray) -> Optional[int]:
        class_id = self.teacher.choose(seq, now, embedding)
        if class_id is None or not self.head.teach(class_id, embedding):
            if self.keeper is not None:
                self.keeper.check(self.teacher.active)
            return None
        burst = self.teacher.active
        if self.keeper is not None:
            self.keeper.taught(burst, class_id, burst.source, embedding, prepared)
        self.teacher.taught(now, embedding)
        if self.keeper is not None:
            self.keeper.check(self.teacher.active)
        return class_id

    def _shown(self, prediction: Optional[Prediction]) -> Answer:
        if prediction is None:
            return self._smoother.shown if self._smoother.shown is not None else STATUS_UNKNOWN
        if prediction.status == STATUS_EMPTY:
            self._smoother.reset()
            return STATUS_EMPTY
        raw: Answer = prediction.class_id if prediction.status == STATUS_OK else STATUS_UNKNOWN
        return self._smoother.push(raw)

    def _publish(self, result: FrameResult) -> FrameResult:
        self._last = result
        for observer in self.observers:
            try:
                observer.update(result)
            except Exception:  # an output must never stop the box
                log.exception("output %r failed", observer)
        return result

    def run(self) -> None:
        """Step until :meth:`stop` is called (from a signal handler or another thread)."""
        d = self._description
        log.info("running: camera %s, model %s (%s %s, %s threads)", self.camera.name, d["model"], d["runtime"],
                 d["runtime_version"], d["threads"])
        self.camera.stream()  # frames are read ahead: capture overlaps the model's work
        while not self._stop.is_set():
            self.step()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> bool:
        """Store what is left to store and release the camera and the outputs; ``False`` if some was lost."""
        self._stop.set()
        stored = True
        if self.keeper is not None:
            self.forget_teaching()
            stored = self.keeper.close()
        self.camera.close()
        for observer in self.observers:
            close = getattr(observer, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing output %r failed", observer)
        return stored

    # -- status ------------------------------------------------------------------------
    @property
    def last_result(self) -> Optional[FrameResult]:
        """What the last frame gave (its frame is never written to: do not either)."""
        return self._last

    def sample_stages(self) -> "StageSamples":
        """Keep every frame's stage times until ``stop()`` on what this returns (for ``teachbox bench``)."""
        self._stats.samples = {stage: [] for stage in STAGES}
        return StageSamples(self._stats)

    def status_fps(self) -> float:
        return self._stats.fps

    def snapshot(self) -> LoopSnapshot:
        """A consistent snapshot of what the loop sees and does (safe from any thread)."""
        with self.lock:
            last = self._last
            prediction = last.prediction if last else None
            scores = prediction.scores if prediction is not None else None
            classes = tuple(
                ClassInfo(i, name, count,
                          None if scores is None or np.isnan(scores[i]) else round(float(scores[i]), 4),
                          0.0 if prediction is None else round(float(prediction.probabilities[i]), 4))
                for i, (name, count) in enumerate(zip(self.head.names, self.head.counts)))
            answer = last.answer if last else STATUS_UNKNOWN
            confidence = last.confidence if last else 0.0
            active = self.teacher.active
            burst = None if active is None else BurstInfo(active.class_id, active.taught, active.skipped,
                                                           active.same_picture)
            camera = self.camera
            return LoopSnapshot(
                state=AnswerState.OK if isinstance(answer, int) else AnswerState(answer),
                answer_id=answer if isinstance(answer, int) else None,
                answer_name=self.head.names[answer] if isinstance(answer, int) else None,
                confidence=round(confidence, 4),
                sure=isinstance(answer, int) and confidence >= SURE,
                classes=classes,
                burst=burst,
                fps=round(self._stats.fps, 2),
                latency_ms={k: round(v * 1000, 2) for k, v in self._stats.latency.items()},
                camera=CameraInfo(camera.name, CameraState(camera.state), camera.error, camera.frames,
                                  camera.sources, camera.source),
                uptime_s=round(time.monotonic() - self._started, 1),
                saving_error=self.keeper.saving_error if self.keeper else None,
                model={k: self._description[k] for k in ("model", "runtime", "runtime_version", "threads", "dim")},
                source=getattr(self.embedder, "name", "picture"),
                look=last.look if last else None,
            )


class StageSamples:
    """Stage times being kept; :meth:`stop` ends it and gives them (seconds per frame, by stage)."""

    def __init__(self, stats: _Stats) -> None:
        self._stats = stats

    def stop(self) -> Dict[str, List[float]]:
        samples, self._stats.samples = self._stats.samples, None
        return samples or {}


class LogOutput:
    """Logs the shown answer when it changes (never per frame)."""

    def __init__(self, names) -> None:
        self._names = names
        self._last: Optional[Tuple[Answer, str]] = None

    def update(self, result: FrameResult) -> None:
        key = (result.answer, result.camera_state)
        if key == self._last:
            return
        self._last = key
        if result.camera_state == OFFLINE:
            log.warning("camera offline")
        elif isinstance(result.answer, int):
            log.info("answer: %s (%.0f%%)", self._names()[result.answer], 100 * result.confidence)
        else:
            log.info("answer: %s", result.answer)
