"""KITTI raw drive -> rosbag2 (mcap or sqlite3), as a robot would record it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import CompressionFormat, CompressionMode, Writer

from ..core.camera import PinholeCamera
from ..data.datasets import open_dataset
from ..msgs.extrinsics import extrinsic_parameters
from ..msgs.kits import sensor_messages
from .io import TYPESTORE, BagKit, make_header, qos, storage_plugin

KITTI_TOPICS = {
    "points": "/kitti/velo/points",
    "image": "/kitti/camera/image_raw",
    "camera_info": "/kitti/camera/camera_info",
}
KITTI_CONNECTIONS = {  # name: (topic, message type), in the bag's order
    "tf": ("/tf_static", "tf2_msgs/msg/TFMessage"),
    "points": (KITTI_TOPICS["points"], "sensor_msgs/msg/PointCloud2"),
    "image": (KITTI_TOPICS["image"], "sensor_msgs/msg/Image"),
    "camera_info": (KITTI_TOPICS["camera_info"], "sensor_msgs/msg/CameraInfo"),
}
KITTI_LIDAR_FRAME = "velo_link"
KITTI_CAMERA_FRAME = "camera_optical"


def tf_message(parent: str, child: str, t_parent_child: np.ndarray, stamp_ns: int) -> Any:
    """A rosbags TFMessage with the one transform T_parent<-child."""
    T = TYPESTORE.types
    p = extrinsic_parameters(t_parent_child)
    tr = T["geometry_msgs/msg/Transform"](
        translation=T["geometry_msgs/msg/Vector3"](**dict(zip("xyz", p["extrinsic.translation"]))),
        rotation=T["geometry_msgs/msg/Quaternion"](**dict(zip("xyzw", p["extrinsic.rotation"]))),
    )
    ts = T["geometry_msgs/msg/TransformStamped"](
        header=make_header(stamp_ns, parent), child_frame_id=child, transform=tr
    )
    return T["tf2_msgs/msg/TFMessage"](transforms=[ts])


def convert_kitti(
    data: "str | Path",
    out: "str | Path",
    frames: "tuple[int, int] | None" = None,
    storage: str = "mcap",
    compress: bool = False,
    tick: "Callable[[], object] | None" = None,
) -> int:
    """Write a KITTI raw drive (camera 2) as a rosbag2; returns the number of frames written.

    Topics: /kitti/velo/points (x, y, z, intensity float32, frame velo_link),
    /kitti/camera/image_raw (rgb8), /kitti/camera/camera_info (rectified: K = P_rect_02[:, :3],
    P = [K | 0]), and /tf_static velo_link -> camera_optical (R_rect_00, Tr_velo_to_cam and camera
    2's offset folded in), offered transient-local. Stamps: the frames' (``Frame.stamp``: the
    drive's timestamps, else 10 Hz from its recording day); message time = header stamp.
    ``frames`` = [A, B) indices into the drive. ``compress``: zstd chunks (mcap) or zstd per
    file (sqlite3), which rosbag2 reads natively.
    """
    reader = open_dataset(data, "kitti-raw")
    ids = reader.frame_ids()
    a, b = frames if frames is not None else (0, len(ids))
    if not 0 <= a < b <= len(ids):
        raise ValueError(f"frames {a}:{b} outside the drive's 0:{len(ids)}")
    cam = reader.camera
    # the camera's optical frame: the reference frame shifted by P_rect_02's translation
    t_cam_velo = cam.optical_from_reference() @ reader.t_cam_from_lidar
    info_cam = PinholeCamera(cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height)
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} exists; rosbag2 writes a new folder")
    kit = BagKit()
    with new_writer(out, storage, compress) as writer:
        topics = kitti_connections(writer)
        start_ns = round(reader.read(ids[a]).stamp * 1e9)
        # the camera frame is the tf child: T_parent<-child = T_velo<-cam
        tf = tf_message(KITTI_LIDAR_FRAME, KITTI_CAMERA_FRAME, np.linalg.inv(t_cam_velo), start_ns)
        write(writer, topics["tf"], start_ns, tf)
        for i in range(a, b):
            f = reader.read(ids[i])
            stamp = round(f.stamp * 1e9)
            messages = sensor_messages(
                kit,
                np.c_[f.points, f.intensity],
                f.rgb,
                info_cam,
                stamp,
                KITTI_LIDAR_FRAME,
                KITTI_CAMERA_FRAME,
            )
            for name, msg in zip(("points", "image", "camera_info"), messages):
                write(writer, topics[name], stamp, msg)
            if tick is not None:
                tick()
    return b - a


def kitti_connections(writer: Writer) -> dict[str, Any]:
    """The bag's connections by name (KITTI_CONNECTIONS): /tf_static transient-local, depth 1,
    the rest as a driver offers them."""
    return {
        name: writer.add_connection(
            topic,
            msgtype,
            typestore=TYPESTORE,
            offered_qos_profiles=[
                qos(transient_local=name == "tf", depth=1 if name == "tf" else 10)
            ],
        )
        for name, (topic, msgtype) in KITTI_CONNECTIONS.items()
    }


def new_writer(out: Path, storage: str, compress: bool) -> Writer:
    """A rosbag2 writer of ``storage`` (mcap, sqlite3), zstd-compressed (chunks for mcap, per
    file for sqlite3, as rosbag2 reads them) with ``compress``."""
    writer = Writer(out, version=8, storage_plugin=storage_plugin(storage))
    if compress:
        writer.set_compression(
            CompressionMode.STORAGE if storage == "mcap" else CompressionMode.FILE,
            CompressionFormat.ZSTD,
        )
    return writer


def write(writer: Writer, connection: Any, stamp_ns: int, msg: Any) -> None:
    """``msg`` (a rosbags message) at ``stamp_ns``."""
    writer.write(connection, stamp_ns, TYPESTORE.serialize_cdr(msg, connection.msgtype))
