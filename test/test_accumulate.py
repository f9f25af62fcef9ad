"""Accumulated training targets: ICP on real KITTI sweeps, and the rules that keep or drop a
neighbour's point, checked on a hand-made scene."""

import numpy as np
import pytest

from sparse_depth_node.accumulate import accumulated_target, icp, register_sequence
from sparse_depth_node.camera import PinholeCamera
from sparse_depth_node.datasets import KittiRawReader
from sparse_depth_node.geometry import make_transform



def rotation_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def test_icp_recovers_a_known_motion_of_a_real_sweep(kitti_frame0):
    pts = kitti_frame0.points[:, :3].astype(np.float64)
    truth = make_transform(rotation_z(2.0), [0.6, -0.2, 0.05])  # source -> target
    target = pts @ truth[:3, :3].T + truth[:3, 3]
    t, fitness, rmse = icp(pts, target, np.eye(4))
    assert np.abs(t[:3, 3] - truth[:3, 3]).max() < 0.02
    angle = np.degrees(np.arccos(np.clip((np.trace(t[:3, :3] @ truth[:3, :3].T) - 1) / 2, -1, 1)))
    assert angle < 0.1 and fitness > 0.9 and rmse < 0.1  # voxel grids differ after the motion


def test_consecutive_kitti_sweeps_register_as_steady_forward_motion(kitti_dir):
    reader = KittiRawReader(kitti_dir)
    poses, quality = register_sequence([reader.read(i).points for i in range(4)])
    steps = [np.linalg.inv(a) @ b for a, b in zip(poses[:-1], poses[1:])]
    forward = [s[0, 3] for s in steps]  # Velodyne x is forward; the car drives at about 2.2 m/s
    assert all(0.15 < f < 0.3 for f in forward) and np.ptp(forward) < 0.03
    assert all(abs(s[1, 3]) < 0.05 and abs(s[2, 3]) < 0.05 for s in steps)
    assert all(fit > 0.6 and rmse < 0.2 for fit, rmse in quality[1:])


def test_neighbour_points_are_kept_only_where_the_current_sweep_agrees():
    # camera looking along +z; "LiDAR" frame = camera frame; f = 100 px, 40 x 40 image
    cam = PinholeCamera.from_intrinsics([[100.0, 0, 20.0], [0, 100.0, 20.0], [0, 0, 1]], 40, 40)
    eye = np.eye(4)
    current = np.array([[0.0, 0.0, 10.0]])  # pixel (20, 20), 10 m
    neighbour = np.array([
        [0.2, 0.0, 10.2],    # pixel (22, 20): 2 px from a current point, 2 % deeper -> kept
        [0.0, 0.3, 12.0],    # pixel (20, 23): 20 % behind the current surface (occluded) -> rejected
        [-0.1, 0.0, 9.0],    # pixel (19, 20): 10 % in front (moved away since) -> rejected
        [1.0, 1.0, 10.0],    # pixel (30, 30): no current point within 4 px -> rejected
        [0.0, 0.0, 10.3],    # pixel (20, 20): the current point's own pixel -> the current depth stays
    ])
    depth, mask, counts = accumulated_target([current, neighbour], [eye, eye], 0, cam, eye)
    assert counts == {"current": 1, "added": 1, "rejected": 3}
    assert mask[0, 0].nonzero().tolist() == [[20, 20], [20, 22]]
    assert depth[0, 0, 20, 20] == pytest.approx(10.0) and depth[0, 0, 20, 22] == pytest.approx(10.2)


def test_a_neighbour_is_moved_into_the_current_frame_by_the_poses():
    cam = PinholeCamera.from_intrinsics([[100.0, 0, 20.0], [0, 100.0, 20.0], [0, 0, 1]], 40, 40)
    eye = np.eye(4)
    current = np.array([[0.0, 0.0, 10.0]])
    moved = make_transform(np.eye(3), [0.0, 0.0, 1.0])  # sweep 1 was taken 1 m further forward
    neighbour = np.array([[0.2, 0.0, 9.0]])  # 10.0 m in the current frame -> pixel (22, 20)
    depth, mask, counts = accumulated_target([current, neighbour], [eye, moved], 0, cam, eye)
    assert counts["added"] == 1 and depth[0, 0, 20, 22] == pytest.approx(10.0)
