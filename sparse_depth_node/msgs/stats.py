"""Counters, rates and latency percentiles of the running pipeline, for diagnostics (no ROS)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

from ..core.timing import summary

# Every counter the node keeps, and what it counts (``<input>``: cloud, image or info). The
# node's /diagnostics reports them and docs/NODE.md lists them from here.
COUNTERS = {
    "in_<input>": "messages received on an input",
    "sets_paired": "cloud + image + camera_info sets paired within sync_slop",
    "frames_out": "sets completed and published",
    "dropped_busy": "paired sets replaced by a newer one before the worker was free (the "
    "newest set wins)",
    "dropped_unpaired": "messages that left a pairing queue without a partner",
    "sync_resets": "pairing queues reset because an input's stamps jumped back (a looping bag)",
    "skipped_no_subscribers": "paired sets left alone because no output had a subscriber",
    "lost.<input>": "messages the middleware reports lost in transport",
    "incompatible_qos.<input>": "publishers refused for an incompatible QoS",
    "rejected_input": "messages or sets refused: malformed, over max_points or "
    "max_image_pixels, or an image whose camera_info has another size",
    "undecodable_image": "compressed images that cannot be decoded",
    "tf_missing": "sets skipped: no transform from the cloud's frame to the image's yet",
    "motion_tf_missing": "sets skipped: fixed_frame_id is set but TF does not give the LiDAR's "
    "motion over the sweep (an unknown frame, a time past the newest transform or before the "
    "oldest kept, a gap, or no TF at all): never projected uncompensated",
    "extrinsic_missing": "sets skipped: neither TF nor extrinsic.* give T_camera<-lidar",
    "model_fallback": "the model could not load or run: the default's classical fill serves "
    "instead (classic-refined, without its judge)",
    "cuda_oom_fallback": "CUDA ran out of memory: the model moved to the CPU",
    "empty_depth": "frames published with (nearly) no LiDAR return in their depth: the "
    "extrinsic, the range or the cloud (diagnostics say which)",
    "rejected_internal": "sets dropped by an unexpected error (a bug: please report it)",
}


_PREFIXES = {k.removesuffix("<input>"): k for k in COUNTERS if k.endswith("<input>")}


def counter_entry(name: str) -> str:
    """The COUNTERS entry of ``name`` (``lost.image`` -> ``lost.<input>``); ValueError for a
    counter the table does not list."""
    if name in COUNTERS and name not in _PREFIXES.values():
        return name
    for prefix, entry in _PREFIXES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return entry
    raise ValueError(f"counter '{name}' is not listed in msgs/stats.py COUNTERS")


class PipelineStats:
    """Thread-safe counters (``count``), event rates over the last ``window`` seconds, and
    per-stage latency percentiles over the last ``history`` frames."""

    def __init__(self, window: float = 5.0, history: int = 200) -> None:
        self.window = window
        self.counters: Counter[str] = Counter()
        self._events: dict[str, deque[tuple[float, int]]] = {}
        self._latency: dict[str, deque[float]] = {}
        self._history = history
        self._last: dict[str, float] = {}
        self._motion: deque[tuple[float, float]] = deque(maxlen=history)
        self._lock = threading.Lock()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (one of COUNTERS) and record the event time (for rates
        and staleness)."""
        counter_entry(name)
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

    def motion(self, metres: float, degrees: float) -> None:
        """Record the largest correction motion compensation applied to a frame's points."""
        with self._lock:
            self._motion.append((metres, degrees))

    def motion_summary(self) -> "str | None":
        """The corrections over the last ``history`` frames in words, or None without any."""
        with self._lock:
            if not self._motion:
                return None
            m, d = np.array(self._motion).T
        return (
            f"median {np.median(m):.3f} m {np.median(d):.2f} deg, max {m.max():.3f} m "
            f"{d.max():.2f} deg over {len(m)} frames"
        )

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
