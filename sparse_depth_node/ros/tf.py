"""The node's TF: /tf and /tf_static subscribed to as tf2's TransformListener does (the same
QoS), kept by time in the buffer the bag tools use (msgs/tf_buffer.py), so that a frame's
T_camera<-lidar and a sweep's 128 poses come from one vectorised lookup instead of a tf2 call
each. tf2_msgs comes with every ROS install; where it is missing (ROS 2 as pip wheels) TF is
not available and the extrinsic.* parameters serve (msgs.extrinsics)."""

from __future__ import annotations

from typing import Any

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from ..msgs.extrinsics import ExtrinsicSource
from ..msgs.tf_buffer import TfBuffer

try:  # tf2_msgs comes with a ROS install, not with the pip wheels
    from tf2_msgs.msg import TFMessage
except ImportError:  # pragma: no cover - depends on the machine
    TFMessage = None

# tf2_ros's DynamicListenerQoS and StaticListenerQoS
DYNAMIC = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
STATIC = QoSProfile(
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def tf_available() -> bool:
    return TFMessage is not None


def listen(node: Any, buffer: TfBuffer) -> None:
    """Feed ``buffer`` from /tf and /tf_static (absolute names: a namespaced node hears the
    robot's TF, as tf2's listener does)."""
    node.create_subscription(TFMessage, "/tf", buffer.add_message, DYNAMIC)
    node.create_subscription(
        TFMessage, "/tf_static", lambda m: buffer.add_message(m, static=True), STATIC
    )


def node_extrinsics(node: Any) -> ExtrinsicSource:
    """The node's placement of its sets by the one policy (msgs.extrinsics): TF when
    ``use_tf`` and tf2_msgs is installed, else its ``extrinsic.*`` parameters; what it says of
    the choice, and later the lines worth saying once."""
    use_tf = node.values()["use_tf"]
    buffer = None
    if use_tf and tf_available():
        buffer = TfBuffer()
        listen(node, buffer)
    logger = node.get_logger()
    extrinsics = ExtrinsicSource(
        node.values, buffer, "TF", lambda level, line: getattr(logger, level)(line)
    )
    if use_tf and buffer is None:
        node.get_logger().info(
            "tf2_msgs is not installed (ROS 2 from pip wheels): TF is not available and "
            "T_camera<-lidar comes from the extrinsic.* parameters"
        )
    for line in (extrinsics.ignored(), extrinsics.problem()):
        if line:
            node.get_logger().warning(line)
    return extrinsics
