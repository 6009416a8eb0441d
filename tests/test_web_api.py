"""The phone page's JSON API through Flask's test client, on the real loop, model and (mock) panel.

Fixtures follow Flask's tutorial: ``app`` builds the application with ``create_app``
and ``client`` is its test client.  Nothing here fakes the loop: frames come from the
synthetic camera, embeddings from the real model, buttons from gpiozero's MockFactory.
The test steps the loop itself (``loop.step()``) to make frames and answers happen.
"""

from __future__ import annotations

import io
import json
import time
import socket
import threading
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from conftest import REPO, Clock, box_config
from device.app import build_box
from device.box import Box as DeviceBox
from device.camera import SyntheticCamera
from device.config import WebConfig
from device.head import NearestCentroidHead
from device.storage import ModelIdentity, encode_head
from web_ui.app import CSRF_HEADER, MAX_BODY, MAX_UPLOAD, create_app
from web_ui.security import PIN_FIRST_DELAY, PIN_FREE_TRIES, PinGuard, Unlocks, pin_delay

PIN = "246813"
BUTTONS = (5, 6, 13, 19)
FUNCTION_PIN = 26
JPEG_MAGIC = b"\xff\xd8"
REMOTE_ADDR = "10.0.0.7"  # a browser elsewhere on the network (the test client is 127.0.0.1)
MODEL_MIRROR = REPO.parent / "shared" / "models"  # every known model (the box's model folder in these tests)
SMALL_MODEL = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"  # 512-d, the cheapest to switch to


@dataclass
class Rig:
    """The box under test and the handles a person at the box has: its camera scene, pins, clock."""

    box: DeviceBox
    camera: SyntheticCamera
    clock: Clock
    factory: MockFactory

    @property
    def loop(self):
        return self.box.loop

    @property
    def panel(self):
        return self.box.panel

    @property
    def broker(self):
        return self.box.pairing


def make_rig(embedder, factory, state_dir, **sections) -> Rig:
    camera, clock = SyntheticCamera(fps=0), Clock()
    box = build_box(box_config(state_dir, **sections), embedder=embedder, camera=camera, pin_factory=factory,
                    clock=clock)
    clock.t += 5  # past the boot chase
    return Rig(box, camera, clock, factory)


@pytest.fixture
def box(embedder, factory, tmp_path):
    """The box of these tests; its model folder holds the other models too (so a switch could start)."""
    rig = make_rig(embedder, factory, tmp_path / "state", model={"dir": str(MODEL_MIRROR)})
    yield rig
    finish_switch(rig)
    rig.box.close()


def finish_switch(rig, timeout=120.0):
    """Wait for a model switch going on (the box must not be closed under it); its progress."""
    assert rig.box.switcher.wait(timeout), "the model switch did not end"
    return rig.box.snapshot().model_switch


@pytest.fixture
def app(box):
    yield create_app({"TESTING": True}, box=box.box, web=WebConfig(pin=PIN))


@pytest.fixture
def client(app):
    return app.test_client()


def browser_at(app, address):
    """A browser on another machine of the network, at ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def remote(app):
    return browser_at(app, REMOTE_ADDR)


# -- helpers -------------------------------------------------------------------------------


def csrf(client, **kwargs) -> str:
    response = client.get("/api/status", **kwargs)
    assert response.status_code == 200
    return response.get_json()["auth"]["csrf"]


def post(client, path, payload=None, *, token=True, headers=None, **kwargs):
    """POST with the session's CSRF token (``token=False``: without it; a string: that one)."""
    headers = dict(headers or {})
    if token is True:
        headers[CSRF_HEADER] = csrf(client)
    elif token:
        headers[CSRF_HEADER] = token
    if payload is not None:
        kwargs["json"] = payload
    return client.post(path, headers=headers, **kwargs)


def unlock(client):
    response = post(client, "/api/unlock/pin", {"pin": PIN})
    assert response.status_code == 200, response.get_json()
    return response


def status(client):
    return client.get("/api/status").get_json()


def state(loop):
    """What a user would see change: examples and names of every class."""
    return loop.head.counts, loop.head.names


def held_step(box):
    """One frame of a hold, far enough from the last that the rate limit ([teaching] rate = 100/s) allows it."""
    time.sleep(0.011)
    box.loop.step()


def teach(box, class_id, scene, examples=1):
    """Teach from the box side (not through the page): the camera sees ``scene``."""
    box.camera.select(scene)
    box.loop.teach_next(class_id, examples)
    for _ in range(examples):
        box.loop.step()


def error_of(response) -> str:
    assert response.is_json, response.data[:200]
    message = response.get_json().get("error")
    assert isinstance(message, str) and message
    return message


def export_bytes(client) -> bytes:
    response = client.get("/api/export")
    assert response.status_code == 200
    return response.data


@pytest.fixture
def taught(box):
    """Class 0 knows the red ball, class 1 the blue box, class 1 is renamed."""
    teach(box, 0, "red ball")
    teach(box, 1, "blue box")
    box.loop.rename(1, "Box")
    box.loop.step()
    return box


# -- reading is open ----------------------------------------------------------------------


def test_status_is_open_and_describes_the_box(client, box):
    box.loop.step()
    response = client.get("/api/status")
    assert response.status_code == 200 and response.is_json
    data = response.get_json()
    assert data["answer"] == "nothing-learned"
    assert data["confidence"] == 0.0
    assert [c["id"] for c in data["classes"]] == [0, 1, 2, 3]
    assert [c["name"] for c in data["classes"]] == ["Class 1", "Class 2", "Class 3", "Class 4"]
    assert all(c["examples"] == 0 and c["score"] is None for c in data["classes"])
    assert isinstance(data["fps"], (int, float))
    assert data["camera"]["state"] == "online"
    assert data["camera"]["source"] == "red ball"
    assert "blue box" in data["camera"]["sources"]
    assert data["auth"]["unlocked"] is False
    assert data["auth"]["pin"] is True and data["auth"]["pairing"] is True
    assert isinstance(data["auth"]["csrf"], str) and len(data["auth"]["csrf"]) >= 16
    assert data["simulated"] is True
    assert len(data["panel"]["leds"]) == 4
    assert data["panel"]["buttons"] == [False] * 4 and data["panel"]["function"] is False


def test_status_shows_the_answer_and_scores_once_taught(client, taught):
    taught.camera.select("blue box")
    taught.loop.step()
    data = status(client)
    assert data["answer"] == "Box"
    # one example per class: the box names it but is never 100% sure
    assert 0.5 < data["confidence"] <= 0.9
    assert [c["examples"] for c in data["classes"]] == [1, 1, 0, 0]
    scores = [c["score"] for c in data["classes"]]
    assert scores[1] > scores[0] and scores[2] is None
    assert data["panel"]["leds"][1] > 0 and data["panel"]["leds"][0] == 0


def test_index_is_an_html_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert b"<html" in response.data.lower()


def test_frame_is_503_before_the_first_frame_then_a_jpeg(client, box):
    response = client.get("/api/frame.jpg")
    assert response.status_code == 503
    assert "frame" in error_of(response)
    box.loop.step()
    response = client.get("/api/frame.jpg")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data.startswith(JPEG_MAGIC)
    assert "no-store" in response.headers["Cache-Control"]


def test_frame_follows_the_camera(client, box):
    box.loop.step()
    first = client.get("/api/frame.jpg").data
    box.camera.select("empty table")
    box.loop.step()
    second = client.get("/api/frame.jpg").data
    assert second.startswith(JPEG_MAGIC) and second != first


# -- protected routes ---------------------------------------------------------------------

POST_ROUTES = [
    ("/api/teach/start", {"class": 0}),
    ("/api/teach/stop", {"class": 0}),
    ("/api/undo", {}),
    ("/api/clear", {"class": 0}),
    ("/api/clear-all", {"confirm": True}),
    ("/api/rename", {"class": 0, "name": "Hacked"}),
    ("/api/import", None),  # body: an export of an empty head (see request_for)
    ("/api/examples/delete", {"ids": [1, 2]}),
    ("/api/examples/move", {"ids": [1], "class": 1}),
    ("/api/doubtful/file", {"id": 1, "class": 0}),
    ("/api/doubtful/dismiss", {"id": 1}),
    ("/api/model", {"model": SMALL_MODEL}),
    ("/api/source", {"source": "hand"}),
    ("/api/rules", {"rules": [{"name": "hacked", "when": 0, "then": [{"gpio": 17, "mode": "on"}]}]}),
]
# reading the stored pictures (examples and doubtful frames) also needs an unlocked page
PROTECTED_GETS = ["/api/export", "/api/examples?class=0", "/api/examples/1.jpg", "/api/doubtful",
                  "/api/doubtful/1.jpg"]
