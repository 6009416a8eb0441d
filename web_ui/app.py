"""Flask app factory of the phone page: a client of the box's public API (:class:`device.box.Box`)."""

from __future__ import annotations

import logging
import secrets
from typing import Optional

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from device.box import Box, NoLibrary, StorageBusy
from device.config import WebConfig
from device.errors import TeachboxError

from . import auth, examples, model, outputs, simulation, sources, status, teaching
from .auth import CSRF_HEADER, error
from .context import EXTENSION, Services
from .frames import FrameTap
from .payload import IMPORT_ENDPOINT, MAX_BODY, MAX_UPLOAD, PageRequest
from .security import PinGuard, Unlocks, allowed_hosts

log = logging.getLogger(__name__)

__all__ = ["create_app", "CSRF_HEADER", "MAX_BODY", "MAX_UPLOAD"]


def create_app(test_config: Optional[dict] = None, *, box: Box, web: Optional[WebConfig] = None,
               secret_key: Optional[bytes] = None, pins: Optional[PinGuard] = None,
               unlocks: Optional[Unlocks] = None) -> Flask:
    """The phone page for ``box``.

    :param web: the ``[web]`` configuration (``device.config.WebConfig``).
    :param secret_key: signs the session cookies; a random one if not given.
    :param pins: the PIN guard (tests pass one with their own clock).
    :param unlocks: the unlocked sessions (tests pass one with their own clock).
    """
    web = web or WebConfig()
    app = Flask(__name__)
    app.request_class = PageRequest  # bodies: MAX_UPLOAD for an import, MAX_BODY for the rest
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # only responses that change the session set the cookie: a poll that started
        # before an unlock must not put the locked session back when it returns
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=30 * 24 * 3600,  # the CSRF token; an unlock ends long before
    )
    if test_config:
        app.config.update(test_config)
    app.extensions[EXTENSION] = Services(box=box, web=web, frames=FrameTap(box), pins=pins or PinGuard(),
                                         unlocks=unlocks or Unlocks(), host_names=allowed_hosts(web.allowed_hosts))
    app.before_request(auth.guard)
    for blueprint in (status.bp, auth.bp, teaching.bp, examples.bp, model.bp, sources.bp, outputs.bp,
                      simulation.bp):
        app.register_blueprint(blueprint)
    _error_handlers(app)
    return app


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.code or 400, exc.description or exc.name)

    @app.errorhandler(413)
    def too_big(exc):
        if request.endpoint == IMPORT_ENDPOINT:
            return error(413, f"this file is too big for the page: it takes files of at most {MAX_UPLOAD >> 20} MB. "
                              "Nothing was changed. For a bigger export, copy it to the box and run "
                              "`teachbox import FILE` there (stop the service first)",
                         max_bytes=MAX_UPLOAD)
        return error(413, f"too big: a request to the box is at most {MAX_BODY >> 20} MB", max_bytes=MAX_BODY)

    @app.errorhandler(TeachboxError)
    def teachbox_error(exc: TeachboxError):
        return error(400, str(exc))

    @app.errorhandler(NoLibrary)
    def no_library(exc: NoLibrary):
        return error(404, str(exc))

    @app.errorhandler(StorageBusy)
    def storage_busy(exc: StorageBusy):
        return error(503, str(exc))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("the page's request %s %s failed", request.method, request.path)
        return error(500, "something went wrong on the box; nothing was changed. The log has the details.")
