"""Transforms by time, kept as tf2's buffer keeps them, without tf2: the node's /tf and /tf_static
as they arrive (ros/tf.py), a bag's as it is read (bag/sets.py), so that the node and the bag
tools look up the same way.

A tree of links (each child frame has one parent), each link static or a time series of
samples; a lookup walks the tree through the frames' common ancestor and interpolates every
dynamic link at the asked times (translation linearly, rotation by slerp), as tf2 does. One
lookup serves many times at once (a LiDAR sweep's poses: ``lookup_full``). Where TF cannot say
(an unknown frame, frames not connected, a time past the newest sample or before the oldest
kept, a gap between two samples wider than ``max_gap_s``) it raises ``TfUnavailable`` naming
the link and the time; ``later`` says whether newer transforms may still answer it.
Times are integer nanoseconds (header stamps); transforms (4, 4) float64, metres.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.transforms import invert_transform, slerp, transform_from_quaternion

KEEP_S = 10.0  # seconds of each dynamic link kept behind its newest sample (tf2's default)
MAX_GAP_S = 0.5  # two samples of a link further apart than this are not interpolated between
MAX_DEPTH = 64  # the deepest tree walked (a cycle in the data stops here)


class TfUnavailable(ValueError):
    """TF cannot give a transform. ``later``: the time asked lies past the newest sample of a
    link, so newer transforms may answer it (``needed_ns`` is the time they must reach)."""

    def __init__(self, reason: str, later: bool = False, needed_ns: int = 0) -> None:
        super().__init__(reason)
        self.later = later
        self.needed_ns = needed_ns


@dataclass
class _Link:
    """T_parent<-child: static (one value) or samples in time order. ``values`` rows are
    [tx, ty, tz, qx, qy, qz, qw] (metres, unit quaternion)."""

    parent: str
    static: bool
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))


def seconds(ns: int) -> str:
    """A stamp in nanoseconds as seconds for a message: 1316995200.103 s."""
    return f"{ns * 1e-9:.3f} s"


def _name(frame: str) -> str:
    return frame.lstrip("/")


class TfBuffer:
    """Thread-safe: the node's subscriptions add while its worker looks up."""

    def __init__(self, keep_s: float = KEEP_S, max_gap_s: float = MAX_GAP_S) -> None:
        self.keep_ns = int(keep_s * 1e9)
        self.max_gap_ns = int(max_gap_s * 1e9)
        self._links: dict[str, _Link] = {}  # child frame -> its link to its parent
        self._cond = threading.Condition()
        self.newest_ns: "int | None" = None  # the newest stamp of any dynamic sample

    def add(
        self,
        parent: str,
        child: str,
        stamp_ns: int,
        translation: "list[float] | np.ndarray",
        rotation_xyzw: "list[float] | np.ndarray",
        static: bool = False,
    ) -> None:
        """One transform T_parent<-child (translation m, quaternion [x, y, z, w], normalised
        here), at ``stamp_ns`` unless ``static``. A child takes the newest parent it is given,
        as in tf2."""
        value = np.r_[np.asarray(translation, np.float64), np.asarray(rotation_xyzw, np.float64)]
        norm = np.linalg.norm(value[3:])
        if value.shape != (7,) or not np.all(np.isfinite(value)) or norm < 1e-12:
            raise ValueError(f"transform {parent} -> {child} is not finite: {value.tolist()}")
        value[3:] /= norm
        parent, child = _name(parent), _name(child)
        with self._cond:
            link = self._links.get(child)
            if link is None or link.parent != parent or link.static != static:
                link = self._links[child] = _Link(parent, static)
            if static:
                link.times, link.values = np.zeros(1, np.int64), value[None]
            else:
                self._insert(link, int(stamp_ns), value)
                self.newest_ns = max(self.newest_ns or 0, int(stamp_ns))
            self._cond.notify_all()

    def _insert(self, link: _Link, ns: int, value: np.ndarray) -> None:
        """A sample into a dynamic link in time order (the same stamp replaces), keeping
        ``keep_ns`` behind the link's newest."""
        i = int(np.searchsorted(link.times, ns))
        if i < len(link.times) and link.times[i] == ns:
            link.values[i] = value
            return
        link.times = np.insert(link.times, i, ns)
        link.values = np.insert(link.values, i, value, axis=0)
        old = int(np.searchsorted(link.times, link.times[-1] - self.keep_ns))
        if old > 0:
            link.times, link.values = link.times[old:], link.values[old:]

    def add_message(self, msg: Any, static: bool = False) -> None:
        """Every transform of a tf2_msgs/TFMessage (rclpy or rosbags)."""
        for ts in msg.transforms:
            t, q, stamp = ts.transform.translation, ts.transform.rotation, ts.header.stamp
            self.add(
                ts.header.frame_id,
                ts.child_frame_id,
                int(stamp.sec) * 10**9 + int(stamp.nanosec),
                [t.x, t.y, t.z],
                [q.x, q.y, q.z, q.w],
                static,
            )

    def frames(self) -> set[str]:
        """Every frame TF has named."""
        with self._cond:
            return self._frames()

    def _frames(self) -> set[str]:
        return set(self._links) | {link.parent for link in self._links.values()}

    def wait_newer(self, ns: int, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a dynamic sample at or after ``ns``; whether one came."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self.newest_ns is not None and self.newest_ns >= ns, timeout
            )

    def lookup(self, target: str, source: str, time_ns: "int | None") -> np.ndarray:
        """T_target<-source (4, 4) with both frames at ``time_ns`` (None: each link's newest
        sample, tf2's time 0)."""
        times = None if time_ns is None else np.array([time_ns], np.int64)
        with self._cond:
            return np.asarray(self._between(_name(target), _name(source), times)[0])

    def lookup_full(
        self, target: str, target_ns: int, source: str, source_ns: np.ndarray, fixed: str
    ) -> np.ndarray:
        """T_target(target_ns)<-source(t) (B, 4, 4) for each t of ``source_ns`` (B,): the
        source at its time carried through the ``fixed`` frame to the target at
        ``target_ns`` (tf2's lookup_transform_full)."""
        target, source, fixed = _name(target), _name(source), _name(fixed)
        times = np.asarray(source_ns, np.int64).reshape(-1)
        with self._cond:
            t_target = self._between(target, fixed, np.array([target_ns], np.int64))
            return np.asarray(t_target @ self._between(fixed, source, times))

    def moving_links(self, frame: str) -> list[str]:
        """The dynamic links between ``frame`` and the root of its tree, as 'parent -> child'
        (none: the frame is fixed to its root, or unknown)."""
        with self._cond:
            chain = self._chain(_name(frame)) if _name(frame) in self._frames() else []
            return [
                f"{self._links[c].parent} -> {c}" for c in chain[:-1] if not self._links[c].static
            ]

    def root(self, frame: str) -> str:
        """The root frame of ``frame``'s tree (``frame`` itself when it has no parent)."""
        with self._cond:
            return self._chain(_name(frame))[-1]

    def _chain(self, frame: str) -> list[str]:
        """``frame``, its parent, ..., the root of its tree."""
        chain = [frame]
        while chain[-1] in self._links and len(chain) < MAX_DEPTH:
            chain.append(self._links[chain[-1]].parent)
        return chain

    def _between(self, target: str, source: str, times: "np.ndarray | None") -> np.ndarray:
        """T_target<-source (B, 4, 4), both at each time (B = 1 for None)."""
        known = self._frames()
        for frame in (target, source):
            if frame not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise TfUnavailable(f"frame '{frame}' is not in TF (frames in TF: {listed})")
        up_source, up_target = self._chain(source), self._chain(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise TfUnavailable(
                f"'{source}' and '{target}' are not connected in TF (their trees' roots: "
                f"'{up_source[-1]}' and '{up_target[-1]}')"
            )
        t_source = self._up(up_source[: up_source.index(common) + 1], times)
        t_target = self._up(up_target[: up_target.index(common) + 1], times)
        return np.asarray(invert_transform(t_target) @ t_source)

    def _up(self, chain: list[str], times: "np.ndarray | None") -> np.ndarray:
        """T_chain[-1]<-chain[0] (B, 4, 4): the links up the chain composed at each time."""
        out = np.broadcast_to(np.eye(4), (1 if times is None else len(times), 4, 4)).copy()
        for child in chain[:-1]:
            out = self._at(child, times) @ out
        return np.asarray(out)

    def _at(self, child: str, times: "np.ndarray | None") -> np.ndarray:
        """T_parent<-child (B, 4, 4) of ``child``'s link at each time, interpolated."""
        link = self._links[child]
        if link.static or times is None:
            return transform_from_quaternion(link.values[-1, :3], link.values[-1, 3:])[None]
        name = f"{link.parent} -> {child}"
        first, last = int(link.times[0]), int(link.times[-1])
        if times.max() > last:
            raise TfUnavailable(
                f"TF {name} is known until {seconds(last)}, the frame needs "
                f"{seconds(int(times.max()))} (extrapolation into the future)",
                later=True,
                needed_ns=int(times.max()),
            )
        if times.min() < first:
            raise TfUnavailable(
                f"TF {name} is known from {seconds(first)}, the frame needs "
                f"{seconds(int(times.min()))} (extrapolation into the past)"
            )
        hi = np.searchsorted(link.times, times)  # the first sample at or after each time
        exact = link.times[hi] == times
        lo = np.where(exact, hi, hi - 1)
        gap = link.times[hi] - link.times[lo]
        if gap.max() > self.max_gap_ns:
            i = int(np.argmax(gap))
            raise TfUnavailable(
                f"TF {name} has a gap of {gap[i] * 1e-9:.3f} s at {seconds(int(times[i]))} "
                f"(samples at {seconds(int(link.times[lo[i]]))} and "
                f"{seconds(int(link.times[hi[i]]))}; at most {self.max_gap_ns * 1e-9:g} s "
                "is interpolated)"
            )
        f = np.where(exact, 0.0, (times - link.times[lo]) / np.maximum(gap, 1))
        a, b = link.values[lo], link.values[hi]
        translation = a[:, :3] + f[:, None] * (b[:, :3] - a[:, :3])
        return transform_from_quaternion(translation, slerp(a[:, 3:], b[:, 3:], f))
