"""Rules in the running box: a rule of the config drives its pin and logs its events (simulated box, mock pins)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from conftest import box_config, prompt_events, teach_scenes
from device.app import build_box
from device.box import RulesRefused
from device.camera import SyntheticCamera
from device.config import config_from_mapping
from device.events import EventLog

RULE = {"name": "ball light", "when": "ball", "confidence": 0.0, "hold": 0.0, "cooldown": 0.0, "until": 0.2,
        "then": [{"gpio": 17, "mode": "on"}]}


def test_a_rule_lights_its_pin_while_its_class_is_seen_and_logs_start_and_end(tmp_path, factory, embedder):
    config = box_config(tmp_path / "state")
    rules = config_from_mapping({"rules": [RULE]}).rules
    config = dataclasses.replace(config, rules=rules)
    box = build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory)
    pin = factory.pin(17)
    try:
        box.select_source("red ball")
        box.rename(0, "ball")
        box.loop.teach_next(0, 3)
        for _ in range(3):
            box.step()
        box.select_source("blue box")
        box.rename(1, "box")
        box.loop.teach_next(1, 3)
        for _ in range(3):
            box.step()
        box.settle()
        box.step()
        time.sleep(0.3)  # the box has been seen for longer than `until`: the ball's light is off
        box.step()
        assert pin.state == 0
        box.select_source("red ball")
        box.step()
        box.step()
        assert pin.state == 1  # the ball is seen: its light is on
        box.select_source("blue box")
        box.step()
        assert pin.state == 1  # not ended before `until`
        time.sleep(0.3)
        box.step()
        box.step()
        assert pin.state == 0
    finally:
        box.close()
    log = EventLog(tmp_path / "state")
    try:
        kinds = [(e.rule, e.kind, e.answer) for e in reversed(log.recent())]
    finally:
        log.close()
    assert ("ball light", "start", "ball") in kinds and ("ball light", "end", "ball") in kinds
    assert kinds.index(("ball light", "start", "ball")) < kinds.index(("ball light", "end", "ball"))


def teach_ball_and_box(box):
    box.rename(0, "ball")
    teach_scenes(box, ("red ball", "blue box"))


def test_without_rules_the_log_keeps_when_each_answer_starts_and_ends(tmp_path, factory, embedder):
    config = box_config(tmp_path / "state")
    config = prompt_events(config)
    box = build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory)
    try:
        teach_ball_and_box(box)
        for source in ("blue box", "red ball"):
            box.select_source(source)
            for _ in range(8):
                box.step()
        events = box.events()
        chart = box.event_counts("hour")
    finally:
        box.close()
    seen = [(e["rule"], e["kind"], e["answer"]) for e in reversed(events)]
    assert (None, "start", "ball") in seen
    ends = [s for s in seen if s[1] == "end"]
    assert ends and seen.index(ends[0]) < seen.index((None, "start", "ball")), seen  # the box's answer ended first
    assert abs(events[0]["unix"] - time.time()) < 60  # unix seconds, not the loop's monotonic clock
    assert sum(chart["answers"]["ball"]) >= 1


def test_rules_set_on_the_page_run_at_once_and_after_a_restart(tmp_path, factory, embedder):
    config = box_config(tmp_path / "state")
    box = build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory)
    try:
        assert box.rules().tables == () and box.rules().pinned is None
        with pytest.raises(RulesRefused, match=r'#1 "x": unknown key \'thne\''):
            box.set_rules([{"name": "x", "when": "ball", "thne": []}])
        with pytest.raises(RulesRefused, match="GPIO5 is the panel's class_buttons"):
            box.set_rules([{"name": "x", "when": "ball", "then": [{"gpio": 5, "mode": "on"}]}])
        view = box.set_rules([dict(RULE)])
        assert [t["name"] for t in view.tables] == ["ball light"]
        teach_ball_and_box(box)
        box.rename(0, "ball")
        box.select_source("red ball")
        for _ in range(3):
            box.step()
        assert factory.pin(17).state == 1 and box.rules().active == ("ball light",)
        box.set_rules([])  # taken away: the rule ends, its pin goes low
        assert factory.pin(17).state == 0 and box.rules().tables == ()
        box.set_rules([dict(RULE)])
    finally:
        box.close()
    again = build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory)
    try:
        assert [t["name"] for t in again.rules().tables] == ["ball light"]
    finally:
        again.close()


def test_rules_of_the_config_file_cannot_be_changed_on_the_page(tmp_path, factory, embedder):
    config = dataclasses.replace(box_config(tmp_path / "state"), rules=config_from_mapping({"rules": [RULE]}).rules)
    box = build_box(config, embedder=embedder, camera=SyntheticCamera(fps=0), pin_factory=factory)
    try:
        assert "config file" in box.rules().pinned
        with pytest.raises(RulesRefused, match="config file"):
            box.set_rules([])
        assert [t["name"] for t in box.rules().tables] == ["ball light"]
    finally:
        box.close()
