"""The phone page over real HTTP: waitress (PageServer) beside the running loop.

The loop runs in its own thread (``loop.run()``) on the synthetic camera and the real
model; clients use only the standard library (urllib, http.client, sockets).  No
assertion is about speed: deadlines are generous and only say "it answered at all".
"""

from __future__ import annotations

import http.client
import http.cookiejar
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import List

import pytest
from PIL import Image

from conftest import box_config
from device.app import build_box
from device.box import Box
from device.camera import SyntheticCamera
from device.config import Config
from web_ui.app import CSRF_HEADER
from web_ui.server import PageServer, bind_page_socket

PIN = "246813"
DEADLINE = 30.0  # seconds: generous, only to fail instead of hanging


@dataclass
class Served:
    box: Box
    camera: SyntheticCamera
    server: PageServer
    url: str
    sockets: List[socket.socket] = field(default_factory=list)

    @property
    def loop(self):
        return self.box.loop

    def frames(self) -> int:
        return self.box.snapshot().loop.camera.frames

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=DEADLINE)
        self.sockets.append(sock)
        return sock


def page_config(tmp_path) -> Config:
    """Port 0: the OS picks a free port (PageServer.port tells which)."""
    return box_config(tmp_path / "state", web={"host": "127.0.0.1", "port": 0, "pin": PIN, "threads": 8})


def make_box(embedder, factory, tmp_path):
    camera = SyntheticCamera(fps=0)
    return build_box(page_config(tmp_path), embedder=embedder, camera=camera, pin_factory=factory), camera


def wait_until(condition, what: str, deadline: float = DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"gave up after {deadline:g} s waiting for {what}")


def serve(box, camera, tmp_path, **limits):
    server = PageServer(box, page_config(tmp_path), **limits)
    server.start()
    runner = threading.Thread(target=box.run, name="test-loop", daemon=True)
    runner.start()
    served = Served(box, camera, server, f"http://127.0.0.1:{server.port}")
    wait_until(lambda: box.latest_frame()[1] is not None, "the first camera frame")
    return served, runner


def stop(served, runner):
    for sock in served.sockets:
        sock.close()
    served.box.stop()
    runner.join(timeout=DEADLINE)
    served.server.close()
    served.box.close()
    assert not runner.is_alive()


@pytest.fixture
def served(embedder, factory, tmp_path):
    box, camera = make_box(embedder, factory, tmp_path)
    served, runner = serve(box, camera, tmp_path)
    try:
        yield served
    finally:
        stop(served, runner)


# -- small HTTP client ------------------------------------------------------------------------------


