"""What the box looks at, through the page's API: the landmarks in the status, "absent", switching sources.

The box is built as ``teachbox run`` builds it (``build_box``), looking at a hand through a
:class:`device.sources.LandmarkSource` whose finder is a small stub (:class:`StubHands`): it
"finds a hand" where the synthetic scene has a coloured object and nothing on the empty
table.  Switching to pictures opens the real MobileNet; switching back to the hand opens
the stub again (``device.app.open_source`` is wrapped for the hand only, until the real
landmarkers are in the tree).
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, Clock, box_config
from device import app as device_app
from device.app import build_box
from device.camera import SyntheticCamera
from device.config import WebConfig
from device.errors import ModelMissingError
from device.sources import HAND_EDGES, LandmarkSource, Look
from web_ui.app import CSRF_HEADER, create_app
from web_ui.views import look_json

PIN = "246813"
MODEL_MIRROR = Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO.parent / "shared" / "models")
SMALL_MODEL = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"
STUB_DIM = 8
STUB_VERSION = "stub-hand-1"


def _hand_pattern() -> np.ndarray:
    """21 points shaped like MediaPipe's hand (wrist 0, then 4 joints per finger), in units of the hand's size."""
    points = [(0.0, 0.45)]
    for finger, angle in enumerate(np.radians([-62, -28, -8, 12, 32])):
        base = np.array([0.0, 0.45]) + 0.22 * np.array([np.sin(angle), -np.cos(angle)])
        step = np.array([np.sin(angle), -np.cos(angle)]) * (0.1 if finger == 0 else 0.13)
        points += [tuple(base + step * k) for k in range(4)]
    return np.array(points, dtype=np.float64)


HAND_PATTERN = _hand_pattern()


@dataclass
class StubFound:
    landmarks: np.ndarray  # (21, 3) frame pixels
    crop: np.ndarray
    score: float
    vector: np.ndarray


class StubHands:
    """A hand finder for tests: a "hand" over the scene's coloured object, ``None`` on a plain (or dark) frame.

    The landmarks are :data:`HAND_PATTERN` scaled to the object and centred on it; the crop is
    their bounding box (not square); the features are the object's colour plus a little
    per-frame noise (so a hold is not one picture over and over).
    """

    sha256s = {"stub_hand_landmark.tflite": "0" * 64}

    def __init__(self) -> None:
        self.found = 0
        self.resets = 0
        self._noise = np.random.default_rng(0)

    def find(self, frame: np.ndarray):
        rgb = frame.astype(np.int16)
        mask = (rgb.max(axis=2) - rgb.min(axis=2)) > 60
        if mask.sum() < 50:
            return None
        ys, xs = np.nonzero(mask)
        height, width = frame.shape[:2]
        size = 2.0 * np.sqrt(mask.sum() / np.pi)
        points = np.array([xs.mean(), ys.mean()]) + HAND_PATTERN * size
        points = np.clip(points, 0, [width - 1, height - 1])
        landmarks = np.concatenate([points, np.zeros((21, 1))], axis=1).astype(np.float32)
        x0, y0 = np.floor(points.min(axis=0)).astype(int)
        x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
        colour = rgb[mask].mean(axis=0) / 255.0
        vector = np.concatenate([colour / np.linalg.norm(colour), self._noise.normal(0, 0.15, STUB_DIM - 3)])
        self.found += 1
        return StubFound(landmarks, np.ascontiguousarray(frame[y0:y1, x0:x1]), 0.93, vector.astype(np.float32))

    def reset(self) -> None:
        self.resets += 1


def stub_features(found: StubFound) -> np.ndarray:
    return found.vector


def stub_hand_source() -> LandmarkSource:
    return LandmarkSource("hand", StubHands(), stub_features, dim=STUB_DIM, version=STUB_VERSION, edges=HAND_EDGES)


def needs_landmarker(module: str, what: str) -> None:
    """Skip unless ``device.<module>`` (a real landmarker) is in this tree.

    An editable install of another checkout can make ``device.hands`` importable from *that*
    checkout's folder; a test would then run someone else's landmarker against this tree.
    """
    spec = importlib.util.find_spec(f"device.{module}")
    if spec is None:
        pytest.skip(f"the real {what} landmarker (device/{module}.py) is not in this tree yet")
    here = Path(device_app.__file__).resolve().parent
    if Path(spec.origin).resolve().parent != here:
        pytest.skip(f"the real {what} landmarker is not in this tree yet (device.{module} would come from "
                    f"{spec.origin}, another checkout)")


def open_source_with_stub_hands(monkeypatch, **refusals):
    """``device.app.open_source`` gives the stub for the hand, raises ``refusals[name]`` for those, else the real."""
    real = device_app.open_source

    def open_source(name, **kwargs):
        if name in refusals:
            raise refusals[name]
        if name == "hand":
            return stub_hand_source()
        return real(name, **kwargs)

    monkeypatch.setattr(device_app, "open_source", open_source)


# -- the rig -------------------------------------------------------------------------------------

@dataclass
class HandRig:
    box: object
    camera: SyntheticCamera
    config: object

    def step(self, n=1):
        for _ in range(n):
            self.box.step()

    def teach(self, class_id, scene, examples=1):
        self.camera.select(scene)
        self.box.loop.teach_next(class_id, examples)
        self.step(examples)
        self.box.settle()

    def counts(self):
        return [c.examples for c in self.box.snapshot().loop.classes]


def make_hand_rig(tmp_path, model_path, factory, **sections):
    """A box looking at hands through the stub; pictures with ``model_path`` (or as ``sections`` say)."""
    sections.setdefault("model", {"path": str(model_path)})
    config = box_config(tmp_path / "state", **sections)
    camera = SyntheticCamera(fps=0)
    box = build_box(config, embedder=stub_hand_source(), camera=camera, pin_factory=factory, clock=Clock())
    return HandRig(box, camera, config)


@pytest.fixture
def rig(tmp_path, model_path, factory, monkeypatch):
    open_source_with_stub_hands(monkeypatch)
    rig = make_hand_rig(tmp_path, model_path, factory)
    yield rig
    rig.box.close()


def client_of(box):
    return create_app({"TESTING": True}, box=box, web=WebConfig(pin=PIN)).test_client()


@pytest.fixture
def client(rig):
    return client_of(rig.box)


def token(client) -> str:
    return client.get("/api/status").get_json()["auth"]["csrf"]


def post(client, path, payload=None, **kwargs):
    return client.post(path, json=payload, headers={CSRF_HEADER: token(client)}, **kwargs)


def unlock(client):
    assert post(client, "/api/unlock/pin", {"pin": PIN}).status_code == 200


def status(client):
    return client.get("/api/status").get_json()


def error_of(response) -> str:
    assert response.is_json, response.data[:200]
    message = response.get_json().get("error")
    assert isinstance(message, str) and message
    return message


# -- the status ----------------------------------------------------------------------------------

def test_the_status_says_what_the_box_looks_at_and_the_landmarks_it_found(rig, client):
    rig.camera.select("red ball")
    rig.step()
    data = status(client)
    assert data["source"] == {"name": "hand", "thing": "hand"}
    look = data["look"]
    assert look["kind"] == "hand" and look["score"] == pytest.approx(0.93)
    points = np.array(look["points"])
    assert points.shape == (21, 2)
    assert np.all((points >= 0) & (points <= 1))
    assert all(len(str(v).split(".")[-1]) <= 4 for v in points.ravel())  # rounded to 4 decimals
    assert look["edges"] == [list(e) for e in HAND_EDGES]
    # fractions of the frame (320x240): the stub centres the hand on the ball, in the middle of the frame
    frame_look = rig.box.snapshot().loop.look
    assert np.allclose(points, frame_look.points, atol=1e-4)
    centre = points.mean(axis=0)
    assert 0.35 < centre[0] < 0.65 and 0.3 < centre[1] < 0.8


def test_no_hand_in_view_is_absent_has_no_look_and_teaches_nothing(rig, client):
    rig.teach(0, "red ball", 2)
    assert rig.counts()[0] == 2
    rig.camera.select("empty table")
    rig.box.loop.teach_next(0, 3)
    rig.step(6)  # smoothing is 1 in these tests: the first frame without a hand says so
    rig.box.settle()
    data = status(client)
    assert data["state"] == "absent" and data["answer"] == "absent"
    assert data["look"] is None
    assert data["source"]["thing"] == "hand"
    assert [c["examples"] for c in data["classes"]] == [2, 0, 0, 0]  # nothing taught from frames without a hand
    assert rig.box.library_status().examples == 2


def test_a_teaching_press_waits_for_a_hand_and_then_takes_it(rig, client):
    unlock(client)
    rig.camera.select("empty table")
    assert post(client, "/api/teach/start", {"class": 1}).status_code == 200
    rig.step(3)
    assert rig.counts()[1] == 0
    rig.camera.select("blue box")
    rig.step(3)
    assert post(client, "/api/teach/stop", {"class": 1}).status_code == 200
    rig.box.settle()
    assert rig.counts()[1] >= 1


def test_the_gallery_keeps_the_hand_crop_the_box_saw(rig, client):
    rig.teach(2, "green stripes")
    unlock(client)
    page = client.get("/api/examples?class=2").get_json()
    assert len(page["examples"]) == 1 and page["examples"][0]["thumb"]
    picture = client.get(page["examples"][0]["thumb"])
    assert picture.status_code == 200 and picture.mimetype == "image/jpeg"
    width, height = Image.open(io.BytesIO(picture.data)).size
    assert (width, height) != (224, 224) and width < 320 and height < 240  # the hand's box, not the frame


# -- the sources --------------------------------------------------------------------------------

def test_the_sources_are_open_to_read(rig, client):
    response = client.get("/api/sources")  # locked: names only, like /api/models
    assert response.status_code == 200
    data = response.get_json()
    assert data["current"] == "hand"
    assert data["sources"] == [{"name": "picture", "thing": "picture", "current": False},
                               {"name": "hand", "thing": "hand", "current": True},
                               {"name": "face", "thing": "face", "current": False},
                               {"name": "pose", "thing": "person", "current": False}]


def test_a_locked_page_cannot_switch_the_source(rig, client):
    response = post(client, "/api/source", {"source": "picture"})
    assert response.status_code == 401 and "unlock" in error_of(response)
    assert rig.box.source == "hand"


def test_switching_keeps_each_sources_classes_and_examples(rig, client):
    unlock(client)
    rig.teach(0, "red ball", 3)
    rig.teach(1, "blue box", 2)
    assert post(client, "/api/rename", {"class": 0, "name": "Fist"}).status_code == 200
    hand = [(c["name"], c["examples"]) for c in status(client)["classes"]]
    assert hand[:2] == [("Fist", 3), ("Class 2", 2)]

    response = post(client, "/api/source", {"source": "picture"})
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["ok"] is True and data["source"] == "picture"
    assert data["status"]["source"] == {"name": "picture", "thing": "picture"}
    assert data["status"]["look"] is None  # the last look was the hand's
    assert [c["examples"] for c in data["status"]["classes"]] == [0, 0, 0, 0]  # pictures know nothing yet
    assert rig.box.source == "picture"
    assert client.get("/api/sources").get_json()["current"] == "picture"

    rig.teach(2, "green stripes", 2)
    assert post(client, "/api/rename", {"class": 2, "name": "Stripes"}).status_code == 200
    rig.step()
    data = status(client)
    assert data["look"] is None and data["state"] != "absent"
    picture = [(c["name"], c["examples"]) for c in data["classes"]]
    assert picture[2] == ("Stripes", 2) and sum(n for _, n in picture) == 2

    response = post(client, "/api/source", {"source": "hand"})
    assert response.status_code == 200, response.get_json()
    assert [(c["name"], c["examples"]) for c in response.get_json()["status"]["classes"]] == hand
    rig.camera.select("red ball")
    rig.step()
    assert status(client)["look"]["kind"] == "hand"

    assert post(client, "/api/source", {"source": "picture"}).status_code == 200
    assert [(c["name"], c["examples"]) for c in status(client)["classes"]] == picture
    assert (rig.config.state_dir / "sources" / "hand").is_dir()


def test_switching_to_the_current_source_changes_nothing(rig, client):
    unlock(client)
    rig.teach(0, "red ball", 2)
    response = post(client, "/api/source", {"source": "hand"})
    assert response.status_code == 200
    assert [c["examples"] for c in response.get_json()["status"]["classes"]] == [2, 0, 0, 0]


@pytest.mark.parametrize("payload", [{}, {"source": None}, {"source": 3}, {"source": ""}, {"source": ["hand"]},
                                     {"source": "x" * 41}, {"source": "tail"}, {"source": "Hand"}], ids=repr)
def test_a_malformed_or_unknown_source_is_400(rig, client, payload):
    unlock(client)
    response = post(client, "/api/source", payload)
    assert response.status_code == 400
    assert "picture, hand, face, pose" in error_of(response)
    assert rig.box.source == "hand"


@pytest.mark.parametrize("data", [b"{", b"[1]", b"null", b""])
def test_a_body_that_is_not_a_json_object_is_400(rig, client, data):
    unlock(client)
    response = client.post("/api/source", data=data, content_type="application/json",
                           headers={CSRF_HEADER: token(client)})
    assert response.status_code == 400
    error_of(response)


def test_a_source_the_config_pins_is_not_switched_from_the_page(tmp_path, model_path, factory, monkeypatch):
    open_source_with_stub_hands(monkeypatch)
    rig = make_hand_rig(tmp_path, model_path, factory, source={"kind": "hand"})
    try:
        client = client_of(rig.box)
        unlock(client)
        rig.teach(0, "red ball")
        response = post(client, "/api/source", {"source": "picture"})
        assert response.status_code == 409
        assert "[source] kind" in error_of(response)
        assert rig.box.source == "hand" and rig.counts() == [1, 0, 0, 0]
    finally:
        rig.box.close()


def test_a_source_whose_model_is_missing_is_refused_with_the_fetch_command(tmp_path, model_path, factory,
                                                                          monkeypatch):
    """The picture model is not where the config says: the box says how to fetch it and keeps the hand."""
    open_source_with_stub_hands(monkeypatch)
    missing = tmp_path / "models" / model_path.name
    rig = make_hand_rig(tmp_path, missing, factory)
    try:
        client = client_of(rig.box)
        unlock(client)
        rig.teach(0, "red ball")
        response = post(client, "/api/source", {"source": "picture"})
        assert response.status_code == 409
        message = error_of(response)
        assert str(missing) in message and "fetch-model" in message
        assert rig.box.source == "hand" and rig.counts() == [1, 0, 0, 0]
        rig.camera.select("red ball")
        rig.step()
        assert status(client)["look"]["kind"] == "hand"  # still looking at hands
    finally:
        rig.box.close()


def test_a_landmark_source_whose_models_are_missing_is_refused_with_the_fetch_command(rig, client, monkeypatch):
    """As the landmarkers report a missing file (``ModelMissingError`` naming the fetch command)."""
    hint = "fetch it with: teachbox fetch-model --model-dir /opt/models --name face_landmark.tflite"
    open_source_with_stub_hands(monkeypatch, face=ModelMissingError(
        f"model file '/opt/models/face_landmark.tflite' does not exist. {hint}"))
    unlock(client)
    response = post(client, "/api/source", {"source": "face"})
    assert response.status_code == 409
    assert hint in error_of(response)
    assert rig.box.source == "hand"


def test_the_real_face_source_without_its_models_is_refused_with_the_fetch_command(tmp_path, model_path, factory,
                                                                                  monkeypatch):
    needs_landmarker("faces", "face")
    open_source_with_stub_hands(monkeypatch)
    folder = tmp_path / "models"  # the picture model and no landmark models (the mirror has them)
    folder.mkdir()
    (folder / model_path.name).symlink_to(model_path)
    rig = make_hand_rig(tmp_path, folder / model_path.name, factory, model={"dir": str(folder)})
    try:
        client = client_of(rig.box)
        unlock(client)
        response = post(client, "/api/source", {"source": "face"})
        assert response.status_code == 409
        assert "fetch-model" in error_of(response)
        assert rig.box.source == "hand"
    finally:
        rig.box.close()


def test_the_model_cannot_be_switched_while_the_box_looks_at_hands(tmp_path, factory, monkeypatch):
    if not (MODEL_MIRROR / SMALL_MODEL).is_file():
        pytest.skip(f"{SMALL_MODEL} is not in the model mirror {MODEL_MIRROR} (set TEACHBOX_MODEL_MIRROR)")
    open_source_with_stub_hands(monkeypatch)
    rig = make_hand_rig(tmp_path, None, factory, model={"dir": str(MODEL_MIRROR)})
    try:
        client = client_of(rig.box)
        unlock(client)
        response = post(client, "/api/model", {"model": SMALL_MODEL})
        assert response.status_code == 409
        assert "pictures" in error_of(response)
        assert post(client, "/api/source", {"source": "picture"}).status_code == 200
        response = post(client, "/api/model", {"model": SMALL_MODEL})  # on pictures the model may be switched
        assert response.status_code == 202, response.get_json()
        assert rig.box.switcher.wait(120)
    finally:
        rig.box.close()


def test_the_status_of_a_picture_box_has_no_look(embedder, factory, tmp_path):
    box = build_box(box_config(tmp_path / "state"), embedder=embedder, camera=SyntheticCamera(fps=0),
                    pin_factory=factory, clock=Clock())
    try:
        box.step()
        data = status(client_of(box))
        assert data["source"] == {"name": "picture", "thing": "picture"}
        assert data["look"] is None
    finally:
        box.close()


def test_a_face_look_of_468_points_stays_small():
    """The status's look for a face: every point, rounded, in a few kB."""
    points = np.random.default_rng(1).random((468, 2)).astype(np.float32)
    data = look_json(Look("face", points, (), 0.8), "face")
    assert len(data["points"]) == 468 and data["edges"] == []
    assert len(json.dumps(data)) < 12_000
    assert look_json(Look("face", points, (), 0.8), "hand") is None  # a look from before a switch


def test_many_frames_with_and_without_a_hand(rig, client):
    """Hand, no hand, hand: the status follows frame by frame."""
    for scene in itertools.islice(itertools.cycle(["red ball", "empty table"]), 6):
        rig.camera.select(scene)
        rig.step()
        data = status(client)
        assert (data["look"] is None) == (scene == "empty table")
        assert (data["state"] == "absent") == (scene == "empty table")
