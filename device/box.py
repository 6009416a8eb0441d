"""The box as its clients see it: one small public API over the loop, panel, camera and pairing.

The phone page (and any later client: MQTT, rules) uses only this: a typed
:class:`BoxSnapshot`, the teaching requests, export and import, the camera's sources,
the simulated front panel and pairing.  Build one with :func:`device.app.build_box`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .errors import ForeignStateError, PanelError, StateError
from .head import validate_class_name
from .loop import LoopSnapshot, TeachLoop
from .pairing import PairingBroker, PairRequest
from .panel import ButtonName, Panel, PanelView
from .storage import decode_head, encode_head

log = logging.getLogger(__name__)


class ImportRefused(StateError):
    """An uploaded state file cannot be used; nothing was changed."""


@dataclass(frozen=True)
class BoxSnapshot:
    """Everything a status page shows, taken at one moment."""

    loop: LoopSnapshot
    panel: Optional[PanelView]
    pairing: Optional[PairRequest]  # the request waiting for its button, if any


@dataclass(frozen=True)
class ClassCount:
    name: str
    examples: int


class Box:
    """The appliance: run it, ask it things, tell it things (thread-safe).

    :param loop: the :class:`~device.loop.TeachLoop`.
    :param panel: the front panel, or ``None`` (``[panel] gpio = "off"``).
    :param pairing: the :class:`~device.pairing.PairingBroker` the panel approves, or ``None``.
    """

    def __init__(self, loop: TeachLoop, *, panel: Optional[Panel] = None,
                 pairing: Optional[PairingBroker] = None) -> None:
        self.loop = loop
        self.panel = panel
        self.pairing = pairing

    def __repr__(self) -> str:
        return f"<Box {self.loop!r} panel={'none' if self.panel is None else self.panel_kind}>"

    # -- running ---------------------------------------------------------------------------
    def run(self) -> None:
        """Process frames until :meth:`stop` (the loop's thread)."""
        self.loop.run()

    def step(self):
        """Process one frame (tests and tools)."""
        return self.loop.step()

    def stop(self) -> None:
        self.loop.stop()

    def close(self) -> None:
        """Save what was learned, release the camera, the outputs and the pins."""
        self.loop.close()
        if self.panel is not None:
            self.panel.close()

    def add_observer(self, observer) -> None:
        """``observer.update(result)`` after every frame (it must return quickly)."""
        self.loop.add_observer(observer)

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self) -> BoxSnapshot:
        return BoxSnapshot(self.loop.snapshot(),
                           None if self.panel is None else self.panel.view(),
                           None if self.pairing is None else self.pairing.pending())

    @property
    def num_classes(self) -> int:
        return self.loop.head.num_classes

    @property
    def panel_kind(self) -> str:
        return "simulated" if self.panel_simulated else "real"

    @property
    def panel_simulated(self) -> bool:
        return self.panel is not None and self.panel.simulated

    @property
    def can_pair(self) -> bool:
        """A person at the box can approve a browser (there is a panel and a broker)."""
        return self.panel is not None and self.pairing is not None

    # -- teaching ----------------------------------------------------------------------------
    def start_teaching(self, class_id: int, *, lease: float) -> None:
        """A hold from afar: teaching ``class_id`` goes on until stopped or ``lease`` s without renewal."""
        self.loop.start_teaching(class_id, lease=lease)

    def keep_teaching(self, class_id: int, lease: float) -> bool:
        return self.loop.keep_teaching(class_id, lease)

    def stop_teaching(self, class_id: Optional[int] = None) -> None:
        self.loop.stop_teaching(class_id)

    def undo(self) -> Optional[Tuple[int, int]]:
        """``(class, examples removed)`` of the last burst, or ``None`` if there is nothing to undo."""
        return self.loop.undo()

    def clear(self, class_id: int) -> int:
        self.loop.head.check_class(class_id)
        return self.loop.clear(class_id)

    def clear_all(self) -> int:
        """Forget every example; class names stay (as when one class is cleared)."""
        return self.loop.clear_all()

    def rename(self, class_id: int, name: object) -> str:
        self.loop.head.check_class(class_id)
        return self.loop.rename(class_id, validate_class_name(name))

    # -- moving what was learned ----------------------------------------------------------------
    def export_state(self) -> bytes:
        """What was learned, as the file :meth:`import_state` takes."""
        loop = self.loop
        with loop.lock:
            return encode_head(loop.head, loop.model)

    def import_state(self, data: bytes) -> Tuple[ClassCount, ...]:
        """Replace what was learned by an exported file; :class:`ImportRefused` changes nothing."""
        loop = self.loop
        try:
            head = decode_head(data, loop.model, threshold=loop.head.threshold, temperature=loop.head.temperature)
        except ForeignStateError as exc:
            raise ImportRefused("this file was made by a box running another model, so it cannot be used "
                                f"here. Nothing was changed. ({exc})") from None
        except StateError as exc:
            raise ImportRefused("this is not a teachbox export file, or it is damaged. Nothing was changed. "
                                f"({exc})") from None
        loop.replace_head(head)
        return tuple(ClassCount(n, c) for n, c in zip(head.names, head.counts))

    # -- the camera ---------------------------------------------------------------------------
    def latest_frame(self) -> Tuple[int, Optional[np.ndarray]]:
        """``(sequence number, frame)`` of the last processed frame (never written to: do not either)."""
        last = self.loop.last_result
        return (-1, None) if last is None or last.frame is None else (last.seq, last.frame)

    def select_source(self, source: str) -> None:
        """Switch a camera with named sources (the synthetic scene, a folder of folders)."""
        self.loop.camera.select(source)

    # -- the simulated front panel ------------------------------------------------------------
    def press(self, button: ButtonName) -> None:
        """Press a simulated panel button; :class:`PanelError` if the panel is real or absent."""
        self._simulated_panel().press(button)

    def release(self, button: ButtonName) -> None:
        self._simulated_panel().release(button)

    def _simulated_panel(self) -> Panel:
        if self.panel is None:
            raise PanelError("this box has no front panel ([panel] gpio = \"off\")")
        return self.panel
