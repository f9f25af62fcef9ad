"""The one stopwatch: wall-clock laps in milliseconds, with CUDA synchronised before each
reading so that a GPU stage is timed when it has finished, not when it was queued."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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
