"""A frame as driver messages, without torch: ``sensor_messages`` fills what a LiDAR and a camera
driver publish for one frame with a message kit (outputs.MessageKit: ros.kit.RclpyKit for
rclpy, bag.io.BagKit for rosbags)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.camera import PinholeCamera
from .convert import fill_camera_info, fill_cloud_from_array, fill_rgb_image
from .outputs import CAMERA_INFO, IMAGE, POINTCLOUD2, MessageKit


def sensor_messages(
    kit: MessageKit,
    points: np.ndarray,
    rgb: np.ndarray,
    camera: PinholeCamera,
    stamp_ns: int,
    lidar_frame: str,
    camera_frame: str,
) -> tuple[Any, Any, Any]:
    """What a LiDAR and a camera driver publish for one frame, as ``kit``'s messages:
    PointCloud2 of ``points`` (N, 3) x, y, z or (N, 4) with intensity, float32 metres, in
    ``lidar_frame``; rgb8 Image of ``rgb`` (H, W, 3) and CameraInfo of the rectified
    ``camera``, in ``camera_frame``; all stamped ``stamp_ns``."""
    cloud = fill_cloud_from_array(
        kit.new(POINTCLOUD2), kit.point_field, kit.header(stamp_ns, lidar_frame), points
    )
    image = fill_rgb_image(kit.new(IMAGE), kit.header(stamp_ns, camera_frame), rgb)
    info = fill_camera_info(kit.new(CAMERA_INFO), kit.header(stamp_ns, camera_frame), camera)
    return cloud, image, info
