"""SSD detector maths as MediaPipe does it: anchors, decoding, weighted NMS, letterbox removal.

Pure numpy, no I/O, vectorised over anchors.  It follows MediaPipe's calculators
(``SsdAnchorsCalculator``, ``TensorsToDetectionsCalculator``,
``NonMaxSuppressionCalculator`` with ``WEIGHTED``, ``DetectionLetterboxRemovalCalculator``)
and the options of its published graphs (``palm_detection_cpu.pbtxt``,
``face_detection_short_range.pbtxt``, ``pose_detection_cpu.pbtxt``), collected below as
``PALM``, ``FACE_SHORT_RANGE`` and ``POSE``.

Coordinates are normalised to the detector's input (0..1, x right, y down).  Boxes
are ``(xmin, ymin, xmax, ymax)``; keypoints ``(x, y)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class AnchorOptions:
    """MediaPipe's ``SsdAnchorsCalculatorOptions`` (same names, same defaults)."""

    num_layers: int
    min_scale: float
    max_scale: float
    input_size_height: int
    input_size_width: int
    strides: Tuple[int, ...]
    aspect_ratios: Tuple[float, ...] = (1.0,)
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    fixed_anchor_size: bool = False
    interpolated_scale_aspect_ratio: float = 1.0  # MediaPipe's proto default: one extra anchor per layer
    reduce_boxes_in_lowest_layer: bool = False


@dataclass(frozen=True)
class DecodeOptions:
    """MediaPipe's ``TensorsToDetectionsCalculatorOptions`` for one class."""

    num_boxes: int
    num_coords: int
    num_keypoints: int
    x_scale: float
    y_scale: float
    w_scale: float
    h_scale: float
    box_coord_offset: int = 0
    keypoint_coord_offset: int = 4
    num_values_per_keypoint: int = 2
    reverse_output_order: bool = True
    sigmoid_score: bool = True
    score_clipping_thresh: Optional[float] = 100.0
    min_score_thresh: float = 0.5
    apply_exponential_on_box_size: bool = False


@dataclass(frozen=True)
class DetectorSpec:
    """Everything a MediaPipe SSD detector graph fixes: anchors, decoding and NMS."""

    anchors: AnchorOptions
    decode: DecodeOptions
    nms_threshold: float = 0.3
    input_range: Tuple[float, float] = (0.0, 1.0)  # the float range pixels 0..255 map to


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1.0)


def ssd_anchors(options: AnchorOptions) -> np.ndarray:
    """(N, 4) float32 anchors ``(x_center, y_center, w, h)``, in MediaPipe's order."""
    strides = list(options.strides)
    if len(strides) != options.num_layers:
        raise ValueError(f"{len(strides)} strides given for {options.num_layers} layers")
    blocks = []
    layer = 0
    while layer < options.num_layers:
        heights, widths = [], []
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:  # same stride: anchors merged
            scale = _scale(options.min_scale, options.max_scale, last, len(strides))
            if last == 0 and options.reduce_boxes_in_lowest_layer:
                pairs = [(1.0, 0.1), (2.0, scale), (0.5, scale)]
            else:
                pairs = [(ratio, scale) for ratio in options.aspect_ratios]
                if options.interpolated_scale_aspect_ratio > 0.0:
                    following = 1.0 if last == len(strides) - 1 else _scale(
                        options.min_scale, options.max_scale, last + 1, len(strides))
                    pairs.append((options.interpolated_scale_aspect_ratio, math.sqrt(scale * following)))
            for ratio, s in pairs:
                heights.append(s / math.sqrt(ratio))
                widths.append(s * math.sqrt(ratio))
            last += 1
        stride = strides[layer]
        rows = math.ceil(options.input_size_height / stride)
        cols = math.ceil(options.input_size_width / stride)
        per_cell = len(heights)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        block = np.empty((rows, cols, per_cell, 4), dtype=np.float64)
        block[..., 0] = ((xs + options.anchor_offset_x) / cols)[..., None]
        block[..., 1] = ((ys + options.anchor_offset_y) / rows)[..., None]
        if options.fixed_anchor_size:
            block[..., 2:] = 1.0
        else:
            block[..., 2] = np.asarray(widths)
            block[..., 3] = np.asarray(heights)
        blocks.append(block.reshape(-1, 4))
        layer = last
    return np.concatenate(blocks).astype(np.float32)


