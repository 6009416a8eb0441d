"""What the face and pose landmarkers share: one detector, one landmark model, a track between frames.

MediaPipe's face and pose graphs have the same shape: an SSD detector on the letterboxed frame
finds the thing, a rect around it is cropped for the landmark model, and the next frame's rect
comes from this frame's landmarks, so the detector runs only when the thing is lost.  The
helpers here are that shape's steps; :class:`TrackedLandmarker` holds the two models and the track.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from .crops import RotatedRect, extract_crop, normalize_radians, to_frame, to_input
from .errors import ModelError
from .ssd import SsdDecoder
from .tflite_model import TfliteModel

REFINE_PASSES = 5           # landmark passes after a detection, while the rect still moves
REFINE_ANGLE = math.radians(1.0)
REFINE_SIZE = 0.02


class TrackedLandmarker:
    """A detector, a landmark model and the rect followed from frame to frame (``None``: lost).

    :param model_dir: the folder holding ``detector_file`` and ``landmark_file``.
    :param detection_threshold: the detector score (0..1) from which the thing counts.
    """

    def __init__(self, model_dir, detector_file: str, landmark_file: str, *, spec,
                 num_threads: Optional[int], detection_threshold: float) -> None:
        if not 0.0 < detection_threshold < 1.0:
            raise ValueError(f"detection_threshold must be between 0 and 1, not {detection_threshold!r}")
        self.model_dir = Path(model_dir)
        self.detection_threshold = float(detection_threshold)
        self.detector = TfliteModel(self.model_dir / detector_file, num_threads=num_threads)
        self.landmarker = TfliteModel(self.model_dir / landmark_file, num_threads=num_threads)
        self.num_threads = self.detector.num_threads
        self.decoder = SsdDecoder(spec)
        self._size = self.landmarker.input_size[0]
        self._track: Optional[RotatedRect] = None

    @property
    def tracking(self) -> bool:
        """True while the thing from the previous frame is followed (the detector is not needed)."""
        return self._track is not None

    @property
    def detector_runs(self) -> int:
        return self.detector.runs

    @property
    def sha256s(self) -> dict:
        """The model files it runs (name -> sha256): what the examples it gave are stored under."""
        return {model.path.name: model.sha256 for model in (self.detector, self.landmarker)}

    def reset(self) -> None:
        """Forget what was followed: the next frame runs the detector."""
        self._track = None


def check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB frame, got shape {getattr(frame, 'shape', None)} "
                         f"dtype {getattr(frame, 'dtype', None)}")


def smooth_crop(frame: np.ndarray, rect: RotatedRect, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`device.crops.extract_crop` (black outside the frame), but a rect much larger than the
    crop is sampled from the frame shrunk by a whole factor first (a box filter), so it does not alias.
    ``(crop, matrix)``: the matrix takes crop pixels to frame pixels.
    """
    factor = int(min(rect.width, rect.height) / size / 1.5)
    if factor < 2:
        return extract_crop(frame, rect, size)
    small = Image.fromarray(np.ascontiguousarray(frame)).reduce(factor)
    shrunk = RotatedRect(rect.cx / factor, rect.cy / factor, rect.width / factor, rect.height / factor, rect.angle)
    crop, matrix = extract_crop(small, shrunk, size)
    return crop, matrix * factor


def detect(model: TfliteModel, decoder: SsdDecoder, frame: np.ndarray, *,
           min_score: Optional[float] = None) -> Optional[Tuple[np.ndarray, ...]]:
    """Run an SSD detector on the whole frame (letterboxed, as MediaPipe's ImageToTensor with keep_aspect_ratio).

    ``(box, keypoints, score)`` of the most confident detection after weighted NMS, box and
    keypoints in frame pixels; ``None`` when nothing scores ``min_score`` (default: the spec's threshold).
    """
    height, width = frame.shape[:2]
    size = model.input_size[0]
    crop, matrix = smooth_crop(frame, RotatedRect.square_around(width, height), size)
    to_input(crop, model.input, decoder.spec.input_range)
    boxes, scores = model.run()[:2]
    # Logits beyond +-80 change nothing; clipped here, float32 exp(100) would warn of an overflow.
    found = decoder(boxes, np.clip(scores, -80.0, 80.0), min_score=min_score, max_detections=1)
    if not len(found):
        return None
    box = to_frame(found.boxes[0].reshape(2, 2) * size, matrix).reshape(4)
    keypoints = to_frame(found.keypoints[0] * size, matrix)
    return box, keypoints, float(found.scores[0])


def refine(found, landmarks, track):
    """Re-run ``landmarks(rect)`` on the rect ``track()`` gives after ``found`` while that rect still
    turns by more than :data:`REFINE_ANGLE` or changes size by more than :data:`REFINE_SIZE`
    (at most :data:`REFINE_PASSES` times); the last result found."""
    for _ in range(REFINE_PASSES):
        rect, nxt = found.rect, track()
        if nxt is None:
            break
        turn = abs(normalize_radians(nxt.angle - rect.angle))
        if turn <= REFINE_ANGLE and abs(nxt.width / max(rect.width, 1e-6) - 1.0) <= REFINE_SIZE:
            break
        again = landmarks(nxt)
        if again is None:
            break
        found = again
    return found


def model_output(model: TfliteModel, size: int, what: str) -> int:
    """The index of ``model``'s output with ``size`` values, or a :class:`ModelError` saying what is wrong."""
    try:
        return model.output_index(size=size)
    except ModelError as exc:
        raise ModelError(f"{exc} ({what})") from None


def sigmoid(x) -> float:
    return 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, float(x)))))


def project(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Crop-pixel (x, y, z) -> frame pixels, z scaled like x and y; float32."""
    return to_frame(points, matrix).astype(np.float32)
