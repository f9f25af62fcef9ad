"""Denser training targets: neighbouring sweeps of a sequence, registered with ICP and
accumulated into the current frame, with the points the current sweep contradicts removed.

KITTI built its depth benchmark the same way from 11 sweeps. Here there are no poses
(no OXTS in the data), so consecutive sweeps are registered with open3d's point-to-plane ICP,
seeded with the previous step's motion (constant velocity). An accumulated point is kept only
where the current sweep has a measurement within ``radius`` px whose depth agrees within
``tolerance`` (fraction of the depth): points behind a nearer current surface (occluded from
this viewpoint) and points of objects that moved (where the current sweep sees through them)
are both dropped, and so is anything the current sweep cannot vouch for.

Poses are 4 x 4 float64 in metres, ``lidar_i -> lidar_0`` of the sequence given. open3d is
imported only here (training-time dependency).
"""

from __future__ import annotations

import numpy as np
import torch

from .camera import PinholeCamera
from .completion import nearest_fill
from .geometry import project_points


def _cloud(points: np.ndarray, voxel: float):
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points[:, :3], np.float64)))
    pcd = pcd.voxel_down_sample(voxel)
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=3 * voxel, max_nn=30))
    return pcd


def icp(source: np.ndarray, target: np.ndarray, init: np.ndarray, voxel: float = 0.25,
        max_distance: float = 1.0) -> tuple[np.ndarray, float, float]:
    """T (4, 4) mapping ``source`` points onto ``target`` (point-to-plane, coarse then fine),
    with the fine pass's fitness (fraction of source points matched) and inlier RMSE (m)."""
    import open3d as o3d

    reg = o3d.pipelines.registration
    src, tgt = _cloud(source, voxel), _cloud(target, voxel)
    t = np.asarray(init, np.float64)
    result = None
    for dist in (max_distance, max_distance / 4):
        result = reg.registration_icp(src, tgt, dist, t, reg.TransformationEstimationPointToPlane(),
                                      reg.ICPConvergenceCriteria(max_iteration=50))
        t = np.asarray(result.transformation)
    return t, float(result.fitness), float(result.inlier_rmse)


def register_sequence(sweeps: list[np.ndarray]) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """Poses ``lidar_i -> lidar_0`` of consecutive sweeps by chained ICP, and each step's
    (fitness, inlier RMSE); the first pose is the identity."""
    poses = [np.eye(4)]
    quality = [(1.0, 0.0)]
    step = np.eye(4)
    for prev, cur in zip(sweeps[:-1], sweeps[1:]):
        step, fitness, rmse = icp(cur, prev, step)  # lidar_i -> lidar_{i-1}
        poses.append(poses[-1] @ step)
        quality.append((fitness, rmse))
    return poses, quality


def accumulated_target(sweeps: list[np.ndarray], poses: list[np.ndarray], index: int, camera: PinholeCamera,
                       t_cam_from_lidar: np.ndarray, window: int = 5, radius: int = 4, tolerance: float = 0.05,
                       min_depth: float = 0.5, max_depth: float = 100.0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Target depth and mask (1, 1, H, W) of sweep ``index``: its own projected points plus the
    points of sweeps index-window..index+window that the current sweep confirms.

    A neighbour's point at pixel p is kept where the current sweep's nearest measurement within
    ``radius`` px (Chebyshev) has depth d and |z - d| <= tolerance * d. Where the current sweep
    has its own point, that point wins. Returns also counts: current, added, rejected pixels.
    """
    own_depth, own_mask = project_points(torch.from_numpy(np.asarray(sweeps[index][:, :3], np.float32)), camera,
                                         t_cam_from_lidar, min_depth, max_depth)
    inv = np.linalg.inv(poses[index])
    others = []
    for j in range(max(0, index - window), min(len(sweeps), index + window + 1)):
        if j == index:
            continue
        rel = inv @ poses[j]  # lidar_j -> lidar_index
        pts = np.asarray(sweeps[j][:, :3], np.float64)
        others.append(pts @ rel[:3, :3].T + rel[:3, 3])
    if not others:
        return own_depth, own_mask, {"current": int(own_mask.sum()), "added": 0, "rejected": 0}
    acc_depth, acc_mask = project_points(torch.from_numpy(np.concatenate(others).astype(np.float32)), camera,
                                         t_cam_from_lidar, min_depth, max_depth)
    reference = nearest_fill(own_depth, own_mask, radius=radius)
    candidate = (acc_mask > 0) & (own_mask == 0)
    agrees = (reference > 0) & ((acc_depth - reference).abs() <= tolerance * reference)
    keep = candidate & agrees
    depth = torch.where(keep, acc_depth, own_depth)
    mask = (own_mask > 0) | keep
    stats = {"current": int(own_mask.sum()), "added": int(keep.sum()), "rejected": int((candidate & ~agrees).sum())}
    return depth, mask.to(own_mask.dtype), stats
