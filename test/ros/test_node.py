"""The node over real DDS: a test publisher sends KITTI frames, a test subscriber checks what
comes back (encodings, stamps, frames, NaN, cloud bytes, depth at LiDAR pixels)."""

import contextlib
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from ros_helpers import (
    CAMERA_FRAME,
    RELIABLE,
    extrinsic_parameters,
    frame_messages,
    input_publishers,
    isolate_dds,
    rclpy,
    spin_until,
)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.core.pipeline import process_frame
from sparse_depth_node.ros.node import SparseDepthNode

isolate_dds()


class Harness:
    """A test node that publishes frames and records the node's outputs."""

    def __init__(self, context, topics=("depth/image", "depth/camera_info", "depth/points")):
        self.node = rclpy.create_node("sparse_depth_test", context=context)
        self.pub_cloud = self.node.create_publisher(PointCloud2, "lidar/points", RELIABLE)
        self.pub_image = self.node.create_publisher(Image, "camera/image", RELIABLE)
        self.pub_info = self.node.create_publisher(CameraInfo, "camera/camera_info", RELIABLE)
        self.got = {t: [] for t in topics}
        types = {
            "depth/image": Image,
            "depth/camera_info": CameraInfo,
            "depth/points": PointCloud2,
            "depth/confidence": Image,
            "depth/sparse": Image,
            "depth/image_raw": Image,
        }
        for t in topics:
            self.node.create_subscription(
                types[t], t, lambda m, t=t: self.got[t].append(m), RELIABLE
            )
        self.diagnostics = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)

    def publish(self, msgs):
        cloud, image, info = msgs
        self.pub_cloud.publish(cloud)
        self.pub_image.publish(image)
        self.pub_info.publish(info)

    def all_received(self, n=1):
        return all(len(v) >= n for v in self.got.values())


@pytest.fixture
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


def make_node(context, frame, **params):
    overrides = {
        "use_tf": False,
        "model": "nearest",
        "device": "cpu",
        **extrinsic_parameters(frame),
        **params,
    }
    return SparseDepthNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )


@contextlib.contextmanager
def live(context, frame, topics=("depth/image", "depth/camera_info", "depth/points"), **params):
    """The node and a test harness on one executor; ``send()`` publishes ``frame`` with the next
    stamp."""
    node = make_node(context, frame, **params)
    h = Harness(context, topics)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    ex.add_node(h.node)
    stamps = iter(range(10**9, 10**11, 10**8))
    sent = []

    def send(spoil=None):
        sent.append(next(stamps))
        msgs = frame_messages(frame, sent[-1])
        if spoil is not None:
            spoil(*msgs)
        h.publish(msgs)

    send.sent = sent
    try:
        yield node, h, ex, send
    finally:
        ex.shutdown()
        node.destroy_node()
        h.node.destroy_node()


def lidar_pixels(frame, min_depth=0.5, max_depth=100.0):
    """Independent numpy projection: {(v, u): nearest z} through P @ T."""
    p = frame.camera.P @ frame.t_cam_from_lidar
    h = np.c_[frame.points.astype(np.float64), np.ones(len(frame.points))] @ p.T
    z = h[:, 2]
    ok = (z >= min_depth) & (z <= max_depth)
    u = np.floor(h[ok, 0] / z[ok] + 0.5).astype(int)
    v = np.floor(h[ok, 1] / z[ok] + 0.5).astype(int)
    z = z[ok]
    inside = (u >= 0) & (u < frame.camera.width) & (v >= 0) & (v < frame.camera.height)
    depth = np.full((frame.camera.height, frame.camera.width), np.inf)
    np.minimum.at(depth, (v[inside], u[inside]), z[inside])
    return depth