PROTECTED = [("POST", path, payload) for path, payload in POST_ROUTES] + [("GET", p, None) for p in PROTECTED_GETS]


def request_for(client, box, method, path, payload, **kwargs):
    if method == "GET":
        return client.get(path, **kwargs)
    if path == "/api/import":
        empty = encode_head(NearestCentroidHead(box.loop.head.dim, 4), box.loop.model)
        return post(client, path, data=empty, content_type="application/octet-stream", **kwargs)
    return post(client, path, payload, **kwargs)


def assert_nothing_changed(box, before):
    for _ in range(3):  # a started burst would teach these frames
        box.loop.step()
    assert state(box.loop) == before
    assert box.loop.snapshot().burst is None
    assert box.box.snapshot().model_switch is None  # no model switch was started
    assert box.box.rules().tables == ()  # no rule was set


@pytest.mark.parametrize("method, path, payload", PROTECTED, ids=[p for _, p, _ in PROTECTED])
def test_a_locked_page_cannot_change_anything(client, taught, method, path, payload):
    before = state(taught.loop)
    response = request_for(client, taught, method, path, payload)
    assert response.status_code == 401
    assert "unlock" in error_of(response)
    assert not response.data.startswith(b"PK")  # no export was given out
    assert not response.data.startswith(JPEG_MAGIC) and b"/api/examples/" not in response.data  # nor a picture
    assert_nothing_changed(taught, before)


@pytest.mark.parametrize("path, payload", POST_ROUTES, ids=[p for p, _ in POST_ROUTES])
@pytest.mark.parametrize("how", ["no-token", "wrong-token", "cross-origin"])
def test_actions_need_the_csrf_token_and_the_same_origin(client, taught, path, payload, how):
    unlock(client)
    before = state(taught.loop)
    if how == "no-token":
        kwargs = {"token": False}
    elif how == "wrong-token":
        kwargs = {"token": "x" * 32}
    else:  # the right token does not help a request from another site
        kwargs = {"headers": {"Origin": "http://evil.example"}}
    response = request_for(client, taught, "POST", path, payload, **kwargs)
    assert response.status_code == 403
    error_of(response)
    assert_nothing_changed(taught, before)


def test_same_origin_requests_are_accepted(client, taught):
    unlock(client)
    response = post(client, "/api/rename", {"class": 0, "name": "Ball"}, headers={"Origin": "http://localhost"})
    assert response.status_code == 200
    assert taught.loop.head.names[0] == "Ball"


def test_export_is_a_download_for_an_unlocked_page(client, taught):
    # GET, so a plain link can download it: no CSRF header, but it needs the unlocked session
    unlock(client)
    response = client.get("/api/export")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="teachbox-examples.zip"'
    assert "no-store" in response.headers["Cache-Control"]
    assert response.data.startswith(b"PK")
    assert zipfile.ZipFile(io.BytesIO(response.data)).namelist()[0] == "manifest.json"  # the examples export


OPEN_ROUTES = [("GET", "/api/status"), ("GET", "/"), ("GET", "/api/frame.jpg"), ("GET", "/api/unlock/pair"),
               ("GET", "/api/quality"), ("GET", "/api/models"), ("GET", "/api/sources"),
               ("GET", "/api/rules"), ("GET", "/api/events"), ("GET", "/api/events/counts"),
               ("POST", "/api/unlock/pin"), ("POST", "/api/unlock/pair"), ("POST", "/api/lock"),
               ("POST", "/api/sim/button"), ("POST", "/api/sim/source")]
ALL_ROUTES = [(m, p, None) for m, p in OPEN_ROUTES] + PROTECTED


@pytest.mark.parametrize("method, path, payload", ALL_ROUTES, ids=[f"{m} {p}" for m, p, _ in ALL_ROUTES])
def test_other_host_names_are_refused_on_every_route(client, taught, method, path, payload):
    # DNS rebinding: a page on evil.example whose name now points at the box
    unlock(client)
    token = csrf(client)
    before = state(taught.loop)
    headers = {"Host": "evil.example", CSRF_HEADER: token}
    if method == "GET":
        response = client.get(path, headers=headers)
    else:
        body = payload if payload is not None else {"pin": PIN, "button": 0, "pressed": True, "source": "blue box"}
        response = client.post(path, json=body, headers=headers)
    assert response.status_code == 421
    assert "evil.example" in error_of(response)
    assert not response.data.startswith(b"PK")
    assert_nothing_changed(taught, before)
    assert not any(taught.box.snapshot().panel.buttons)


@pytest.mark.parametrize("host", ["192.168.1.20:8000", "[::1]:8000", "10.0.0.7", "localhost:8000",
                                  socket.gethostname() + ".local"])
def test_ip_addresses_and_own_names_are_allowed(app, taught, host):
    client = app.test_client()
    base = {"base_url": f"http://{host}/"}
    token = csrf(client, **base)
    response = client.post("/api/unlock/pin", json={"pin": PIN}, base_url=f"http://{host}/",
                           headers={CSRF_HEADER: token, "Origin": f"http://{host}"})
    assert response.status_code == 200
    response = client.post("/api/rename", json={"class": 0, "name": "Ball"}, base_url=f"http://{host}/",
                           headers={CSRF_HEADER: token, "Origin": f"http://{host}"})
    assert response.status_code == 200
    assert taught.loop.head.names[0] == "Ball"


def test_configured_host_names_are_allowed(box):
    app = create_app(box=box.box, web=WebConfig(pin=PIN, allowed_hosts=("teachbox.lan",)))
    client = app.test_client()
    assert client.get("/api/status", base_url="http://teachbox.lan:8000/").status_code == 200
    assert client.get("/api/status", base_url="http://other.lan:8000/").status_code == 421


# -- unlocking ------------------------------------------------------------------------------


def test_wrong_pin_is_refused_and_the_right_one_unlocks(client):
    response = post(client, "/api/unlock/pin", {"pin": "1111"})
    assert response.status_code == 403
    assert "PIN" in error_of(response)
    assert status(client)["auth"]["unlocked"] is False
    response = post(client, "/api/unlock/pin", {"pin": PIN})
    assert response.status_code == 200
    assert status(client)["auth"]["unlocked"] is True


@pytest.mark.parametrize("pin", [2468, None, ["2468"], {"pin": "2468"}, "", "24680", " 2468"])
def test_pins_of_the_wrong_type_or_shape_are_wrong(client, pin):
    response = post(client, "/api/unlock/pin", {"pin": pin})
    assert response.status_code == 403
    assert status(client)["auth"]["unlocked"] is False


def test_wrong_pins_make_that_browser_wait_longer_and_longer(box):
    clock = Clock()
    app = create_app({"TESTING": True}, box=box.box, web=WebConfig(pin=PIN), pins=PinGuard(clock=clock))
    attacker = browser_at(app, REMOTE_ADDR)
    for _ in range(PIN_FREE_TRIES):
        assert post(attacker, "/api/unlock/pin", {"pin": "000000"}).status_code == 403
    response = post(attacker, "/api/unlock/pin", {"pin": "000000"})
    assert response.status_code == 403 and response.get_json()["retry_in"] == PIN_FIRST_DELAY
    waits = []
    for _ in range(4):
        refused = post(attacker, "/api/unlock/pin", {"pin": PIN})  # even the right PIN, while it must wait
        assert refused.status_code == 429 and "try again" in error_of(refused)
        waits.append(refused.get_json()["retry_in"])
        assert status(attacker)["auth"]["pin_retry_in"] == waits[-1]
        clock.t += waits[-1]
        post(attacker, "/api/unlock/pin", {"pin": "000000"})
    assert waits == [PIN_FIRST_DELAY * 2 ** i for i in range(4)]
    assert status(attacker)["auth"]["unlocked"] is False


