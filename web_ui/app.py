"""Flask app factory and JSON API of the phone page."""

from __future__ import annotations

import hmac
import io
import ipaddress
import logging
import secrets
import socket
import threading
import time
from typing import Iterable, Optional
from urllib.parse import urlsplit

from flask import Flask, Response, abort, jsonify, render_template, request, session
from PIL import Image
from werkzeug.exceptions import HTTPException

from device.errors import ForeignStateError, StateError, TeachboxError
from device.gestures import FUNCTION
from device.head import validate_class_name
from device.storage import decode_head, encode_head

log = logging.getLogger(__name__)

CSRF_HEADER = "X-Teachbox-CSRF"
MAX_UPLOAD = 2 << 20
PIN_ATTEMPTS, PIN_WINDOW = 5, 60.0
JPEG_MAX_SIDE = 480
TEACH_LEASE = 3.0  # seconds a hold from the page lasts without a renewal


class FrameTap:
    """A loop observer that keeps a reference to the latest frame; JPEG only when asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest = (-1, None)  # (seq, frame), replaced as one
        self._jpeg = (None, b"")  # (seq, bytes): shared by every client asking for the same frame

    def update(self, result) -> None:
        if result.frame is not None:
            self._latest = (result.seq, result.frame)  # no copy: frames are never written to

    def jpeg(self) -> Optional[bytes]:
        seq, frame = self._latest
        if frame is None:
            return None
        with self._lock:
            if self._jpeg[0] != seq:
                image = Image.fromarray(frame)
                if max(image.size) > JPEG_MAX_SIDE:
                    image.thumbnail((JPEG_MAX_SIDE, JPEG_MAX_SIDE))
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=75)
                self._jpeg = (seq, buffer.getvalue())
            return self._jpeg[1]


def allowed_hosts(extra: Iterable[str] = ()) -> set:
    name = socket.gethostname().lower()
    return {"localhost", name, f"{name}.local", *(h.lower() for h in extra)}


def host_is_allowed(host_header: str, names: set) -> bool:
    """IP literals, localhost, this machine's names and configured names: nothing else (DNS rebinding)."""
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


class _PinGuard:
    """At most PIN_ATTEMPTS wrong PINs per PIN_WINDOW seconds, for everyone together."""

    def __init__(self) -> None:
        self._failures = []
        self._lock = threading.Lock()

    def blocked(self, now: float) -> bool:
        with self._lock:
            self._failures = [t for t in self._failures if now - t < PIN_WINDOW]
            return len(self._failures) >= PIN_ATTEMPTS

    def failed(self, now: float) -> None:
        with self._lock:
            self._failures.append(now)


