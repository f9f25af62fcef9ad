"""The pinhole camera model of a rectified image.

A camera is fx, fy, cx, cy (pixels) and the image size, plus ``shift``: the translation
(metres) that the fourth column of a projection matrix P = K [I | shift] adds. For a
rectified stereo pair, or for KITTI's P_rect_02, P's fourth column is not zero; it is kept
as ``shift`` so that P @ X is reproduced exactly, and the camera's optical frame is the
reference frame translated by ``shift``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


def _check_finite_geometry(k: np.ndarray, width: int, height: int) -> None:
    """ValueError when the intrinsics ``k`` cannot project a point 1-100 m away into finite
    pixel coordinates, or back-project an image corner at 1-100 m into finite metres, in
    float32 (the precision the pipeline runs in)."""
    fx, fy, cx, cy = (np.float32(v) for v in (k[0, 0], k[1, 1], k[0, 2], k[1, 2]))
    z = np.array([1.0, 100.0], np.float32)
    with np.errstate(all="ignore"):
        u = fx * np.float32(100.0) / z + cx
        v = fy * np.float32(100.0) / z + cy
        x = (np.array([0.0, width], np.float32) - cx) * z / fx
        y = (np.array([0.0, height], np.float32) - cy) * z / fy
    if not all(np.isfinite(a).all() for a in (u, v, x, y)):
        raise ValueError(
            f"intrinsics fx={k[0, 0]:g} fy={k[1, 1]:g} cx={k[0, 2]:g} cy={k[1, 2]:g} do not map "
            "points 1-100 m away to finite pixels and back: check CameraInfo.p"
        )


class RegionOfInterest(Protocol):
    """sensor_msgs/RegionOfInterest as rclpy and rosbags give it."""

    x_offset: int
    y_offset: int
    width: int
    height: int


class CameraInfoLike(Protocol):
    """sensor_msgs/CameraInfo as rclpy and rosbags give it: what ``from_camera_info`` reads."""

    width: int
    height: int
    p: Sequence[float]
    binning_x: int
    binning_y: int
    roi: RegionOfInterest


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole intrinsics (pixels) of a rectified image of ``width`` x ``height`` pixels.

    ``shift`` (3,) metres maps the reference optical frame into this camera's optical frame:
    X_optical = X_reference + shift.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    shift: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy, *self.shift)
        if not all(np.isfinite(v) for v in values):
            raise ValueError(
                f"camera intrinsics must be finite, got fx={self.fx} fy={self.fy} "
                f"cx={self.cx} cy={self.cy} shift={self.shift}"
            )
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(
                f"camera focal lengths must be > 0, got fx={self.fx} fy={self.fy} "
                "(an uncalibrated CameraInfo has K[0] == 0)"
            )
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"image size must be > 0, got {self.width}x{self.height}")

    @property
    def K(self) -> np.ndarray:
        """Intrinsic matrix (3, 3)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def P(self) -> np.ndarray:
        """Projection matrix (3, 4) = K [I | shift]."""
        return np.asarray(self.K @ np.hstack([np.eye(3), np.asarray(self.shift).reshape(3, 1)]))

    def optical_from_reference(self) -> np.ndarray:
        """Transform (4, 4) from the reference optical frame into this camera's optical frame."""
        t = np.eye(4)
        t[:3, 3] = self.shift
        return t

    @classmethod
    def from_projection(
        cls, p: "np.ndarray | list[float]", width: int, height: int
    ) -> "PinholeCamera":
        """Camera from a (3, 4) projection matrix P = K [I | shift] of a rectified image."""
        p = np.asarray(p, dtype=np.float64).reshape(3, 4)
        if not np.all(np.isfinite(p)):
            raise ValueError("projection matrix P has non-finite entries")
        if p[0, 1] != 0.0 or p[1, 0] != 0.0 or p[2, 0] != 0.0 or p[2, 1] != 0.0 or p[2, 2] != 1.0:
            raise ValueError(f"P is not of the form K [I | t] with a pinhole K: {p.tolist()}")
        k = p[:, :3]
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            raise ValueError(f"P has focal lengths fx={k[0, 0]} fy={k[1, 1]}; must be > 0")
        _check_finite_geometry(k, int(width), int(height))
        shift = np.linalg.solve(k, p[:, 3])
        return cls(
            float(k[0, 0]),
            float(k[1, 1]),
            float(k[0, 2]),
            float(k[1, 2]),
            int(width),
            int(height),
            (float(shift[0]), float(shift[1]), float(shift[2])),
        )

    @classmethod
    def from_intrinsics(
        cls, k: "np.ndarray | list[float]", width: int, height: int
    ) -> "PinholeCamera":
        """Camera from a (3, 3) intrinsic matrix K (no skew) with a zero shift."""
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls.from_projection(np.hstack([k, np.zeros((3, 1))]), width, height)

    @classmethod
    def from_camera_info(cls, info: CameraInfoLike) -> "PinholeCamera":
        """Camera from a sensor_msgs/CameraInfo (rclpy or rosbags message, duck-typed).

        Uses P (the rectified projection), as image_geometry does; P's translation column is
        kept as ``shift``. Binning (0 or 1 = none) and a non-empty ROI are applied.
        """
        p = np.asarray(info.p, dtype=np.float64)
        if p.size != 12:
            raise ValueError(f"CameraInfo.p must have 12 values, got {p.size}")
        p = p.reshape(3, 4).copy()
        roi = info.roi
        bx = max(int(info.binning_x), 1)
        by = max(int(info.binning_y), 1)
        width, height = int(info.width), int(info.height)
        if int(roi.width) > 0 and int(roi.height) > 0:
            p[0, :] -= int(roi.x_offset) * p[2, :]
            p[1, :] -= int(roi.y_offset) * p[2, :]
            width, height = int(roi.width), int(roi.height)
        if bx > 1 or by > 1:
            p[0, :] /= bx
            p[1, :] /= by
            width, height = width // bx, height // by
        return cls.from_projection(p, width, height)

    def scaled(self, factor: float) -> "PinholeCamera":
        """The same camera for an image resized by ``factor`` (pixel-centre convention)."""
        w = int(round(self.width * factor))
        h = int(round(self.height * factor))
        sx, sy = w / self.width, h / self.height
        return PinholeCamera(
            self.fx * sx,
            self.fy * sy,
            (self.cx + 0.5) * sx - 0.5,
            (self.cy + 0.5) * sy - 0.5,
            w,
            h,
            self.shift,
        )
