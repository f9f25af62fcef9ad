"""What motion compensation costs a frame: real frames whose clouds carry a Velodyne ``time``
field (each point's firing from its azimuth over a 0.1 s sweep that starts facing backwards),
odometry at 100 Hz in a TF buffer (10 m/s, turning 30 degrees/s), through the node's frame path
placed by TF at the cloud's stamp (``static``) and carried through ``odom`` (``moving``), in one
run. The difference of the two is the cost: reading the times, the sweep's TF lookup, and
``deskew``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..bag.io import BagKit
from ..core.completion import DepthCompleter
from ..core.settings import resolve
from ..core.transforms import invert_transform, make_transform, matrix_to_quaternion
from ..data.datasets import Frame
from ..msgs.convert import fill_cloud_from_array
from ..msgs.extrinsics import ExtrinsicSource
from ..msgs.outputs import POINTCLOUD2
from ..msgs.tf_buffer import TfBuffer
from .bench_frames import bench_frames, frame_messages

START_NS = 1_700_000_000 * 10**9
PERIOD_NS = 10**8  # one frame every 0.1 s


def timed_messages(frame: Frame, i: int) -> tuple[Any, Any, Any]:
    """Frame ``frame`` as pass ``i``'s messages, stamped START_NS + i periods, its cloud with a
    float32 ``time`` field (s from the stamp) as velodyne_pointcloud writes it."""
    kit, stamp = BagKit(), START_NS + i * PERIOD_NS
    _, image, info = frame_messages(frame, stamp)
    azimuth = np.arctan2(frame.points[:, 1], frame.points[:, 0])
    times = (np.pi - azimuth) % (2 * np.pi) / (2 * np.pi) * 0.1
    columns = np.c_[frame.points, frame.intensity, times]
    cloud = fill_cloud_from_array(
        kit.new(POINTCLOUD2),
        kit.point_field,
        kit.header(stamp, "lidar"),
        columns,
        ("x", "y", "z", "intensity", "time"),
    )
    return cloud, image, info


def odometry(frame: Frame, passes: int) -> TfBuffer:
    """odom -> lidar at 100 Hz from 1 s before the first pass to 1 s after the last, and
    lidar -> camera fixed (the frame's extrinsic)."""
    tf = TfBuffer(keep_s=passes * PERIOD_NS * 1e-9 + 3)
    for ns in range(-(10**9), passes * PERIOD_NS + 10**9, 10**7):
        t = ns * 1e-9
        yaw = np.radians(30) * t
        rotation = [[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]]
        pose = make_transform(np.array(rotation), [10.0 * t, 0.0, 0.0])
        tf.add("odom", "lidar", START_NS + ns, pose[:3, 3], matrix_to_quaternion(pose[:3, :3]))
    camera = invert_transform(frame.t_cam_from_lidar)  # T_lidar<-camera
    tf.add("lidar", "camera", 0, camera[:3, 3], matrix_to_quaternion(camera[:3, :3]), True)
    return tf


def bench_motion(
    frames: list[Frame],
    completer: DepthCompleter,
    iterations: int,
    warmup: int,
    tick: "Callable[[], object] | None" = None,
) -> dict:
    """The ``motion`` section: the stage tables of the ``static`` and the ``moving`` run, the
    same frames and messages."""
    tf = odometry(frames[0], warmup + iterations)
    out = {}
    for name, fixed in (("static", ""), ("moving", "odom")):
        values = resolve({"fixed_frame_id": fixed})
        source = ExtrinsicSource(values.copy, tf)
        out[name] = bench_frames(
            frames, completer, iterations, warmup, tick, values, source.place, timed_messages
        )
    return out