def test_a_neighbours_wrong_pins_never_lock_the_owner_out(box):
    clock = Clock()
    app = create_app({"TESTING": True}, box=box.box, web=WebConfig(pin=PIN), pins=PinGuard(clock=clock))
    attacker = browser_at(app, REMOTE_ADDR)
    for _ in range(20):
        post(attacker, "/api/unlock/pin", {"pin": "000000"})
        clock.t += 1
    assert post(attacker, "/api/unlock/pin", {"pin": PIN}).status_code == 429
    owner = browser_at(app, "10.0.0.8")
    assert post(owner, "/api/unlock/pin", {"pin": PIN}).status_code == 200
    assert status(owner)["auth"]["unlocked"] is True
    # one IPv6 host picks any address of its /64: they count as one
    v6 = [browser_at(app, f"fd00:1:2:3::{i}") for i in range(1, 9)]
    for client in v6:
        post(client, "/api/unlock/pin", {"pin": "000000"})
    assert post(v6[-1], "/api/unlock/pin", {"pin": PIN}).status_code == 429


def test_guessing_a_pin_takes_years_at_the_allowed_rate():
    """The shortest PIN the config takes has 10**6 values; half of them are tried on average."""
    tries = 10 ** 6 // 2
    year = 365 * 24 * 3600.0
    one_address = sum(pin_delay(f) for f in range(1, tries + 1))
    assert one_address / year > 1000
    per_address = tries // 253  # every other address of a /24 network
    assert sum(pin_delay(f) for f in range(1, per_address + 1)) / year > 5


def test_pin_unlock_is_off_without_a_pin(box):
    app = create_app(box=box.box, web=WebConfig(pin=""))
    client = app.test_client()
    assert status(client)["auth"]["pin"] is False
    for pin in ("", "2468"):
        response = post(client, "/api/unlock/pin", {"pin": pin})
        assert response.status_code == 404
        error_of(response)
    assert status(client)["auth"]["unlocked"] is False


def press(box, pin):
    """A person at the box presses and lets go of the button on ``pin``."""
    box.factory.pin(pin).drive_low()
    box.factory.pin(pin).drive_high()
    box.loop.step()


def approve(box, code):
    """A person at the box holds the function button and presses button ``code`` (1-based)."""
    box.factory.pin(FUNCTION_PIN).drive_low()
    press(box, BUTTONS[code - 1])
    box.factory.pin(FUNCTION_PIN).drive_high()
    box.loop.step()


def lit_leds(box):
    """Which class LEDs light up at some moment of the next second (pairing blinks fast)."""
    seen = set()
    for _ in range(10):
        box.clock.t += 0.1
        box.loop.step()
        seen |= {i for i, p in enumerate((12, 16, 20, 21)) if box.factory.pin(p).state > 0}
    return seen


def test_pairing_with_function_and_the_class_button_the_page_names(client, app, taught):
    before = state(taught.loop)
    response = post(client, "/api/unlock/pair")
    assert response.status_code == 200 and response.get_json()["state"] == "pending"
    code = response.get_json()["code"]
    message = response.get_json()["message"]
    assert 1 <= code <= 4 and "function button" in message and f"button {code}" in message
    assert client.get("/api/unlock/pair").get_json() == {"state": "pending", "code": code,
                                                         "expires_in": pytest.approx(30, abs=1)}
    assert lit_leds(taught) == {code - 1}  # only that button's LED blinks
    assert status(client)["panel"]["pattern"] == "pairing"
    assert status(client)["auth"]["pair"] == {"code": code, "expires_in": pytest.approx(29, abs=1), "mine": True}
    assert status(client)["auth"]["unlocked"] is False

    press(taught, FUNCTION_PIN)  # the function button is undo, always: it approves nothing
    taught.box.settle()  # the library's writer undoes it, then the head follows
    assert client.get("/api/unlock/pair").get_json()["state"] == "pending"
    assert sum(taught.loop.head.counts) == sum(before[0]) - 1
    for pin in (BUTTONS[code % 4], BUTTONS[code - 1]):  # plain presses teach as usual, even the code's button
        taught.clock.t += 1  # past the confirmation blinks
        press(taught, pin)
        assert client.get("/api/unlock/pair").get_json()["state"] == "pending"
    assert sum(state(taught.loop)[0]) == sum(before[0]) + 1
    taught_now = state(taught.loop)

    approve(taught, code)
    answer = client.get("/api/unlock/pair").get_json()
    assert answer["state"] == "approved" and answer["unlocked"] is True
    assert status(client)["auth"]["unlocked"] is True
    assert state(taught.loop) == taught_now  # the approving chord cleared nothing
    assert status(client)["auth"]["pair"] is None

    other_phone = app.test_client()  # another phone is not unlocked by it
    assert status(other_phone)["auth"]["unlocked"] is False
    assert other_phone.get("/api/unlock/pair").get_json()["state"] == "unknown"
    assert post(other_phone, "/api/clear-all", {"confirm": True}).status_code == 401
    assert state(taught.loop) == taught_now


def test_a_waiting_pairing_is_never_taken_over_and_every_page_shows_it(app, box):
    owner, stranger = app.test_client(), browser_at(app, REMOTE_ADDR)
    code = post(owner, "/api/unlock/pair").get_json()["code"]
    for _ in range(3):  # the old request was replaced once it was 10 s old; now it lasts its 30 s
        box.clock.t += 9
        refused = post(stranger, "/api/unlock/pair")
        assert refused.status_code == 409
        assert f"lamp {code}" in error_of(refused) and refused.get_json()["code"] == code
    assert status(stranger)["auth"]["pair"]["code"] == code
    assert status(stranger)["auth"]["pair"]["mine"] is False
    approve(box, code)
    assert owner.get("/api/unlock/pair").get_json()["state"] == "approved"
    assert stranger.get("/api/unlock/pair").get_json()["state"] == "unknown"
    assert status(stranger)["auth"]["unlocked"] is False


def test_a_browser_that_keeps_asking_cannot_keep_the_owner_from_pairing(app, box):
    owner, stranger = app.test_client(), browser_at(app, REMOTE_ADDR)
    assert post(stranger, "/api/unlock/pair").status_code == 200
    box.clock.t += 31  # nobody pressed its button: it ends
    refused = post(stranger, "/api/unlock/pair")
    assert refused.status_code == 429 and refused.get_json()["retry_in"] > 0
    response = post(owner, "/api/unlock/pair")  # the owner's turn
    assert response.status_code == 200
    approve(box, response.get_json()["code"])
    assert owner.get("/api/unlock/pair").get_json()["state"] == "approved"
    assert status(owner)["auth"]["unlocked"] is True


def test_a_browser_can_cancel_its_pairing_request(client, box):
    assert post(client, "/api/unlock/pair").status_code == 200
    assert post(client, "/api/unlock/pair/cancel").get_json()["state"] == "cancelled"
    assert status(client)["auth"]["pair"] is None
    assert lit_leds(box) == set()  # the LED stopped blinking


def test_lock_locks_again(client, taught):
    unlock(client)
    assert status(client)["auth"]["unlocked"] is True
    response = post(client, "/api/lock")
    assert response.status_code == 200
    assert status(client)["auth"]["unlocked"] is False
    before = state(taught.loop)
    assert post(client, "/api/clear", {"class": 0}).status_code == 401
    assert state(taught.loop) == before


def test_unlocking_is_per_browser(client, app):
    unlock(client)
    other = app.test_client()
    assert status(other)["auth"]["unlocked"] is False
    assert csrf(other) != csrf(client)


# -- unlocked actions -------------------------------------------------------------------------


def test_teach_start_and_stop_add_examples_to_that_class(client, box):
    unlock(client)
    assert post(client, "/api/teach/start", {"class": 2}).status_code == 200
    assert status(client)["teaching"] == 2
    for scene in ("red ball", "blue box", "green stripes", "yellow ring"):
        box.camera.select(scene)
        held_step(box)
    assert post(client, "/api/teach/stop", {"class": 2}).status_code == 200
    taught = box.loop.head.counts[2]
    assert taught >= 3
    assert box.loop.head.counts == [0, 0, taught, 0]
    for scene in ("red ball", "empty table"):  # stopped: nothing more is taught
        box.camera.select(scene)
        box.loop.step()
    data = status(client)
    assert data["teaching"] is None
    assert [c["examples"] for c in data["classes"]] == [0, 0, taught, 0]


def test_teach_stop_without_a_class_stops_whatever_is_taught(client, box):
    unlock(client)
    post(client, "/api/teach/start", {"class": 1})
    box.loop.step()
    assert post(client, "/api/teach/stop").status_code == 200
    box.camera.select("yellow ring")
    box.loop.step()
    assert box.loop.head.counts == [0, 1, 0, 0]


