"""Changing what the box knows (every route needs an unlocked page)."""

from __future__ import annotations

import io
import shutil

from flask import Blueprint, Response, abort, jsonify, request

from device.box import ImportBusy, ImportRefused

from .auth import error, protected
from .context import services
from .payload import EXPORT_NAME, MAX_BODY, MAX_UPLOAD, class_number, json_body
from .status import current_status
from .views import switch_json

bp = Blueprint("teaching", __name__)

__all__ = ["bp", "MAX_BODY", "MAX_UPLOAD"]
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
    return Response(services().box.export_state(), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{EXPORT_NAME}"',
                             "Cache-Control": "no-store"})


@bp.post("/api/import")
@protected
def import_state():
    data = _uploaded_file()  # at most MAX_UPLOAD (PageRequest), other routes' bodies at most MAX_BODY
    if not data:
        abort(400, f"no file: send the export ({EXPORT_NAME}, or an old teachbox-head.npz) as the request "
                   "body or as form field 'file'")
    box = services().box
    try:
        classes = box.import_state(data)
    except ImportBusy as exc:  # a model switch is going on: try again later
        return error(409, str(exc))
    except ImportRefused as exc:
        return error(400, str(exc))
    return jsonify(ok=True, classes=[{"name": c.name, "examples": c.examples} for c in classes],
                   switch=switch_json(box.snapshot().model_switch), status=current_status())


def _uploaded_file() -> bytes:
    """The uploaded bytes, held in memory once: a form's field ``file`` or the raw body.

    A form's file is on disk (werkzeug spools parts over 500 kB) and read in one piece;
    the raw body is copied in 1 MB chunks into a buffer that becomes the bytes without
    another copy (``Request.get_data`` would hold it twice for a moment).
    """
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        return upload.read() if upload is not None else b""
    out = io.BytesIO()
    shutil.copyfileobj(request.stream, out, 1 << 20)
    return out.getvalue()
