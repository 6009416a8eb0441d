"""The JSON the page reads: built here from the box's typed snapshot (the shape is the page's)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from device.box import (BoxSnapshot, ExamplePage, LibraryStatus, ModelChoice, QualityReport, SourceChoice,
                        SwitchProgress)
from device.vocab import AnswerState

MAX_CELL_IDS = 500  # example ids listed per confusion cell (as many as one delete or move takes)


def status_json(snapshot: BoxSnapshot, auth: dict, doubtful: Optional[dict] = None,
                sources: Sequence[SourceChoice] = ()) -> dict:
    """The status; ``sources`` (``Box.sources()``) name what the current source looks for."""
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
        "library": library_json(snapshot.library),
        "doubtful": doubtful,
        "model_switch": switch_json(snapshot.model_switch),
        "source": source_json(loop.source, sources),
        "look": look_json(loop.look, loop.source),
    }
    if snapshot.panel is not None:
        panel = snapshot.panel
        status["panel"] = {"leds": list(panel.leds), "status_led": panel.status_led, "buttons": list(panel.buttons),
                           "function": panel.function, "simulated": panel.simulated, "pattern": panel.pattern}
    return status


def source_json(name: str, sources: Sequence[SourceChoice]) -> dict:
    """What the box looks at and what it looks for there (``thing``: "hand"; "picture" for pictures)."""
    thing = next((s.thing for s in sources if s.name == name), name)
    return {"name": name, "thing": thing}


def look_json(look, source: str) -> Optional[dict]:
    """The landmarks of the last frame (:class:`device.sources.Look`) as fractions of the frame, or ``None``.

    A look of another source than ``source`` is of a frame before a switch: none is shown.

    Points are rounded to 4 decimals (a tenth of a pixel of a 640-pixel frame): a face's 468
    points are about 8 kB.
    """
    if look is None or look.kind != source:
        return None
    points = np.round(np.asarray(look.points, dtype=np.float64)[:, :2], 4)
    return {"kind": look.kind, "points": points.tolist(), "edges": [[int(a), int(b)] for a, b in look.edges],
            "score": round(float(look.score), 4)}


def sources_json(sources: Sequence[SourceChoice]) -> dict:
    """What the box can look at (each keeps its own classes and examples) and which it looks at now."""
    current = next((s.name for s in sources if s.current), None)
    return {"sources": [{"name": s.name, "thing": s.thing, "current": s.current} for s in sources],
            "current": current}


def pairing_json(snapshot: BoxSnapshot, own_request: Optional[str]) -> Optional[dict]:
    """The request waiting for its button (every page shows it); ``code`` is the button, 1-based."""
    pending = snapshot.pairing
    if pending is None:
        return None
    return {"code": pending.code + 1, "expires_in": round(pending.expires_in, 1), "mine": pending.id == own_request}


def library_json(library: Optional[LibraryStatus]) -> Optional[dict]:
    """How full the examples library is (``None``: this box keeps no examples)."""
    if library is None:
        return None
    return {"examples": library.examples, "bytes": library.bytes, "max_bytes": library.max_bytes,
            "max_per_class": library.max_per_class, "unwritten": library.unwritten, "notice": library.notice,
            "saving_error": library.saving_error}


def switch_json(progress: Optional[SwitchProgress]) -> Optional[dict]:
    """The last model switch (or re-embedding of imported examples): ``None`` if there was none."""
    if progress is None:
        return None
    return {"model": progress.model, "state": progress.state, "done": progress.done, "total": progress.total,
            "error": progress.error}


def models_json(models: Iterable[ModelChoice], progress: Optional[SwitchProgress]) -> dict:
    """The embedding models the box knows (names and facts only) and the last switch."""
    return {"models": [{"name": m.name, "dim": m.dim, "input_size": m.input_size, "note": m.note,
                        "present": m.present, "current": m.current} for m in models],
            "switch": switch_json(progress)}


def examples_json(page: ExamplePage, class_id: int, thumb: Callable[[int], str]) -> dict:
    """A page of a class's examples, newest first; ``next`` is the ``before`` of the next page."""
    return {"class": class_id, "next": page.next,
            "examples": [{"id": e.id, "class": e.class_id, "taken": round(e.taken, 3), "source": e.source,
                          "thumb": thumb(e.id) if e.has_crop else None} for e in page.examples]}


def quality_json(report: QualityReport) -> dict:
    """Leave-one-out quality per class, the confusion matrix and the example ids of its cells."""
    cells = [{"class": true, "answered": answered, "count": len(ids), "ids": list(ids[:MAX_CELL_IDS])}
             for (true, answered), ids in sorted(report.cells.items())]
    return {"classes": [{"class": q.class_id, "name": q.name, "examples": q.examples, "correct": q.correct,
                         "loo_accuracy": q.loo_accuracy, "confused_with": q.confused_with, "hint": q.hint}
                        for q in report.classes],
            "confusion": [list(row) for row in report.confusion], "cells": cells}


def doubtful_json(frames: Iterable, thumb: Callable[[int], str], age: Callable[[float], float]) -> dict:
    """The frames the box was unsure of, newest first (the best two classes and their cosine scores).

    ``age_s`` is how many seconds ago each was kept (``age(frame.time)``: the box's own clock).
    """
    return {"frames": [{"id": f.id, "thumb": thumb(f.id), "age_s": round(age(f.time), 1), "best": f.best,
                        "best_score": _score(f.best_score), "runner_up": f.runner_up,
                        "runner_up_score": _score(f.runner_up_score), "answer": f.answer, "reason": f.reason}
                       for f in frames]}


def _score(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), 4)