def test_undo_removes_the_last_burst(client, box):
    unlock(client)
    teach(box, 0, "red ball")
    post(client, "/api/teach/start", {"class": 1})
    for scene in ("blue box", "green stripes", "yellow ring"):
        box.camera.select(scene)
        held_step(box)
    post(client, "/api/teach/stop")
    burst = box.loop.head.counts[1]
    assert burst >= 2
    response = post(client, "/api/undo")
    assert response.status_code == 200
    assert response.get_json()["undone"] == {"class": 1, "examples": burst}
    assert box.loop.head.counts == [1, 0, 0, 0]
    assert post(client, "/api/undo").get_json()["undone"] == {"class": 0, "examples": 1}
    response = post(client, "/api/undo")
    assert response.status_code == 200
    assert response.get_json()["undone"] is None and "nothing" in response.get_json()["message"]
    assert box.loop.head.counts == [0, 0, 0, 0]


def test_clear_forgets_one_class(client, taught):
    unlock(client)
    response = post(client, "/api/clear", {"class": 1})
    assert response.status_code == 200 and response.get_json()["forgotten"] == 1
    assert taught.loop.head.counts == [1, 0, 0, 0]
    assert taught.loop.head.names[1] == "Box"  # the name stays


@pytest.mark.parametrize("payload", [{}, {"confirm": "yes"}, {"confirm": 1}, {"confirm": False}, {"confirm": [True]}])
def test_clear_all_needs_confirm_true(client, taught, payload):
    unlock(client)
    before = state(taught.loop)
    response = post(client, "/api/clear-all", payload)
    assert response.status_code == 400
    assert "confirm" in error_of(response)
    assert state(taught.loop) == before


def test_clear_all_with_confirm_forgets_everything(client, taught):
    unlock(client)
    response = post(client, "/api/clear-all", {"confirm": True})
    assert response.status_code == 200 and response.get_json()["forgotten"] == 2
    assert taught.loop.head.counts == [0, 0, 0, 0]
    taught.loop.step()
    assert status(client)["answer"] == "nothing-learned"


@pytest.mark.parametrize("name", ["", "   ", "x" * 33, "<script>", "a\nb", "Äpfel 🍎", 7, None, ["Ball"],
                                  {"name": "Ball"}, True])
def test_rename_refuses_bad_names_and_keeps_the_old_one(client, taught, name):
    unlock(client)
    response = post(client, "/api/rename", {"class": 1, "name": name})
    assert response.status_code == 400
    assert "name" in error_of(response)
    assert taught.loop.head.names[1] == "Box"


@pytest.mark.parametrize("name, shown", [("Äpfel", "Äpfel"), ("  Red ball  ", "Red ball"), ("x" * 32, "x" * 32),
                                         ("Mug (blue) #2", "Mug (blue) #2")])
def test_rename_accepts_good_names(client, taught, name, shown):
    unlock(client)
    response = post(client, "/api/rename", {"class": 0, "name": name})
    assert response.status_code == 200 and response.get_json()["name"] == shown
    assert status(client)["classes"][0]["name"] == shown


BAD_CLASSES = [4, -1, 99, True, False, "0", 1.0, None, [0]]


@pytest.mark.parametrize("path, extra", [("/api/teach/start", {}), ("/api/clear", {}),
                                         ("/api/rename", {"name": "Ball"}), ("/api/teach/stop", {})])
@pytest.mark.parametrize("value", BAD_CLASSES, ids=repr)
def test_class_numbers_are_checked(client, taught, path, extra, value):
    unlock(client)
    before = state(taught.loop)
    response = post(client, path, {"class": value, **extra})
    assert response.status_code == 400
    assert "class" in error_of(response)
    assert_nothing_changed(taught, before)


BODY_ROUTES = ["/api/teach/start", "/api/clear", "/api/clear-all", "/api/rename", "/api/unlock/pin",
               "/api/sim/button", "/api/sim/source", "/api/examples/delete", "/api/examples/move",
               "/api/doubtful/file", "/api/doubtful/dismiss", "/api/model", "/api/source"]
MALFORMED = [
    pytest.param(b"{", "application/json", id="broken-json"),
    pytest.param(b"[0, 1]", "application/json", id="json-list"),
    pytest.param(b'"class"', "application/json", id="json-string"),
    pytest.param(b"null", "application/json", id="json-null"),
    pytest.param(b"", "application/json", id="empty"),
    pytest.param(b'{"class": 0}', "text/plain", id="not-declared-json"),
    pytest.param(b"\xff\xfe\x00{", "application/json", id="not-utf8"),
    pytest.param(b"class=0", "application/x-www-form-urlencoded", id="form"),
]


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize("data, content_type", MALFORMED)
def test_malformed_bodies_are_400_json(client, taught, path, data, content_type):
    unlock(client)
    before = state(taught.loop)
    response = post(client, path, data=data, content_type=content_type)
    assert response.status_code == 400
    error_of(response)
    assert_nothing_changed(taught, before)


@pytest.mark.parametrize("path", ["/api/teach/stop", "/api/undo", "/api/lock", "/api/unlock/pair", "/api/import"])
@pytest.mark.parametrize("data, content_type", MALFORMED)
def test_routes_without_a_body_do_not_break_on_garbage(client, taught, path, data, content_type):
    unlock(client)
    response = post(client, path, data=data, content_type=content_type)
    assert response.status_code < 500
    assert response.is_json


@pytest.mark.parametrize("path", ["/api/rename", "/api/unlock/pin", "/api/sim/button", "/api/model", "/api/source",
                                  "/api/doubtful/dismiss"])
def test_oversized_bodies_are_413(client, taught, path):
    unlock(client)
    before = state(taught.loop)
    big = json.dumps({"class": 0, "name": "x" * (MAX_BODY + 10)}).encode()
    response = post(client, path, data=big, content_type="application/json")
    assert response.status_code == 413
    assert "at most 2 MB" in error_of(response) and response.get_json()["max_bytes"] == MAX_BODY
    assert_nothing_changed(taught, before)


def test_an_import_takes_files_of_up_to_128_mb_and_no_other_body_does(client, taught):
    unlock(client)
    assert MAX_UPLOAD == 128 << 20 and MAX_BODY == 2 << 20
    # past MAX_BODY an import is still read (and refused for what it is, not for its size)
    response = post(client, "/api/import", data=b"\0" * (MAX_BODY + 10), content_type="application/octet-stream")
    assert response.status_code == 400 and "Nothing was changed" in error_of(response)
    response = post(client, "/api/rename", data=json.dumps({"class": 0, "name": "x" * MAX_BODY}).encode(),
                    content_type="application/json")
    assert response.status_code == 413


def assert_too_big_for_the_page(response):
    assert response.status_code == 413
    message = error_of(response)
    assert "at most 128 MB" in message and "teachbox import FILE" in message and "Nothing was changed" in message
    assert response.get_json()["max_bytes"] == MAX_UPLOAD


def test_an_import_too_big_for_the_page_is_413_naming_the_limit_and_the_command(client, taught):
    unlock(client)
    before = state(taught.loop)
    response = post(client, "/api/import", data=b"\0" * (MAX_UPLOAD + 10), content_type="application/octet-stream")
    assert_too_big_for_the_page(response)
    assert_nothing_changed(taught, before)


def test_oversized_multipart_import_is_413(client, taught):
    unlock(client)
    before = state(taught.loop)
    response = post(client, "/api/import", data={"file": (io.BytesIO(b"\0" * (MAX_UPLOAD + 10)), "head.npz")},
                    content_type="multipart/form-data")
    assert_too_big_for_the_page(response)
    assert state(taught.loop) == before


# -- export / import ------------------------------------------------------------------------------


def test_export_then_import_raw_restores_what_was_learned(client, taught):
    unlock(client)
    before = state(taught.loop)
    blob = export_bytes(client)
    assert post(client, "/api/clear-all", {"confirm": True}).status_code == 200
    taught.loop.rename(1, "Other")
    assert taught.loop.head.counts == [0, 0, 0, 0]
    response = post(client, "/api/import", data=blob, content_type="application/octet-stream")
    assert response.status_code == 200
    assert response.get_json()["classes"][1] == {"name": "Box", "examples": 1}
    assert state(taught.loop) == before
    taught.camera.select("blue box")
    taught.loop.step()
    assert status(client)["answer"] == "Box"  # the imported head recognises what was taught


