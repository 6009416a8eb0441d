"""Sounds of the rules: a rule's ``sound`` (a WAV file) played at its start through ``aplay``.

The player runs as a child process that nobody waits for (the loop thread only starts it);
a rule starting again stops its previous sound; finished players are reaped at the next start
and at :meth:`SoundPlayer.close`.  A missing player or file is one clear warning at start.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from typing import Callable, Dict, Optional, Sequence

from .rules import START, Rule

log = logging.getLogger(__name__)


class SoundPlayer:
    """A consumer of rule events: plays ``rule.sound`` at each start of the rule."""

    def __init__(self, rules: Sequence[Rule], *, player: str = "aplay",
                 which: Callable[[str], Optional[str]] = shutil.which, popen=subprocess.Popen) -> None:
        self.sounds: Dict[str, str] = {rule.name: os.path.expanduser(rule.sound) for rule in rules if rule.sound}
        self._popen = popen
        self._playing: Dict[str, subprocess.Popen] = {}
        self.player = which(player) if os.sep not in player else (player if os.access(player, os.X_OK) else None)
        for name, path in self.sounds.items():
            if self.player is None:
                log.warning("rule %r plays %s but %s is not installed: sudo apt install alsa-utils", name, path,
                            player)
            elif not os.access(path, os.R_OK) or not os.path.isfile(path):
                log.warning("rule %r plays %s, which is not a readable file: no sound until it is", name, path)

    def __repr__(self) -> str:
        return f"<SoundPlayer {len(self.sounds)} sounds, {len(self._playing)} playing>"

    def apply(self, event) -> None:
        if event.kind != START or self.player is None:
            return
        path = self.sounds.get(event.rule)
        if path is None:
            return
        self._reap()
        self._stop(event.rule)
        if not os.path.isfile(path):
            return
        try:
            self._playing[event.rule] = self._popen([self.player, "-q", path], stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:
            log.warning("rule %r: %s could not play %s: %s", event.rule, self.player, path, exc)

    def _stop(self, name: str) -> None:
        process = self._playing.pop(name, None)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _reap(self) -> None:
        for name, process in list(self._playing.items()):
            if process.poll() is not None:
                del self._playing[name]

    def close(self) -> None:
        for name in list(self._playing):
            self._stop(name)


__all__ = ["SoundPlayer"]
