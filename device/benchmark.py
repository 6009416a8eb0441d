"""``teachbox bench``: the loop measured against its limit, the model's own work, in one run.

Every figure is measured here, on this machine, side by side: blocks of bare model calls
and blocks of the whole loop alternate, and the ratios are medians of neighbouring blocks
(a busy or throttling machine slows both alike).  Nothing here is asserted: tests never
time things; this prints what it measured.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from .camera import Camera

ROUNDS = 12  # alternating blocks of bare calls and of the loop
BLOCK = 40  # frames per block


class RingCamera(Camera):
    """An unpaced camera of ready frames (what the Pi's ISP delivers: model-sized, no CPU spent on them)."""

    name = "ring"

    def __init__(self, frames: List[np.ndarray]) -> None:
        self._frames = frames
        self._next = 0

    def read(self) -> np.ndarray:
        self._next = (self._next + 1) % len(self._frames)
        return self._frames[self._next]


class ClockedCamera(RingCamera):
    """Frames on its own clock, like picamera2: ``read()`` waits for the next frame finished after the call."""

    name = "clocked"
    clocked = True

    def __init__(self, frames: List[np.ndarray], fps: float) -> None:
        super().__init__(frames)
        self.interval = 1.0 / fps
        self._epoch = time.perf_counter()

    def read(self) -> np.ndarray:
        now = time.perf_counter()
        ticks = int((now - self._epoch) / self.interval) + 1
        time.sleep(max(0.0, self._epoch + ticks * self.interval - now))
        return super().read()


def bench_frames(size, count: int = 8, seed: int = 0) -> List[np.ndarray]:
    """Model-sized frames of a drawn scene with noise (a real model does the same work on any picture)."""
    from .camera import SyntheticCamera

    rng = np.random.default_rng(seed)
    scene = SyntheticCamera(size=tuple(size), fps=0)
    frames = []
    for _ in range(count):
        frame = scene.read().astype(np.int16) + rng.integers(-8, 9, (*size, 3))
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def bench_config(config, state_dir: Path):
    return (config.override("storage", state_dir=str(state_dir)).override("web", host="127.0.0.1", port=0)
            .override("panel", gpio="mock"))


def _block_fps(fn: Callable[[], object], frames: int) -> float:
    started = time.perf_counter()
    for _ in range(frames):
        fn()
    return frames / (time.perf_counter() - started)


def side_by_side(bare: Callable[[], object], loop: Callable[[], object], rounds: int = ROUNDS,
                 block: int = BLOCK) -> Dict[str, float]:
    """Median fps of ``bare`` and ``loop`` in alternating blocks, and the median of their ratios."""
    bares, loops, ratios = [], [], []
    for _ in range(rounds):
        b = _block_fps(bare, block)
        lo = _block_fps(loop, block)
        bares.append(b)
        loops.append(lo)
        ratios.append(lo / b)
    return {"bare": statistics.median(bares), "loop": statistics.median(loops), "ratio": statistics.median(ratios)}


def _percentiles(samples: List[float]) -> Dict[str, float]:
    if not samples:
        return {"median_ms": 0.0, "p99_ms": 0.0}
    values = np.asarray(samples) * 1000.0
    return {"median_ms": round(float(np.median(values)), 3), "p99_ms": round(float(np.percentile(values, 99)), 3)}


def measure_loop(config, source, state_dir: Path) -> dict:
    """The limit (the source's model on a prepared frame), the loop with an unpaced camera and a clocked one."""
    from .app import build_box

    frames = bench_frames(source.input_size)
    prepared = source.prepare(frames[0])
    for _ in range(10):
        source.infer(prepared)
    box = build_box(bench_config(config, state_dir / "loop"), embedder=source, camera=RingCamera(frames))
    try:
        box.loop.camera.stream()  # as `teachbox run` reads: ahead of the model
        for class_id in range(2):  # two classes taught: the head does its real work
            box.loop.teach_next(class_id, 3)
            for _ in range(8):
                box.step()
        for _ in range(10):
            box.step()
        fitter = getattr(box, "fitter", None)
        if fitter is not None:
            fitter.settle()
        stages = box.loop.sample_stages()
        pipeline = side_by_side(lambda: source.infer(prepared), box.step)
        samples = stages.stop()
    finally:
        box.close()
    invoke_fps = pipeline["bare"]
    clocked = {}
    for streaming in (True, False):
        camera_fps = invoke_fps * 1.05  # just above the model's rate: the hard case
        box = build_box(bench_config(config, state_dir / f"clocked-{streaming}"), embedder=source,
                        camera=ClockedCamera(frames, camera_fps))
        try:
            box.loop.camera.stream(streaming)
            for _ in range(10):
                box.step()
            fps = statistics.median(_block_fps(box.step, BLOCK) for _ in range(ROUNDS // 2))
        finally:
            box.close()
        clocked["streaming" if streaming else "on_request"] = fps / min(camera_fps, invoke_fps)
    return {"invoke_fps": round(invoke_fps, 1), "loop_fps": round(pipeline["loop"], 1),
            "pipeline_ratio": round(pipeline["ratio"], 3), "clock_ratio": round(clocked["streaming"], 3),
            "clock_ratio_frames_on_request": round(clocked["on_request"], 3),
            "stages": {stage: _percentiles(values) for stage, values in samples.items()}}


def measure_web_load(config, source, state_dir: Path, clients: int = 10, pause: float = 0.25,
                     seconds: float = 3.0) -> dict:
    """Loop fps with no page client and with ``clients`` polling status and the live view ``pause`` s apart."""
    from web_ui.server import PageServer

    from .app import build_box

    config = bench_config(config, state_dir / "web").override("web", require_unlock=False)
    box = build_box(config, embedder=source, camera=RingCamera(bench_frames(source.input_size)))
    page = PageServer(box, config)
    page.start()
    base = f"http://127.0.0.1:{page.port}"
    stop = threading.Event()
    polling = threading.Event()
    runner = threading.Thread(target=box.run, name="bench-loop")
    runner.start()

    def client() -> None:
        while not stop.is_set():
            if polling.is_set():
                for path in ("/api/status", "/api/frame.jpg"):
                    try:
                        urllib.request.urlopen(base + path, timeout=10).read()
                    except OSError:
                        pass
            stop.wait(pause)

    def fps_over(window: float) -> float:
        before, started = box.loop.camera.frames, time.perf_counter()
        time.sleep(window)
        return (box.loop.camera.frames - before) / (time.perf_counter() - started)

    workers = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for worker in workers:
        worker.start()
    idle, loaded = [], []
    try:
        time.sleep(1.0)
        for _ in range(3):  # alternating windows
            polling.clear()
            time.sleep(0.3)
            idle.append(fps_over(seconds / 3))
            polling.set()
            time.sleep(0.3)
            loaded.append(fps_over(seconds / 3))
    finally:
        stop.set()
        for worker in workers:
            worker.join(15)
        box.stop()
        runner.join(15)
        page.close()
        box.close()
    ratios = [b / a for a, b in zip(idle, loaded) if a]
    return {"web_idle_fps": round(statistics.median(idle), 1), "web_loaded_fps": round(statistics.median(loaded), 1),
            "web_load_ratio": round(statistics.median(ratios), 3) if ratios else 0.0, "web_clients": clients}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure_start(model_dirs, source_name: str, model_path: str = "", timeout: float = 120.0) -> dict:
    """`teachbox run --simulate` started as systemd would: process start -> READY=1 (its first answer),
    and its peak resident memory once the page has answered a few times."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(path)
        server.settimeout(0.01)
        port = _free_port()
        command = [sys.executable, "-m", "device", "--log-level", "warning", "run", "--simulate",
                   "--state-dir", os.path.join(tmp, "state"), "--host", "127.0.0.1", "--port", str(port)]
        if model_dirs:
            command += ["--model-dir", str(model_dirs[0])]
        if source_name != "picture":
            command += ["--source", source_name]
        if model_path:
            command += ["--model", str(Path(model_path).resolve())]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=dict(os.environ, NOTIFY_SOCKET=path), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        ready = None
        rss = None
        try:
            while ready is None and time.perf_counter() - started < timeout and process.poll() is None:
                try:
                    if b"READY=1" in server.recv(4096):
                        ready = time.perf_counter() - started
                except socket.timeout:
                    pass
            for _ in range(20):  # the page up and used
                for page in ("/", "/api/status", "/api/frame.jpg"):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=5).read()
                    except OSError:
                        pass
                time.sleep(0.05)
            rss = _peak_rss_mb(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            server.close()
    return {"first_answer_s": None if ready is None else round(ready, 2), "rss_mb": rss}


def _peak_rss_mb(pid: int) -> Optional[float]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def measure_heads(dim: int, sizes=(10, 100, 1000, 10000), classes: int = 4, seed: int = 0) -> dict:
    """Teach (one example), refit and predict time per head at each number of examples (drawn vectors)."""
    from . import metric
    from .head import NearestCentroidHead

    rng = np.random.default_rng(seed)
    centres = rng.random((classes, dim)) * 2
    query = np.clip(centres[1] + rng.normal(0, 0.8, dim), 0, 6).astype(np.float32)
    fits = {"metric (default)": metric.fit, "nearest centroid": metric.fit_cosine,
            "k=3 neighbours": metric.fit_neighbours}
    table: Dict[str, Dict[int, dict]] = {name: {} for name in fits}
    for n in sizes:
        labels = np.arange(n) % classes
        vectors = np.clip(centres[labels] + rng.normal(0, 0.8, (n, dim)), 0, 6).astype(np.float32)
        live = NearestCentroidHead(dim, classes)
        for v, c in zip(vectors, labels):
            live.teach(int(c), v)
        teach_us = _per_call_us(lambda: (live.teach(0, query), live.undo(0)), 300)
        for name, fit in fits.items():
            started = time.perf_counter()
            fitted = fit(vectors, labels, classes)
            refit_ms = (time.perf_counter() - started) * 1000
            table[name][n] = {"teach_us": round(teach_us, 1), "refit_ms": round(refit_ms, 1),
                              "predict_us": round(_per_call_us(lambda: fitted.predict(query), 50), 1)}
    return table


def _per_call_us(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        runs.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(runs)


def run_bench(config, source, *, source_name: str, heads: bool = True, start: bool = True) -> dict:
    """Every figure of ``teachbox bench`` in one object."""
    described = source.describe()
    result = {"machine": machine(), "model": described["model"], "source": source_name,
              "threads": described["threads"], "runtime": f"{described['runtime']} {described['runtime_version']}"}
    with tempfile.TemporaryDirectory() as tmp:
        result.update(measure_loop(config, source, Path(tmp)))
        result.update(measure_web_load(config, source, Path(tmp)))
    if start:
        result.update(measure_start(config.model_dirs, source_name, config.model.path))
    if heads:
        result["heads"] = measure_heads(source.dim)
    return result


def machine() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith(("model name", "Model")))
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{os.uname().machine}, {os.cpu_count()} cores, {model}"


def render(result: dict) -> str:
    """The figures as a reader wants them."""
    lines = [f"teachbox bench on {result['machine']}",
             f"model {result['model']} ({result['source']}), {result['runtime']}, {result['threads']} threads", "",
             f"the limit: the model alone          {result['invoke_fps']:8.1f} frames/s",
             f"the loop (unpaced, model-sized)     {result['loop_fps']:8.1f} frames/s   pipeline_ratio "
             f"{result['pipeline_ratio']:.3f}",
             f"a clocked camera at 1.05x the model  clock_ratio {result['clock_ratio']:.3f}  (frames read on "
             f"request instead of ahead: {result['clock_ratio_frames_on_request']:.3f})",
             "per stage (ms)       median      p99"]
    for stage, figures in result["stages"].items():
        lines.append(f"  {stage:16} {figures['median_ms']:9.3f} {figures['p99_ms']:9.3f}")
    lines.append(f"with {result['web_clients']} page clients    {result['web_loaded_fps']:.1f} against "
                 f"{result['web_idle_fps']:.1f} frames/s   web_load_ratio {result['web_load_ratio']:.3f}")
    if "first_answer_s" in result:
        lines.append(f"start -> first answer {result['first_answer_s']} s, peak memory {result['rss_mb']} MB")
    for head, rows in result.get("heads", {}).items():
        lines.append(f"head {head}:")
        for n, figures in rows.items():
            lines.append(f"  {n:6d} examples  teach {figures['teach_us']:7.1f} us  refit {figures['refit_ms']:8.1f} ms"
                         f"  predict {figures['predict_us']:8.1f} us")
    return "\n".join(lines)
