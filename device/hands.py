"""One hand's 21 landmarks in a camera frame, with MediaPipe's palm detector and hand landmark model.

The pipeline follows MediaPipe's hand graphs (palm_detection_cpu, palm_detection_detection_to_roi,
hand_landmark_cpu, hand_landmark_landmarks_to_roi):

1. TRACK: when the previous frame had a hand, its landmarks give this frame's crop
   (rotation wrist -> mean of the index/middle/ring bases, scale 2.0, shift_y -0.1,
   square); the palm detector does not run.
2. PALM: otherwise the palm detector (full by default) runs on the letterboxed frame (192x192); the best
   palm gives a crop (rotation wrist kp 0 -> middle-finger base kp 2 to upright,
   scale 2.6, shift_y -0.5, square).
3. CLOSE-UP: when no palm is found, the landmark model looks at the whole frame (its
   letterbox square, upright, then turned 90, -90 and 180 degrees: at most 4 runs) and
   a hand it is sure of is refined once on the crop its own landmarks give.
4. TILES: when still nothing, the palm detector runs on overlapping zoomed squares of the
   frame (at most ``tiles_per_frame`` of them per call, round-robin over calls) for
   hands too small for the whole-frame pass.

Every hand is kept only when the landmark model's presence score passes
``min_presence``.  Nothing here logs per frame.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

from . import ssd
from .crops import (RotatedRect, extract_crop, normalize_radians, rect_from_box, rect_from_points, to_frame,
                    to_input, transform_rect)
from .errors import ModelError
from .tflite_model import TfliteModel

log = logging.getLogger(__name__)

PALM_LITE = "palm_detection_lite.tflite"
PALM_FULL = "palm_detection_full.tflite"
LANDMARK_FULL = "hand_landmark_full.tflite"
LANDMARK_LITE = "hand_landmark_lite.tflite"
NUM_LANDMARKS = 21
CROP_SIZE = 224
WRIST, THUMB_TIP, INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP = 0, 4, 5, 9, 13, 17
FINGERTIPS = (4, 8, 12, 16, 20)
#: wrist and the two lower joints of each finger: steadier than the tips for the next frame's crop
_TRACK_SUBSET = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])
_Z_NORMALIZATION = 0.4  # hand_landmark_cpu.pbtxt TensorsToLandmarks normalize_z


@dataclass(frozen=True)
class Hand:
    """One hand found in a frame.

    :ivar landmarks: (21, 3) float32 frame pixels x, y and depth z in the same scale as
        x (MediaPipe's z: relative to the wrist, smaller = nearer the camera).
    :ivar world: (21, 3) float32 metres around the hand's centre, or ``None``.
    :ivar handedness: the model's handedness output: the probability that the hand looks
        like a right hand in the picture as given (a real right hand for an unmirrored
        camera such as the box's).  MediaPipe assumes a mirrored selfie picture and
        reports this same number as its "Left" score.  Mirroring the picture turns p
        into about 1 - p.
    :ivar score: the landmark model's hand presence probability.
    :ivar rect: the rotated crop the landmark model saw (frame pixels).
    :ivar crop: that crop, (224, 224, 3) uint8 RGB.
    :ivar source: how it was found: "track", "palm", "close-up" or "tile".
    """

    landmarks: np.ndarray
    world: Optional[np.ndarray]
    handedness: float
    score: float
    rect: RotatedRect
    crop: np.ndarray
    source: str = "palm"


def palm_rect(box: np.ndarray, keypoints: np.ndarray) -> RotatedRect:
    """The landmark crop for one palm detection (frame pixels): palm_detection_detection_to_roi."""
    rect = rect_from_box(box, keypoints[0], keypoints[2], math.pi / 2)
    return transform_rect(rect, scale_x=2.6, scale_y=2.6, shift_y=-0.5, square_long=True)


def landmarks_rotation(landmarks: np.ndarray) -> float:
    """MediaPipe's HandLandmarksToRect rotation: wrist -> mean of (mean of index and ring bases, middle base)."""
    wrist = landmarks[WRIST, :2]
    end = ((landmarks[INDEX_MCP, :2] + landmarks[RING_MCP, :2]) / 2 + landmarks[MIDDLE_MCP, :2]) / 2
    return normalize_radians(math.pi / 2 - math.atan2(-(end[1] - wrist[1]), end[0] - wrist[0]))


def track_rect(landmarks: np.ndarray) -> RotatedRect:
    """The next frame's crop from this frame's landmarks: hand_landmark_landmarks_to_roi."""
    rect = rect_from_points(landmarks[_TRACK_SUBSET, :2], landmarks_rotation(landmarks))
    return transform_rect(rect, scale_x=2.0, scale_y=2.0, shift_y=-0.1, square_long=True)


def tile_rects(width: int, height: int, *, zoom: float = 2.0, overlap: float = 0.25) -> List[RotatedRect]:
    """Overlapping upright squares covering a ``width`` x ``height`` frame, each ``zoom`` times
    smaller than its letterbox square (side ``max(width, height) / zoom``, at most the short side)."""
    side = min(max(width, height) / zoom, float(min(width, height)))
    step = side * (1.0 - overlap)

    def centres(extent: float) -> np.ndarray:
        count = max(1, math.ceil((extent - side) / step - 1e-9) + 1)
        return np.linspace(side / 2, extent - side / 2, count) if count > 1 else np.array([extent / 2])

    return [RotatedRect(float(x), float(y), side, side, 0.0) for y in centres(height) for x in centres(width)]


def _probability(value: float) -> float:
    """The models' score outputs are probabilities already (sigmoid inside); a value outside
    [0, 1] is taken as a logit, so either kind of file works."""
    if 0.0 <= value <= 1.0:
        return value
    return float(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, value)))))


