"""The pose landmarker on real pictures: people found, nobody where there is nobody, tracked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device.errors import ModelMissingError
from device.ssd import POSE, SsdDecoder
from conftest import model_dir_with, shared_data

REPO = Path(__file__).resolve().parent.parent
MODELS = ("pose_detection.tflite", "pose_landmark_full.tflite")
POSES = ("ArdhaChandrasana", "BaddhaKonasana", "Downward_dog")


def poses_dev() -> Path:
    return shared_data("poses-dev", "TEACHBOX_POSES", POSES, f"the yoga pictures ({', '.join(POSES)})")


def load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def pictures(root: Path):
    """[(class index, path)] of every picture in poses-dev."""
    return [(c, p) for c, name in enumerate(POSES) for p in sorted((root / name).iterdir()) if p.is_file()]


@pytest.fixture(scope="module")
def landmarker():
    from device.poses import PoseLandmarker

    return PoseLandmarker(model_dir_with(MODELS), num_threads=2)


@pytest.fixture(scope="module")
def found(landmarker):
    """[(class, path, pose or None)] for every other poses-dev picture, each found from scratch."""
    out = []
    for c, path in pictures(poses_dev())[::2]:
        landmarker.reset()
        out.append((c, path, landmarker.find(load(path))))
    return out


def test_the_detector_has_one_anchor_per_model_box(landmarker):
    decoder = SsdDecoder(POSE)
    assert landmarker.detector.output_shapes[landmarker.detector.output_index(size=2254 * 12)] == (1, 2254, 12)
    assert decoder.anchors.shape == (2254, 4)


def test_a_pose_is_found_on_most_yoga_pictures(found):
    for c, name in enumerate(POSES):
        mine = [pose for k, _, pose in found if k == c]
        rate = np.mean([pose is not None for pose in mine])
        assert len(mine) >= 25 and rate >= 0.9, f"{name}: a pose on {rate:.0%} of {len(mine)} pictures"


def test_found_poses_are_whole_and_in_the_picture(found):
    for _, path, pose in found:
        if pose is None:
            continue
        assert pose.landmarks.shape == (33, 3) and pose.landmarks.dtype == np.float32
        assert pose.visibility.shape == (33,) and np.all((pose.visibility >= 0) & (pose.visibility <= 1))
        assert pose.crop.shape == (256, 256, 3) and pose.crop.dtype == np.uint8
        assert 0.5 <= pose.score <= 1.0
        with Image.open(path) as image:
            width, height = image.size
        sure = pose.visibility >= 0.8
        xy = pose.landmarks[sure, :2]
        margin = 0.05 * max(width, height)
        assert np.all(xy >= -margin) and np.all(xy <= np.array([width, height]) + margin), path.name


def test_in_downward_dog_the_hips_are_above_the_head(found):
    dogs = [pose for c, _, pose in found if POSES[c] == "Downward_dog" and pose is not None]
    above = np.mean([pose.landmarks[[23, 24], 1].mean() < pose.landmarks[0, 1] for pose in dogs])
    assert above >= 0.9


def test_nobody_on_blank_frames(landmarker):
    for value in (0, 128, 255):
        landmarker.reset()
        assert landmarker.find(np.full((480, 640, 3), value, np.uint8)) is None
    landmarker.reset()
    assert landmarker.find(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)) is None


def test_nobody_on_coil_objects(landmarker, coil100):
    frames = sorted(coil100.glob("obj*/*.png"))[::11]
    people = 0
    for path in frames:
        landmarker.reset()
        people += landmarker.find(load(path)) is not None
    assert len(frames) > 300
    assert people / len(frames) <= 0.03, f"a person on {people} of {len(frames)} object photos"


def test_a_tracked_person_runs_the_detector_once(landmarker):
    root = poses_dev()
    frame = load(sorted((root / "BaddhaKonasana").iterdir())[0])
    landmarker.reset()
    before = landmarker.detector_runs
    poses = [landmarker.find(frame) for _ in range(6)]
    assert all(pose is not None for pose in poses)
    assert landmarker.detector_runs == before + 1 and landmarker.tracking
    assert np.abs(poses[-1].landmarks[:, :2] - poses[-2].landmarks[:, :2]).max() < 0.03 * max(frame.shape)
    assert landmarker.find(np.zeros_like(frame)) is None and not landmarker.tracking
    runs = landmarker.detector_runs
    landmarker.find(frame)
    landmarker.reset()
    landmarker.find(frame)
    assert landmarker.detector_runs == runs + 2


def test_errors(tmp_path, landmarker):
    from device.poses import PoseLandmarker

    with pytest.raises(ModelMissingError, match="pose_detection.tflite"):
        PoseLandmarker(tmp_path)
    with pytest.raises(ValueError, match="detection_threshold"):
        PoseLandmarker(tmp_path, detection_threshold=1.5)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        landmarker.find(np.zeros((10, 10, 4), np.uint8))
    assert "detector_runs=" in repr(landmarker)
