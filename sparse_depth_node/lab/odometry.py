"""The camera's motion between a frame and another image of its scene, from the frame's own
LiDAR returns: each return that projects onto a textured pixel is tracked into the other image
(pyramidal Lucas-Kanade, kept where the backward track comes home), and the rigid motion that
maps the returns onto their tracks is solved (PnP: RANSAC over EPnP, then Levenberg-Marquardt
on the inliers; OpenCV throughout).

The scale comes from the LiDAR's ranges at the returns, never from a completion: a method
judged with these poses does not move them. (Point-to-plane ICP of consecutive KITTI sweeps was
tried first and lost: its steps are ~35 % short and do not chain, docs/EVALUATION.md.)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .metrics import gradient_magnitude

MIN_DEPTH = 1.0  # m: nearer returns (the rig itself) are left out
TEXTURE = 40.0  # least Sobel gradient magnitude (grey levels per pixel, 3 x 3) at a return
ROUND_TRIP = 0.3  # px: largest forward-backward tracking error of a kept track
REPROJECTION = 1.0  # px: RANSAC inlier threshold
MIN_INLIERS = 100  # fewer: no motion is returned
LK = {"winSize": (21, 21), "maxLevel": 3}


@dataclass(frozen=True)
class Motion:
    """T_view<-target (4, 4): target camera coordinates (optical frame, metres) into the other
    view's; ``inliers`` returns agree with it within REPROJECTION."""

    transform: np.ndarray
    inliers: int


@dataclass(frozen=True)
class Target:
    """What a target image brings to every motion from it: its grey image (H, W) uint8, its
    returns on textured pixels (M, 3) (optical frame, metres) and their pixels (M, 2), float."""

    grey: np.ndarray
    points: np.ndarray
    uv: np.ndarray


def grey_levels(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 grey image of an (H, W, 3) RGB one."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def target(points: np.ndarray, k: np.ndarray, rgb: np.ndarray) -> Target:
    """The returns ``points`` (N, 3), camera optical frame, metres, at least MIN_DEPTH ahead,
    that project inside the image ``rgb`` (H, W, 3) of a camera with intrinsics ``k`` (3, 3)
    onto a pixel with gradient magnitude >= TEXTURE."""
    grey = grey_levels(rgb)
    pts = points[points[:, 2] > MIN_DEPTH].astype(np.float64)
    uvw = pts @ k.T
    uv = uvw[:, :2] / uvw[:, 2:]
    h, w = grey.shape
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] < h - 1)
    pts, uv = pts[inside], uv[inside]
    px = np.round(uv).astype(np.int64)
    textured = gradient_magnitude(grey.astype(np.float32))[px[:, 1], px[:, 0]] >= TEXTURE
    return Target(grey, pts[textured], uv[textured])


def track(grey: np.ndarray, other: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``uv`` (M, 2) of ``grey`` tracked into ``other`` (both (H, W) uint8): the tracks
    (M, 2) and which of them (M,) bool came back within ROUND_TRIP when tracked backward."""
    start = uv.astype(np.float32).reshape(-1, 1, 2)
    ahead, ok_a, _ = cv2.calcOpticalFlowPyrLK(grey, other, start, None, **LK)  # type: ignore[call-overload]
    back, ok_b, _ = cv2.calcOpticalFlowPyrLK(other, grey, ahead, None, **LK)  # type: ignore[call-overload]
    home = np.linalg.norm(back.reshape(-1, 2) - uv, axis=1) < ROUND_TRIP
    return ahead.reshape(-1, 2).astype(np.float64), (ok_a[:, 0] == 1) & (ok_b[:, 0] == 1) & home


def motion(first: Target, k: np.ndarray, view_rgb: np.ndarray) -> "Motion | None":
    """The motion T_view<-target of a camera with intrinsics ``k`` (3, 3) between the target
    ``first`` and the view image ``view_rgb`` (same camera), or None where fewer than
    MIN_INLIERS returns agree on one."""
    if len(first.points) < MIN_INLIERS:
        return None
    tracks, ok = track(first.grey, grey_levels(view_rgb), first.uv)
    pts, tracks = first.points[ok], tracks[ok]
    if len(pts) < MIN_INLIERS:
        return None
    found, rvec, tvec, inliers = cv2.solvePnPRansac(
        pts, tracks, k, None, reprojectionError=REPROJECTION, flags=cv2.SOLVEPNP_EPNP
    )
    if not found or inliers is None or len(inliers) < MIN_INLIERS:
        return None
    inliers = inliers[:, 0]
    rvec, tvec = cv2.solvePnPRefineLM(pts[inliers], tracks[inliers], k, None, rvec, tvec)
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = cv2.Rodrigues(rvec)[0], tvec[:, 0]
    return Motion(t, len(inliers))