def test_export_then_import_as_a_form_file(client, taught):
    unlock(client)
    before = state(taught.loop)
    blob = export_bytes(client)
    post(client, "/api/clear-all", {"confirm": True})
    response = post(client, "/api/import", data={"file": (io.BytesIO(blob), "teachbox-head.npz")},
                    content_type="multipart/form-data")
    assert response.status_code == 200
    assert state(taught.loop) == before


def test_import_in_a_form_field_of_another_name_is_refused(client, taught):
    unlock(client)
    blob = export_bytes(client)
    post(client, "/api/clear-all", {"confirm": True})
    response = post(client, "/api/import", data={"upload": (io.BytesIO(blob), "teachbox-head.npz")},
                    content_type="multipart/form-data")
    assert response.status_code == 400
    assert "file" in error_of(response)
    assert taught.loop.head.counts == [0, 0, 0, 0]


def test_import_of_a_smaller_head_keeps_the_box_size(client, box):
    unlock(client)
    small = NearestCentroidHead(box.loop.head.dim, 2, names=["Cup", "Pen"])
    small.teach(0, np.ones(box.loop.head.dim, np.float32))
    response = post(client, "/api/import", data=encode_head(small, box.loop.model),
                    content_type="application/octet-stream")
    assert response.status_code == 200
    assert box.loop.head.names == ["Cup", "Pen", "Class 3", "Class 4"]
    assert box.loop.head.counts == [1, 0, 0, 0]


def test_import_from_another_model_is_refused_naming_it(client, taught):
    unlock(client)
    before = state(taught.loop)
    other = ModelIdentity(sha256="ab" * 32, dim=taught.loop.head.dim, name="other-model.tflite")
    head = NearestCentroidHead(taught.loop.head.dim, 4)
    head.teach(2, np.ones(taught.loop.head.dim, np.float32))
    response = post(client, "/api/import", data=encode_head(head, other), content_type="application/octet-stream")
    assert response.status_code == 400
    message = error_of(response)
    assert "other-model.tflite" in message
    assert "Nothing was changed" in message
    assert state(taught.loop) == before


def _meta(loop, **head_changes) -> np.ndarray:
    head_meta = {"kind": "nearest-centroid", "format": 1, "dim": loop.head.dim, "num_classes": 4,
                 "names": ["A", "B", "C", "D"], **head_changes}
    envelope = {"teachbox_state": 1, "model_sha256": loop.model.sha256, "model": loop.model.name,
                "saved_at": 0, "head": head_meta}
    return np.frombuffer(json.dumps(envelope).encode(), dtype=np.uint8)


