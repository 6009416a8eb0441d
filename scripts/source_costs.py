"""What a camera frame costs each source, on this machine: the README's per-source frame rates.

    .venv/bin/python scripts/source_costs.py [--frames 40] [--threads 2]

Each source looks at 640x480 frames (what the landmark sources ask of the camera) in three
situations: the thing in view and tracked from frame to frame (the usual case while someone
shows a sign), a stream with nothing in view (the search spread over frames), and a single
picture searched from scratch (as after reset).  Prints the median milliseconds per frame
(prepare + features, detection included) and frames per second.  Scenes are made from
../shared/data (or ``$TEACHBOX_DATA``); models from ``$TEACHBOX_MODEL_MIRROR`` or ``models/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.models import DEFAULT_MODEL  # noqa: E402
from device.sources import open_source  # noqa: E402

SIZE = (640, 480)


def scene(picture: Path, height_share: float) -> np.ndarray:
    """``picture`` at ``height_share`` of a 640x480 grey frame, centred."""
    image = Image.open(picture).convert("RGB")
    scale = height_share * SIZE[1] / image.height
    image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    frame = Image.new("RGB", SIZE, (118, 118, 118))
    frame.paste(image, ((SIZE[0] - image.width) // 2, (SIZE[1] - image.height) // 2))
    return np.asarray(frame)


def empty(data: Path) -> np.ndarray:
    frame = Image.new("RGB", SIZE, (90, 100, 95))
    objects = sorted((data / "coil100-dev").glob("obj00*/*.png"))[::40][:6]
    for i, path in enumerate(objects):
        frame.paste(Image.open(path).convert("RGB").resize((150, 150)), (20 + (i % 3) * 210, 40 + (i // 3) * 220))
    return np.asarray(frame)


def median_ms(source, frame: np.ndarray, frames: int, *, fresh: bool) -> float:
    source.reset()
    source.embed(frame)  # the first look (and the tracking it starts)
    times = []
    for _ in range(frames):
        if fresh:
            source.reset()
        started = time.perf_counter()
        source.infer(source.prepare(frame))
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = Path(os.environ.get("TEACHBOX_DATA") or REPO.parent / "shared" / "data")
    models = Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO / "models")
    things = {"picture": scene(sorted((data / "coil100-dev" / "obj002").glob("*.png"))[0], 0.6),
              "hand": scene(sorted((data / "hands-dev" / "paper").glob("*.jpg"))[0], 0.5),
              "face": scene(data / "faces-dev" / "grace_hopper.bmp", 0.6),
              "pose": scene(sorted((data / "poses-dev" / "Downward_dog").glob("*.jp*g"))[0], 0.8)}
    nothing = empty(data)
    print(f"{'source':<12} {'in view, tracked':>18} {'nobody in view':>16} {'one picture':>13}   (ms a frame, fps)")
    for name, lite in (("picture", False), ("hand", False), ("hand", True), ("face", False), ("pose", False)):
        source = open_source(name, picture_model=models / DEFAULT_MODEL, model_dirs=[models],
                             num_threads=args.threads, lite=lite)
        found = source.embed(things[name]) is not None
        cells = [median_ms(source, things[name], args.frames, fresh=False),
                 median_ms(source, nothing, args.frames, fresh=False),
                 median_ms(source, things[name], args.frames, fresh=True)]
        label = name + (" (lite)" if lite else "")
        print(f"{label:<12} " + " ".join(f"{ms:8.1f} {1000 / ms:6.0f}/s " for ms in cells)
              + ("" if found else "  (the scene's thing was not found!)"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
