"""Physical-presence pairing: a browser asks, a person presses the function button on the box.

Thread-safe; used by the web page (request, poll) and the front panel (approve).
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Callable, Dict, Optional


class PairingBroker:
    """Pending pairing requests, approved by the next function-button press within ``ttl`` seconds."""

    def __init__(self, *, ttl: float = 60.0, cooldown: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: Dict[str, float] = {}  # request id -> expiry
        self._approved: Dict[str, float] = {}

    def request(self) -> Optional[str]:
        """A new request id, or ``None`` while another browser's request is still fresh.

        At most one request waits at a time, shown on the LEDs, so a press of the
        function button approves only the browser its owner expects.
        """
        with self._lock:
            self._expire()
            now = self._clock()
            if any(expiry - self.ttl + self.cooldown > now for expiry in self._pending.values()):
                return None
            self._pending.clear()
            request_id = secrets.token_urlsafe(16)
            self._pending[request_id] = now + self.ttl
            return request_id

    def has_pending(self) -> bool:
        """Asked after every frame (for the LEDs): a plain read, no clean-up."""
        now = self._clock()
        with self._lock:
            return any(expiry >= now for expiry in self._pending.values())

    def approve_pending(self) -> bool:
        """The function button was pressed: approve every waiting request. ``False`` if none waited."""
        with self._lock:
            self._expire()
            if not self._pending:
                return False
            self._approved.update(self._pending)
            self._pending.clear()
            return True

    def state(self, request_id: str) -> str:
        """``pending``, ``approved`` (once: the id is used up) or ``unknown`` (expired, never made)."""
        with self._lock:
            self._expire()
            if self._approved.pop(request_id, None) is not None:
                return "approved"
            return "pending" if request_id in self._pending else "unknown"

    def _expire(self) -> None:
        now = self._clock()
        for table in (self._pending, self._approved):
            for key in [k for k, expiry in table.items() if expiry < now]:
                del table[key]

    def __repr__(self) -> str:
        return f"<PairingBroker pending={len(self._pending)}>"
