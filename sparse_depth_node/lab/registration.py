"""The motion between two LiDAR sweeps of a sequence: point-to-plane ICP, coarse to fine; and
the camera's motion derived from it.

Used where an evaluation or a training loss needs another view of the scene: the frames before
and after (KITTI raw is a 10 Hz sequence; a car moves up to ~2 m between sweeps). Nearest
neighbours come from OpenCV's FLANN k-d tree; the rest is numpy. (open3d, the usual library for
this, does not import on this project's machine: its wheel needs the system's libusb-1.0, and
there is no apt here; its ICP is the same point-to-plane least squares.)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# coarse to fine: (voxel size m, largest correspondence distance m)
LEVELS = ((1.0, 3.0), (0.5, 1.0), (0.25, 0.5))
MAX_RANGE = 60.0  # m: farther returns are sparse and noisy, left out of the registration
NORMAL_NEIGHBOURS = 12


@dataclass(frozen=True)
class Registration:
    """T_target<-source (4, 4); the share of source points with a correspondence and their
    point-to-plane RMSE (m), at the finest level."""

    transform: np.ndarray
    fitness: float
    rmse: float


def voxel_downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """The mean point of each occupied ``voxel``-sized cube, (M, 3) float64."""
    keys = np.floor(points / voxel).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse, points)
    return sums / counts[:, None]


class _Tree:
    """Nearest neighbours among ``points`` (N, 3) (OpenCV FLANN k-d tree)."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = np.ascontiguousarray(points, np.float32)
        self.index = cv2.flann_Index(self.points, {"algorithm": 1, "trees": 4})

    def query(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices (Q, k) and squared distances (Q, k) of the ``k`` nearest points."""
        idx, d2 = self.index.knnSearch(np.ascontiguousarray(query, np.float32), k, params={})
        return idx.astype(np.int64), d2


def normals(points: np.ndarray, tree: _Tree) -> np.ndarray:
    """Unit normal (N, 3) of each point: the least-variance direction of its neighbours."""
    idx, _ = tree.query(points, NORMAL_NEIGHBOURS)
    nb = points[idx]  # (N, k, 3)
    centred = nb - nb.mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", centred, centred)
    return np.linalg.eigh(cov)[1][:, :, 0]


def _rotation(omega: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(omega.reshape(3, 1))[0]


def register(
    source: np.ndarray,
    target: np.ndarray,
    guess: "np.ndarray | None" = None,
    iterations: int = 20,
) -> Registration:
    """Point-to-plane ICP of the sweep ``source`` (N, 3) onto ``target`` (M, 3), LiDAR frame,
    metres, from ``guess`` (default: no motion), over LEVELS: at each level the voxel means of
    both sweeps, correspondences the nearest target point within the level's distance, and the
    linearised least squares of sum (n . (R p + t - q))^2 solved for a small rotation and
    translation, until the step is below 0.1 mm."""
    src_all = source[np.linalg.norm(source, axis=1) < MAX_RANGE].astype(np.float64)
    tgt_all = target[np.linalg.norm(target, axis=1) < MAX_RANGE].astype(np.float64)
    t = np.eye(4) if guess is None else np.asarray(guess, np.float64).copy()
    fitness, rmse = 0.0, float("inf")
    for voxel, distance in LEVELS:
        src, tgt = voxel_downsample(src_all, voxel), voxel_downsample(tgt_all, voxel)
        tree = _Tree(tgt)
        n_tgt = normals(tgt, tree)
        for _ in range(iterations):
            p = src @ t[:3, :3].T + t[:3, 3]
            idx, d2 = tree.query(p, 1)
            ok = d2[:, 0] < distance**2
            if ok.sum() < 6:
                raise ValueError("the sweeps do not overlap: no correspondences for ICP")
            p, q, n = p[ok], tgt[idx[ok, 0]], n_tgt[idx[ok, 0]]
            r = np.einsum("ij,ij->i", n, p - q)
            a = np.c_[np.cross(p, n), n]
            x = -np.linalg.solve(a.T @ a + 1e-9 * np.eye(6), a.T @ r)
            step = np.eye(4)
            step[:3, :3], step[:3, 3] = _rotation(x[:3]), x[3:]
            t = step @ t
            fitness, rmse = float(ok.mean()), float(np.sqrt(np.mean(r**2)))
            if np.linalg.norm(x) < 1e-4:
                break
    return Registration(t, fitness, rmse)


def camera_motion(t_cam_from_lidar: np.ndarray, t_lidar_s_from_t: np.ndarray) -> np.ndarray:
    """T_camera_s<-camera_t (4, 4) from the LiDAR's motion T_lidar_s<-lidar_t and the rig's
    T_camera<-lidar (the same at both times)."""
    return t_cam_from_lidar @ t_lidar_s_from_t @ np.linalg.inv(t_cam_from_lidar)
