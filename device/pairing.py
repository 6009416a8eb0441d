"""Physical-presence pairing: a browser asks, a person at the box approves it with a chord.

One request waits at a time.  It carries a *code*: a class button, chosen at random,
whose LED blinks while the request waits and which the requesting page names ("hold
the function button and press button 3").  Only that chord, made after the request
was made, approves it: a plain press of a class button (teaching) or of the function
button (undo) never does, so a press meant for something else cannot approve a
stranger, however a neighbour times or picks its requests.
A live request is never replaced by another browser's: the others are told which
button blinks and when it ends.  A browser whose request ended unapproved rests
before it may ask again: as long as it held the box (``cooldown`` at most), doubled
for every further unanswered request within ``memory`` seconds, so browsers that keep
asking leave ever longer gaps for the owner, while someone who taps Cancel by mistake
can ask again at once.

Thread-safe; used by the web page (request, state, cancel), the front panel (approve)
and the LEDs (:meth:`PairingBroker.pending_code`, a plain read after every frame).
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Hashable, Optional

from .errors import TeachboxError
from .vocab import PairState


class PairingRefused(TeachboxError):
    """A pairing request cannot be made now; ``retry_in`` seconds say when it can."""

    def __init__(self, message: str, *, retry_in: float, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.retry_in = retry_in
        self.code = code


@dataclass(frozen=True)
class PairRequest:
    """A waiting request: ``code`` is the 0-based class button that approves it."""

    id: str
    code: int
    expires_in: float


@dataclass
class _Pending:
    id: str
    code: int
    client: Hashable
    started: float
    expiry: float


@dataclass
class _Rest:
    until: float
    strikes: int  # unanswered requests in a row (forgotten ``memory`` s after the rest ends)


class PairingBroker:
    """
    :param buttons: how many class buttons the box has (the codes are 0 to ``buttons - 1``).
    :param ttl: seconds a request waits for its button.
    :param cooldown: most seconds a browser rests after its first unanswered request.
    :param memory: seconds after its rest after which a browser's unanswered requests are forgotten.
    :param max_rest: the longest rest, however often a browser asked.
    """

    def __init__(self, buttons: int, *, ttl: float = 30.0, cooldown: float = 30.0, memory: float = 3600.0,
                 max_rest: float = 3600.0, clock: Callable[[], float] = time.monotonic,
                 rng: Optional[random.Random] = None) -> None:
        if buttons < 1:
            raise ValueError(f"pairing needs at least one class button, not {buttons!r}")
        self.buttons = buttons
        self.ttl = ttl
        self.cooldown = cooldown
        self.memory = memory
        self.max_rest = max_rest
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._lock = threading.Lock()
        self._pending: Optional[_Pending] = None
        self._approved: Dict[str, float] = {}  # request id -> until when it can be collected
        self._resting: Dict[Hashable, _Rest] = {}

    def request(self, client: Hashable, own: Optional[str] = None) -> PairRequest:
        """A new request for ``client`` (e.g. its address), or ``own`` (an id it holds) if still waiting.

        Raises :class:`PairingRefused` while another browser's request waits, or while
        ``client`` must rest after a request of its own ended unapproved.
        """
        with self._lock:
            now = self._clock()
            self._expire(now)
            pending = self._pending
            if pending is not None:
                if own is not None and pending.id == own:
                    return PairRequest(pending.id, pending.code, pending.expiry - now)
                raise PairingRefused(
                    f"another browser is asking to unlock (lamp {pending.code + 1} blinks on the box); "
                    f"try again in {_seconds(pending.expiry - now)}",
                    retry_in=pending.expiry - now, code=pending.code)
            resting = self._resting.get(client)
            rest = 0.0 if resting is None else resting.until - now
            if rest > 0:
                raise PairingRefused(f"your last request ended without a press; you can ask again in "
                                     f"{_seconds(rest)}", retry_in=rest)
            self._pending = _Pending(secrets.token_urlsafe(16), self._rng.randrange(self.buttons), client,
                                     now, now + self.ttl)
            return PairRequest(self._pending.id, self._pending.code, self.ttl)

    def pending(self) -> Optional[PairRequest]:
        """The waiting request, if any (every page shows it)."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            pending = self._pending
            return None if pending is None else PairRequest(pending.id, pending.code, pending.expiry - now)

    def pending_code(self) -> Optional[int]:
        """The button whose LED blinks, or ``None``: a plain read, asked after every frame."""
        pending = self._pending
        return pending.code if pending is not None and pending.expiry >= self._clock() else None

    def approve(self, button: int, when: float) -> bool:
        """Function + class ``button`` was pressed at ``when``: approve the request it is the code of.

        ``False`` if no request has that code, or the press began before the request was made.
        """
        with self._lock:
            now = self._clock()
            self._expire(now)
            pending = self._pending
            if pending is None or pending.code != button or not pending.started <= when <= pending.expiry:
                return False
            self._approved[pending.id] = now + self.ttl
            self._resting.pop(pending.client, None)
            self._pending = None
            return True

    def cancel(self, request_id: str) -> bool:
        """The browser gave up its request; it rests like one that expired."""
        with self._lock:
            pending = self._pending
            if pending is None or pending.id != request_id:
                return False
            self._end(pending, self._clock())
            return True

    def state(self, request_id: str) -> PairState:
        """``pending``, ``approved`` (once: the id is used up) or ``unknown`` (ended, never made)."""
        with self._lock:
            self._expire(self._clock())
            if self._approved.pop(request_id, None) is not None:
                return PairState.APPROVED
            pending = self._pending
            return PairState.PENDING if pending is not None and pending.id == request_id else PairState.UNKNOWN

    def _expire(self, now: float) -> None:
        if self._pending is not None and self._pending.expiry < now:
            self._end(self._pending, now)
        for key in [k for k, until in self._approved.items() if until < now]:
            del self._approved[key]
        for key in [k for k, rest in self._resting.items() if rest.until + self.memory < now]:
            del self._resting[key]

    def _end(self, pending: _Pending, now: float) -> None:
        """A request ended unapproved: its browser rests (see the module's docstring)."""
        self._pending = None
        ended = min(now, pending.expiry)
        previous = self._resting.get(pending.client)
        strikes = 1 if previous is None or previous.until + self.memory < ended else previous.strikes + 1
        rest = min(self.max_rest, min(self.cooldown, ended - pending.started) * 2.0 ** min(strikes - 1, 32))
        self._resting[pending.client] = _Rest(ended + rest, strikes)

    def __repr__(self) -> str:
        code = self.pending_code()
        return f"<PairingBroker pending={'none' if code is None else f'button {code + 1}'}>"


def _seconds(seconds: float) -> str:
    return f"{max(1, round(seconds))} s"
