"""The messages this layer reads, as structural types: what an rclpy message and a ``rosbags``
message of the same ROS type have in common (read-only attributes, so either class fits).

``data`` is a ``uint8[]``: an ``array.array`` or a list in rclpy, a numpy array in rosbags,
``bytes`` in hand-built test messages; ``msgs/convert.py`` reads all of them without a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


class TimeLike(Protocol):
    """builtin_interfaces/Time."""

    @property
    def sec(self) -> int: ...
    @property
    def nanosec(self) -> int: ...


class HeaderLike(Protocol):
    """std_msgs/Header."""

    @property
    def stamp(self) -> TimeLike: ...
    @property
    def frame_id(self) -> str: ...


class PointFieldLike(Protocol):
    """sensor_msgs/PointField: ``offset`` in bytes within a point, ``datatype`` a PointField
    code (1-8)."""

    @property
    def name(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def datatype(self) -> int: ...


class MessageLike(Protocol):
    """What every message read here has: a header and a ``uint8[]`` payload."""

    @property
    def header(self) -> HeaderLike: ...
    @property
    def data(self) -> Any: ...


class GridLike(MessageLike, Protocol):
    """A message laid out as ``height`` x ``width`` cells (points, pixels)."""

    @property
    def height(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def is_bigendian(self) -> int: ...


class PointCloud2Like(GridLike, Protocol):
    """sensor_msgs/PointCloud2: points of ``point_step`` bytes, rows ``row_step`` bytes apart."""

    @property
    def fields(self) -> Sequence[PointFieldLike]: ...
    @property
    def point_step(self) -> int: ...
    @property
    def row_step(self) -> int: ...


class ImageLike(GridLike, Protocol):
    """sensor_msgs/Image: rows of ``step`` bytes in ``encoding``."""

    @property
    def encoding(self) -> str: ...
    @property
    def step(self) -> int: ...


@runtime_checkable
class CompressedImageLike(MessageLike, Protocol):
    """sensor_msgs/CompressedImage: ``format`` names the codec ("jpeg", "png", or
    image_transport's "rgb8; jpeg compressed bgr8"). ``isinstance`` tells it from an Image:
    only it has ``format``."""

    @property
    def format(self) -> str: ...
