"""T_camera<-lidar for the node and ``process`` (one policy, ``ExtrinsicSource``): from TF
(tf2 at the cloud's stamp in the node, the bag's transforms offline) when asked for and there,
else from parameters (translation [x, y, z] m, rotation quaternion [x, y, z, w]); the
conversions between transforms, their messages and those parameters.

The node's tf2 lookup is ros.tf.TfExtrinsics; this module needs no ROS install.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core.settings import extrinsic_set
from ..core.transforms import matrix_to_quaternion, transform_from_quaternion


def transform_msg_to_matrix(transform: Any) -> np.ndarray:
    """geometry_msgs/Transform -> (4, 4)."""
    t, q = transform.translation, transform.rotation
    return transform_from_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


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


TfLookup = Callable[[str, str, Any], "np.ndarray | None"]


class ExtrinsicSource:
    """T_camera<-lidar, one policy for the node and ``process``: with ``use_tf`` and a TF
    source (``tf``: tf2 in the node where tf2_ros is importable, the bag's /tf_static and /tf
    in ``process``), from TF only; else from the ``extrinsic.*`` parameters when they are
    given; else none, and ``problem`` says why (a calibration is never guessed). ``values()``
    gives the settings; ``tf(camera_frame, lidar_frame, stamp)`` the transform or None."""

    def __init__(
        self,
        values: Callable[[], Mapping[str, Any]],
        tf: "TfLookup | None",
        tf_name: str = "TF",
    ) -> None:
        """``tf_name``: the TF source in words (the node's tf2, a bag's transforms)."""
        self.values = values
        self.tf = tf if values()["use_tf"] else None
        self.tf_name = tf_name

    @property
    def description(self) -> str:
        """Where the transform comes from, in words."""
        if self.tf is not None:
            return self.tf_name
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
        """Why there is no T_camera<-lidar at all, or None."""
        v = self.values()
        if self.tf is not None or extrinsic_set(v):
            return None
        why = "TF is not available" if v["use_tf"] else "use_tf is false"
        return (
            f"no T_camera<-lidar, so nothing is published: {why} and extrinsic.translation / "
            "extrinsic.rotation are not set (never guessed); set them (`sparse-depth extrinsic "
            "BAG` prints them from a bag's /tf_static) or publish the transform on TF"
        )

    def lookup(self, camera_frame: str, lidar_frame: str, stamp: Any) -> "np.ndarray | None":
        """The transform, or None (TF does not have it yet, or there is no source)."""
        if self.tf is not None:
            return self.tf(camera_frame, lidar_frame, stamp)
        v = self.values()
        if not extrinsic_set(v):
            return None
        return extrinsic_from_parameters(v["extrinsic.translation"], v["extrinsic.rotation"])
