"""The phone page: live status, teaching from the phone, and the simulated front panel.

``create_app(test_config=None, *, loop=None, ...)`` is a Flask app factory, as in
Flask's tutorial.  The page polls ``GET /api/status`` and ``GET /api/frame.jpg``;
every action is a ``POST /api/...`` that needs an unlocked session (pairing with the
function button, or a PIN), a CSRF token and a same-origin request.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
