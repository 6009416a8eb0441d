#!/usr/bin/env python3
"""Figures for the hand landmark source: detection rates, speed and few-shot accuracy.

    .venv/bin/python scripts/measure_hands.py [--models DIR] [--hands DIR] [--coil DIR] [--per-class N]

Detection rate on hands-dev photos and on harder variants made from them here (the
hand keyed out of its green background and pasted, smaller, into cluttered 640x480
scenes of COIL-100 objects and noise; mirrored; turned 30..90 degrees; darker and low
contrast; close-ups), each with and without the close-up fallback and the tiles.
False finds on scenes without a hand.  Milliseconds per frame.  Few-shot accuracy
(1, 5, 10 shots a class, 20 draws) of hand features vs whole-picture MobileNet.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.handshape import HAND_FEATURES_DIM, HAND_FEATURES_VERSION, hand_features  # noqa: E402
from device.hands import HandLandmarker  # noqa: E402

CLASSES = ("rock", "paper", "scissors")


def load_hands(folder: Path, per_class: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    for label, name in enumerate(CLASSES):
        files = sorted((folder / name).glob("*.jpg"))
        for i in sorted(rng.choice(len(files), min(per_class, len(files)), replace=False)):
            frames.append(np.asarray(Image.open(files[i]).convert("RGB")))
            labels.append(label)
    return frames, np.array(labels)


def load_coil(folder: Path, count: int = 200, seed: int = 1):
    files = sorted(folder.glob("obj*/*.png"))
    rng = np.random.default_rng(seed)
    return [np.asarray(Image.open(files[i]).convert("RGB")) for i in rng.choice(len(files), count, replace=False)]


def hand_mask(frame: np.ndarray) -> np.ndarray:
    """True where the hands-dev photo is not its green background (a soft 0..255 mask)."""
    f = frame.astype(np.int16)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    green = (g > r + 25) & (g > b + 25)
    mask = Image.fromarray(np.where(green, 0, 255).astype(np.uint8)).filter(ImageFilter.MedianFilter(5))
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(1.0)))


def clutter(rng, coil, width=640, height=480) -> Image.Image:
    """A busy scene: noise, coloured blocks and COIL objects at random sizes."""
    base = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    scene = Image.fromarray(base).resize((width, height), Image.BILINEAR)
    for _ in range(int(rng.integers(8, 16))):
        obj = Image.fromarray(coil[int(rng.integers(len(coil)))])
        side = int(rng.integers(60, 200))
        scene.paste(obj.resize((side, side)), (int(rng.integers(-side // 2, width - side // 2)),
                                               int(rng.integers(-side // 2, height - side // 2))))
    return scene


def paste_hand(rng, frame, coil, fraction, angle=0.0, width=640, height=480) -> np.ndarray:
    """The photo's hand keyed out, turned by ``angle`` degrees, scaled so its box is
    ``fraction`` of the scene height, pasted at a random place in a cluttered scene."""
    hand = Image.fromarray(frame).convert("RGBA")
    hand.putalpha(Image.fromarray(hand_mask(frame)))
    if angle:
        hand = hand.rotate(angle, resample=Image.BILINEAR, expand=True)
    box = hand.getchannel("A").point(lambda v: 255 if v > 128 else 0).getbbox() or (0, 0, *hand.size)
    hand = hand.crop(box)
    scale = fraction * height / max(hand.size[1], 1)
    size = (max(1, int(hand.size[0] * scale)), max(1, int(hand.size[1] * scale)))
    hand = hand.resize(size, Image.BILINEAR)
    scene = clutter(rng, coil, width, height)
    x = int(rng.integers(0, max(1, width - size[0])))
    y = int(rng.integers(0, max(1, height - size[1])))
    scene.paste(hand, (x, y), hand)
    return np.asarray(scene.convert("RGB"))


def rotated(rng, frame) -> np.ndarray:
    angle = float(rng.uniform(30, 90) * rng.choice([-1, 1]))
    image = Image.fromarray(frame)
    return np.asarray(image.rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=tuple(frame[0, 0])))


def darker(rng, frame) -> np.ndarray:
    gain = float(rng.uniform(0.25, 0.45))
    offset = float(rng.uniform(5, 30))
    return np.clip(frame.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


def close_up(rng, frame, width=640, height=480) -> np.ndarray:
    """The hand filling the frame: a window of the frame's aspect 85-100% of the hand's box, enlarged."""
    ys, xs = np.nonzero(hand_mask(frame) > 128)
    if len(xs) == 0:
        return frame
    x0, x1, y0, y1 = np.percentile(xs, 2), np.percentile(xs, 98), np.percentile(ys, 2), np.percentile(ys, 98)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w = max(x1 - x0, (y1 - y0) * width / height) * float(rng.uniform(0.85, 1.0))
    h = w * height / width
    crop = Image.fromarray(frame).crop((int(cx - w / 2), int(cy - h / 2), int(cx + w / 2), int(cy + h / 2)))
    return np.asarray(crop.resize((width, height), Image.BILINEAR))


def variants(frames, coil, seed=0):
    rng = np.random.default_rng(seed)
    yield "hands-dev (300x200)", frames
    yield "mirrored", [f[:, ::-1].copy() for f in frames]
    yield "turned 30-90 deg", [rotated(rng, f) for f in frames]
    yield "darker, low contrast", [darker(rng, f) for f in frames]
    yield "close-up (640x480)", [close_up(rng, f) for f in frames]
    yield "in clutter, 1/2-1/3 height", [paste_hand(rng, f, coil, rng.uniform(1 / 3, 1 / 2)) for f in frames]
    yield "in clutter, 1/3-1/4 height", [paste_hand(rng, f, coil, rng.uniform(1 / 4, 1 / 3)) for f in frames]
    yield "in clutter, turned, 1/4-1/2", [paste_hand(rng, f, coil, rng.uniform(1 / 4, 1 / 2),
                                                     angle=float(rng.uniform(-90, 90))) for f in frames]


CONFIGS = {
    "palm only": dict(close_up=False, tiles=False),
    "+close-up": dict(close_up=True, tiles=False),
    "+tiles": dict(close_up=False, tiles=True),
    "+both (default)": dict(close_up=True, tiles=True),
}


def detection_rates(models, frames, coil, threads):
    landmarkers = {name: HandLandmarker(models, num_threads=threads, **options) for name, options in CONFIGS.items()}
    landmarkers["default, palm lite"] = HandLandmarker(models, num_threads=threads, full_palm=False)
    names = list(landmarkers)
    print("\n## Detection rate (one hand per photo, each photo alone: reset() between)\n")
    print(f"{'variant':30s} " + " ".join(f"{n:>18s}" for n in names))
    for variant, pictures in variants(frames, coil):
        rates = []
        for name in names:
            lm = landmarkers[name]
            found = 0
            for picture in pictures:
                lm.reset()
                found += lm.find(picture) is not None
            rates.append(found / len(pictures))
        print(f"{variant:30s} " + " ".join(f"{100 * r:17.1f}%" for r in rates))
    rng = np.random.default_rng(5)
    empty = [np.asarray(clutter(rng, coil)) for _ in range(100)] + [
        np.asarray(Image.fromarray(c).resize((300, 300))) for c in coil[:100]]
    false = []
    for name in names:
        lm = landmarkers[name]
        count = 0
        for picture in empty:
            lm.reset()
            count += lm.find(picture) is not None
        false.append(count / len(empty))
    print(f"{'no hand: false finds':30s} " + " ".join(f"{100 * r:17.1f}%" for r in false)
          + f"   ({len(empty)} scenes: 100 cluttered 640x480, 100 COIL objects)")


def timing(models, frames, coil, threads):
    print(f"\n## Milliseconds per frame ({threads} threads, this machine; median of repeated runs)\n")
    rng = np.random.default_rng(7)
    scene = paste_hand(rng, frames[0], coil, 0.45)
    empty = np.asarray(clutter(rng, coil))
    for lite in (False, True):
        lm = HandLandmarker(models, num_threads=threads, lite=lite)
        label = "hand_landmark_lite" if lite else "hand_landmark_full"

        def median(picture, reset, repeat=40):
            times = []
            for _ in range(repeat):
                if reset:
                    lm.reset()
                start = time.perf_counter()
                lm.find(picture)
                times.append(time.perf_counter() - start)
            return 1000 * float(np.median(times))

        lm.reset()
        print(f"{label}: palm + landmark (640x480, new hand each frame)  {median(scene, True):6.1f} ms")
        lm.find(scene)
        before = lm.palm_runs
        tracked = median(scene, False)
        print(f"{label}: tracked, landmark only (640x480)             {tracked:6.1f} ms "
              f"(palm detector runs during 40 tracked frames: {lm.palm_runs - before})")
        print(f"{label}: no hand (640x480: palm + close-up + {len(lm_tiles(lm, empty))} tiles) "
              f"{median(empty, True):6.1f} ms")


def lm_tiles(lm, frame):
    from device.hands import tile_rects
    return tile_rects(frame.shape[1], frame.shape[0], zoom=lm.tile_zoom)


def few_shot(models, frames, labels, threads, draws=20):
    from device import metric
    from device.embedder import Embedder

    lm = HandLandmarker(models, num_threads=threads)
    hands = []
    for picture in frames:
        lm.reset()
        hands.append(lm.find(picture))
    found = np.array([h is not None for h in hands])
    hand_x = np.array([hand_features(h) if h is not None else np.zeros(HAND_FEATURES_DIM, np.float32)
                       for h in hands])
    embedder = Embedder(Path(models) / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite", num_threads=threads)
    mobile_x = np.array([embedder.embed(f).copy() for f in frames])
    print(f"\n## Few-shot accuracy on hands-dev ({len(frames)} photos, 3 classes, {draws} draws; "
          f"photos where no hand is found ({(~found).sum()}) count as wrong for the hand features)\n")
    print(f"features: {HAND_FEATURES_VERSION}, {HAND_FEATURES_DIM} dims")
    rng = np.random.default_rng(0)
    results = {}
    for shots in (1, 5, 10):
        scores = {key: [] for key in ("hand centroid", "hand metric.fit", "mobilenet centroid", "mobilenet metric.fit")}
        for _ in range(draws):
            pool = [np.flatnonzero((labels == c) & found) for c in range(len(CLASSES))]
            train = np.concatenate([rng.choice(p, shots, replace=False) for p in pool])
            test = np.setdiff1d(np.arange(len(labels)), train)
            for name, x in (("hand", hand_x), ("mobilenet", mobile_x)):
                ok = found[test] if name == "hand" else np.ones(len(test), bool)
                guess = centroid(x[train], labels[train], x[test])
                scores[f"{name} centroid"].append(((guess == labels[test]) & ok).mean())
                head = metric.fit(x[train], labels[train], len(CLASSES))
                guess = head.assess(x[test]).best
                scores[f"{name} metric.fit"].append(((guess == labels[test]) & ok).mean())
        results[shots] = {k: 100 * float(np.mean(v)) for k, v in scores.items()}
    keys = list(results[1])
    print(f"{'shots':>6s} " + " ".join(f"{k:>22s}" for k in keys))
    for shots, row in results.items():
        print(f"{shots:6d} " + " ".join(f"{row[k]:21.1f}%" for k in keys))


def centroid(train_x, train_y, test_x):
    """Nearest centroid by cosine after centring on the examples' class means' mean."""
    classes = np.unique(train_y)
    means = np.array([train_x[train_y == c].mean(axis=0) for c in classes])
    centre = means.mean(axis=0)

    def unit(v):
        v = v - centre
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)

    return classes[np.argmax(unit(test_x) @ unit(means).T, axis=1)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models")
    parser.add_argument("--hands", type=Path, default=REPO.parent / "shared" / "data" / "hands-dev")
    parser.add_argument("--coil", type=Path, default=REPO.parent / "shared" / "data" / "coil100-dev")
    parser.add_argument("--per-class", type=int, default=60, help="hands-dev photos per class (of 200)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=(), choices=("detect", "time", "fewshot"))
    args = parser.parse_args(argv)
    import logging
    logging.basicConfig(level=logging.WARNING)
    frames, labels = load_hands(args.hands, args.per_class)
    coil = load_coil(args.coil)
    print(f"hands-dev: {len(frames)} photos; COIL: {len(coil)} object photos; models: {args.models}")
    if "detect" not in args.skip:
        detection_rates(args.models, frames, coil, args.threads)
    if "time" not in args.skip:
        timing(args.models, frames, coil, args.threads)
    if "fewshot" not in args.skip:
        all_frames, all_labels = load_hands(args.hands, 200)
        few_shot(args.models, all_frames, all_labels, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
