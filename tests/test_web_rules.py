"""Rules and events through the page's API: read by anyone, rules changed only when unlocked, clear messages."""

from __future__ import annotations

import dataclasses
import json

import pytest

from conftest import Clock, box_config, prompt_events, teach_scenes
from device.app import build_box
from device.camera import SyntheticCamera
from device.config import WebConfig, config_from_mapping
from test_web_api import PIN, post, unlock
from web_ui.app import create_app

RULE = {"name": "ball light", "when": "ball", "confidence": 0.0, "hold": 0.0, "cooldown": 0.0, "until": 0.5,
        "then": [{"gpio": 17, "mode": "on"}]}


def make_box(tmp_path, embedder, factory, rules=()):
    config = box_config(tmp_path / "state")
    config = dataclasses.replace(prompt_events(config), box=dataclasses.replace(config.box, name="Room 4"))
    if rules:
        config = dataclasses.replace(config, rules=config_from_mapping({"rules": list(rules)}).rules)
    return build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory, clock=Clock())


@pytest.fixture
def box(tmp_path, embedder, factory):
    made = make_box(tmp_path, embedder, factory)
    yield made
    made.close()


@pytest.fixture
def client(box):
    return create_app({"TESTING": True}, box=box, web=WebConfig(pin=PIN)).test_client()


def teach_two(box):
    box.rename(0, "ball")
    teach_scenes(box, ("red ball", "blue box"))
    for scene in ("red ball", "blue box", "red ball"):
        box.select_source(scene)
        for _ in range(3):
            box.step()


def test_the_page_shows_the_box_name(client):
    assert "<title>Room 4 · teachbox</title>" in client.get("/").get_data(as_text=True)
    assert client.get("/api/status").get_json()["name"] == "Room 4"


def test_an_unlocked_page_sets_rules_that_drive_the_pin_and_show_in_the_status(client, box, factory):
    assert client.get("/api/rules").get_json() == {"rules": [], "active": [], "pinned": None,
                                                   "modes": ["on", "pulse", "servo", "pwm"]}
    assert post(client, "/api/rules", {"rules": [RULE]}).status_code == 401  # locked
    unlock(client)
    answer = post(client, "/api/rules", {"rules": [RULE]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["rules"][0]["then"] == [{"gpio": 17, "mode": "on"}]
    teach_two(box)
    box.select_source("red ball")
    box.step()
    assert factory.pin(17).state == 1
    assert client.get("/api/rules").get_json()["active"] == ["ball light"]
    pins = client.get("/api/status").get_json()["rule_pins"]
    assert pins == [{"gpio": 17, "mode": "on", "value": 1.0, "rules": ["ball light"]}]


@pytest.mark.parametrize("body, message", [
    ({"rules": [{"name": "x", "when": "ball", "confidnce": 0.5}]}, "#1 \"x\": unknown key 'confidnce'"),
    ({"rules": [{"name": "x", "when": "ball", "then": [{"gpio": 5, "mode": "on"}]}]}, "GPIO5 is the panel's"),
    ({"rules": [{"name": "x", "when": 9}]}, "the box has 4 classes"),
    ({"rules": [{"name": "x", "when": "ball", "then": [{"gpio": 17, "mode": "laser"}]}]}, "mode = 'laser'"),
    ({"rules": "all of them"}, "'rules' must be a list"),
    ({"rules": [1, 2]}, "'rules' must be a list"),
    ({"rules": [RULE] * 40}, "up to 32"),
])
def test_a_bad_rule_is_refused_with_the_box_s_message_and_changes_nothing(client, box, body, message):
    unlock(client)
    answer = post(client, "/api/rules", body)
    assert answer.status_code == 400 and message in answer.get_json()["error"], answer.get_json()
    assert box.rules().tables == ()


def test_rules_from_the_config_file_are_shown_but_not_changed(tmp_path, embedder, factory):
    box = make_box(tmp_path, embedder, factory, rules=[RULE])
    try:
        client = create_app({"TESTING": True}, box=box, web=WebConfig(pin=PIN)).test_client()
        unlock(client)
        answer = post(client, "/api/rules", {"rules": []})
        assert answer.status_code == 409 and "config file" in answer.get_json()["error"]
        view = client.get("/api/rules").get_json()
        assert [rule["name"] for rule in view["rules"]] == ["ball light"] and "config file" in view["pinned"]
    finally:
        box.close()


def test_events_and_their_counts_after_a_class_was_seen(client, box):
    teach_two(box)
    events = client.get("/api/events?limit=5").get_json()["events"]
    assert 0 < len(events) <= 5
    assert {"id", "rule", "kind", "answer", "class_id", "confidence", "time", "unix"} <= set(events[0])
    assert any(e["answer"] == "ball" and e["kind"] == "start" for e in events)
    older = client.get(f"/api/events?before={events[-1]['id']}").get_json()["events"]
    assert all(e["id"] < events[-1]["id"] for e in older)
    counts = client.get("/api/events/counts?bucket=day&offset=3600").get_json()
    assert counts["bucket"] == "day" and sum(counts["answers"]["ball"]) >= 1
    assert len(client.get("/api/events/counts").get_json()["starts"]) == 25  # hours: the last 24 and this one


@pytest.mark.parametrize("query", ["/api/events?limit=0", "/api/events?limit=abc", "/api/events?limit=1e9",
                                   "/api/events?before=-1", "/api/events/counts?bucket=week",
                                   "/api/events/counts?offset=999999", "/api/events/counts?rules=yes",
                                   "/api/events/counts?offset=" + "9" * 5000])
def test_junk_parameters_are_a_400_not_a_500(client, query):
    answer = client.get(query)
    assert answer.status_code in (400, 414), answer.get_data(as_text=True)
    if answer.status_code == 400:
        assert json.loads(answer.get_data())["error"]
