"""Smoke test of the installed teachbox on the Pi's CPU architecture (run by scripts/check-arm64.sh).

usage: python scripts/arm64_smoke.py MODEL.tflite

Runs inside the emulated arm64 Debian root with the venv's python, against the
*installed* package (not the source tree), and checks, with the real model:

1. device.embedder.Embedder embeds two synthetic scenes: shape (1024,), finite, different;
2. a NearestCentroidHead taught those two embeddings answers each with its own class;
3. the front panel on gpiozero's MockFactory: a pressed class button teaches the loop
   that class, and the LED of the predicted class is lit;
4. the phone page: /api/status (and / and /api/frame.jpg) through Flask's test client,
   and /api/status over real HTTP from a waitress server on 127.0.0.1.

Emulation is about 100x slower than a Pi (about 1 s per model call), so the model is
called only about ten times, and nothing is timed.  Exit status 0 = every check passed.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import threading
import urllib.request
from importlib import metadata
from pathlib import Path

import numpy as np

BUTTONS = (5, 6, 13, 19)  # PanelConfig() defaults (BCM)
LEDS = (12, 16, 20, 21)
SCENES = ("red ball", "blue box")
CHECKS = []


def check(condition, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    CHECKS.append(what)
    print(f"  ok  {what}", flush=True)


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


class Clock:
    """The panel's clock, moved by hand (no waiting, nothing depends on emulation speed)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def where(module) -> str:
    path = Path(module.__file__).resolve()
    return "apt (system site-packages)" if "dist-packages" in path.parts else "pip (venv)"


def report_platform() -> None:
    import device

    try:
        system = platform.freedesktop_os_release().get("PRETTY_NAME", "?")
    except OSError:
        system = "?"
    print(f"machine {platform.machine()}, Python {platform.python_version()}, {system}")
    print(f"numpy {np.__version__} from {where(np)}; ml_dtypes {version('ml_dtypes')}; "
          f"ai-edge-litert {version('ai-edge-litert')}; Pillow {version('Pillow')}; flask {version('flask')}; "
          f"waitress {version('waitress')}; gpiozero {version('gpiozero')}")
    print(f"teachbox {version('teachbox')} imported from {Path(device.__file__).parent}")
    if Path(device.__file__).resolve().is_relative_to(Path.cwd().resolve()):
        print("  (warning: imported from the source tree, not the installed package)")


def check_embedder(model_path: Path):
    from device.camera import SyntheticCamera
    from device.embedder import Embedder

    print("1. embedder", flush=True)
    embedder = Embedder(model_path, num_threads=2)
    print(f"  {embedder!r}")
    check(embedder.runtime == "ai-edge-litert", f"runtime is ai-edge-litert (got {embedder.runtime})")
    camera = SyntheticCamera(fps=0)
    embeddings = {}
    for scene in SCENES:
        camera.select(scene)
        vector = embedder.embed(camera.read()).copy()  # the returned buffer is reused: copy
        check(vector.shape == (1024,) and vector.dtype == np.float32,
              f"{scene!r}: embedding shape {vector.shape} {vector.dtype}")
        check(bool(np.isfinite(vector).all()) and float(np.linalg.norm(vector)) > 0,
              f"{scene!r}: embedding finite and non-zero (norm {np.linalg.norm(vector):.3f})")
        embeddings[scene] = vector
    a, b = (embeddings[s] for s in SCENES)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    check(cosine < 0.99, f"the two scenes embed differently (cosine {cosine:.4f})")
    return embedder, embeddings


def check_head(embedder, embeddings) -> None:
    from device.head import STATUS_OK, NearestCentroidHead

    print("2. nearest-centroid head", flush=True)
    head = NearestCentroidHead(embedder.dim, 2)
    for class_id, scene in enumerate(SCENES):
        check(head.teach(class_id, embeddings[scene]), f"taught {scene!r} as class {class_id}")
    for class_id, scene in enumerate(SCENES):
        prediction = head.predict(embeddings[scene])
        check(prediction.status == STATUS_OK and prediction.class_id == class_id,
              f"{scene!r} is answered as class {class_id} (got {prediction.status} {prediction.class_id}, "
              f"confidence {prediction.confidence:.3f})")


