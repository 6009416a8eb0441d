#!/usr/bin/env python3
"""Measure start-up: process start -> page answering, -> READY=1 (= the first answer).

    .venv/bin/python scripts/startup.py [--runs N] [-- extra teachbox run options]

Starts ``teachbox run --simulate`` the way systemd would (a notify socket, no
terminal), N times, and prints each time and the median.  READY=1 is sent after the
first frame went through camera, model and head, so it is also the first answer.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_run(extra):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(path)
        server.settimeout(0.01)
        port = free_port()
        command = [str(REPO / ".venv" / "bin" / "teachbox"), "--log-level", "warning", "run", "--simulate",
                   "--model-dir", str(REPO / "models"), "--state-dir", os.path.join(tmp, "state"),
                   "--host", "127.0.0.1", "--port", str(port), *extra]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=dict(os.environ, NOTIFY_SOCKET=path),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        page = ready = None
        try:
            while (page is None or ready is None) and time.perf_counter() - started < 120:
                if ready is None:
                    try:
                        if b"READY=1" in server.recv(4096):
                            ready = time.perf_counter() - started
                    except socket.timeout:
                        pass
                if page is None:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=1).read()
                        page = time.perf_counter() - started
                    except OSError:
                        pass
        finally:
            process.terminate()
            process.wait(timeout=30)
            server.close()
        return page, ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="options for teachbox run (after --)")
    args = parser.parse_args()
    pages, readies = [], []
    for i in range(args.runs):
        page, ready = one_run(args.extra)
        print(f"run {i + 1}: page answering {page:.2f} s, READY=1 / first answer {ready:.2f} s")
        pages.append(page)
        readies.append(ready)
    print(f"median of {args.runs}: page answering {statistics.median(pages):.2f} s, "
          f"READY=1 / first answer {statistics.median(readies):.2f} s")


if __name__ == "__main__":
    sys.exit(main())
