"""T_camera<-lidar for the node: from tf2 at the cloud's stamp when tf2 is importable and
asked for, else from parameters (translation [x, y, z] m, rotation quaternion [x, y, z, w]).

The tf2 path follows the documented tf2_ros Python API (Buffer, TransformListener,
can_transform with no timeout, so the executor never blocks); on machines without tf2_ros it
is not available and the parameter path serves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.transforms import transform_from_quaternion

try:  # tf2_ros comes with a ROS install, not with the pip wheels
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the machine
    tf2_ros = None


def tf2_available() -> bool:
    return tf2_ros is not None


def transform_msg_to_matrix(transform: Any) -> np.ndarray:
    """geometry_msgs/Transform -> (4, 4)."""
    t, q = transform.translation, transform.rotation
    return transform_from_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


class TfExtrinsics:
    """Looks T_camera<-lidar up in tf2 at a stamp without waiting."""

    def __init__(self, node: Any) -> None:
        if tf2_ros is None:
            raise RuntimeError("tf2_ros is not importable")
        self.buffer = tf2_ros.Buffer(node=node)
        self.listener = tf2_ros.TransformListener(self.buffer, node)

    def lookup(self, camera_frame: str, lidar_frame: str, stamp: Any) -> "np.ndarray | None":
        """The transform mapping ``lidar_frame`` coordinates into ``camera_frame`` at ``stamp``
        (a builtin_interfaces/Time), or None when tf2 does not have it (yet)."""
        from rclpy.time import Time

        when = Time.from_msg(stamp)
        if not self.buffer.can_transform(camera_frame, lidar_frame, when):
            return None
        try:
            ts = self.buffer.lookup_transform(camera_frame, lidar_frame, when)
        except tf2_ros.TransformException:
            return None
        return transform_msg_to_matrix(ts.transform)


def extrinsic_from_parameters(
    translation: "list[float]", rotation_xyzw: "list[float]"
) -> np.ndarray:
    """(4, 4) from the ``extrinsic.translation`` and ``extrinsic.rotation`` parameters."""
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise ValueError(
            f"extrinsic.translation must be 3 finite numbers, got {list(translation)}"
        )
    q = np.asarray(rotation_xyzw, dtype=np.float64)
    if q.shape != (4,):
        raise ValueError(
            f"extrinsic.rotation must be a quaternion [x, y, z, w], got {list(rotation_xyzw)}"
        )
    return transform_from_quaternion(t, q)
