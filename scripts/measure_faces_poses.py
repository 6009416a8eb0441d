#!/usr/bin/env python3
"""Face and pose landmark sources measured (prints figures; nothing is asserted).

    .venv/bin/python scripts/measure_faces_poses.py [--models DIR] [--data DIR] [--draws 20] [--threads 2]

1. Detection rate on ``faces-dev`` and ``poses-dev`` as they are and in harder variants
   made here (seeded): *smaller*: pasted at half size onto a cluttered canvas twice as big;
   *turned*: rotated by 30 degrees; *darker*: brightness x0.35; *mirrored*; for the faces also a
   finer grid of sizes, turns and brightness.  And how often a face / a person is "found" on
   COIL-100 object photos (every 7th; figurines with faces included), on 640x480 scenes of five
   objects, and on blank frames.
2. Milliseconds per 640x480 camera frame: detector + landmarks (the track forgotten each
   frame) and tracked (the landmark model alone, the detector not run), medians.
3. Few-shot accuracy on ``poses-dev`` (3 yoga poses; 1, 5, 10 shots per class; ``--draws``
   random draws; tested on all the other pictures): nearest centroid on L2-normalised
   features centred on the support's mean, and ``device.metric.fit`` (the box's shared-metric
   head, on the signed square root of the features as it does for embeddings); pose
   features (mirror invariant, and not) against whole-picture MobileNet V1 embeddings
   (``device.embedder.Embedder``, the box's own preprocessing).  The support is drawn from
   pictures with a pose found (the same draws for every feature set); a query with no pose
   found counts as wrong for the pose features (the box could not answer it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.embedder import Embedder  # noqa: E402
from device.faces import FaceLandmarker  # noqa: E402
from device.poses import PoseLandmarker  # noqa: E402
from device.poseshape import POSE_FEATURES_DIM, pose_features  # noqa: E402

POSES = ("ArdhaChandrasana", "BaddhaKonasana", "Downward_dog")
MOBILENET = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"


def load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def smaller(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return shrunk(image, 0.5, rng)


VARIANTS = {
    "as is": lambda image, rng: image,
    "smaller": smaller,
    "turned 30": lambda image, rng: image.rotate(30, Image.BICUBIC, expand=True),
    "darker": lambda image, rng: ImageEnhance.Brightness(image).enhance(0.35),
    "mirrored": lambda image, rng: image.transpose(Image.FLIP_LEFT_RIGHT),
}


def camera_frame(image: Image.Image) -> np.ndarray:
    """``image`` fitted into a 640x480 grey frame, as a camera would give it."""
    frame = Image.new("RGB", (640, 480), (100, 100, 100))
    copy = image.copy()
    copy.thumbnail((640, 480))
    frame.paste(copy, ((640 - copy.width) // 2, (480 - copy.height) // 2))
    return np.asarray(frame)


def detection_rates(finder, images, label: str) -> None:
    rng = np.random.default_rng(0)
    row = []
    for name, make in VARIANTS.items():
        found = 0
        for image in images:
            finder.reset()
            found += finder.find(np.asarray(make(image, rng))) is not None
        row.append(f"{name} {found}/{len(images)} ({found / len(images):.0%})")
    print(f"  {label}: " + ", ".join(row))


def face_limits(finder, photos) -> None:
    """Finer grid for the two face photos: how small, how turned, how dark a face is still found."""
    rng = np.random.default_rng(1)
    for label, makes in (
        ("scale on a 2x canvas", {f"{s:.2f}": (lambda im, r, s=s: shrunk(im, s, r))
                                  for s in (0.75, 0.5, 0.4, 0.3, 0.25)}),
        ("turned", {f"{a}deg": (lambda im, r, a=a: im.rotate(a, Image.BICUBIC, expand=True))
                    for a in (15, 30, 45, 60, 90, 180)}),
        ("brightness", {f"x{b}": (lambda im, r, b=b: ImageEnhance.Brightness(im).enhance(b))
                        for b in (0.5, 0.25, 0.15)}),
    ):
        cells = []
        for name, make in makes.items():
            found = 0
            for image in photos:
                finder.reset()
                found += finder.find(np.asarray(make(image, rng))) is not None
            cells.append(f"{name} {found}/{len(photos)}")
        print(f"    {label}: " + ", ".join(cells))


def shrunk(image: Image.Image, scale: float, rng: np.random.Generator) -> Image.Image:
    w, h = image.width * 2, image.height * 2
    blocks = rng.integers(30, 220, (h // 24 + 1, w // 24 + 1, 3), dtype=np.uint8)
    canvas = Image.fromarray(blocks).resize((w, h), Image.NEAREST)
    small = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.BICUBIC)
    canvas.paste(small, (int(rng.integers(0, w - small.width)), int(rng.integers(0, h - small.height))))
    return canvas


def false_rate(finder, coil: Path) -> str:
    frames = sorted(coil.glob("obj*/*.png"))[::7]
    found = 0
    for path in frames:
        finder.reset()
        found += finder.find(np.asarray(load(path))) is not None
    blank = 0
    for value in (0, 128, 255):
        finder.reset()
        blank += finder.find(np.full((480, 640, 3), value, np.uint8)) is not None
    rng = np.random.default_rng(0)
    objects = sorted(coil.glob("obj*/*.png"))
    scenes = 0
    for _ in range(120):  # 640x480 scenes of five objects, 100-260 px each, on a plain colour
        scene = Image.new("RGB", (640, 480), tuple(int(v) for v in rng.integers(0, 255, 3)))
        for _ in range(5):
            size = int(rng.integers(100, 260))
            thing = load(objects[int(rng.integers(len(objects)))]).resize((size, size))
            scene.paste(thing, (int(rng.integers(0, 640 - size)), int(rng.integers(0, 480 - size))))
        finder.reset()
        scenes += finder.find(np.asarray(scene)) is not None
    return (f"{found}/{len(frames)} COIL-100 object photos ({found / max(len(frames), 1):.1%}), "
            f"{scenes}/120 640x480 scenes of 5 objects, {blank}/3 blank frames")


def timing(finder, frame: np.ndarray, repeats: int = 30):
    finder.reset()
    finder.find(frame)
    tracked = []
    for _ in range(repeats):
        start = time.perf_counter()
        finder.find(frame)
        tracked.append(time.perf_counter() - start)
    fresh = []
    for _ in range(repeats):
        finder.reset()
        start = time.perf_counter()
        finder.find(frame)
        fresh.append(time.perf_counter() - start)
    return 1e3 * float(np.median(fresh)), 1e3 * float(np.median(tracked))


def nearest_centroid(train_x, train_y, test_x, classes) -> np.ndarray:
    mean = train_x.mean(axis=0)

    def unit(x):
        z = x - mean
        return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)

    zt = unit(train_x)
    centroids = np.stack([zt[train_y == c].mean(axis=0) for c in classes])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
    return classes[np.argmax(unit(test_x) @ centroids.T, axis=1)]


def metric_head(train_x, train_y, test_x, classes) -> np.ndarray:
    from device import metric

    fitted = metric.fit(train_x, train_y, len(classes))
    return np.argmax(fitted.scores(test_x), axis=1)


def few_shot(features: np.ndarray, labels: np.ndarray, usable: np.ndarray, shots: int, draws: int, head,
             answerable: np.ndarray) -> tuple:
    """Mean and sd accuracy over ``draws``; the support only from ``usable`` pictures (a pose found),
    every other picture asked; a query not ``answerable`` (no pose found) counts as wrong."""
    rng = np.random.default_rng(shots)
    classes = np.unique(labels)
    right = []
    for _ in range(draws):
        train = np.concatenate([rng.choice(np.flatnonzero((labels == c) & usable), shots, replace=False)
                                for c in classes])
        test = np.setdiff1d(np.arange(len(labels)), train)
        answers = head(features[train], labels[train], features[test], classes)
        right.append(np.mean((answers == labels[test]) & answerable[test]))
    return float(np.mean(right)), float(np.std(right))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-rates", action="store_true", help="only the timing and the few-shot figures")
    args = parser.parse_args(argv)

    faces = FaceLandmarker(args.models, num_threads=args.threads)
    poses = PoseLandmarker(args.models, num_threads=args.threads)
    face_photos = [load(p) for p in sorted((args.data / "faces-dev").iterdir()) if p.suffix in (".jpg", ".bmp")]
    pose_paths = [(c, p) for c, name in enumerate(POSES) for p in sorted((args.data / "poses-dev" / name).iterdir())]
    pose_images = [load(p) for _, p in pose_paths]
    labels = np.array([c for c, _ in pose_paths])

    print(f"{faces!r}\n{poses!r}")
    if not args.skip_rates:
        print("1. detection rate")
        detection_rates(faces, face_photos, f"faces-dev ({len(face_photos)} photos)")
        face_limits(faces, face_photos)
        detection_rates(poses, pose_images, f"poses-dev ({len(pose_images)} pictures)")
        coil = args.data / "coil100-dev"
        print(f"  no face:   a face on {false_rate(faces, coil)}")
        print(f"  no person: a person on {false_rate(poses, coil)}")

    print("2. ms per 640x480 frame (median; detector + landmarks / tracked)")
    for label, finder, image in (("face", faces, face_photos[0]), ("pose", poses, pose_images[len(pose_images) // 2])):
        fresh, tracked = timing(finder, camera_frame(image))
        nobody = []
        for _ in range(30):
            finder.reset()
            start = time.perf_counter()
            finder.find(np.full((480, 640, 3), 100, np.uint8))
            nobody.append(time.perf_counter() - start)
        alone = []
        for model in (finder.detector, finder.landmarker):
            times = []
            for _ in range(30):
                start = time.perf_counter()
                model.run()
                times.append(time.perf_counter() - start)
            alone.append(1e3 * float(np.median(times)))
        print(f"  {label}: detect+landmarks {fresh:.1f} ms, tracked {tracked:.1f} ms, a frame with nobody "
              f"{1e3 * float(np.median(nobody)):.1f} ms (the models alone: detector {alone[0]:.1f} ms, "
              f"landmarks {alone[1]:.1f} ms)")

    print(f"3. few-shot on poses-dev ({len(labels)} pictures, 3 classes, {args.draws} draws, chance 33%)")
    found = []
    for image in pose_images:
        poses.reset()
        found.append(poses.find(np.asarray(image)))
    print(f"  a pose found on {sum(p is not None for p in found)}/{len(found)} pictures")
    sets = {
        "pose features (mirror invariant)": np.stack(
            [pose_features(p) if p is not None else np.zeros(POSE_FEATURES_DIM, np.float32) for p in found]),
        "pose features (sides kept)": np.stack(
            [pose_features(p, mirror_invariant=False) if p is not None else np.zeros(POSE_FEATURES_DIM, np.float32)
             for p in found]),
    }
    embedder = Embedder(args.models / MOBILENET, num_threads=args.threads)
    sets["MobileNet V1 whole picture"] = np.stack([embedder.embed(np.asarray(image)).copy() for image in pose_images])
    usable = np.array([p is not None for p in found])
    everything = np.ones(len(found), bool)
    for head_name, head in (("nearest centroid", nearest_centroid), ("metric.fit", metric_head)):
        for name, features in sets.items():
            answerable = usable if name.startswith("pose") else everything
            cells = []
            for shots in (1, 5, 10):
                mean, std = few_shot(features, labels, usable, shots, args.draws, head, answerable)
                cells.append(f"{shots}-shot {mean:.1%} (sd {std:.1%})")
            print(f"  {head_name:16s} {name:34s} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
