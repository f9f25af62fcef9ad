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


@dataclass(frozen=True)
class Input:
    """One subscribed topic: relative name (remappable), message type, the synchroniser's stream
    name, and what the node reads from it."""

    topic: str
    msgtype: str
    stream: str
    description: str


INPUTS = (
    Input(
        "lidar/points",
        POINTCLOUD2,
        "cloud",
        "the LiDAR's points: fields x, y, z of any datatype at any offset (Velodyne, Ouster, "
        "Livox, plain), any point_step, either endianness, organised or not",
    ),
    Input(
        "camera/image",
        IMAGE,
        "image",
        "the rectified camera image: rgb8, bgr8, rgba8, bgra8 or mono8, row padding allowed; "
        "with image_transport: compressed a CompressedImage (JPEG or PNG) on "
        "camera/image/compressed",
    ),
    Input(
        "camera/camera_info",
        CAMERA_INFO,
        "info",
        "the image's calibration: P is used (rectified), its translation column honoured, ROI "
        "and binning applied",
    ),
)


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
    always on), how a frame's result becomes its message, and what it holds. Every output has
    the stamp and frame_id of the set's image."""

    topic: str
    msgtype: str
    enabled_by: "str | None"
    encode: Callable[["FrameResult[torch.Tensor]", Any, Any, Mapping[str, Any], MessageKit], Any]
    description: str


def restamp(msg: Any, header: Any) -> Any:
    """A copy of ``msg`` with ``header``."""
    if dataclasses.is_dataclass(msg) and not isinstance(msg, type):  # rosbags messages
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
    Output(
        "depth/image",
        IMAGE,
        None,
        _depth("dense_depth"),
        "the dense depth, 32FC1, metres along the optical axis, NaN = no estimate (REP 118)",
    ),
    Output(
        "depth/camera_info",
        CAMERA_INFO,
        None,
        lambda r, h, info, v, kit: restamp(info, h),
        "the input camera_info, restamped with depth/image",
    ),
    Output(
        "depth/points",
        POINTCLOUD2,
        "publish_cloud",
        _cloud,
        "the dense depth as points in the camera optical frame: x, y, z float32 at 0/4/8, "
        "point_step 16, or with rgb at 16 and point_step 32 (colorize_cloud); unorganised, "
        "thinned by cloud_stride or cloud_voxel, or H x W with NaN holes (organized_cloud)",
    ),
    # confidence 0 (no estimate) becomes NaN, as a depth of 0 does
    Output(
        "depth/confidence",
        IMAGE,
        "publish_confidence",
        _depth("confidence"),
        "32FC1 in [0, 1]: the probability that the depth is within 5 % (networks; the "
        "classical fillers give 1 where they fill), NaN = no estimate",
    ),
    Output(
        "depth/sparse",
        IMAGE,
        "publish_sparse",
        _depth("sparse_depth"),
        "32FC1, metres: the LiDAR's returns projected into the image, NaN = none",
    ),
    Output(
        "depth/image_raw",
        IMAGE,
        "publish_image_raw",
        _depth("dense_depth", "16UC1"),
        "16UC1, millimetres, 0 = no estimate (REP 118)",
    ),
)


def enabled_outputs(values: Mapping[str, Any]) -> list[str]:
    """The topics the settings enable."""
    return [o.topic for o in OUTPUTS if o.enabled_by is None or values[o.enabled_by]]
