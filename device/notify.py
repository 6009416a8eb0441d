"""systemd's notify protocol, spoken directly: READY=1, WATCHDOG=1 and STATUS= lines.

A few lines over the ``$NOTIFY_SOCKET`` datagram socket (no dependency).  Outside
systemd (no ``$NOTIFY_SOCKET``) nothing is sent.  :class:`SystemdOutput` is a loop
observer: READY=1 after the first frame was really processed (the camera, the model
and the page are up by then), WATCHDOG=1 only after really processed frames, so a hung
camera or loop gets the service restarted, and a STATUS= line with fps and the answer.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Optional

log = logging.getLogger(__name__)


class Notifier:
    """Sends notify messages to ``address`` (default ``$NOTIFY_SOCKET``); a no-op when there is none."""

    def __init__(self, address: Optional[str] = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._socket = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, *lines: str) -> bool:
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(lines).encode("utf-8"), self.address)
            return True
        except OSError as exc:  # systemd went away or the socket is gone: never fatal
            log.debug("notify failed: %s", exc)
            return False

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval() -> Optional[float]:
    """Seconds between WATCHDOG=1 pings: half of ``$WATCHDOG_USEC``, if it is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None


class SystemdOutput:
    """Loop observer speaking to systemd."""

    def __init__(self, loop, notifier: Optional[Notifier] = None, *, status_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.loop = loop
        self.notifier = notifier or Notifier()
        self.interval = watchdog_interval()
        self.status_every = status_every
        self._clock = clock
        self._ready = False
        self._last_ping = -1e9
        self._last_status = -1e9

    def update(self, result) -> None:
        if result.frame is None:  # no frame processed: no ping, so a hung camera gets noticed
            return
        now = self._clock()
        lines = []
        if not self._ready:
            self._ready = True
            lines.append("READY=1")
        if self.interval is not None and now - self._last_ping >= self.interval:
            self._last_ping = now
            lines.append("WATCHDOG=1")
        if now - self._last_status >= self.status_every:
            self._last_status = now
            lines.append(f"STATUS={self._status_line(result)}")
        if lines:
            self.notifier.send(*lines)

    def _status_line(self, result) -> str:
        fps = self.loop.status_fps()
        answer = result.answer
        if isinstance(answer, int):
            answer = f"{self.loop.head.names[answer]} ({result.confidence:.0%})"
        return f"{fps:.1f} fps, answer: {answer}, camera {result.camera_state}"

    def close(self) -> None:
        self.notifier.send("STOPPING=1")
        self.notifier.close()
