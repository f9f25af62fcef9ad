"""Real rclpy helpers for the node tests: KITTI frames as messages, an isolated DDS domain,
a spinning loop that waits for what a subscriber receives, and a bag player with a listener."""

import contextlib
import os
import random
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from sparse_depth_node.ros.extrinsics import extrinsic_parameters as ros_extrinsic_parameters
from sparse_depth_node.ros.kits import RclpyKit, sensor_messages
from sparse_depth_node.ros.outputs import INPUTS

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
    return [node.create_publisher(kit.cls(msgtype), topic, qos) for topic, msgtype, _ in INPUTS]


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
