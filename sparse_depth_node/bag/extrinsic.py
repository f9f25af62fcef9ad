"""T_camera<-lidar from a bag's /tf_static and /tf (the chain between the cloud's and the
image's frames resolved), as the node's ``extrinsic.*`` parameters: ``sparse-depth extrinsic``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..msgs.extrinsics import extrinsic_parameters
from ..msgs.tf_buffer import TfBuffer, TfUnavailable
from .io import deserialize, open_bag, read_messages, resolve_inputs


def bag_extrinsic(
    bag: "str | Path",
    inputs: "dict[str, str] | None" = None,
    lidar_frame: "str | None" = None,
    camera_frame: "str | None" = None,
) -> tuple[np.ndarray, str, str]:
    """(T_camera<-lidar (4, 4), camera frame, LiDAR frame) from the bag's transforms. The frames
    are the first cloud's and image's frame_ids (of the node's inputs found in the bag, or
    ``inputs``) unless given; ValueError naming what is missing."""
    with open_bag(bag) as reader:
        return reader_extrinsic(reader, Path(bag), inputs, lidar_frame, camera_frame)


def reader_extrinsic(
    reader: Any,
    bag: Path,
    inputs: "dict[str, str] | None" = None,
    lidar_frame: "str | None" = None,
    camera_frame: "str | None" = None,
) -> tuple[np.ndarray, str, str]:
    """``bag_extrinsic`` of the bag open in ``reader``."""
    tree = TfBuffer()
    inputs = inputs or resolve_inputs(reader.connections, {})
    wanted = {inputs["lidar/points"]: "lidar", inputs["camera/image"]: "camera"}
    given = {"lidar": lidar_frame, "camera": camera_frame}
    frames = {k: v for k, v in given.items() if v}
    t, problem = None, "no transform read"
    for conn, _, raw in read_messages(reader, bag):
        if conn.msgtype == "tf2_msgs/msg/TFMessage":
            msg = deserialize(reader, raw, conn.msgtype, bag)
            tree.add_message(msg, static=conn.topic.endswith("tf_static"))
        elif conn.topic in wanted and wanted[conn.topic] not in frames:
            msg = deserialize(reader, raw, conn.msgtype, bag)
            frames[wanted[conn.topic]] = msg.header.frame_id
        if len(frames) == 2:
            try:  # the newest transform of each link, as tf2's time 0
                t = tree.lookup(frames["camera"], frames["lidar"], None)
                break  # both frames known and connected: no need to read the rest
            except TfUnavailable as exc:
                problem = str(exc)
    lidar, camera = frames.get("lidar"), frames.get("camera")
    if lidar is None or camera is None:
        raise ValueError(
            f"bag {bag} has no cloud or no image to take the frame ids from: "
            "pass --lidar-frame and --camera-frame"
        )
    if t is None:
        raise ValueError(
            f"bag {bag}: /tf_static and /tf do not connect {lidar} to {camera} ({problem})"
        )
    return t, camera, lidar


def parameter_block(t_cam_from_lidar: np.ndarray, camera: str, lidar: str) -> str:
    """A ready-to-paste node parameter YAML with the extrinsic."""
    params = extrinsic_parameters(t_cam_from_lidar)
    return "\n".join(
        [
            f"# T_camera<-lidar: {lidar} -> {camera} (from the bag's /tf_static and /tf)",
            "/**:",
            "  ros__parameters:",
            "    use_tf: false",
            *(f"    {k}: {number_list(v)}" for k, v in params.items()),
        ]
    )


def number_list(values: "list[float]") -> str:
    """A list of numbers as a YAML / ROS parameter value, 9 decimals: [0.1, ...]."""
    return "[" + ", ".join(f"{x:.9f}" for x in values) + "]"