class _OpenOnLoad:
    """Unpickling this would create a file: it must never be unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _pickled_npz(loop, marker) -> bytes:
    buffer = io.BytesIO()
    sums = np.empty((4, loop.head.dim), dtype=object)
    sums[:] = 0
    sums[0, 0] = _OpenOnLoad(marker)
    np.savez(buffer, meta=_meta(loop), sums=sums, counts=np.array([1, 0, 0, 0], np.int64))
    return buffer.getvalue()


def _zip_bomb(loop) -> bytes:
    buffer = io.BytesIO()
    zeros = np.zeros(10_000_000, np.int64)  # 80 MB of zeros: a few hundred kB compressed
    np.savez_compressed(buffer, meta=_meta(loop), sums=zeros, counts=np.zeros(4, np.int64))
    data = buffer.getvalue()
    assert len(data) < MAX_UPLOAD
    return data


def _huge_shape_header(loop) -> bytes:
    """A small, honest zip whose sums.npy header claims a shape of 64 TiB."""
    good = encode_head(NearestCentroidHead(loop.head.dim, 4), loop.model)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as archive, zipfile.ZipFile(out, "w") as crafted:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "sums.npy":
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<i8", "fortran_order": False, "shape": (1 << 40, 8)})
                data = header.getvalue() + bytes(64)
            crafted.writestr(info.filename, data)
    return out.getvalue()


def _not_an_npz() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hello")
    return out.getvalue()


def _wrong_shapes(loop) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, meta=_meta(loop), sums=np.zeros((3, 5), np.int64), counts=np.zeros(4, np.int64))
    return buffer.getvalue()


def _bad_names(loop) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, meta=_meta(loop, names=["<script>", "B", "C", "D"]),
             sums=np.zeros((4, loop.head.dim), np.int64), counts=np.zeros(4, np.int64))
    return buffer.getvalue()


HOSTILE = {
    "random-bytes": lambda loop, blob, tmp: np.random.default_rng(7).bytes(5000),
    "truncated-half": lambda loop, blob, tmp: blob[: len(blob) // 2],
    "truncated-tail": lambda loop, blob, tmp: blob[:-10],
    "not-an-npz": lambda loop, blob, tmp: _not_an_npz(),
    "pickled-object-array": lambda loop, blob, tmp: _pickled_npz(loop, tmp / "pwned"),
    "zip-bomb": lambda loop, blob, tmp: _zip_bomb(loop),
    "huge-shape-header": lambda loop, blob, tmp: _huge_shape_header(loop),
    "wrong-shapes": lambda loop, blob, tmp: _wrong_shapes(loop),
    "bad-names": lambda loop, blob, tmp: _bad_names(loop),
    "json": lambda loop, blob, tmp: b'{"class": 0}',
}


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("as_form", [False, True], ids=["raw", "form"])
def test_hostile_or_damaged_imports_are_refused_and_change_nothing(client, taught, tmp_path, kind, as_form):
    unlock(client)
    blob = export_bytes(client)
    before = state(taught.loop)
    data = HOSTILE[kind](taught.loop, blob, tmp_path)
    if as_form:
        response = post(client, "/api/import", data={"file": (io.BytesIO(data), "head.npz")},
                        content_type="multipart/form-data")
    else:
        response = post(client, "/api/import", data=data, content_type="application/octet-stream")
    assert response.status_code == 400
    assert "Nothing was changed" in error_of(response)
    assert state(taught.loop) == before
    assert not (tmp_path / "pwned").exists()
    # what was learned still works
    taught.camera.select("blue box")
    taught.loop.step()
    assert status(client)["answer"] == "Box"


def test_empty_import_is_refused(client, taught):
    unlock(client)
    before = state(taught.loop)
    response = post(client, "/api/import", data=b"", content_type="application/octet-stream")
    assert response.status_code == 400
    assert "file" in error_of(response)
    assert state(taught.loop) == before


# -- the simulated front panel ---------------------------------------------------------------------


def test_sim_button_teaches_from_the_box_itself_even_while_locked(client, box):
    assert status(client)["auth"]["unlocked"] is False
    response = post(client, "/api/sim/button", {"button": 0, "pressed": True})
    assert response.status_code == 200
    assert status(client)["panel"]["buttons"][0] is True
    box.loop.step()
    assert post(client, "/api/sim/button", {"button": 0, "pressed": False}).status_code == 200
    box.loop.step()
    assert box.loop.head.counts == [1, 0, 0, 0]
    assert status(client)["panel"]["buttons"][0] is False


def test_sim_function_button_undoes(client, taught):
    post(client, "/api/sim/button", {"button": "function", "pressed": True})
    post(client, "/api/sim/button", {"button": "function", "pressed": False})
    taught.loop.step()
    taught.box.settle()  # the undo is stored, and the head rebuilt from what is left
    assert taught.loop.head.counts == [1, 0, 0, 0]


def test_sim_button_needs_the_csrf_token(client, box):
    response = post(client, "/api/sim/button", {"button": 0, "pressed": True}, token=False)
    assert response.status_code == 403
    response = post(client, "/api/sim/button", {"button": 0, "pressed": True},
                    headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    box.loop.step()
    box.loop.step()
    assert box.loop.head.counts == [0, 0, 0, 0]
    assert not box.box.snapshot().panel.buttons[0]


@pytest.mark.parametrize("payload", [
    {"button": 4, "pressed": True}, {"button": -1, "pressed": True}, {"button": True, "pressed": True},
    {"button": "0", "pressed": True}, {"button": None, "pressed": True}, {"button": 1.0, "pressed": True},
    {"button": "FUNCTION", "pressed": True}, {"button": [0], "pressed": True}, {"pressed": True},
    {"button": 0}, {"button": 0, "pressed": "yes"}, {"button": 0, "pressed": 1}, {"button": 0, "pressed": None},
], ids=repr)
def test_bad_sim_buttons_are_400(client, box, payload):
    response = post(client, "/api/sim/button", payload)
    assert response.status_code == 400
    error_of(response)
    box.loop.step()
    assert box.loop.head.counts == [0, 0, 0, 0]
    panel = box.box.snapshot().panel
    assert not any(panel.buttons) and not panel.function


def test_sim_source_switches_the_synthetic_camera(client, box):
    box.loop.step()
    before = client.get("/api/frame.jpg").data
    response = post(client, "/api/sim/source", {"source": "blue box"})
    assert response.status_code == 200
    assert status(client)["camera"]["source"] == "blue box"
    box.loop.step()
    assert client.get("/api/frame.jpg").data != before


@pytest.mark.parametrize("source", ["purple cow", "", None, 3, ["blue box"], {"blue box": 1}], ids=repr)
def test_unknown_sim_sources_are_400(client, box, source):
    response = post(client, "/api/sim/source", {"source": source})
    assert response.status_code == 400
    error_of(response)
    assert status(client)["camera"]["source"] == "red ball"


@pytest.fixture
def bare_app(embedder, factory, tmp_path):
    """A box without a front panel ([panel] gpio = "off")."""
    rig = make_rig(embedder, factory, tmp_path / "state", panel={"gpio": "off"})
    assert rig.panel is None and rig.broker is None
    yield create_app({"TESTING": True}, box=rig.box, web=WebConfig(pin=PIN)), rig.loop
    rig.box.close()


def test_without_a_panel_there_are_no_sim_buttons_and_no_pairing(bare_app):
    app, loop = bare_app
    client = app.test_client()
    loop.step()
    data = status(client)
    assert data["simulated"] is False and "panel" not in data
    assert data["auth"]["pairing"] is False
    response = post(client, "/api/sim/button", {"button": 0, "pressed": True})
    assert response.status_code == 404
    error_of(response)
    response = post(client, "/api/unlock/pair")
    assert response.status_code == 404
    error_of(response)
    # the synthetic camera can still be switched, and the PIN still works
    assert post(client, "/api/sim/source", {"source": "yellow ring"}).status_code == 200
    unlock(client)
    assert post(client, "/api/teach/start", {"class": 3}).status_code == 200
    loop.step()
    assert loop.head.counts == [0, 0, 0, 1]


def test_with_unlocking_off_actions_need_only_the_csrf_token(box):
    app = create_app(box=box.box, web=WebConfig(require_unlock=False))
    client = app.test_client()
    assert status(client)["auth"]["unlocked"] is True
    assert post(client, "/api/rename", {"class": 0, "name": "Ball"}).status_code == 200
    assert post(client, "/api/rename", {"class": 0, "name": "Cup"}, token=False).status_code == 403
    assert box.loop.head.names[0] == "Ball"


# -- garbage never makes a 500 ----------------------------------------------------------------------

GARBAGE_HEADERS = [
    pytest.param({"Origin": "http://[::1"}, id="origin-broken-ipv6"),
    pytest.param({"Origin": "null"}, id="origin-null"),
    pytest.param({"Origin": "http://localhost:99999"}, id="origin-bad-port"),
    pytest.param({"Host": "[::1"}, id="host-broken-ipv6"),
    pytest.param({"Host": "local host"}, id="host-space"),
    pytest.param({"Host": "localhost:abc"}, id="host-bad-port"),
    pytest.param({"Host": ""}, id="host-empty"),
    pytest.param({CSRF_HEADER: "\u00e9" * 10}, id="csrf-non-ascii"),
    pytest.param({"Content-Type": "multipart/form-data"}, id="multipart-without-boundary"),
    pytest.param({"Content-Type": "application/json; charset=utf-16"}, id="json-utf16"),
]
GARBAGE_ROUTES = [p for m, p in OPEN_ROUTES if m == "POST"] + [p for p, _ in POST_ROUTES]


def _answers(client, path, **kwargs):
    """The status of a POST, with an unhandled exception counted as the 500 a browser would get."""
    try:
        return client.post(path, **kwargs)
    except Exception as exc:  # TESTING propagates exceptions instead of answering 500
        return exc


def _failures(results):
    return {path: (r if isinstance(r, Exception) else (r.status_code, r.data[:100]))
            for path, r in results.items() if isinstance(r, Exception) or r.status_code >= 500 or not r.is_json}


@pytest.mark.parametrize("headers", GARBAGE_HEADERS)
def test_garbage_headers_never_make_a_500(app, taught, headers):
    results = {}
    for path in GARBAGE_ROUTES:
        client = app.test_client()
        unlock(client)
        token = csrf(client)
        results[path] = _answers(client, path, data=b'{"class": 0, "name": "X", "confirm": true}',
                                 headers={CSRF_HEADER: token, "Content-Type": "application/json", **headers})
    assert _failures(results) == {}
    if "Origin" in headers or "Host" in headers or CSRF_HEADER in headers:  # all refused
        assert {p: r.status_code for p, r in results.items() if r.status_code not in (403, 421)} == {}
        assert taught.loop.head.counts == [1, 1, 0, 0] and taught.loop.head.names[1] == "Box"


@pytest.mark.parametrize("payload", [
    {"class": 10 ** 30}, {"class": -10 ** 30}, {"class": float("nan")}, {"class": float("inf")},
    {"class": 0, "name": "x" * 10000}, {"class": 0, "name": {"a": [1, 2]}}, {"button": 10 ** 30, "pressed": True},
    {"source": "x" * 10000}, {"pin": "9" * 10000}, {"confirm": None},
    [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]],
], ids=lambda p: repr(p)[:30])
def test_garbage_values_never_make_a_500(app, taught, payload):
    results = {}
    for path in GARBAGE_ROUTES:
        client = app.test_client()
        unlock(client)
        results[path] = _answers(client, path, data=json.dumps(payload).encode(),
                                 headers={CSRF_HEADER: csrf(client), "Content-Type": "application/json"})
    assert _failures(results) == {}


def test_a_hold_from_a_phone_that_goes_quiet_stops_by_itself(client, box, monkeypatch):
    import web_ui.teaching

    monkeypatch.setattr(web_ui.teaching, "TEACH_LEASE", 0.3)
    loop = box.loop
    unlock(client)
    assert post(client, "/api/teach/start", {"class": 1}).status_code == 200
    loop.step()
    assert status(client)["teaching"] == 1
    assert post(client, "/api/teach/start", {"class": 1, "keep": True}).get_json()["teaching"] is True
    deadline = time.monotonic() + 10
    while status(client)["teaching"] is not None and time.monotonic() < deadline:
        loop.step()  # no renewal: the phone dropped off the Wi-Fi
    assert status(client)["teaching"] is None
    taught = loop.head.counts[1]
    for _ in range(5):
        loop.step()
    assert loop.head.counts[1] == taught >= 1
    assert post(client, "/api/teach/start", {"class": 1, "keep": True}).get_json()["teaching"] is False


# -- holes found by an attacker on the LAN -----------------------------------------------------------


def copy_of(client, app):
    """Another browser holding a copy of ``client``'s cookie (a replayed or stolen cookie)."""
    thief = app.test_client()
    cookie = client.get_cookie("session")
    thief.set_cookie(cookie.key, cookie.value, domain=cookie.domain or "localhost")
    return thief


def test_lock_revokes_the_unlock_on_the_box_even_for_a_copied_cookie(client, app, taught):
    unlock(client)
    thief = copy_of(client, app)
    assert status(thief)["auth"]["unlocked"] is True  # the copy works while the owner is unlocked
    assert post(client, "/api/lock").status_code == 200
    before = state(taught.loop)
    assert status(thief)["auth"]["unlocked"] is False
    assert post(thief, "/api/clear-all", {"confirm": True}).status_code == 401
    assert post(thief, "/api/source", {"source": "hand"}).status_code == 401
    assert thief.get("/api/export").status_code == 401
    assert state(taught.loop) == before


def test_a_restart_ends_every_unlock(box):
    key = b"k" * 32  # the cookie key is kept across restarts (web-secret); unlocks are not
    before_restart = create_app({"TESTING": True}, box=box.box, web=WebConfig(pin=PIN), secret_key=key)
    owner = before_restart.test_client()
    unlock(owner)
    after_restart = create_app({"TESTING": True}, box=box.box, web=WebConfig(pin=PIN), secret_key=key)
    replayed = copy_of(owner, after_restart)
    assert status(replayed)["auth"]["unlocked"] is False
    assert post(replayed, "/api/clear-all", {"confirm": True}).status_code == 401
    assert post(replayed, "/api/source", {"source": "hand"}).status_code == 401


