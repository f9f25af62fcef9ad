"""Where a set's cloud goes, for the node and the bag tools (one policy, ``ExtrinsicSource``):
T_camera<-lidar from TF (the node's /tf and /tf_static, a bag's transforms: msgs/tf_buffer.py)
when asked for and there, else from parameters (translation [x, y, z] m, rotation quaternion
[x, y, z, w]), and with ``fixed_frame_id`` each point's motion (msgs/motion.py); the
conversions between transforms, their messages and those parameters. No ROS install needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core.camera import PinholeCamera
from ..core.settings import EXTRINSIC, extrinsic_halves, extrinsic_set
from ..core.transforms import matrix_to_quaternion, transform_from_quaternion
from .convert import stamp_ns
from .errors import Dropped, TfNotYet
from .motion import Placement, instants_ns, sweep_placement, unmodelled_motion
from .point_times import point_times
from .tf_buffer import TfBuffer, TfUnavailable, seconds


def extrinsic_from_parameters(
    translation: "list[float]", rotation_xyzw: "list[float]"
) -> np.ndarray:
    """(4, 4) from the ``extrinsic.translation`` and ``extrinsic.rotation`` parameters."""
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise ValueError(
            f"extrinsic.translation must be 3 finite numbers, got {list(translation)}"
        )
    q = np.asarray(rotation_xyzw, dtype=np.float64)
    if q.shape != (4,):
        raise ValueError(
            f"extrinsic.rotation must be a quaternion [x, y, z, w], got {list(rotation_xyzw)}"
        )
    return transform_from_quaternion(t, q)


def extrinsic_parameters(t_cam_from_lidar: np.ndarray) -> dict[str, list[float]]:
    """The ``extrinsic.translation`` [x, y, z] (m) and ``extrinsic.rotation`` [x, y, z, w] of
    a (4, 4) T_camera<-lidar (the inverse of ``extrinsic_from_parameters``; also the fields
    of a geometry_msgs/Transform)."""
    t = np.asarray(t_cam_from_lidar, np.float64)
    return {
        "extrinsic.translation": [float(x) for x in t[:3, 3]],
        "extrinsic.rotation": [float(x) for x in matrix_to_quaternion(t[:3, :3])],
    }


class ExtrinsicSource:
    """Where a set's cloud goes (``place``), one policy for the node and the bag tools: with
    ``use_tf`` and a TF buffer (the node's /tf and /tf_static where tf2_msgs is installed, a
    bag's transforms offline), from TF only; else from the ``extrinsic.*`` parameters when they
    are given; else nowhere, and ``problem`` says why (a calibration is never guessed). With
    ``fixed_frame_id``, each point is carried by the LiDAR's motion in TF (msgs/motion.py).
    ``say(level, line)`` gets the lines worth saying once: how the point times are read
    ("info"), a LiDAR that TF shows moving while ``fixed_frame_id`` is empty ("warning")."""

    def __init__(
        self,
        values: Callable[[], Mapping[str, Any]],
        tf: "TfBuffer | None",
        tf_name: str = "TF",
        say: "Callable[[str, str], None] | None" = None,
    ) -> None:
        """``tf_name``: the TF source in words (the node's /tf, a bag's transforms)."""
        self.values = values
        self.tf = tf if values()["use_tf"] else None
        self.tf_name = tf_name
        self.say = say or (lambda _level, _line: None)
        self._said: set[str] = set()
        self._checked_ns = -(10**18)  # the cloud stamp of the last check for unmodelled motion
        self._said_motion = False

    @property
    def description(self) -> str:
        """Where the transform comes from, in words."""
        fixed = self.values()["fixed_frame_id"]
        if self.tf is not None:
            return self.tf_name + (f", each point carried through {fixed}" if fixed else "")
        return "the extrinsic.* parameters" if extrinsic_set(self.values()) else "nowhere"

    def ignored(self) -> "str | None":
        """A line when ``extrinsic.*`` are given but TF serves instead (never silently)."""
        if self.tf is not None and extrinsic_set(self.values()):
            return (
                "extrinsic.* are set but use_tf is true and TF is available: T_camera<-lidar "
                "comes from TF only (set use_tf: false to use the parameters)"
            )
        return None

    def problem(self) -> "str | None":
        """Why no set can be placed at all, or None."""
        v = self.values()
        why = "TF is not available" if v["use_tf"] else "use_tf is false"
        if v["fixed_frame_id"] and self.tf is None:
            return (
                f"fixed_frame_id '{v['fixed_frame_id']}' needs the LiDAR's motion from TF, but "
                f"{why}, so nothing is published (never projected uncompensated): publish TF "
                "with use_tf: true, or leave fixed_frame_id empty"
            )
        if self.tf is not None or extrinsic_set(v):
            return None
        halves = extrinsic_halves(v)
        if len(halves) == 1:
            other = (set(EXTRINSIC) - set(halves)).pop()
            return (
                f"{halves[0]} is set and {other} not yet (ros2 param set and param load send "
                "one parameter at a time): nothing is published until both are"
            )
        return (
            f"no T_camera<-lidar, so nothing is published: {why} and extrinsic.translation / "
            "extrinsic.rotation are not set (never guessed); set them (`sparse-depth extrinsic "
            "BAG` prints them from a bag's /tf_static) or publish the transform on TF"
        )

    def place(self, cloud: Any, image: Any, camera: PinholeCamera) -> Placement:
        """The placement of a set's ``cloud`` for its ``image`` (messages; ``camera`` the
        image's). Raises Dropped: ``extrinsic_missing`` (no source), ``tf_missing`` (TF lacks
        T_camera<-lidar), ``motion_tf_missing`` (TF does not cover the sweep's times in
        ``fixed_frame_id``), ``rejected_input`` (point times misread); TfNotYet where newer
        transforms may still answer."""
        v = self.values()
        reason = self.problem()
        if reason:
            raise Dropped(
                "motion_tf_missing" if v["fixed_frame_id"] else "extrinsic_missing", reason
            )
        if self.tf is None:
            return Placement(
                extrinsic_from_parameters(v["extrinsic.translation"], v["extrinsic.rotation"])
            )
        camera_frame, lidar_frame = image.header.frame_id, cloud.header.frame_id
        cloud_ns, image_ns = instants_ns(cloud, image, v)
        fixed = v["fixed_frame_id"]
        counter = "motion_tf_missing" if fixed else "tf_missing"
        try:
            if fixed:
                return self._sweep(cloud, fixed, camera_frame, lidar_frame, image_ns, cloud_ns)
            t = self.tf.lookup(camera_frame, lidar_frame, stamp_ns(cloud.header))
        except TfUnavailable as exc:
            what = f"cloud {lidar_frame} at {seconds(cloud_ns)} -> image {camera_frame}"
            if exc.later:
                raise TfNotYet(counter, f"{what}: {exc}", exc.needed_ns) from None
            raise Dropped(counter, f"{what}: {exc}") from None
        self._check_motion(lidar_frame, image_ns, cloud_ns, camera.fx)
        return Placement(t)

    def _sweep(
        self, cloud: Any, fixed: str, camera_frame: str, lidar_frame: str, image_ns: int,
        cloud_ns: int,
    ) -> Placement:  # fmt: skip
        """``sweep_placement`` with the cloud's point times, how they were read said once."""
        assert self.tf is not None
        try:
            times, how = point_times(cloud, self.values())
        except ValueError as exc:
            raise Dropped("rejected_input", str(exc)) from None
        self._say_once(
            "info", f"motion compensation through {fixed}: {lidar_frame} point times from {how}"
        )
        return sweep_placement(
            self.tf, fixed, camera_frame, lidar_frame, image_ns, cloud_ns, times
        )

    def _check_motion(self, lidar_frame: str, image_ns: int, cloud_ns: int, fx: float) -> None:
        """Without fixed_frame_id, once a second of stamps until it is said: whether TF shows
        the LiDAR moving enough to misplace points (msgs/motion.unmodelled_motion)."""
        if self._said_motion or abs(cloud_ns - self._checked_ns) < 10**9:
            return
        self._checked_ns = cloud_ns
        assert self.tf is not None
        line = unmodelled_motion(self.tf, lidar_frame, image_ns, cloud_ns, fx)
        if line:
            self._said_motion = True
            self._say_once("warning", line)

    def _say_once(self, level: str, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            self.say(level, line)
