"""The stored examples, their quality and the inbox of doubtful frames.

The pictures (example crops and doubtful frames) are what the box has seen over weeks,
so, like an export, they leave the box only for an unlocked page: every route here
needs one except ``GET /api/quality``, which has numbers and class names only (as the
status does).  Changes answer with the whole new status, so the page shows the new
counts at once.
"""

from __future__ import annotations

import hashlib
from typing import Optional

from flask import Blueprint, Response, jsonify, request, url_for

from device.box import MAX_IDS, FrameGoneError

from .auth import error, protected
from .context import services
from .payload import MAX_ID, class_number, id_list, json_body, positive_id, query_number
from .status import current_status
from .views import doubtful_json, examples_json, quality_json

bp = Blueprint("examples", __name__)

PAGE_SIZE = 48  # thumbnails of one page of the gallery
MAX_PAGE = 200


def _crop_url(example_id: int) -> str:
    return url_for("examples.crop", example_id=example_id)


def _frame_url(frame_id: int) -> str:
    return url_for("examples.doubtful_picture", frame_id=frame_id)


def _jpeg(data: Optional[bytes], missing: str):
    """A picture for this session only: never stored by a shared cache, checked again before reuse.

    Ids start again from 1 after the library is set aside or the box restarts (doubtful
    frames), so a browser revalidates (an ETag of the bytes) instead of trusting its copy.
    """
    if not data:
        return error(404, missing)
    response = Response(data, mimetype="image/jpeg", headers={"Cache-Control": "private, no-cache"})
    response.set_etag(hashlib.sha256(data).hexdigest()[:32])
    return response.make_conditional(request)


# -- the gallery --------------------------------------------------------------------------------
@bp.get("/api/examples")
@protected
def examples():
    box = services().box
    class_id = query_number("class", low=0, high=box.num_classes - 1, required=True)
    before = query_number("before", low=1, high=MAX_ID)
    limit = query_number("limit", low=1, high=MAX_PAGE, default=PAGE_SIZE)
    return jsonify(examples_json(box.examples(class_id, before=before, limit=limit), class_id, _crop_url))


@bp.get("/api/examples/<int:example_id>.jpg")
@protected
def crop(example_id: int):
    missing = f"there is no picture of example {example_id}: it was deleted, or it has none"
    if not 1 <= example_id <= MAX_ID:
        return error(404, missing)
    return _jpeg(services().box.example_crop(example_id), missing)


@bp.post("/api/examples/delete")
@protected
def delete():
    ids = id_list(json_body(), MAX_IDS)
    deleted = services().box.delete_examples(ids)
    return jsonify(ok=True, deleted=deleted, asked=len(set(ids)), status=current_status())


@bp.post("/api/examples/move")
@protected
def move():
    box = services().box
    data = json_body()
    ids = id_list(data, MAX_IDS)
    class_id = class_number(data, box.num_classes)
    moved = box.move_examples(ids, class_id)
    return jsonify(ok=True, moved=moved, asked=len(set(ids)), to=class_id, status=current_status())


# -- quality ------------------------------------------------------------------------------------
@bp.get("/api/quality")
def quality():
    return jsonify(quality_json(services().box.quality()))


# -- the inbox of doubtful frames ---------------------------------------------------------------
@bp.get("/api/doubtful")
@protected
def doubtful():
    box = services().box
    return jsonify(doubtful_json(box.doubtful(), _frame_url, box.seconds_ago))


@bp.get("/api/doubtful/<int:frame_id>.jpg")
@protected
def doubtful_picture(frame_id: int):
    try:
        frame = services().box.doubtful_frame(frame_id)
    except FrameGoneError as exc:
        return error(404, str(exc))
    return _jpeg(frame.thumbnail(), f"the doubtful frame {frame_id} has no picture")


@bp.post("/api/doubtful/file")
@protected
def file_doubtful():
    box = services().box
    data = json_body()
    frame_id = positive_id(data)
    class_id = class_number(data, box.num_classes)
    try:
        box.file_doubtful(frame_id, class_id)
    except FrameGoneError as exc:
        return error(404, str(exc), gone=frame_id)
    return jsonify(ok=True, filed=frame_id, to=class_id, status=current_status())


@bp.post("/api/doubtful/dismiss")
@protected
def dismiss_doubtful():
    """Throw a doubtful frame away unfiled: it shows none of the classes (nothing is taught)."""
    frame_id = positive_id(json_body())
    try:
        services().box.dismiss_doubtful(frame_id)
    except FrameGoneError as exc:
        return error(404, str(exc), gone=frame_id)
    return jsonify(ok=True, dismissed=frame_id, status=current_status())
