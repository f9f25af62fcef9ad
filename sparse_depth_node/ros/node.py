"""The ROS 2 node: synchronised LiDAR + camera in, dense depth (REP 118) and a cloud out.

Subscriptions feed an approximate time synchroniser; the newest complete set goes to a worker
thread, so callbacks never wait for inference and no backlog forms; the worker runs the set
through the frame path (msgs.frame) and publishes. Parameters come from the one schema
(core.settings). Malformed input is dropped with a throttled log line and a counter.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from ..core.camera import assumed_rectified
from ..core.runtime import configure_process, release_freed_memory
from ..core.settings import BY_NAME, problem
from ..msgs.admit import size_problem
from ..msgs.convert import stamp_seconds
from ..msgs.errors import Dropped, TfNotYet, UndecodableImage
from ..msgs.frame import SetOutput, run_set
from ..msgs.motion import Placement
from ..msgs.stats import PipelineStats
from ..msgs.sync import ApproximateSync, SyncedSet
from . import parameters
from .dds import transport_lines
from .diagnostics import pipeline_status
from .inputs import InputSubscriptions
from .kit import RclpyKit
from .model import NodeModel
from .parameters import plain
from .publishers import OutputPublishers
from .tf import node_extrinsics


class SparseDepthNode(Node):
    """sparse_depth_node: its topics and parameters in docs/NODE.md."""

    def __init__(self, *, process_wide: bool = False, **kwargs: Any) -> None:
        """``process_wide``: apply the ``threads`` setting to the whole process (the executable
        does; tests sharing a process do not)."""
        super().__init__("sparse_depth_node", **kwargs)
        self._lock = threading.Condition()
        # paired sets waiting for the worker: the newest only once a frame is out, every one
        # (up to queue_size) before, so that none is lost while the node warms up
        self._pending: deque[tuple[SyncedSet, float]] = deque()
        self._started = False  # the worker has caught up once: the newest set wins from then
        self._lens_checked = False  # the first camera_info's distortion looked at
        self._empty: "str | None" = None  # why the last (nearly) empty depth was
        self._warm_size: "tuple[int, int] | None" = None  # requested by the first camera_info
        self._warm_requested = False  # once: at warmup_size, or at the first camera_info's
        self._warm_done = threading.Event()
        self._warm_error: "Exception | None" = None
        self._stop = False
        self._worker: "threading.Thread | None" = None
        self._last_size: "tuple[int, int] | None" = None
        parameters.declare(self)
        reason = problem(self.values())
        if reason:
            raise ValueError(reason)
        if process_wide:
            configure_process(int(self.values()["threads"]))
        self.stats = PipelineStats()
        self._caps = {k: self.values()[k] for k in ("max_points", "max_image_pixels")}  # fixed
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.model = NodeModel(self.values(), self.stats, self.get_logger())
        self.extrinsics = node_extrinsics(self)
        self._sync = ApproximateSync.from_settings(self.values())
        self._kit = RclpyKit()
        self.outputs = OutputPublishers(self, self._kit)
        self.outputs.sync(self.values())
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for level, line in transport_lines():
            getattr(self.get_logger(), level)(line)
        self._start_worker(tuple(self.values()["warmup_size"]))
        self.inputs = InputSubscriptions(self, self._kit, self.values(), self.stats, self._offer)
        # on wall time whatever the clock: a replay under sim time may be paused or have no
        # /clock yet, and diagnostics, QoS re-matching and run-time changes go on
        self.create_timer(1.0, self._every_second, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._no_clock_said = False
        self.get_logger().info(self._ready_line())

    @property
    def completer(self) -> Any:
        """The completer in use (NodeModel: it changes when the model falls back)."""
        return self.model.completer

    def _start_worker(self, size: tuple) -> None:
        """The worker thread, which runs every frame; with a warmup_size it warms up first,
        before any input is subscribed to (``strict``: ValueError when the model cannot)."""
        if all(size):
            self._warm_size, self._warm_requested = size, True
        self._worker = threading.Thread(target=self._run, name="sparse_depth_worker", daemon=True)
        self._worker.start()
        if all(size):
            self._warm_done.wait()
            if self._warm_error is not None:
                raise ValueError(f"model cannot run its first frame: {self._warm_error}")

    def _ready_line(self) -> str:
        c = self.completer
        return (
            f"ready: {c.description}"
            + (
                ""
                if all(self.values()["warmup_size"])
                else " (warms up at the first camera_info's size)"
            )
            + (f"; backend {c.backend}: {c.backend_reason}" if c.model is not None else "")
        )

    def _warm_up(self, size: "tuple[int, int]") -> float:
        """The model's warm-up at ``size`` on the worker's thread; a strict failure is kept for
        the constructor to raise."""
        try:
            return self.model.warm_up(self.values(), self._kit, size)
        except Exception as exc:
            self._warm_error = exc
            raise

    def values(self) -> dict[str, Any]:
        return parameters.values(self)

    def _validate_parameters(self, params: list) -> SetParametersResult:
        new = {**self.values(), **{p.name: plain(p.value) for p in params if p.name in BY_NAME}}
        reason = problem(new, half_extrinsic=True)
        if reason is None:
            self._sync.configure(new)
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _offer(self, stream: str, msg: Any) -> None:
        self.stats.count(f"in_{stream}")
        try:
            refused = size_problem(stream, msg, self._caps)
        except UndecodableImage as exc:
            refused, counter = str(exc), "undecodable_image"
        else:
            counter = "rejected_input"
        if refused:  # never queued, never decoded: nothing allocated for it
            self.stats.count(counter)
            self.get_logger().warning(f"input dropped: {refused}", throttle_duration_sec=5.0)
            return
        if stream == "info" and not self._lens_checked:
            self._lens_checked = True
            rectified = self.values()["image_rectified"]
            line = assumed_rectified(msg, self.inputs.topics["image"][0], rectified)
            if line:
                self.get_logger().warning(line)
        with self._lock:
            if stream == "info" and not self._warm_requested and msg.width > 0 and msg.height > 0:
                self._warm_size, self._warm_requested = (int(msg.width), int(msg.height)), True
                self._lock.notify()
            dropped, resets = self._sync.dropped, self._sync.resets
            matched = self._sync.add(stream, msg, stamp_seconds(msg.header))
            if self._sync.dropped > dropped:
                self.stats.count("dropped_unpaired", self._sync.dropped - dropped)
            if self._sync.resets > resets:
                self.stats.count("sync_resets")
            if matched is None:
                return
            self.stats.count("sets_paired")
            waiting = 1 if self._started else int(self.values()["queue_size"])
            while len(self._pending) >= waiting:
                self._pending.popleft()
                self.stats.count("dropped_busy")
            self._pending.append((matched, time.perf_counter()))  # complete from now on
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and self._warm_size is None and not self._stop:
                    self._lock.wait(0.5)
                if self._stop:
                    return
                size, self._warm_size = self._warm_size, None
                pending = None
                if size is None:
                    pending = self._pending.popleft()
            try:
                if size is not None:
                    try:
                        ms = self._warm_up(size)
                        self.get_logger().info(f"warmed up at {size[0]}x{size[1]} in {ms:.0f} ms")
                    finally:
                        self._warm_done.set()
                    continue
                assert pending is not None  # the wait above ends only with work or a stop
                self._process(*pending)
                with self._lock:
                    self._started = self._started or not self._pending  # caught up
            except Exception as exc:  # never let one frame kill the worker
                if self._stop or not self.context.ok():
                    return  # shutting down: the publishers are going away
                self.stats.count("rejected_internal")
                self.get_logger().error(
                    f"frame dropped: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0
                )

    def _place(self, cloud: Any, image: Any, camera: Any) -> Placement:
        """The set's placement (msgs.extrinsics), the motion it applies recorded."""
        placement = self.extrinsics.place(cloud, image, camera)
        if placement.sweep is not None:
            self.stats.motion(*placement.motion())
        return placement

    def _run_set(self, frame: Any, v: dict, topics: list) -> SetOutput:
        """The set through the frame path (``run_set``); a set whose times TF has not reached
        yet runs again once it has, within ``wait_for_transform`` (else its TfNotYet, a
        Dropped, passes)."""
        deadline = time.monotonic() + v["wait_for_transform"]
        args = (frame.cloud, frame.image, frame.info, self._place)
        while True:
            try:
                return self.model.run(lambda c: run_set(*args, c, v, topics, self._kit))
            except TfNotYet as exc:
                tf, left = self.extrinsics.tf, deadline - time.monotonic()
                if tf is None or left <= 0 or not tf.wait_newer(exc.needed_ns, left):
                    raise

    def _process(self, frame: Any, arrived: float) -> None:
        """Complete one synchronised set; ``arrived``: perf_counter time of its last message."""
        v = self.values()
        topics = self.outputs.listened(v)
        if not topics:
            self.stats.count("skipped_no_subscribers")
            return
        start = time.perf_counter()
        try:
            out = self._run_set(frame, v, topics)
        except Dropped as exc:
            self.stats.count(exc.counter)
            self.get_logger().warning(f"frame dropped: {exc}", throttle_duration_sec=5.0)
            return
        t0 = time.perf_counter()
        self.outputs.publish(out.messages)
        if out.empty:
            self.stats.count("empty_depth")
            self._empty = out.empty
            self.get_logger().warning(
                f"depth (nearly) empty, published as it is: {out.empty}",
                throttle_duration_sec=5.0,
            )
        timings = out.timings
        size = (frame.info.width, frame.info.height)  # the image's, raw or compressed
        if size != self._last_size:  # buffers of the old size are garbage: give them back
            release_freed_memory()
            self._last_size = size
        t1 = time.perf_counter()
        timings.update(
            publish=(t1 - t0) * 1e3,
            node_total=(t1 - start) * 1e3,
            arrival_to_publish=(t1 - arrived) * 1e3,
        )
        self.stats.latency(timings)
        self.stats.count("frames_out")

    def diagnostic_status(self) -> DiagnosticStatus:
        return pipeline_status(
            self.stats,
            self.get_fully_qualified_name(),
            self.completer.description,
            str(self.completer.device),
            self.extrinsics.problem(),
            self.clock_problem(),
            self._empty if self.stats.recent("empty_depth") else None,
        )

    def clock_problem(self) -> "str | None":
        """A line when the node runs on sim time and no /clock has come (its ROS time is 0)."""
        if self.get_parameter("use_sim_time").value and self.get_clock().now().nanoseconds == 0:
            return (
                "use_sim_time is true but no /clock has arrived: ROS time stands at 0 (play "
                "the bag with --clock, or drop use_sim_time)"
            )
        return None

    def _every_second(self) -> None:
        self.outputs.sync(self.values())  # publish_* changes take effect within a second
        self.inputs.rematch()  # input_qos auto follows the publishers within a second
        line = self.clock_problem()
        if line and not self._no_clock_said:
            self.get_logger().warning(line)
        self._no_clock_said = bool(line)
        self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostic_status()]
        self.diag_pub.publish(msg)

    def destroy_node(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
        super().destroy_node()