def test_node_publishes_depth_info_and_cloud_for_kitti_frames(context, kitti_frame0):
    frame = kitti_frame0
    with live(context, frame) as (node, h, ex, send):
        assert spin_until(ex, h.all_received, 60.0, send), {k: len(v) for k, v in h.got.items()}
        depth_msg, info_msg, cloud_msg = (
            h.got[t][0] for t in ("depth/image", "depth/camera_info", "depth/points")
        )
        # REP 118: 32FC1 metres, image stamp and optical frame
        assert depth_msg.encoding == "32FC1" and depth_msg.is_bigendian == 0
        assert (depth_msg.width, depth_msg.height, depth_msg.step) == (1242, 375, 1242 * 4)
        stamp_ns = depth_msg.header.stamp.sec * 10**9 + depth_msg.header.stamp.nanosec
        assert stamp_ns in send.sent and depth_msg.header.frame_id == CAMERA_FRAME
        assert (
            info_msg.header.stamp == depth_msg.header.stamp
            and info_msg.header.frame_id == CAMERA_FRAME
        )
        np.testing.assert_allclose(np.reshape(info_msg.p, (3, 4)), frame.camera.P)
        depth = np.frombuffer(depth_msg.data, dtype="<f4").reshape(375, 1242)
        assert np.isnan(depth).any() and not np.any(
            depth[np.isfinite(depth)] <= 0
        )  # NaN, never 0, for no estimate
        # depth at LiDAR pixels equals the LiDAR (nearest fill keeps measured pixels)
        lidar = lidar_pixels(frame)
        at = np.isfinite(lidar)
        assert at.sum() > 15000
        assert np.nanmax(np.abs(depth[at] - lidar[at])) < 1e-3
        # cloud: x, y, z float32 at 0/4/8, rgb at 16, point_step 32, unorganised and dense
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud_msg.fields] == [
            ("x", 0, 7, 1),
            ("y", 4, 7, 1),
            ("z", 8, 7, 1),
            ("rgb", 16, 7, 1),
        ]
        assert cloud_msg.point_step == 32 and cloud_msg.height == 1 and cloud_msg.is_dense
        assert (
            cloud_msg.row_step == 32 * cloud_msg.width
            and len(cloud_msg.data) == cloud_msg.row_step
        )
        assert (
            cloud_msg.header.frame_id == CAMERA_FRAME
            and cloud_msg.header.stamp == depth_msg.header.stamp
        )
        # byte for byte against the pipeline run here, packed by hand
        ref = process_frame(
            frame.points,
            frame.camera,
            frame.t_cam_from_lidar,
            DepthCompleter("nearest", "cpu"),
            frame.rgb,
        )
        assert cloud_msg.width == len(ref.cloud)
        expected = bytearray()
        for (x, y, z), (r, g, b) in zip(ref.cloud[:2000], ref.cloud_rgb[:2000]):
            expected += struct.pack("<fff4xI12x", x, y, z, (int(r) << 16) | (int(g) << 8) | int(b))
        assert bytes(cloud_msg.data[: len(expected)]) == bytes(expected)


def test_parameter_validation_and_runtime_change(context, kitti_frame0):
    node = make_node(context, kitti_frame0)
    try:
        bad = node.set_parameters([Parameter("confidence_threshold", value=1.5)])[0]
        assert not bad.successful and "range" in bad.reason
        bad = node.set_parameters([Parameter("min_depth", value=200.0)])[0]
        assert not bad.successful and "max_depth" in bad.reason
        bad = node.set_parameters([Parameter("extrinsic.rotation", value=[0.0, 0.0, 0.0, 0.0])])[0]
        assert not bad.successful and "quaternion" in bad.reason
        ro = node.set_parameters([Parameter("model", value="classic")])[0]
        assert not ro.successful
        ok = node.set_parameters(
            [Parameter("max_depth", value=20.0), Parameter("sync_slop", value=0.2)]
        )
        assert all(r.successful for r in ok)
        assert node.values()["max_depth"] == 20.0 and node._sync.slop == 0.2
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    "param, value, message", [("inference_scale", 0.3, "1/n"), ("precision", "fp8", "precision")]
)
def test_bad_speed_parameters_stop_the_node_at_start_with_the_reason(
    context, kitti_frame0, param, value, message
):
    with pytest.raises(ValueError, match=message):
        make_node(context, kitti_frame0, **{param: value})


def test_half_resolution_bf16_node_publishes_full_resolution_depth(context, kitti_frame0):
    with live(
        context, kitti_frame0, model="sparseconv", inference_scale=0.5, precision="bf16"
    ) as (node, h, ex, send):
        assert spin_until(ex, h.all_received, 60.0, send)
        depth = h.got["depth/image"][0]
        assert (depth.height, depth.width) == (
            kitti_frame0.camera.height,
            kitti_frame0.camera.width,
        )
        values = np.frombuffer(bytes(depth.data), np.float32)
        assert np.isfinite(values).mean() > 0.5
        assert "bf16, at 1/2 resolution" in node.completer.description


