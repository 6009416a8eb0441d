"""One person's body pose in a camera frame: MediaPipe's pose detector, then its 33-point pose landmarks.

The pipeline is MediaPipe's own (``mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt``,
``pose_landmark/pose_detection_to_roi.pbtxt``, ``pose_landmarks_to_roi.pbtxt``,
``tensors_to_pose_landmarks_and_segmentation.pbtxt``), with Pillow and numpy instead of OpenCV:

1. *detect* (only when no person is tracked): the frame letterboxed to 224x224, RGB in [-1, 1];
   2254 SSD anchors (strides 8/16/32/32/32, fixed size); sigmoid scores kept from 0.5 (the
   Python solution's default ``min_detection_confidence``); weighted NMS at IoU 0.3; the most
   confident person wins;
2. *rect* (AlignmentPointsRects): centred on keypoint 0 (the hips' centre), side twice the
   distance to keypoint 1 (the full-body circle point), turned so that 0 -> 1 points up
   (target angle 90 degrees), scaled by 1.25, square;
3. *landmarks*: that square cropped to 256x256, RGB in [0, 1]; 33 landmarks (x, y, z,
   visibility, presence; the last two through a sigmoid) mapped back to frame pixels, z in x's
   scale.  The person is there when the pose flag reaches 0.5 (MediaPipe) *and* the landmarks'
   mean visibility reaches :data:`MIN_VISIBLE` (0.5; ours): the detector looks for a face and
   fires on face-like things, and with the flag alone a "person" was found on 6% of the COIL-100
   object photos (toys, mugs with faces), with both on 1%; every person in the poses-dev pictures
   and their half-size copies on clutter kept (a person counts when about half the body shows);
4. *track*: the next frame's rect comes from the two auxiliary landmarks 33 (centre) and 34
   (size and rotation) the same way, so the detector runs again only when the person is lost
   (then at once, on the same frame).  Right after a detection the landmarks are run again on the
   rect they give while it still turns or grows (see :func:`device.landmarker.refine`).

Not done: MediaPipe's heatmap refinement of the landmark positions (a few pixels) and its
temporal smoothing filters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .crops import RotatedRect, normalize_radians, to_input, transform_rect
from .landmarker import TrackedLandmarker, check_frame, detect, model_output, project, refine, sigmoid, smooth_crop
from .ssd import POSE

log = logging.getLogger(__name__)

DETECTOR_MODEL = "pose_detection.tflite"
LANDMARK_MODEL = "pose_landmark_full.tflite"
NUM_LANDMARKS = 33
NUM_ALL = 39                # 33 landmarks + 2 auxiliary (33, 34) + 4 more the graph drops
DETECTION_THRESHOLD = 0.5   # the pose solution's default min_detection_confidence
MIN_VISIBLE = 0.5           # mean visibility of the 33 landmarks from which a person counts (not MediaPipe's)
PRESENCE_THRESHOLD = 0.5    # tensors_to_pose_landmarks_and_segmentation.pbtxt
ROI_SCALE = 1.25            # pose_detection_to_roi / pose_landmarks_to_roi (full body): 1.25, square_long
TARGET_ANGLE = math.pi / 2  # the centre -> size point vector points up

#: MediaPipe's names of the 33 landmarks.
LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)


def alignment_rect(centre, size_point, scale: float = ROI_SCALE) -> RotatedRect:
    """AlignmentPointsRectsCalculator + RectTransformation: a square centred on ``centre`` (frame
    pixels), side ``2 |size_point - centre| * scale``, turned so that centre -> size_point points up."""
    cx, cy = float(centre[0]), float(centre[1])
    dx, dy = float(size_point[0]) - cx, float(size_point[1]) - cy
    side = 2.0 * math.hypot(dx, dy)
    angle = normalize_radians(TARGET_ANGLE - math.atan2(-dy, dx))
    return transform_rect(RotatedRect(cx, cy, side, side, angle), scale_x=scale, scale_y=scale, square_long=True)


@dataclass(frozen=True, eq=False)
class Pose:
    """One person's pose: 33 body landmarks in frame pixels and how visible each is.

    :ivar landmarks: ``(33, 3)`` float32: x, y in frame pixels, z (depth from the hips, smaller =
        nearer) in x's scale.  Order: :data:`LANDMARK_NAMES`.
    :ivar visibility: ``(33,)`` float32, 0..1: the chance each landmark is in the picture and not hidden.
    :ivar score: the landmark model's pose presence, 0..1.
    :ivar rect: the rotated square the landmark model saw, in frame pixels.
    :ivar crop: that square as the 256x256 uint8 RGB picture the model saw.
    """

    landmarks: np.ndarray
    visibility: np.ndarray
    score: float
    rect: RotatedRect
    crop: np.ndarray

    def __repr__(self) -> str:
        return (f"<Pose score={self.score:.2f} centre=({self.rect.cx:.0f}, {self.rect.cy:.0f}) "
                f"size={self.rect.width:.0f} rotation={math.degrees(self.rect.angle):.0f}deg "
                f"visible={int((self.visibility >= 0.5).sum())}/33>")


class PoseLandmarker(TrackedLandmarker):
    """Finds one person per frame and follows them from frame to frame.

    :param model_dir: the folder holding ``pose_detection.tflite`` and ``pose_landmark_full.tflite``.
    :param num_threads: interpreter threads; ``None`` = all cores.
    :param detection_threshold: the detector score (0..1) from which a person counts.
    :param min_visible: the mean visibility of the 33 landmarks from which a person counts (0: any).
    """

    def __init__(self, model_dir, *, num_threads: Optional[int] = None,
                 detection_threshold: float = DETECTION_THRESHOLD, min_visible: float = MIN_VISIBLE) -> None:
        super().__init__(model_dir, DETECTOR_MODEL, LANDMARK_MODEL, spec=POSE, num_threads=num_threads,
                         detection_threshold=detection_threshold)
        self.min_visible = float(min_visible)
        spec = self.decoder.spec.decode
        model_output(self.detector, spec.num_boxes * spec.num_coords, "MediaPipe's pose detector")
        self._points = model_output(self.landmarker, NUM_ALL * 5, "39 pose landmarks x 5")
        self._flag = model_output(self.landmarker, 1, "the pose flag")

    def find(self, frame: np.ndarray) -> Optional[Pose]:
        """The pose of the person in ``frame`` (HxWx3 uint8 RGB, any size), or ``None``."""
        check_frame(frame)
        if self._track is not None:
            pose = self._landmarks(frame, self._track)
            if pose is not None:
                return pose
            self._track = None
        rect = self.detect(frame)
        if rect is None:
            return None
        pose = self._landmarks(frame, rect)
        return None if pose is None else refine(pose, lambda r: self._landmarks(frame, r), lambda: self._track)

    def detect(self, frame: np.ndarray) -> Optional[RotatedRect]:
        """The landmark rect (frame pixels) of the most confident person the detector finds, or ``None``."""
        check_frame(frame)
        found = detect(self.detector, self.decoder, frame, min_score=self.detection_threshold)
        if found is None:
            return None
        _, keypoints, _ = found
        return alignment_rect(keypoints[0], keypoints[1])

    def _landmarks(self, frame: np.ndarray, rect: RotatedRect) -> Optional[Pose]:
        crop, matrix = smooth_crop(frame, rect, self._size)
        to_input(crop, self.landmarker.input, (0.0, 1.0))
        outputs = self.landmarker.run()
        score = float(outputs[self._flag].reshape(-1)[0])
        if not 0.0 <= score <= 1.0:  # a logit, in case a model gives one
            score = sigmoid(score)
        if score < PRESENCE_THRESHOLD:
            return None
        raw = outputs[self._points].reshape(NUM_ALL, 5)
        visibility = 1.0 / (1.0 + np.exp(-np.clip(raw[:NUM_LANDMARKS, 3], -80.0, 80.0)))
        if visibility.mean() < self.min_visible:
            return None
        points = project(raw[:, :3], matrix)
        self._track = alignment_rect(points[33], points[34])
        return Pose(points[:NUM_LANDMARKS].copy(), visibility.astype(np.float32), score, rect, crop)

    def __repr__(self) -> str:
        return (f"<PoseLandmarker models={DETECTOR_MODEL!r}+{LANDMARK_MODEL!r} dir={str(self.model_dir)!r} "
                f"threads={self.num_threads} threshold={self.detection_threshold} min_visible={self.min_visible} "
                f"tracking={self.tracking} "
                f"detector_runs={self.detector.runs}>")
