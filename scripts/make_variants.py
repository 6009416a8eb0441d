#!/usr/bin/env python3
"""A harder copy of a class-per-folder data set, for ``teachbox eval``.

    .venv/bin/python scripts/make_variants.py SRC DST --variant VARIANT [--seed N] [--clutter DIR]

Variants (each image changed once, with a generator seeded by ``--seed``, the class and
the image, so a run gives the same pictures again):

- ``small-clutter``: the picture scaled to 1/4..1/2 of the frame height and pasted at a
  random place into a 640x480 cluttered scene: a colour gradient, 8 to 14 other pictures
  (``--clutter DIR``, searched recursively; default: the COIL-100 objects in
  ``$TEACHBOX_COIL100`` or ``../shared/data/coil100-dev``) at random sizes and places,
  and noise.  A hand far from the camera in a busy room;
- ``mirror``: left and right swapped (the other hand);
- ``rotate``: turned 30 to 90 degrees either way, the corners filled with the border's colour;
- ``dark``: 0.25 to 0.5 of the brightness, 0.4 to 0.7 of the contrast, a little noise;
- ``closeup``: a crop of 50 to 70% of each side near the centre, scaled back to the
  picture's size (the thing fills the frame).

Every file keeps its class folder and name (so person ids in the names survive) and
format; ``small-clutter`` pictures are 640x480, the others keep their size.  ``DST``
must not exist or be empty, and must not be inside ``SRC`` (nor ``SRC`` inside it): the
source folder is never written to.  ``DST/variant.json`` records how it was made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.camera import IMAGE_SUFFIXES, list_images, load_rgb, natural_key  # noqa: E402

VARIANTS = ("small-clutter", "mirror", "rotate", "dark", "closeup")
SCENE = (640, 480)  # width, height
JPEG_QUALITY = 92


class VariantError(Exception):
    pass


def default_clutter() -> Path:
    return Path(os.environ.get("TEACHBOX_COIL100") or REPO.parent / "shared" / "data" / "coil100-dev")


def classes_of(src: Path):
    folders = sorted((p for p in src.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    return [(folder, list_images(folder)) for folder in folders if list_images(folder)]


def check_folders(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise VariantError(f"source folder {str(src)!r} does not exist")
    s, d = src.resolve(), dst.resolve()
    if d == s or s in d.parents or d in s.parents:
        raise VariantError(f"the copy {str(dst)!r} must be outside the source {str(src)!r} (and not hold it)")
    if d.exists() and (not d.is_dir() or any(d.iterdir())):
        raise VariantError(f"{str(dst)!r} exists and is not an empty folder: choose a new one")


def _noise(pixels: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(pixels.astype(np.float32) + rng.normal(0.0, sigma, pixels.shape), 0, 255).astype(np.uint8)


def _fit_height(image: Image.Image, height: int, max_width: int) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    if width > max_width:
        width, height = max_width, max(1, round(image.height * max_width / image.width))
    return image.resize((width, height), Image.BILINEAR)


class Clutter:
    """Pictures to fill a scene with, read when first used."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise VariantError(f"clutter folder {str(folder)!r} does not exist: give --clutter DIR "
                               "(any folder of pictures, e.g. COIL-100)")
        self.paths = sorted((p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                            key=lambda p: natural_key(str(p)))
        if not self.paths:
            raise VariantError(f"clutter folder {str(folder)!r} holds no pictures")

    def scene(self, rng: np.random.Generator) -> Image.Image:
        width, height = SCENE
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0.0, 1.0, height)[:, None, None]
        pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((1, width, 1))
        scene = Image.fromarray(_noise(pixels, 6.0, rng))
        for _ in range(int(rng.integers(8, 15))):
            thing = Image.fromarray(load_rgb(self.paths[int(rng.integers(len(self.paths)))]))
            thing = _fit_height(thing, int(rng.integers(60, 201)), width // 2)
            scene.paste(thing, (int(rng.integers(-thing.width // 3, width - thing.width * 2 // 3)),
                                int(rng.integers(-thing.height // 3, height - thing.height * 2 // 3))))
        return scene


def make(image: Image.Image, variant: str, rng: np.random.Generator, clutter: Optional[Clutter]) -> Image.Image:
    if variant == "mirror":
        return ImageOps.mirror(image)
    if variant == "rotate":
        angle = float(rng.uniform(30.0, 90.0)) * (1 if rng.random() < 0.5 else -1)
        pixels = np.asarray(image)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).mean(axis=0)
        return image.rotate(angle, resample=Image.BILINEAR, expand=False, fillcolor=tuple(int(v) for v in border))
    if variant == "dark":
        pixels = np.asarray(image).astype(np.float32)
        mean = pixels.mean(axis=(0, 1))
        out = (mean + (pixels - mean) * rng.uniform(0.4, 0.7)) * rng.uniform(0.25, 0.5)
        return Image.fromarray(_noise(out, 3.0, rng))
    if variant == "closeup":
        fraction = float(rng.uniform(0.5, 0.7))
        w, h = max(1, round(image.width * fraction)), max(1, round(image.height * fraction))
        cx = image.width / 2 + rng.uniform(-0.1, 0.1) * image.width
        cy = image.height / 2 + rng.uniform(-0.1, 0.1) * image.height
        left = int(np.clip(round(cx - w / 2), 0, image.width - w))
        top = int(np.clip(round(cy - h / 2), 0, image.height - h))
        return image.crop((left, top, left + w, top + h)).resize(image.size, Image.BILINEAR)
    if variant == "small-clutter":
        scene = clutter.scene(rng)
        width, height = SCENE
        thing = _fit_height(image, int(round(height * rng.uniform(0.25, 0.5))), width)
        scene.paste(thing, (int(rng.integers(0, width - thing.width + 1)),
                            int(rng.integers(0, height - thing.height + 1))))
        return Image.fromarray(_noise(np.asarray(scene), 4.0, rng))
    raise VariantError(f"variant {variant!r} is not one of {', '.join(VARIANTS)}")


def make_variants(src: Path, dst: Path, variant: str, *, seed: int = 0, clutter: Optional[Path] = None) -> int:
    """Write the variant of every picture of ``src`` into ``dst``; how many were written."""
    if variant not in VARIANTS:
        raise VariantError(f"variant {variant!r} is not one of {', '.join(VARIANTS)}")
    src, dst = Path(src), Path(dst)
    check_folders(src, dst)
    classes = classes_of(src)
    if not classes:
        raise VariantError(f"{str(src)!r} has no sub-folders of pictures (one per class)")
    scenes = Clutter(clutter or default_clutter()) if variant == "small-clutter" else None
    written: List[str] = []
    for class_index, (folder, paths) in enumerate(classes):
        (dst / folder.name).mkdir(parents=True, exist_ok=True)
        for image_index, path in enumerate(paths):
            rng = np.random.default_rng([seed, class_index, image_index])
            out = make(Image.fromarray(load_rgb(path)), variant, rng, scenes)
            target = dst / folder.name / path.name
            options = {"quality": JPEG_QUALITY} if path.suffix.lower() in (".jpg", ".jpeg") else {}
            out.save(target, **options)
            written.append(f"{folder.name}/{path.name}")
    facts = {"source": str(src.resolve()), "variant": variant, "seed": seed, "images": len(written),
             "clutter": str((clutter or default_clutter()).resolve()) if scenes else None}
    (dst / "variant.json").write_text(json.dumps(facts, indent=2) + "\n")
    return len(written)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="class-per-folder data set (never written to)")
    parser.add_argument("dst", type=Path, help="new folder for the copy (must not exist or be empty)")
    parser.add_argument("--variant", required=True, choices=VARIANTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clutter", type=Path, help="pictures for small-clutter scenes "
                                                     f"(default: {default_clutter()})")
    args = parser.parse_args(argv)
    try:
        count = make_variants(args.src, args.dst, args.variant, seed=args.seed, clutter=args.clutter)
    except VariantError as exc:
        print(f"make_variants: {exc}", file=sys.stderr)
        return 2
    print(f"{count} {args.variant} pictures in {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
