"""Projection and back-projection: hand-computed values and KITTI frame 0 against a per-point
reference."""

import numpy as np
import pytest
import torch

from sparse_depth_node.core.camera import PinholeCamera
from sparse_depth_node.core.geometry import backproject_depth, project_points, voxel_downsample
from sparse_depth_node.core.transforms import (
    invert_transform,
    matrix_to_quaternion,
    quaternion_to_matrix,
    transform_from_quaternion,
)
from sparse_depth_node.data.calibration import read_kitti_calib_file

CAM = PinholeCamera(fx=100.0, fy=50.0, cx=20.0, cy=10.0, width=40, height=20)
IDENT = np.eye(4)


def project(points, cam=CAM, t=IDENT, **kw):
    d, m = project_points(torch.tensor(points, dtype=torch.float32), cam, t, **kw)
    return d[0, 0].numpy(), m[0, 0].numpy()


def test_hand_placed_points_land_on_hand_computed_pixels():
    # u = 100 * x / z + 20, v = 50 * y / z + 10
    pts = [
        [0.0, 0.0, 5.0],  # (20, 10)
        [1.0, 0.4, 10.0],  # u = 30, v = 12
        [-0.38, -0.18, 2.0],
    ]  # u = 1, v = 5.5 -> rounds to row 6
    d, m = project(pts)
    assert m.sum() == 3
    assert d[10, 20] == pytest.approx(5.0)
    assert d[12, 30] == pytest.approx(10.0)
    assert d[6, 1] == pytest.approx(2.0)


def test_nearest_point_wins_a_shared_pixel_whatever_the_order():
    pts = [[0.0, 0.0, 9.0], [0.0, 0.0, 3.0], [0.0, 0.0, 6.0]]
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        d, m = project([pts[i] for i in order])
        assert m.sum() == 1 and d[10, 20] == pytest.approx(3.0)


def test_points_behind_outside_or_out_of_range_never_appear():
    pts = [
        [0.0, 0.0, -5.0],  # behind
        [5.0, 0.0, 5.0],  # u = 120: right of the image
        [0.0, -3.0, 5.0],  # v = -20: above
        [0.0, 0.0, 0.05],  # nearer than min_depth
        [0.0, 0.0, 500.0],  # beyond max_depth
        [np.nan, 0.0, 5.0],
        [0.0, np.inf, 5.0],
    ]
    d, m = project(pts, min_depth=0.1, max_depth=100.0)
    assert m.sum() == 0 and np.all(d == 0)


def test_pixel_borders_follow_the_pixel_centre_convention():
    # u = 100 x / 5 + 20; x = -1.025 -> u = -0.5 (pixel 0); x = 0.9749 -> u = 39.498 (pixel 39); x
    # = 0.976 -> 39.52 (out)
    d, m = project([[-1.025, 0.0, 5.0], [0.9749, 0.0, 5.0], [0.976, 0.1, 5.0]])
    assert m[10, 0] == 1 and m[10, 39] == 1 and m.sum() == 2


def test_extrinsic_and_p_translation_are_both_applied():
    # LiDAR x forward, y left, z up -> optical z forward, x right, y down, then 2 m back
    r = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)
    t = np.eye(4)
    t[:3, :3] = r
    t[:3, 3] = [0.0, 0.0, -2.0]
    cam = PinholeCamera(100.0, 50.0, 20.0, 10.0, 40, 20, shift=(0.1, 0.0, 0.5))
    # lidar (12, -0.9, 0) -> optical (0.9, 0, 10) -> shifted (1.0, 0, 10.5): u = 100/10.5 + 20 =
    # 29.52 -> 30
    d, m = project([[12.0, -0.9, 0.0]], cam=cam, t=t)
    assert m.sum() == 1 and d[10, 30] == pytest.approx(10.5)


def test_empty_cloud_gives_an_empty_valid_image():
    d, m = project(np.zeros((0, 3)))
    assert d.shape == (20, 40) and m.sum() == 0


def test_bad_shapes_and_ranges_raise_value_error():
    with pytest.raises(ValueError, match="shape"):
        project_points(torch.zeros(5, 2), CAM, IDENT)
    with pytest.raises(ValueError, match="min_depth"):
        project_points(torch.zeros(5, 3), CAM, IDENT, min_depth=10.0, max_depth=5.0)


