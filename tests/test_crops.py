"""device.crops: rotated rects, MediaPipe's rect maths and crops that map back to the frame."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.crops import (RotatedRect, crop_matrix, extract_crop, rect_from_box, rect_from_points, to_crop,
                          to_frame, transform_rect)

finite = st.floats(-500, 500)


@settings(max_examples=50, deadline=None)
@given(cx=finite, cy=finite, side=st.floats(5, 400), angle=st.floats(-4, 4), x=st.floats(0, 224),
       y=st.floats(0, 224))
def test_a_point_goes_to_the_crop_and_back(cx, cy, side, angle, x, y):
    matrix = crop_matrix(RotatedRect(cx, cy, side, side * 0.7, angle), 224)
    point = np.array([[x, y, 3.0]])
    there = to_frame(point, matrix)
    assert np.allclose(to_crop(there, matrix), point, atol=1e-6)


def test_crop_centre_and_corners_land_on_the_rect():
    rect = RotatedRect(100, 50, 40, 20, math.pi / 2)
    matrix = crop_matrix(rect, 10)
    assert np.allclose(to_frame(np.array([[5.0, 5.0]]), matrix), [[100, 50]])
    corners = to_frame(np.array([[0.0, 0], [10, 0], [10, 10], [0, 10]]), matrix)
    assert np.allclose(corners, rect.corners())
    assert np.allclose(corners[0], [110, 30])  # turned a quarter clockwise: the crop's top is on the right


def test_extracted_pixels_are_the_frames_pixels_there():
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[20:24, 50:54] = 255  # a white square centred at (52, 22)
    rect = RotatedRect(52, 22, 16, 16, 0.7)
    crop, matrix = extract_crop(frame, rect, 32)
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8
    assert crop[16, 16].min() > 200 and crop[2, 2].max() < 10
    # the crop's brightest pixel maps back onto the white square
    y, x = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    back = to_frame(np.array([[x + 0.5, y + 0.5]]), matrix)[0]
    assert 50 <= back[0] <= 54 and 20 <= back[1] <= 24
    outside, _ = extract_crop(frame, RotatedRect(500, 500, 10, 10), 8, fill=(7, 8, 9))
    assert (outside == [7, 8, 9]).all()


def test_rect_from_box_turns_the_keypoints_upright():
    # wrist left of the finger base: the hand points right, so the crop turns by +90 degrees
    rect = rect_from_box((0, 0, 20, 10), (2, 5), (18, 5), math.pi / 2)
    assert (rect.cx, rect.cy, rect.width, rect.height) == (10, 5, 20, 10)
    assert rect.angle == pytest.approx(math.pi / 2)
    matrix = crop_matrix(rect, 100)
    up = to_crop(np.array([[18.0, 5.0]]), matrix)[0] - to_crop(np.array([[2.0, 5.0]]), matrix)[0]
    assert abs(up[0]) < 1e-9 and up[1] < 0  # the end keypoint is straight above the start in the crop
    assert rect_from_box((0, 0, 4, 4), (2, 4), (2, 0), math.pi / 2).angle == pytest.approx(0)


def test_transform_rect_shifts_along_the_rotated_axes_and_squares():
    rect = RotatedRect(0, 0, 10, 20, math.pi / 2)
    out = transform_rect(rect, scale_x=2, scale_y=2, shift_y=-0.5, square_long=True)
    assert (out.cx, out.cy) == pytest.approx((10, 0))  # "up" of a rect turned 90 degrees is +x
    assert (out.width, out.height) == (40, 40) and out.angle == rect.angle
    assert transform_rect(rect, square_short=True).width == 10


def test_rect_from_points_holds_them_at_its_angle():
    rng = np.random.default_rng(0)
    points = rng.uniform(-30, 30, (21, 2)) + [200, 100]
    for angle in (0.0, 0.4, -2.0):
        rect = rect_from_points(points, angle)
        local = to_crop(points, crop_matrix(rect, 1))
        assert local.min() >= -1e-9 and local.max() <= 1 + 1e-9
        assert np.isclose(local[:, 0].min(), 0) and np.isclose(local[:, 1].max(), 1)
