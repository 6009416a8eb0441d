"""Builds the appliance from a configuration, in one place: camera, embedder, head, state, loop, panel."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

from .box import Box
from .bursts import BurstTeacher
from .camera import (Camera, CameraSupervisor, SyntheticCamera, is_raspberry_pi, make_camera,
                     pi_camera_available)
from .config import Config
from .doubtful import DoubtfulOutput
from .embedder import Embedder
from .inbox import DoubtfulInbox
from .keeper import MODEL_CHOICE_KEY, ExampleKeeper
from .models import MODELS
from .fitter import Fitter
from .reembed import ModelSwitcher
from .library import Caps, ExampleLibrary
from .loop import LogOutput, TeachLoop
from .notify import SystemdOutput
from .pairing import PairingBroker
from .panel import Panel, make_pin_factory
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


def open_library(config: Config) -> ExampleLibrary:
    return ExampleLibrary(config.state_dir, caps=Caps(config.storage.max_examples_per_class,
                                                      config.storage.max_megabytes << 20))


def chosen_model_path(config: Config, library: ExampleLibrary) -> Path:
    """The model to run: ``[model] path`` if set, else the one chosen on the phone if it is here, else the default."""
    choice = library.meta(MODEL_CHOICE_KEY)
    if config.model.path or not choice or choice not in MODELS:
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


def load_head(keeper: ExampleKeeper, config: Config):
    """The head of every stored example, sized as configured (never dropping a class that has examples)."""
    store = StateStore(config.state_dir)
    head = keeper.load(config.head.classes, store=store)
    wanted = config.head.classes
    if head.num_classes != wanted:
        log.warning("the config asks for %d classes but the examples library has examples in classes beyond "
                    "that; keeping %d classes (clear those classes first to shrink)", wanted, head.num_classes)
    if head.total:
        log.info("what was learned: %s", head)
    return head


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
    library = open_library(config)
    try:
        embedder = embedder or Embedder(chosen_model_path(config, library), num_threads=config.threads)
    except BaseException:
        library.close()
        raise
    log.debug("model %r", embedder)
    if camera is None:
        camera = choose_camera(config.camera.source, simulate=simulate, model_size=embedder.input_size,
                               swap_rb=config.camera.swap_rb)
    supervisor = CameraSupervisor(camera, timeout=config.camera.timeout)
    keeper = open_keeper(config, embedder, library)
    head = load_head(keeper, config)
    teacher = BurstTeacher(embedder.dim, rate=config.teaching.rate,
                           duplicate_similarity=config.teaching.duplicate_similarity)
    loop = TeachLoop(supervisor, embedder, head, model=model_identity(embedder.describe()),
                     keeper=keeper,
                     smoothing=config.head.smoothing, teacher=teacher)
    loop.add_observer(LogOutput(lambda: loop.head.names))
    loop.add_observer(SystemdOutput(loop))
    inbox = DoubtfulInbox()
    loop.add_observer(DoubtfulOutput(inbox, clock=clock))
    switcher = ModelSwitcher(keeper, swap=loop.switch_model, on_done=lambda _: inbox.clear())
    reembed_if_needed(keeper, switcher, embedder)
    fitter = start_fitter(config, keeper, loop)
    services = {"inbox": inbox, "switcher": switcher, "fitter": fitter, "model_dirs": config.model_dirs,
                "model_pinned": ("the config file sets [model] path, so the model is changed there"
                                 if config.model.path else None),
                "load_model": lambda path: Embedder(path, num_threads=config.threads), "clock": clock}
    if config.panel.gpio == "off":
        return Box(loop, **services)
    pairing = PairingBroker(len(config.panel.class_buttons), clock=clock)
    factory = pin_factory or make_pin_factory(config.panel.gpio, simulate=simulate)
    panel = Panel(loop, config.panel, pin_factory=factory, pairing=pairing, clock=clock)
    loop.add_input(panel)
    loop.add_observer(panel)
    log.info("front panel: %s", panel.describe())
    return Box(loop, panel=panel, pairing=pairing, **services)


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


def reembed_if_needed(keeper: ExampleKeeper, switcher: ModelSwitcher, embedder: Embedder) -> None:
    """The model was changed in the config: embed the stored crops with it in the background."""
    library = keeper.library
    missing = library.missing_embeddings(keeper.model.sha256)
    if not missing:
        return
    log.warning("the model changed to %s: %d stored examples are embedded with it in the background; "
                "they count again when that is done", embedder.model_path.name, len(missing))
    switcher.start(Embedder(embedder.model_path, num_threads=embedder.num_threads), swap=False)
