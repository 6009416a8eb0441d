"""Expression features: the same for the same face wherever, however big, turned or mirrored;
clearly different when the face's expression changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device.faceshape import FACE_FEATURE_NAMES, FACE_FEATURES_DIM, FACE_FEATURES_VERSION, canonical_face, face_features
from conftest import model_dir_with, shared_data
REPO = Path(__file__).resolve().parent.parent
MODELS = ("face_detection_short_range.tflite", "face_landmark.tflite")
PHOTOS = ("grace_hopper.bmp", "face.jpg")

try:
    _BICUBIC = Image.Resampling.BICUBIC
    _FLIP = Image.Transpose.FLIP_LEFT_RIGHT
except AttributeError:  # pragma: no cover - old Pillow
    _BICUBIC, _FLIP = Image.BICUBIC, Image.FLIP_LEFT_RIGHT


def faces_dev() -> Path:
    return shared_data("faces-dev", "TEACHBOX_FACES", PHOTOS, f"the face photos {PHOTOS}")


@pytest.fixture(scope="module")
def landmarker():
    from device.faces import FaceLandmarker

    return FaceLandmarker(model_dir_with(MODELS), num_threads=2)


def pasted(image: Image.Image, scale: float, grow: float, at=(0.3, 0.25)) -> Image.Image:
    """``image`` scaled by ``scale`` on a cluttered canvas ``grow`` times its size."""
    rng = np.random.default_rng(1)
    w, h = int(image.width * grow), int(image.height * grow)
    clutter = rng.integers(40, 200, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    canvas = Image.fromarray(clutter).resize((w, h), Image.NEAREST)
    small = image.resize((int(image.width * scale), int(image.height * scale)), _BICUBIC)
    canvas.paste(small, (int(w * at[0] * (1 - scale / grow)), int(h * at[1] * (1 - scale / grow))))
    return canvas


# A smaller face gives the mesh model fewer pixels: face.jpg's face is ~110 px wide, grace_hopper's ~200 px.
SMALLEST = {"grace_hopper.bmp": 0.6, "face.jpg": 0.9}


def variants(image: Image.Image, name: str):
    return {
        "shifted": pasted(image, 1.0, 1.4, at=(0.9, 0.8)),
        "smaller in a bigger picture": pasted(image, SMALLEST[name], 1.5),
        "turned +30": image.rotate(30, _BICUBIC, expand=True),
        "turned -30": image.rotate(-30, _BICUBIC, expand=True),
        "mirrored": image.transpose(_FLIP),
    }


@pytest.fixture(scope="module")
def measured(landmarker):
    """name -> (features of the photo, landmarks, {variant: features})."""
    root = faces_dev()
    out = {}
    for name in PHOTOS:
        with Image.open(root / name) as image:
            image = image.convert("RGB")
        landmarker.reset()
        face = landmarker.find(np.asarray(image))
        assert face is not None
        found = {}
        for what, picture in variants(image, name).items():
            landmarker.reset()
            other = landmarker.find(np.asarray(picture))
            assert other is not None, f"no face on {name} {what}"
            found[what] = face_features(other)
        out[name] = (face_features(face), face.landmarks, found)
    return out


def test_layout_and_version():
    assert FACE_FEATURES_DIM == len(FACE_FEATURE_NAMES) == 27
    assert FACE_FEATURES_VERSION == "face-expression-2"


def test_always_finite():
    for landmarks in (np.zeros((468, 3)), np.full((468, 3), np.nan), np.ones((468, 3)) * 1e30):
        f = face_features(landmarks)
        assert f.shape == (FACE_FEATURES_DIM,) and f.dtype == np.float32 and np.all(np.isfinite(f))
    with pytest.raises(ValueError, match="468"):
        face_features(np.zeros((21, 3)))


def test_exactly_the_same_under_any_rigid_motion_and_size(measured):
    _, landmarks, _ = measured["grace_hopper.bmp"]
    base = face_features(landmarks)
    rng = np.random.default_rng(3)
    for _ in range(5):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        moved = landmarks.astype(np.float64) @ q.T * rng.uniform(0.2, 5.0) + rng.normal(0, 300, 3)
        np.testing.assert_allclose(face_features(moved), base, atol=2e-4)


@pytest.mark.parametrize("name", PHOTOS)
def test_the_same_face_moved_resized_turned_or_mirrored_keeps_its_features(measured, name):
    base, _, found = measured[name]
    for what, features in found.items():
        drift = float(np.linalg.norm(features - base))
        assert drift < 0.6, f"{name} {what}: features moved by {drift:.2f}"


def _deform(landmarks, expression: str) -> np.ndarray:
    """The mesh (in its face frame, unit = eye distance) with a modest synthetic expression."""
    c = canonical_face(landmarks).copy()
    mouth = (c[13] + c[14]) / 2

    def near(index, sigma):
        return np.exp(-np.sum((c - c[index]) ** 2, axis=1) / (2 * sigma ** 2))[:, None]

    if expression == "smile":  # corners up 0.08 and out 0.06 eye distances
        for corner, side in ((61, -1.0), (291, 1.0)):
            c += near(corner, 0.12) * np.array([0.06 * side, -0.08, 0.0])
    elif expression == "mouth open":  # the jaw drops 0.25: everything under the lips' line
        below = np.clip((c[:, 1] - mouth[1]) / 0.05, 0.0, 1.0) * (np.abs(c[:, 0] - mouth[0]) < 1.0)
        c[:, 1] += 0.25 * below
    elif expression == "eyes closed":  # upper lids down onto the lower ones
        for upper, lower in ((159, 145), (158, 153), (160, 144), (386, 374), (385, 380), (387, 373)):
            c += near(upper, 0.04) * (c[lower] - c[upper])
    elif expression == "brows raised":  # the brows 0.1 up (each point by its nearest brow point's weight)
        brows = (70, 63, 105, 66, 107, 300, 293, 334, 296, 336)
        weight = np.max([near(brow, 0.06)[:, 0] for brow in brows], axis=0)
        c[:, 1] -= 0.1 * weight
    elif expression == "frown":  # inner brows down 0.05 and together 0.05
        for brow, side in ((107, 1.0), (336, -1.0)):
            c += near(brow, 0.1) * np.array([0.05 * side, 0.05, 0.0])
    return c


@pytest.mark.parametrize("expression", ["smile", "mouth open", "eyes closed", "brows raised", "frown"])
@pytest.mark.parametrize("name", PHOTOS)
def test_an_expression_moves_the_features_more_than_moving_the_face(measured, name, expression):
    base, landmarks, found = measured[name]
    worst_geometry = max(float(np.linalg.norm(f - base)) for f in found.values())
    change = float(np.linalg.norm(face_features(_deform(landmarks, expression)) - base))
    assert change > 1.5 * worst_geometry, (
        f"{name}: {expression} moved the features by {change:.2f}, the photo's variants by up to {worst_geometry:.2f}")


def test_a_mirrored_expression_is_the_same_expression(measured):
    """A one-sided smile (right corner only) and the same on the left look alike; both unlike neutral."""
    _, landmarks, _ = measured["grace_hopper.bmp"]
    c = canonical_face(landmarks)

    def lift(corner):
        moved = c.copy()
        moved += np.exp(-np.sum((c - c[corner]) ** 2, axis=1) / (2 * 0.12 ** 2))[:, None] * [0, -0.1, 0]
        return face_features(moved)

    right, left, neutral = lift(61), lift(291), face_features(c)
    assert np.linalg.norm(right - left) < 0.35 * np.linalg.norm(right - neutral)
