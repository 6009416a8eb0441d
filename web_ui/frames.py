"""The live view: the box's latest frame as a JPEG, encoded only when asked and once per frame."""

from __future__ import annotations

import io
import threading
from typing import Optional

from PIL import Image

JPEG_MAX_SIDE = 480


class FrameTap:
    """JPEGs of ``box.latest_frame()``: every client asking for the same frame shares one encoding."""

    def __init__(self, box) -> None:
        self._box = box
        self._lock = threading.Lock()
        self._jpeg = (None, b"")  # (seq, bytes)

    def jpeg(self) -> Optional[bytes]:
        seq, frame = self._box.latest_frame()
        if frame is None:
            return None
        with self._lock:
            if self._jpeg[0] != seq:
                image = Image.fromarray(frame)
                if max(image.size) > JPEG_MAX_SIDE:
                    image.thumbnail((JPEG_MAX_SIDE, JPEG_MAX_SIDE))
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=75)
                self._jpeg = (seq, buffer.getvalue())
            return self._jpeg[1]
