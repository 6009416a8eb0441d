"""Rules' sounds through a player program: plays the right file at a start, no zombies, clear warnings."""

from __future__ import annotations

import logging
import os
import time

from device.config import config_from_mapping
from device.rules import END, START, Rule, RuleEvent
from device.sound import SoundPlayer


def fake_player(tmp_path, seconds=0.0):
    script = tmp_path / "player"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/played"\nsleep {seconds}\n')
    script.chmod(0o755)
    return str(script)


def event(rule, kind=START):
    return RuleEvent(rule, kind, "cat", 0, 0.9, 0.0)


def test_a_start_plays_the_rules_file_and_nothing_else_does(tmp_path):
    wav = tmp_path / "bell.wav"
    wav.write_bytes(b"RIFF")
    player = SoundPlayer([Rule("bell", "cat", sound=str(wav)), Rule("quiet", "dog")], player=fake_player(tmp_path))
    player.apply(event("bell", END))
    player.apply(event("quiet"))
    player.apply(event("bell"))
    deadline = time.monotonic() + 5
    while not (tmp_path / "played").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert (tmp_path / "played").read_text().split() == ["-q", str(wav)]
    player.apply(event("bell"))  # the next start reaps the finished player: no zombie is left
    process = player._playing["bell"]
    player.close()
    assert process.poll() is not None


def test_close_stops_a_long_sound(tmp_path):
    wav = tmp_path / "long.wav"
    wav.write_bytes(b"RIFF")
    player = SoundPlayer([Rule("bell", "cat", sound=str(wav))], player=fake_player(tmp_path, seconds=30))
    player.apply(event("bell"))
    process = player._playing["bell"]
    began = time.monotonic()
    player.close()
    assert process.poll() is not None and time.monotonic() - began < 5


def test_a_missing_player_or_file_is_a_clear_warning_not_a_crash(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        no_player = SoundPlayer([Rule("bell", "cat", sound="/x/bell.wav")], player="no-such-player-here")
        no_player.apply(event("bell"))
        no_file = SoundPlayer([Rule("bell", "cat", sound=str(tmp_path / "gone.wav"))], player=fake_player(tmp_path))
        no_file.apply(event("bell"))
    messages = [r.getMessage() for r in caplog.records]
    assert any("no-such-player-here is not installed: sudo apt install alsa-utils" in m for m in messages)
    assert any("gone.wav, which is not a readable file" in m for m in messages)
    assert not os.path.exists(tmp_path / "played")


def test_a_rule_sound_comes_from_the_config():
    rules = config_from_mapping({"rules": [{"name": "bell", "when": "cat", "sound": "~/bell.wav"}]}).rules
    assert rules[0].sound == "~/bell.wav"
    assert SoundPlayer(rules, player="no-such-player-here").sounds["bell"] == os.path.expanduser("~/bell.wav")