@dataclass
class Detections:
    """``n`` detections: ``boxes`` (n, 4) xmin, ymin, xmax, ymax; ``keypoints`` (n, K, 2) x, y; ``scores`` (n,)."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index) -> "Detections":
        index = np.atleast_1d(np.arange(len(self))[index])
        return Detections(self.boxes[index], self.keypoints[index], self.scores[index])

    @classmethod
    def empty(cls, num_keypoints: int) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, num_keypoints, 2), np.float32), np.zeros(0, np.float32))

    @classmethod
    def concatenate(cls, parts: Sequence["Detections"], num_keypoints: int) -> "Detections":
        if not parts:
            return cls.empty(num_keypoints)
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.keypoints for p in parts]),
                   np.concatenate([p.scores for p in parts]))


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, options: DecodeOptions,
           *, min_score: Optional[float] = None) -> Detections:
    """The model's raw tensors -> detections scoring at least ``min_score`` (default: the options'), best first."""
    raw = np.asarray(raw_boxes, dtype=np.float32).reshape(-1, options.num_coords)
    logits = np.asarray(raw_scores, dtype=np.float32).reshape(-1)
    if raw.shape[0] != anchors.shape[0] or logits.shape[0] != anchors.shape[0]:
        raise ValueError(f"{raw.shape[0]} boxes and {logits.shape[0]} scores for {anchors.shape[0]} anchors")
    if options.score_clipping_thresh is not None:
        logits = np.clip(logits, -options.score_clipping_thresh, options.score_clipping_thresh)
    scores = 1.0 / (1.0 + np.exp(-logits)) if options.sigmoid_score else logits
    threshold = options.min_score_thresh if min_score is None else min_score
    keep = np.flatnonzero(scores >= threshold)
    raw, a, scores = raw[keep], anchors[keep], scores[keep]
    b = options.box_coord_offset
    first, second = raw[:, b], raw[:, b + 1]
    size_a, size_b = raw[:, b + 2], raw[:, b + 3]
    if options.reverse_output_order:
        xc, yc, w, h = first, second, size_a, size_b
    else:
        yc, xc, h, w = first, second, size_a, size_b
    xc = xc / options.x_scale * a[:, 2] + a[:, 0]
    yc = yc / options.y_scale * a[:, 3] + a[:, 1]
    if options.apply_exponential_on_box_size:
        w = np.exp(w / options.w_scale) * a[:, 2]
        h = np.exp(h / options.h_scale) * a[:, 3]
    else:
        w = w / options.w_scale * a[:, 2]
        h = h / options.h_scale * a[:, 3]
    boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)
    k = options.keypoint_coord_offset
    kp = raw[:, k:k + options.num_keypoints * options.num_values_per_keypoint]
    kp = kp.reshape(-1, options.num_keypoints, options.num_values_per_keypoint)[:, :, :2]
    if not options.reverse_output_order:
        kp = kp[:, :, ::-1]
    keypoints = np.empty_like(kp)
    keypoints[:, :, 0] = kp[:, :, 0] / options.x_scale * a[:, None, 2] + a[:, None, 0]
    keypoints[:, :, 1] = kp[:, :, 1] / options.y_scale * a[:, None, 3] + a[:, None, 1]
    valid = (w >= 0) & (h >= 0)  # MediaPipe drops boxes of negative size
    order = np.argsort(-scores[valid], kind="stable")
    return Detections(boxes[valid][order].astype(np.float32), keypoints[valid][order].astype(np.float32),
                      scores[valid][order].astype(np.float32))


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with each of ``boxes`` (0 when they do not overlap)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(detections: Detections, threshold: float, *, max_detections: Optional[int] = None) -> Detections:
    """MediaPipe's WEIGHTED non-max suppression with IoU overlap.

    The best remaining detection and every remaining one overlapping it by more than
    ``threshold`` form a cluster; the output keeps the best one's score with the
    score-weighted mean box and keypoints of the cluster.  Best first.
    """
    order = np.argsort(-detections.scores, kind="stable")
    boxes = detections.boxes[order].astype(np.float64)
    kps = detections.keypoints[order].astype(np.float64)
    scores = detections.scores[order].astype(np.float64)
    remaining = np.arange(len(order))
    out_boxes, out_kps, out_scores = [], [], []
    while remaining.size and (max_detections is None or len(out_scores) < max_detections):
        top = remaining[0]
        overlap = iou(boxes[top], boxes[remaining]) > threshold
        overlap[0] = True
        members = remaining[overlap]
        weights = scores[members]
        total = weights.sum()
        out_boxes.append(weights @ boxes[members] / total)
        out_kps.append(np.tensordot(weights, kps[members], axes=1) / total)
        out_scores.append(scores[top])
        remaining = remaining[~overlap]
    if not out_scores:
        return Detections.empty(detections.keypoints.shape[1])
    return Detections(np.asarray(out_boxes, np.float32), np.asarray(out_kps, np.float32),
                      np.asarray(out_scores, np.float32))


def letterbox_padding(src_width: int, src_height: int, dst_width: int, dst_height: int) -> Tuple[float, ...]:
    """``(left, top, right, bottom)`` padding, as fractions of the destination, of fitting
    a ``src`` image into ``dst`` keeping its aspect ratio and centring it (MediaPipe's
    ``keep_aspect_ratio``)."""
    src_aspect = src_height / src_width
    dst_aspect = dst_height / dst_width
    if src_aspect > dst_aspect:  # taller: pad left and right
        horizontal = (1.0 - dst_aspect / src_aspect) / 2.0
        return (horizontal, 0.0, horizontal, 0.0)
    vertical = (1.0 - src_aspect / dst_aspect) / 2.0
    return (0.0, vertical, 0.0, vertical)


def remove_letterbox(detections: Detections, padding: Sequence[float]) -> Detections:
    """Detections on the padded input -> on the unpadded image (``DetectionLetterboxRemovalCalculator``)."""
    left, top, right, bottom = padding
    sx, sy = 1.0 - left - right, 1.0 - top - bottom
    offset = np.array([left, top], np.float32)
    scale = np.array([sx, sy], np.float32)
    boxes = ((detections.boxes.reshape(-1, 2, 2) - offset) / scale).reshape(-1, 4)
    keypoints = (detections.keypoints - offset) / scale
    return Detections(boxes.astype(np.float32), keypoints.astype(np.float32), detections.scores.copy())


@dataclass
class SsdDecoder:
    """Anchors computed once for a :class:`DetectorSpec`; :meth:`__call__` = decode + weighted NMS."""

    spec: DetectorSpec
    anchors: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.anchors = ssd_anchors(self.spec.anchors)
        if self.anchors.shape[0] != self.spec.decode.num_boxes:
            raise ValueError(f"the anchor options give {self.anchors.shape[0]} anchors, the decoding expects "
                             f"{self.spec.decode.num_boxes}")

    def __call__(self, raw_boxes, raw_scores, *, min_score: Optional[float] = None,
                 max_detections: Optional[int] = None) -> Detections:
        found = decode(raw_boxes, raw_scores, self.anchors, self.spec.decode, min_score=min_score)
        return weighted_nms(found, self.spec.nms_threshold, max_detections=max_detections)


def _anchors(size: int, strides: Tuple[int, ...]) -> AnchorOptions:
    return AnchorOptions(num_layers=len(strides), min_scale=0.1484375, max_scale=0.75, input_size_height=size,
                         input_size_width=size, strides=strides, fixed_anchor_size=True)


def _decode(boxes: int, keypoints: int, size: int) -> DecodeOptions:
    return DecodeOptions(num_boxes=boxes, num_coords=4 + 2 * keypoints, num_keypoints=keypoints,
                         x_scale=size, y_scale=size, w_scale=size, h_scale=size)


#: palm_detection_cpu.pbtxt (lite and full models): 192x192, 2016 anchors, 7 palm keypoints
#: (0 wrist, 2 middle-finger base).
PALM = DetectorSpec(_anchors(192, (8, 16, 16, 16)), _decode(2016, 7, 192))
#: face_detection_short_range.pbtxt: 128x128, 896 anchors, 6 keypoints, input in [-1, 1].
FACE_SHORT_RANGE = DetectorSpec(_anchors(128, (8, 16, 16, 16)), _decode(896, 6, 128), input_range=(-1.0, 1.0))
#: pose_detection_cpu.pbtxt: 224x224, 2254 anchors, 4 keypoints, input in [-1, 1].
POSE = DetectorSpec(_anchors(224, (8, 16, 32, 32, 32)), _decode(2254, 4, 224), input_range=(-1.0, 1.0))
