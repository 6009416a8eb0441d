"""Figures of the examples library, side by side in one run (prints; asserts nothing).

    .venv/bin/python scripts/bench_library.py [--examples 5000] [--model PATH]

- start-up (build the box, first answer) and peak RSS with an empty library and with N stored examples;
- bytes per stored example (crop JPEG + embedding + SQLite overhead);
- teach latency (a burst handed over -> stored) and delete latency (request -> head rebuilt);
- what a 10-second hold writes: transactions, and bytes the process wrote (/proc/self/io).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

CHILD = """
import json, resource, sys, time
started = time.monotonic()
sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
from conftest import box_config
from device.app import build_box
from device.camera import SyntheticCamera
box = build_box(box_config({state!r}, model={{"path": {model!r}}}), simulate=True, camera=SyntheticCamera(fps=0))
built = time.monotonic()
box.step()
answered = time.monotonic()
print(json.dumps({{"build_s": built - started, "first_answer_s": answered - started,
                   "examples": sum(box.loop.head.counts),
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
box.close()
"""


def fill(state: Path, n: int, model_path: Path, folder: Optional[Path] = None) -> None:
    from device.camera import SyntheticCamera
    from device.embedder import Embedder
    from device.keeper import encode_jpeg
    from device.library import ExampleLibrary, NewExample
    from device.storage import model_identity

    embedder = Embedder(model_path, num_threads=2)
    if folder is not None:
        from device.camera import FolderCamera

        camera = FolderCamera(folder)
        camera.open()
    else:
        camera = SyntheticCamera(fps=0)
    crops = [embedder.prepare(camera.read()) for _ in range(50)]
    jpegs = [encode_jpeg(c) for c in crops]
    vectors = [embedder.to_stored(embedder.infer(c)) for c in crops]
    library = ExampleLibrary(state)
    sha = model_identity(embedder.describe()).sha256
    for start in range(0, n, 20):
        library.add([NewExample((start // 20) % 16, vectors[i % 50], jpegs[i % 50]) for i in range(start, start + 20)],
                    model=sha)
    library.close()


def start_figures(state: Path, model_path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO), tests=str(REPO / "tests"),
                                                             state=str(state), model=str(model_path))],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def hold_figures(state: Path, model_path: Path) -> dict:
    from conftest import box_config
    from device.app import build_box
    from device.camera import SyntheticCamera
    from device.library import ExampleLibrary

    config = box_config(state, model={"path": str(model_path)}, teaching={"rate": 4.0, "duplicate_similarity": 1.0})
    box = build_box(config, simulate=True, camera=SyntheticCamera(fps=30))
    adds = []
    real_add = ExampleLibrary.add

    def counted(self, examples, **kwargs):
        started = time.perf_counter()
        ids = real_add(self, examples, **kwargs)
        adds.append((len(examples), time.perf_counter() - started))
        return ids

    ExampleLibrary.add = counted
    try:
        box.step()
        before = written_bytes()
        box.loop.start_teaching(0)
        end = time.monotonic() + 10.0
        while time.monotonic() < end:
            box.step()
        box.loop.stop_teaching()
        handed = time.perf_counter()
        box.step()
        box.loop.keeper.settle()
        stored = time.perf_counter() - handed
        after = written_bytes()
        ids = [e.id for e in box.examples(0, limit=1).examples]
        started = time.perf_counter()
        box.delete_examples(ids)
        deleted = time.perf_counter() - started
    finally:
        ExampleLibrary.add = real_add
        box.close()
    return {"hold_examples": sum(n for n, _ in adds), "hold_transactions": len(adds),
            "hold_bytes_written": after - before, "commit_ms": [round(t * 1000, 1) for _, t in adds],
            "last_burst_stored_ms": round(stored * 1000, 1), "delete_ms": round(deleted * 1000, 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--folder", type=Path, help="crops from these photos (default: the synthetic scene)")
    args = parser.parse_args()
    from conftest import _model_candidates

    model_path = args.model or next(p for p in _model_candidates() if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        empty, full, hold = Path(tmp, "empty"), Path(tmp, "full"), Path(tmp, "hold")
        fill(full, args.examples, model_path, args.folder)
        size = (full / "examples.db").stat().st_size
        figures = {"empty": start_figures(empty, model_path), "full": start_figures(full, model_path)}
        figures["bytes_per_example"] = round(size / args.examples)
        fill(hold, args.examples, model_path)
        figures.update(hold_figures(hold, model_path))
    e, f = figures["empty"], figures["full"]
    print(f"start-up      empty: build {e['build_s']:.2f} s, first answer {e['first_answer_s']:.2f} s, "
          f"RSS {e['rss_mb']:.0f} MB")
    print(f"              {f['examples']} examples: build {f['build_s']:.2f} s, "
          f"first answer {f['first_answer_s']:.2f} s, "
          f"RSS {f['rss_mb']:.0f} MB  (ratio {f['first_answer_s'] / e['first_answer_s']:.2f}x)")
    print(f"stored        {figures['bytes_per_example']} bytes per example (database file / examples)")
    print(f"10 s hold     {figures['hold_examples']} examples in {figures['hold_transactions']} transactions "
          f"({figures['commit_ms']} ms each), {figures['hold_bytes_written'] / 1024:.0f} KB written; "
          f"with {args.examples} stored")
    print(f"latency       last burst stored {figures['last_burst_stored_ms']} ms after release; "
          f"delete one example {figures['delete_ms']} ms (head rebuilt from {args.examples})")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
