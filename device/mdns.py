"""The box on the local network: an avahi service file that makes the page findable as ``_http._tcp``.

Avahi (the Pi's mDNS daemon) already answers ``<host name>.local``; a file in
``/etc/avahi/services/`` also announces the page itself under the box's name, so a phone's or a
laptop's service browser lists "Cat flap (teachbox)" with its address and port.  The installer
writes it with ``teachbox mdns-service``; ``[box] name`` names it (several boxes in one room).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

SERVICE_TYPE = "_http._tcp"


def avahi_service(name: str, port: int, *, path: str = "/") -> str:
    """The avahi service file announcing the page of the box ``name`` on ``port``."""
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be 1 to 65535, not {port!r} (the page's [web] port)")
    label = escape(f"{name} (teachbox)"[:63])  # a DNS-SD instance name is at most 63 bytes
    return (
        '<?xml version="1.0" standalone="no"?>\n'
        '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">\n'
        "<!-- written by teachbox's installer (teachbox mdns-service); re-written on every install -->\n"
        "<service-group>\n"
        f"  <name>{label}</name>\n"
        "  <service>\n"
        f"    <type>{SERVICE_TYPE}</type>\n"
        f"    <port>{int(port)}</port>\n"
        f"    <txt-record>path={escape(path)}</txt-record>\n"
        "  </service>\n"
        "</service-group>\n"
    )
