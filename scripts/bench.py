#!/usr/bin/env python3
"""Benchmarks of the per-frame loop, measured side by side in one run (prints figures).

    .venv/bin/python scripts/bench.py [--model PATH] [--frames N] [--threads T]

1. The whole loop (capture -> preprocess -> invoke -> classify) with the synthetic
   camera at 320x240 and at model size (224x224, what the Pi's ISP delivers), and
   with an image folder when --folder is given: fps and per-stage latency.
2. The loop with the phone page served by waitress: no browser, 4 browsers polling
   status and JPEG frames at the page's own rate (4 a second), and 4 clients fetching
   back to back (the loop never waits for the web; it only shares the CPU).
3. A neighbour holding idle connections open: how long a phone's GET /api/status
   takes beside 0, 150 and 300 idle sockets (300 is over the server's connection
   limit: the phone gets in once the idle ones are cut off).
4. The head alone: predict with 4, 16 and 64 taught classes, and teaching one example
   when a class already holds 10 or 10,000 examples (O(D): the ratio should be ~1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device.benchmark import _per_call_us  # noqa: E402
from device.camera import FolderCamera, SyntheticCamera  # noqa: E402
from device.embedder import Embedder  # noqa: E402
from device.head import NearestCentroidHead  # noqa: E402
from device.models import DEFAULT_MODEL  # noqa: E402


def bench_config(model, threads, state_dir):
    """The config both benchmarks build the box from (``device.app.build_box``, as `teachbox run`)."""
    from device.config import Config

    return (Config().override("model", path=str(model), threads=threads or 0)
            .override("storage", state_dir=str(state_dir)).override("web", host="127.0.0.1", port=0)
            .override("panel", gpio="mock"))


def bench_loop(embedder, camera, frames):
    from device.app import build_box

    with tempfile.TemporaryDirectory() as tmp:
        box = build_box(bench_config(embedder.model_path, embedder.num_threads, tmp), embedder=embedder, camera=camera)
        box.loop.teach_next(0, 3)
        for _ in range(10):  # warm up, teach a class so classify does real work
            box.step()
        started = time.perf_counter()
        for _ in range(frames):
            box.step()
        elapsed = time.perf_counter() - started
        latency = box.snapshot().loop.latency_ms
        box.close()
    return frames / elapsed, latency


def bench_page(model, threads, clients, pause, seconds=4.0):
    """Loop fps with ``clients`` threads fetching /api/status and /api/frame.jpg, ``pause`` s apart."""
    import threading
    import urllib.request

    from device.app import build_box
    from web_ui.server import PageServer

    with tempfile.TemporaryDirectory() as tmp:
        config = bench_config(model, threads, tmp)
        box = build_box(config, simulate=True, camera=SyntheticCamera(size=(224, 224), fps=0))
        page = PageServer(box, config)
        page.start()
        base = f"http://127.0.0.1:{page.port}"
        stop = threading.Event()
        fetched = [0]

        def client():
            while not stop.is_set():
                for path in ("/api/status", "/api/frame.jpg"):
                    urllib.request.urlopen(base + path, timeout=10).read()
                    fetched[0] += 1
                stop.wait(pause)

        def frames():
            return box.snapshot().loop.camera.frames

        runner = threading.Thread(target=box.run)
        runner.start()
        time.sleep(1.0)
        workers = [threading.Thread(target=client) for _ in range(clients)]
        for worker in workers:
            worker.start()
        before = frames()
        started = time.perf_counter()
        time.sleep(seconds)
        fps = (frames() - before) / (time.perf_counter() - started)
        requests = fetched[0] / (time.perf_counter() - started)
        stop.set()
        for worker in workers:
            worker.join()
        box.stop()
        runner.join()
        page.close()
        box.close()
        return fps, requests


def bench_idle(model, threads, idle_counts=(0, 150, 300)):
    """Seconds a new client's GET /api/status takes beside ``n`` idle connections, for each ``n``."""
    import socket
    import threading
    import urllib.request

    from device.app import build_box
    from web_ui.server import PageServer

    with tempfile.TemporaryDirectory() as tmp:
        config = bench_config(model, threads, tmp)
        box = build_box(config, simulate=True, camera=SyntheticCamera(size=(224, 224), fps=0))
        page = PageServer(box, config)
        page.start()
        runner = threading.Thread(target=box.run)
        runner.start()
        url = f"http://127.0.0.1:{page.port}/api/status"
        seconds = {}
        try:
            urllib.request.urlopen(url, timeout=60).read()
            for count in idle_counts:
                idle = [socket.create_connection(("127.0.0.1", page.port), timeout=60) for _ in range(count)]
                time.sleep(0.5)  # the server has accepted what it takes
                started = time.perf_counter()
                urllib.request.urlopen(url, timeout=60).read()
                seconds[count] = time.perf_counter() - started
                for sock in idle:
                    sock.close()
                time.sleep(0.5)
        finally:
            box.stop()
            runner.join()
            page.close()
            box.close()
        return seconds


