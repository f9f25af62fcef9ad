"""The node's topics: its inputs, and the one output table (every topic it publishes, its
message type, the parameter that enables it and how a frame's result, tensors on the device,
becomes its message: encode.py, imported when a frame is encoded). No torch at import, no
rclpy: the node, the frame path, the bag tools and the node's --help read it."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

    from ..core.pipeline import FrameResult

IMAGE, CAMERA_INFO, POINTCLOUD2, COMPRESSED_IMAGE = (
    f"sensor_msgs/msg/{n}" for n in ("Image", "CameraInfo", "PointCloud2", "CompressedImage")
)
INPUTS = (  # topic (relative, remappable), message type, the synchroniser's stream
    ("lidar/points", POINTCLOUD2, "cloud"),
    ("camera/image", IMAGE, "image"),
    ("camera/camera_info", CAMERA_INFO, "info"),
)  # with image_transport: compressed the image is a CompressedImage on camera/image/compressed


def input_topic(name: str, msgtype: str, image_transport: str) -> tuple[str, str]:
    """(suffix, message type) of an input: with ``image_transport`` compressed the image is a
    CompressedImage on its topic + ``/compressed`` (image_transport's convention: the suffix
    goes after the remapped name); every other input is read as it is named."""
    if name == "camera/image" and image_transport == "compressed":
        return "/compressed", COMPRESSED_IMAGE
    return "", msgtype


class MessageKit(Protocol):
    """Makes blank messages and headers of one ROS binding (rclpy or rosbags)."""

    point_field: type

    def new(self, msgtype: str) -> Any: ...

    def header(self, stamp_ns: int, frame_id: str) -> Any: ...


@dataclass(frozen=True)
class Output:
    """One published topic: relative name, message type, the setting that enables it (None:
    always on), and how a frame's result becomes its message."""

    topic: str
    msgtype: str
    enabled_by: "str | None"
    encode: Callable[["FrameResult[torch.Tensor]", Any, Any, Mapping[str, Any], MessageKit], Any]


def restamp(msg: Any, header: Any) -> Any:
    """A copy of ``msg`` with ``header``."""
    if dataclasses.is_dataclass(msg):  # rosbags messages
        return dataclasses.replace(msg, header=header)
    out = copy.copy(msg)
    out.header = header
    return out


def _depth(
    field: str, encoding: str = "32FC1"
) -> Callable[[FrameResult[torch.Tensor], Any, Any, Mapping[str, Any], MessageKit], Any]:
    """The encoder of a depth image of the result's ``field`` (REP 118)."""

    def encode(
        result: FrameResult[torch.Tensor], header: Any, _i: Any, _v: Any, kit: MessageKit
    ) -> Any:
        from .encode import fill_depth_image

        return fill_depth_image(kit.new(IMAGE), getattr(result, field), header, encoding)

    return encode


def _cloud(
    result: FrameResult[torch.Tensor],
    header: Any,
    _info: Any,
    values: Mapping[str, Any],
    kit: MessageKit,
) -> Any:
    from .encode import fill_pointcloud2

    organized = result.cloud_pixels if values["organized_cloud"] else None
    return fill_pointcloud2(
        kit.new(POINTCLOUD2), kit.point_field, header, result.cloud, result.cloud_rgb, organized
    )


OUTPUTS: tuple[Output, ...] = (
    Output("depth/image", IMAGE, None, _depth("dense_depth")),
    Output("depth/camera_info", CAMERA_INFO, None, lambda r, h, info, v, kit: restamp(info, h)),
    Output("depth/points", POINTCLOUD2, "publish_cloud", _cloud),
    # confidence 0 (no estimate) becomes NaN, as a depth of 0 does
    Output("depth/confidence", IMAGE, "publish_confidence", _depth("confidence")),
    Output("depth/sparse", IMAGE, "publish_sparse", _depth("sparse_depth")),
    Output("depth/image_raw", IMAGE, "publish_image_raw", _depth("dense_depth", "16UC1")),
)


def enabled_outputs(values: Mapping[str, Any]) -> list[str]:
    """The topics the settings enable."""
    return [o.topic for o in OUTPUTS if o.enabled_by is None or values[o.enabled_by]]
