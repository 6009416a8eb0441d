"""The JSON the page reads: built here from the box's typed snapshot (the shape is the page's)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

from device.box import BoxSnapshot
from device.vocab import AnswerState


def status_json(snapshot: BoxSnapshot, auth: dict) -> dict:
    loop = snapshot.loop
    status = {
        "answer": loop.answer_name if loop.state == AnswerState.OK else loop.state,
        "answer_id": loop.answer_id,
        "state": loop.state,
        "confidence": loop.confidence,
        "sure": loop.sure,
        "classes": [asdict(c) for c in loop.classes],
        "teaching": None if loop.burst is None else loop.burst.class_id,
        "burst": None if loop.burst is None else {
            "class": loop.burst.class_id, "taught": loop.burst.taught, "skipped": loop.burst.skipped,
            "same_picture": loop.burst.same_picture},
        "fps": loop.fps,
        "latency_ms": loop.latency_ms,
        "camera": {**asdict(loop.camera), "sources": list(loop.camera.sources)},
        "uptime_s": loop.uptime_s,
        "saving": {"ok": loop.saving_error is None, "error": loop.saving_error},
        **loop.model,
        "auth": auth,
        "simulated": snapshot.panel is not None and snapshot.panel.simulated,
    }
    if snapshot.panel is not None:
        panel = snapshot.panel
        status["panel"] = {"leds": list(panel.leds), "status_led": panel.status_led, "buttons": list(panel.buttons),
                           "function": panel.function, "simulated": panel.simulated, "pattern": panel.pattern}
    return status


def pairing_json(snapshot: BoxSnapshot, own_request: Optional[str]) -> Optional[dict]:
    """The request waiting for its button (every page shows it); ``code`` is the button, 1-based."""
    pending = snapshot.pairing
    if pending is None:
        return None
    return {"code": pending.code + 1, "expires_in": round(pending.expires_in, 1), "mine": pending.id == own_request}
