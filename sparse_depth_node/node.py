"""The ROS 2 node: synchronised LiDAR + camera in, dense depth (REP 118) and a cloud out.

A thin layer over ``pipeline.process_frame``: subscriptions feed an approximate time
synchroniser; the newest complete set is handed to a worker thread, so callbacks never wait
for inference and no backlog forms; the worker converts messages, runs the pipeline and
publishes. Malformed input is dropped with a throttled log line and a diagnostics counter.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from .camera import PinholeCamera
from .completion import DEFAULT_METHOD, DepthCompleter
from .extrinsics import TfExtrinsics, extrinsic_from_parameters, tf2_available
from .inference import PRECISIONS, scale_factor
from .msgs import fill_depth_image, fill_pointcloud2, image_to_rgb, pointcloud2_to_xyz, stamp_seconds
from .pipeline import PipelineParams, process_frame
from .stats import PipelineStats
from .sync import ApproximateSync

OUTPUT_TYPES = {"depth/image": Image, "depth/camera_info": CameraInfo, "depth/points": PointCloud2,
                "depth/confidence": Image, "depth/sparse": Image, "depth/image_raw": Image}
OUTPUTS = tuple(OUTPUT_TYPES)
STALE_AFTER_S = 2.0


def _float(desc: str, lo: float, hi: float, read_only: bool = False) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, read_only=read_only,
                               floating_point_range=[FloatingPointRange(from_value=lo, to_value=hi, step=0.0)])


def _int(desc: str, lo: int, hi: int, read_only: bool = False) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, read_only=read_only,
                               integer_range=[IntegerRange(from_value=lo, to_value=hi, step=1)])


def _plain(desc: str, read_only: bool = False) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, read_only=read_only)


PARAMETERS: dict[str, tuple[Any, ParameterDescriptor]] = {
    "model": (DEFAULT_METHOD, _plain("sparseconv, multiscale, convnet, classic, classic-full, nearest, or a checkpoint path", True)),
    "device": ("auto", _plain("auto, cpu, cuda or cuda:N", True)),
    "inference_scale": (1.0, _float("complete at this fraction of the image resolution (1, 0.5, 0.25, ...)", 0.05, 1.0, True)),
    "precision": ("fp32", _plain("network precision: fp32, bf16 (CPUs with AVX512-BF16/AMX, CUDA), fp16 (CUDA)", True)),
    "strict": (False, _plain("fail instead of falling back when the model or device is unavailable", True)),
    "min_depth": (0.5, _float("nearest depth kept, metres", 0.01, 1000.0)),
    "max_depth": (100.0, _float("farthest depth kept, metres", 0.1, 1000.0)),
    "confidence_threshold": (0.0, _float("pixels with lower confidence get no estimate (0: every pixel reached)", 0.0, 1.0)),
    "cloud_stride": (1, _int("keep every n-th row and column in depth/points", 1, 64)),
    "colorize_cloud": (True, _plain("add an rgb field (offset 16, point_step 32) to depth/points")),
    "organized_cloud": (False, _plain("publish depth/points as an H x W cloud with NaN holes")),
    "sync_slop": (0.05, _float("largest stamp difference within a cloud/image/camera_info set, s", 0.0, 1.0)),
    "queue_size": (5, _int("messages kept per input while pairing", 1, 100, True)),
    "time_offset.image": (0.0, _float("added to image and camera_info stamps before pairing, s", -1.0, 1.0)),
    "time_offset.lidar": (0.0, _float("added to cloud stamps before pairing, s", -1.0, 1.0)),
    "use_tf": (True, _plain("look T_camera<-lidar up in tf2 when tf2 is available", True)),
    "extrinsic.translation": ([0.0, 0.0, 0.0], _plain("LiDAR -> camera optical frame translation [x, y, z], m")),
    "extrinsic.rotation": ([0.0, 0.0, 0.0, 1.0], _plain("LiDAR -> camera optical frame rotation [x, y, z, w]")),
    "publish_cloud": (True, _plain("publish depth/points")),
    "publish_confidence": (False, _plain("publish depth/confidence (32FC1 in [0, 1])")),
    "publish_sparse": (False, _plain("publish depth/sparse (32FC1 projected LiDAR, NaN empty)")),
    "publish_image_raw": (False, _plain("publish depth/image_raw (16UC1 mm, 0 invalid)")),
}


class SparseDepthNode(Node):
    """sparse_depth_node: see the module docstring and README for topics and parameters."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sparse_depth_node", **kwargs)
        self._lock = threading.Condition()
        self._pending = None
        self._stop = False
        self._worker: "threading.Thread | None" = None
        for name, (default, desc) in PARAMETERS.items():
            self.declare_parameter(name, default, desc)
        self.stats = PipelineStats()
        self.add_on_set_parameters_callback(self._validate_parameters)
        self._check_startup_parameters()
        self.completer = self._load_completer()
        self._tf = None
        if self.param("use_tf") and tf2_available():
            self._tf = TfExtrinsics(self)
        elif self.param("use_tf"):
            self.get_logger().info("tf2_ros is not available: T_camera<-lidar comes from the extrinsic.* parameters")
        self._sync = ApproximateSync(self.param("sync_slop"), self.param("queue_size"))
        self._sync.set_sensor_offsets(self.param("time_offset.image"), self.param("time_offset.lidar"))

        out_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        overrides = QoSOverridingOptions.with_default_policies()
        self.pubs = {name: self.create_publisher(cls, name, out_qos, qos_overriding_options=overrides)
                     for name, cls in OUTPUT_TYPES.items()}
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # sensor-data QoS (best effort, depth 5) by default; qos_overrides.<topic>.subscription.* change it
        for cls, topic, stream in ((PointCloud2, "lidar/points", "cloud"), (Image, "camera/image", "image"),
                                   (CameraInfo, "camera/camera_info", "info")):
            self.create_subscription(cls, topic, lambda m, s=stream: self._offer(s, m), qos_profile_sensor_data,
                                     qos_overriding_options=overrides)
        self.create_timer(1.0, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._run, name="sparse_depth_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(f"ready: {self.completer.description}")

    # ---------------------------------------------------------------- parameters
    def param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _check_startup_parameters(self) -> None:
        problem = self._consistency({})
        if problem:
            raise ValueError(problem)

    def _consistency(self, new: dict[str, Any]) -> "str | None":
        """Reason the parameter set (current values updated by ``new``) is inconsistent, or None."""
        def value(name: str) -> Any:
            return new[name] if name in new else self.param(name)

        if not value("min_depth") < value("max_depth"):
            return f"min_depth ({value('min_depth')}) must be below max_depth ({value('max_depth')})"
        try:
            extrinsic_from_parameters(list(value("extrinsic.translation")), list(value("extrinsic.rotation")))
            scale_factor(float(value("inference_scale")))
        except ValueError as exc:
            return str(exc)
        if value("precision") not in PRECISIONS:
            return f"precision must be one of {', '.join(PRECISIONS)}, got '{value('precision')}'"
        return None

    def _validate_parameters(self, params: list) -> SetParametersResult:
        new = {p.name: p.value for p in params}
        reason = self._consistency(new)
        if reason is None:
            self._sync.slop = float(new.get("sync_slop", self._sync.slop))
            self._sync.set_sensor_offsets(float(new.get("time_offset.image", self._sync.offsets["image"])),
                                          float(new.get("time_offset.lidar", self._sync.offsets["cloud"])))
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _load_completer(self) -> DepthCompleter:
        """The configured model on the configured device, else (unless ``strict``) the same
        model on the CPU (fp32 instead of fp16), else ``classic`` on the CPU, saying so once."""
        model, device, precision = self.param("model"), self.param("device"), self.param("precision")
        cpu_precision = "fp32" if precision == "fp16" else precision  # fp16 is CUDA-only
        attempts = [(model, device, precision)] + ([(model, "cpu", cpu_precision)] if device != "cpu" else []) \
            + [("classic", "cpu", "fp32")]
        first_error = None
        for m, d, prec in attempts:
            try:
                completer = DepthCompleter(m, d, inference_scale=self.param("inference_scale"), precision=prec)
            except ValueError as exc:
                if self.param("strict"):
                    raise
                first_error = first_error or exc
                continue
            if first_error is not None:
                self.stats.count("model_fallback")
                self.get_logger().error(f"cannot use model '{model}' on '{device}': {first_error}; falling back to "
                                        f"{completer.description} (set strict:=true to fail instead)")
            return completer
        raise first_error  # unreachable: classic on the CPU always loads

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        """CUDA ran out of memory: move the same model to the CPU for good, and say so once."""
        if self.param("strict"):
            raise exc
        model = self.completer.model
        self.completer = DepthCompleter(self.completer.method, "cpu", model=model.cpu() if model is not None else None,
                                        inference_scale=1.0 / self.completer.factor)
        self.stats.count("cuda_oom_fallback")
        self.get_logger().error(f"CUDA out of memory ({exc}); running {self.completer.description} from now on")

    # ---------------------------------------------------------------- input
    def _offer(self, stream: str, msg: Any) -> None:
        self.stats.count(f"in_{stream}")
        with self._lock:
            dropped = self._sync.dropped
            matched = self._sync.add(stream, msg, stamp_seconds(msg.header))
            if self._sync.dropped > dropped:
                self.stats.count("dropped_unpaired", self._sync.dropped - dropped)
            if matched is None:
                return
            if self._pending is not None:
                self.stats.count("dropped_busy")
            self._pending = (matched, time.perf_counter())  # the set is complete from now on
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._stop:
                    self._lock.wait(0.5)
                if self._stop:
                    return
                (frame, arrived), self._pending = self._pending, None
            try:
                self._process(frame, arrived)
            except Exception as exc:  # never let one frame kill the worker
                self.stats.count("rejected_internal")
                self.get_logger().error(f"frame dropped: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)

    def _wanted(self) -> dict[str, bool]:
        want = {name: pub.get_subscription_count() > 0 for name, pub in self.pubs.items()}
        want["depth/points"] &= bool(self.param("publish_cloud"))
        want["depth/confidence"] &= bool(self.param("publish_confidence"))
        want["depth/sparse"] &= bool(self.param("publish_sparse"))
        want["depth/image_raw"] &= bool(self.param("publish_image_raw"))
        return want

    def _reject(self, counter: str, reason: str) -> None:
        self.stats.count(counter)
        self.get_logger().warning(f"frame dropped: {reason}", throttle_duration_sec=5.0)

    def _extrinsic(self, cloud: Any, image: Any) -> "np.ndarray | None":
        if self._tf is not None:
            return self._tf.lookup(image.header.frame_id, cloud.header.frame_id, cloud.header.stamp)
        return extrinsic_from_parameters(list(self.param("extrinsic.translation")), list(self.param("extrinsic.rotation")))

    def _process(self, frame: Any, arrived: float) -> None:
        """Complete one synchronised set; ``arrived`` is the perf_counter time its last message came."""
        want = self._wanted()
        if not any(want.values()):
            self.stats.count("skipped_no_subscribers")
            return
        t0 = time.perf_counter()
        try:
            points = pointcloud2_to_xyz(frame.cloud)
            rgb = image_to_rgb(frame.image)
            camera = PinholeCamera.from_camera_info(frame.info)
            if (camera.width, camera.height) != (rgb.shape[1], rgb.shape[0]):
                raise ValueError(f"camera_info is {camera.width}x{camera.height} but the image is "
                                 f"{rgb.shape[1]}x{rgb.shape[0]}")
        except ValueError as exc:
            self._reject("rejected_input", str(exc))
            return
        t_cam = self._extrinsic(frame.cloud, frame.image)
        if t_cam is None:
            self._reject("tf_missing", f"no transform {frame.cloud.header.frame_id} -> {frame.image.header.frame_id} yet")
            return
        params = PipelineParams.from_parameters(lambda name, _default: self.param(name))
        t1 = time.perf_counter()
        try:
            result = process_frame(points, camera, t_cam, self.completer, rgb, params)
        except ValueError as exc:
            self._reject("rejected_input", str(exc))
            return
        except torch.cuda.OutOfMemoryError as exc:
            self._fall_back_to_cpu(exc)
            result = process_frame(points, camera, t_cam, self.completer, rgb, params)
        t2 = time.perf_counter()
        self._publish(frame, result, want)
        t3 = time.perf_counter()
        timings = dict(result.timings_ms)
        timings.update(decode=(t1 - t0) * 1e3, publish=(t3 - t2) * 1e3, node_total=(t3 - t0) * 1e3,
                       arrival_to_publish=(t3 - arrived) * 1e3)
        self.stats.latency(timings)
        self.stats.count("frames_out")

    def _publish(self, frame: Any, result: Any, want: dict[str, bool]) -> None:
        header = frame.image.header
        if want["depth/image"]:
            self.pubs["depth/image"].publish(fill_depth_image(Image(), result.dense_depth, header))
        if want["depth/camera_info"]:
            info = frame.info
            info.header = header
            self.pubs["depth/camera_info"].publish(info)
        if want["depth/image_raw"]:
            self.pubs["depth/image_raw"].publish(fill_depth_image(Image(), result.dense_depth, header, "16UC1"))
        if want["depth/sparse"]:
            self.pubs["depth/sparse"].publish(fill_depth_image(Image(), result.sparse_depth, header))
        if want["depth/confidence"]:
            msg = fill_depth_image(Image(), np.where(result.confidence > 0, result.confidence, np.nan), header)
            self.pubs["depth/confidence"].publish(msg)
        if want["depth/points"]:
            organized = result.cloud_pixels if self.param("organized_cloud") else None
            self.pubs["depth/points"].publish(
                fill_pointcloud2(PointCloud2(), PointField, header, result.cloud, result.cloud_rgb, organized))

    # ---------------------------------------------------------------- diagnostics
    def diagnostic_status(self) -> DiagnosticStatus:
        counts = self.stats.snapshot()
        stale = [s for s in ("cloud", "image", "info") if counts.get(f"in_{s}") and self.stats.age(f"in_{s}") > STALE_AFTER_S]
        silent = [s for s in ("cloud", "image", "info") if not counts.get(f"in_{s}")]
        status = DiagnosticStatus(name="sparse_depth_node: pipeline", hardware_id=str(self.completer.device))
        if stale:
            status.level, status.message = DiagnosticStatus.WARN, f"stale input: {', '.join(stale)}"
        elif silent and any(counts.get(f"in_{s}") for s in ("cloud", "image", "info")):
            status.level, status.message = DiagnosticStatus.WARN, f"no input yet on: {', '.join(silent)}"
        else:
            status.level, status.message = DiagnosticStatus.OK, "ok"
        values = {"model": self.completer.description, "device": str(self.completer.device)}
        for s in ("cloud", "image", "info"):
            values[f"input_rate_hz.{s}"] = f"{self.stats.rate(f'in_{s}'):.1f}"
        values["output_rate_hz"] = f"{self.stats.rate('frames_out'):.1f}"
        for name, n in sorted(counts.items()):
            values[f"count.{name}"] = str(n)
        for stage, (med, p90) in sorted(self.stats.percentiles().items()):
            values[f"latency_ms.{stage}"] = f"median {med:.1f} p90 {p90:.1f}"
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

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


def main(args: "list[str] | None" = None) -> None:
    """Entry point of the ``sparse_depth_node`` executable (``ros2 run sparse_depth_node sparse_depth_node``)."""
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    node = None
    try:
        node = SparseDepthNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
