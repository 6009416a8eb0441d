"""The simulated box: its front panel and its camera's sources, for a person at the box.

Pressing a simulated button stands for a finger on the box, so it is offered only to
a browser on the machine itself or one that is unlocked (:func:`~web_ui.auth.present`).
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify

from .auth import error, needs_presence
from .context import services
from .payload import json_body

bp = Blueprint("simulation", __name__)


@bp.post("/api/sim/button")
@needs_presence
def sim_button():
    box = services().box
    if not box.panel_simulated:
        return error(404, "the front panel is real on this box: press its buttons")
    data = json_body()
    pressed = data.get("pressed")
    if not isinstance(pressed, bool):
        abort(400, "'pressed' must be true or false")
    (box.press if pressed else box.release)(data.get("button"))
    return jsonify(ok=True)


@bp.post("/api/sim/source")
@needs_presence
def sim_source():
    box = services().box
    snapshot = box.snapshot()
    if not snapshot.loop.camera.sources:
        return error(404, "this camera has no sources to switch between")
    source = json_body().get("source")
    if source not in snapshot.loop.camera.sources:
        abort(400, f"unknown source {source!r}")
    box.select_source(source)
    return jsonify(ok=True, source=source)