def per_call_us(fn, repeat=2000):
    return _per_call_us(fn, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(Path("models") / DEFAULT_MODEL))
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--folder", help="an image folder to replay as a third camera")
    args = parser.parse_args()
    embedder = Embedder(args.model, num_threads=args.threads)
    print(f"model {embedder.model_path.name}  runtime {embedder.runtime}  threads {embedder.num_threads}")
    print(f"{'camera':28} {'fps':>7} {'capture':>8} {'prep':>8} {'invoke':>8} {'classify':>9}  (ms, EMA)")
    cameras = [("synthetic 320x240", SyntheticCamera(size=(240, 320), fps=0)),
               ("synthetic 224x224 (ISP-sized)", SyntheticCamera(size=(224, 224), fps=0))]
    if args.folder:
        cameras.append((f"folder {Path(args.folder).name}", FolderCamera(args.folder)))
    for label, camera in cameras:
        fps, lat = bench_loop(embedder, camera, args.frames)
        print(f"{label:28} {fps:7.1f} {lat['capture']:8.2f} {lat['preprocess']:8.2f} "
              f"{lat['invoke']:8.2f} {lat['classify']:9.3f}")

    print("\nloop with the phone page (synthetic 224x224):")
    for clients, pause, label in ((0, 0, "no browser"), (4, 0.25, "4 browsers at the page's rate"),
                                  (4, 0.0, "4 clients flooding"), (0, 0, "no browser")):
        fps, requests = bench_page(args.model, args.threads, clients, pause)
        print(f"  {label:30} loop {fps:6.1f} fps, page {requests:6.1f} requests/s")

    print("\na phone's GET /api/status beside idle connections (a neighbour holding sockets open):")
    for count, seconds in bench_idle(args.model, args.threads).items():
        print(f"  {count:4d} idle sockets  {seconds:7.3f} s")

    rng = np.random.default_rng(0)
    query = rng.random(embedder.dim, dtype=np.float32)
    print("\nhead.predict (us per call):")
    for classes in (4, 16, 64):
        head = NearestCentroidHead(embedder.dim, classes)
        for c in range(classes):
            head.teach(c, rng.random(embedder.dim, dtype=np.float32))
        print(f"  {classes:3d} classes  {per_call_us(lambda: head.predict(query)):8.1f}")
    print("head.teach + undo (us per pair), class already holding N examples:")
    costs = {}
    for existing in (10, 10_000):
        head = NearestCentroidHead(embedder.dim, 4, undo_depth=16)
        for _ in range(existing):
            head.teach(0, query)
        costs[existing] = per_call_us(lambda: (head.teach(0, query), head.undo(0)), repeat=1000)
        print(f"  N={existing:6d}  {costs[existing]:8.1f}")
    print(f"  ratio N=10000 / N=10: {costs[10_000] / costs[10]:.2f}")


if __name__ == "__main__":
    main()
