"""Reading request bodies, one way for every route: bad input is a 400 that says why, never a 500."""

from __future__ import annotations

from typing import List, Optional

from flask import Request, abort, request

MAX_BODY = 2 << 20  # a request's body, except an import's
# An import's file: the examples export is a ZIP of every crop, ~10 kB an example (5,000 are
# ~50 MB).  It is read into memory once (a Pi Zero 2 W has 512 MB); a bigger file goes
# through `teachbox import FILE` on the box, which reads it from the card.
MAX_UPLOAD = 128 << 20
IMPORT_ENDPOINT = "teaching.import_state"
EXPORT_NAME = "teachbox-examples.zip"


class PageRequest(Request):
    """A request whose body may be :data:`MAX_UPLOAD` for an import and :data:`MAX_BODY` elsewhere.

    Decided from the route, which is known before the body is read; a bigger body is a 413
    before any of it is read (chunked ones, as soon as they pass the limit).
    """

    @property
    def max_content_length(self) -> int:
        return MAX_UPLOAD if self.endpoint == IMPORT_ENDPOINT else MAX_BODY


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


MAX_ID = (1 << 62) - 1  # ids past this are not ids (SQLite's integers end at 2**63)


def whole_number(value: object) -> bool:
    """A JSON whole number (``true`` is not one, nor is ``1.0``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def id_list(data: dict, most: int, *, key: str = "ids") -> List[int]:
    """``data[key]``: a list of 1 to ``most`` positive whole numbers (example ids)."""
    ids = data.get(key)
    if not isinstance(ids, list) or not ids:
        abort(400, f"'{key}' must be a list of example ids (whole numbers from 1), not {_shown(ids)}")
    if len(ids) > most:
        abort(400, f"at most {most} examples at a time, not {len(ids)}: send them in parts")
    bad = [i for i in ids if not whole_number(i) or not 1 <= i <= MAX_ID]
    if bad:
        abort(400, f"example ids are whole numbers from 1, not {_shown(bad[0])}")
    return ids


def positive_id(data: dict, key: str = "id") -> int:
    """``data[key]`` as a positive whole number."""
    value = data.get(key)
    if not whole_number(value) or not 1 <= value <= MAX_ID:
        abort(400, f"'{key}' must be a whole number from 1, not {_shown(value)}")
    return value


def query_number(name: str, *, low: int, high: int, default: Optional[int] = None,
                 required: bool = False) -> Optional[int]:
    """The query argument ``name`` as a whole number from ``low`` to ``high`` (``default`` when absent)."""
    text = request.args.get(name)
    if text is None or (text == "" and not required):
        if required:
            abort(400, f"the query needs '{name}' (a whole number from {low} to {high})")
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not low <= int(text) <= high:
        abort(400, f"'{name}' must be a whole number from {low} to {high}, not {_shown(text)}")
    return int(text)


def _shown(value: object, most: int = 40) -> str:
    """``repr`` of a value for an error message, cut short (a request may send megabytes)."""
    text = repr(value)
    return text if len(text) <= most else text[:most] + "\u2026"
