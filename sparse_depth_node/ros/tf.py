"""T_camera<-lidar from tf2 in the node. It follows the documented tf2_ros Python API (Buffer,
TransformListener, can_transform with no timeout, so the executor never blocks); on machines
without tf2_ros it is not available and the extrinsic.* parameters serve (msgs.extrinsics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..msgs.extrinsics import ExtrinsicSource, transform_msg_to_matrix

try:  # tf2_ros comes with a ROS install, not with the pip wheels
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the machine
    tf2_ros = None


def tf2_available() -> bool:
    return tf2_ros is not None


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


def node_extrinsics(node: Any) -> ExtrinsicSource:
    """The node's T_camera<-lidar by the one policy (msgs.extrinsics): tf2 when ``use_tf`` and
    tf2_ros is installed, else its ``extrinsic.*`` parameters; what it says of the choice."""
    values = node.values
    use_tf = values()["use_tf"]
    tf = TfExtrinsics(node).lookup if use_tf and tf2_available() else None
    extrinsics = ExtrinsicSource(values, tf)
    if use_tf and tf is None:
        node.get_logger().info(
            "tf2_ros is not available: T_camera<-lidar comes from the extrinsic.* parameters"
        )
    for line in (extrinsics.ignored(), extrinsics.problem()):
        if line:
            node.get_logger().warning(line)
    return extrinsics
