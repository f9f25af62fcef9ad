"""Accumulated targets: against a ray-cast oracle (a tilted plane seen from two camera poses of
known relative motion, the frame's own returns on every 6th row, the neighbour's on the rows
between), on the sample against the frame's own held-out scan lines, and the evaluation that
scores methods there (accumulated:N)."""

import numpy as np
import pytest
import torch

from sparse_depth_node.core.camera import PinholeCamera
from sparse_depth_node.core.geometry import project_points
from sparse_depth_node.data.datasets import Frame
from sparse_depth_node.lab.accumulate import accumulate, neighbour_depth

H, W = 121, 200  # row 120 a scan line: every row between lies within 3 px of one
CAMERA = PinholeCamera(fx=150.0, fy=150.0, cx=100.0, cy=60.0, width=W, height=H)
NORMAL, OFFSET = np.array([0.2, -0.3, 1.0]), 12.0  # the plane NORMAL . X = OFFSET (frame's camera)
LINE = 6  # own returns on rows 0, 6, 12, …


def rays(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.c_[(u - CAMERA.cx) / CAMERA.fx, (v - CAMERA.cy) / CAMERA.fy, np.ones(len(u))]


def on_plane(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N, 3): the plane's points seen at pixels (u, v) of the frame's camera."""
    r = rays(u, v)
    return r * (OFFSET / (r @ NORMAL))[:, None]


def motion() -> np.ndarray:
    """T_other<-frame: 0.5 m forward, 0.1 m left, 3 degrees of yaw."""
    a = np.radians(3.0)
    t = np.eye(4)
    t[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    t[:3, 3] = [0.1, 0.0, -0.5]
    return t


def frame(points: np.ndarray) -> Frame:
    """A frame whose LiDAR frame is its camera's optical frame."""
    rgb = np.zeros((H, W, 3), np.uint8)
    return Frame("f", points.astype(np.float32), rgb, CAMERA, np.eye(4), 0.0)


def own_depth(points: np.ndarray) -> np.ndarray:
    depth, _ = project_points(torch.from_numpy(points.astype(np.float32)), CAMERA, np.eye(4))
    return depth[0, 0].numpy()


def scene():
    """Own returns (frame's camera) and the neighbour's returns (its own camera) on the rows
    between the scan lines, at pixel centres of the frame's image."""
    v, u = np.mgrid[0:H, 0:W].reshape(2, -1).astype(float)
    line = v % LINE == 0
    own = on_plane(u[line], v[line])
    between = on_plane(u[~line], v[~line])
    t = motion()
    other = between @ t[:3, :3].T + t[:3, 3]
    return own, other, v[~line].astype(int), u[~line].astype(int), between[:, 2]


def test_a_static_scene_accumulates_exactly_where_the_own_returns_leave_pixels_empty():
    own, other, rows, cols, z = scene()
    moved = neighbour_depth(frame(own), frame(other), np.linalg.inv(motion()))
    out = accumulate(own_depth(own), moved[None])
    assert np.all(out[::LINE] == 0)  # own returns' pixels are not targets twice
    kept = out[rows, cols]
    assert (kept > 0).mean() > 0.99  # the plane's every pixel between the lines
    ok = kept > 0
    np.testing.assert_allclose(kept[ok], z[ok], rtol=1e-5)  # the ray-cast depth


def test_a_point_hidden_behind_a_nearer_surface_or_moved_is_rejected():
    own, other, rows, cols, z = scene()
    plate = own[:, 0] / own[:, 2] * CAMERA.fx + CAMERA.cx >= 100 - 0.5  # columns >= 100
    own[plate] *= 5.0 / own[plate, 2:]  # a nearer surface (5 m) in front of the right half
    moved = neighbour_depth(frame(own), frame(other), np.linalg.inv(motion()))
    moved[31, 50] *= 0.92  # a point 8 % in front of the plane: something that moved
    moved[33, 50] *= 0.97  # within the sensor's noise: kept
    out = accumulate(own_depth(own), moved[None])
    # behind the plate but supported by the plane's returns within 4 px (columns 96-99)
    assert np.all(out[:, 100:103] == 0)
    assert np.all(out[:, 90:96][np.arange(H) % LINE != 0] > 0)  # beside it, kept
    assert out[31, 50] == 0 and out[33, 50] == np.float32(moved[33, 50])


def test_on_the_sample_the_neighbours_returns_agree_with_the_frames_own_held_out_scan_lines(
    kitti_dir,
):
    """Real data: frame 1's even scan lines as its own returns, frames 0 and 2 accumulated into
    it with the motion from odometry; where a kept point meets one of frame 1's odd scan lines
    (a measurement no step used), the two agree as LiDAR ranges do, and closer than the
    neighbours' points before the tests."""
    from sparse_depth_node.data.datasets import open_dataset
    from sparse_depth_node.lab.evaluate import frame_rings, project_lidar
    from sparse_depth_node.lab.odometry import motion as camera_motion
    from sparse_depth_node.lab.views import returns_target

    reader = open_dataset(kitti_dir, "kitti-raw")
    frames = [reader.read(i) for i in reader.frame_ids()[:3]]
    f = frames[1]
    rings = frame_rings(f)
    even, odd = (project_lidar(f, f.points[rings % 2 == p])[0][0, 0].numpy() for p in (0, 1))
    first = returns_target(f)
    moved = np.stack(
        [
            neighbour_depth(f, g, np.linalg.inv(camera_motion(first, f.camera.K, g.rgb).transform))
            for g in (frames[0], frames[2])
        ]
    )
    out = accumulate(even, moved)
    assert (out > 0).sum() > 1.5 * (even > 0).sum()  # the targets at least 2.5x as dense
    both = (out > 0) & (odd > 0)
    assert both.sum() > 200
    rel = np.abs(out[both] - odd[both]) / odd[both]
    raw = moved.max(axis=0)  # any neighbour point, before the tests
    near = (raw > 0) & (odd > 0)
    raw_rel = np.abs(raw[near] - odd[near]) / odd[near]
    assert np.median(rel) < 0.01 and np.quantile(rel, 0.9) < 0.05
    assert np.quantile(rel, 0.9) < 0.75 * np.quantile(raw_rel, 0.9)


def test_evaluate_accumulated_scores_every_method_at_the_neighbours_points_not_the_input(
    tmp_path, kitti_dir
):
    """The whole sweep is the input; the targets are the neighbours' points at the pixels it
    leaves empty: none at an input pixel, and (two neighbours) more of them than returns."""
    import json

    from sparse_depth_node.cli import main
    from sparse_depth_node.data.datasets import open_dataset
    from sparse_depth_node.lab.accumulate import accumulated_split

    out = tmp_path / "r.json"
    argv = ["evaluate", "--data", str(kitti_dir), "--format", "kitti-raw", "--quiet"]
    argv += ["--frames", "1", "--models", "classic-refined,nearest", "--json", str(out)]
    assert main([*argv, "--protocol", "accumulated:1"]) == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "accumulated:1" and result["frames"] == 1
    reader = open_dataset(kitti_dir, "kitti-raw")
    frames = [reader.read(i) for i in reader.frame_ids()[:3]]
    split = accumulated_split(frames[1], [frames[0], frames[2]])
    assert torch.equal(split.input_mask * split.target_mask, torch.zeros_like(split.input_mask))
    assert split.target_mask.sum() > split.input_mask.sum()
    assert result["methods"]["nearest"]["coverage"] > 0.99


def test_evaluate_accumulated_with_a_bad_span_is_one_line_and_status_2(capsys, kitti_dir):
    from sparse_depth_node.cli import main

    argv = ["evaluate", "--data", str(kitti_dir), "--format", "kitti-raw", "--quiet"]
    assert main([*argv, "--protocol", "accumulated:0", "--models", "nearest"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "accumulated:N needs a whole N >= 1" in err[0]


@pytest.mark.validation
def test_on_full_sweeps_the_default_is_nearer_the_neighbours_returns_than_guided(full_data):
    """Two moving KITTI frames, the full sweeps of 3 frames each side accumulated: between its
    returns the shipped default (classic-refined) is as near the neighbours' returns as the
    fill it refines (RMSE within 1 %, MAE lower) and nearer than the guided network it
    replaced and than the nearest return (docs/EVALUATION.md)."""
    from sparse_depth_node.core.completion import DepthCompleter
    from sparse_depth_node.core.methods import DEFAULT_METHOD
    from sparse_depth_node.data.datasets import open_dataset
    from sparse_depth_node.lab.accumulate import accumulated_split
    from sparse_depth_node.lab.evaluate import evaluate

    reader = open_dataset(full_data / "kitti_raw_2011_09_26", "kitti-raw")
    ids = reader.frame_ids()
    frames = {j: reader.read(ids[j]) for j in range(1, 16)}
    chosen = (4, 12)
    splits = [
        accumulated_split(frames[i], [frames[i + d] for d in (-3, -2, -1, 1, 2, 3)])
        for i in chosen
    ]
    assert all(s.target_mask.sum() > 3 * s.input_mask.sum() for s in splits)
    names = (DEFAULT_METHOD, "classic-multiscale", "guided", "nearest")
    methods = {n: DepthCompleter(n, "cpu") for n in names}
    m = evaluate([frames[i] for i in chosen], methods, "accumulated:3", 0, splits=splits)[
        "methods"
    ]
    fill = m["classic-multiscale"]
    assert m[DEFAULT_METHOD]["rmse_mm"] < 1.01 * fill["rmse_mm"]
    assert m[DEFAULT_METHOD]["mae_mm"] < fill["mae_mm"]
    for other in ("guided", "nearest"):
        assert m[DEFAULT_METHOD]["rmse_mm"] < m[other]["rmse_mm"], other
        assert m[DEFAULT_METHOD]["mae_mm"] < m[other]["mae_mm"], other
