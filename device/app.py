"""Builds the appliance from a configuration, in one place: camera, embedder, head, state, loop, panel."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

from .box import Box
from .bursts import BurstTeacher
from .camera import (Camera, CameraSupervisor, SyntheticCamera, is_raspberry_pi, make_camera,
                     pi_camera_available)
from .config import Config, rule_to_mapping, rules_from_list
from .doubtful import DoubtfulOutput
from .actions import GpioActions
from .atomic import atomic_file
from .events import EventLog
from .embedder import Embedder
from .inbox import DoubtfulInbox
from .keeper import MODEL_CHOICE_KEY, ExampleKeeper
from .models import embedding_models
from .fitter import Fitter
from .reembed import ModelSwitcher
from .outputs import EventsOutput, load_phone_rules, save_phone_rules
from .rules import AnswerEvents
from .sound import SoundPlayer
from .library import Caps, ExampleLibrary
from .loop import LogOutput, TeachLoop
from .notify import SystemdOutput
from .pairing import PairingBroker
from .panel import Panel, make_pin_factory
from .sources import SOURCES, open_source
from .storage import StateStore, model_identity

log = logging.getLogger(__name__)


def choose_camera(spec: str, *, simulate: bool, model_size, swap_rb: bool = False) -> Camera:
    """The camera for ``spec``; ``auto`` is the Pi camera when there is one, else the synthetic scene."""
    if spec != "auto":
        return make_camera(spec, model_size=model_size, swap_rb=swap_rb)
    if not simulate:
        present, why = pi_camera_available()
        if present:
            return make_camera("picamera2", model_size=model_size, swap_rb=swap_rb)
        if is_raspberry_pi():
            # never teach a real box made-up frames: show the camera offline and keep retrying
            log.error("no Pi camera (%s): check the ribbon cable; retrying until it is found", why)
            return make_camera("picamera2", model_size=model_size, swap_rb=swap_rb)
        log.warning("no Pi camera (%s): running simulated with the synthetic scene. "
                    "Use --camera opencv:0 for a USB webcam or --camera folder:PATH for images.", why)
    return SyntheticCamera()


def head_options(config: Config) -> dict:
    return {"threshold": config.head.unknown_threshold or None, "temperature": config.head.temperature}


SOURCE_CHOICE = "source"  # file in the state folder: what the box was last told on the phone to look at


def source_state_dir(config: Config, source: str) -> Path:
    """Where a source keeps its classes and examples: pictures in the state folder, the others beside them."""
    return config.state_dir if source == "picture" else config.state_dir / "sources" / source


def chosen_source(config: Config) -> str:
    """``[source] kind`` if set, else what was chosen on the phone, else ``picture``."""
    if config.source.kind:
        return config.source.kind
    try:
        choice = (config.state_dir / SOURCE_CHOICE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "picture"
    if choice not in SOURCES:
        log.warning("ignoring %s: %r is not a source (%s)", config.state_dir / SOURCE_CHOICE, choice,
                    ", ".join(SOURCES))
        return "picture"
    return choice


def remember_source(config: Config, source: str) -> None:
    """The box looks at ``source`` after a restart too (written atomically)."""
    with atomic_file(config.state_dir / SOURCE_CHOICE) as out:
        out.write(source.encode("ascii") + b"\n")


def open_library(config: Config, state_dir: Optional[Path] = None) -> ExampleLibrary:
    return ExampleLibrary(state_dir or config.state_dir, caps=Caps(config.storage.max_examples_per_class,
                                                                   config.storage.max_megabytes << 20))


def chosen_model_path(config: Config, library: ExampleLibrary) -> Path:
    """The model to run: ``[model] path`` if set, else the one chosen on the phone if it is here, else the default."""
    choice = library.meta(MODEL_CHOICE_KEY)
    if config.model.path or not choice or choice not in embedding_models():
        return config.model_path
    for folder in config.model_dirs:
        if (folder / choice).is_file():
            return folder / choice
    log.warning("the model chosen on the phone, %s, is not in %s; using %s", choice,
                ", ".join(map(str, config.model_dirs)), config.model_path.name)
    return config.model_path


def open_keeper(config: Config, embedder: Embedder, library: Optional[ExampleLibrary] = None) -> ExampleKeeper:
    """The examples library of ``config.state_dir`` behind its writer (a ``head.npz`` there is carried over)."""
    library = library or open_library(config)
    return ExampleKeeper(library, model=model_identity(embedder.describe()), to_stored=embedder.to_stored,
                         from_stored=embedder.from_stored, head_options=head_options(config),
                         flush_after=config.storage.save_interval)


def load_head(keeper: ExampleKeeper, config: Config, state_dir: Optional[Path] = None):
    """The head of every stored example, sized as configured (never dropping a class that has examples)."""
    store = StateStore(state_dir or config.state_dir)
    head = keeper.load(config.head.classes, store=store)
    wanted = config.head.classes
    if head.num_classes != wanted:
        log.warning("the config asks for %d classes but the examples library has examples in classes beyond "
                    "that; keeping %d classes (clear those classes first to shrink)", wanted, head.num_classes)
    if head.total:
        log.info("what was learned: %s", head)
    return head


@dataclass
class SourceState:
    """A source with its own examples, head and teacher: what the box keeps per thing it looks at."""

    source: object
    keeper: ExampleKeeper
    head: object
    teacher: BurstTeacher


def reload_source(config: Config, source) -> object:
    """A second instance of ``source``, with interpreters of its own (for work beside the loop)."""
    if source.name == "picture":
        return Embedder(source.model_path, num_threads=config.threads)
    return open_source(source.name, picture_model=config.model_path, model_dirs=config.model_dirs,
                       num_threads=config.threads, lite=config.source.lite)


def open_source_state(config: Config, name: str, *, source=None) -> SourceState:
    """The examples library of source ``name`` and what it taught (``source``: already loaded)."""
    state_dir = source_state_dir(config, name)
    StateStore(state_dir).check_writable()
    library = open_library(config, state_dir)
    try:
        if source is None:
            source = (open_source(name, picture_model=chosen_model_path(config, library), model_dirs=config.model_dirs,
                                  num_threads=config.threads, lite=config.source.lite))
        keeper = open_keeper(config, source, library)
    except BaseException:
        library.close()
        raise
    head = load_head(keeper, config, state_dir)
    teacher = BurstTeacher(source.dim, rate=config.teaching.rate,
                           duplicate_similarity=config.teaching.duplicate_similarity)
    return SourceState(source, keeper, head, teacher)


def build_box(config: Config, *, simulate: bool = False, camera: Optional[Camera] = None,
              embedder: Optional[Embedder] = None, pin_factory=None,
              clock: Callable[[], float] = time.monotonic) -> Box:
    """The whole appliance, wired through constructors; validates the panel's pins first.

    :param simulate: simulated hardware (synthetic camera unless ``camera``, mock pins).
    :param camera: a camera to use instead of ``[camera] source``.
    :param embedder: an already loaded :class:`~device.embedder.Embedder` (tools and tests).
    :param pin_factory: a gpiozero pin factory instead of the one ``[panel] gpio`` picks.
    :param clock: monotonic seconds for the panel and pairing (tests pass their own).
    """
    StateStore(config.state_dir).check_writable()
    name = getattr(embedder, "name", None) or chosen_source(config)
    state = open_source_state(config, name, source=embedder)
    embedder = state.source
    log.debug("looking at %s with %r", name, embedder)
    if camera is None:
        camera = choose_camera(config.camera.source, simulate=simulate, model_size=embedder.input_size,
                               swap_rb=config.camera.swap_rb)
    supervisor = CameraSupervisor(camera, timeout=config.camera.timeout)
    loop = TeachLoop(supervisor, embedder, state.head, model=model_identity(embedder.describe()),
                     keeper=state.keeper, smoothing=config.head.smoothing, teacher=state.teacher)
    loop.add_observer(LogOutput(lambda: loop.head.names))
    loop.add_observer(SystemdOutput(loop))
    inbox = DoubtfulInbox()
    loop.add_observer(DoubtfulOutput(inbox, clock=clock))

    def start_helpers(keeper: ExampleKeeper) -> Tuple[Optional[Fitter], ModelSwitcher]:
        switcher = ModelSwitcher(keeper, swap=loop.switch_model, on_done=lambda _: inbox.clear())
        reembed_if_needed(keeper, switcher, loop.embedder, lambda: reload_source(config, loop.embedder))
        return start_fitter(config, keeper, loop), switcher

    fitter, switcher = start_helpers(state.keeper)
    services = {"inbox": inbox, "switcher": switcher, "fitter": fitter, "model_dirs": config.model_dirs,
                "model_pinned": ("the config file sets [model] path, so the model is changed there"
                                 if config.model.path else None),
                "load_model": lambda path: Embedder(path, num_threads=config.threads), "clock": clock,
                "sources": SourceSwitch(open_state=lambda source: open_source_state(config, source),
                                        start_helpers=start_helpers,
                                        remember=lambda source: remember_source(config, source),
                                        pinned=("the config file sets [source] kind, so what the box looks at "
                                                "is changed there" if config.source.kind else None))}
    factory = None if config.panel.gpio == "off" else pin_factory or make_pin_factory(config.panel.gpio,
                                                                                        simulate=simulate)
    services["outputs"] = outputs = add_outputs(config, loop, factory)
    services["rules"] = rules_service(config)
    services["name"] = config.box_name
    if factory is None:
        box = Box(loop, **services)
    else:
        pairing = PairingBroker(len(config.panel.class_buttons), clock=clock)
        panel = Panel(loop, config.panel, pin_factory=factory, pairing=pairing, clock=clock)
        loop.add_input(panel)
        loop.add_observer(panel)
        log.info("front panel: %s", panel.describe())
        box = Box(loop, panel=panel, pairing=pairing, **services)
    add_network_outputs(config, box, outputs)
    return box


def starting_rules(config: Config) -> tuple:
    """The config's ``[[rules]]``; without any, those set on the page (``rules.json``)."""
    if config.rules:
        return config.rules
    return load_phone_rules(config.state_dir, rules_service(config).check)


