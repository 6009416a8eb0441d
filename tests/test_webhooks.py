"""The webhook against a real HTTP receiver on loopback: signed, verifiable, retried, bounded, never blocking."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from conftest import box_config, prompt_events, teach_scenes
from device.app import build_box
from device.camera import SyntheticCamera
from device.config import Config
from device.rules import RuleEvent
from device.webhooks import QUEUE_SIZE, WebhookSender, verify_signature

SECRET = "s3cret-key"


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers=()):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests = []
        self.answers = list(answers)  # status per request, then 204
        self.extra_headers = {}
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def close(self):
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers), body))
        status = self.server.answers.pop(0) if self.server.answers else 204
        self.send_response(status)
        if status in (301, 302, 307):
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    made = []

    def make(answers=()):
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for one in made:
        one.close()


def settings(url, **values):
    return Config().override("webhook", url=url, secret=SECRET, timeout=2.0, **values).webhook


def event(kind="start", answer="cat"):
    return RuleEvent("cat flap", kind, answer, 0, 0.91, 1796200000.5)


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_signed_event_arrives_and_verifies_and_a_forgery_does_not(receiver):
    server = receiver()
    sender = WebhookSender(settings(server.url), box_name="Cat flap", box_id="cat-flap", source=lambda: "picture")
    sender.apply(event())
    assert wait_for(lambda: server.requests)
    sender.close()
    headers, body = server.requests[0]
    payload = json.loads(body)
    assert payload == {"rule": "cat flap", "kind": "start", "answer": "cat", "class_id": 0, "confidence": 0.91,
                       "time": "2026-12-02T08:26:40.500Z", "unix": 1796200000.5, "box": "Cat flap",
                       "box_id": "cat-flap", "source": "picture"}
    assert headers["Content-Type"] == "application/json" and headers["X-Teachbox-Event"] == "start"
    stamp, signature = headers["X-Teachbox-Timestamp"], headers["X-Teachbox-Signature"]
    assert signature.startswith("sha256=") and verify_signature(SECRET, body, stamp, signature)
    assert not verify_signature("wrong secret", body, stamp, signature)
    assert not verify_signature(SECRET, body.replace(b"cat", b"dog"), stamp, signature)
    assert not verify_signature(SECRET, body, stamp, signature, now=int(stamp) + 3600)  # a replay an hour later
    assert not verify_signature(SECRET, body, "yesterday", signature)
    assert sender.status().sent == 1


def test_failures_are_retried_with_the_same_delivery_id_and_a_400_is_not(receiver):
    server = receiver([500, 503, 204, 400])
    waits = []
    sender = WebhookSender(settings(server.url, retries=3), box_name="b", box_id="b", sleep=waits.append)
    sender.apply(event())
    sender.apply(event("end"))
    assert wait_for(lambda: len(server.requests) == 4)
    time.sleep(0.2)
    sender.close()
    deliveries = [headers["X-Teachbox-Delivery"] for headers, _ in server.requests]
    assert deliveries[0] == deliveries[1] == deliveries[2] != deliveries[3]
    assert waits == [1.0, 2.0]  # backoff 1, 2 s; the 400 is not tried again
    assert [json.loads(body)["kind"] for _, body in server.requests] == ["start"] * 3 + ["end"]
    assert sender.status().sent == 1 and sender.status().failed == 1 and "HTTP 400" in sender.status().error


def test_a_redirect_is_not_followed(receiver):
    server = receiver([302])
    sender = WebhookSender(settings(server.url, retries=0), box_name="b", box_id="b")
    sender.apply(event())
    assert wait_for(lambda: sender.status().failed == 1)
    sender.close()
    assert len(server.requests) == 1 and "redirects are not followed" in sender.status().error


def test_a_receiver_that_hangs_is_given_up_on_and_never_blocks_apply():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)  # accepts connections, never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    try:
        sender = WebhookSender(Config().override("webhook", url=url, timeout=0.5, retries=0).webhook,
                               box_name="b", box_id="b")
        began = time.monotonic()
        for _ in range(QUEUE_SIZE + 50):
            sender.apply(event())
        assert time.monotonic() - began < 0.5  # queued, not sent from the caller's thread
        assert wait_for(lambda: sender.status().failed >= 1, timeout=5)
        assert sender.status().dropped >= 49  # bounded: the oldest went
        assert "timed out" in sender.status().error
        sender.close(timeout=0.5)
    finally:
        listener.close()


def test_teaching_a_class_on_the_box_sends_signed_starts(tmp_path, receiver, factory, embedder):
    server = receiver()
    config = box_config(tmp_path / "state")
    config = prompt_events(config).override("webhook", url=server.url, secret=SECRET)
    box = build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory)
    try:
        box.rename(1, "ball")
        teach_scenes(box, ("blue box", "red ball"))
        for _ in range(4):
            box.step()
        assert wait_for(lambda: any(json.loads(b)["answer"] == "ball" for _, b in server.requests)), server.requests
    finally:
        box.close()
    for headers, body in server.requests:
        assert verify_signature(SECRET, body, headers["X-Teachbox-Timestamp"], headers["X-Teachbox-Signature"])
    ball = [json.loads(b) for _, b in server.requests if json.loads(b)["answer"] == "ball"]
    assert ball[0]["kind"] == "start" and ball[0]["rule"] is None and ball[0]["box"] == config.box_name


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_logged(receiver, caplog):
    server = receiver([400])
    port = server.server_address[1]
    sender = WebhookSender(Config().override("webhook", url=f"http://node:p%40ss@127.0.0.1:{port}/hook",
                                             retries=0).webhook, box_name="b", box_id="b")
    sender.apply(event())
    assert wait_for(lambda: sender.status().failed == 1)
    sender.close()
    assert server.requests[0][0]["Authorization"] == "Basic bm9kZTpwQHNz"  # node:p@ss
    assert "p%40ss" not in caplog.text and "p@ss" not in caplog.text and "p%40ss" not in repr(sender)
