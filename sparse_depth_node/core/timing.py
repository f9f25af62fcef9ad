"""The one stopwatch: wall-clock laps in milliseconds, with CUDA synchronised before each
reading so that a GPU stage is timed when it has finished, not when it was queued; and the one
summary of many timings (median, p90, p99)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def summary(samples_ms: "list[float]") -> dict[str, float]:
    """``median_ms``, ``p90_ms``, ``p99_ms`` and ``n`` of timings in milliseconds."""
    a = np.asarray(samples_ms, dtype=np.float64)
    return {
        "median_ms": float(np.median(a)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "n": int(a.size),
    }


class Stopwatch:
    """``lap(stage)`` records the time since the previous lap (or the start) under ``stage``;
    ``time(stage, fn, *args)`` runs ``fn`` and records its time alone. ``laps`` holds the last
    value of each stage, ``samples`` every value (for percentiles over many frames)."""

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda
        self.laps: dict[str, float] = {}
        self.samples: dict[str, list[float]] = {}
        self._t = self.now()

    def now(self) -> float:
        """Seconds (perf_counter) after the device's queued work."""
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def record(self, stage: str, ms: float) -> None:
        self.laps[stage] = ms
        self.samples.setdefault(stage, []).append(ms)

    def lap(self, stage: str) -> float:
        now = self.now()
        ms = (now - self._t) * 1e3
        self._t = now
        self.record(stage, ms)
        return ms

    def restart(self) -> None:
        """The next lap counts from now."""
        self._t = self.now()

    def time(self, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.restart()
        out = fn(*args)
        self.lap(stage)
        return out
