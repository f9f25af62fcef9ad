"""The ROS 2 node: synchronised LiDAR + camera in, dense depth (REP 118) and a cloud out.

Subscriptions feed an approximate time synchroniser; the newest complete set goes to a worker
thread, so callbacks never wait for inference and no backlog forms; the worker runs the set
through the frame path (msgs.frame) and publishes. Parameters come from the one schema
(core.settings). Malformed input is dropped with a throttled log line and a counter.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node

from ..core.runtime import configure_process, release_freed_memory
from ..core.settings import BY_NAME, problem
from ..msgs.admit import size_problem
from ..msgs.convert import stamp_seconds
from ..msgs.errors import Dropped, UndecodableImage
from ..msgs.extrinsics import ExtrinsicSource
from ..msgs.frame import run_set, warm_up
from ..msgs.outputs import enabled_outputs
from ..msgs.stats import PipelineStats
from ..msgs.sync import ApproximateSync
from . import parameters
from .dds import PROFILE, profile_in_use, receive_buffer_problem
from .diagnostics import pipeline_status
from .fallback import fallback_completer, load_completer, on_cpu
from .inputs import InputSubscriptions
from .kit import RclpyKit
from .publishers import OutputPublishers
from .tf import TfExtrinsics, tf2_available


class SparseDepthNode(Node):
    """sparse_depth_node: see the module docstring and README for topics and parameters."""

    def __init__(self, *, process_wide: bool = False, **kwargs: Any) -> None:
        """``process_wide``: apply the ``threads`` setting to the whole process (the executable
        does; tests sharing a process do not)."""
        super().__init__("sparse_depth_node", **kwargs)
        self._lock = threading.Condition()
        self._pending = None
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
        self.completer, error = load_completer(self.values())
        if error is not None:
            self.stats.count("model_fallback")
            self.get_logger().error(
                f"cannot use model '{self.values()['model']}' on '{self.values()['device']}': "
                f"{error}; falling back to {self.completer.description} (strict:=true fails "
                "instead)"
            )
        use_tf = self.values()["use_tf"]
        tf = TfExtrinsics(self).lookup if use_tf and tf2_available() else None
        self.extrinsics = ExtrinsicSource(self.values, tf)
        if use_tf and tf is None:
            self.get_logger().info(
                "tf2_ros is not available: T_camera<-lidar comes from the extrinsic.* parameters"
            )
        for line in (self.extrinsics.ignored(), self.extrinsics.problem()):
            if line:
                self.get_logger().warning(line)
        self._sync = ApproximateSync.from_settings(self.values())
        self._kit = RclpyKit()
        self.outputs = OutputPublishers(self, self._kit)
        self.outputs.sync(self.values())
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._log_transport()
        size = tuple(self.values()["warmup_size"])
        if all(size):
            self._warm_size, self._warm_requested = size, True
        self._worker = threading.Thread(target=self._run, name="sparse_depth_worker", daemon=True)
        self._worker.start()
        if all(size):  # the worker (whose thread runs every frame) warms up before we subscribe
            self._warm_done.wait()
            if self._warm_error is not None:  # strict: the model cannot run its first frame
                raise ValueError(f"model cannot run its first frame: {self._warm_error}")
        self.inputs = InputSubscriptions(self, self._kit, self.values(), self.stats, self._offer)
        self.create_timer(1.0, self._every_second)
        self.get_logger().info(
            f"ready: {self.completer.description}"
            + ("" if all(size) else " (warms up at the first camera_info's size)")
            + (
                f"; backend {self.completer.backend}: {self.completer.backend_reason}"
                if self.completer.model is not None
                else ""
            )
        )

    def _log_transport(self) -> None:
        """Say which DDS profile carries the inputs, and whether the kernel limits it."""
        if not profile_in_use():
            return
        self.get_logger().info(f"DDS: the node's Fast DDS profile {PROFILE}")
        limit = receive_buffer_problem()
        if limit:
            self.get_logger().warning(limit)

    def _warm_up(self, size: "tuple[int, int]") -> float:
        """Run a synthetic frame of ``size`` (width, height) through the frame path, on the
        worker's thread (the kernels chosen are the calling thread's); ms. A model that fails
        it is replaced by the classical filler on the CPU, said in one line (with ``strict``
        the error is kept for the constructor to raise, or said if the node is running)."""
        v = self.values()

        def run() -> float:
            return self._on_cpu_after_oom(
                lambda: warm_up(self.completer, v, enabled_outputs(v), self._kit, *size)
            )

        try:
            return run()
        except Exception as exc:  # a model that cannot run its first frame
            if v["strict"] or self.completer.model is None:
                self._warm_error = exc
                raise
            failed = self.completer.description
            self.completer = fallback_completer(v)
            self.stats.count("model_fallback")
            self.get_logger().error(
                f"model {failed} failed its first frame ({type(exc).__name__}: {exc}); falling "
                f"back to {self.completer.description} (strict:=true fails instead)"
            )
            return run()

    def values(self) -> dict[str, Any]:
        return parameters.values(self)

    def _validate_parameters(self, params: list) -> SetParametersResult:
        new = {**self.values(), **{p.name: p.value for p in params if p.name in BY_NAME}}
        reason = problem(new)
        if reason is None:
            self._sync.configure(new)
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        """CUDA ran out of memory: move the same model to the CPU for good, and say so once."""
        if self.values()["strict"]:
            raise exc
        self.completer = on_cpu(self.completer)
        self.stats.count("cuda_oom_fallback")
        self.get_logger().error(
            f"CUDA out of memory ({exc}); running {self.completer.description} from now on"
        )

    def _on_cpu_after_oom(self, work: Callable[[], Any]) -> Any:
        """``work()``; after a CUDA out-of-memory error, once more on the CPU."""
        try:
            return work()
        except torch.cuda.OutOfMemoryError as exc:
            self._fall_back_to_cpu(exc)
            return work()

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
            if self._pending is not None:
                self.stats.count("dropped_busy")
            self._pending = (matched, time.perf_counter())  # the set is complete from now on
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and self._warm_size is None and not self._stop:
                    self._lock.wait(0.5)
                if self._stop:
                    return
                size, self._warm_size = self._warm_size, None
                if size is None:
                    (frame, arrived), self._pending = self._pending, None
            try:
                if size is not None:
                    try:
                        ms = self._warm_up(size)
                        self.get_logger().info(f"warmed up at {size[0]}x{size[1]} in {ms:.0f} ms")
                    finally:
                        self._warm_done.set()
                    continue
                self._process(frame, arrived)
            except Exception as exc:  # never let one frame kill the worker
                if self._stop or not self.context.ok():
                    return  # shutting down: the publishers are going away
                self.stats.count("rejected_internal")
                self.get_logger().error(
                    f"frame dropped: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0
                )

    def _extrinsic(self, camera_frame: str, lidar_frame: str, stamp: Any) -> "np.ndarray | None":
        problem = self.extrinsics.problem()
        if problem:
            raise Dropped("extrinsic_missing", problem)
        return self.extrinsics.lookup(camera_frame, lidar_frame, stamp)

    def _process(self, frame: Any, arrived: float) -> None:
        """Complete one synchronised set; ``arrived``: perf_counter time of its last message."""
        v = self.values()
        topics = self.outputs.listened(v)
        if not topics:
            self.stats.count("skipped_no_subscribers")
            return
        start = time.perf_counter()
        args = (frame.cloud, frame.image, frame.info, self._extrinsic)
        try:
            messages, timings = self._on_cpu_after_oom(
                lambda: run_set(*args, self.completer, v, topics, self._kit)
            )
        except Dropped as exc:
            self.stats.count(exc.counter)
            self.get_logger().warning(f"frame dropped: {exc}", throttle_duration_sec=5.0)
            return
        t0 = time.perf_counter()
        self.outputs.publish(messages)
        size = (frame.image.width, frame.image.height)
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
        )

    def _every_second(self) -> None:
        self.outputs.sync(self.values())  # publish_* changes take effect within a second
        self.inputs.rematch()  # input_qos auto follows the publishers within a second
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


def run(args: "list[str] | None" = None) -> None:
    """Run the node until Ctrl-C or shutdown (``args``: the command line, ROS arguments too);
    parameters it cannot run with (and, with ``strict``, a model it cannot load) end it with one
    line and exit status 2."""
    from rclpy.executors import ExternalShutdownException

    # SIGINT and SIGTERM raise KeyboardInterrupt from here on; rclpy.init chains its handlers
    # (which shut the context down) in front of these.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rclpy.init(args=args)
    node, status = None, 0
    try:
        node = SparseDepthNode(process_wide=True)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:  # parameters or (with strict) a model the node cannot run with
        print(f"sparse_depth_node: error: {exc}", file=sys.stderr)
        status = 2
    except Exception:
        if rclpy.ok():
            raise
        # a signal shut the context down while the node was being made: a clean stop
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    if status:
        sys.exit(status)


if __name__ == "__main__":
    run()