_TURNS = (0.0, math.pi / 2, -math.pi / 2, math.pi)  # the close-up's turns of the frame, fingers up first
# The close-up looks at the frame's square zoomed out this much (the outside filled): the landmark
# model was trained on crops with a margin around the hand (MediaPipe's rects are 2x the hand's
# landmarks, 2.6x its palm), and a hand that fills the frame has none.  On close-ups cut from
# hands-dev photos, 53% were found with the square as it is, 80% zoomed out 1.6x (75-80% from 1.4x to 1.8x);
# the square as it is still finds more of the hands that fill half the frame, so both are tried.
CLOSE_UP_ZOOM = 1.6
_CLOSE_UPS = tuple((zoom, angle) for angle in _TURNS for zoom in (CLOSE_UP_ZOOM, 1.0))


class HandLandmarker:
    """Finds one hand per frame and tracks it.

    :param model_dir: folder with the MediaPipe files (palm_detection_lite/full, hand_landmark_full/lite).
    :param num_threads: interpreter threads per model; ``None`` = all cores.
    :param lite: use hand_landmark_lite (about twice as fast, a little less accurate).
    :param full_palm: palm_detection_full (default: finds far more small hands in clutter for
        about 1.3x the time of palm_detection_lite) or, when false, palm_detection_lite.
    :param min_detection: palm detector score threshold (MediaPipe's 0.5).
    :param min_presence: hand presence threshold for a landmark result (MediaPipe's 0.5).
    :param close_up: look at the whole frame with the landmark model when no palm is found.
    :param min_close_up: presence threshold for that (no palm detection backs it up).
    :param tiles: run the palm detector on zoomed tiles when nothing else found a hand.
    :param tile_zoom: how much smaller a tile is than the frame's letterbox square.
    :param tiles_per_frame: while no hand is in view, at most this many tiles per :meth:`find`
        (round-robin over calls); ``None`` = the whole tile set every time.
    :param turns_per_frame: likewise, the close-up looks (four turns, two zooms) tried per call.

    The first call after :meth:`reset` (a picture on its own, as in evaluation) searches
    everything at once.  A camera's stream of frames without a hand spreads the search over
    frames instead, so that a frame costs at most one whole-frame palm search,
    ``turns_per_frame`` landmark runs and ``tiles_per_frame`` tile searches: a hand that
    comes into view is found within a few frames, and a box with nobody in front of it
    stays at a bounded cost.
    """

    def __init__(self, model_dir, *, num_threads: Optional[int] = None, lite: bool = False,
                 full_palm: bool = True, min_detection: float = 0.5, min_presence: float = 0.5,
                 close_up: bool = True, min_close_up: float = 0.5, tiles: bool = True, tile_zoom: float = 2.0,
                 tiles_per_frame: Optional[int] = 2, turns_per_frame: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.palm = TfliteModel(self.model_dir / (PALM_FULL if full_palm else PALM_LITE), num_threads=num_threads)
        self.landmark = TfliteModel(self.model_dir / (LANDMARK_LITE if lite else LANDMARK_FULL),
                                    num_threads=num_threads)
        self.lite = lite
        self.min_detection = float(min_detection)
        self.min_presence = float(min_presence)
        self.close_up = close_up
        self.min_close_up = float(min_close_up)
        self.tiles = tiles
        self.tile_zoom = float(tile_zoom)
        self.tiles_per_frame = tiles_per_frame
        self.turns_per_frame = max(1, int(turns_per_frame))
        self._decoder = ssd.SsdDecoder(ssd.PALM)
        self._check_models()
        self._track: Optional[RotatedRect] = None
        self._next_tile = 0
        self._next_turn = 0
        self._fresh = True  # nothing was searched since reset(): search everything at once
        self.palm_runs = 0  # palm detector invocations (whole frame and tiles)
        self.landmark_runs = 0
        log.info("hand landmarker ready: %s + %s", self.palm.path.name, self.landmark.path.name)

    def _check_models(self) -> None:
        size = self.palm.input_size
        if size != (192, 192) or len(self.palm.outputs) != 2:
            raise ModelError(f"{self.palm.path.name} is not a MediaPipe palm detector (input {size})")
        n = self._decoder.anchors.shape[0]
        self._palm_boxes = self.palm.output_index(size=n * 18)
        self._palm_scores = self.palm.output_index(size=n)
        if self.landmark.input_size != (CROP_SIZE, CROP_SIZE):
            raise ModelError(f"{self.landmark.path.name} is not a MediaPipe hand landmark model "
                             f"(input {self.landmark.input_size})")
        # hand_landmark_cpu.pbtxt splits the outputs in the model's order: landmarks, presence,
        # handedness, world landmarks (Identity, Identity_1, Identity_2, Identity_3).
        self._lm_points = self.landmark.output_index(size=63, nth=0)
        self._lm_world = self.landmark.output_index(size=63, nth=1)
        self._lm_presence = self.landmark.output_index(size=1, nth=0)
        self._lm_handedness = self.landmark.output_index(size=1, nth=1)

    # -- the public interface -------------------------------------------------------------------

    @property
    def sha256s(self) -> dict:
        """The model files it runs (name -> sha256): what the examples it gave are stored under."""
        return {model.path.name: model.sha256 for model in (self.palm, self.landmark)}

    def reset(self) -> None:
        """Forget the tracked hand (call between unrelated pictures)."""
        self._track = None
        self._next_tile = 0
        self._next_turn = 0
        self._fresh = True

    @property
    def tracking(self) -> bool:
        return self._track is not None

    def find(self, frame: np.ndarray) -> Optional[Hand]:
        """The hand in ``frame`` (HxWx3 uint8 RGB, any size), or ``None``."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got {getattr(frame, 'shape', type(frame))} "
                             f"{getattr(frame, 'dtype', '')}")
        height, width = frame.shape[:2]
        image = Image.fromarray(np.ascontiguousarray(frame))
        hand = None
        if self._track is not None:
            hand = self._landmarks(image, self._track, "track", self.min_presence)
        if hand is None:
            hand = self._from_palms(image, RotatedRect.square_around(width, height), "palm")
        full, self._fresh = self._fresh, False
        if hand is None and self.close_up:
            hand = self._close_up(image, width, height, len(_CLOSE_UPS) if full else self.turns_per_frame)
        if hand is None and self.tiles:
            hand = self._from_tiles(image, width, height, None if full else self.tiles_per_frame)
        self._track = track_rect(hand.landmarks) if hand is not None else None
        return hand

    def detect_palms(self, frame, region: Optional[RotatedRect] = None) -> List[Tuple[float, RotatedRect]]:
        """``(score, landmark crop rect)`` of every palm in ``region`` (default: the whole frame), best first."""
        image = frame if isinstance(frame, Image.Image) else Image.fromarray(np.ascontiguousarray(frame))
        region = region or RotatedRect.square_around(*image.size)
        crop, matrix = extract_crop(image, region, 192)
        to_input(crop, self.palm.input)
        outputs = self.palm.run()
        self.palm_runs += 1
        found = self._decoder(outputs[self._palm_boxes], outputs[self._palm_scores], min_score=self.min_detection)
        rects = []
        for box, keypoints, score in zip(found.boxes, found.keypoints, found.scores):
            corners = to_frame(box.reshape(2, 2) * 192.0, matrix)
            points = to_frame(keypoints * 192.0, matrix)
            rects.append((float(score), palm_rect(corners.reshape(-1), points)))
        return rects

    def landmarks_in(self, frame, rect: RotatedRect) -> Optional[Hand]:
        """The hand landmark model on one crop, ``None`` when its presence is below ``min_presence``."""
        image = frame if isinstance(frame, Image.Image) else Image.fromarray(np.ascontiguousarray(frame))
        return self._landmarks(image, rect, "palm", self.min_presence)

    # -- the steps ------------------------------------------------------------------------------

    def _landmarks(self, image: Image.Image, rect: RotatedRect, source: str, threshold: float) -> Optional[Hand]:
        crop, matrix = extract_crop(image, rect, CROP_SIZE)
        to_input(crop, self.landmark.input)
        outputs = self.landmark.run()
        self.landmark_runs += 1
        score = _probability(float(outputs[self._lm_presence].reshape(-1)[0]))
        if score < threshold:
            return None
        raw = outputs[self._lm_points].reshape(NUM_LANDMARKS, 3).astype(np.float64)
        raw[:, 2] /= _Z_NORMALIZATION
        landmarks = to_frame(raw, matrix).astype(np.float32)
        world = outputs[self._lm_world].reshape(NUM_LANDMARKS, 3).astype(np.float64)
        c, s = math.cos(rect.angle), math.sin(rect.angle)
        world[:, :2] = world[:, :2] @ np.array([[c, s], [-s, c]])  # WorldLandmarkProjection: undo the crop's turn
        handedness = _probability(float(outputs[self._lm_handedness].reshape(-1)[0]))
        return Hand(landmarks, world.astype(np.float32), handedness, score, rect, np.array(crop), source)

    def _from_palms(self, image: Image.Image, region: RotatedRect, source: str) -> Optional[Hand]:
        for _, rect in self.detect_palms(image, region)[:2]:  # the best two palms at most
            hand = self._landmarks(image, rect, source, self.min_presence)
            if hand is not None:
                return hand
        return None

    def _close_up(self, image: Image.Image, width: int, height: int, turns: int) -> Optional[Hand]:
        whole = RotatedRect.square_around(width, height)
        # the landmark model wants the fingers up: try the frame's square turned (up to) four ways
        for _ in range(min(turns, len(_CLOSE_UPS))):
            zoom, angle = _CLOSE_UPS[self._next_turn]
            self._next_turn = (self._next_turn + 1) % len(_CLOSE_UPS)
            rect = RotatedRect(whole.cx, whole.cy, whole.width * zoom, whole.height * zoom, angle)
            rough = self._landmarks(image, rect, "close-up", self.min_close_up)
            if rough is not None:  # the crop the hand's own landmarks give: upright and tight
                return self._landmarks(image, track_rect(rough.landmarks), "close-up", self.min_close_up)
        return None

    def _from_tiles(self, image: Image.Image, width: int, height: int, per_call: Optional[int]) -> Optional[Hand]:
        rects = tile_rects(width, height, zoom=self.tile_zoom)
        count = len(rects) if per_call is None else min(len(rects), per_call)
        for _ in range(count):
            region = rects[self._next_tile % len(rects)]
            self._next_tile = (self._next_tile + 1) % len(rects)
            hand = self._from_palms(image, region, "tile")
            if hand is not None:
                return hand
        return None

    def describe(self) -> dict:
        return {
            "palm_model": self.palm.describe(),
            "landmark_model": self.landmark.describe(),
            "min_detection": self.min_detection,
            "min_presence": self.min_presence,
            "close_up": self.close_up,
            "tiles": self.tiles,
            "tile_zoom": self.tile_zoom,
            "tiles_per_frame": self.tiles_per_frame,
        }

    def __repr__(self) -> str:
        return (f"<HandLandmarker palm={self.palm.path.name!r} landmark={self.landmark.path.name!r} "
                f"tracking={self.tracking} close_up={self.close_up} tiles={self.tiles} "
                f"palm_runs={self.palm_runs} landmark_runs={self.landmark_runs}>")
