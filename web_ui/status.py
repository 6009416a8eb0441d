"""Reading the box (open to every browser on the network): the page, its status, the live view."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template

from device.vocab import as_json

from .auth import auth_json, error
from .context import services
from .payload import EXPORT_NAME, MAX_UPLOAD
from .views import status_json

bp = Blueprint("status", __name__)


@bp.get("/")
def index():
    return render_template("index.html", vocab=as_json(), max_upload=MAX_UPLOAD, export_name=EXPORT_NAME,
                           name=services().box.name)


@bp.get("/api/status")
def status():
    return jsonify(current_status())


def current_status() -> dict:
    """The status JSON (also the answer of every change to the examples, so counts follow at once)."""
    box = services().box
    snapshot = box.snapshot()
    frames = box.doubtful()
    doubtful = {"count": len(frames), "newest": frames[0].id if frames else None}
    status = status_json(snapshot, auth_json(snapshot), doubtful, box.sources())
    status["name"] = box.name
    status["rule_pins"] = [{"gpio": p.gpio, "mode": p.mode, "value": p.value, "rules": list(p.rules)}
                           for p in box.rule_pins()]
    status["outputs"] = {kind: {"connected": getattr(s, "connected", None), "error": s.error,
                                "dropped": s.dropped} for kind, s in box.output_status().items()}
    return status


@bp.get("/api/frame.jpg")
def frame():
    data = services().frames.jpeg()
    if data is None:
        return error(503, "no camera frame yet")
    return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})