@dataclass(frozen=True)
class RulesService:
    """How the box checks and keeps the rules set on the page (given to :class:`~device.box.Box`)."""

    check: Callable[[object], tuple]  # a list of [[rules]] tables -> rules (raises ConfigError)
    save: Callable[[list], None]  # keep the checked tables (rules.json)
    to_table: Callable[[object], dict]  # a rule -> its [[rules]] table
    pinned: Optional[str] = None  # why the page may not change them, if it may not


def rules_service(config: Config) -> RulesService:
    return RulesService(check=lambda tables: rules_from_list(tables, config.panel, config.head.classes),
                        save=lambda tables: save_phone_rules(config.state_dir, tables), to_table=rule_to_mapping,
                        pinned=("the config file sets [[rules]], so the rules are changed there"
                                if config.rules else None))


def add_outputs(config: Config, loop: TeachLoop, factory) -> EventsOutput:
    """Rules (GPIO, sound), answer events and the event log: one observer of the loop."""
    names = lambda: loop.head.names  # noqa: E731

    def rule_outputs(rules) -> list:
        outputs: list = []
        if any(rule.then or rule.ended for rule in rules):
            if factory is None:
                log.warning("[panel] gpio = \"off\": the rules' GPIO outputs are not driven (their events are logged)")
            else:
                outputs.append(GpioActions(rules, factory))
        if any(rule.sound for rule in rules):
            outputs.append(SoundPlayer(rules))
        return outputs

    rules = starting_rules(config)
    events = config.events
    answers = AnswerEvents(confidence=events.confidence, hold=events.hold, until=events.until, names=names)
    output = EventsOutput(rules, names=names, answers=answers, make_rule_outputs=rule_outputs,
                          event_log=EventLog(config.state_dir), log_answers=events.log_answers)
    loop.add_observer(output)
    if rules:
        log.info("rules: %s", ", ".join(rule.name for rule in rules))
    return output