def fetch(url, *, opener=None, data=None, headers=None, method=None, timeout=DEADLINE):
    """``(status, headers, body)``; 4xx/5xx are answers too, not exceptions."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with (opener.open if opener else urllib.request.urlopen)(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def get_json(url, **kwargs):
    code, headers, body = fetch(url, **kwargs)
    assert headers.get_content_type() == "application/json", body[:200]
    return code, json.loads(body)


def post_json(url, payload, *, opener, token):
    code, headers, body = fetch(url, opener=opener, data=json.dumps(payload).encode(), method="POST",
                                headers={"Content-Type": "application/json", CSRF_HEADER: token})
    return code, json.loads(body)


def browser():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)), jar


def examples(box, class_id, opener=None):
    return get_json(box.url + "/api/status", opener=opener)[1]["classes"][class_id]["examples"]


# -- tests ----------------------------------------------------------------------------------------------


def test_status_and_frame_over_http(served):
    code, data = get_json(served.url + "/api/status")
    assert code == 200
    assert data["camera"]["state"] == "online" and data["camera"]["frames"] > 0
    assert data["auth"]["unlocked"] is False and data["simulated"] is True
    assert len(data["classes"]) == 4

    code, headers, body = fetch(served.url + "/api/frame.jpg")
    assert code == 200
    assert headers.get_content_type() == "image/jpeg"
    assert "no-store" in headers["Cache-Control"]
    assert body.startswith(b"\xff\xd8")
    image = Image.open(io.BytesIO(body))
    image.load()
    assert image.format == "JPEG" and image.size == (320, 240)


def test_other_host_names_are_refused_over_http(served):
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=DEADLINE)
    try:
        connection.request("GET", "/api/status", headers={"Host": "evil.example"})
        response = connection.getresponse()
        assert response.status == 421
        assert "evil.example" in json.loads(response.read())["error"]
    finally:
        connection.close()


def test_unlock_and_teach_over_http_with_a_cookie_jar(served):
    url = served.url
    opener, jar = browser()
    code, headers, body = fetch(url + "/api/status", opener=opener)
    assert code == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert len(jar) == 1
    token = json.loads(body)["auth"]["csrf"]

    code, data = post_json(url + "/api/teach/start", {"class": 2}, opener=opener, token=token)
    assert code == 401 and "unlock" in data["error"]
    code, data = post_json(url + "/api/unlock/pin", {"pin": PIN}, opener=opener, token=token)
    assert code == 200
    assert get_json(url + "/api/status", opener=opener)[1]["auth"]["unlocked"] is True

    code, _ = post_json(url + "/api/teach/start", {"class": 2}, opener=opener, token=token)
    assert code == 200
    wait_until(lambda: examples(served, 2, opener) > 0, "an example of class 3")
    code, _ = post_json(url + "/api/teach/stop", {"class": 2}, opener=opener, token=token)
    assert code == 200
    wait_until(lambda: get_json(url + "/api/status", opener=opener)[1]["teaching"] is None, "teaching to stop")
    taught = examples(served, 2, opener)
    frames = served.frames()
    served.camera.select("blue box")  # something new in view: a burst still going would take it
    wait_until(lambda: served.frames() > frames + 10, "ten more frames")
    _, data = get_json(url + "/api/status", opener=opener)
    assert [c["examples"] for c in data["classes"]] == [0, 0, taught, 0]

    # another browser (no cookie) is still locked, and the unlocked one needs its token
    other, _ = browser()
    other_token = get_json(url + "/api/status", opener=other)[1]["auth"]["csrf"]
    assert post_json(url + "/api/clear-all", {"confirm": True}, opener=other, token=other_token)[0] == 401
    assert post_json(url + "/api/clear-all", {"confirm": True}, opener=opener, token="wrong")[0] == 403
    assert examples(served, 2) == taught


def test_slow_clients_do_not_block_the_page(served):
    for _ in range(6):  # half a request line, then nothing
        served.connect().sendall(b"GET /api/status HTT")
    for _ in range(6):  # headers, and a body that never comes
        served.connect().sendall(b"POST /api/unlock/pin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"pin\"")
    code, data = get_json(served.url + "/api/status", timeout=DEADLINE)
    assert code == 200 and data["camera"]["state"] == "online"
    code, _, body = fetch(served.url + "/api/frame.jpg", timeout=DEADLINE)
    assert code == 200 and body.startswith(b"\xff\xd8")
    frames = served.frames()
    wait_until(lambda: served.frames() > frames + 5, "the loop to go on")


def test_the_loop_keeps_going_while_pages_poll(served):
    errors, answers = [], []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                code, headers, body = fetch(served.url + "/api/frame.jpg", timeout=DEADLINE)
                assert code == 200 and body.startswith(b"\xff\xd8"), (code, body[:80])
                code, data = get_json(served.url + "/api/status", timeout=DEADLINE)
                assert code == 200 and data["camera"]["state"] == "online", data
                answers.append(data["camera"]["frames"])
            except Exception as exc:  # reported below
                errors.append(exc)
                return

    before = served.frames()
    pollers = [threading.Thread(target=poll, daemon=True) for _ in range(4)]
    for thread in pollers:
        thread.start()
    time.sleep(2.0)
    stop.set()
    for thread in pollers:
        thread.join(timeout=DEADLINE)
    after = served.frames()
    assert errors == []
    assert not any(thread.is_alive() for thread in pollers)
    assert len(answers) >= 4  # every poller was answered
    assert after - before >= 10  # the camera loop was not starved by the page
    assert max(answers) > min(answers)  # and the page saw it move on


@pytest.mark.parametrize("headers", [{"Origin": "http://[::1"}, {CSRF_HEADER: "\u00e9t\u00e9"}],
                         ids=["broken-origin", "non-ascii-csrf"])
def test_malformed_headers_are_refused_not_a_server_error(served, headers):
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=DEADLINE)
    try:
        connection.request("GET", "/api/status")  # a session, as the page has
        response = connection.getresponse()
        cookie = response.getheader("Set-Cookie").split(";")[0]
        token = json.loads(response.read())["auth"]["csrf"]
        connection.request("POST", "/api/lock", body=b"{}",
                           headers={"Content-Type": "application/json", "Cookie": cookie, CSRF_HEADER: token,
                                    **headers})
        response = connection.getresponse()
        response.read()
        assert response.status == 403
    finally:
        connection.close()


def test_closing_the_server_ends_open_connections(embedder, factory, tmp_path):
    box, _ = make_box(embedder, factory, tmp_path)
    server = PageServer(box, page_config(tmp_path))
    server.start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE)
    closed = False
    try:
        connection.request("GET", "/api/status")  # a browser keeps this connection open
        response = connection.getresponse()
        assert response.status == 200 and not response.will_close
        response.read()
        server.close()
        closed = True
        with pytest.raises(OSError):  # no new connections
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
        with pytest.raises((OSError, http.client.HTTPException)):  # and the open one is not served either
            connection.request("GET", "/api/status")
            connection.getresponse().read()
    finally:
        connection.close()
        if not closed:
            server.close()
        box.close()


# -- idle and slow connections (a hostile neighbour) ------------------------------------------------


def idle_sockets(served, count):
    """``count`` connections that send nothing, as a neighbour trying to exhaust the server would."""
    for _ in range(count):
        served.connect()


PATIENCE = 10.0  # seconds a phone waits for an answer (waitress's own idle cut-off was 120 s)


def test_150_idle_connections_do_not_keep_a_phone_out(served):
    idle_sockets(served, 150)
    code, data = get_json(served.url + "/api/status", timeout=PATIENCE)
    assert code == 200 and data["camera"]["state"] == "online"
    code, _, body = fetch(served.url + "/", timeout=PATIENCE)
    assert code == 200 and b"<html" in body.lower()


def test_idle_connections_are_cut_off_so_that_more_of_them_cannot_fill_the_server(embedder, factory, tmp_path):
    box, camera = make_box(embedder, factory, tmp_path)
    served, runner = serve(box, camera, tmp_path, connection_limit=20, channel_timeout=1, cleanup_interval=1)
    try:
        idle_sockets(served, 40)  # twice what the server takes at once
        code, data = get_json(served.url + "/api/status", timeout=DEADLINE)  # in once the idle ones are cut
        assert code == 200 and data["camera"]["state"] == "online"
        cut = [sock for sock in served.sockets[:20] if sock.recv(1) == b""]  # the server closed them
        assert len(cut) == 20
    finally:
        stop(served, runner)


def test_one_device_cannot_fill_the_server_with_slow_connections(embedder, factory, tmp_path):
    """A neighbour dripping into many sockets: the server keeps only a few of them; a phone still gets in.

    The box itself is not capped, so here both sides use loopback addresses with the cap switched on
    for loopback: the neighbour 127.0.0.2, the phone 127.0.0.1.
    """
    box, camera = make_box(embedder, factory, tmp_path)
    sock = bind_page_socket("127.0.0.1", 0, per_client=4, exempt_loopback=False)
    served, runner = serve(box, camera, tmp_path, sock=sock, connection_limit=20, channel_timeout=60)
    try:
        neighbour = []
        for _ in range(30):  # more than the whole server takes
            conn = socket.create_connection(("127.0.0.1", served.server.port), timeout=DEADLINE,
                                            source_address=("127.0.0.2", 0))
            conn.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never finishes
            neighbour.append(conn)
        served.sockets.extend(neighbour)
        code, data = get_json(served.url + "/api/status", timeout=PATIENCE)
        assert code == 200 and data["camera"]["state"] == "online"
        kept = []
        for conn in neighbour:
            conn.settimeout(0.5)
            try:
                kept.append(conn.recv(1) != b"")
            except socket.timeout:
                kept.append(True)  # still open, waiting
            except ConnectionResetError:
                kept.append(False)
        assert kept.count(True) == 4  # the rest were closed at once
    finally:
        stop(served, runner)
