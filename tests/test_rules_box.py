"""Rules in the running box: a rule of the config drives its pin and logs its events (simulated box, mock pins)."""

from __future__ import annotations

import dataclasses
import time

from conftest import box_config
from device.app import build_box
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


def test_a_box_without_rules_keeps_no_event_log(tmp_path, factory, embedder):
    box = build_box(box_config(tmp_path / "state"), embedder=embedder, camera=SyntheticCamera(fps=0),
                    pin_factory=factory)
    try:
        box.step()
    finally:
        box.close()
    assert not (tmp_path / "state" / "events.db").exists()