def add_network_outputs(config: Config, box: Box, outputs: EventsOutput) -> None:
    """MQTT and the webhook, fed with every event (and MQTT with the answer of every frame)."""
    if config.mqtt.host:
        from .mqtt import MqttOutput

        mqtt = MqttOutput(config.mqtt, box_name=config.box_name, box_id=config.box_id, box=box)
        outputs.add_consumer(mqtt)  # closed with the outputs
        box.add_observer(_StateOnly(mqtt))
    if config.webhook.url:
        from .webhooks import WebhookSender

        outputs.add_consumer(WebhookSender(config.webhook, box_name=config.box_name, box_id=config.box_id,
                                           source=lambda: box.source))


class _StateOnly:
    """The per-frame state of an output that the events output closes (so it is closed once)."""

    def __init__(self, output) -> None:
        self.update = output.update


def start_fitter(config: Config, keeper: ExampleKeeper, loop: TeachLoop) -> Optional[Fitter]:
    """The thread that fits the metric (or k-NN) head after teaching; ``None`` for the live centroid head."""
    if config.head.kind == "centroid":
        return None
    fitter = Fitter(keeper, kind=config.head.kind, sensitivity=config.head.sensitivity,
                    num_classes=lambda: loop.head.num_classes, install=loop.install_fit)
    keeper.watch(fitter.request)
    fitter.start()
    fitter.request()
    return fitter


@dataclass(frozen=True)
class SourceSwitch:
    """How the box changes what it looks at (given to :class:`~device.box.Box`)."""

    open_state: Callable[[str], SourceState]  # the source's models, examples and head
    start_helpers: Callable[[ExampleKeeper], tuple]  # (fitter or None, model switcher) of its examples
    remember: Callable[[str], None]  # what it looks at after a restart
    pinned: Optional[str] = None  # why the phone may not change it, if it may not


def reembed_if_needed(keeper: ExampleKeeper, switcher: ModelSwitcher, embedder, reload: Callable[[], object]) -> None:
    """The model (or a source's features) changed: embed the stored crops with it in the background."""
    library = keeper.library
    missing = library.missing_embeddings(keeper.model.sha256)
    if not missing:
        return
    log.warning("the model changed to %s: %d stored examples are embedded with it in the background; "
                "they count again when that is done", embedder.describe()["model"], len(missing))
    switcher.start(reload(), swap=False)
