"""Serving the phone page with waitress beside the loop (the loop never waits for it).

Sized for a box on a LAN that idle or slow clients must not take down: waitress
accepts up to :data:`CONNECTION_LIMIT` connections and closes one that has done
nothing for :data:`CHANNEL_TIMEOUT` seconds (checked every :data:`CLEANUP_INTERVAL`),
so a pile of idle sockets neither blocks new phones nor lives long.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from pathlib import Path
from typing import Dict, List, Optional

from device.atomic import atomic_file
from device.box import Box

from .app import create_app

log = logging.getLogger(__name__)
SECRET_FILE = "web-secret"
CONNECTION_LIMIT = 256  # open connections at once (each costs a file descriptor, no thread)
CHANNEL_TIMEOUT = 15  # seconds a connection may be idle before it is closed
CLEANUP_INTERVAL = 2  # seconds between checks for idle connections


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


def bind_page_socket(host: str, port: int) -> socket.socket:
    """The page's listening socket, bound now (so a busy port is found before the model loads).

    Raises :class:`OSError` (e.g. ``EADDRINUSE``) as ``bind`` does.
    """
    infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
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
                   "cleanup_interval": CLEANUP_INTERVAL, **limits}
        self.server = create_server(self.app, map=self._map, sockets=[sock], threads=web.threads,
                                    ident="teachbox", clear_untrusted_proxy_headers=True, **options)
        self.port = sock.getsockname()[1]
        self._host = web.host
        self._thread = threading.Thread(target=self.server.run, name="teachbox-web", daemon=True)

    def start(self) -> None:
        self._thread.start()
        for address in page_addresses(self._host, self.port):
            log.info("phone page: %s", address)

    def close(self) -> None:
        """Stop listening, end open connections (polling phones keep them alive) and the workers."""
        from waitress import wasyncore

        self.server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(self._map)  # the listening socket, the trigger and every open channel
        self._thread.join(timeout=5)
