"""Approximate time pairing of a LiDAR cloud, a camera image and its camera_info.

Each stream keeps a bounded queue. When a message arrives, the newest image that has a cloud
and a camera_info within ``slop`` seconds of it (after the per-sensor time offsets) forms a
set; the set is handed out and everything up to it is removed, the unpaired older messages
counted as dropped. Streams may lag one another (a camera_info seconds ahead of its images):
only a stream whose *own* stamps jump back by more than ``reset_after`` seconds (a looping bag)
clears the queues. No backlog can build up: the queues never exceed ``queue_size``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STREAMS = ("cloud", "image", "info")


@dataclass
class SyncedSet:
    """One matched set; stamps in seconds as received (before offsets)."""

    cloud: Any
    image: Any
    info: Any
    cloud_stamp: float
    image_stamp: float


class ApproximateSync:
    """Pairs cloud, image and info by stamp within ``slop`` seconds.

    ``offsets`` (seconds) is added to each stream's stamps before matching, e.g. a camera
    whose shutter lags its stamp. Counters: ``dropped`` (messages discarded unpaired) and
    ``resets`` (backward time jumps).
    """

    def __init__(
        self,
        slop: float = 0.05,
        queue_size: int = 5,
        offsets: "dict[str, float] | None" = None,
        reset_after: float = 1.0,
    ) -> None:
        if slop < 0 or queue_size < 1:
            raise ValueError(f"need slop >= 0 and queue_size >= 1, got {slop}, {queue_size}")
        self.slop = slop
        self.queue_size = queue_size
        self.offsets = {s: 0.0 for s in STREAMS}
        self.offsets.update(offsets or {})
        self.reset_after = reset_after
        self.queues: dict[str, deque[tuple[float, float, Any]]] = {s: deque() for s in STREAMS}
        self.dropped = 0
        self.resets = 0
        self._newest = {s: float("-inf") for s in STREAMS}

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> "ApproximateSync":
        """A synchroniser with the ``sync_slop``, ``queue_size`` and ``time_offset.*`` settings."""
        sync = cls(float(values["sync_slop"]), int(values["queue_size"]))
        sync.configure(values)
        return sync

    def configure(self, values: Mapping[str, Any]) -> None:
        """Apply the run-time settings: ``sync_slop`` and ``time_offset.*``."""
        self.slop = float(values["sync_slop"])
        self.set_sensor_offsets(
            float(values["time_offset.image"]), float(values["time_offset.lidar"])
        )

    def set_sensor_offsets(self, image: float, lidar: float) -> None:
        """Per-sensor offsets (s): the camera's applies to its images and camera_info."""
        self.offsets.update(image=image, info=image, cloud=lidar)

    def reset(self) -> None:
        """Forget every queued message (they count as dropped)."""
        self.dropped += sum(len(q) for q in self.queues.values())
        for q in self.queues.values():
            q.clear()
        self._newest = {s: float("-inf") for s in STREAMS}

    def add(self, stream: str, msg: Any, stamp: float) -> "SyncedSet | None":
        """Queue ``msg`` of ``stream`` stamped ``stamp`` (s); return a matched set if one is
        complete."""
        if stream not in self.queues:
            raise ValueError(f"unknown stream '{stream}', expected one of {STREAMS}")
        t = stamp + self.offsets[stream]
        if t < self._newest[stream] - self.reset_after:  # this stream's own time went back
            self.resets += 1
            self.reset()
        self._newest[stream] = max(self._newest[stream], t)
        q = self.queues[stream]
        q.append((t, stamp, msg))
        while len(q) > self.queue_size:
            q.popleft()
            self.dropped += 1
        return self._match()

    def _nearest(self, stream: str, t: float) -> "int | None":
        best, best_dt = None, self.slop
        for i, (ts, _, _) in enumerate(self.queues[stream]):
            dt = abs(ts - t)
            if dt <= best_dt:
                best, best_dt = i, dt
        return best

    def _match(self) -> "SyncedSet | None":
        images = self.queues["image"]
        for i in range(len(images) - 1, -1, -1):
            t_img = images[i][0]
            c = self._nearest("cloud", t_img)
            k = self._nearest("info", t_img)
            if c is None or k is None:
                continue
            cloud, image, info = self.queues["cloud"][c], images[i], self.queues["info"][k]
            for stream, used in (("cloud", c), ("image", i), ("info", k)):
                q = self.queues[stream]
                self.dropped += used  # the older, unpaired ones
                for _ in range(used + 1):
                    q.popleft()
            return SyncedSet(cloud[2], image[2], info[2], cloud[1], image[1])
        return None
