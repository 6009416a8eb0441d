"""From the outside: teach through the page of a real `teachbox run`, kill -9 it, start it again, and every
example is still there with its picture."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time

from test_web_server import browser, fetch, get_json, post_json

PIN = "246813"
DEADLINE = 60.0


class Running:
    """A `teachbox run --simulate` process and the address of its page."""

    def __init__(self, config, model_path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "device", "run", "--simulate", "--camera", "synthetic", "--config", str(config),
             "--model", str(model_path), "--threads", "1"], stderr=subprocess.PIPE, text=True)
        self.lines = []
        found = threading.Event()

        def read():
            for line in self.process.stderr:
                self.lines.append(line)
                if "phone page:" in line:
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        assert found.wait(DEADLINE), "".join(self.lines)
        address = re.search(r"phone page: (http://127\.0\.0\.1:\d+)", "".join(self.lines))
        assert address, "".join(self.lines)
        self.url = address.group(1)
        self.opener, _ = browser()
        self.token = get_json(self.url + "/api/status", opener=self.opener)[1]["auth"]["csrf"]
        assert self.post("/api/unlock/pin", {"pin": PIN})[0] == 200

    def post(self, path, payload):
        return post_json(self.url + path, payload, opener=self.opener, token=self.token)

    def status(self):
        return get_json(self.url + "/api/status", opener=self.opener)[1]

    def wait(self, condition, what):
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if condition(self.status()):
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def gallery(self, class_id):
        code, page = get_json(f"{self.url}/api/examples?class={class_id}&limit=200", opener=self.opener)
        assert code == 200, page
        pictures = []
        for example in page["examples"]:
            code, headers, body = fetch(self.url + example["thumb"], opener=self.opener)
            assert code == 200 and body.startswith(b"\xff\xd8")
            pictures.append((example["id"], example["source"], body))
        return pictures

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


def test_taught_on_the_page_killed_and_started_again_nothing_is_lost(tmp_path, model_path):
    config = tmp_path / "teachbox.toml"
    config.write_text(f'[web]\nhost = "127.0.0.1"\nport = 0\npin = "{PIN}"\n\n'
                      f'[storage]\nstate_dir = "{tmp_path / "state"}"\n\n[teaching]\nrate = 20.0\nduplicate_similarity = 1.0\n')
    box = Running(config, model_path)
    try:
        assert box.post("/api/teach/start", {"class": 2})[0] == 200
        box.wait(lambda s: s["classes"][2]["examples"] >= 3, "three examples of class 3")
        assert box.post("/api/teach/stop", {"class": 2})[0] == 200
        box.wait(lambda s: s["teaching"] is None and s["library"]["unwritten"] == 0, "the burst to be stored")
        assert box.post("/api/rename", {"class": 2, "name": "Red ball"})[0] == 200
        taught = box.status()["classes"][2]["examples"]
        pictures = box.gallery(2)
        assert len(pictures) == taught and {source for _, source, _ in pictures} == {"phone"}
    finally:
        box.kill()

    again = Running(config, model_path)
    try:
        status = again.status()
        assert [c["examples"] for c in status["classes"]] == [0, 0, taught, 0]
        assert status["classes"][2]["name"] == "Red ball"
        assert again.gallery(2) == pictures
        assert again.post("/api/undo", {})[0] == 200  # across the restart, the hold is one undo
        assert [c["examples"] for c in again.status()["classes"]] == [0, 0, 0, 0]
    finally:
        again.stop()
    assert again.process.returncode == 0, "".join(again.lines)
    assert "every example taught is stored" in "".join(again.lines)
    json.dumps(status)  # the status is plain JSON
