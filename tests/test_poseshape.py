"""Body-pose features: where the person stands and how big they are do not matter, the pose does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device.poseshape import POSE_FEATURES_DIM, POSE_FEATURES_VERSION, pose_features
from conftest import model_dir_with, shared_data

REPO = Path(__file__).resolve().parent.parent
MODELS = ("pose_detection.tflite", "pose_landmark_full.tflite")
POSES = ("ArdhaChandrasana", "BaddhaKonasana", "Downward_dog")
PER_CLASS = 20
# MediaPipe's left/right landmark pairs (the nose, 0, is alone).
MIRROR = np.arange(33)
for _l, _r in ((1, 4), (2, 5), (3, 6), (7, 8), (9, 10)) + tuple((i, i + 1) for i in range(11, 33, 2)):
    MIRROR[_l], MIRROR[_r] = _r, _l


def poses_dev() -> Path:
    return shared_data("poses-dev", "TEACHBOX_POSES", POSES, f"the yoga pictures ({', '.join(POSES)})")


def load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def landmarker():
    from device.poses import PoseLandmarker

    return PoseLandmarker(model_dir_with(MODELS), num_threads=2)


@pytest.fixture(scope="module")
def yoga(landmarker):
    """(features (n, D), classes (n,), [(picture, pose)]) for the first PER_CLASS pictures of each pose found."""
    root = poses_dev()
    rows, labels, kept = [], [], []
    for c, name in enumerate(POSES):
        count = 0
        for path in sorted((root / name).iterdir()):
            if count == PER_CLASS:
                break
            picture = load(path)
            landmarker.reset()
            pose = landmarker.find(np.asarray(picture))
            if pose is None:
                continue
            rows.append(pose_features(pose))
            labels.append(c)
            kept.append((picture, pose))
            count += 1
    return np.stack(rows), np.array(labels), kept


def a_pose(seed=0):
    """A plausible standing body in picture pixels (from the neutral template, jittered)."""
    from device import poseshape

    rng = np.random.default_rng(seed)
    body = poseshape._NEUTRAL + rng.normal(0, 0.05, (33, 3))
    return (body * 150 + [320, 240, 0]).astype(np.float32)


def test_layout_and_version():
    assert POSE_FEATURES_DIM == 71 and pose_features(a_pose()).shape == (71,)
    assert POSE_FEATURES_VERSION == "pose-body-1"
    assert pose_features(a_pose(), mirror_invariant=False).shape == (71,)


def test_always_finite():
    for landmarks in (np.zeros((33, 3)), np.full((33, 3), np.nan), np.full((33, 3), 1e30)):
        f = pose_features(landmarks)
        assert f.dtype == np.float32 and np.all(np.isfinite(f))
    with pytest.raises(ValueError, match="33"):
        pose_features(np.zeros((21, 3)))


def test_exactly_the_same_wherever_and_however_big():
    body = a_pose().astype(np.float64)
    base = pose_features(body)
    for scale, shift in ((0.3, (10, 500, 7)), (4.0, (-900, 20, -50))):
        np.testing.assert_allclose(pose_features(body * scale + shift), base, atol=1e-4)


def test_a_mirrored_body_is_the_same_pose_unless_asked():
    body = a_pose(1)
    body[15] = body[11] + [0, -200, 0]  # the left hand up
    mirrored = body[MIRROR] * [-1, 1, 1] + [640, 0, 0]
    np.testing.assert_allclose(pose_features(mirrored), pose_features(body), atol=1e-4)
    assert np.linalg.norm(pose_features(mirrored, mirror_invariant=False)
                          - pose_features(body, mirror_invariant=False)) > 0.5


def test_arms_up_is_not_arms_down():
    down = a_pose(2)
    up = down.copy()
    for shoulder, elbow, wrist in ((11, 13, 15), (12, 14, 16)):
        up[elbow] = up[shoulder] + [0, -70, 0]
        up[wrist] = up[shoulder] + [0, -140, 0]
    # ... by much more than two people standing a little differently (every joint moved ~5% of the torso).
    assert np.linalg.norm(pose_features(up) - pose_features(down)) > 4 * np.linalg.norm(
        pose_features(a_pose(3)) - pose_features(down))


def test_an_unseen_joint_does_not_count_where_it_is_guessed():
    class Pose:
        def __init__(self, landmarks, visibility):
            self.landmarks, self.visibility = landmarks, visibility

    body = a_pose(4)
    visibility = np.ones(33, np.float32)
    visibility[16] = 0.0  # the right wrist is hidden
    moved = body.copy()
    moved[16] += [120, -200, 30]
    np.testing.assert_allclose(pose_features(Pose(moved, visibility)), pose_features(Pose(body, visibility)),
                               atol=1e-5)
    visibility[16] = 1.0
    assert np.linalg.norm(pose_features(Pose(moved, visibility)) - pose_features(Pose(body, visibility))) > 0.5


def test_moving_and_shrinking_the_picture_keeps_the_features(landmarker, yoga):
    """A copy of the picture, smaller and elsewhere on clutter: features near the original's,
    and still the same pose to a nearest-centroid head taught on the originals."""
    features, labels, kept = yoga
    others = np.linalg.norm(features[:, None] - features[None], axis=2)[labels[:, None] != labels[None]]
    typical = float(np.median(others))
    mean = features.mean(axis=0)
    unit = (features - mean) / np.linalg.norm(features - mean, axis=1, keepdims=True)
    centroids = np.stack([unit[labels == c].mean(axis=0) for c in range(len(POSES))])
    rng = np.random.default_rng(5)
    drifts = []
    for i in range(0, len(kept), 5):
        picture, _ = kept[i]
        w, h = int(picture.width * 1.6), int(picture.height * 1.6)
        canvas = Image.fromarray(rng.integers(60, 200, (h // 20 + 1, w // 20 + 1, 3), dtype=np.uint8)).resize((w, h))
        canvas.paste(picture.resize((int(picture.width * 0.8), int(picture.height * 0.8))), (w // 3, h // 5))
        landmarker.reset()
        pose = landmarker.find(np.asarray(canvas))
        assert pose is not None, f"picture {i}: nobody found on the smaller copy"
        moved = pose_features(pose)
        drifts.append(float(np.linalg.norm(moved - features[i])))
        assert np.argmax(centroids @ (moved - mean)) == labels[i], f"picture {i}: another pose once moved"
    assert np.median(drifts) < 0.15 * typical, f"features moved by {np.round(drifts, 2)}, poses are {typical:.2f} apart"


def nearest_centroid_accuracy(features, labels, shots, draws=20, seed=0) -> float:
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    right = []
    for _ in range(draws):
        train = np.concatenate([rng.choice(np.flatnonzero(labels == c), shots, replace=False) for c in classes])
        test = np.setdiff1d(np.arange(len(labels)), train)
        z = features - features[train].mean(axis=0)
        z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
        centroids = np.stack([z[train][labels[train] == c].mean(axis=0) for c in classes])
        right.append(np.mean(classes[np.argmax(z[test] @ centroids.T, axis=1)] == labels[test]))
    return float(np.mean(right))


def test_the_three_yoga_poses_are_told_apart_from_a_few_examples(yoga):
    features, labels, _ = yoga
    assert np.bincount(labels).min() >= 15
    # Chance is 1/3; the pictures are of many people, places and sides.
    assert nearest_centroid_accuracy(features, labels, shots=1) >= 0.6
    assert nearest_centroid_accuracy(features, labels, shots=5) >= 0.8
