"""Few-shot accuracy of each source on each data set and its harder copies: the README's "Sources" table.

    .venv/bin/python scripts/eval_sources.py [--splits 10] [--work DIR]

For hands-dev (rock, paper, scissors) and poses-dev (three yoga poses) it makes harder copies
with scripts/make_variants.py (small in a cluttered 640x480 scene, mirrored, rotated, darker,
close up) into ``--work`` (made once, reused), then runs the box's own evaluation
(:func:`device.evaluate.evaluate`, default head) for the whole-picture source and the
landmark source at 1, 5 and 10 examples per class, and at 5 with the head told never to
answer "unknown" (sensitivity 0: the closed-set figure; the others count "unknown" as wrong).  Each image is turned into features once
per source and data set; ``fps`` is of that first pass (detection included).  Data sets are
found in ``$TEACHBOX_DATA`` or ``../shared/data``; models in ``$TEACHBOX_MODEL_MIRROR`` or
``models/`` (``teachbox fetch-model --source all`` fills it).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.evaluate import evaluate  # noqa: E402
from device.models import DEFAULT_MODEL  # noqa: E402
from device.sources import open_source  # noqa: E402

SHOTS = (1, 5, 10)
SETS = {"hands-dev": "hand", "poses-dev": "pose"}
VARIANTS = {"hands-dev": ("small-clutter", "mirror", "rotate", "dark", "closeup"),
            "poses-dev": ("small-clutter", "mirror", "rotate", "dark")}


class Remembered:
    """A source that turns each distinct frame into features once (the evaluation asks per shot count)."""

    def __init__(self, source) -> None:
        self.source = source
        self.name, self.dim = source.name, source.dim
        self._seen = {}

    def reset(self) -> None:
        self.source.reset()

    def embed(self, frame):
        key = hashlib.blake2b(frame.tobytes(), digest_size=16).digest() + bytes(str(frame.shape), "ascii")
        if key not in self._seen:
            features = self.source.embed(frame)
            self._seen[key] = None if features is None else features.copy()
        return self._seen[key]

    def describe(self) -> dict:
        return self.source.describe()


def variant(data: Path, name: str, work: Path) -> Path:
    target = work / f"{data.name}-{name}"
    if not (target / "variant.json").exists():
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_variants.py"), str(data), str(target),
                        "--variant", name, "--seed", "0"], check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "teachbox-variants")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data_root = Path(os.environ.get("TEACHBOX_DATA") or REPO.parent / "shared" / "data")
    models = Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO / "models")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{'data':<26} {'source':<8} " + " ".join(f"{s:>2}-shot" for s in SHOTS)
          + "  5, never unknown  no detection  found: 5-shot  images/s")
    for set_name, landmark in SETS.items():
        data = data_root / set_name
        if not data.is_dir():
            print(f"{set_name}: not found at {data}, skipped")
            continue
        for folder in [data] + [variant(data, v, args.work) for v in VARIANTS[set_name]]:
            label = set_name if folder == data else folder.name
            for source_name in ("picture", landmark):
                source = Remembered(open_source(source_name, picture_model=models / DEFAULT_MODEL,
                                                model_dirs=[models], num_threads=args.threads))
                results = [evaluate(source, folder, shots=shots, splits=args.splits, seed=0) for shots in SHOTS]
                closed = evaluate(source, folder, shots=5, splits=args.splits, seed=0, sensitivity=0.0)
                five = results[1]
                print(f"{label:<26} {source_name:<8} " + " ".join(f"{r['accuracy']:7.3f}" for r in results)
                      + f"  {closed['accuracy']:8.3f}  {five['no_detection_rate']:11.1%}"
                      + f"  {five['accuracy_detected']:12.3f}  {results[0]['fps']:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
