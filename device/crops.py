"""Rotated crops of a frame, as MediaPipe's landmark graphs make them (numpy and Pillow only).

A :class:`RotatedRect` lives in frame pixels (continuous coordinates: pixel ``i``
covers ``[i, i + 1)``, so a normalised coordinate times the frame size is a pixel
coordinate).  Its ``angle`` is MediaPipe's ``rotation`` in radians: the crop's
"up" points along ``(sin a, -cos a)`` in the frame (y down), so ``a = 0`` is upright
and ``a = pi/2`` means the crop's top is on the frame's right.

:func:`crop_matrix` is the 2x3 matrix taking crop pixels to frame pixels;
:func:`extract_crop` samples the frame through it (bilinear, border filled) and
:func:`to_frame` / :func:`to_crop` move points between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

try:  # Pillow >= 9.1
    _AFFINE = Image.Transform.AFFINE
    _BILINEAR = Image.Resampling.BILINEAR
except AttributeError:  # pragma: no cover - old Pillow
    _AFFINE = Image.AFFINE
    _BILINEAR = Image.BILINEAR


def normalize_radians(angle: float) -> float:
    """``angle`` in [-pi, pi) (MediaPipe's NormalizeRadians)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


@dataclass(frozen=True)
class RotatedRect:
    """A rectangle in frame pixels: centre, size, and rotation ``angle`` in radians (see module doc)."""

    cx: float
    cy: float
    width: float
    height: float
    angle: float = 0.0

    def corners(self) -> np.ndarray:
        """(4, 2) frame pixels of the crop's top-left, top-right, bottom-right, bottom-left corners."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [self.width / 2, self.height / 2]
        return half @ np.array([[c, s], [-s, c]]) + [self.cx, self.cy]

    @classmethod
    def square_around(cls, width: int, height: int) -> "RotatedRect":
        """The square letterbox of a ``width`` x ``height`` frame: centred, side = the longer side."""
        side = float(max(width, height))
        return cls(width / 2.0, height / 2.0, side, side, 0.0)


def rect_from_box(box: Sequence[float], start: Sequence[float], end: Sequence[float],
                  target_angle: float) -> RotatedRect:
    """MediaPipe's DetectionsToRects with a rotation vector: the box (xmin, ymin, xmax, ymax)
    and two keypoints in frame pixels; the rect turns so ``start -> end`` points along
    ``target_angle`` (radians, counter-clockwise from the frame's x axis; pi/2 = up)."""
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    angle = normalize_radians(target_angle - math.atan2(-(end[1] - start[1]), end[0] - start[0]))
    return RotatedRect((xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin, angle)


def transform_rect(rect: RotatedRect, *, scale_x: float = 1.0, scale_y: float = 1.0, shift_x: float = 0.0,
                   shift_y: float = 0.0, square_long: bool = False, square_short: bool = False) -> RotatedRect:
    """MediaPipe's RectTransformation in pixels: shift along the rect's own (rotated) axes by
    fractions of its size, make it square (long or short side), then scale."""
    c, s = math.cos(rect.angle), math.sin(rect.angle)
    dx, dy = rect.width * shift_x, rect.height * shift_y
    cx = rect.cx + dx * c - dy * s
    cy = rect.cy + dx * s + dy * c
    width, height = rect.width, rect.height
    if square_long:
        width = height = max(width, height)
    elif square_short:
        width = height = min(width, height)
    return RotatedRect(cx, cy, width * scale_x, height * scale_y, rect.angle)


def rect_from_points(points: np.ndarray, angle: float) -> RotatedRect:
    """The smallest rect at ``angle`` holding every point (frame pixels), as MediaPipe's
    HandLandmarksToRect computes it."""
    pts = np.asarray(points, np.float64)[:, :2]
    centre = (pts.max(axis=0) + pts.min(axis=0)) / 2
    c, s = math.cos(angle), math.sin(angle)
    # coordinates along the rect's own axes (x' = R(-angle) p)
    local = (pts - centre) @ np.array([[c, -s], [s, c]])
    lo, hi = local.min(axis=0), local.max(axis=0)
    mid = (lo + hi) / 2
    cx = centre[0] + mid[0] * c - mid[1] * s
    cy = centre[1] + mid[0] * s + mid[1] * c
    return RotatedRect(float(cx), float(cy), float(hi[0] - lo[0]), float(hi[1] - lo[1]), angle)


def crop_matrix(rect: RotatedRect, size: int) -> np.ndarray:
    """2x3 float64 matrix taking pixel coordinates of a ``size`` x ``size`` crop of ``rect`` to frame pixels."""
    c, s = math.cos(rect.angle), math.sin(rect.angle)
    a = np.array([[c, -s], [s, c]]) @ np.diag([rect.width / size, rect.height / size])
    t = np.array([rect.cx, rect.cy]) - a @ np.array([size / 2.0, size / 2.0])
    return np.hstack([a, t[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    a = np.linalg.inv(matrix[:, :2])
    return np.hstack([a, (-a @ matrix[:, 2])[:, None]])


def to_frame(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Crop pixels (n, 2+) -> frame pixels; extra columns (z) are scaled by the crop's scale."""
    pts = np.asarray(points, np.float64)
    out = np.empty_like(pts)
    out[:, :2] = pts[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    if pts.shape[1] > 2:
        out[:, 2:] = pts[:, 2:] * math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return out


def to_crop(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Frame pixels -> crop pixels (the inverse of :func:`to_frame`)."""
    return to_frame(points, invert_affine(matrix))


def extract_crop(frame, rect: RotatedRect, size: int, *, fill: Tuple[int, int, int] = (0, 0, 0)
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """``(crop, matrix)``: a ``size`` x ``size`` uint8 RGB crop of ``frame`` (an HxWx3 uint8
    array or a Pillow RGB image) along ``rect``, bilinear, ``fill`` outside the frame, and
    the :func:`crop_matrix` taking its pixels back to the frame."""
    image = frame if isinstance(frame, Image.Image) else Image.fromarray(np.ascontiguousarray(frame))
    matrix = crop_matrix(rect, size)
    data = tuple(float(v) for v in matrix.reshape(-1))
    crop = image.transform((size, size), _AFFINE, data, resample=_BILINEAR, fillcolor=tuple(fill))
    return np.asarray(crop), matrix


def to_input(crop: np.ndarray, out: np.ndarray, value_range: Tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """uint8 pixels -> a float model input in ``value_range`` written into ``out`` (no new arrays)."""
    low, high = value_range
    target = out.reshape(crop.shape)
    np.multiply(crop, np.float32((high - low) / 255.0), out=target, casting="unsafe")
    if low:
        target += np.float32(low)
    return out
