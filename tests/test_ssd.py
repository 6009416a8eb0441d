"""device.ssd: MediaPipe's anchors, decoding, weighted NMS and letterbox removal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from device import ssd

REPO = Path(__file__).resolve().parent.parent


def model_dir() -> Path:
    return Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO.parent / "shared" / "models")


@pytest.mark.parametrize("spec,file", [(ssd.PALM, "palm_detection_lite.tflite"),
                                       (ssd.PALM, "palm_detection_full.tflite"),
                                       (ssd.FACE_SHORT_RANGE, "face_detection_short_range.tflite"),
                                       (ssd.POSE, "pose_detection.tflite")])
def test_anchor_count_matches_the_model_outputs(spec, file):
    path = model_dir() / file
    if not path.is_file():
        pytest.skip(f"{file} not found in {model_dir()} (set TEACHBOX_MODEL_MIRROR)")
    from device.tflite_model import TfliteModel

    model = TfliteModel(path, num_threads=1)
    anchors = ssd.ssd_anchors(spec.anchors)
    assert model.input_size == (spec.anchors.input_size_height, spec.anchors.input_size_width)
    assert (1, len(anchors), spec.decode.num_coords) in model.output_shapes
    assert (1, len(anchors), 1) in model.output_shapes


def test_anchor_layout_is_mediapipes():
    anchors = ssd.ssd_anchors(ssd.PALM.anchors)
    assert anchors.shape == (2016, 4)
    # stride 8: 24x24 cells of 2 anchors first, row by row; fixed size 1
    assert np.allclose(anchors[0], [0.5 / 24, 0.5 / 24, 1, 1]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[2, :2], [1.5 / 24, 0.5 / 24])
    assert np.allclose(anchors[1152, :2], [0.5 / 12, 0.5 / 12])  # then stride 16: 12x12 cells of 6
    assert np.allclose(anchors[1152:1158], anchors[1152])
    sized = ssd.ssd_anchors(ssd.AnchorOptions(num_layers=2, min_scale=0.2, max_scale=0.8, input_size_height=16,
                                              input_size_width=16, strides=(8, 16)))
    assert sized.shape == (2 * 2 * 2 + 1 * 2, 4)
    assert np.allclose(sized[0, 2:], 0.2) and np.allclose(sized[1, 2:], np.sqrt(0.2 * 0.8))
    assert np.allclose(sized[-1, 2:], np.sqrt(0.8 * 1.0))


def _raw(anchors, n, hits):
    boxes = np.zeros((len(anchors), n), np.float32)
    logits = np.full(len(anchors), -10.0, np.float32)
    for index, (dx, dy, w, h, logit) in hits.items():
        boxes[index, :4] = [dx, dy, w, h]
        boxes[index, 4:6] = [dx - 10, dy + 10]  # first keypoint
        logits[index] = logit
    return boxes, logits


def test_decode_places_boxes_and_keypoints_on_their_anchor():
    anchors = ssd.ssd_anchors(ssd.PALM.anchors)
    boxes, logits = _raw(anchors, 18, {100: (19.2, 0.0, 38.4, 19.2, 3.0), 7: (0, 0, 10, 10, -3.0)})
    found = ssd.decode(boxes, logits, anchors, ssd.PALM.decode)
    assert len(found) == 1  # sigmoid(-3) < 0.5 is dropped
    cx, cy = anchors[100, 0] + 0.1, anchors[100, 1]
    assert np.allclose(found.boxes[0], [cx - 0.1, cy - 0.05, cx + 0.1, cy + 0.05], atol=1e-6)
    assert np.allclose(found.keypoints[0, 0], [cx - 10 / 192, cy + 10 / 192], atol=1e-6)
    assert found.scores[0] == pytest.approx(1 / (1 + np.exp(-3.0)))
    huge = ssd.decode(*_raw(anchors, 18, {5: (0, 0, 10, 10, 1e6)}), anchors, ssd.PALM.decode)
    assert np.isfinite(huge.scores).all() and huge.scores[0] == pytest.approx(1.0)


def test_weighted_nms_merges_overlaps_and_keeps_the_others():
    boxes = np.array([[0, 0, 1, 1], [0.1, 0, 1.1, 1], [3, 3, 4, 4]], np.float32)
    keypoints = np.array([[[0, 0]], [[1, 1]], [[5, 5]]], np.float32)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    out = ssd.weighted_nms(ssd.Detections(boxes, keypoints, scores), 0.3)
    assert len(out) == 2
    assert out.scores.tolist() == pytest.approx([0.9, 0.7])  # the best one's score, best first
    w = np.array([0.9, 0.6]) / 1.5
    assert np.allclose(out.boxes[0], w @ boxes[[1, 0]])
    assert np.allclose(out.keypoints[0, 0], w @ keypoints[[1, 0], 0])
    assert np.allclose(out.boxes[1], boxes[2])
    assert len(ssd.weighted_nms(ssd.Detections(boxes, keypoints, scores), 0.3, max_detections=1)) == 1
    assert len(ssd.weighted_nms(ssd.Detections.empty(1), 0.3)) == 0


def test_letterbox_removal_undoes_the_padding():
    padding = ssd.letterbox_padding(640, 480, 192, 192)
    assert padding == pytest.approx((0, 0.125, 0, 0.125))
    # a point at frame (320, 120) sits at (0.5, 0.125 + 0.75 * 0.25) of the padded square
    det = ssd.Detections(np.array([[0.25, 0.3125, 0.75, 0.5]], np.float32), np.array([[[0.5, 0.3125]]], np.float32),
                         np.array([0.9], np.float32))
    out = ssd.remove_letterbox(det, padding)
    assert np.allclose(out.keypoints[0, 0], [0.5, 0.25])
    assert np.allclose(out.boxes[0], [0.25, 0.25, 0.75, 0.5])
