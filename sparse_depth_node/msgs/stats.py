"""Counters, rates and latency percentiles of the running pipeline, for diagnostics (no ROS)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

from ..core.timing import summary


class PipelineStats:
    """Thread-safe counters (``count``), event rates over the last ``window`` seconds, and
    per-stage latency percentiles over the last ``history`` frames."""

    def __init__(self, window: float = 5.0, history: int = 200) -> None:
        self.window = window
        self.counters: Counter = Counter()
        self._events: dict[str, deque] = {}
        self._latency: dict[str, deque] = {}
        self._history = history
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` and record the event time (for rates and staleness)."""
        now = time.monotonic()
        with self._lock:
            self.counters[name] += n
            self._last[name] = now
            self._events.setdefault(name, deque(maxlen=1000)).append((now, n))

    def latency(self, timings_ms: dict[str, float]) -> None:
        """Record one frame's stage timings (ms)."""
        with self._lock:
            for stage, ms in timings_ms.items():
                self._latency.setdefault(stage, deque(maxlen=self._history)).append(ms)

    def recent(self, name: str) -> int:
        """What was added to ``name`` over the last ``window`` seconds."""
        now = time.monotonic()
        with self._lock:
            return sum(n for t, n in self._events.get(name, ()) if now - t <= self.window)

    def rate(self, name: str) -> float:
        """Per second, what was added to ``name`` over the last ``window`` seconds."""
        return self.recent(name) / self.window

    def age(self, name: str) -> float:
        """Seconds since the last ``name`` event (inf if never)."""
        with self._lock:
            last = self._last.get(name)
        return float("inf") if last is None else time.monotonic() - last

    def percentiles(self) -> dict[str, dict[str, float]]:
        """The timing ``summary`` (median_ms, p90_ms, ...) of each stage."""
        with self._lock:
            items = {k: list(v) for k, v in self._latency.items() if v}
        return {k: summary(v) for k, v in items.items()}

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)
