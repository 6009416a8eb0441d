"""The systemd unit and the notify/watchdog protocol (against a test socket)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from device.camera import CameraSupervisor, SyntheticCamera
from device.head import NearestCentroidHead
from device.loop import TeachLoop
from device.notify import Notifier, SystemdOutput, watchdog_interval
from device.storage import model_identity

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "teachbox.service"


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is missing: run scripts/dev.sh test (it installs Debian's systemd package)")
    return path


def unit_keys(text: str) -> dict:
    keys = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def test_systemd_analyze_verify_prints_nothing_for_the_unit(tmp_path):
    # verify checks that ExecStart exists; point it at a stand-in with the same arguments
    program = tmp_path / "opt" / "teachbox" / "venv" / "bin" / "teachbox"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    text = UNIT.read_text()
    assert "ExecStart=/opt/teachbox/venv/bin/teachbox run --config /etc/teachbox/config.toml" in text
    unit = tmp_path / "teachbox.service"
    unit.write_text(text.replace("ExecStart=/opt/teachbox", f"ExecStart={tmp_path}/opt/teachbox"))
    result = subprocess.run([systemd_analyze(), "verify", str(unit)], capture_output=True, text=True)
    # it exits 0 even on unknown keys: what it prints is what counts
    assert result.stdout + result.stderr == "" and result.returncode == 0


def test_verify_would_catch_a_typo(tmp_path):
    unit = tmp_path / "typo.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nRestartSecs=5\n")
    result = subprocess.run([systemd_analyze(), "verify", str(unit)], capture_output=True, text=True)
    assert "Unknown key 'RestartSecs'" in result.stdout + result.stderr


def test_unit_has_what_the_appliance_needs():
    keys = unit_keys(UNIT.read_text())
    assert keys["Type"] == ["notify"] and keys["NotifyAccess"] == ["main"]
    assert keys["Restart"] == ["on-failure"] and float(keys["RestartSec"][0]) > 0
    assert "StartLimitIntervalSec" in keys and "StartLimitBurst" in keys
    assert int(keys["WatchdogSec"][0]) >= 30
    assert keys["User"] == ["teachbox"] and keys["SupplementaryGroups"] == ["video gpio"]
    assert keys["StateDirectory"] == ["teachbox"] and keys["ConfigurationDirectory"] == ["teachbox"]
    assert keys["WorkingDirectory"] == ["/var/lib/teachbox"]  # lgpio writes its pipes there
    for breaks_camera_or_gpio in ("PrivateDevices", "DynamicUser", "DevicePolicy"):
        assert breaks_camera_or_gpio not in keys


def test_security_exposure_is_reported_and_low():
    result = subprocess.run([systemd_analyze(), "security", "--offline=yes", str(UNIT)],
                            capture_output=True, text=True)
    match = re.search(r"Overall exposure level for teachbox.service: (\d+\.\d)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    assert exposure < 5.0
    assert f"exposure {match.group(1)}" in (REPO / "README.md").read_text()


# -- the notify protocol -------------------------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(30)
    yield path, server
    server.close()


def receive_all(server, timeout=0.2):
    messages = []
    server.settimeout(timeout)
    try:
        while True:
            messages.append(server.recv(4096).decode())
    except socket.timeout:
        return messages


def test_notifier_sends_datagrams_and_is_silent_outside_systemd(notify_socket, monkeypatch):
    path, server = notify_socket
    notifier = Notifier(str(path))
    assert notifier.send("READY=1", "STATUS=hello")
    assert server.recv(4096) == b"READY=1\nSTATUS=hello"
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    silent = Notifier()
    assert not silent.enabled and not silent.send("READY=1")


def test_abstract_socket_addresses_are_understood():
    name = f"teachbox-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(5)
    try:
        assert Notifier("@" + name).send("WATCHDOG=1")
        assert server.recv(100) == b"WATCHDOG=1"
    finally:
        server.close()


@pytest.mark.parametrize("env, expected", [
    ({"WATCHDOG_USEC": "60000000"}, 30.0),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({}, None),
])
def test_watchdog_interval_is_half_of_systemds(monkeypatch, env, expected):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert watchdog_interval() == expected


class HangingAfter(SyntheticCamera):
    """Delivers ``good`` frames, then hangs like a wedged camera."""

    def __init__(self, good):
        super().__init__(fps=0)
        self.good = good
        self.release = threading.Event()

    def read(self):
        if self.good <= 0:
            self.release.wait()
        self.good -= 1
        return super().read()


def test_ready_once_then_watchdog_only_after_processed_frames(embedder, notify_socket, monkeypatch):
    path, server = notify_socket
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 0.05 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    camera = HangingAfter(good=3)
    loop = TeachLoop(CameraSupervisor(camera, timeout=0.3, open_timeout=2.0, backoff=(5, 5)), embedder,
                     NearestCentroidHead(embedder.dim, 4), model=model_identity(embedder.describe()))
    clock = [0.0]
    output = SystemdOutput(loop, Notifier(str(path)), clock=lambda: clock[0])
    loop.add_observer(output)
    sent = []
    for _ in range(3):
        clock[0] += 0.1
        loop.step()
        sent += receive_all(server)
    assert sent[0].startswith("READY=1\nWATCHDOG=1\nSTATUS=")
    assert "answer: nothing-learned" in sent[0] and "camera online" in sent[0]
    assert sum("READY=1" in m for m in sent) == 1
    assert sum("WATCHDOG=1" in m for m in sent) == 3
    for _ in range(3):  # the camera hangs: frames stop, so must the pings
        clock[0] += 0.1
        result = loop.step()
        assert result.frame is None
        assert receive_all(server) == []
    camera.release.set()
    output.close()
    assert receive_all(server) == ["STOPPING=1"]


def test_the_real_service_process_speaks_the_protocol(model_path, notify_socket, tmp_path):
    path, server = notify_socket
    env = dict(os.environ, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="1000000")
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "device", "run", "--simulate", "--camera", "synthetic", "--model", str(model_path),
         "--state-dir", str(tmp_path / "state"), "--port", "0", "--host", "127.0.0.1", "--threads", "1"],
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        server.settimeout(60)
        first = server.recv(4096).decode()
        assert first.startswith("READY=1")
        pings = 0
        deadline = time.monotonic() + 30
        while pings < 2 and time.monotonic() < deadline:
            pings += "WATCHDOG=1" in server.recv(4096).decode()
        assert pings == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "STOPPING=1" in receive_all(server, timeout=1.0)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
