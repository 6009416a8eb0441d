"""A box started without a usable model blinks its LEDs and waits for the model."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.config import Config
from device.errors import ModelMissingError
from device.fault import wait_for_model

LEDS = (12, 16, 20, 21)


class Recorder:
    def __init__(self):
        self.sent = []

    def send(self, *lines):
        self.sent.extend(lines)


def test_leds_blink_the_fault_pattern_until_the_model_appears(tmp_path, model_path):
    config = Config().override("model", path=str(tmp_path / "models" / model_path.name)).override(
        "panel", status_led=25)
    factory = MockFactory(pin_class=MockPWMPin)
    clock = [2000.0]
    stop = threading.Event()
    notifier = Recorder()
    result = []

    def fake_clock():
        clock[0] += 0.1  # each round of the wait advances 0.1 s
        return clock[0]

    waiter = threading.Thread(target=lambda: result.append(wait_for_model(
        config, ModelMissingError("model missing"), stop, retry=0.5, clock=fake_clock,
        pin_factory=factory, notifier=notifier)))
    waiter.start()
    seen = set()
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:  # all on, then all off: the slow blink
        seen.add(tuple(factory.pin(p).state for p in LEDS + (25,)))
        time.sleep(0.01)
    assert seen == {(1,) * 5, (0,) * 5}
    assert notifier.sent[0] == "READY=1" and notifier.sent[1].startswith("STATUS=model error: model missing")
    (tmp_path / "models").mkdir()
    shutil.copy(model_path, tmp_path / "models" / model_path.name)  # someone fetched the model
    waiter.join(timeout=30)
    assert result == [True]
    assert all(factory.pin(p).function == "input" for p in LEDS)  # released for the real panel
    assert "WATCHDOG=1" in notifier.sent


def test_as_a_service_a_missing_model_waits_and_stops_cleanly_on_sigterm(tmp_path):
    path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=str(path))
    process = subprocess.Popen(
        [sys.executable, "-m", "device", "run", "--simulate", "--model", str(tmp_path / "none.tflite"),
         "--state-dir", str(tmp_path / "state"), "--port", "0"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        message = server.recv(4096).decode()
        assert message.startswith("READY=1\nSTATUS=model error:") and "none.tflite" in message
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 2
        assert "the LEDs blink slowly" in err and "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
        server.close()
