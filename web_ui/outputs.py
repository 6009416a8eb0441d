"""What the box does with its answers: the rules (read by anyone, changed when unlocked) and the event log.

The rules are ``[[rules]]`` tables as in the config file; the box checks them with the same
messages and keeps them (``rules.json``), unless the config file sets them (then 409).  The
events and their counts per hour or day are open to read, like the status.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from device.box import RULE_MODES, RulesRefused
from device.errors import StateError

from .auth import error, protected
from .context import services
from .payload import json_body

bp = Blueprint("outputs", __name__)

MAX_RULES = 32
MAX_EVENTS = 200
MAX_OFFSET = 14 * 3600  # seconds: UTC-14 .. UTC+14


def rules_json(view) -> dict:
    return {"rules": list(view.tables), "active": list(view.active), "pinned": view.pinned, "modes": list(RULE_MODES)}


@bp.get("/api/rules")
def rules():
    return jsonify(rules_json(services().box.rules()))


@bp.post("/api/rules")
@protected
def set_rules():
    """Run ``{"rules": [tables]}`` from now on: 200 with the rules; 400 with the box's message; 409 if pinned."""
    box = services().box
    tables = json_body().get("rules")
    if not isinstance(tables, list) or len(tables) > MAX_RULES or not all(isinstance(t, dict) for t in tables):
        abort(400, f"'rules' must be a list of up to {MAX_RULES} rules ([[rules]] tables)")
    pinned = box.rules().pinned
    if pinned:
        return error(409, pinned)
    try:
        view = box.set_rules(tables)
    except RulesRefused as exc:
        return error(400, str(exc))
    except StateError as exc:
        return error(503, str(exc))
    return jsonify(rules_json(view))


def _int_arg(name: str, default, low: int, high: int):
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"{name!r} must be a whole number from {low} to {high}")
    if not low <= value <= high:
        abort(400, f"{name!r} must be a whole number from {low} to {high}")
    return value


@bp.get("/api/events")
def events():
    """The newest events first: ``?limit=`` (1 to 200, default 50), ``?before=<id>`` for the next page."""
    limit = _int_arg("limit", 50, 1, MAX_EVENTS)
    before = _int_arg("before", None, 1, 2 ** 62)
    return jsonify(events=services().box.events(limit=limit, before=before))


@bp.get("/api/events/counts")
def counts():
    """Starts per answer per ``?bucket=hour`` (last 24 h) or ``day`` (30 days); ``?offset=`` the viewer's UTC
    offset in seconds; ``?rules=1``: the rules' starts instead of the answers' own."""
    bucket = request.args.get("bucket", "hour")
    if bucket not in ("hour", "day"):
        abort(400, "'bucket' must be hour or day")
    offset = _int_arg("offset", 0, -MAX_OFFSET, MAX_OFFSET)
    of_rules = _int_arg("rules", 0, 0, 1)
    return jsonify(services().box.event_counts(bucket, offset=float(offset), rules=bool(of_rules)))
