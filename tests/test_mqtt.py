"""MQTT against a real Mosquitto on loopback: state, events, availability, Home Assistant discovery, commands."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from conftest import box_config, prompt_events
from device.app import build_box
from device.camera import SyntheticCamera
from device.config import Config
from device.mqtt import MqttOutput, run_command
import mosquitto
from mosquitto import Broker, Listener, free_port

broker, listen = mosquitto.broker, mosquitto.listen  # the fixtures: a real Mosquitto and its subscribers

BASE = "teachbox/test-box"
CONFIG_TOPIC = "homeassistant/device/test-box/config"


def mqtt_box(tmp_path, factory, embedder, port, **mqtt):
    config = box_config(tmp_path / "state")
    config = dataclasses.replace(prompt_events(config), box=dataclasses.replace(config.box, name="Test box"))
    config = config.override("mqtt", host="127.0.0.1", port=port, **mqtt)
    return build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory)


def teach(box, class_id, scene, name):
    box.select_source(scene)
    box.rename(class_id, name)
    box.loop.teach_next(class_id, 3)
    for _ in range(3):
        box.step()
    box.settle()


def steps(box, n=5):
    for _ in range(n):
        box.step()
        time.sleep(0.05)


def latest(listener, topic):
    found = listener.json_on(topic)
    return found[-1] if found else None


def test_teaching_a_class_announces_it_to_home_assistant_with_state_and_events(tmp_path, factory, embedder,
                                                                                 broker, listen):
    ha = listen("homeassistant/#", f"{BASE}/#")
    box = mqtt_box(tmp_path, factory, embedder, broker.port)
    try:
        assert ha.wait(lambda: ha.on(f"{BASE}/availability") == [b"online"], what="online")
        teach(box, 0, "red ball", "ball")
        teach(box, 1, "blue box", "box")
        box.select_source("red ball")
        steps(box)
        config = ha.wait(lambda: (c := latest(ha, CONFIG_TOPIC)) and "class_1" in c["cmps"] and c, what="discovery")
        assert config["dev"]["ids"] == ["teachbox_test-box"] and config["dev"]["name"] == "Test box"
        assert config["avty_t"] == f"{BASE}/availability"
        cmps = config["cmps"]
        assert cmps["answer"]["p"] == "sensor" and cmps["answer"]["stat_t"] == f"{BASE}/state"
        assert cmps["confidence"]["unit_of_meas"] == "%"
        assert cmps["event"]["p"] == "event" and cmps["event"]["evt_typ"] == ["start", "end"]
        assert cmps["class_0"] == {"p": "binary_sensor", "uniq_id": "teachbox_test-box_class_0", "name": "ball",
                                   "stat_t": f"{BASE}/state",
                                   "val_tpl": "{{ 'ON' if value_json.class_id == 0 else 'OFF' }}"}
        state = ha.wait(lambda: (s := latest(ha, f"{BASE}/state")) and s["answer"] == "ball" and s, what="state")
        assert state["class_id"] == 0 and 0 < state["confidence"] <= 1 and state["source"] == "picture"
        assert state["box"] == "Test box" and state["time"].endswith("Z")
        events = ha.wait(lambda: [e for e in ha.json_on(f"{BASE}/event") if e["answer"] == "ball"], what="event")
        assert events[-1]["event_type"] == "start" and events[-1]["kind"] == "start"
        assert events[-1]["rule"] is None and events[-1]["class_id"] == 0

        # retained: Home Assistant starting later still gets the config and the state
        late = Listener(broker.port, CONFIG_TOPIC, f"{BASE}/state")
        try:
            late.wait(lambda: late.on(CONFIG_TOPIC) and late.on(f"{BASE}/state"), what="retained messages")
        finally:
            late.close()

        # Home Assistant restarts: its birth message makes the box announce itself again
        count = len(ha.on(CONFIG_TOPIC))
        ha.publish("homeassistant/status", "online")
        ha.wait(lambda: len(ha.on(CONFIG_TOPIC)) > count, what="re-announcement")

        # a cleared class is removed from Home Assistant: its component once as only its platform
        box.clear(1)
        steps(box, 2)
        removed = ha.wait(lambda: (c := latest(ha, CONFIG_TOPIC)) and c["cmps"].get("class_1") == {
            "p": "binary_sensor"} and c, what="removal")
        assert "class_0" in removed["cmps"]
    finally:
        box.close()
    assert ha.wait(lambda: ha.on(f"{BASE}/availability")[-1:] == [b"offline"], what="offline at close")
    print(json.dumps({"config": config, "state": state, "event": events[-1]}, indent=1))


def test_availability_goes_offline_when_the_box_is_killed(tmp_path, broker, listen, model_path):
    conf = tmp_path / "config.toml"
    conf.write_text(f'[box]\nname = "Killed box"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                    '[web]\nenabled = false\n')
    ha = listen("teachbox/killed-box/availability")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "device", "run", "--simulate", "--camera", "synthetic",
                                "--model", str(model_path), "--state-dir", str(tmp_path / "state"), "--threads", "1",
                                "--config", str(conf)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        ha.wait(lambda: ha.on("teachbox/killed-box/availability")[-1:] == [b"online"], timeout=60, what="online")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        ha.wait(lambda: ha.on("teachbox/killed-box/availability")[-1:] == [b"offline"], timeout=60,
                what="the last will")
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
    late = Listener(broker.port, "teachbox/killed-box/availability")  # retained: a later client sees it too
    try:
        late.wait(lambda: late.on("teachbox/killed-box/availability") == [b"offline"], what="retained offline")
    finally:
        late.close()


def test_commands_are_off_unless_asked_for(tmp_path, factory, embedder, broker, listen):
    ha = listen(f"{BASE}/#")
    box = mqtt_box(tmp_path, factory, embedder, broker.port)
    try:
        ha.wait(lambda: ha.on(f"{BASE}/availability"), what="online")
        ha.publish(f"{BASE}/command", json.dumps({"command": "teach", "class": 0, "seconds": 2}))
        steps(box, 10)
        assert box.snapshot().loop.classes[0].examples == 0 and box.snapshot().loop.burst is None
        assert ha.on(f"{BASE}/command/result") == []
    finally:
        box.close()


def test_commands_teach_undo_and_refuse_hostile_messages(tmp_path, factory, embedder, broker, listen):
    ha = listen(f"{BASE}/command/result", f"{BASE}/availability")
    box = mqtt_box(tmp_path, factory, embedder, broker.port, commands=True)
    try:
        ha.wait(lambda: ha.on(f"{BASE}/availability"), what="online")
        box.select_source("red ball")
        ha.publish(f"{BASE}/command", json.dumps({"command": "teach", "class": 0, "seconds": 1}))
        ha.wait(lambda: ha.json_on(f"{BASE}/command/result"), what="a reply")
        deadline = time.monotonic() + 5
        while box.snapshot().loop.classes[0].examples == 0 and time.monotonic() < deadline:
            box.step()
        assert box.snapshot().loop.classes[0].examples > 0
        hostile = [b"\xff\xfe", b"{not json", json.dumps({"command": "rm -rf"}).encode(), b"[1, 2]",
                   json.dumps({"command": "teach", "class": 99}).encode(),
                   json.dumps({"command": "teach", "class": "nobody"}).encode(),
                   json.dumps({"command": "teach", "class": 0, "seconds": 1e9}).encode(),
                   json.dumps({"command": "source", "source": "../../etc"}).encode(), b"x" * 10000]
        before = box.snapshot().loop.classes[0].examples
        for payload in hostile:
            ha.publish(f"{BASE}/command", payload)
        replies = ha.wait(lambda: (r := ha.json_on(f"{BASE}/command/result")) and len(r) >= 1 + len(hostile) and r,
                          what="the replies")
        assert [r["ok"] for r in replies[1:]] == [False] * len(hostile)
        assert all(r["message"] for r in replies)
        steps(box, 3)
        assert box.snapshot().loop.classes[0].examples == before and box.source == "picture"
        ha.publish(f"{BASE}/command", json.dumps({"command": "undo"}))
        ha.wait(lambda: len(ha.json_on(f"{BASE}/command/result")) > len(replies), what="undo's reply")
        assert ha.json_on(f"{BASE}/command/result")[-1]["ok"]
        assert box.snapshot().loop.classes[0].examples == 0
    finally:
        box.close()


def test_a_broker_down_at_start_never_stops_the_box_and_gets_the_state_once_up(tmp_path, factory, embedder):
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    port = free_port()
    box = mqtt_box(tmp_path, factory, embedder, port)
    try:
        teach(box, 0, "red ball", "ball")
        steps(box, 5)  # answering without a broker
        assert box.snapshot().loop.answer_name == "ball"
        assert box.output_status()["mqtt"].connected is False
        late = Broker(folder, port=port)
        try:
            ha = Listener(port, f"{BASE}/#")
            try:
                ha.wait(lambda: (s := latest(ha, f"{BASE}/state")) and s["answer"] == "ball", timeout=30,
                        what="the state after the broker came up")
                assert box.output_status()["mqtt"].connected
            finally:
                ha.close()
        finally:
            late.stop()
    finally:
        box.close()


def test_refused_credentials_are_one_clear_warning(tmp_path, factory, embedder, caplog):
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    locked = Broker(folder, password="right-password")
    try:
        box = mqtt_box(tmp_path, factory, embedder, locked.port, username="teachbox", password="wrong")
        try:
            steps(box, 3)
            deadline = time.monotonic() + 10
            while not box.output_status()["mqtt"].error and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2.5)  # paho tries again in the meantime
        finally:
            box.close()
    finally:
        locked.stop()
    warnings = [r.getMessage() for r in caplog.records if r.name == "device.mqtt" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"127.0.0.1:{locked.port}" in warnings[0] and "refused" in warnings[0], warnings
    assert "wrong" not in " ".join(warnings)


class CountingClient:
    def __init__(self):
        self.published = []

    def connect_async(self, *args, **kwargs):
        pass

    def loop_start(self):
        pass

    def loop_stop(self):
        pass

    def disconnect(self):
        pass

    def subscribe(self, topic, qos=0):
        pass

    def publish(self, topic, payload, qos=0, retain=False):
        self.published.append(topic)
        return SimpleNamespace(rc=0, wait_for_publish=lambda timeout=None: None)


def test_unchanged_frames_publish_nothing(tmp_path):
    client = CountingClient()
    box = SimpleNamespace(source="picture", class_names=lambda: ("cat", "dog"),
                          snapshot=lambda: SimpleNamespace(loop=SimpleNamespace(classes=())))
    output = MqttOutput(Config().override("mqtt", host="x").mqtt, box_name="b", box_id="b", box=box,
                        client_factory=lambda: client)
    output._on_connect(client, None, None, SimpleNamespace(is_failure=False))
    frame = SimpleNamespace(frame=object(), answer=0, confidence=0.9)
    for _ in range(500):
        output.update(frame)
    output.update(SimpleNamespace(frame=object(), answer=0, confidence=0.93))  # less than 0.05: not news
    time.sleep(0.5)
    output.update(SimpleNamespace(frame=object(), answer=1, confidence=0.9))
    time.sleep(0.5)
    output.close()
    states = [t for t in client.published if t.endswith("/state")]
    assert len(states) == 2, client.published


@pytest.mark.parametrize("raw", [b"", b"null", b'{"command": 1}', b'{"command": "teach"}', b'{"command": "source"}'])
def test_a_bad_command_is_an_answer_not_an_exception(raw):
    box = SimpleNamespace(num_classes=4, class_names=lambda: ("a", "b", "c", "d"))
    reply = run_command(box, raw)
    assert reply["ok"] is False and reply["message"]


def test_legacy_discovery_is_one_config_per_entity_and_an_empty_one_removes(tmp_path, factory, embedder, broker,
                                                                          listen):
    ha = listen("homeassistant/#")
    box = mqtt_box(tmp_path, factory, embedder, broker.port, legacy_discovery=True)
    topic = "homeassistant/binary_sensor/test-box/class_0/config"
    try:
        teach(box, 0, "red ball", "ball")
        steps(box, 3)
        config = ha.wait(lambda: latest(ha, topic), what="the class's own config")
        assert config["name"] == "ball" and config["dev"]["ids"] == ["teachbox_test-box"]
        assert config["avty_t"] == f"{BASE}/availability"
        assert ha.on("homeassistant/sensor/test-box/answer/config") and not ha.on(CONFIG_TOPIC)
        box.clear(0)
        steps(box, 2)
        ha.wait(lambda: ha.on(topic)[-1:] == [b""], what="the empty config that removes it")
    finally:
        box.close()
