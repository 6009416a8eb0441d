"""device.hands: a hand found and tracked in real photos, none where there is no hand."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO.parent / "shared" / "models")
HANDS = Path(os.environ.get("TEACHBOX_HANDS") or REPO.parent / "shared" / "data" / "hands-dev")
COIL = Path(os.environ.get("TEACHBOX_COIL100") or REPO.parent / "shared" / "data" / "coil100-dev")


@pytest.fixture(scope="module")
def landmarker():
    for name in ("palm_detection_full.tflite", "palm_detection_lite.tflite", "hand_landmark_full.tflite"):
        if not (MODELS / name).is_file():
            pytest.skip(f"MediaPipe model {name} not found in {MODELS} (set TEACHBOX_MODEL_MIRROR)")
    from device.hands import HandLandmarker

    return HandLandmarker(MODELS, num_threads=2)


def hand_photos(count_per_class=10):
    if not HANDS.is_dir():
        pytest.skip(f"hands-dev photos not found at {HANDS} (set TEACHBOX_HANDS)")
    photos = []
    for name in ("rock", "paper", "scissors"):
        for path in sorted((HANDS / name).glob("*.jpg"))[:count_per_class]:
            photos.append(np.asarray(Image.open(path).convert("RGB")))
    return photos


def coil_photos(count=20):
    if not COIL.is_dir():
        pytest.skip(f"COIL-100 photos not found at {COIL} (set TEACHBOX_COIL100)")
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(COIL.glob("obj*/*.png"))[::37][:count]]


def keyed_hand(photo):
    """The hands-dev hand without its green background, as an RGBA image cropped to it."""
    f = photo.astype(np.int16)
    alpha = np.where((f[..., 1] > f[..., 0] + 25) & (f[..., 1] > f[..., 2] + 25), 0, 255).astype(np.uint8)
    image = Image.fromarray(photo).convert("RGBA")
    image.putalpha(Image.fromarray(alpha))
    return image.crop(Image.fromarray(alpha).getbbox())


def test_hands_are_found_in_real_photos_with_plausible_landmarks(landmarker):
    photos = hand_photos()
    found = 0
    for photo in photos:
        landmarker.reset()
        hand = landmarker.find(photo)
        if hand is None:
            continue
        found += 1
        h, w = photo.shape[:2]
        points = hand.landmarks
        assert points.shape == (21, 3) and points.dtype == np.float32 and hand.world.shape == (21, 3)
        assert hand.crop.shape == (224, 224, 3) and hand.crop.dtype == np.uint8
        assert 0.5 <= hand.score <= 1 and 0 <= hand.handedness <= 1
        inside = (points[:, 0] > -0.1 * w) & (points[:, 0] < 1.1 * w) & (points[:, 1] > -0.1 * h) & (
            points[:, 1] < 1.1 * h)
        assert inside.mean() > 0.9
        size = np.ptp(points[:, :2], axis=0).max()
        assert size > 0.2 * min(h, w)  # these hands are big in their photos
        middle_tip = np.linalg.norm(points[12, :2] - points[0, :2])
        assert middle_tip > 0.2 * size or np.linalg.norm(points[9, :2] - points[0, :2]) > 0.2 * size
    assert found >= 0.85 * len(photos), f"a hand in only {found} of {len(photos)} photos"


def test_no_hand_in_object_photos_or_a_blank_frame(landmarker):
    frames = coil_photos() + [np.zeros((480, 640, 3), np.uint8), np.full((200, 300, 3), 128, np.uint8)]
    false = 0
    for frame in frames:
        landmarker.reset()
        false += landmarker.find(frame) is not None
    assert false <= 1, f"{false} hands found in {len(frames)} pictures without one"
    landmarker.reset()
    assert landmarker.find(np.zeros((480, 640, 3), np.uint8)) is None


def test_a_tracked_hand_needs_the_palm_detector_once(landmarker):
    photo = hand_photos(1)[1]
    canvas = np.zeros((480, 640, 3), np.uint8)
    landmarker.reset()
    runs = landmarker.palm_runs
    hands = []
    for step in range(8):  # the hand moves right by 8 pixels a frame
        frame = canvas.copy()
        frame[100:300, 100 + 8 * step:400 + 8 * step] = photo
        hands.append(landmarker.find(frame))
    assert all(h is not None for h in hands)
    assert landmarker.palm_runs - runs == 1
    assert [h.source for h in hands[1:]] == ["track"] * 7
    moved = hands[-1].landmarks[0, 0] - hands[0].landmarks[0, 0]
    assert 40 < moved < 72
    landmarker.reset()
    assert not landmarker.tracking


def test_close_up_fallback_finds_a_hand_filling_the_frame(landmarker):
    from device.hands import HandLandmarker

    no_fallback = HandLandmarker(MODELS, num_threads=2, close_up=False, tiles=False)
    with_fallback = HandLandmarker(MODELS, num_threads=2, tiles=False)
    closes = []
    for photo in hand_photos(4):
        hand = keyed_hand(photo)
        w, h = hand.size
        window = hand.crop((0, 0, w, h)).resize((640, int(640 * h / w)))
        frame = Image.new("RGB", (640, 480), (40, 120, 40))
        frame.paste(window, (0, (480 - window.size[1]) // 2), window)
        closes.append(np.asarray(Image.fromarray(np.asarray(frame)).crop((40, 60, 600, 420)).resize((640, 480))))
    found_without = sum(no_fallback.find(f) is not None for f in closes if not no_fallback.reset())
    found_with = sum(with_fallback.find(f) is not None for f in closes if not with_fallback.reset())
    assert found_with > found_without, f"with the fallback {found_with}, without {found_without} of {len(closes)}"
    sources = []
    for frame in closes:
        with_fallback.reset()
        hand = with_fallback.find(frame)
        if hand is not None:
            sources.append(hand.source)
    assert len(sources) >= 0.5 * len(closes) and "close-up" in sources


def clutter_scenes(count, seed=3):
    """640x480 scenes of COIL objects on noise, each with a small hand (about 0.28 of the height) pasted in."""
    rng = np.random.default_rng(seed)
    objects = coil_photos(30)
    scenes = []
    for photo in hand_photos(count):
        scene = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize((640, 480))
        for _ in range(10):
            obj = Image.fromarray(objects[int(rng.integers(len(objects)))])
            scene.paste(obj.resize((120, 120)), (int(rng.integers(0, 560)), int(rng.integers(0, 400))))
        hand = keyed_hand(photo)
        scale = 0.28 * 480 / hand.size[1]
        hand = hand.resize((int(hand.size[0] * scale), int(hand.size[1] * scale)))
        scene.paste(hand, (int(rng.integers(0, 640 - hand.size[0])), int(rng.integers(0, 480 - hand.size[1]))), hand)
        scenes.append(np.asarray(scene))
    return scenes


def test_small_hands_in_clutter_are_found_with_tiles(landmarker):
    from device.hands import HandLandmarker

    no_tiles = HandLandmarker(MODELS, num_threads=2, close_up=False, tiles=False)
    scenes = clutter_scenes(4)
    plain = sum(no_tiles.find(s) is not None for s in scenes if not no_tiles.reset())
    tiled = sum(landmarker.find(s) is not None for s in scenes if not landmarker.reset())
    assert tiled >= plain and tiled >= 0.6 * len(scenes), f"tiles {tiled}, whole frame only {plain} of {len(scenes)}"


def test_bad_frames_are_refused_with_a_reason(landmarker):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        landmarker.find(np.zeros((10, 10), np.uint8))
    assert "HandLandmarker" in repr(landmarker) and "palm_model" in landmarker.describe()


def test_a_missing_model_names_the_file():
    from device.errors import ModelMissingError
    from device.hands import HandLandmarker

    with pytest.raises(ModelMissingError, match="palm_detection_full.tflite"):
        HandLandmarker(REPO / "no-such-folder")


def test_with_no_hand_in_view_each_frame_costs_a_bounded_search_and_a_hand_that_comes_is_soon_found(landmarker):
    empty = np.asarray(Image.fromarray(coil_photos(1)[0]).resize((640, 480)))
    landmarker.reset()
    assert landmarker.find(empty) is None  # a first look searches everything
    runs = []
    for _ in range(6):
        palms, marks = landmarker.palm_runs, landmarker.landmark_runs
        assert landmarker.find(empty) is None
        runs.append((landmarker.palm_runs - palms, landmarker.landmark_runs - marks))
    searches = 1 + landmarker.tiles_per_frame  # the whole frame and a few tiles; each checks at most two palms
    assert max(p for p, _ in runs) <= searches and max(m for _, m in runs) <= 2 * searches + 2, runs
    found_after = []
    for scene in clutter_scenes(3, seed=5):  # the camera keeps looking: the hand is found within a few frames
        landmarker.reset()
        landmarker.find(empty)
        frames = next((n for n in range(1, 9) if landmarker.find(scene) is not None), None)
        found_after.append(frames)
    assert sum(n is not None and n <= 4 for n in found_after) >= 2, found_after
