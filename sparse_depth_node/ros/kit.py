"""The rclpy message kit (outputs.MessageKit): blank rclpy messages and headers."""

from __future__ import annotations

from typing import Any

from ..msgs.convert import time_fields


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

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        from builtin_interfaces.msg import Time
        from std_msgs.msg import Header

        return Header(stamp=Time(**time_fields(stamp_ns)), frame_id=frame_id)
