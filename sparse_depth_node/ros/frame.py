"""The frame path: one synchronised cloud / image / camera_info set in, every output message
out. The node, ``sparse-depth process`` and the benchmark all run a frame through here, so what
is benchmarked and what is written to a bag is what the node publishes.

Messages are duck-typed (rclpy or ``rosbags`` classes); a ``MessageKit`` makes the blank
outputs of either kind. Nothing here imports rclpy.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..core.camera import PinholeCamera
from ..core.completion import DepthCompleter
from ..core.pipeline import FrameResult, process_frame
from ..core.timing import Stopwatch
from .msgs import fill_depth_image, fill_pointcloud2, image_to_rgb, pointcloud2_to_xyz

IMAGE, CAMERA_INFO, POINTCLOUD2 = (
    f"sensor_msgs/msg/{n}" for n in ("Image", "CameraInfo", "PointCloud2")
)


class MessageKit(Protocol):
    """Makes blank messages of one ROS binding (rclpy or rosbags)."""

    point_field: type

    def new(self, msgtype: str) -> Any: ...


@dataclass(frozen=True)
class Output:
    """One published topic: relative name, message type, the setting that enables it (None:
    always on), and how a frame's result becomes its message."""

    topic: str
    msgtype: str
    enabled_by: "str | None"
    encode: Callable[["FrameResult", Any, Any, Mapping[str, Any], MessageKit], Any]


def restamp(msg: Any, header: Any) -> Any:
    """A copy of ``msg`` with ``header``."""
    if dataclasses.is_dataclass(msg):  # rosbags messages
        return dataclasses.replace(msg, header=header)
    out = copy.copy(msg)
    out.header = header
    return out


def _cloud(
    result: FrameResult, header: Any, _info: Any, values: Mapping[str, Any], kit: MessageKit
) -> Any:
    organized = result.cloud_pixels if values["organized_cloud"] else None
    return fill_pointcloud2(
        kit.new(POINTCLOUD2), kit.point_field, header, result.cloud, result.cloud_rgb, organized
    )


def _confidence(
    result: FrameResult, header: Any, _info: Any, _values: Mapping[str, Any], kit: MessageKit
) -> Any:
    conf = np.where(result.confidence > 0, result.confidence, np.nan)
    return fill_depth_image(kit.new(IMAGE), conf, header)


OUTPUTS: tuple[Output, ...] = (
    Output(
        "depth/image",
        IMAGE,
        None,
        lambda r, h, i, v, kit: fill_depth_image(kit.new(IMAGE), r.dense_depth, h),
    ),
    Output("depth/camera_info", CAMERA_INFO, None, lambda r, h, info, v, kit: restamp(info, h)),
    Output("depth/points", POINTCLOUD2, "publish_cloud", _cloud),
    Output("depth/confidence", IMAGE, "publish_confidence", _confidence),
    Output(
        "depth/sparse",
        IMAGE,
        "publish_sparse",
        lambda r, h, i, v, kit: fill_depth_image(kit.new(IMAGE), r.sparse_depth, h),
    ),
    Output(
        "depth/image_raw",
        IMAGE,
        "publish_image_raw",
        lambda r, h, i, v, kit: fill_depth_image(kit.new(IMAGE), r.dense_depth, h, "16UC1"),
    ),
)


def enabled_outputs(values: Mapping[str, Any]) -> list[str]:
    """The topics the settings enable."""
    return [o.topic for o in OUTPUTS if o.enabled_by is None or values[o.enabled_by]]


class Dropped(Exception):
    """The set gives no output: ``counter`` names the diagnostics counter, the message why."""

    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter = counter


ExtrinsicLookup = Callable[[str, str, Any], "np.ndarray | None"]


def run_set(
    cloud: Any,
    image: Any,
    info: Any,
    extrinsic: ExtrinsicLookup,
    completer: DepthCompleter,
    values: Mapping[str, Any],
    topics: "list[str]",
    kit: MessageKit,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Decode a synchronised set, run the per-frame pipeline and encode the outputs ``topics``.

    ``extrinsic(camera_frame, lidar_frame, stamp)`` gives T_camera<-lidar (4, 4) or None.
    Returns {topic: message} (stamped and framed as the image, REP 118) and the stage timings
    (ms): decoding each message, the pipeline's stages, encoding each output. Raises ``Dropped``
    for a malformed set
    (``rejected_input``) or a missing transform (``tf_missing``); ``torch.cuda.OutOfMemoryError``
    passes through for the caller to handle.
    """
    watch = Stopwatch()
    try:
        points = pointcloud2_to_xyz(cloud)
        watch.lap("cloud_msg_to_array")
        rgb = image_to_rgb(image)
        watch.lap("image_msg_to_array")
        camera = PinholeCamera.from_camera_info(info)
        if (camera.width, camera.height) != (rgb.shape[1], rgb.shape[0]):
            raise ValueError(
                f"camera_info is {camera.width}x{camera.height} but the image is "
                f"{rgb.shape[1]}x{rgb.shape[0]}"
            )
    except ValueError as exc:
        raise Dropped("rejected_input", str(exc)) from exc
    t_cam = extrinsic(image.header.frame_id, cloud.header.frame_id, cloud.header.stamp)
    if t_cam is None:
        raise Dropped(
            "tf_missing", f"no transform {cloud.header.frame_id} -> {image.header.frame_id}"
        )
    watch.lap("camera_and_extrinsic")
    try:
        result = process_frame(points, camera, t_cam, completer, rgb, values)
    except ValueError as exc:
        raise Dropped("rejected_input", str(exc)) from exc
    watch.restart()
    by_topic = {o.topic: o for o in OUTPUTS}
    messages = {}
    for t in topics:
        messages[t] = by_topic[t].encode(result, image.header, info, values, kit)
        watch.lap(f"encode {t}")
    return messages, {**result.timings_ms, **watch.laps}


class RclpyKit:
    """Blank rclpy messages (imported on first use: this module stays free of rclpy)."""

    def __init__(self) -> None:
        from sensor_msgs import msg

        self._msg = msg
        self.point_field = msg.PointField

    def cls(self, msgtype: str) -> type:
        return getattr(self._msg, msgtype.rsplit("/", 1)[1])

    def new(self, msgtype: str) -> Any:
        return self.cls(msgtype)()