def build_box(embedder, state_dir):
    """The appliance as `teachbox run` builds it (device.app.build_box), on gpiozero's MockFactory."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from device.app import build_box as build
    from device.camera import SyntheticCamera
    from device.config import Config

    factory = MockFactory(pin_class=MockPWMPin)
    camera = SyntheticCamera(fps=0, source=SCENES[0])
    # generous timeouts: under emulation a frame takes far longer than on a Pi
    config = (Config().override("storage", state_dir=str(state_dir)).override("camera", timeout=60.0)
              .override("teaching", rate=100.0).override("head", smoothing=1))
    clock = Clock()
    box = build(config, embedder=embedder, camera=camera, pin_factory=factory, clock=clock)
    clock.t += 5  # past the boot chase
    return box, factory, camera, clock


def led_states(factory):
    return [round(float(factory.pin(p).state), 3) for p in LEDS]


def check_panel(box, factory, camera, clock) -> None:
    print("3. front panel on gpiozero's MockFactory", flush=True)
    loop = box.loop
    result = loop.step()
    check(result.answer == "nothing-learned" and led_states(factory) == [0, 0, 0, 0],
          f"nothing learned yet: no class LED lit (LEDs {led_states(factory)})")
    for class_id, scene in enumerate(SCENES):
        camera.select(scene)
        factory.pin(BUTTONS[class_id]).drive_low()  # press (pull-up button: pressed = low)
        factory.pin(BUTTONS[class_id]).drive_high()  # release: a short press teaches one example
        result = loop.step()
        check(result.taught == class_id and loop.head.counts[class_id] == 1,
              f"button GPIO{BUTTONS[class_id]} taught {scene!r} to class {class_id} "
              f"(counts {loop.head.counts})")
    clock.t += 2  # past the confirmation blinks
    for class_id, scene in enumerate(SCENES):
        camera.select(scene)
        result = loop.step()
        states = led_states(factory)
        others = [s for i, s in enumerate(states) if i != class_id]
        check(result.answer == class_id and states[class_id] > 0 and not any(others),
              f"camera sees {scene!r}: answer {result.answer}, LED GPIO{LEDS[class_id]} lit "
              f"(LEDs {states}, confidence {result.confidence:.3f})")
    check(loop.head.counts[:2] == [1, 1], f"no extra examples taught (counts {loop.head.counts})")


def check_page(box) -> None:
    from waitress.server import create_server

    from device.config import WebConfig
    from web_ui.app import create_app

    print("4. phone page", flush=True)
    app = create_app({"TESTING": True}, box=box, web=WebConfig())
    expected = box.snapshot().loop.answer_name
    client = app.test_client()
    response = client.get("/api/status")
    data = response.get_json()
    check(response.status_code == 200 and data["answer"] == expected and data["simulated"] is True,
          f"test client GET /api/status: {response.status_code}, answer {data['answer']!r}, "
          f"panel LEDs {data['panel']['leds']}")
    response = client.get("/")
    check(response.status_code == 200 and b"<html" in response.data.lower(),
          f"test client GET /: {response.status_code}, {len(response.data)} bytes of HTML (templates installed)")
    response = client.get("/api/frame.jpg")
    check(response.status_code == 200 and response.data[:2] == b"\xff\xd8",
          f"test client GET /api/frame.jpg: {response.status_code}, {len(response.data)} bytes of JPEG")

    server = create_server(app, host="127.0.0.1", port=0, threads=2, ident="teachbox")
    thread = threading.Thread(target=server.run, name="smoke-web", daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.effective_port}/api/status"
        with urllib.request.urlopen(url, timeout=120) as reply:
            status, body = reply.status, json.loads(reply.read())
        check(status == 200 and body["answer"] == expected,
              f"waitress GET {url}: {status}, answer {body['answer']!r}")
    finally:
        server.close()
        thread.join(timeout=30)


def main(argv) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    model_path = Path(argv[1])
    report_platform()
    box = None
    state = tempfile.TemporaryDirectory()
    try:
        embedder, embeddings = check_embedder(model_path)
        check_head(embedder, embeddings)
        box, factory, camera, clock = build_box(embedder, state.name)
        check_panel(box, factory, camera, clock)
        check_page(box)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"arm64 smoke FAILED on {platform.machine()} after {len(CHECKS)} checks: {exc}", file=sys.stderr)
        return 1
    finally:
        if box is not None:
            box.close()
        state.cleanup()
    print(f"arm64 smoke OK on {platform.machine()}: {len(CHECKS)} checks passed "
          f"(numpy {np.__version__}, ml_dtypes {version('ml_dtypes')}, ai-edge-litert {version('ai-edge-litert')})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