def test_runtime_max_depth_change_applies_to_the_next_frame(context, kitti_frame0):
    with live(context, kitti_frame0, topics=("depth/image",)) as (node, h, ex, send):
        assert spin_until(ex, h.all_received, 60.0, send)
        first = np.frombuffer(h.got["depth/image"][-1].data, "<f4")
        assert np.nanmax(first) > 30.0
        assert node.set_parameters([Parameter("max_depth", value=15.0)])[0].successful
        n = len(h.got["depth/image"])
        assert spin_until(ex, lambda: len(h.got["depth/image"]) >= n + 2, 60.0, send)
        last = np.frombuffer(h.got["depth/image"][-1].data, "<f4")
        assert np.nanmax(last) <= 15.0


def test_bad_messages_are_dropped_counted_and_the_node_goes_on(context, kitti_frame0):
    with live(context, kitti_frame0, topics=("depth/image",)) as (node, h, ex, send):
        assert spin_until(ex, h.all_received, 60.0, send)

        def bad_encoding(cloud, image, info):
            image.encoding = "yuv422"

        def truncated_cloud(cloud, image, info):
            cloud.data = cloud.data[:100]

        def uncalibrated(cloud, image, info):
            info.p = [0.0] * 12

        def size_mismatch(cloud, image, info):
            info.width = 640

        for i, spoil in enumerate(
            (bad_encoding, truncated_cloud, uncalibrated, size_mismatch), start=1
        ):
            send(spoil)
            assert spin_until(
                ex, lambda: node.stats.snapshot().get("rejected_input", 0) >= i, 30.0
            ), spoil.__name__
        n = len(h.got["depth/image"])
        assert spin_until(ex, lambda: len(h.got["depth/image"]) > n, 30.0, send)
        status = node.diagnostic_status()
        values = {kv.key: kv.value for kv in status.values}
        assert int(values["count.rejected_input"]) >= 4 and int(values["count.frames_out"]) >= 2
        assert "latency_ms.complete" in values and values["device"] == "cpu"
        assert "latency_ms.arrival_to_publish" in values
        assert spin_until(ex, lambda: len(h.diagnostics) > 0, 5.0)


def test_no_inference_while_nobody_subscribes(context, kitti_frame0):
    frame = kitti_frame0
    node = make_node(context, frame)
    pub = rclpy.create_node("quiet_publisher", context=context)
    p = input_publishers(pub, RELIABLE)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    ex.add_node(pub)
    stamps = iter(range(10**9, 10**10, 10**8))

    def send():
        for publisher, msg in zip(p, frame_messages(frame, next(stamps))):
            publisher.publish(msg)

    try:
        assert spin_until(
            ex, lambda: node.stats.snapshot().get("skipped_no_subscribers", 0) >= 2, 30.0, send
        )
        assert node.stats.snapshot().get("frames_out", 0) == 0
    finally:
        ex.shutdown()
        node.destroy_node()
        pub.destroy_node()


def test_missing_weights_fall_back_to_the_default_unless_strict(context, kitti_frame0, tmp_path):
    """The default's classical fill (classic-refined), without its judge."""
    node = make_node(context, kitti_frame0, model=str(tmp_path / "missing.pt"))
    try:
        assert node.completer.method == "classic-refined" and node.completer.model is None
        assert node.stats.snapshot()["model_fallback"] == 1
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="does not exist"):
        make_node(context, kitti_frame0, model=str(tmp_path / "missing.pt"), strict=True)


