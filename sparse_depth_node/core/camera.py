"""The camera model: a pinhole (a rectified image, from CameraInfo's P) or a pinhole with lens
distortion (a raw image, from its K and D), as image_geometry and OpenCV have them.

A camera is fx, fy, cx, cy (pixels) and the image size, plus ``shift``: the translation
(metres) that the fourth column of a projection matrix P = K [I | shift] adds. For a
rectified stereo pair, or for KITTI's P_rect_02, P's fourth column is not zero; it is kept
as ``shift`` so that P @ X is reproduced exactly, and the camera's optical frame is the
reference frame translated by ``shift``. A raw image's camera has a ``distortion`` model of
DISTORTIONS and its ``coeffs``, applied to the normalised coordinates (X/Z, Y/Z) as OpenCV's
projectPoints (plumb_bob, rational_polynomial) and fisheye.projectPoints (equidistant) do.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

# CameraInfo's distortion models this camera reads, and the coefficients each takes (D's order)
DISTORTIONS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}


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
    distortion_model: str
    d: Sequence[float]
    k: Sequence[float]
    p: Sequence[float]
    binning_x: int
    binning_y: int
    roi: RegionOfInterest


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole intrinsics (pixels) of an image of ``width`` x ``height`` pixels: a rectified one,
    or with ``distortion`` (a model of DISTORTIONS) and its ``coeffs``, a raw one.

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
    distortion: str = ""
    coeffs: tuple[float, ...] = ()

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
        if self.distortion and (
            self.distortion not in DISTORTIONS
            or len(self.coeffs) != DISTORTIONS[self.distortion]
            or not all(np.isfinite(self.coeffs))
        ):
            raise ValueError(
                f"distortion {self.distortion!r} with {len(self.coeffs)} coefficients: one of "
                + ", ".join(f"{m} ({n})" for m, n in DISTORTIONS.items())
                + ", finite"
            )

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
    def from_camera_info(cls, info: CameraInfoLike, rectified: bool = True) -> "PinholeCamera":
        """Camera from a sensor_msgs/CameraInfo (rclpy or rosbags message, duck-typed).

        ``rectified``: P (the rectified projection), as image_geometry does for a rectified
        image; P's translation column is kept as ``shift``. Else the raw image's K and D with
        its ``distortion_model`` (DISTORTIONS; all-zero D: a pinhole; ValueError naming what is
        missing or unknown). Binning (0 or 1 = none) and a non-empty ROI are applied.
        """
        distortion: str = ""
        coeffs: tuple[float, ...] = ()
        if rectified:
            p = np.asarray(info.p, dtype=np.float64)
            if p.size != 12:
                raise ValueError(f"CameraInfo.p must have 12 values, got {p.size}")
            p = p.reshape(3, 4).copy()
        else:
            distortion, coeffs = raw_distortion(info)
            k = np.asarray(info.k, dtype=np.float64)
            if k.size != 9:
                raise ValueError(f"CameraInfo.k must have 9 values, got {k.size}")
            p = np.hstack([k.reshape(3, 3), np.zeros((3, 1))])
        roi = info.roi
        bx = max(int(info.binning_x), 1)
        by = max(int(info.binning_y), 1)
        width, height = int(info.width), int(info.height)
        x1, y1 = int(roi.x_offset) + int(roi.width), int(roi.y_offset) + int(roi.height)
        if int(roi.width) > 0 and int(roi.height) > 0 and (x1 > width or y1 > height):
            raise ValueError(
                f"camera_info's ROI {int(roi.width)}x{int(roi.height)} at "
                f"({int(roi.x_offset)}, {int(roi.y_offset)}) lies outside its {width}x{height} "
                "image"
            )
        if int(roi.width) > 0 and int(roi.height) > 0:
            p[0, :] -= int(roi.x_offset) * p[2, :]
            p[1, :] -= int(roi.y_offset) * p[2, :]
            width, height = int(roi.width), int(roi.height)
        if bx > 1 or by > 1:
            p[0, :] /= bx
            p[1, :] /= by
            width, height = width // bx, height // by
        camera = cls.from_projection(p, width, height)
        return dataclasses.replace(camera, distortion=distortion, coeffs=coeffs)

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
            self.distortion,
            self.coeffs,
        )

    def normalised_bounds(self) -> tuple[float, float, float, float]:
        """(x min, x max, y min, y max) of the undistorted normalised coordinates (X/Z, Y/Z)
        of the image's border, 10 % wider: a point outside them is outside the image, though a
        distortion polynomial followed that far may bring it back in."""
        x, y = ray_maps(self)
        border = np.r_[x[0], x[-1], x[:, 0], x[:, -1]], np.r_[y[0], y[-1], y[:, 0], y[:, -1]]
        (x0, x1), (y0, y1) = ((a.min(), a.max()) for a in border)
        mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
        return float(x0 - mx), float(x1 + mx), float(y0 - my), float(y1 + my)


def raw_distortion(info: CameraInfoLike) -> tuple[str, tuple[float, ...]]:
    """The distortion model and coefficients of a raw image's CameraInfo ("" and () when D is
    all zeros); ValueError naming what is unknown or missing."""
    d = np.asarray(info.d, dtype=np.float64)
    model = str(info.distortion_model)
    if d.size and not np.any(d):
        return "", ()
    if model not in DISTORTIONS:
        raise ValueError(
            f"image_rectified is false but camera_info's distortion_model is {model!r}: "
            f"one of {', '.join(DISTORTIONS)} is needed to project into the raw image"
        )
    n = DISTORTIONS[model]
    if d.size < n:
        raise ValueError(f"camera_info's {model} D has {d.size} coefficients, {n} are needed")
    if np.any(d[n:]):
        raise ValueError(f"camera_info's {model} D has {d.size} coefficients, beyond {n} not 0")
    return model, tuple(float(x) for x in d[:n])


@functools.lru_cache(maxsize=8)
def ray_maps(camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float32 X/Z and Y/Z of each pixel centre's ray: the undistorted normalised
    coordinates (OpenCV's undistortPoints, fisheye.undistortPoints for equidistant), what
    back-projection multiplies the depth by. Computed once per camera."""
    v, u = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    if not camera.distortion:
        return (
            ((u - camera.cx) / camera.fx).astype(np.float32),
            ((v - camera.cy) / camera.fy).astype(np.float32),
        )
    pixels = np.stack([u.ravel(), v.ravel()], -1)[:, None, :]
    k, d = camera.K, np.asarray(camera.coeffs)
    exact = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)  # strong lenses too
    if camera.distortion == "equidistant":
        rays = cv2.fisheye.undistortPoints(pixels, k, d, criteria=exact)
    else:
        rays = cv2.undistortPointsIter(pixels, k, d, np.eye(3), np.eye(3), exact)
    rays = rays.reshape(camera.height, camera.width, 2).astype(np.float32)
    return rays[..., 0], rays[..., 1]


def assumed_rectified(info: CameraInfoLike, topic: str, rectified: bool) -> "str | None":
    """A line when ``image_rectified`` is true but the image looks raw: its CameraInfo has lens
    distortion and its ``topic`` is not named rectified (image_proc's ``image_rect``...)."""
    d = np.asarray(info.d, dtype=np.float64)
    if not rectified or not np.any(d) or "rect" in topic:
        return None
    return (
        f"camera_info of {topic} has lens distortion ({info.distortion_model}, D = "
        f"{[round(float(x), 4) for x in d]}) and the topic does not look rectified: the image is "
        "taken as rectified (camera_info's P, image_rectified: true); if it is the raw image, "
        "set image_rectified: false to project through K and D"
    )
