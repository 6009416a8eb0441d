"""Who may do what from the network: host names, origins, clients, PIN tries and unlocks.

Pure bookkeeping (no Flask): the blueprints ask these objects and answer.

* :func:`host_is_allowed` - IP literals, localhost, this machine's and configured
  names: nothing else (DNS rebinding).
* :func:`client_key` - who a request is from, for limits: an IPv4 address, or the
  /64 network of an IPv6 one (a host picks any address in its /64).
* :class:`PinGuard` - wrong PINs cost each client more waiting, and only that client.
* :class:`Unlocks` - an unlock is a grant kept on the box, not a flag in a cookie: locking,
  expiry and a restart revoke it, whatever copy of the cookie exists.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Set
from urllib.parse import urlsplit

PIN_FREE_TRIES = 3  # wrong PINs a client may make before it has to wait
PIN_FIRST_DELAY = 60.0  # seconds after the first wrong PIN beyond the free ones; doubles with each
PIN_MAX_DELAY = 24 * 3600.0
PIN_FREE_PER_HOUR = 30  # free tries for everyone together: many addresses do not buy many free guesses
UNLOCK_SECONDS = 12 * 3600.0  # an unlock lasts a school day, then the phone pairs again
MAX_TRACKED = 4096  # clients remembered by the PIN guard, unlocks kept: bounded memory


def allowed_hosts(extra: Iterable[str] = ()) -> Set[str]:
    name = socket.gethostname().lower()
    return {"localhost", name, f"{name}.local", *(h.lower() for h in extra)}


def host_is_allowed(host_header: str, names: Set[str]) -> bool:
    try:
        host = urlsplit("//" + host_header).hostname or ""
    except ValueError:  # e.g. a broken IPv6 literal
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host.lower() in names


def same_origin(origin: str, host: str) -> bool:
    try:
        return urlsplit(origin).netloc == host
    except ValueError:
        return False


def client_key(remote_addr: Optional[str]) -> str:
    """The unit that limits count: an IPv4 address, an IPv6 /64, or the raw text if unparsable."""
    try:
        address = ipaddress.ip_address((remote_addr or "").split("%")[0])
    except ValueError:
        return remote_addr or "?"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address.is_link_local:  # every host of the link shares fe80::/64: tell them apart
            return str(address)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def is_loopback(remote_addr: Optional[str]) -> bool:
    """The request comes from the machine the box runs on (a person at its keyboard)."""
    try:
        address = ipaddress.ip_address((remote_addr or "").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def pin_delay(failures: int) -> float:
    """Seconds a client waits after ``failures`` wrong PINs in a row."""
    over = failures - PIN_FREE_TRIES
    if over <= 0:
        return 0.0
    return min(PIN_MAX_DELAY, PIN_FIRST_DELAY * 2.0 ** min(over - 1, 64))  # no overflow after 1,000s of tries


@dataclass(frozen=True)
class PinAttempt:
    accepted: bool
    wait: float  # seconds before this client may try again
    checked: bool = True  # False: refused without looking, the client had to wait


class PinGuard:
    """Wrong PINs per client: a few free, then a wait that doubles each time, up to a day.

    One client's failures never delay another (the owner is never locked out by a
    neighbour's guessing; a client's first try is always taken); a right PIN clears
    the client's record.  Free tries come from a pool shared by everyone
    (:data:`PIN_FREE_PER_HOUR`), so guessing from many addresses buys no more free
    guesses; when the pool is empty a client's first wrong PIN already costs a wait.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: Dict[str, list] = {}  # key -> [failures, not before]
        self._pool = float(PIN_FREE_PER_HOUR)
        self._pool_time = clock()

    def retry_in(self, client: str) -> float:
        """Seconds before ``client`` may try a PIN again (0: now)."""
        with self._lock:
            entry = self._clients.get(client)
            return 0.0 if entry is None else max(0.0, entry[1] - self._clock())

    def attempt(self, client: str, right: bool) -> "PinAttempt":
        """One try, checked and counted at once (two requests at the same moment are two tries).

        While ``client`` must wait, even the right PIN is refused, unchecked.
        """
        with self._lock:
            now = self._clock()
            entry = self._clients.get(client)
            if entry is not None and entry[1] > now:
                return PinAttempt(False, entry[1] - now, checked=False)
            if right:
                self._clients.pop(client, None)
                return PinAttempt(True, 0.0)
            failures = (entry[0] if entry is not None else 0) + 1
            if failures <= PIN_FREE_TRIES and not self._take_free(now):
                failures = PIN_FREE_TRIES + 1  # no free tries left for anyone: this one costs
            delay = pin_delay(failures)
            self._clients[client] = [failures, now + delay]
            self._bound(now)
            return PinAttempt(False, delay)

    def _take_free(self, now: float) -> bool:
        self._pool = min(PIN_FREE_PER_HOUR, self._pool + (now - self._pool_time) * PIN_FREE_PER_HOUR / 3600)
        self._pool_time = now
        if self._pool < 1:
            return False
        self._pool -= 1
        return True

    def _bound(self, now: float) -> None:
        """At most MAX_TRACKED clients: forget the ones whose wait is over first, never a running wait."""
        if len(self._clients) <= MAX_TRACKED:
            return
        for key in [k for k, (_, until) in self._clients.items() if until <= now]:
            del self._clients[key]
        while len(self._clients) > MAX_TRACKED:  # every one is waiting: drop the shortest wait
            del self._clients[min(self._clients, key=lambda k: self._clients[k][1])]


class Unlocks:
    """Unlocked sessions, kept on the box: a cookie carries only a random token.

    Only the token's hash is kept, so memory (or a log) never holds a usable token.
    """

    def __init__(self, *, lifetime: float = UNLOCK_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._grants: "OrderedDict[str, float]" = OrderedDict()  # token hash -> expiry

    def grant(self) -> str:
        """A new unlock token (put it in the session)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._grants[_digest(token)] = self._clock() + self.lifetime
            while len(self._grants) > MAX_TRACKED:
                self._grants.popitem(last=False)
        return token

    def expires_in(self, token: Optional[str]) -> Optional[float]:
        """Seconds the unlock of ``token`` has left, or ``None`` if it is not (or no longer) valid."""
        if not isinstance(token, str):
            return None
        key = _digest(token)
        with self._lock:
            expiry = self._grants.get(key)
            if expiry is None:
                return None
            left = expiry - self._clock()
            if left <= 0:
                del self._grants[key]
                return None
            return left

    def revoke(self, token: Optional[str]) -> None:
        if isinstance(token, str):
            with self._lock:
                self._grants.pop(_digest(token), None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


__all__ = ["allowed_hosts", "host_is_allowed", "same_origin", "client_key", "is_loopback", "pin_delay",
           "PinGuard", "Unlocks", "PIN_FREE_TRIES", "PIN_FIRST_DELAY", "PIN_MAX_DELAY", "UNLOCK_SECONDS"]