def test_node_executable_in_its_own_process(tmp_path, kitti_frame0):
    """Cross-process: the installed `sparse_depth_node` executable with the shipped YAML and the
    KITTI rig's extrinsic."""
    exe = Path(sys.executable).with_name("sparse_depth_node")
    assert exe.exists(), "the package is installed (pip install -e . / colcon build)"
    config = REPO / "config" / "sparse_depth.yaml"
    log = open(tmp_path / "node.log", "w")
    proc = subprocess.Popen(
        [
            str(exe),
            "--ros-args",
            "--params-file",
            str(config),
            "--params-file",
            str(REPO / "config" / "kitti_2011_09_26.yaml"),
            "-p",
            "use_tf:=false",
            "-p",
            "device:=cpu",
            "-p",
            "model:=classic",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    h = Harness(ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(h.node)
    stamps = iter(range(10**9, 10**11, 10**8))
    try:
        assert spin_until(
            ex, h.all_received, 90.0, lambda: h.publish(frame_messages(kitti_frame0, next(stamps)))
        ), (tmp_path / "node.log").read_text()
        depth = np.frombuffer(h.got["depth/image"][0].data, "<f4").reshape(375, 1242)
        lidar = lidar_pixels(kitti_frame0)
        at = np.isfinite(lidar) & np.isfinite(depth)
        assert at.sum() > 14000 and np.median(np.abs(depth[at] - lidar[at])) < 0.05
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        ex.shutdown()
        h.node.destroy_node()
        rclpy.shutdown(context=ctx)
    assert "ready: classic on cpu" in (tmp_path / "node.log").read_text()


def test_faults_resolution_change_late_camera_info_time_jump_and_stale_input(
    context, kitti_frame0
):
    import dataclasses

    from PIL import Image as PILImage

    from sparse_depth_node.ros.diagnostics import STALE_AFTER_S

    with live(context, kitti_frame0, topics=("depth/image",)) as (node, h, ex, send):
        assert spin_until(ex, h.all_received, 60.0, send)
        # the camera switches to half resolution mid-stream
        half = dataclasses.replace(
            kitti_frame0,
            camera=kitti_frame0.camera.scaled(0.5),
            rgb=np.asarray(PILImage.fromarray(kitti_frame0.rgb).resize((621, 188))),
        )
        cloud, image, info = frame_messages(half, 50 * 10**9)
        h.publish((cloud, image, info))
        assert spin_until(ex, lambda: h.got["depth/image"][-1].width == 621, 30.0)
        assert h.got["depth/image"][-1].height == 188
        # camera_info arriving after its image and cloud
        cloud, image, info = frame_messages(kitti_frame0, 51 * 10**9)
        h.pub_cloud.publish(cloud)
        h.pub_image.publish(image)
        spin_until(ex, lambda: False, 0.5)
        h.pub_info.publish(info)
        assert spin_until(ex, lambda: h.got["depth/image"][-1].header.stamp.sec == 51, 30.0)
        # time jumps back (a looping bag, which goes on publishing): queues reset, frames come;
        # that the first set after a jump pairs is test/msgs/test_sync.py's
        jumped = frame_messages(kitti_frame0, 2 * 10**9)
        back = lambda: h.got["depth/image"][-1].header.stamp.sec == 2  # noqa: E731
        assert spin_until(ex, back, 30.0, lambda: h.publish(jumped), period=1.0), (
            node.stats.snapshot(),
            node.inputs.reliability,
            {s: [t for t, _, _ in q] for s, q in node._sync.queues.items()},
            [m.header.stamp.sec for m in h.got["depth/image"]],
            _worker_stack(node),
        )
        assert node._sync.resets >= 1
        # every sensor stops: the status says so
        assert spin_until(
            ex,
            lambda: node.diagnostic_status().message.startswith("stale input"),
            STALE_AFTER_S + 5,
        )
        from diagnostic_msgs.msg import DiagnosticStatus

        assert node.diagnostic_status().level == DiagnosticStatus.WARN


def _worker_stack(node) -> str:
    """Where the node's worker thread is now (for a failure's message)."""
    import traceback

    worker = node._worker
    if worker is None or not worker.is_alive():
        return "worker not running"
    return "".join(traceback.format_stack(sys._current_frames()[worker.ident]))


def _inconsistent_checkpoint(path: Path) -> Path:
    """A valid checkpoint zip whose config the network cannot be built from."""
    from sparse_depth_node.core.models import SparseConvNet, save_checkpoint

    save_checkpoint(path, "sparseconv", SparseConvNet(), {})
    ckpt = torch.load(str(path), weights_only=True)
    ckpt["config"] = {"layers": 3}
    torch.save(ckpt, str(path))
    return path


@pytest.mark.parametrize("kind", ["corrupt bytes", "valid zip, wrong config"])
def test_corrupt_weights_fall_back_to_the_default(context, kitti_frame0, tmp_path, kind):
    bad = tmp_path / "bad.pt"
    if kind == "corrupt bytes":
        bad.write_bytes(b"\x80\x04 not a checkpoint" * 100)
    else:
        _inconsistent_checkpoint(bad)
    node = make_node(context, kitti_frame0, model=str(bad))
    try:
        assert node.completer.method == "classic-refined" and node.completer.model is None
        assert node.stats.snapshot()["model_fallback"] == 1
    finally:
        node.destroy_node()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_overload_keeps_queues_and_memory_bounded_and_serves_the_newest_frame(
    context, kitti_frame0
):
    """Input at ~5x what the node sustains (20 Hz against ~4 frames/s of sparseconv on 2 cores)
    for 12 s; scripts/soak.py runs the same for minutes."""
    with live(context, kitti_frame0, topics=("depth/image",), model="sparseconv") as (
        node,
        h,
        ex,
        send,
    ):
        assert spin_until(ex, h.all_received, 60.0, send)
        cloud, image, info = frame_messages(kitti_frame0, 10**9)
        stamps = []

        def publish_next():
            stamps.append(100 * 10**9 + len(stamps) * 5 * 10**7)
            for msg in (cloud, image, info):
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamps[-1], 10**9)
            h.publish((cloud, image, info))
            assert all(len(q) <= node._sync.queue_size for q in node._sync.queues.values())

        start = time.monotonic()
        spin_until(ex, lambda: time.monotonic() - start > 3.0, 10.0, publish_next, period=0.05)
        rss_warm = _rss_mb()
        spin_until(ex, lambda: time.monotonic() - start > 12.0, 20.0, publish_next, period=0.05)
        rss_end = _rss_mb()
        last_sent = stamps[-1]
        # the newest frame is the one served once the input stops
        assert spin_until(
            ex,
            lambda: (
                h.got["depth/image"][-1].header.stamp.sec * 10**9
                + h.got["depth/image"][-1].header.stamp.nanosec
                == last_sent
            ),
            10.0,
        )
        counts = node.stats.snapshot()
        assert counts["dropped_busy"] > 0 and counts["frames_out"] >= 10
        assert counts["dropped_busy"] + counts["frames_out"] >= 0.8 * len(stamps)
        assert rss_end - rss_warm < 150, (rss_warm, rss_end)
        p90 = node.stats.percentiles()["node_total"]["p90_ms"]
        assert p90 < 3000.0  # latency stays bounded (one frame's work, not a backlog)


def test_cuda_unavailable_falls_back_to_cpu_with_the_same_model(context, kitti_frame0):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the fallback is for machines without it")
    node = make_node(context, kitti_frame0, model="sparseconv", device="cuda")
    try:
        assert node.completer.method == "sparseconv" and node.completer.device.type == "cpu"
        assert node.stats.snapshot()["model_fallback"] == 1
    finally:
        node.destroy_node()


def test_cuda_out_of_memory_moves_the_model_to_cpu_once(context, kitti_frame0):
    """A CUDA OOM raised by the completion (simulated: no GPU here) switches the node to the
    CPU."""
    with live(context, kitti_frame0, topics=("depth/image",), model="sparseconv") as (
        node,
        h,
        ex,
        send,
    ):
        calls = []

        def out_of_memory(*_inputs):
            calls.append(1)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

        node.completer.complete = out_of_memory
        assert spin_until(ex, h.all_received, 60.0, send)
        assert calls == [1]  # the fallback completer (a new object on the CPU) served the frame
        assert (
            node.stats.snapshot()["cuda_oom_fallback"] == 1 and node.completer.device.type == "cpu"
        )


def test_strict_with_an_unloadable_checkpoint_exits_2_with_one_line(tmp_path):
    bad = _inconsistent_checkpoint(tmp_path / "bad.pt")
    exe = Path(sys.executable).with_name("sparse_depth_node")
    r = subprocess.run(
        [str(exe), "--ros-args", "-p", f"model:={bad}", "-p", "strict:=true"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "error:" in r.stderr and "cannot be built from its config" in r.stderr


def test_a_stream_half_a_second_late_still_pairs_over_dds(context, kitti_frame0):
    """10 Hz for 5 s, every image published 0.5 s after the cloud and camera_info of its stamp
    (a lagging camera driver): at least 95 % of the sets pair (5 of 50 did with the earlier
    pairing), no queue reset, counted in diagnostics.
    Reliable inputs, so that what is measured is the pairing, not DDS's best-effort delivery."""
    reliable = {
        f"qos_overrides./{t}.subscription.reliability": "reliable"
        for t in ("lidar/points", "camera/image", "camera/camera_info")
    }
    with live(context, kitti_frame0, topics=("depth/image",), **reliable) as (node, h, ex, send):
        assert spin_until(ex, h.all_received, 60.0, send)  # discovery done
        before = node.stats.snapshot().get("sets_paired", 0)
        n, lag = 50, 5
        msgs = [frame_messages(kitti_frame0, 200 * 10**9 + k * 10**8) for k in range(n)]
        tick = iter(range(n + lag))
        finished = []

        def publish_next():
            k = next(tick, None)
            if k is None:
                finished.append(True)
                return
            if k < n:
                h.pub_cloud.publish(msgs[k][0])
                h.pub_info.publish(msgs[k][2])
            if 0 <= k - lag < n:
                h.pub_image.publish(msgs[k - lag][1])

        assert spin_until(ex, lambda: bool(finished), 30.0, publish_next, period=0.1)
        spin_until(ex, lambda: False, 1.5)  # the last sets reach the node
        counts = node.stats.snapshot()
        assert counts["sets_paired"] - before >= 0.95 * n, counts
        assert counts.get("sync_resets", 0) == 0
        status = {kv.key: kv.value for kv in node.diagnostic_status().values}
        assert int(status["count.sets_paired"]) == counts["sets_paired"]


def test_without_tf_or_an_extrinsic_nothing_is_published_and_diagnostics_say_why(
    context, kitti_frame0
):
    """No guessed extrinsic: with use_tf false (no tf2 here either) and extrinsic.* not set, the
    node publishes nothing, counts the frames, and its status is ERROR naming the fix."""
    overrides = [
        Parameter(k, value=v)
        for k, v in {"use_tf": False, "model": "nearest", "device": "cpu"}.items()
    ]
    node = SparseDepthNode(context=context, parameter_overrides=overrides)
    h = Harness(context, ("depth/image",))
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    ex.add_node(h.node)
    try:
        assert node.diagnostic_status().level == DiagnosticStatus.ERROR  # from the start
        stamps = iter(range(10**9, 10**11, 10**8))

        def send():
            h.publish(frame_messages(kitti_frame0, next(stamps)))

        assert spin_until(
            ex, lambda: node.stats.snapshot().get("extrinsic_missing", 0) >= 3, 30.0, send
        )
        assert h.got["depth/image"] == []
        status = node.diagnostic_status()
        assert status.level == DiagnosticStatus.ERROR and "extrinsic.translation" in status.message
        assert status.name == "/sparse_depth_node: pipeline"
    finally:
        ex.shutdown()
        node.destroy_node()
        h.node.destroy_node()


def test_with_fixed_frame_id_and_no_tf_nothing_is_projected_uncompensated(context, kitti_frame0):
    """fixed_frame_id asks for each point's motion from TF; without TF (use_tf false; nor is
    tf2_msgs in the pip wheels) the node publishes nothing, though an extrinsic is given,
    counts every set as motion_tf_missing and its status is ERROR naming what to change."""
    with live(context, kitti_frame0, ("depth/image",), fixed_frame_id="odom") as (
        node,
        h,
        ex,
        send,
    ):
        assert spin_until(
            ex, lambda: node.stats.snapshot().get("motion_tf_missing", 0) >= 3, 30.0, send
        )
        assert h.got["depth/image"] == [] and "frames_out" not in node.stats.snapshot()
        status = node.diagnostic_status()
        assert status.level == DiagnosticStatus.ERROR
        assert "fixed_frame_id 'odom' needs the LiDAR's motion from TF" in status.message


def test_with_tf_on_the_wire_a_moving_lidars_points_are_carried(context, kitti_frame0):
    """/tf_static and a moving /tf published over DDS as a robot does; the node carries each
    point through odom and says how far in its diagnostics."""
    tf2_msgs = pytest.importorskip(
        "tf2_msgs.msg", reason="tf2_msgs comes with a ROS install from apt, not the pip wheels"
    )
    from geometry_msgs.msg import TransformStamped
    from rclpy.qos import DurabilityPolicy, QoSProfile

    from sparse_depth_node.msgs.extrinsics import extrinsic_parameters as params_of

    def transform(parent, child, t, stamp_ns):
        ts = TransformStamped()
        ts.header.frame_id, ts.child_frame_id = parent, child
        ts.header.stamp.sec, ts.header.stamp.nanosec = divmod(stamp_ns, 10**9)
        p = params_of(t)
        tr, q = ts.transform.translation, ts.transform.rotation
        tr.x, tr.y, tr.z = p["extrinsic.translation"]
        q.x, q.y, q.z, q.w = p["extrinsic.rotation"]
        return tf2_msgs.TFMessage(transforms=[ts])

    with live(context, kitti_frame0, ("depth/image",), use_tf=True, fixed_frame_id="odom") as (
        node,
        h,
        ex,
        send,
    ):
        static = h.node.create_publisher(
            tf2_msgs.TFMessage,
            "/tf_static",
            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
        )
        moving = h.node.create_publisher(tf2_msgs.TFMessage, "/tf", 100)
        # T_camera<-velo, the camera the robot's base that odometry moves
        static.publish(transform("camera_optical", "velo_link", kitti_frame0.t_cam_from_lidar, 0))

        odometry = [10**9]  # the next stamp of odometry, ns: 100 Hz, 1 m/s along z

        def send_with_odometry():
            ahead = (send.sent[-1] if send.sent else 10**9) + 3 * 10**8
            while odometry[0] <= ahead:  # odometry to 0.3 s past the next set's stamp
                t = np.eye(4)
                t[2, 3] = (odometry[0] - 10**9) * 1e-9
                moving.publish(transform("odom", "camera_optical", t, odometry[0]))
                odometry[0] += 10**7
            send()

        assert spin_until(ex, lambda: len(h.got["depth/image"]) >= 3, 60.0, send_with_odometry)
        status = {kv.key: kv.value for kv in node.diagnostic_status().values}
        assert "motion_applied" in status and "m" in status["motion_applied"]


def test_an_extrinsic_that_puts_every_point_behind_the_camera_is_said_within_3_s(
    context, kitti_frame0
):
    """The depth is still published (all NaN: no estimate), counted as empty_depth, and the
    diagnostics WARN names the extrinsic, within 3 s of the first frame."""
    from sparse_depth_node.msgs.extrinsics import extrinsic_parameters as params_of

    flipped = np.diag([-1.0, 1.0, -1.0, 1.0]) @ kitti_frame0.t_cam_from_lidar
    with live(context, kitti_frame0, ("depth/image",), **params_of(flipped)) as (
        node,
        h,
        ex,
        send,
    ):
        assert spin_until(ex, lambda: h.got["depth/image"], 30.0, send)
        first = time.monotonic()
        warned = lambda: "behind the camera" in node.diagnostic_status().message  # noqa: E731
        assert spin_until(ex, warned, 3.0, send)
        took = time.monotonic() - first
        status = node.diagnostic_status()
    assert status.level == DiagnosticStatus.WARN and took <= 3.0
    assert status.message.startswith("depth (nearly) empty: every one of the")
    assert node.stats.snapshot()["empty_depth"] >= 1
    assert np.isnan(np.frombuffer(h.got["depth/image"][0].data, "<f4")).all()


def test_a_configured_node_says_no_input_yet_until_the_first_message(context, kitti_frame0):
    node = make_node(context, kitti_frame0)
    try:
        status = node.diagnostic_status()
        assert (status.level, status.message) == (DiagnosticStatus.WARN, "no input yet")
    finally:
        node.destroy_node()


def test_optional_outputs_are_advertised_only_while_enabled(context, kitti_frame0):
    node = make_node(context, kitti_frame0)
    probe = rclpy.create_node("advertised_probe", context=context)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    ex.add_node(probe)

    def advertised():
        return {
            name.lstrip("/")
            for name, _ in probe.get_publisher_names_and_types_by_node("sparse_depth_node", "/")
        }

    try:
        assert spin_until(ex, lambda: "depth/image" in advertised(), 10.0)
        assert {"depth/sparse", "depth/confidence", "depth/image_raw"}.isdisjoint(advertised())
        assert {"depth/image", "depth/camera_info", "depth/points"} <= advertised()
        node.set_parameters(
            [Parameter("publish_sparse", value=True), Parameter("publish_cloud", value=False)]
        )
        assert spin_until(ex, lambda: "depth/sparse" in advertised(), 10.0)
        assert spin_until(ex, lambda: "depth/points" not in advertised(), 10.0)
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
