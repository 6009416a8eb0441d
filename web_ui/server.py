"""Serving the phone page with waitress beside the loop (the loop never waits for it)."""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from pathlib import Path
from typing import List

from device.atomic import atomic_file
from device.pairing import PairingBroker

from .app import FrameTap, create_app

log = logging.getLogger(__name__)
SECRET_FILE = "web-secret"


def load_secret(state_dir: Path) -> bytes:
    """The key that signs session cookies: made once, kept (0600) so sessions survive restarts."""
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
        log.warning("cannot keep the page's session key in %s (%s): browsers must unlock again after a restart",
                    path, exc)
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


class PageServer:
    """The page for ``loop`` on waitress, in a background thread."""

    def __init__(self, loop, config) -> None:
        from waitress.server import create_server

        web = config.web
        self.frames = FrameTap()
        loop.observers.append(self.frames)
        self.pairing = PairingBroker()
        if getattr(loop, "panel", None) is not None:
            loop.panel.pairing = self.pairing
        self.app = create_app(loop=loop, web=web, pairing=self.pairing, frames=self.frames,
                              secret_key=load_secret(config.state_dir))
        self.server = create_server(self.app, host=web.host, port=web.port, threads=web.threads,
                                    ident="teachbox", clear_untrusted_proxy_headers=True)
        self.port = self.server.effective_port
        self._thread = threading.Thread(target=self.server.run, name="teachbox-web", daemon=True)

    def start(self) -> None:
        self._thread.start()
        for address in page_addresses(self.server.effective_host, self.port):
            log.info("phone page: %s", address)

    def close(self) -> None:
        """Stop listening, end open connections (polling phones keep them alive) and the workers."""
        from waitress import wasyncore

        server = self.server
        server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(server._map)  # the listening socket, the trigger and every open channel
        self._thread.join(timeout=5)
