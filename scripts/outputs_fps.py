#!/usr/bin/env python3
"""The loop's frames/s with MQTT and the webhook off vs on, and with the broker stopped, in one run.

    .venv/bin/python scripts/outputs_fps.py [--model PATH] [--seconds S] [--rounds R]

Starts a real Mosquitto on a loopback port (apt ``mosquitto``) and a webhook receiver on
loopback, teaches two classes on a simulated box (synthetic camera, model-sized frames,
unpaced) and shows them in turn every 0.3 s, so answers start and end all the time (every
change is a state message, events go to MQTT, the webhook and the log).  Variants, each its
own box, interleaved over ``rounds`` so that the machine's drift hits them alike:

* ``off``: no MQTT, no webhook (rules and the event log as always);
* ``on``: MQTT (state, events, discovery) and the signed webhook;
* ``broker stopped``: the same config, with Mosquitto killed (reconnecting with backoff),
  and the webhook receiver gone (connection refused, retried with backoff).

Prints frames/s per variant (median of the rounds), the ratios to ``off``, and how many
messages and webhook calls arrived.  Benchmarks print figures; tests never assert timings.
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device.camera import SyntheticCamera  # noqa: E402
from device.embedder import Embedder  # noqa: E402
from device.models import DEFAULT_MODEL  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mosquitto(folder: Path, port: int) -> subprocess.Popen:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"mosquitto did not start on port {port} (apt install mosquitto)")


class Receiver(http.server.ThreadingHTTPServer):
    calls = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.calls += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class Counter:
    """A subscriber counting what the broker passes on."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.messages = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="outputs-fps-counter")
        self.client.on_message = lambda client, userdata, message: self._count()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("teachbox/#")
        self.client.loop_start()

    def _count(self) -> None:
        self.messages += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def config_for(model: Path, state: Path, threads: int, mqtt_port: int, hook_url: str, on: bool):
    from device.config import Config

    config = (Config().override("model", path=str(model), threads=threads)
              .override("storage", state_dir=str(state)).override("panel", gpio="mock")
              .override("teaching", rate=100.0).override("head", kind="centroid", smoothing=1)
              .override("events", hold=0.1, until=0.2).override("box", name="bench"))
    if on:
        config = (config.override("mqtt", host="127.0.0.1", port=mqtt_port)
                  .override("webhook", url=hook_url, secret="bench-secret", timeout=1.0, retries=1))
    return config


def measure(embedder, config, seconds: float) -> float:
    from device.app import build_box

    camera = SyntheticCamera(fps=0, size=embedder.input_size)
    box = build_box(config, embedder=embedder, camera=camera)
    try:
        for class_id, scene in enumerate(("red ball", "blue box")):
            box.select_source(scene)
            box.loop.teach_next(class_id, 5)
            for _ in range(8):
                box.step()
        box.settle()
        frames, started, switched, scene = 0, time.perf_counter(), time.perf_counter(), 0
        while (now := time.perf_counter()) - started < seconds:
            if now - switched >= 0.3:
                scene, switched = 1 - scene, now
                box.select_source(("red ball", "blue box")[scene])
            box.step()
            frames += 1
        return frames / (time.perf_counter() - started)
    finally:
        box.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models") / DEFAULT_MODEL)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    embedder = Embedder(args.model, num_threads=args.threads or None)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mqtt_port = free_port()
        broker = start_mosquitto(tmp, mqtt_port)
        receiver = Receiver(("127.0.0.1", 0), Handler)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        counter = Counter(mqtt_port)
        fps = {"off": [], "on": []}
        for round_ in range(args.rounds):
            for variant in ("off", "on"):
                state = tmp / f"state-{variant}-{round_}"
                fps[variant].append(measure(embedder, config_for(args.model, state, args.threads, mqtt_port,
                                                                   hook_url, variant == "on"), args.seconds))
        messages, calls = counter.messages, receiver.calls
        counter.close()
        broker.kill()
        broker.wait()
        receiver.shutdown()
        receiver.server_close()
        fps["broker stopped"] = [measure(embedder, config_for(args.model, tmp / f"state-down-{r}", args.threads,
                                                              mqtt_port, hook_url, True), args.seconds)
                                 for r in range(args.rounds)]
    base = statistics.median(fps["off"])
    print(f"loop frames/s, {args.rounds} rounds of {args.seconds:g} s, answers changing every 0.3 s "
          f"({embedder.describe()['model']}, {embedder.num_threads or 'all'} threads):")
    for variant, values in fps.items():
        median = statistics.median(values)
        print(f"  {variant:15s} {median:7.1f} fps  ratio {median / base:.3f}   "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")
    print(f"  while on: {messages} MQTT messages and {calls} webhook calls arrived")
    return 0


if __name__ == "__main__":
    sys.exit(main())
