"""Helpers for the benchmarks: data location, timing, JSON output."""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def timed(fn, repeat: int = 5) -> dict:
    """Runs fn repeat times (after one warm-up) and returns the median and worst in ms."""
    fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1), "runs": repeat}


def emit(name: str, figures: dict) -> None:
    print(json.dumps({"benchmark": name, **figures}))


def free_port() -> int:
    """A free TCP port on loopback, for the `avatar serve` a benchmark starts in another process."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
