"""One face in a camera frame: MediaPipe's short-range face detector, then its 468-point face mesh.

The pipeline is MediaPipe's own (``mediapipe/modules/face_detection/face_detection_short_range.pbtxt``,
``face_landmark/face_detection_front_detection_to_roi.pbtxt``, ``face_landmark_landmarks_to_roi.pbtxt``,
``face_landmark_cpu.pbtxt``), with Pillow and numpy instead of OpenCV:

1. *detect* (only when no face is tracked): the frame letterboxed to 128x128, RGB in [-1, 1];
   896 SSD anchors (4 layers, strides 8/16/16/16, fixed size); scores through a sigmoid, kept
   above 0.5; weighted non-maximum suppression at IoU 0.3; the most confident face wins.
   The short-range model wants faces at least ~1/8 of the frame wide; when it finds none, it
   looks again in 9 overlapping squares half the frame's size (ours, ``tiles=True``);
2. *rect*: the detection's box, turned so the line from keypoint 0 (right eye) to keypoint 1
   (left eye) is horizontal, scaled by 1.5 and made square on its long side;
3. *landmarks*: that rotated square cropped to 192x192 (RGB in [0, 1]); the face is there when
   the sigmoid of the model's face flag reaches 0.5; 468 points (x, y, z) mapped back to
   frame pixels (z in the same scale as x);
4. *track*: the next frame's rect comes from these landmarks (their bounding box, turned by the
   line from landmark 33 to 263, scaled by 1.5, square), so the detector runs again only when
   the face is lost.  When a tracked face is lost the detector runs on the same frame at once.
   Right after a detection the landmarks are run again (at most :data:`REFINE_PASSES` times) on
   the rect they give, while it still turns or grows noticeably: the detector's eye keypoints are
   rough on small faces (a face 1/6 of the frame high came out tilted by 28 degrees, and the
   mesh then follows its crop only part of the way), and a still picture has no next frame.

The SSD maths is :mod:`device.ssd`, the crops :mod:`device.crops`, the interpreter
:mod:`device.tflite_model`; the few helpers shared with :mod:`device.poses` are here
(:func:`device.landmarker.detect`, :func:`device.landmarker.smooth_crop`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .crops import RotatedRect, rect_from_box, to_input, transform_rect
from .landmarker import TrackedLandmarker, check_frame, detect, model_output, project, refine, sigmoid, smooth_crop
from .ssd import FACE_SHORT_RANGE

log = logging.getLogger(__name__)

DETECTOR_MODEL = "face_detection_short_range.tflite"
LANDMARK_MODEL = "face_landmark.tflite"
NUM_LANDMARKS = 468
DETECTION_THRESHOLD = 0.5   # face_detection_short_range.pbtxt min_score_thresh
PRESENCE_THRESHOLD = 0.5    # face_landmark_cpu.pbtxt: sigmoid of the face flag >= 0.5
NMS_THRESHOLD = 0.3         # face_detection.pbtxt: weighted NMS, IoU
ROI_SCALE = 1.5             # both rect graphs: scale 1.5, square_long
TRACK_FROM = (33, 263)      # face_landmark_landmarks_to_roi: outer eye corners
TILE_MIN = 192              # tiles only when half the frame's long side is at least this (pixels)


# ---------------------------------------------------------------------------------------------
# Faces
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Face:
    """One face: 468 mesh points in frame pixels, how sure the landmark model is, where it looked.

    :ivar landmarks: ``(468, 3)`` float32: x, y in frame pixels, z (depth, smaller = nearer) in x's scale.
    :ivar score: the landmark model's face presence, 0..1.
    :ivar rect: the rotated square the landmark model saw, in frame pixels.
    :ivar crop: that square as the 192x192 uint8 RGB picture the model saw.
    """

    landmarks: np.ndarray
    score: float
    rect: RotatedRect
    crop: np.ndarray

    def __repr__(self) -> str:
        return (f"<Face score={self.score:.2f} centre=({self.rect.cx:.0f}, {self.rect.cy:.0f}) "
                f"size={self.rect.width:.0f} rotation={math.degrees(self.rect.angle):.0f}deg>")


class FaceLandmarker(TrackedLandmarker):
    """Finds one face per frame and follows it from frame to frame.

    :param model_dir: the folder holding ``face_detection_short_range.tflite`` and ``face_landmark.tflite``.
    :param num_threads: interpreter threads; ``None`` = all cores.
    :param detection_threshold: the detector score (0..1) from which a face counts.
    :param tiles: when the detector finds no face in the whole frame, look again in 9 overlapping
        squares half the frame's size (small faces; 9 more detector runs, only on frames without a face).
    """

    def __init__(self, model_dir, *, num_threads: Optional[int] = None,
                 detection_threshold: float = DETECTION_THRESHOLD, tiles: bool = True) -> None:
        super().__init__(model_dir, DETECTOR_MODEL, LANDMARK_MODEL, spec=FACE_SHORT_RANGE, num_threads=num_threads,
                         detection_threshold=detection_threshold)
        self.tiles = bool(tiles)
        spec = self.decoder.spec.decode
        model_output(self.detector, spec.num_boxes * spec.num_coords, "MediaPipe's short-range face detector")
        self._points = model_output(self.landmarker, NUM_LANDMARKS * 3, "468 face landmarks x 3")
        self._flag = model_output(self.landmarker, 1, "the face flag")

    def find(self, frame: np.ndarray) -> Optional[Face]:
        """The face in ``frame`` (HxWx3 uint8 RGB, any size), or ``None``.

        A face followed from the previous frame is looked for where it was; only when it is
        not there any more does the detector run (on this same frame).
        """
        check_frame(frame)
        if self._track is not None:
            face = self._landmarks(frame, self._track)
            if face is not None:
                return face
            self._track = None
        rect = self.detect(frame)
        if rect is None:
            return None
        face = self._landmarks(frame, rect)
        return None if face is None else refine(face, lambda r: self._landmarks(frame, r), lambda: self._track)

    def detect(self, frame: np.ndarray) -> Optional[RotatedRect]:
        """The landmark rect (frame pixels) of the most confident face the detector finds, or ``None``."""
        check_frame(frame)
        found = detect(self.detector, self.decoder, frame, min_score=self.detection_threshold)
        if found is None and self.tiles:
            found = self._detect_in_tiles(frame)
        if found is None:
            return None
        box, keypoints, _ = found
        rect = rect_from_box(box, keypoints[0], keypoints[1], 0.0)  # right eye -> left eye level
        return transform_rect(rect, scale_x=ROI_SCALE, scale_y=ROI_SCALE, square_long=True)

    def _detect_in_tiles(self, frame: np.ndarray):
        """The detector on a 3x3 grid of overlapping squares, each half the frame's long side: a face
        down to ~1/10 of a 640x480 frame wide (too small for the 128x128 view of the whole frame)."""
        height, width = frame.shape[:2]
        side = max(width, height) // 2
        if side < TILE_MIN:
            return None
        best = None
        for top in np.linspace(0, max(height - side, 0), 3 if height > side else 1).astype(int):
            for left in np.linspace(0, max(width - side, 0), 3 if width > side else 1).astype(int):
                tile = frame[top:top + side, left:left + side]
                found = detect(self.detector, self.decoder, tile, min_score=self.detection_threshold)
                if found is not None and (best is None or found[2] > best[2]):
                    box, keypoints, score = found
                    best = (box + [left, top, left, top], keypoints + [left, top], score)
        return best

    def _landmarks(self, frame: np.ndarray, rect: RotatedRect) -> Optional[Face]:
        crop, matrix = smooth_crop(frame, rect, self._size)
        to_input(crop, self.landmarker.input, (0.0, 1.0))
        outputs = self.landmarker.run()
        score = sigmoid(outputs[self._flag].reshape(-1)[0])
        if score < PRESENCE_THRESHOLD:
            return None
        points = project(outputs[self._points].reshape(NUM_LANDMARKS, 3), matrix)
        self._track = rect_from_landmarks(points)
        return Face(points, score, rect, crop)

    def __repr__(self) -> str:
        return (f"<FaceLandmarker models={DETECTOR_MODEL!r}+{LANDMARK_MODEL!r} dir={str(self.model_dir)!r} "
                f"threads={self.num_threads} threshold={self.detection_threshold} tracking={self.tracking} "
                f"detector_runs={self.detector.runs}>")


def rect_from_landmarks(points: np.ndarray) -> RotatedRect:
    """face_landmark_landmarks_to_roi: the landmarks' bounding box, levelled by 33 -> 263, x1.5, square."""
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    rect = rect_from_box((low[0], low[1], high[0], high[1]), points[TRACK_FROM[0]], points[TRACK_FROM[1]], 0.0)
    return transform_rect(rect, scale_x=ROI_SCALE, scale_y=ROI_SCALE, square_long=True)
