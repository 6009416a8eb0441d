"""The embedding model the box runs, and switching it.

Which models the box knows and which are here are names and facts only, open like the
status.  A switch needs an unlocked page: every stored example is embedded again with
the new model in the background (the box goes on answering with the old one until that
is done), and the status's ``model_switch`` tells how far it is.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify

from device.box import SwitchRefused
from device.errors import ModelError

from .auth import error, protected
from .context import services
from .payload import json_body
from .status import current_status
from .views import models_json, switch_json

bp = Blueprint("model", __name__)

MAX_NAME = 200  # characters of a model's name (the known ones have about 55)


@bp.get("/api/models")
def models():
    box = services().box
    return jsonify(models_json(box.models(), box.snapshot().model_switch))


@bp.post("/api/model")
@protected
def switch():
    """Start a switch: 202 with its progress; 409 when the box cannot switch to it now (the message says why).

    A model file that is here but cannot be loaded (damaged, cut short) is a 409 too: the
    request is sound and the box is fine on its old model, but this file has to be fetched
    again first (the message names the command).
    """
    box = services().box
    name = json_body().get("model")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        abort(400, "'model' must be the name of a model, as GET /api/models lists them")
    try:
        box.switch_model(name)
    except (SwitchRefused, ModelError) as exc:
        return error(409, str(exc))
    response = jsonify(ok=True, switch=switch_json(box.snapshot().model_switch), status=current_status())
    response.status_code = 202
    return response
