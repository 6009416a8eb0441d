"""The box as its clients see it: one small public API over the loop, panel, camera and pairing.

The phone page (and any later client: MQTT, rules) uses only this: a typed
:class:`BoxSnapshot`, the teaching requests, export and import, the camera's sources,
the simulated front panel and pairing.  Build one with :func:`device.app.build_box`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import ConfigError, ForeignStateError, ModelError, PanelError, StateError, TeachboxError
from .head import validate_class_name
from .inbox import DoubtfulFrame, DoubtfulInbox, FrameGoneError
from .library import ExampleInfo, LibraryReader
from .loop import LoopSnapshot, TeachLoop
from .pairing import PairingBroker, PairRequest
from .panel import ButtonName, Panel, PanelView
from .models import MODELS, embedding_models, fetch_command
from .quality import QualityReport, assess
from .reembed import ModelSwitcher, SwitchProgress
from .sources import SOURCES, THING, source_of_model
from .events import event_json
from .rules import MODES as RULE_MODES  # noqa: F401 (the page's list of a rule action's modes)
from .exchange import ExportContents, decode_export, encode_export, looks_like_export
from .learned import export_contents
from .library import LibraryFull, NewExample
from .storage import decode_head

log = logging.getLogger(__name__)

__all__ = ["Box", "BoxSnapshot", "ClassCount", "ExamplePage", "FrameGoneError", "ImportBusy", "ImportRefused",
           "LibraryStatus", "SourceChoice",
           "ModelChoice", "NoLibrary", "StorageBusy", "SwitchRefused", "EDIT_TIMEOUT", "MAX_IDS"]


class ImportRefused(StateError):
    """An uploaded state file cannot be used; nothing was changed."""


class ImportBusy(ImportRefused):
    """An import cannot be taken now (a model switch is going on); nothing was changed."""


class StorageBusy(TeachboxError, TimeoutError):
    """The examples library did not answer in time (the storage card is failing or full)."""


class NoLibrary(TeachboxError, LookupError):
    """This box keeps no examples (it was built without an examples library)."""


EDIT_TIMEOUT = 15.0  # seconds a page request waits for the writer (a rebuild of 5,000 examples is ~0.1 s)
MAX_IDS = 500  # examples one request may delete or move


@dataclass(frozen=True)
class LibraryStatus:
    """How full the examples library is, and what it could not store."""

    examples: int  # stored and waiting to be stored
    bytes: int
    max_bytes: int
    max_per_class: int
    unwritten: int  # taught but not on the card yet
    notice: Optional[str]  # what a cap refused last
    saving_error: Optional[str]


@dataclass(frozen=True)
class ModelChoice:
    """An embedding model the box knows, and whether it can switch to it."""

    name: str
    dim: int
    input_size: int
    note: str
    present: bool  # the file is in a model folder (``teachbox fetch-model`` puts it there)
    current: bool


class SwitchRefused(TeachboxError, ValueError):
    """The model (or source) cannot be switched to (the message says why); nothing was changed."""


class RulesRefused(TeachboxError, ValueError):
    """The rules cannot be set (the message says why: set in the config file, a bad key or pin); nothing changed."""


@dataclass(frozen=True)
class RulesView:
    """The rules the box runs, as ``[[rules]]`` tables; ``pinned``: why the page may not change them."""

    tables: Tuple[dict, ...]
    active: Tuple[str, ...]  # names of the rules on now
    pinned: Optional[str]


@dataclass(frozen=True)
class SourceChoice:
    """Something the box can look at; each keeps its own classes and examples."""

    name: str  # picture, hand, face or pose
    thing: str  # what it looks for: "hand" (the answer without one is "no hand")
    current: bool


@dataclass(frozen=True)
class ExamplePage:
    """Some of a class's examples, newest first; ``next`` is the ``before`` of the next page (``None``: no more)."""

    examples: Tuple[ExampleInfo, ...]
    next: Optional[int]


@dataclass(frozen=True)
class BoxSnapshot:
    """Everything a status page shows, taken at one moment."""

    loop: LoopSnapshot
    panel: Optional[PanelView]
    pairing: Optional[PairRequest]  # the request waiting for its button, if any
    library: Optional[LibraryStatus] = None
    model_switch: Optional[SwitchProgress] = None  # the last model switch (or re-embedding at start)


@dataclass(frozen=True)
class ClassCount:
    name: str
    examples: int


