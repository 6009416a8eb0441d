"""Reading request bodies, one way for every route: bad input is a 400 that says why, never a 500."""

from __future__ import annotations

from typing import Optional

from flask import abort, request


def json_body(*, optional: bool = False) -> dict:
    """The request's JSON object; ``{}`` for an empty body when ``optional``.

    Malformed, non-object or absurdly nested JSON (Python's parser gives up with a
    RecursionError) is refused with 400.
    """
    if optional and not request.get_data(cache=True):
        return {}
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        data = None
    if not isinstance(data, dict):
        abort(400, "expected a JSON object in the request body")
    return data


def class_number(data: dict, num_classes: int, *, required: bool = True) -> Optional[int]:
    """``data["class"]`` as a class number from 0 to ``num_classes - 1`` (or ``None`` if optional and absent)."""
    if not required and "class" not in data:
        return None
    value = data.get("class")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < num_classes:
        abort(400, f"'class' must be a class number from 0 to {num_classes - 1}, not {value!r}")
    return value
