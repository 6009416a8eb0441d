"""Serving the phone page with waitress beside the loop (the loop never waits for it).

Sized for a box on a LAN that idle or slow clients must not take down: waitress
accepts up to :data:`CONNECTION_LIMIT` connections and closes one that has done
nothing for :data:`CHANNEL_TIMEOUT` seconds (checked every :data:`CLEANUP_INTERVAL`),
so a pile of idle sockets neither blocks new phones nor lives long; and one device
(an IPv4 address or an IPv6 /64) holds at most :data:`PER_CLIENT` of them at once
(:class:`CappedListener`), so a neighbour dripping a byte every few seconds into many
sockets cannot fill the server either.  The box itself (loopback) is not capped.
"""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import threading
from pathlib import Path
from typing import Dict, List, Optional

from device.atomic import atomic_file
from device.box import Box

from .app import create_app
from .payload import MAX_UPLOAD
from .security import client_key, is_loopback

log = logging.getLogger(__name__)
SECRET_FILE = "web-secret"
CONNECTION_LIMIT = 256  # open connections at once (each costs a file descriptor, no thread)
CHANNEL_TIMEOUT = 15  # seconds a connection may be idle before it is closed
CLEANUP_INTERVAL = 2  # seconds between checks for idle connections
PER_CLIENT = 16  # connections one device may hold (a browser opens about 6 per site)
# waitress holds a request's whole body (on disk past 512 kB) before the page sees it: it
# refuses one this much past the largest the page takes, so nobody fills the card (or a
# /tmp in memory) with a gigabyte; the page itself answers 413 with its reason up to there
MAX_REQUEST_BODY = MAX_UPLOAD + (1 << 20)


def load_secret(state_dir: Path) -> bytes:
    """The key that signs session cookies: made once, kept (0600) so CSRF tokens survive restarts.

    Unlocks do not survive a restart whatever the key: they are kept in memory.
    """
    path = Path(state_dir) / SECRET_FILE
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    except OSError:
        pass
    secret = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, mode=0o600) as out:
            out.write(secret)
    except OSError as exc:
        log.warning("cannot keep the page's session key in %s (%s): browsers must reload the page after a "
                    "restart", path, exc)
    return secret


def page_addresses(host: str, port: int) -> List[str]:
    """Addresses a phone can open (the machine's name and its non-loopback IPv4 addresses)."""
    if host not in ("0.0.0.0", "::", ""):
        return [f"http://{host}:{port}/"]
    name = socket.gethostname()
    addresses = [f"http://{name}.local:{port}/"]
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET)
    except OSError:
        infos = []
    for ip in sorted({info[4][0] for info in infos}):
        if not ip.startswith("127."):
            addresses.append(f"http://{ip}:{port}/")
    return addresses + [f"http://localhost:{port}/ (on this machine)"]


class _Connection(socket.socket):
    """An accepted connection that tells its listener when it is closed (once)."""

    def attach(self, release) -> None:
        self._release = release

    def close(self) -> None:
        release, self._release = getattr(self, "_release", None), None
        try:
            super().close()
        finally:
            if release is not None:
                release()


class CappedListener(socket.socket):
    """A listening socket that refuses a device's connections beyond ``per_client`` at once.

    waitress accepts through :meth:`accept`; a refused connection is closed at once and
    reported as "nothing to accept", which waitress takes in its stride.
    """

    def setup(self, per_client: int, exempt_loopback: bool = True) -> None:
        self.per_client = per_client
        self.exempt_loopback = exempt_loopback
        self._open: Dict[str, int] = {}
        self._count_lock = threading.Lock()

    def accept(self):
        conn, address = super().accept()
        client = client_key(address[0])
        if self.exempt_loopback and is_loopback(address[0]):
            return conn, address
        with self._count_lock:
            if self._open.get(client, 0) >= self.per_client:
                refused = True
            else:
                refused = False
                self._open[client] = self._open.get(client, 0) + 1
        if refused:
            conn.close()
            log.debug("refused a connection from %s: it already holds %d", client, self.per_client)
            raise BlockingIOError(errno.EAGAIN, "connection refused: too many from one device")
        counted = _Connection(conn.family, conn.type, conn.proto, fileno=conn.detach())
        counted.attach(lambda: self._release_slot(client))
        return counted, address

    def _release_slot(self, client: str) -> None:
        with self._count_lock:
            left = self._open.get(client, 1) - 1
            if left > 0:
                self._open[client] = left
            else:
                self._open.pop(client, None)


def bind_page_socket(host: str, port: int, *, per_client: int = PER_CLIENT,
                     exempt_loopback: bool = True) -> socket.socket:
    """The page's listening socket, bound now (so a busy port is found before the model loads).

    Raises :class:`OSError` (e.g. ``EADDRINUSE``) as ``bind`` does.
    """
    infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = CappedListener(family, kind, proto)
    sock.setup(per_client, exempt_loopback)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


class PageServer:
    """The page for ``box`` on waitress, in a background thread.

    :param box: the :class:`~device.box.Box` the page shows and changes.
    :param config: the appliance :class:`~device.config.Config` (``[web]``, the state folder).
    :param sock: a socket from :func:`bind_page_socket`; bound here from ``[web]`` if not given.
    :param limits: waitress adjustments that override the defaults above (tests).
    """

    def __init__(self, box: Box, config, *, sock: Optional[socket.socket] = None, **limits) -> None:
        from waitress.server import create_server

        web = config.web
        self.app = create_app(box=box, web=web, secret_key=load_secret(config.state_dir))
        self._map: Dict[int, object] = {}  # waitress's socket map: ours, so that close() can end every channel
        sock = sock or bind_page_socket(web.host, web.port)
        options = {"connection_limit": CONNECTION_LIMIT, "channel_timeout": CHANNEL_TIMEOUT,
                   "cleanup_interval": CLEANUP_INTERVAL, "max_request_body_size": MAX_REQUEST_BODY, **limits}
        self.server = create_server(self.app, map=self._map, sockets=[sock], threads=web.threads,
                                    ident="teachbox", clear_untrusted_proxy_headers=True, **options)
        self.port = sock.getsockname()[1]
        self._host = web.host
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="teachbox-web", daemon=True)

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:
            if not self._closing:
                raise
            # close() closed the sockets under a select() in progress: the server is done

    def start(self) -> None:
        self._thread.start()
        for address in page_addresses(self._host, self.port):
            log.info("phone page: %s", address)

    def close(self) -> None:
        """Stop listening, end open connections (polling phones keep them alive) and the workers."""
        from waitress import wasyncore

        self._closing = True
        self.server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(self._map)  # the listening socket, the trigger and every open channel
        self._thread.join(timeout=5)
