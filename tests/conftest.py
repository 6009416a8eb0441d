"""Shared fixtures.

The real model is required (``scripts/dev.sh test`` fetches it into ``models/``; set
``TEACHBOX_MODEL`` to use another copy): tests that need it fail, never skip, when it
is missing.  The COIL-100 evaluation photos are optional: ``TEACHBOX_COIL100`` or
``../shared/data/coil100-dev``; without them the data tests skip with a reason.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from device.models import DEFAULT_MODEL

REPO = Path(__file__).resolve().parent.parent


def _model_candidates():
    if os.environ.get("TEACHBOX_MODEL"):
        yield Path(os.environ["TEACHBOX_MODEL"])
    yield REPO / "models" / DEFAULT_MODEL
    if os.environ.get("TEACHBOX_MODEL_MIRROR"):
        yield Path(os.environ["TEACHBOX_MODEL_MIRROR"]) / DEFAULT_MODEL
    yield REPO.parent / "shared" / "models" / DEFAULT_MODEL


@pytest.fixture(scope="session")
def model_path() -> Path:
    for candidate in _model_candidates():
        if candidate.is_file():
            return candidate
    pytest.fail(f"the model {DEFAULT_MODEL} is missing: run `scripts/dev.sh test` "
                "(or `teachbox fetch-model --model-dir models`) first")


@pytest.fixture(scope="session")
def embedder(model_path):
    from device.embedder import Embedder

    return Embedder(model_path, num_threads=2)


@pytest.fixture(scope="session")
def coil100() -> Path:
    path = Path(os.environ.get("TEACHBOX_COIL100") or REPO.parent / "shared" / "data" / "coil100-dev")
    if not path.is_dir():
        pytest.skip(f"COIL-100 evaluation photos not found at {path} (set TEACHBOX_COIL100)")
    return path


@pytest.fixture
def hanging_camera():
    """A camera whose read() blocks, like a wedged Pi camera; released at teardown."""
    from device.camera import Camera

    class HangingCamera(Camera):
        name = "hanging"

        def __init__(self):
            self.release = threading.Event()

        def read(self):
            self.release.wait()
            return np.zeros((8, 8, 3), np.uint8)

    camera = HangingCamera()
    yield camera
    camera.release.set()


@pytest.fixture
def factory():
    """gpiozero's own mock pins (with PWM), reset after the test."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()


class Clock:
    """A monotonic clock the test moves by hand (``clock.t += 5``)."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self):
        return self.t


def box_config(state_dir, **sections):
    """The config tests build boxes from: state in ``state_dir``, every frame can teach, no smoothing.

    ``sections`` override more, e.g. ``web={"pin": "246813"}``.
    """
    from device.config import Config

    config = (Config().override("storage", state_dir=str(state_dir))
              .override("teaching", rate=100.0, duplicate_similarity=0.98)
              .override("head", smoothing=1)
              .override("camera", timeout=2.0))
    for section, values in sections.items():
        config = config.override(section, **values)
    return config


def model_dir_with(names) -> Path:
    """The first model folder holding every file of ``names`` ($TEACHBOX_MODEL_MIRROR, models/, ../shared/models)."""
    candidates = [Path(os.environ["TEACHBOX_MODEL_MIRROR"])] if os.environ.get("TEACHBOX_MODEL_MIRROR") else []
    candidates += [REPO / "models", REPO.parent / "shared" / "models"]
    for folder in candidates:
        if all((folder / name).is_file() for name in names):
            return folder
    pytest.skip(f"the MediaPipe models {', '.join(names)} are not in {', '.join(map(str, candidates))} "
                "(set TEACHBOX_MODEL_MIRROR)")


def shared_data(folder: str, env: str, needed, what: str) -> Path:
    """``$env`` or ../shared/data/``folder``, skipping the test when an entry of ``needed`` is not in it."""
    path = Path(os.environ.get(env) or REPO.parent / "shared" / "data" / folder)
    if not all((path / name).exists() for name in needed):
        pytest.skip(f"{what} are not in {path} (set {env})")
    return path


def teach_scenes(box, scenes, examples=3):
    """Teach class i what the synthetic camera shows as ``scenes[i]`` (``examples`` examples each), then settle."""
    for class_id, scene in enumerate(scenes):
        box.select_source(scene)
        box.loop.teach_next(class_id, examples)
        for _ in range(examples + 1):
            box.step()
    box.settle()


def prompt_events(config):
    """``config`` with the answers' own events at once ([events] hold and until 0): tests need not wait."""
    import dataclasses

    return dataclasses.replace(config, events=dataclasses.replace(config.events, hold=0.0, until=0.0))