def test_an_unlock_lasts_as_long_as_the_page_says(box):
    clock = Clock()
    app = create_app({"TESTING": True}, box=box.box, web=WebConfig(pin=PIN), unlocks=Unlocks(clock=clock))
    client = app.test_client()
    unlock(client)
    auth = status(client)["auth"]
    assert auth["unlock_hours"] == 12 and auth["expires_in"] == 12 * 3600
    clock.t += 12 * 3600 - 60
    assert status(client)["auth"]["expires_in"] == 60
    assert post(client, "/api/rename", {"class": 0, "name": "Still mine"}).status_code == 200
    clock.t += 61
    auth = status(client)["auth"]
    assert auth["unlocked"] is False and auth["expires_in"] is None
    assert post(client, "/api/rename", {"class": 0, "name": "Too late"}).status_code == 401


@pytest.mark.parametrize("path, payload", [
    ("/api/sim/button", {"button": 0, "pressed": True}),
    ("/api/sim/button", {"button": "function", "pressed": True}),
    ("/api/sim/source", {"source": "blue box"}),
], ids=["class-button", "function-button", "source"])
def test_a_locked_browser_elsewhere_gets_no_simulated_presence(remote, box, path, payload):
    """With gpio = "auto" on a PC the panel is simulated; a neighbour must not press it."""
    assert status(remote)["auth"]["presence"] is False
    response = post(remote, path, payload)
    assert response.status_code == 401 and "unlock" in error_of(response)
    box.loop.step()
    panel = status(remote)["panel"]
    assert panel["buttons"] == [False] * 4 and panel["function"] is False
    assert status(remote)["camera"]["source"] == "red ball"


def test_a_browser_elsewhere_cannot_approve_its_own_pairing_with_the_simulated_panel(remote, box):
    code = post(remote, "/api/unlock/pair").get_json()["code"]
    assert post(remote, "/api/sim/button", {"button": code - 1, "pressed": True}).status_code == 401
    post(remote, "/api/sim/button", {"button": code - 1, "pressed": False})
    box.loop.step()
    assert remote.get("/api/unlock/pair").get_json()["state"] == "pending"
    assert status(remote)["auth"]["unlocked"] is False


def test_the_simulated_panel_works_on_the_box_itself_and_for_an_unlocked_browser(client, remote, box):
    assert status(client)["auth"]["presence"] is True  # a browser on the machine itself
    unlock(remote)
    assert status(remote)["auth"]["presence"] is True
    assert post(remote, "/api/sim/button", {"button": 1, "pressed": True}).status_code == 200
    box.loop.step()
    assert post(remote, "/api/sim/button", {"button": 1, "pressed": False}).status_code == 200
    box.loop.step()
    assert box.loop.head.counts == [0, 1, 0, 0]


DEEP = b"[" * 100_000 + b"]" * 100_000
EVERY_POST = ["/api/teach/start", "/api/teach/stop", "/api/undo", "/api/clear", "/api/clear-all", "/api/rename",
              "/api/unlock/pin", "/api/unlock/pair", "/api/unlock/pair/cancel", "/api/lock", "/api/sim/button",
              "/api/sim/source", "/api/examples/delete", "/api/examples/move", "/api/doubtful/file",
              "/api/doubtful/dismiss", "/api/model", "/api/source"]


@pytest.mark.parametrize("path", EVERY_POST)
def test_absurdly_nested_json_is_a_400_on_every_route(client, taught, path):
    unlock(client)
    before = state(taught.loop)
    response = post(client, path, data=DEEP, content_type="application/json")
    assert response.status_code == 400, response.data[:200]
    error_of(response)
    assert_nothing_changed(taught, before)


def test_a_hold_on_the_same_picture_says_so_and_counts_live(client, box):
    unlock(client)
    assert post(client, "/api/teach/start", {"class": 0}).status_code == 200
    box.loop.step()
    burst = status(client)["burst"]
    assert burst == {"class": 0, "taught": 1, "skipped": 0, "same_picture": False}
    for _ in range(6):  # the camera keeps seeing the very same ball
        box.camera.select("red ball")
        held_step(box)
    burst = status(client)["burst"]
    assert burst["taught"] <= 2 and burst["skipped"] >= 3 and burst["same_picture"] is True
    box.camera.select("blue box")  # moved: a new picture is taken and the hint goes
    held_step(box)
    burst = status(client)["burst"]
    assert burst["taught"] >= 2 and burst["same_picture"] is False
    post(client, "/api/teach/stop", {"class": 0})
    box.loop.step()
    assert status(client)["burst"] is None


def test_clear_all_keeps_the_names_as_clearing_one_class_does(client, taught):
    unlock(client)
    response = post(client, "/api/clear-all", {"confirm": True})
    assert response.get_json()["names_kept"] is True
    assert [c["name"] for c in status(client)["classes"]] == ["Class 1", "Box", "Class 3", "Class 4"]


# -- the model ----------------------------------------------------------------------------------------

DEFAULT = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"


def settled(box):
    """What was taught is stored (a switch embeds the stored crops)."""
    box.loop.step()
    box.loop.keeper.settle()


def test_the_models_are_open_names_and_facts_and_say_which_are_here(client, box):
    response = client.get("/api/models")  # a locked page may see them, as it sees the status
    assert response.status_code == 200
    data = response.get_json()
    assert data["switch"] is None and status(client)["model_switch"] is None
    models = {m["name"]: m for m in data["models"]}
    assert set(models) == {DEFAULT, SMALL_MODEL, "mobilenet_v2_1.0_224_quant_embedding_extractor.tflite"}
    assert models[DEFAULT] == {"name": DEFAULT, "dim": 1024, "input_size": 224, "note": models[DEFAULT]["note"],
                               "present": True, "current": True}
    assert models[SMALL_MODEL]["present"] is True and models[SMALL_MODEL]["current"] is False
    assert models[SMALL_MODEL]["dim"] == 512 and models[SMALL_MODEL]["input_size"] == 160
    assert [m["name"] for m in data["models"] if m["current"]] == [status(client)["model"]]
    assert not any(key in m for m in data["models"] for key in ("path", "sha256", "url"))  # no paths or hashes


