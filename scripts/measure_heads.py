#!/usr/bin/env python3
"""Heads side by side: plain cosine nearest centroid, kNN-3 and the shared-metric head (prints figures).

    .venv/bin/python scripts/measure_heads.py [--model PATH] [--episodes 50] [--cache DIR] [--sets a,b]

Data: ``coil100-dev`` as it is (black background; also with the *arc* protocol: the
support is consecutive turntable views), three harder variants made here from it (each
image composed once with a seeded generator, so every run sees the same pictures), and
``hands-dev``:

- ``coil-clutter``: every view pasted at a random size and place onto its own
  background (a random crop of a real photo from ``poses-dev``/``faces-dev`` or a random
  texture/gradient), brightness and colour cast changed: support and queries never share
  a background.
- ``coil-scene``: every view pasted at a random size and place into one fixed scene (one
  real photo), mild brightness changes: a box watching one table.
- ``coil-light``: black background, off-centre crops (60-90% of the frame, anywhere)
  and strong brightness changes (x0.45 to x1.6).

Embeddings (the box's own preprocessing and model) are cached as .npz files in
``--cache`` (default: a folder in the system's temp dir, never the repo); the first run
embeds ~14,000 images (a few minutes), later runs take ~3 minutes.

Every episode draws the support at random per class and asks up to ``--queries`` other
images per class, the same draws for every head.  Nothing a head sees comes from the
queries: thresholds and temperatures come from the support only, and ``metric`` (as the
box runs it) is centred on the support's own mean.  A second line, ``metric, camera
mean``, centres on the mean of every image of the episode, unlabelled, never-taught
queries included: optimistic, a camera has not seen the strangers before they come.  The
box once centred on its running mean of the frames it saw; those are mostly the taught
things themselves, and then thresholds fitted a class left out at a time no longer
matched a real stranger (tests/test_fitter.py has the case).

1. closed-set accuracy at 1/5/10/30 shots, ``--ways`` classes (all three for hands-dev);
2. open set: ``--unknown-classes`` more classes are never taught and their images asked
   too (hands-dev: 2 taught, 1 held out): unknown AUROC (the head's own novelty score,
   taught-class queries against never-taught ones), open-set accuracy (every query
   counted; a never-taught one is right only when answered "unknown"), and how often
   taught-class queries are called "unknown";
3. calibration: expected calibration error (10 bins) and the share right among answers
   with confidence >= 0.9, on the closed set and on every answer of the open set; the
   calibration curve; what ``sensitivity`` trades; bursts (holds of noisy frames) with and
   without burst ids; the fit's cost for 16 classes x 50 and x 500 examples.

Nothing is asserted: the figures are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device import metric  # noqa: E402
from device.camera import list_images, load_rgb  # noqa: E402
from device.evaluate import auroc, calibration_error, load_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CANVAS = 224  # the model's input size: composed pictures need no further resize
VARIANT_SEED = 20240610


# -- the harder variants ----------------------------------------------------------------
def object_alpha(image: np.ndarray) -> np.ndarray:
    """A soft mask of a COIL object on its dark background (~26 of 255; 0 = background, 1 = object).

    Pixels brighter than the background, closed (small dark holes filled) and softened.
    """
    bright = Image.fromarray(((image.max(axis=2) > 36) * 255).astype(np.uint8))
    closed = bright.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))
    soft = closed.filter(ImageFilter.GaussianBlur(1.0))
    return np.asarray(soft).astype(np.float32) / 255.0


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random background: a colour gradient with stripes, blobs or noise on it."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, np.pi)
    ramp = (np.cos(angle) * x + np.sin(angle) * y)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    picture = low + ramp[..., None] * (high - low)
    kind = rng.integers(0, 3)
    if kind == 0:  # stripes
        period = rng.uniform(0.03, 0.3)
        stripes = (np.sin((x * np.cos(angle + 1) + y * np.sin(angle + 1)) * 2 * np.pi / period) > 0)
        picture = picture * (0.6 + 0.4 * stripes[..., None])
    elif kind == 1:  # blobs
        for _ in range(int(rng.integers(3, 12))):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.04, 0.25)
            inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r
            picture[inside] = rng.uniform(0, 255, 3)
    picture = picture + rng.normal(0, rng.uniform(2, 25), picture.shape)
    return np.clip(picture, 0, 255).astype(np.uint8)


def photo_crop(rng: np.random.Generator, photos: List[np.ndarray], size: int) -> np.ndarray:
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.3, 1.0) * min(h, w))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[top:top + side, left:left + side])
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


def paste(rng: np.random.Generator, image: np.ndarray, background: np.ndarray, scale_range) -> np.ndarray:
    """The object at a random size and off-centre place on ``background`` (CANVAS x CANVAS)."""
    side = int(rng.uniform(*scale_range) * CANVAS)
    obj = np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR)).astype(np.float32)
    alpha = object_alpha(obj.astype(np.uint8))[..., None]
    top, left = int(rng.integers(0, CANVAS - side + 1)), int(rng.integers(0, CANVAS - side + 1))
    out = background.astype(np.float32).copy()
    region = out[top:top + side, left:left + side]
    out[top:top + side, left:left + side] = alpha * obj + (1 - alpha) * region
    return out


def light(rng: np.random.Generator, picture: np.ndarray, gain_range, cast: float) -> np.ndarray:
    gain = rng.uniform(*gain_range) * rng.uniform(1 - cast, 1 + cast, 3)
    return np.clip(picture * gain, 0, 255).astype(np.uint8)


def background_photos() -> List[np.ndarray]:
    paths = list((SHARED / "data" / "faces-dev").glob("*.*"))
    poses = SHARED / "data" / "poses-dev"
    if poses.is_dir():
        for folder in sorted(p for p in poses.iterdir() if p.is_dir()):
            paths.extend(list_images(folder))
    photos = []
    for path in sorted(paths):
        try:
            photo = load_rgb(path)
        except OSError:
            continue
        if min(photo.shape[:2]) >= 64:
            photos.append(photo)
    return photos


def make_variant(kind: str, image: np.ndarray, rng: np.random.Generator, photos, scene) -> np.ndarray:
    if kind == "coil-clutter":
        background = photo_crop(rng, photos, CANVAS) if photos and rng.random() < 0.5 else texture(rng, CANVAS)
        return light(rng, paste(rng, image, background, (0.45, 0.85)), (0.6, 1.4), 0.15)
    if kind == "coil-scene":
        return light(rng, paste(rng, image, scene, (0.5, 0.8)), (0.8, 1.2), 0.03)
    if kind == "coil-light":
        side = int(rng.uniform(0.6, 0.9) * image.shape[0])
        top, left = (int(rng.integers(0, image.shape[0] - side + 1)), int(rng.integers(0, image.shape[1] - side + 1)))
        crop = image[top:top + side, left:left + side].astype(np.float32)
        return light(rng, crop, (0.45, 1.6), 0.1)
    raise ValueError(kind)


VARIANTS = ("coil-clutter", "coil-scene", "coil-light")


# -- embeddings, cached outside the repo ------------------------------------------------
def embed_set(embedder, name: str, dataset: Dict[str, List[Path]], cache: Path) -> Dict[str, np.ndarray]:
    """``{class: (n, D) embeddings}`` of a data set or of one of its variants, cached by content."""
    key = hashlib.sha256(("|".join(f"{c}:{len(p)}" for c, p in dataset.items()) + name
                          + embedder.sha256 + str(VARIANT_SEED)).encode()).hexdigest()[:16]
    path = cache / f"{name}-{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return {c: stored[c] for c in dataset}
    started = time.perf_counter()
    rng = np.random.default_rng(VARIANT_SEED)
    photos = background_photos() if name in VARIANTS else []
    scene = photo_crop(np.random.default_rng(VARIANT_SEED + 1), photos, CANVAS) if photos else None
    if name == "coil-scene" and scene is None:
        scene = texture(np.random.default_rng(VARIANT_SEED + 1), CANVAS)
    out = {}
    for cls, paths in dataset.items():
        rows = []
        for p in paths:
            frame = load_rgb(p)
            if name in VARIANTS:
                frame = make_variant(name, frame, rng, photos, scene)
            rows.append(embedder.embed(frame).copy())
        out[cls] = np.stack(rows).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    print(f"  embedded {name}: {sum(len(v) for v in out.values())} images in "
          f"{time.perf_counter() - started:.0f} s (cached in {path})", flush=True)
    return out


def load_sets(embedder, cache: Path, names) -> Dict[str, List[np.ndarray]]:
    coil = SHARED / "data" / "coil100-dev"
    hands = SHARED / "data" / "hands-dev"
    sets = {}
    for name in names:
        source = hands if name == "hands-dev" else coil
        if not source.is_dir():
            print(f"  {name}: {source} not found, skipped")
            continue
        sets[name] = list(embed_set(embedder, name, load_dataset(source), cache).values())
    return sets


def default_cache() -> Path:
    return Path(tempfile.gettempdir()) / "teachbox-measure-heads"


# -- episodes and figures ------------------------------------------------------------------
def calibration(confidence: np.ndarray, right: np.ndarray, bins: int = 10):
    """(expected calibration error, fraction right among confidence >= 0.9, how many those are)."""
    if not len(confidence):
        return float("nan"), float("nan"), 0
    ece = calibration_error(confidence, right, bins)
    sure = confidence >= 0.9
    return float(ece), float(right[sure].mean()) if sure.any() else float("nan"), int(sure.sum())


def draw_episode(data: List[np.ndarray], ways: int, unknown: int, shots: int, per_class: int,
                 rng: np.random.Generator, protocol: str = "random", burst: int = 0, one_hold: bool = False):
    """Support (vectors, labels, bursts) and queries (vectors, labels; -1 = a class never taught).

    ``protocol``: ``random`` views, or ``arc`` (``shots`` consecutive turntable views, the
    queries from the rest of the turn).  ``burst`` > 0: every support view becomes a hold
    of ``burst`` frames (the view's features x (1 + 0.3 N(0, 1)), about what camera noise
    does to them), one burst id per hold.  ``one_hold``: a class's whole support is one
    burst (a user turning the thing while holding its button once).
    """
    chosen = rng.choice(len(data), ways + unknown, replace=False)
    sx, sy, qx, qy = [], [], [], []
    for j, c in enumerate(chosen):
        e = data[c]
        if protocol == "arc":
            start = int(rng.integers(len(e)))
            support = (start + np.arange(shots)) % len(e)
            order = np.concatenate([support, rng.permutation(np.setdiff1d(np.arange(len(e)), support))])
        else:
            order = rng.permutation(len(e))
        if j < ways:
            sx.append(e[order[:shots]])
            sy.extend([j] * shots)
            rest = order[shots:shots + per_class]
            qx.append(e[rest])
            qy.extend([j] * len(rest))
        else:
            qx.append(e[order[:per_class]])
            qy.extend([-1] * min(per_class, len(e)))
    sx, sy = np.concatenate(sx), np.array(sy)
    bursts = sy.copy() if one_hold else np.arange(len(sy))
    if burst:
        bursts = np.repeat(bursts, burst)
        sx = np.repeat(sx, burst, axis=0)
        sx = np.maximum(sx * (1 + 0.3 * rng.standard_normal(sx.shape)), 0).astype(np.float32)
        sy = np.repeat(sy, burst)
    return sx, sy, bursts, np.concatenate(qx), np.array(qy)


def run_episodes(heads, data, *, ways, unknown, shots, episodes, per_class, seed, protocol="random", burst=0,
                 one_hold=False):
    """{head: {figure: value}} over ``episodes`` draws (the same draws for every head).

    A head is ``make(vectors, labels, num_classes, bursts, stream_mean)``.
    """
    rng = np.random.default_rng(seed)
    out = {name: {"acc": [], "auroc": [], "open": [], "false_unknown": [], "conf": [], "right": [],
                  "open_conf": [], "open_right": [], "fit_ms": [], "untaught_named": []} for name in heads}
    for _ in range(episodes):
        sx, sy, bursts, qx, qy = draw_episode(data, ways, unknown, shots, per_class, rng, protocol, burst, one_hold)
        known = qy >= 0
        stream = np.concatenate([sx, qx]).mean(axis=0)  # what a camera would have seen, unlabelled
        for name, make in heads.items():
            started = time.perf_counter()
            head = make(sx, sy, ways, bursts, stream)
            out[name]["fit_ms"].append(1000 * (time.perf_counter() - started))
            a = head.assess(qx)
            out[name]["acc"].append(float(np.mean(a.best[known] == qy[known])))
            out[name]["conf"].append(a.confidence[known])
            out[name]["right"].append(a.best[known] == qy[known])
            if unknown:
                out[name]["auroc"].append(auroc(a.novelty[known], a.novelty[~known]))
                out[name]["open"].append(float(np.mean(a.class_ids == qy)))
                out[name]["false_unknown"].append(float(np.mean(a.class_ids[known] < 0)))
                out[name]["untaught_named"].append(float(np.mean(a.class_ids[~known] >= 0)))
                given = a.class_ids >= 0
                out[name]["open_conf"].append(a.confidence[given])
                out[name]["open_right"].append(a.class_ids[given] == qy[given])
    figures = {}
    for name, r in out.items():
        conf, right = np.concatenate(r["conf"]), np.concatenate(r["right"])
        ece, sure_right, sure_n = calibration(conf, right)
        f = {"acc": float(np.mean(r["acc"])), "ece": ece, "sure_right": sure_right, "sure_n": sure_n,
             "closed_n": len(conf), "confidences": conf, "rights": right,
             "fit_ms": float(np.median(r["fit_ms"]))}
        if unknown:
            o_ece, o_right, o_n = calibration(np.concatenate(r["open_conf"]), np.concatenate(r["open_right"]))
            f.update(auroc=float(np.nanmean(r["auroc"])), open=float(np.mean(r["open"])),
                     false_unknown=float(np.mean(r["false_unknown"])), open_sure_right=o_right, open_sure_n=o_n,
                     untaught_named=float(np.mean(r["untaught_named"])),
                     open_ece=o_ece)
        figures[name] = f
    return figures


HEADS = {
    "cosine NCM": lambda x, y, c, b, m: metric.fit_cosine(x, y, c),
    "kNN-3": lambda x, y, c, b, m: metric.fit_neighbours(x, y, c),
    "metric": lambda x, y, c, b, m: metric.fit(x, y, c, bursts=b),
}
STREAM_HEAD = {"metric, camera mean": lambda x, y, c, b, m: metric.fit(x, y, c, bursts=b, mean=m)}
SHOTS = (1, 5, 10, 30)


def pct(x: float) -> str:
    return "   -" if x != x else f"{100 * x:4.0f}" if x >= 0.995 or x < 0.1 else f"{100 * x:4.1f}"


def fit_cost(sets, repeats: int = 3) -> None:
    """Fit time for 16 classes x 50 and x 500 examples (D = 1024) and predict time per frame."""
    pools = [e for data in sets.values() for e in data]
    rng = np.random.default_rng(0)
    print("\n## Fit cost (this machine; real embeddings, x (1 + 0.1 N) copies where a class has too few)")
    for per in (50, 500):
        x = np.concatenate([np.maximum(pools[c][rng.integers(0, len(pools[c]), per)]
                                       * (1 + 0.1 * rng.standard_normal((per, pools[c].shape[1]))), 0)
                            for c in range(16)]).astype(np.float32)
        y = np.repeat(np.arange(16), per)
        mean = x.mean(axis=0)
        for solver in (None, "woodbury", "full") if per < 64 else (None,):
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                fitted = metric.fit(x, y, 16, mean=mean, solver=solver)
                times.append(time.perf_counter() - started)
            frame = pools[20][0]
            for _ in range(20):
                fitted.predict(frame)
            started = time.perf_counter()
            for _ in range(300):
                fitted.predict(frame)
            per_frame = (time.perf_counter() - started) / 300
            print(f"  16 x {per:3d} (n = {len(y):4d}), {fitted.solver:8s}: fit {1000 * min(times):6.0f} ms "
                  f"(best of {repeats}), predict {1e6 * per_frame:4.0f} us/frame")


def curve(results, closed, shots: int = 5, head: str = "metric") -> None:
    """The calibration curve: accuracy per confidence bin (closed set, every data set pooled)."""
    edges = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001]
    print(f"\n## Calibration curve of `{head}` at 1 and {shots} shots (closed set, all data sets pooled): "
          "confidence bin: mean confidence / % right / answers")
    for s in (1, shots):
        conf = np.concatenate([results[(label, w, u, s)][head]["confidences"] for label, w, u in closed])
        right = np.concatenate([results[(label, w, u, s)][head]["rights"] for label, w, u in closed])
        cells = []
        for low, high in zip(edges[:-1], edges[1:]):
            inside = (conf >= low) & (conf < high)
            if inside.any():
                cells.append(f"[{low:.2f},{min(high, 1):.2f}): {conf[inside].mean():.3f}/{pct(right[inside].mean())}/"
                             f"{int(inside.sum())}")
        print(f"  {s:2d} shots  " + "  ".join(cells))


def with_and_without_burst_ids(sets, args, title, names, **episode) -> None:
    """The metric head with the burst ids given and without, on ``names``, 10-way + 10 held out."""
    print(f"\n## {title}")
    print(f"  {'data':24s} {'burst ids given':16s} accuracy  AUROC  open-set  taught called unknown  "
          "never-taught named")
    for name in names:
        if name not in sets:
            continue
        for given in (True, False):
            make = {"m": (lambda x, y, c, b, m: metric.fit(x, y, c, bursts=b)) if given
                    else (lambda x, y, c, b, m: metric.fit(x, y, c))}
            f = run_episodes(make, sets[name], ways=10, unknown=10, episodes=max(10, args.episodes // 5),
                             per_class=args.queries, **episode)["m"]
            print(f"  {name:24s} {str(given):16s} {pct(f['acc']):>8s}  {f['auroc']:.3f}  {pct(f['open']):>8s}  "
                  f"{pct(f['false_unknown']):>21s}  {pct(f['untaught_named']):>18s}")


def sweep(sets, args) -> None:
    """What the one setting does: open-set figures of the metric head at several sensitivities (10 shots)."""
    print("\n## Sensitivity (10 shots; 10-way + 10 held out, hands-dev 2 + 1): open-set accuracy % / taught "
          "called unknown % / never-taught named %")
    values = (0.2, 0.35, 0.5, 0.65, 0.8)
    print(f"  {'data':24s} " + " ".join(f"{v:>18.2f}" for v in values))
    for name in ("coil-clutter", "coil-scene", "hands-dev"):
        if name not in sets:
            continue
        ways, unknown = (args.ways, args.unknown_classes) if len(sets[name]) >= 20 else (len(sets[name]) - 1, 1)
        heads = {v: (lambda x, y, c, b, m, v=v: metric.fit(x, y, c, bursts=b, sensitivity=v)) for v in values}
        f = run_episodes(heads, sets[name], ways=ways, unknown=unknown, shots=10,
                         episodes=max(10, args.episodes // 2), per_class=args.queries, seed=7)
        print(f"  {name:24s} " + " ".join(
            f"{pct(f[v]['open']):>6s}/{pct(f[v]['false_unknown']):>5s}/{pct(f[v]['untaught_named']):>5s}"
            for v in values))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="embedding model (default: the repo's or shared one)")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--ways", type=int, default=10)
    parser.add_argument("--unknown-classes", type=int, default=10, help="classes held out of teaching (coil sets)")
    parser.add_argument("--queries", type=int, default=30, help="queries per class and episode")
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("--sets", default="coil100-dev,coil-clutter,coil-scene,coil-light,hands-dev")
    args = parser.parse_args(argv)
    from device.embedder import Embedder
    from device.models import DEFAULT_MODEL

    model = args.model or next((p for p in (REPO / "models" / DEFAULT_MODEL, SHARED / "models" / DEFAULT_MODEL)
                                if p.is_file()), None)
    if model is None:
        print(f"model {DEFAULT_MODEL} not found: pass --model")
        return 2
    started = time.perf_counter()
    embedder = Embedder(model, num_threads=2)
    sets = load_sets(embedder, args.cache, args.sets.split(","))
    print(f"model {Path(model).name}; {args.episodes} episodes per cell; support at random per class, "
          f"at most {args.queries} queries per class; ``metric`` centred on the support's own mean, "
          "``camera mean`` on the mean of every image of the episode (never-taught ones included)")
    runs = []  # (set label, ways, unknown, protocol, burst)
    for name, data in sets.items():
        if len(data) >= args.ways + args.unknown_classes:
            runs.append((name, data, args.ways, args.unknown_classes, "random"))
            if name == "coil100-dev":
                runs.append((name + " arc", data, args.ways, args.unknown_classes, "arc"))
        else:  # hands-dev: closed set with every class, open set with one held out
            runs.append((name, data, len(data), 0, "random"))
            runs.append((name, data, len(data) - 1, 1, "random"))
    results = {}
    section = time.perf_counter()
    for label, data, ways, unknown, protocol in runs:
        for shots in SHOTS:
            heads = dict(HEADS, **STREAM_HEAD)
            results[(label, ways, unknown, shots)] = run_episodes(
                heads, data, ways=ways, unknown=unknown, shots=shots, episodes=args.episodes,
                per_class=args.queries, seed=shots, protocol=protocol)
    heads = list(HEADS) + list(STREAM_HEAD)
    print(f"(episodes: {time.perf_counter() - section:.0f} s)")

    def table(title, keys, cell, columns="shots " + " ".join(f"{s:>14d}" for s in SHOTS)):
        print(f"\n## {title}")
        print(f"  {'data':24s} {'head':20s} {columns}")
        for label, ways, unknown in keys:
            for head in heads:
                cells = [cell(results[(label, ways, unknown, s)][head]) for s in SHOTS]
                print(f"  {label + f' ({ways}-way)':24s} {head:20s}       " + " ".join(f"{c:>14s}" for c in cells))

    closed = [(label, ways, unknown) for label, _, ways, unknown, _ in runs
              if unknown == 0 or not any(r[0] == label and r[3] == 0 for r in runs)]
    opened = [(label, ways, unknown) for label, _, ways, unknown, _ in runs if unknown]
    table("Closed-set accuracy % (the best class, unknown or not)", closed, lambda f: pct(f["acc"]))
    table("Unknown: AUROC (novelty of taught vs never-taught queries) / open-set accuracy % / taught called "
          "unknown %", opened, lambda f: f"{f['auroc']:.3f}/{pct(f['open'])}/{pct(f['false_unknown'])}")
    table("Calibration (closed set): ECE / % right among confidence >= 0.9 / how many of the queries those are",
          closed, lambda f: f"{f['ece']:.3f}/{pct(f['sure_right'])}/"
                            f"{pct(f['sure_n'] / max(1, f['closed_n']))}")
    table("Calibration (open set, every answer that names a class): % right among confidence >= 0.9",
          opened, lambda f: f"{pct(f['open_sure_right'])} of {f['open_sure_n']}")

    with_and_without_burst_ids(sets, args, "Bursts: every support view taught as a hold of 10 frames "
                               "(features x (1 + 0.3 N)), 5 views per class, 10-way + 10 held out",
                               ("coil-clutter", "coil-scene"), shots=5, seed=99, burst=10)
    with_and_without_burst_ids(sets, args, "One hold per class: 10 consecutive turntable views taught in one "
                               "burst per class, 10-way + 10 held out",
                               ("coil100-dev", "coil-clutter", "coil-scene", "coil-light"), shots=10, seed=98,
                               protocol="arc", one_hold=True)
    curve(results, closed)
    sweep(sets, args)
    section = time.perf_counter()
    fit_cost(sets)
    print(f"(fit cost: {time.perf_counter() - section:.0f} s)")
    print(f"\n(run time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
