"""The face landmarker on real photos: found where a face is, nothing where none is, tracked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device.errors import ModelError, ModelMissingError
from device.ssd import FACE_SHORT_RANGE, SsdDecoder
from conftest import model_dir_with, shared_data

REPO = Path(__file__).resolve().parent.parent
MODELS = ("face_detection_short_range.tflite", "face_landmark.tflite")
PHOTOS = ("grace_hopper.bmp", "face.jpg")
# COIL-100 objects that are figurines with a face (a cat, a lucky cat, an alien head): a face there is fair.
FACE_LIKE_OBJECTS = {"obj014", "obj017", "obj020"}


def faces_dev() -> Path:
    return shared_data("faces-dev", "TEACHBOX_FACES", PHOTOS, f"the face photos {PHOTOS}")


def load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def landmarker():
    from device.faces import FaceLandmarker

    return FaceLandmarker(model_dir_with(MODELS), num_threads=2)


@pytest.fixture(scope="module")
def photos():
    root = faces_dev()
    return {name: load(root / name) for name in PHOTOS}


def test_the_detector_has_one_anchor_per_model_box(landmarker):
    decoder = SsdDecoder(FACE_SHORT_RANGE)
    assert landmarker.detector.output_shapes[landmarker.detector.output_index(size=896 * 16)] == (1, 896, 16)
    assert decoder.anchors.shape == (896, 4)


@pytest.mark.parametrize("name", PHOTOS)
def test_a_face_is_found_on_each_photo_with_its_parts_in_place(landmarker, photos, name):
    landmarker.reset()
    frame = photos[name]
    face = landmarker.find(frame)
    assert face is not None, f"no face found on {name}"
    assert face.landmarks.shape == (468, 3) and face.landmarks.dtype == np.float32
    assert face.crop.shape == (192, 192, 3) and face.crop.dtype == np.uint8
    assert 0.5 <= face.score <= 1.0
    points = face.landmarks
    eyes_y = points[[33, 133, 159, 263, 362, 386], 1].mean()
    mouth_y = points[[13, 14, 61, 291], 1].mean()
    nose_y = points[1, 1]
    chin_y = points[152, 1]
    assert eyes_y < nose_y < mouth_y < chin_y
    assert points[33, 0] < points[1, 0] < points[263, 0]  # the person's right eye is on the picture's left
    # Every point inside the square the model looked at, and the face fills a good part of it.
    corners = face.rect.corners()
    low, high = corners.min(axis=0), corners.max(axis=0)
    assert np.all(points[:, :2] >= low) and np.all(points[:, :2] <= high)
    span = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
    assert 0.35 * face.rect.width < span[0] < face.rect.width
    # The crop is the face: its middle is the nose, in frame pixels.
    assert abs(face.rect.cx - points[1, 0]) < 0.15 * face.rect.width


def test_a_small_face_far_off_is_found_in_the_tiles(landmarker, photos):
    """A face ~1/10 of the frame wide: too small for the detector's 128x128 view of the whole frame."""
    image = Image.fromarray(photos["grace_hopper.bmp"])
    canvas = Image.new("RGB", (image.width * 2, image.height * 2), (70, 90, 80))
    canvas.paste(image.resize((image.width // 2, image.height // 2)), (600, 500))
    frame = np.asarray(canvas)
    landmarker.reset()
    face = landmarker.find(frame)
    assert face is not None
    nose = face.landmarks[1, :2]
    assert 600 < nose[0] < 600 + image.width // 2 and 500 < nose[1] < 500 + image.height // 2
    from device.faces import FaceLandmarker

    whole_frame_only = FaceLandmarker(landmarker.model_dir, num_threads=1, tiles=False)
    assert whole_frame_only.find(frame) is None


def test_no_face_on_blank_frames(landmarker):
    for value in (0, 128, 255):
        landmarker.reset()
        assert landmarker.find(np.full((480, 640, 3), value, np.uint8)) is None
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    landmarker.reset()
    assert landmarker.find(noise) is None
    assert not landmarker.tracking


def test_no_face_on_coil_objects(landmarker, coil100):
    frames = sorted(p for p in coil100.glob("obj*/*.png") if p.parent.name not in FACE_LIKE_OBJECTS)[::7]
    found = 0
    for path in frames:
        landmarker.reset()
        found += landmarker.find(load(path)) is not None
    assert len(frames) > 300
    assert found / len(frames) <= 0.03, f"a face on {found} of {len(frames)} object photos"


def test_a_tracked_face_runs_the_detector_once(landmarker, photos):
    frame = photos["grace_hopper.bmp"]
    landmarker.reset()
    before = landmarker.detector_runs
    faces = [landmarker.find(frame) for _ in range(8)]
    assert all(face is not None for face in faces)
    assert landmarker.detector_runs == before + 1
    assert landmarker.tracking
    # Tracked frames agree with each other.
    assert np.abs(faces[-1].landmarks[:, :2] - faces[-2].landmarks[:, :2]).max() < 3.0
    # Once the face is gone the detector looks again, and then again after a reset.
    assert landmarker.find(np.zeros_like(frame)) is None
    assert not landmarker.tracking
    runs = landmarker.detector_runs
    landmarker.find(frame)
    landmarker.reset()
    landmarker.find(frame)
    assert landmarker.detector_runs == runs + 2


def test_a_face_that_moves_is_followed(landmarker, photos):
    frame = photos["face.jpg"]
    landmarker.reset()
    first = landmarker.find(frame)
    runs = landmarker.detector_runs
    moved = np.zeros_like(frame)
    moved[:, 12:] = frame[:, :-12]  # 12 pixels to the right
    second = landmarker.find(moved)
    assert landmarker.detector_runs == runs
    assert second is not None
    shift = np.median(second.landmarks[:, 0] - first.landmarks[:, 0])
    assert 9.0 < shift < 15.0


def test_frames_must_be_rgb_uint8(landmarker):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        landmarker.find(np.zeros((48, 64), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        landmarker.find(np.zeros((48, 64, 3), np.float32))


def test_a_missing_model_is_named(tmp_path):
    from device.faces import FaceLandmarker

    with pytest.raises(ModelMissingError, match="face_detection_short_range.tflite"):
        FaceLandmarker(tmp_path)


def test_a_wrong_model_is_refused(tmp_path):
    from device.faces import FaceLandmarker

    folder = model_dir_with(MODELS + ("pose_detection.tflite",))
    (tmp_path / MODELS[0]).symlink_to(folder / "pose_detection.tflite")
    (tmp_path / MODELS[1]).symlink_to(folder / MODELS[1])
    with pytest.raises(ModelError, match="face detector"):
        FaceLandmarker(tmp_path)


def test_repr_shows_state(landmarker):
    assert "tracking=" in repr(landmarker) and "detector_runs=" in repr(landmarker)