class Box:
    """The appliance: run it, ask it things, tell it things (thread-safe).

    :param loop: the :class:`~device.loop.TeachLoop`.
    :param panel: the front panel, or ``None`` (``[panel] gpio = "off"``).
    :param pairing: the :class:`~device.pairing.PairingBroker` the panel approves, or ``None``.
    """

    def __init__(self, loop: TeachLoop, *, panel: Optional[Panel] = None,
                 pairing: Optional[PairingBroker] = None, inbox: Optional[DoubtfulInbox] = None,
                 switcher: Optional[ModelSwitcher] = None, model_dirs: Sequence[Path] = (),
                 model_pinned: Optional[str] = None, load_model: Optional[Callable[[Path], object]] = None,
                 clock: Callable[[], float] = time.monotonic, fitter=None, sources=None, outputs=None,
                 rules=None, name: str = "teachbox") -> None:
        self.loop = loop
        self.name = name  # [box] name: tells boxes apart (page title, MQTT, mDNS)
        self.outputs = outputs  # device.outputs.EventsOutput: rules, events, MQTT, webhook (or None)
        self._rules = rules  # device.app.RulesService: check and keep the page's rules (or None)
        self._rules_lock = threading.Lock()
        self.panel = panel
        self.pairing = pairing
        self.inbox = inbox
        self.switcher = switcher
        self._model_dirs = tuple(Path(d) for d in model_dirs)
        self._model_pinned = model_pinned  # why the phone may not switch the model, if it may not
        self._load_model = load_model
        self._clock = clock
        self.fitter = fitter  # fits the metric head after teaching ([head] kind), or None
        self._sources = sources  # device.app.SourceSwitch: how to look at something else, or None
        self._switch_lock = threading.Lock()
        keeper = loop.keeper
        self._reader = None if keeper is None else LibraryReader(keeper.library)
        self._quality_lock = threading.Lock()
        self._quality: Optional[Tuple[object, QualityReport]] = None

    def __repr__(self) -> str:
        return f"<Box {self.loop!r} panel={'none' if self.panel is None else self.panel_kind}>"

    # -- running ---------------------------------------------------------------------------
    def run(self) -> None:
        """Process frames until :meth:`stop` (the loop's thread)."""
        self.loop.run()

    def step(self):
        """Process one frame (tests and tools)."""
        return self.loop.step()

    def stop(self) -> None:
        self.loop.stop()

    def close(self) -> bool:
        """Store what is left, release the camera, the outputs and the pins; ``False`` if some was lost."""
        if self.fitter is not None:
            self.fitter.close()
        stored = self.loop.close()  # closes the observers: the outputs too
        if self._reader is not None:
            self._reader.close()
        if self.panel is not None:
            self.panel.close()
        return stored

    def add_observer(self, observer) -> None:
        """``observer.update(result)`` after every frame (it must return quickly)."""
        self.loop.add_observer(observer)

    # -- rules and events -------------------------------------------------------------------
    def rules(self) -> RulesView:
        """The rules the box runs now."""
        if self.outputs is None or self._rules is None:
            return RulesView((), (), "this box runs no rules")
        engine = self.outputs.engine
        return RulesView(tuple(self._rules.to_table(rule) for rule in engine.rules), engine.active,
                         self._rules.pinned)

    def set_rules(self, tables: object) -> RulesView:
        """Run the rules given as ``[[rules]]`` tables (a list of mappings) from now on, and keep them.

        :raises RulesRefused: the config file sets the rules, or a table is wrong (the message names the
            rule and key, as for the config file), or a pin cannot be claimed; nothing was changed then.
        :raises StateError: they could not be kept on disk (they still run until the box restarts).
        """
        if self.outputs is None or self._rules is None:
            raise RulesRefused("this box runs no rules")
        if self._rules.pinned:
            raise RulesRefused(self._rules.pinned)
        try:
            rules = self._rules.check(tables)
        except ConfigError as exc:
            raise RulesRefused(str(exc)) from None
        with self._rules_lock:
            try:
                self.outputs.set_rules(rules)
            except PanelError as exc:
                raise RulesRefused(str(exc)) from None
            try:
                self._rules.save([self._rules.to_table(rule) for rule in rules])
            except OSError as exc:
                raise StateError(f"the rules run but could not be kept for the next start: {exc}") from exc
        log.info("rules set on the page: %s", ", ".join(rule.name for rule in rules) or "none")
        return self.rules()

    def rule_pins(self) -> list:
        """The rules' output pins and what they do now (:class:`device.actions.RulePin`), for the simulated panel."""
        if self.outputs is None:
            return []
        pins = []
        for output in tuple(self.outputs.rule_outputs):
            if hasattr(output, "pins"):
                pins.extend(output.pins())
        return pins

    def output_status(self) -> dict:
        """``{"mqtt": status, "webhook": status}`` of the network outputs that are on (their ``status()``)."""
        if self.outputs is None:
            return {}
        return {getattr(consumer, "kind", type(consumer).__name__): consumer.status()
                for consumer in tuple(self.outputs.consumers) if hasattr(consumer, "status")}

    def events(self, *, limit: int = 50, before: Optional[int] = None) -> List[dict]:
        """The newest events of the log (rule and answer starts and ends), newest first, as JSON objects."""
        event_log = self._event_log()
        if event_log is None:
            return []
        if event_log.stats().pending:
            event_log.flush(timeout=1.0)
        return [event_json(event) for event in event_log.recent(limit, before)]

    def event_counts(self, bucket: str = "hour", *, offset: float = 0.0, rules: bool = False) -> dict:
        """How often each answer started per hour or day (see :meth:`device.events.EventLog.counts`)."""
        event_log = self._event_log()
        if event_log is None:
            return {"bucket": bucket, "starts": [], "answers": {}}
        if event_log.stats().pending:
            event_log.flush(timeout=1.0)
        return event_log.counts(bucket, offset=offset, rules=rules)

    def _event_log(self):
        return None if self.outputs is None else self.outputs.event_log

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self) -> BoxSnapshot:
        return BoxSnapshot(self.loop.snapshot(),
                           None if self.panel is None else self.panel.view(),
                           None if self.pairing is None else self.pairing.pending(),
                           self.library_status(),
                           None if self.switcher is None else self.switcher.progress)

    def library_status(self) -> Optional[LibraryStatus]:
        keeper = self.loop.keeper
        if keeper is None:
            return None
        caps = keeper.library.caps
        return LibraryStatus(sum(self.loop.head.counts), keeper.size_bytes, caps.total_bytes, caps.per_class,
                             keeper.pending, keeper.notice, keeper.saving_error)

    def class_names(self) -> Tuple[str, ...]:
        """The classes' names, by class id (cheap: no snapshot)."""
        return tuple(self.loop.head.names)

    @property
    def num_classes(self) -> int:
        return self.loop.head.num_classes

    @property
    def panel_kind(self) -> str:
        return "simulated" if self.panel_simulated else "real"

    @property
    def panel_simulated(self) -> bool:
        return self.panel is not None and self.panel.simulated

    @property
    def can_pair(self) -> bool:
        """A person at the box can approve a browser (there is a panel and a broker)."""
        return self.panel is not None and self.pairing is not None

    # -- teaching ----------------------------------------------------------------------------
    def start_teaching(self, class_id: int, *, lease: float) -> None:
        """A hold from afar: teaching ``class_id`` goes on until stopped or ``lease`` s without renewal."""
        self.loop.start_teaching(class_id, lease=lease, source="phone")

    def keep_teaching(self, class_id: int, lease: float) -> bool:
        return self.loop.keep_teaching(class_id, lease)

    def stop_teaching(self, class_id: Optional[int] = None) -> None:
        self.loop.stop_teaching(class_id)

    def undo(self) -> Optional[Tuple[int, int]]:
        """``(class, examples removed)`` of the last burst, or ``None`` if there is nothing to undo.

        The head follows before this returns (the burst may have been stored before a restart).
        """
        undone = self.loop.undo()
        self.settle()
        return undone

    def settle(self) -> None:
        """Wait until every change asked for is stored and answered with (:class:`StorageBusy` if it is not)."""
        keeper = self.loop.keeper
        if keeper is not None and not keeper.settle(EDIT_TIMEOUT):
            error = keeper.saving_error
            raise StorageBusy("the examples library did not answer in time"
                              + (f" ({error})" if error else "") + "; the change is made when it does")
        if self.fitter is not None:
            self.fitter.settle(EDIT_TIMEOUT)  # and the answering head is fitted to it

    def clear(self, class_id: int) -> int:
        self.loop.head.check_class(class_id)
        forgotten = self.loop.clear(class_id)
        self.settle()
        return forgotten

    def clear_all(self) -> int:
        """Forget every example; class names stay (as when one class is cleared)."""
        forgotten = self.loop.clear_all()
        self.settle()
        return forgotten

    def rename(self, class_id: int, name: object) -> str:
        self.loop.head.check_class(class_id)
        name = self.loop.rename(class_id, validate_class_name(name))
        self.settle()  # stored before this returns
        return name

    # -- what the box looks at ---------------------------------------------------------------------
    @property
    def source(self) -> str:
        """What the box looks at: ``picture``, ``hand``, ``face`` or ``pose``."""
        return getattr(self.loop.embedder, "name", "picture")

    def sources(self) -> List[SourceChoice]:
        current = self.source
        return [SourceChoice(name, THING[name], name == current) for name in SOURCES]

    def switch_source(self, name: object) -> None:
        """Look at ``name`` from the next frame on, with the classes and examples taught on it.

        What was taught on the source it leaves is stored and comes back when it is chosen
        again.  :class:`SwitchRefused` says why not (a model file to fetch, a model switch
        going on); nothing is changed then.
        """
        if self._sources is None:
            raise SwitchRefused("this box cannot change what it looks at")
        if self._sources.pinned:
            raise SwitchRefused(self._sources.pinned)
        if not isinstance(name, str) or name not in SOURCES:
            raise SwitchRefused(f"unknown source {name!r}; the box can look at: {', '.join(SOURCES)}")
        with self._switch_lock:
            if name == self.source:
                return
            if self.switcher is not None and self.switcher.running:
                raise SwitchRefused("the box is embedding its examples with a new model; wait until that is done")
            try:
                state = self._sources.open_state(name)
            except ModelError as exc:
                raise SwitchRefused(str(exc)) from None
            self._swap_source(state)
            self._sources.remember(name)
        log.info("now looking at: %s (%s)", name, state.head)

    def _swap_source(self, state) -> None:
        old_keeper, old_reader = self.loop.keeper, self._reader
        if self.fitter is not None:
            self.fitter.close()
        self.loop.switch_source(state.source, state.head, state.keeper, state.teacher)
        self._reader = LibraryReader(state.keeper.library)
        self.fitter, self.switcher = self._sources.start_helpers(state.keeper)
        with self._quality_lock:
            self._quality = None
        if self.inbox is not None:
            self.inbox.clear()  # its frames were seen with the other source
        self.loop.camera.want_size(state.source.input_size)
        if old_reader is not None:
            old_reader.close()
        if old_keeper is not None and not old_keeper.close():
            log.error("some examples taught last before the switch could not be stored (see above)")

    # -- the model -----------------------------------------------------------------------------
    def models(self) -> List[ModelChoice]:
        """The embedding models the box knows, which are here and which one it runs."""
        current = self.loop.model.sha256
        return [ModelChoice(m.filename, m.dim, m.input_size, m.note, self._model_file(m.filename) is not None,
                            m.sha256 == current) for m in embedding_models().values()]

    def switch_model(self, name: object) -> None:
        """Embed every stored example with model ``name`` in the background, then answer with it.

        The box goes on answering with its model until the new one is ready
        (:attr:`BoxSnapshot.model_switch` tells how far it is).  :class:`SwitchRefused` says why not.
        """
        if self.switcher is None or self._load_model is None:
            raise SwitchRefused("this box cannot switch its model")
        if self._model_pinned:
            raise SwitchRefused(self._model_pinned)
        if self.source != "picture":
            raise SwitchRefused(f"the model is what the box sees pictures with; it looks at {self.source}s now. "
                                "Switch it to pictures first")
        if not isinstance(name, str) or name not in embedding_models():
            raise SwitchRefused(f"unknown model {name!r}; known models: {', '.join(embedding_models())}")
        if MODELS[name].sha256 == self.loop.model.sha256:
            raise SwitchRefused(f"the box runs {name} already")
        if self.switcher.running:
            raise SwitchRefused("a model switch is already going on; wait until it is done")
        path = self._model_file(name)
        folder = self._model_dirs[0] if self._model_dirs else Path("models")
        if path is None:
            raise SwitchRefused(f"{name} is not on this box: fetch it first with {fetch_command(folder, name)}")
        embedder = self._load_model(path)  # ModelError: a damaged file (the message says what to do)
        if embedder.sha256 != MODELS[name].sha256:
            raise SwitchRefused(f"{path} is not the known {name} (its sha256 differs): fetch it again with "
                                f"{fetch_command(path.parent, name, force=True)}")
        self.switcher.start(embedder)

    def _model_file(self, name: str) -> Optional[Path]:
        for folder in self._model_dirs:
            if (folder / name).is_file():
                return folder / name
        return None

    # -- the examples ----------------------------------------------------------------------------
    def examples(self, class_id: int, *, before: Optional[int] = None, limit: int = 48) -> ExamplePage:
        """A page of a class's stored examples, newest first."""
        self.loop.head.check_class(class_id)
        rows = self._library_reader().page(class_id, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return ExamplePage(tuple(rows), rows[-1].id if more and rows else None)

    def example_crop(self, example_id: int) -> Optional[bytes]:
        """The JPEG of what the model saw for an example (``None``: no such example, or none kept)."""
        return self._library_reader().crop(example_id)

    def delete_examples(self, ids: Iterable[int]) -> int:
        """Delete stored examples; how many there were.  The head, counts and LEDs follow before this returns."""
        ids = _ids(ids)
        return self._wait(self._keeper().delete(ids))

    def move_examples(self, ids: Iterable[int], class_id: int) -> int:
        """File stored examples under another class; how many were moved."""
        ids = _ids(ids)
        self.loop.head.check_class(class_id)
        return self._wait(self._keeper().move(ids, class_id))

    def quality(self) -> QualityReport:
        """Leave-one-out quality of every class over the stored examples (cached until they change)."""
        keeper = self._keeper()
        with self._quality_lock:
            head = self.loop.head
            key = (keeper.changes, keeper.model, tuple(head.names), head.num_classes)
            if self._quality is None or self._quality[0] != key:
                model = keeper.model
                decode = keeper.decode
                examples = [(i, c, decode(v)) for i, c, v in self._library_reader().embeddings(model.sha256, model.dim)
                            if c < head.num_classes]
                self._quality = (key, assess(examples, num_classes=head.num_classes, names=head.names))
            return self._quality[1]

    def doubtful(self) -> List[DoubtfulFrame]:
        """The frames the box was unsure of, newest first."""
        return [] if self.inbox is None else self.inbox.entries()

    def doubtful_frame(self, frame_id: int) -> DoubtfulFrame:
        """One of them (:class:`~device.inbox.FrameGoneError` when it is gone)."""
        return self._inbox().get(frame_id)

    def file_doubtful(self, frame_id: int, class_id: int) -> None:
        """Teach a doubtful frame to ``class_id`` (its stored embedding: no new capture)."""
        self.loop.head.check_class(class_id)
        frame = self._inbox().take(frame_id)
        self.loop.teach_example(class_id, frame.embedding, frame.thumbnail(), source="inbox")

    def dismiss_doubtful(self, frame_id: int) -> None:
        """Throw a doubtful frame away without filing it (:class:`FrameGoneError` when it is gone)."""
        self._inbox().take(frame_id)

    def seconds_ago(self, when: float) -> float:
        """How long ago a doubtful frame's ``time`` was (the box's own clock)."""
        return max(0.0, self._clock() - when)

    def _library_reader(self) -> LibraryReader:
        if self._reader is None:
            raise NoLibrary("this box keeps no examples")
        return self._reader

    def _keeper(self):
        if self.loop.keeper is None:
            raise NoLibrary("this box keeps no examples")
        return self.loop.keeper

    def _inbox(self) -> DoubtfulInbox:
        if self.inbox is None:
            raise NoLibrary("this box keeps no doubtful frames")
        return self.inbox

    def _wait(self, future):
        try:
            result = future.result(EDIT_TIMEOUT)
            if self.fitter is not None:
                self.fitter.settle(EDIT_TIMEOUT)  # the answering head is fitted to the change too
            return result
        except FutureTimeout:
            error = self.loop.keeper.saving_error
            raise StorageBusy("the examples library did not answer in time"
                              + (f" ({error})" if error else "") + "; the change is made when it does") from None

    # -- moving what was learned ----------------------------------------------------------------
    def export_state(self) -> bytes:
        """Every stored example (crops, embeddings, classes, names) and the model, for :meth:`import_state`."""
        return encode_export(self._export_contents())

    def _export_contents(self) -> ExportContents:
        keeper = self._keeper()
        self.settle()  # what was just taught is in it
        loop = self.loop
        with loop.lock:
            model, names, num_classes = loop.model, dict(enumerate(loop.head.names)), loop.head.num_classes
        return export_contents(keeper.library, model, names=names, num_classes=num_classes)

    def import_state(self, data: bytes) -> Tuple[ClassCount, ...]:
        """Replace every example by an exported file's; :class:`ImportRefused` changes nothing.

        A file made with another model has its crops embedded again with this box's model
        (in the background, as a model switch); an old ``head.npz`` export is taken too.
        """
        keeper = self._keeper()
        if self.switcher is not None and self.switcher.running:
            raise ImportBusy("the box is embedding its examples with a new model; import when that is done. "
                                "Nothing was changed.")
        if looks_like_export(data):
            try:
                contents = decode_export(data)
            except StateError as exc:
                raise ImportRefused(f"this export file cannot be used: {exc}. Nothing was changed.") from None
            return self._import_examples(keeper, contents)
        return self._import_head(keeper, data)

    def _import_examples(self, keeper, contents: ExportContents) -> Tuple[ClassCount, ...]:
        loop = self.loop
        kind = source_of_model(contents.model.name)
        if kind != self.source:
            raise ImportRefused(f"this file holds what a box looking at {THING[kind]}s was taught; this one looks "
                                f"at {THING[self.source]}s. Switch it to {kind} first (each keeps its own classes). "
                                "Nothing was changed.")
        same_model = contents.model.sha256 == loop.model.sha256
        if not same_model and not any(e.crop for e in contents.examples):
            raise ImportRefused(f"this file was made with another model ({contents.model.name or 'unknown'}) and "
                                "carries no pictures to learn from again. Nothing was changed.")
        examples = [NewExample(e.class_id, e.vector if same_model else None, e.crop, e.source, e.taken)
                    for e in contents.examples if same_model and e.vector is not None or e.crop is not None]
        names = {c: n for c, n in contents.names.items()}
        loop.forget_teaching()
        try:
            self._wait(keeper.replace_all(lambda library: library.replace_all(
                names, examples, model=contents.model.sha256, seeds=contents.seeds,
                seed_model=contents.model.sha256)))
        except LibraryFull as exc:
            raise ImportRefused(f"this file holds more than the box keeps: {exc}. Nothing was changed.") from None
        if any(example.embedding is None for example in examples):
            log.info("imported examples of %s: embedding them with %s", contents.model.name, loop.model.name)
            if self.switcher is not None and self._load_model is not None:
                self.switcher.start(self._load_model(loop.embedder.model_path), swap=False)
        counts = [0] * contents.num_classes
        for example in examples:
            counts[example.class_id] += 1
        for class_id, (_, count) in contents.seeds.items():
            counts[class_id] += count if same_model else 0
        return tuple(ClassCount(names.get(c, f"Class {c + 1}"), n) for c, n in enumerate(counts))

    def _import_head(self, keeper, data: bytes) -> Tuple[ClassCount, ...]:
        loop = self.loop
        try:
            head = decode_head(data, loop.model, threshold=loop.head.threshold, temperature=loop.head.temperature)
        except ForeignStateError as exc:
            raise ImportRefused("this file was made by a box running another model, so it cannot be used "
                                f"here. Nothing was changed. ({exc})") from None
        except StateError as exc:
            raise ImportRefused("this is not a teachbox export file, or it is damaged. Nothing was changed. "
                                f"({exc})") from None
        _, arrays = head.to_state()
        names = dict(enumerate(head.names))
        seeds = {c: (arrays["sums"][c], int(n)) for c, n in enumerate(arrays["counts"]) if n > 0}
        loop.forget_teaching()
        self._wait(keeper.replace_all(
            lambda library: library.replace_all(names, [], model=None, seeds=seeds, seed_model=loop.model.sha256)))
        return tuple(ClassCount(n, c) for n, c in zip(head.names, head.counts))

    # -- the camera ---------------------------------------------------------------------------
    def latest_frame(self) -> Tuple[int, Optional[np.ndarray]]:
        """``(sequence number, frame)`` of the last processed frame (never written to: do not either)."""
        last = self.loop.last_result
        return (-1, None) if last is None or last.frame is None else (last.seq, last.frame)

    def select_source(self, source: str) -> None:
        """Switch a camera with named sources (the synthetic scene, a folder of folders)."""
        self.loop.camera.select(source)

    # -- the simulated front panel ------------------------------------------------------------
    def press(self, button: ButtonName) -> None:
        """Press a simulated panel button; :class:`PanelError` if the panel is real or absent."""
        self._simulated_panel().press(button)

    def release(self, button: ButtonName) -> None:
        self._simulated_panel().release(button)

    def _simulated_panel(self) -> Panel:
        if self.panel is None:
            raise PanelError("this box has no front panel ([panel] gpio = \"off\")")
        return self.panel


def _ids(ids: Iterable[int]) -> List[int]:
    ids = list(ids)
    if len(ids) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} examples at a time, not {len(ids)}")
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 1 << 62 for i in ids):
        raise ValueError("example ids are positive whole numbers")
    return ids