def create_app(test_config: Optional[dict] = None, *, loop, web=None, pairing=None, frames: Optional[FrameTap] = None,
               secret_key: Optional[bytes] = None) -> Flask:
    """The phone page for ``loop``.

    :param web: the ``[web]`` configuration (``device.config.WebConfig``).
    :param pairing: a ``PairingBroker`` the front panel approves (``None``: PIN only).
    :param frames: the :class:`FrameTap` registered as an observer of the loop.
    :param secret_key: signs the session cookies; a random one if not given.
    """
    from device.config import WebConfig

    web = web or WebConfig()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        MAX_CONTENT_LENGTH=MAX_UPLOAD,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # only responses that change the session set the cookie: a poll that started
        # before an unlock must not put the locked session back when it returns
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=30 * 24 * 3600,
    )
    if test_config:
        app.config.update(test_config)
    names = allowed_hosts(web.allowed_hosts)
    pins = _PinGuard()
    frames = frames or FrameTap()

    def error(status: int, message: str):
        response = jsonify(error=message)
        response.status_code = status
        return response

    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(24)
            session.permanent = True
        return session["csrf"]

    def unlocked() -> bool:
        return not web.require_unlock or bool(session.get("unlocked"))

    def panel():
        return getattr(loop, "panel", None)

    def simulated() -> bool:
        from gpiozero.pins.mock import MockFactory

        return panel() is not None and isinstance(panel().pin_factory, MockFactory)

    def body() -> dict:
        try:
            data = request.get_json(silent=True)
        except RecursionError:
            data = None
        if not isinstance(data, dict):
            abort(400, "expected a JSON object in the request body")
        return data

    def class_of(data: dict) -> int:
        value = data.get("class")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < loop.head.num_classes:
            abort(400, f"'class' must be a class number from 0 to {loop.head.num_classes - 1}, not {value!r}")
        return value

    protected_views = set()

    def protected(view):
        """Marks a route that needs an unlocked page (checked in ``guard``)."""
        protected_views.add(view.__name__)
        return view

    # -- every request -----------------------------------------------------------------
    @app.before_request
    def guard():
        if not host_is_allowed(request.host, names):
            return error(421, f"this box does not answer to the name {request.host!r}; use its IP address "
                              "or add the name to [web] allowed_hosts")
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and not same_origin(origin, request.host):
                return error(403, f"cross-origin request from {origin!r} refused")
            token = request.headers.get(CSRF_HEADER, "").encode("utf-8", "surrogateescape")
            if not session.get("csrf") or not hmac.compare_digest(token, session["csrf"].encode()):
                return error(403, "missing or wrong CSRF token: reload the page")
            if request.endpoint in protected_views and not unlocked():
                return error(401, "locked: unlock the page first (press the function button on the box, "
                                  "or enter the PIN)")
        elif request.endpoint in protected_views and not unlocked():
            return error(401, "locked: unlock the page first")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.code or 400, exc.description or exc.name)

    @app.errorhandler(413)
    def too_big(exc):
        return error(413, f"too big: the box takes at most {MAX_UPLOAD // (1 << 20)} MB (an export is far smaller)")

    @app.errorhandler(TeachboxError)
    def teachbox_error(exc: TeachboxError):
        return error(400, str(exc))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("the page's request %s %s failed", request.method, request.path)
        return error(500, "something went wrong on the box; nothing was changed. The log has the details.")

    # -- reading (open) ----------------------------------------------------------------
    @app.get("/")
    def index():
        return render_template("index.html")

    @app.get("/api/status")
    def status():
        snapshot = loop.status()
        snapshot["auth"] = {"unlocked": unlocked(), "required": web.require_unlock, "csrf": csrf_token(),
                            "pin": bool(web.pin),
                            "pairing": pairing is not None and panel() is not None}
        snapshot["simulated"] = simulated()
        if panel() is not None:
            p = panel()
            snapshot["panel"] = {
                "leds": [round(float(led.value), 3) for led in p.class_leds],
                "status_led": None if p.status_led is None else float(p.status_led.value),
                "buttons": [b.is_pressed for b in p.class_buttons],
                "function": p.function_button.is_pressed,
            }
        camera = loop.camera.camera
        snapshot["camera"]["sources"] = list(getattr(camera, "sources", ()))
        snapshot["camera"]["source"] = getattr(camera, "source", None)
        return jsonify(snapshot)

    @app.get("/api/frame.jpg")
    def frame():
        data = frames.jpeg()
        if data is None:
            return error(503, "no camera frame yet")
        return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})

    # -- unlocking -----------------------------------------------------------------------
    @app.post("/api/unlock/pin")
    def unlock_pin():
        if not web.pin:
            return error(404, "PIN unlock is off on this box; press its function button to pair")
        now = time.monotonic()
        if pins.blocked(now):
            return error(429, "too many wrong PINs: wait a minute")
        given = body().get("pin")
        if not isinstance(given, str) or not given.isascii() or not hmac.compare_digest(given.encode(),
                                                                                         web.pin.encode()):
            pins.failed(now)
            return error(403, "wrong PIN")
        session["unlocked"] = True
        return jsonify(unlocked=True)

    @app.post("/api/unlock/pair")
    def pair_start():
        if pairing is None or panel() is None:
            return error(404, "this box has no function button to pair with; use the PIN")
        request_id = pairing.request()
        if request_id is None:
            return error(429, "another phone is pairing right now: try again in a few seconds")
        session["pair"] = request_id
        return jsonify(state="pending", message="press the function button on the box")

    @app.get("/api/unlock/pair")
    def pair_state():
        request_id = session.get("pair")
        if pairing is None or not request_id:
            return jsonify(state="unknown")
        state = pairing.state(request_id)
        if state == "approved":
            session.pop("pair", None)
            session["unlocked"] = True
        return jsonify(state=state)

    @app.post("/api/lock")
    def lock():
        session.pop("unlocked", None)
        return jsonify(unlocked=False)

    # -- actions (need an unlocked page) -----------------------------------------------------
    @app.post("/api/teach/start")
    @protected
    def teach_start():
        data = body()
        class_id = class_of(data)
        if data.get("keep") is True:  # the page renews a hold every second while the finger is down
            return jsonify(ok=True, teaching=loop.keep_teaching(class_id, TEACH_LEASE))
        loop.start_teaching(class_id, lease=TEACH_LEASE)
        return jsonify(ok=True, teaching=True)

    @app.post("/api/teach/stop")
    @protected
    def teach_stop():
        data = request.get_json(silent=True)
        loop.stop_teaching(class_of(data) if isinstance(data, dict) and "class" in data else None)
        return jsonify(ok=True)

    @app.post("/api/undo")
    @protected
    def undo():
        undone = loop.undo()
        if undone is None:
            return jsonify(ok=True, undone=None, message="nothing to undo")
        return jsonify(ok=True, undone={"class": undone[0], "examples": undone[1]})

    @app.post("/api/clear")
    @protected
    def clear():
        return jsonify(ok=True, forgotten=loop.clear(class_of(body())))

    @app.post("/api/clear-all")
    @protected
    def clear_all():
        if body().get("confirm") is not True:
            abort(400, "clearing everything needs {\"confirm\": true}")
        return jsonify(ok=True, forgotten=loop.clear_all())

    @app.post("/api/rename")
    @protected
    def rename():
        data = body()
        class_id = class_of(data)
        name = validate_class_name(data.get("name"))
        return jsonify(ok=True, name=loop.rename(class_id, name))

    @app.get("/api/export")
    @protected
    def export():
        with loop.lock:
            data = encode_head(loop.head, loop.model)
        return Response(data, mimetype="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="teachbox-head.npz"',
                                 "Cache-Control": "no-store"})

    @app.post("/api/import")
    @protected
    def import_head():
        upload = request.files.get("file")
        data = upload.read(MAX_UPLOAD + 1) if upload is not None else request.get_data(cache=False)
        if not data:
            abort(400, "no file: send the exported .npz as the request body or as form field 'file'")
        try:
            head = decode_head(data, loop.model, threshold=loop.head.threshold, temperature=loop.head.temperature)
        except ForeignStateError as exc:
            return error(400, "this file was made by a box running another model, so it cannot be used "
                              f"here. Nothing was changed. ({exc})")
        except StateError as exc:
            return error(400, f"this is not a teachbox export file, or it is damaged. Nothing was changed. ({exc})")
        loop.replace_head(head)
        return jsonify(ok=True, classes=[{"name": n, "examples": c} for n, c in zip(head.names, head.counts)])

    # -- the simulated box -------------------------------------------------------------------
    @app.post("/api/sim/button")
    def sim_button():
        if not simulated():
            return error(404, "the front panel is real on this box: press its buttons")
        data = body()
        which, pressed = data.get("button"), data.get("pressed")
        if not isinstance(pressed, bool):
            abort(400, "'pressed' must be true or false")
        p = panel()
        if which == FUNCTION:
            button = p.function_button
        elif isinstance(which, int) and not isinstance(which, bool) and 0 <= which < len(p.class_buttons):
            button = p.class_buttons[which]
        else:
            abort(400, f"'button' must be 0 to {len(p.class_buttons) - 1} or \"function\", not {which!r}")
        if pressed:
            button.pin.drive_low()  # buttons pull up: pressed = low
        else:
            button.pin.drive_high()
        return jsonify(ok=True)

    @app.post("/api/sim/source")
    def sim_source():
        camera = loop.camera.camera
        if not getattr(camera, "sources", None):
            return error(404, "this camera has no sources to switch between")
        source = body().get("source")
        if source not in camera.sources:
            abort(400, f"unknown source {source!r}")
        camera.select(source)
        return jsonify(ok=True, source=source)

    app.extensions["teachbox"] = {"loop": loop, "frames": frames, "pairing": pairing}
    return app

