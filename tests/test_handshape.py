"""device.handshape: hand features that ignore where, how big, how turned and which hand."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device.handshape import HAND_FEATURES_DIM, HAND_FEATURES_VERSION, hand_features, landmark_features

REPO = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO.parent / "shared" / "models")
HANDS = Path(os.environ.get("TEACHBOX_HANDS") or REPO.parent / "shared" / "data" / "hands-dev")


@pytest.fixture(scope="module")
def landmarker():
    for name in ("palm_detection_full.tflite", "hand_landmark_full.tflite"):
        if not (MODELS / name).is_file():
            pytest.skip(f"MediaPipe model {name} not found in {MODELS} (set TEACHBOX_MODEL_MIRROR)")
    if not HANDS.is_dir():
        pytest.skip(f"hands-dev photos not found at {HANDS} (set TEACHBOX_HANDS)")
    from device.hands import HandLandmarker

    return HandLandmarker(MODELS, num_threads=2)


def photo(sign, index=0):
    return np.asarray(Image.open(sorted((HANDS / sign).glob("*.jpg"))[index]).convert("RGB"))


def features_of(landmarker, frame):
    landmarker.reset()
    hand = landmarker.find(frame)
    assert hand is not None
    return hand_features(hand)


def unit_distance(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_dims_version_and_always_finite():
    assert HAND_FEATURES_DIM == 225 and isinstance(HAND_FEATURES_VERSION, str) and HAND_FEATURES_VERSION
    rng = np.random.default_rng(0)
    points = rng.normal(size=(21, 3))
    x = landmark_features(points)
    assert x.shape == (HAND_FEATURES_DIM,) and x.dtype == np.float32 and np.isfinite(x).all()
    assert np.isfinite(landmark_features(np.zeros((21, 3)))).all()
    assert np.isfinite(landmark_features(np.full((21, 3), np.nan))).all()
    with pytest.raises(ValueError):
        landmark_features(np.zeros((20, 3)))


def test_exactly_invariant_to_moving_scaling_turning_and_mirroring_the_points():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(21, 3)) * 30 + 100
    angle = 0.9
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    moved = (points @ turn.T) * 2.5 + [40, -7, 0]
    mirrored = points * [-1, 1, 1]
    base = landmark_features(points)
    assert np.allclose(landmark_features(moved), base, atol=1e-5)
    assert np.allclose(landmark_features(mirrored), base, atol=1e-5)


def test_the_same_photo_moved_scaled_turned_or_mirrored_gives_close_features(landmarker):
    frame = photo("paper", 0)
    base = features_of(landmarker, frame)
    canvas = Image.new("RGB", (640, 480), (40, 140, 50))
    bigger = canvas.copy()
    bigger.paste(Image.fromarray(frame).resize((450, 300)), (150, 120))
    smaller = canvas.copy()
    smaller.paste(Image.fromarray(frame), (20, 250))
    turned = Image.fromarray(frame).rotate(35, resample=Image.BILINEAR, expand=True, fillcolor=tuple(frame[0, 0]))
    variants = {"moved and scaled up": np.asarray(bigger), "moved": np.asarray(smaller),
                "turned 35 degrees": np.asarray(turned), "mirrored": frame[:, ::-1].copy()}
    other = features_of(landmarker, photo("rock", 0))
    different = unit_distance(other, base)
    for name, picture in variants.items():
        close = unit_distance(features_of(landmarker, picture), base)
        assert close < 0.1, f"{name}: {close:.3f}"
        assert close < different / 3, f"{name}: {close:.3f} vs another sign {different:.3f}"


def test_different_signs_are_further_apart_than_the_same_sign(landmarker):
    signs = {}
    for sign in ("rock", "paper", "scissors"):
        hands = [landmarker.find(photo(sign, i)) for i in range(6) if not landmarker.reset()]
        signs[sign] = [hand_features(h) for h in hands if h is not None]
        assert len(signs[sign]) >= 4
    within = [unit_distance(a, b) for v in signs.values() for i, a in enumerate(v) for b in v[i + 1:]]
    between = [unit_distance(a, b) for s, v in signs.items() for t, w in signs.items() if s < t
               for a in v for b in w]
    assert np.median(between) > 2 * np.median(within)
