"""Real rclpy helpers for the node tests: KITTI frames as messages, an isolated DDS domain,
a spinning loop that waits for what a subscriber receives, and a bag player with a listener."""

import contextlib
import os
import random
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from sparse_depth_node.core.transforms import matrix_to_quaternion
from sparse_depth_node.ros.msgs import fill_camera_info, fill_cloud_from_array, fill_rgb_image

CAMERA_FRAME = "camera_optical"
LIDAR_FRAME = "velo_link"


def isolate_dds() -> None:
    """A DDS domain of this test process's own, discovery on this machine only."""
    os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 100))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def frame_messages(frame, stamp_ns: int):
    """(PointCloud2 x,y,z,intensity, Image rgb8, CameraInfo) of a data set frame, one stamp."""
    stamp = Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    cloud = fill_cloud_from_array(
        PointCloud2(),
        PointField,
        Header(stamp=stamp, frame_id=LIDAR_FRAME),
        np.c_[frame.points, frame.intensity],
    )
    image = fill_rgb_image(Image(), Header(stamp=stamp, frame_id=CAMERA_FRAME), frame.rgb)
    info = fill_camera_info(CameraInfo(), Header(stamp=stamp, frame_id=CAMERA_FRAME), frame.camera)
    return cloud, image, info


def extrinsic_parameters(frame) -> dict:
    t = frame.t_cam_from_lidar
    return {
        "extrinsic.translation": [float(x) for x in t[:3, 3]],
        "extrinsic.rotation": [float(x) for x in matrix_to_quaternion(t[:3, :3])],
    }


def input_publishers(node, qos) -> list:
    """Publishers of ``node`` on the sparse depth node's three inputs, in frame_messages order."""
    types = (
        (PointCloud2, "lidar/points"),
        (Image, "camera/image"),
        (CameraInfo, "camera/camera_info"),
    )
    return [node.create_publisher(cls, topic, qos) for cls, topic in types]


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
]