def test_a_model_folder_without_the_others_lists_them_as_not_here(embedder, factory, tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    rig = make_rig(embedder, factory, tmp_path / "state", model={"dir": str(empty)})
    try:
        client = create_app({"TESTING": True}, box=rig.box, web=WebConfig(pin=PIN)).test_client()
        models = {m["name"]: m for m in client.get("/api/models").get_json()["models"]}
        assert [n for n, m in models.items() if m["present"]] == []  # the running model came from elsewhere
        assert models[DEFAULT]["current"] is True
        unlock(client)
        response = post(client, "/api/model", {"model": SMALL_MODEL})
        assert response.status_code == 409
        message = error_of(response)
        assert "not on this box" in message and "fetch it first" in message
        assert rig.box.snapshot().model_switch is None
    finally:
        rig.box.close()


def test_switching_the_model_over_http_learns_every_example_again_and_keeps_the_counts(client, taught):
    unlock(client)
    teach(taught, 2, "green stripes", 2)
    settled(taught)
    before = status(client)
    counts = [c["examples"] for c in before["classes"]]
    assert counts == [1, 1, 2, 0] and before["model"] == DEFAULT and before["dim"] == 1024
    response = post(client, "/api/model", {"model": SMALL_MODEL})
    assert response.status_code == 202, response.get_json()
    data = response.get_json()
    assert data["ok"] is True
    assert data["switch"]["model"] == SMALL_MODEL and data["switch"]["state"] in ("embedding", "done")
    assert data["status"]["model_switch"]["model"] == SMALL_MODEL
    progress = finish_switch(taught)
    assert progress.state == "done" and progress.error is None
    after = status(client)
    assert after["model"] == SMALL_MODEL and after["dim"] == 512
    assert after["model_switch"] == {"model": SMALL_MODEL, "state": "done", "done": 4, "total": 4, "error": None}
    assert [c["examples"] for c in after["classes"]] == counts
    assert [c["name"] for c in after["classes"]] == [c["name"] for c in before["classes"]]
    models = {m["name"]: m for m in client.get("/api/models").get_json()["models"]}
    assert models[SMALL_MODEL]["current"] is True and models[DEFAULT]["current"] is False
    assert client.get("/api/models").get_json()["switch"]["state"] == "done"
    # the new model recognises what was taught with the old one
    for scene, answer in (("blue box", "Box"), ("red ball", "Class 1"), ("green stripes", "Class 3")):
        taught.camera.select(scene)
        taught.loop.step()
        assert status(client)["answer"] == answer, scene
    # and switching back works the same way
    assert post(client, "/api/model", {"model": DEFAULT}).status_code == 202
    assert finish_switch(taught).state == "done"
    assert status(client)["model"] == DEFAULT and [c["examples"] for c in status(client)["classes"]] == counts


def test_a_locked_browser_cannot_switch_the_model_but_sees_which_it_is(app, taught):
    owner, stranger = browser_at(app, "10.0.0.8"), browser_at(app, REMOTE_ADDR)
    unlock(owner)
    response = post(stranger, "/api/model", {"model": SMALL_MODEL})
    assert response.status_code == 401 and "unlock" in error_of(response)
    assert taught.box.snapshot().model_switch is None and status(stranger)["model"] == DEFAULT
    assert [m["current"] for m in stranger.get("/api/models").get_json()["models"]].count(True) == 1
    assert post(owner, "/api/model", {"model": SMALL_MODEL}).status_code == 202  # the unlocked phone can
    finish_switch(taught)
    assert status(stranger)["model"] == SMALL_MODEL


@pytest.mark.parametrize("name, words", [
    ("mobilenet_v3.tflite", "unknown model"),
    (DEFAULT, "runs mobilenet_v1_1.0_224_quant_embedding_extractor.tflite already"),
    ("../" + SMALL_MODEL, "unknown model"),
], ids=["unknown", "the-one-it-runs", "a-path"])
def test_a_switch_the_box_refuses_is_409_saying_why(client, taught, name, words):
    unlock(client)
    before = state(taught.loop)
    response = post(client, "/api/model", {"model": name})
    assert response.status_code == 409
    assert words in error_of(response)
    assert_nothing_changed(taught, before)
    assert status(client)["model"] == DEFAULT


@pytest.mark.parametrize("value", [None, 3, True, ["x"], {"name": SMALL_MODEL}, "", "x" * 201],
                         ids=lambda v: repr(v)[:12])
def test_a_model_that_is_not_a_name_is_400(client, taught, value):
    unlock(client)
    response = post(client, "/api/model", {} if value is None else {"model": value})
    assert response.status_code == 400 and "'model'" in error_of(response)
    assert taught.box.snapshot().model_switch is None


def test_a_second_switch_while_one_goes_on_is_409_and_so_is_an_import(client, taught):
    unlock(client)
    settled(taught)
    blob = export_bytes(client)
    stuck = threading.Event()
    taught.loop.keeper.writer.submit(lambda library: stuck.wait(30))  # the switch cannot end before this
    try:
        assert post(client, "/api/model", {"model": SMALL_MODEL}).status_code == 202
        assert status(client)["model_switch"]["state"] == "embedding"
        again = post(client, "/api/model", {"model": "mobilenet_v2_1.0_224_quant_embedding_extractor.tflite"})
        assert again.status_code == 409 and "already going on" in error_of(again)
        refused = post(client, "/api/import", data=blob, content_type="application/octet-stream")
        assert refused.status_code == 409
        assert "import when that is done" in error_of(refused) and "Nothing was changed" in error_of(refused)
        assert status(client)["model"] == DEFAULT  # the box answers with its model meanwhile
    finally:
        stuck.set()
    assert finish_switch(taught).state == "done"
    assert status(client)["model"] == SMALL_MODEL and taught.loop.head.counts == [1, 1, 0, 0]


def test_a_config_that_names_the_model_file_pins_it(embedder, factory, tmp_path, model_path):
    rig = make_rig(embedder, factory, tmp_path / "state", model={"path": str(model_path), "dir": str(MODEL_MIRROR)})
    try:
        client = create_app({"TESTING": True}, box=rig.box, web=WebConfig(pin=PIN)).test_client()
        unlock(client)
        response = post(client, "/api/model", {"model": SMALL_MODEL})
        assert response.status_code == 409 and "[model] path" in error_of(response)
        assert rig.box.snapshot().model_switch is None
    finally:
        rig.box.close()


def test_a_damaged_model_file_is_409_naming_it_and_the_box_keeps_its_model(embedder, factory, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / SMALL_MODEL).write_bytes(b"TFL3 not really a model" * 100)  # cut short or damaged on the card
    rig = make_rig(embedder, factory, tmp_path / "state", model={"dir": str(folder)})
    try:
        client = create_app({"TESTING": True}, box=rig.box, web=WebConfig(pin=PIN)).test_client()
        assert {m["name"]: m["present"] for m in client.get("/api/models").get_json()["models"]}[SMALL_MODEL]
        unlock(client)
        response = post(client, "/api/model", {"model": SMALL_MODEL})
        assert response.status_code == 409
        message = error_of(response)
        assert "cannot be loaded" in message and SMALL_MODEL in message and "fetch-model" in message
        assert rig.box.snapshot().model_switch is None and status(client)["model"] == DEFAULT
    finally:
        rig.box.close()


def test_a_box_that_cannot_switch_says_so(embedder, tmp_path):
    from device.camera import CameraSupervisor
    from device.loop import TeachLoop
    from device.storage import model_identity

    loop = TeachLoop(CameraSupervisor(SyntheticCamera(fps=0), timeout=2.0), embedder,
                     NearestCentroidHead(embedder.dim, 4), model=model_identity(embedder.describe()))
    bare = DeviceBox(loop)
    try:
        client = create_app({"TESTING": True}, box=bare, web=WebConfig(require_unlock=False)).test_client()
        response = post(client, "/api/model", {"model": SMALL_MODEL})
        assert response.status_code == 409 and "cannot switch" in error_of(response)
        assert status(client)["model_switch"] is None and client.get("/api/models").get_json()["switch"] is None
    finally:
        bare.close()


# -- waitress in front: a body past what the page takes is refused before it is held -------------------

def test_over_http_an_import_past_the_limit_is_refused_and_one_just_past_it_says_why(embedder, factory, tmp_path):
    import http.client

    from web_ui.server import MAX_REQUEST_BODY, PageServer

    config = box_config(tmp_path / "state", web={"host": "127.0.0.1", "port": 0, "pin": PIN})
    appliance = build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory)
    server = PageServer(appliance, config)
    server.start()
    try:
        def connection(timeout=60):
            return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)

        conn = connection()
        conn.request("GET", "/api/status")
        answer = conn.getresponse()
        cookie = answer.getheader("Set-Cookie").split(";", 1)[0]
        token = json.loads(answer.read())["auth"]["csrf"]
        headers = {"Cookie": cookie, CSRF_HEADER: token, "Content-Type": "application/json"}
        conn.request("POST", "/api/unlock/pin", body=json.dumps({"pin": PIN}), headers=headers)
        answer = conn.getresponse()
        assert answer.status == 200
        cookie = answer.getheader("Set-Cookie").split(";", 1)[0]
        answer.read()
        headers = {"Cookie": cookie, CSRF_HEADER: token, "Content-Type": "application/octet-stream"}
        # 256 MB announced: waitress answers at once, before a byte of it is sent or stored
        conn = connection(timeout=10)
        conn.putrequest("POST", "/api/import")
        for key, value in {**headers, "Content-Length": str(256 << 20)}.items():
            conn.putheader(key, value)
        conn.endheaders()
        answer = conn.getresponse()
        assert answer.status == 413
        answer.read()
        # just past the page's limit (under waitress's): the page says why, and what to do
        assert MAX_UPLOAD < MAX_REQUEST_BODY <= MAX_UPLOAD + (4 << 20)
        conn = connection()
        conn.request("POST", "/api/import", body=b"\0" * (MAX_UPLOAD + 10), headers=headers)
        answer = conn.getresponse()
        assert answer.status == 413
        message = json.loads(answer.read())["error"]
        assert "at most 128 MB" in message and "teachbox import FILE" in message
        assert appliance.loop.head.counts == [0, 0, 0, 0]
    finally:
        server.close()
        appliance.close()