def test_kitti_frame0_matches_a_per_point_reference(kitti_dir, kitti_frame0):
    """Independent reference: P_rect_02 @ R_rect_00 @ Tr_velo_to_cam, a Python loop over points,
    float64."""
    c2c = read_kitti_calib_file(kitti_dir / "calib" / "calib_cam_to_cam.txt")
    v2c = read_kitti_calib_file(kitti_dir / "calib" / "calib_velo_to_cam.txt")
    p = c2c["P_rect_02"].reshape(3, 4)
    r = np.eye(4)
    r[:3, :3] = c2c["R_rect_00"].reshape(3, 3)
    tr = np.eye(4)
    tr[:3, :3], tr[:3, 3] = v2c["R"].reshape(3, 3), v2c["T"]
    full = p @ r @ tr
    w, h = 1242, 375
    ref = {}
    for x, y, z in kitti_frame0.points.astype(np.float64):
        uvw = full @ np.array([x, y, z, 1.0])
        if uvw[2] < 0.5 or uvw[2] > 100.0:
            continue
        u, v = int(np.floor(uvw[0] / uvw[2] + 0.5)), int(np.floor(uvw[1] / uvw[2] + 0.5))
        if 0 <= u < w and 0 <= v < h:
            ref[(v, u)] = min(ref.get((v, u), np.inf), uvw[2])
    f = kitti_frame0
    d, m = project(f.points, cam=f.camera, t=f.t_cam_from_lidar, min_depth=0.5, max_depth=100.0)
    got = {(int(v), int(u)) for v, u in zip(*np.nonzero(m))}
    assert 15000 < len(ref) < 18000
    # float32 vs float64 may move a point that sits on a pixel border; allow a handful
    assert len(got ^ set(ref)) <= 0.001 * len(ref)
    common = sorted(got & set(ref))
    ref_z = np.array([ref[k] for k in common])
    got_z = np.array([d[k] for k in common])
    assert np.max(np.abs(ref_z - got_z)) < 1e-3


def test_backprojection_of_a_projected_frame_returns_the_points():
    # points exactly on pixel centres at several depths
    rng = np.random.default_rng(0)
    u = rng.choice(40, 30, replace=True)
    v = rng.choice(20, 30, replace=True)
    pixels = {
        (int(vi), int(ui)): rng.uniform(1.0, 30.0) for ui, vi in zip(u, v)
    }  # one point per pixel
    ordered = sorted(pixels.items())  # back-projection returns points in row-major pixel order
    expect = np.array(
        [[(ui - 20.0) * z / 100.0, (vi - 10.0) * z / 50.0, z] for (vi, ui), z in ordered]
    )
    shuffled = expect[rng.permutation(len(expect))]
    d, m = project_points(torch.tensor(shuffled, dtype=torch.float32), CAM, IDENT)
    back, _, _ = backproject_depth(d, CAM)
    assert back.shape == (len(pixels), 3)
    np.testing.assert_allclose(back.numpy(), expect, rtol=1e-5, atol=1e-5)


