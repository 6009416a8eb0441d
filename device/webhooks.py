"""The webhook: every event POSTed as JSON to ``[webhook] url``, signed, retried, never from the frame loop.

Each request carries ``X-Teachbox-Timestamp`` (unix seconds) and, with a secret,
``X-Teachbox-Signature: sha256=<hex>``: the HMAC-SHA256, keyed with the secret, of
``<timestamp>.`` followed by the body.  A receiver recomputes it (:func:`verify_signature`) and
refuses an old timestamp, so a captured request cannot be replayed later.
``X-Teachbox-Delivery`` is the same on every try of one event (receivers can drop repeats).

Failures (no connection, a timeout, 5xx or 429) are tried again ``retries`` times, 1, 2, 4 ... s
apart (at most 30 s; a numeric ``Retry-After`` up to 60 s is honoured); other answers are not
retried.  Redirects are not followed.  The queue holds at most 100 events (the oldest go first);
a dead receiver is logged once, then at most once a minute.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Callable, Deque, Optional, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

from . import __version__
from .events import event_json

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 60.0
LOG_EVERY = 60.0
TOLERANCE = 300  # seconds a receiver accepts a timestamp off by


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``<timestamp>.<body>`` keyed with ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(secret: str, body: bytes, timestamp: str, signature_header: str, *,
                     now: Optional[float] = None, tolerance: float = TOLERANCE) -> bool:
    """Whether a request really comes from a box with ``secret``, and is fresh (not a replay)."""
    try:
        moment = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return False
    expected = signature(secret, str(moment), body)
    return hmac.compare_digest(expected.encode(), str(signature_header).encode("utf-8", "replace"))


def shown_url(url: str) -> str:
    """The URL without credentials (for logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _split_credentials(url: str) -> Tuple[str, Optional[str]]:
    """``http://user:pw@host/x`` -> (``http://host/x``, a Basic ``Authorization`` value); urllib does not."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    user = unquote(parts.username)
    password = unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), f"Basic {token}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx is an answer like any other: not followed


@dataclass(frozen=True)
class WebhookStatus:
    url: str
    sent: int
    failed: int
    dropped: int
    error: Optional[str]


class WebhookSender:
    """An events consumer: :meth:`apply` queues, one thread POSTs.

    :param settings: ``Config.webhook`` (url, secret, timeout, retries).
    :param source: returns what the box looks at (put in the body).
    :param sleep: waits between tries (tests pass their own); ``wall``: unix seconds.
    """

    kind = "webhook"

    def __init__(self, settings, *, box_name: str, box_id: str, source: Callable[[], str] = lambda: "",
                 sleep: Optional[Callable[[float], None]] = None, wall: Callable[[], float] = time.time) -> None:
        self.url, self._authorization = _split_credentials(settings.url)
        self.secret = settings.secret
        self.timeout = float(settings.timeout)
        self.retries = int(settings.retries)
        self.box_name, self.box_id = box_name, box_id
        self._source = source
        self._wall = wall
        self._queue: Deque[Tuple[bytes, str]] = collections.deque()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._sent = self._failed = self._dropped = 0
        self._error: Optional[str] = None
        self._last_logged = -1e9
        self._opener = urllib.request.build_opener(_NoRedirects, urllib.request.ProxyHandler({}))
        self._thread = threading.Thread(target=self._run, name="teachbox-webhook", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<WebhookSender {shown_url(self.url)} sent={self._sent}>"

    def apply(self, event) -> None:
        """Queue ``event`` (never blocks, never raises)."""
        try:
            payload = event_json(event)
            payload.update({"box": self.box_name, "box_id": self.box_id, "source": self._source()})
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except Exception as exc:
            log.warning("webhook: an event was not sent: %s", exc)
            return
        with self._wake:
            if self._stop.is_set():
                return
            if len(self._queue) >= QUEUE_SIZE:
                self._queue.popleft()
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 100 == 0:
                    log.warning("webhook: %d events dropped so far (%s is not keeping up)", self._dropped,
                                shown_url(self.url))
            self._queue.append((body, payload["kind"]))
            self._wake.notify()

    def status(self) -> WebhookStatus:
        return WebhookStatus(shown_url(self.url), self._sent, self._failed, self._dropped, self._error)

    def close(self, timeout: float = 2.0) -> None:
        """Give the queue ``timeout`` seconds to go out, then stop."""
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self._thread.join(timeout)

    # -- the sender thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._queue and not self._stop.is_set():
                    self._wake.wait(1.0)
                if self._stop.is_set():
                    return
                body, kind = self._queue[0]
            self._deliver(body, kind)
            with self._wake:
                if self._queue and self._queue[0][0] is body:
                    self._queue.popleft()

    def _deliver(self, body: bytes, kind: str) -> bool:
        delivery = str(uuid.uuid4())
        for attempt in range(self.retries + 1):
            ok, wait, why = self._post(body, kind, delivery)
            if ok:
                self._sent += 1
                self._error = None
                return True
            self._error = why
            if wait is None or attempt == self.retries or self._stop.is_set():
                break
            self._sleep(min(wait if wait > 0 else 2.0 ** attempt, MAX_RETRY_AFTER if wait > 0 else MAX_BACKOFF))
        self._failed += 1
        now = time.monotonic()
        if now - self._last_logged >= LOG_EVERY:
            self._last_logged = now
            log.warning("webhook: %s did not take an event: %s (%d failed so far)", shown_url(self.url), why,
                        self._failed)
        return False

    def _post(self, body: bytes, kind: str, delivery: str) -> Tuple[bool, Optional[float], str]:
        """``(ok, wait before retrying or None for never, why not)``; wait 0 = the usual backoff."""
        timestamp = str(int(self._wall()))
        headers = {"Content-Type": "application/json", "User-Agent": f"teachbox/{__version__}",
                   "X-Teachbox-Event": kind, "X-Teachbox-Delivery": delivery, "X-Teachbox-Timestamp": timestamp}
        if self._authorization:
            headers["Authorization"] = self._authorization
        if self.secret:
            headers["X-Teachbox-Signature"] = signature(self.secret, timestamp, body)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(65536)
                return True, None, ""
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            if status == 429 or status >= 500:
                after = exc.headers.get("Retry-After", "") if exc.headers else ""
                return False, float(after) if after.strip().isdigit() else 0.0, f"HTTP {status}"
            return False, None, f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return False, 0.0, str(reason) or type(exc).__name__


__all__ = ["WebhookSender", "WebhookStatus", "signature", "verify_signature"]
