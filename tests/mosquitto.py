"""A real Mosquitto broker for the tests, on a free loopback port, and a subscriber that keeps what it gets."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

BINARY = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    def __init__(self, folder: Path, port: int = 0, password: str = "") -> None:
        if not Path(BINARY).exists():
            pytest.fail("mosquitto is missing: scripts/dev.sh test installs it (apt install mosquitto)")
        self.folder, self.port = Path(folder), port or free_port()
        lines = [f"listener {self.port} 127.0.0.1", "persistence false"]
        if os.geteuid() == 0:  # as root it would switch to the user "mosquitto", who cannot read tmp_path
            lines.insert(0, f"user {pwd.getpwuid(0).pw_name}")
        if password:
            users = self.folder / "passwords"
            users.touch(mode=0o600)
            subprocess.run(["mosquitto_passwd", "-b", str(users), "teachbox", password], check=True)
            lines += ["allow_anonymous false", f"password_file {users}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = self.folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([BINARY, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class Listener:
    """A paho subscriber of ``topics`` keeping every message (newest last) and the retained ones."""

    def __init__(self, port: int, *topics: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        for topic in topics or ("#",):
            self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic: str):
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def json_on(self, topic: str):
        return [json.loads(payload) for payload in self.on(topic) if payload]

    def wait(self, condition, timeout: float = 10.0, what: str = "a message"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.05)
        with self._lock:
            seen = [(t, p[:200]) for t, p, _ in self.messages[-20:]]
        raise AssertionError(f"no {what} within {timeout} s; last messages: {seen}")

    def publish(self, topic: str, payload, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path):
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    running = Broker(folder)
    yield running
    running.stop()


@pytest.fixture
def listen(broker):
    made = []

    def listener(*topics):
        made.append(Listener(broker.port, *topics))
        return made[-1]

    yield listener
    for one in made:
        one.close()