def test_backprojection_of_kitti_frame_returns_the_winning_points(kitti_frame0):
    """Z is the LiDAR point's Z; X and Y are within half a pixel footprint of the LiDAR point's."""
    f = kitti_frame0
    cam = f.camera
    d, m = project_points(torch.from_numpy(f.points), cam, f.t_cam_from_lidar, 0.5, 100.0)
    back, _, kept = backproject_depth(d, cam)
    t = cam.optical_from_reference() @ f.t_cam_from_lidar
    opt = f.points.astype(np.float64) @ t[:3, :3].T + t[:3, 3]
    z = opt[:, 2]
    ok = (z >= 0.5) & (z <= 100.0)
    opt, z = opt[ok], z[ok]
    u = np.floor(cam.fx * opt[:, 0] / z + cam.cx + 0.5).astype(int)
    v = np.floor(cam.fy * opt[:, 1] / z + cam.cy + 0.5).astype(int)
    inside = (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    opt, u, v = opt[inside], u[inside], v[inside]
    order = np.lexsort((opt[:, 2], v * cam.width + u))  # by pixel, then nearest first
    pix = (v * cam.width + u)[order]
    first = np.r_[True, pix[1:] != pix[:-1]]
    ref = dict(zip(pix[first].tolist(), opt[order][first]))
    rows, cols = np.nonzero(kept.numpy())
    got_pix = (rows * cam.width + cols).tolist()
    matched = [k for k in got_pix if k in ref]
    assert len(matched) >= 0.999 * len(got_pix)
    b = back.numpy()[[i for i, k in enumerate(got_pix) if k in ref]]
    r = np.array([ref[k] for k in matched])
    assert np.max(np.abs(b[:, 2] - r[:, 2])) < 1e-3
    half = 0.5 * r[:, 2] / cam.fx + 1e-4
    assert np.all(np.abs(b[:, 0] - r[:, 0]) <= half)
    assert np.all(np.abs(b[:, 1] - r[:, 1]) <= 0.5 * r[:, 2] / cam.fy + 1e-4)


def test_backprojection_stride_threshold_and_colour():
    depth = torch.full((1, 1, 20, 40), 4.0)
    conf = torch.zeros(20, 40)
    conf[:, :20] = 0.9
    conf[:, 20:] = 0.3
    rgb = (
        torch.arange(20 * 40 * 3, dtype=torch.int64).remainder(256).to(torch.uint8).view(20, 40, 3)
    )
    pts, col, kept = backproject_depth(
        depth, CAM, confidence=conf, confidence_threshold=0.5, stride=2, rgb=rgb
    )
    assert kept.shape == (10, 20) and int(kept.sum()) == 10 * 10
    assert pts.shape == (100, 3) and col.shape == (100, 3)
    assert torch.equal(col[1], rgb[0, 2])
    assert pts[1].tolist() == pytest.approx([(2 - 20) * 4 / 100, (0 - 10) * 4 / 50, 4.0])


def test_quaternion_round_trip_and_inverse():
    q = np.array([0.1, -0.2, 0.3, 0.9])
    q /= np.linalg.norm(q)
    r = quaternion_to_matrix(q)
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    assert np.allclose(matrix_to_quaternion(r), q)
    t = transform_from_quaternion([1.0, 2.0, 3.0], q)
    assert np.allclose(invert_transform(t) @ t, np.eye(4))
    assert np.allclose(
        quaternion_to_matrix([0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)]),
        [[0, -1, 0], [1, 0, 0], [0, 0, 1]],
    )
    with pytest.raises(ValueError):
        quaternion_to_matrix([0, 0, 0, 0])


def test_voxel_downsample_keeps_one_mean_point_per_occupied_cube(kitti_frame0):
    """Hand-placed points: the mean per cube (numpy, by cube); KITTI frame 0's cloud: every
    cube the full cloud occupies, and no other, holds one point."""
    pts = np.array(
        [[0.01, 0.02, 0.03], [0.05, 0.09, 0.01], [0.12, 0.0, 0.0], [-0.01, 0.0, 0.0]],
        np.float32,
    )
    rgb = np.array([[10, 20, 30], [20, 40, 61], [1, 2, 3], [9, 9, 9]], np.uint8)
    got, colours = voxel_downsample(torch.from_numpy(pts), 0.1, torch.from_numpy(rgb))
    cubes = {}
    for p, c in zip(pts, rgb):
        cubes.setdefault(tuple(np.floor(p / 0.1).astype(int)), []).append((p, c))
    expect = {k: np.mean([p for p, _ in v], axis=0) for k, v in cubes.items()}
    assert len(got) == len(expect) == 3
    for p, c in zip(got.numpy(), colours.numpy()):
        key = tuple(np.floor(p / 0.1).astype(int))
        np.testing.assert_allclose(p, expect[key], rtol=1e-6)
        mean = np.mean([c for _, c in cubes[key]], axis=0)
        np.testing.assert_array_equal(c, np.floor(mean + 0.5))
    f = kitti_frame0
    d, m = project_points(torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0)
    full, _, _ = backproject_depth(d, f.camera)
    kept, none = voxel_downsample(full, 0.05)
    occupied = {tuple(c) for c in np.floor(full.numpy() / 0.05).astype(np.int64)}
    assert none is None and len(kept) == len(occupied) < len(full)
    assert {tuple(c) for c in np.floor(kept.numpy() / 0.05).astype(np.int64)} == occupied
