"""Real rclpy helpers for the node tests: KITTI frames as messages, an isolated DDS domain,
a spinning loop that waits for what a subscriber receives, and a bag player with a listener."""

import contextlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from conftest import REPO
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from sparse_depth_node.msgs.extrinsics import extrinsic_parameters as ros_extrinsic_parameters
from sparse_depth_node.msgs.kits import sensor_messages
from sparse_depth_node.msgs.outputs import INPUTS
from sparse_depth_node.ros.kit import RclpyKit

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # the tests' listeners
CAMERA_FRAME = "camera_optical"
LIDAR_FRAME = "velo_link"


def isolate_dds() -> None:
    """A DDS domain of this test process's own, discovery on this machine only."""
    os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 100))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def frame_messages(frame, stamp_ns: int):
    """(PointCloud2 x,y,z,intensity, Image rgb8, CameraInfo) rclpy messages of a data set
    frame, one stamp, in LIDAR_FRAME and CAMERA_FRAME."""
    points = np.c_[frame.points, frame.intensity]
    return sensor_messages(
        RclpyKit(), points, frame.rgb, frame.camera, stamp_ns, LIDAR_FRAME, CAMERA_FRAME
    )


def extrinsic_parameters(frame) -> dict:
    """The node's extrinsic.* parameters for a data set frame."""
    return ros_extrinsic_parameters(frame.t_cam_from_lidar)


def input_publishers(node, qos) -> list:
    """Publishers of ``node`` on the sparse depth node's three inputs (cloud, image, info: the
    order of frame_messages)."""
    kit = RclpyKit()
    return [node.create_publisher(kit.cls(i.msgtype), i.topic, qos) for i in INPUTS]


def spin_until(executor, done, timeout: float, step=None, period: float = 0.3) -> bool:
    """Spin ``executor`` until ``done()``; call ``step()`` every ``period`` s meanwhile."""
    end = time.monotonic() + timeout
    next_step = 0.0
    while time.monotonic() < end:
        if done():
            return True
        if step is not None and time.monotonic() >= next_step:
            step()
            next_step = time.monotonic() + period
        executor.spin_once(timeout_sec=0.05)
    return done()


def node_process(tmp_path, frame, *params, env=None, files=(), extrinsic=True):
    """The installed executable with the shipped YAML, then ``files`` (more parameter files,
    in that order), ``frame``'s extrinsic (unless not ``extrinsic``) and ``params``
    (NAME:=VALUE); its log in tmp_path/node.log."""
    exe = Path(sys.executable).with_name("sparse_depth_node")
    cmd = [str(exe), "--ros-args", "--params-file", str(REPO / "config" / "sparse_depth.yaml")]
    for f in files:
        cmd += ["--params-file", str(f)]
    given = ["use_tf:=false", "device:=cpu"]
    if extrinsic:
        ext = extrinsic_parameters(frame)
        given += [f"{k}:={v}" for k, v in ext.items()]
    for p in (*given, *params):
        cmd += ["-p", p]
    return subprocess.Popen(
        cmd,
        stdout=open(tmp_path / "node.log", "w"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ, **(env or {})),
    )


class Driver:
    """A driver with Fast DDS's defaults in this process: publishes the three inputs with
    ``qos`` and counts depth images received by a reliable and a best-effort subscriber."""

    def __init__(self, qos):
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("driver", context=self.ctx)
        self.pubs = input_publishers(self.node, qos)
        self.got = {"reliable": [], "best_effort": []}
        for name, q in (("reliable", RELIABLE), ("best_effort", qos_profile_sensor_data)):
            self.node.create_subscription(
                Image, "depth/image", lambda m, n=name: self.got[n].append(time.monotonic()), q
            )
        self.diagnostics = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)

    def wait_for_node(self, proc, log):
        assert spin_until(
            self.ex,
            lambda: (
                all(p.get_subscription_count() for p in self.pubs)
                and self.node.count_publishers("depth/image") > 0
                or proc.poll() is not None
            ),
            120.0,
        )
        assert proc.poll() is None, log.read_text()
        spin_until(self.ex, lambda: False, 2.0)  # the node matches its input QoS (1 Hz)

    def publish_at(self, frames, hz, n, sent=None, start_ns=10**9):
        """Publish ``n`` sets at ``hz`` (frames in turn), stamped from ``start_ns`` on,
        spinning in between."""
        start = time.monotonic()
        for i in range(n):
            spin_until(self.ex, lambda i=i: time.monotonic() >= start + i / hz, 5.0)
            msgs = frame_messages(frames[i % len(frames)], start_ns + int(i * 1e9 / hz))
            if sent is not None:
                sent.append(time.monotonic())
            for pub, msg in zip(self.pubs, msgs):
                pub.publish(msg)

    def counters(self):
        values = {kv.key: kv.value for kv in self.diagnostics[-1].status[0].values}
        return {k[6:]: int(v) for k, v in values.items() if k.startswith("count.")}

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.ctx)


@contextlib.contextmanager
def playing(bag, listener_overrides=None, **player_options):
    """An isolated DDS context with a listening node (``listener_overrides``: its parameters)
    and a BagPlayer of ``bag`` on a node of its own, both on one executor; yields (listener,
    player, executor) and tears everything down afterwards."""
    from sparse_depth_node.bag.player import BagPlayer

    isolate_dds()
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    listener = rclpy.create_node(
        "listener", context=ctx, parameter_overrides=listener_overrides or []
    )
    player_node = rclpy.create_node("player", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(listener)
    ex.add_node(player_node)
    player = None
    try:
        player = BagPlayer(player_node, bag, **player_options)
        yield listener, player, ex
    finally:
        if player is not None:
            player.close()
        ex.shutdown()
        listener.destroy_node()
        player_node.destroy_node()
        rclpy.shutdown(context=ctx)


__all__ = [
    "Driver",
    "node_process",
    "isolate_dds",
    "frame_messages",
    "extrinsic_parameters",
    "input_publishers",
    "spin_until",
    "playing",
    "rclpy",
    "CAMERA_FRAME",
    "LIDAR_FRAME",
    "RELIABLE",
]
