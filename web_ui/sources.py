"""What the box looks at: the whole picture, a hand, a face or a body pose.

Which sources there are is open like the status (names only).  Switching needs an
unlocked page, as every change does: each source keeps its own classes and examples,
so a switch loses nothing and switching back brings them back.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify

from device.box import SwitchRefused

from .auth import error, protected
from .context import services
from .payload import json_body
from .status import current_status
from .views import sources_json

bp = Blueprint("sources", __name__)

MAX_NAME = 40  # characters of a source's name (the known ones have at most 7)


@bp.get("/api/sources")
def sources():
    return jsonify(sources_json(services().box.sources()))


@bp.post("/api/source")
@protected
def switch():
    """Look at ``{"source": name}`` from the next frame on: 200 with the new status; 409 when the box refuses."""
    box = services().box
    name = json_body().get("source")
    known = [s.name for s in box.sources()]
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        abort(400, "'source' must be what the box looks at, as GET /api/sources lists them: " + ", ".join(known))
    if name not in known:
        abort(400, f"the box cannot look at {name!r}; it can look at: {', '.join(known)}")
    try:
        box.switch_source(name)
    except SwitchRefused as exc:  # pinned by the config, a model file to fetch, a model switch going on
        return error(409, str(exc))
    return jsonify(ok=True, source=box.source, status=current_status())
