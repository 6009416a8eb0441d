"""Changing what the box knows (every route needs an unlocked page)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, request

from .auth import protected
from .context import services
from .payload import class_number, json_body

bp = Blueprint("teaching", __name__)

MAX_UPLOAD = 2 << 20
TEACH_LEASE = 3.0  # seconds a hold from the page lasts without a renewal


@bp.post("/api/teach/start")
@protected
def teach_start():
    box = services().box
    data = json_body()
    class_id = class_number(data, box.num_classes)
    if data.get("keep") is True:  # the page renews a hold every second while the finger is down
        return jsonify(ok=True, teaching=box.keep_teaching(class_id, TEACH_LEASE))
    box.start_teaching(class_id, lease=TEACH_LEASE)
    return jsonify(ok=True, teaching=True)


@bp.post("/api/teach/stop")
@protected
def teach_stop():
    box = services().box
    box.stop_teaching(class_number(json_body(optional=True), box.num_classes, required=False))
    return jsonify(ok=True)


@bp.post("/api/undo")
@protected
def undo():
    json_body(optional=True)
    undone = services().box.undo()
    if undone is None:
        return jsonify(ok=True, undone=None, message="nothing to undo")
    return jsonify(ok=True, undone={"class": undone[0], "examples": undone[1]})


@bp.post("/api/clear")
@protected
def clear():
    box = services().box
    return jsonify(ok=True, forgotten=box.clear(class_number(json_body(), box.num_classes)))


@bp.post("/api/clear-all")
@protected
def clear_all():
    if json_body().get("confirm") is not True:
        abort(400, "clearing everything needs {\"confirm\": true}")
    return jsonify(ok=True, forgotten=services().box.clear_all(), names_kept=True)


@bp.post("/api/rename")
@protected
def rename():
    box = services().box
    data = json_body()
    class_id = class_number(data, box.num_classes)
    return jsonify(ok=True, name=box.rename(class_id, data.get("name")))


@bp.get("/api/export")
@protected
def export():
    return Response(services().box.export_state(), mimetype="application/octet-stream",
                    headers={"Content-Disposition": 'attachment; filename="teachbox-head.npz"',
                             "Cache-Control": "no-store"})


@bp.post("/api/import")
@protected
def import_state():
    upload = request.files.get("file")
    data = upload.read(MAX_UPLOAD + 1) if upload is not None else request.get_data(cache=False)
    if not data:
        abort(400, "no file: send the exported .npz as the request body or as form field 'file'")
    classes = services().box.import_state(data)
    return jsonify(ok=True, classes=[{"name": c.name, "examples": c.examples} for c in classes])
