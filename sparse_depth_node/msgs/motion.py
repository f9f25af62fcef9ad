"""Where a set's cloud goes: T_camera<-lidar at the camera's instant and, with
``fixed_frame_id``, the LiDAR's motion over the sweep from TF (core/motion.py carries each point
by it). One function serves the node, ``process``, training and evaluation on bags.

Times: the image's instant is its stamp + ``time_offset.image``; a point's firing is the cloud's
stamp + ``time_offset.lidar`` + its own time (msgs/point_times.py). The poses of a sweep's
B bins come from one TF lookup (tf_buffer.lookup_full): T_lidar(image)<-lidar(t) =
T_lidar<-fixed(image) T_fixed<-lidar(t).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.motion import BINS, Sweep, bin_centres
from ..core.transforms import rotation_angle
from .convert import stamp_ns
from .point_times import time_range
from .tf_buffer import TfBuffer, seconds

REFERENCE_DEPTH_M = 10.0  # the depth at which an unmodelled motion is stated in pixels
SWEEP_S = 0.1  # the sweep assumed when checking for motion without fixed_frame_id (10 Hz)


@dataclass(frozen=True)
class Placement:
    """A set's geometry: ``t_cam_from_lidar`` (4, 4), the LiDAR frame at the camera's instant
    into the camera's reference optical frame; ``sweep``: each point's motion before that
    (None: the cloud is taken as it is)."""

    t_cam_from_lidar: np.ndarray
    sweep: "Sweep | None" = None

    def motion(self) -> tuple[float, float]:
        """The largest correction the sweep applies to a point: metres moved, degrees turned
        (0, 0 without one)."""
        if self.sweep is None:
            return 0.0, 0.0
        poses = self.sweep.poses
        metres = float(np.linalg.norm(poses[:, :3, 3], axis=1).max())
        return metres, float(np.degrees(rotation_angle(poses).max()))


def instants_ns(cloud: Any, image: Any, values: Mapping[str, Any]) -> tuple[int, int]:
    """(cloud_ns, image_ns): the cloud's stamp + ``time_offset.lidar``, from which its points'
    times count, and the image's stamp + ``time_offset.image``, the camera's instant (ns)."""
    cloud_ns = stamp_ns(cloud.header) + round(values["time_offset.lidar"] * 1e9)
    return cloud_ns, stamp_ns(image.header) + round(values["time_offset.image"] * 1e9)


def sweep_placement(
    tf: TfBuffer,
    fixed: str,
    camera_frame: str,
    lidar_frame: str,
    image_ns: int,
    cloud_ns: int,
    times: "np.ndarray | None",
) -> Placement:
    """The placement of a cloud whose points fired ``times`` (N,) float32 s after
    ``cloud_ns`` (None: all at ``cloud_ns``) for the image at ``image_ns``, through the
    ``fixed`` frame. TfUnavailable (tf_buffer) where TF does not cover a time it needs."""
    start, end = time_range(times) if times is not None else (0.0, 0.0)
    span = end - start
    centres = bin_centres(start, span, BINS if span > 0 else 1)
    at = cloud_ns + np.round(centres * 1e9).astype(np.int64)
    poses = tf.lookup_full(lidar_frame, image_ns, lidar_frame, at, fixed)
    t_cam = tf.lookup(camera_frame, lidar_frame, image_ns)
    rel = None if times is None else times - np.float32(start)
    return Placement(t_cam, Sweep(rel, span, poses))


def unmodelled_motion(
    tf: TfBuffer, lidar_frame: str, image_ns: int, cloud_ns: int, fx: float
) -> "str | None":
    """A line when TF shows the LiDAR moving, relative to the root of its tree, enough over a
    sweep (SWEEP_S from the cloud's stamp) and up to the image's instant to misplace points by
    more than a pixel at REFERENCE_DEPTH_M (``fx`` px focal length); else None. Also None
    where TF cannot say (frames or times it lacks)."""
    moving = tf.moving_links(lidar_frame)
    if not moving:
        return None
    root = tf.root(lidar_frame)
    at = np.array([cloud_ns, cloud_ns + int(SWEEP_S * 1e9)], np.int64)
    try:
        poses = tf.lookup_full(lidar_frame, image_ns, lidar_frame, at, root)
    except ValueError:
        return None
    metres = float(np.linalg.norm(poses[:, :3, 3], axis=1).max())
    radians = float(rotation_angle(poses).max())
    pixels = fx * (radians + metres / REFERENCE_DEPTH_M)
    if pixels <= 1.0:
        return None
    return (
        f"TF shows the LiDAR moving ({', '.join(moving)}): over a {SWEEP_S:g} s sweep and up to "
        f"the image at {seconds(image_ns)} it moves {metres:.2f} m and turns "
        f"{np.degrees(radians):.2f} degrees, about {pixels:.0f} px at {REFERENCE_DEPTH_M:g} m; "
        f"set fixed_frame_id (e.g. {root}) to carry each point to the camera's instant"
    )
