"""Unlocking: pairing with a button on the box, or a PIN; locking; the checks every request passes.

A session cookie (Flask's, signed) carries only a CSRF token, an unlock token and the
id of the session's pairing request.  Whether a token unlocks is decided on the box
(:class:`~web_ui.security.Unlocks`), so Lock, expiry and a restart really lock.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from typing import Optional

from flask import Blueprint, jsonify, request, session

from device.pairing import PairingRefused
from device.vocab import PairState

from .context import services
from .payload import json_body
from .security import client_key, host_is_allowed, is_loopback, same_origin
from .views import pairing_json

CSRF_HEADER = "X-Teachbox-CSRF"

bp = Blueprint("auth", __name__)


def error(status: int, message: str, **extra):
    response = jsonify(error=message, **extra)
    response.status_code = status
    return response


# -- what a request may do --------------------------------------------------------------------
def client() -> str:
    return client_key(request.remote_addr)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
        session.permanent = True
    return session["csrf"]


def unlock_left() -> Optional[float]:
    """Seconds this session's unlock has left; ``None`` when locked."""
    return services().unlocks.expires_in(session.get("unlock"))


def unlocked() -> bool:
    return not services().web.require_unlock or unlock_left() is not None


def present() -> bool:
    """This browser may act as a person at the box: it runs on the box itself, or it is unlocked.

    The simulated front panel stands for physical presence; a remote browser that is
    locked must not get it for free (it could approve its own pairing).
    """
    return is_loopback(request.remote_addr) or unlocked()


def protected(view):
    """The route needs an unlocked page (CSRF and origin are checked for every POST in :func:`guard`)."""
    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not unlocked():
            return error(401, "locked: unlock the page first (press the button the page names on the box, "
                              "or enter the PIN)")
        return view(*args, **kwargs)
    return checked


def needs_presence(view):
    """The route stands for a person at the box (see :func:`present`)."""
    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not present():
            return error(401, "locked: unlock this browser to use the simulated buttons and camera")
        return view(*args, **kwargs)
    return checked


def guard():
    """Every request: the host name; every POST: same origin and the CSRF token."""
    s = services()
    if not host_is_allowed(request.host, s.host_names):
        return error(421, f"this box does not answer to the name {request.host!r}; use its IP address "
                          "or add the name to [web] allowed_hosts")
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and not same_origin(origin, request.host):
            return error(403, f"cross-origin request from {origin!r} refused")
        token = request.headers.get(CSRF_HEADER, "").encode("utf-8", "surrogateescape")
        if not session.get("csrf") or not hmac.compare_digest(token, session["csrf"].encode()):
            return error(403, "missing or wrong CSRF token: reload the page")
    return None


def auth_json(snapshot) -> dict:
    s = services()
    left = unlock_left() if s.web.require_unlock else None
    return {"unlocked": unlocked(), "required": s.web.require_unlock, "csrf": csrf_token(),
            "expires_in": None if left is None else round(left), "unlock_hours": s.unlocks.lifetime / 3600,
            "pin": bool(s.web.pin), "pin_retry_in": round(s.pins.retry_in(client()), 1),
            "pairing": s.box.can_pair, "pair": pairing_json(snapshot, session.get("pair")),
            "presence": present()}


def _unlock() -> dict:
    s = services()
    s.unlocks.revoke(session.get("unlock"))
    session["unlock"] = s.unlocks.grant()
    session.permanent = True
    return {"unlocked": True, "expires_in": round(s.unlocks.lifetime)}


# -- routes -------------------------------------------------------------------------------------
@bp.post("/api/unlock/pin")
def unlock_pin():
    s = services()
    if not s.web.pin:
        return error(404, "PIN unlock is off on this box; pair with a button on the box instead")
    given = json_body().get("pin")
    right = isinstance(given, str) and given.isascii() and hmac.compare_digest(given.encode(), s.web.pin.encode())
    tried = s.pins.attempt(client(), right)
    if tried.accepted:
        return jsonify(_unlock())
    if not tried.checked:
        return error(429, f"too many wrong PINs from this device: try again in {_duration(tried.wait)}",
                     retry_in=round(tried.wait, 1))
    message = "wrong PIN" + (f": the next try is possible in {_duration(tried.wait)}" if tried.wait else "")
    return error(403, message, retry_in=round(tried.wait, 1))


@bp.post("/api/unlock/pair")
def pair_start():
    s = services()
    if not s.box.can_pair:
        return error(404, "this box has no buttons to pair with; use the PIN")
    json_body(optional=True)
    try:
        pending = s.box.pairing.request(client(), session.get("pair"))
    except PairingRefused as exc:
        status = 409 if exc.code is not None else 429
        extra = {} if exc.code is None else {"code": exc.code + 1}
        return error(status, str(exc), retry_in=round(exc.retry_in, 1), **extra)
    session["pair"] = pending.id
    code = pending.code + 1
    return jsonify(state=PairState.PENDING, code=code, expires_in=round(pending.expires_in, 1),
                   message=f"hold the function button on the box and press button {code} (its lamp blinks)")


@bp.get("/api/unlock/pair")
def pair_state():
    s = services()
    request_id = session.get("pair")
    if not s.box.can_pair or not request_id:
        return jsonify(state=PairState.UNKNOWN)
    state = s.box.pairing.state(request_id)
    if state == PairState.APPROVED:
        session.pop("pair", None)
        return jsonify(state=state, **_unlock())
    pending = s.box.pairing.pending()
    if state == PairState.PENDING and pending is not None:
        return jsonify(state=state, code=pending.code + 1, expires_in=round(pending.expires_in, 1))
    return jsonify(state=state)


@bp.post("/api/unlock/pair/cancel")
def pair_cancel():
    json_body(optional=True)
    s = services()
    request_id = session.pop("pair", None)
    cancelled = bool(request_id) and s.box.can_pair and s.box.pairing.cancel(request_id)
    return jsonify(state=PairState.CANCELLED if cancelled else PairState.UNKNOWN)


@bp.post("/api/lock")
def lock():
    json_body(optional=True)
    services().unlocks.revoke(session.pop("unlock", None))
    return jsonify(unlocked=False)


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.0f} h"
