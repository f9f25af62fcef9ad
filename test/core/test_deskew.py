"""Motion compensation's core: each point carried by its bin's pose, against a per-point numpy
loop; points without a return or a time left out; the CUDA path equal to the CPU's."""

import numpy as np
import pytest
import torch

from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.core.geometry import deskew
from sparse_depth_node.core.motion import Sweep
from sparse_depth_node.core.pipeline import process_frame
from sparse_depth_node.core.transforms import make_transform


def random_poses(rng, bins):
    out = []
    for _ in range(bins):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        out.append(make_transform(q * np.sign(np.linalg.det(q)), rng.normal(size=3)))
    return np.array(out)


def test_each_point_takes_the_pose_of_its_time_bin():
    rng = np.random.default_rng(0)
    bins, span = 16, 0.1
    poses = random_poses(rng, bins)
    points = rng.normal(scale=20, size=(500, 3)).astype(np.float32)
    times = rng.uniform(0, span, 500).astype(np.float32)
    times[:3] = [0.0, span, span / bins]  # the edges: first bin, last bin, second bin
    got = deskew(torch.from_numpy(points), torch.from_numpy(times), span, torch.from_numpy(poses))
    for p, t, g in zip(points, times, got.numpy()):
        b = min(int(np.floor(float(t) / span * bins)), bins - 1)
        np.testing.assert_allclose(g, poses[b, :3, :3] @ p + poses[b, :3, 3], atol=2e-4)
    none = deskew(torch.from_numpy(points), None, 0.0, torch.from_numpy(poses[:1]))
    np.testing.assert_allclose(
        none.numpy(), points @ poses[0, :3, :3].T + poses[0, :3, 3], atol=2e-4
    )


def test_points_without_a_return_or_a_time_are_left_out_not_moved():
    points = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [5.0, 1.0, 0.0]])
    times = torch.tensor([0.05, float("nan"), 0.05])
    pose = torch.from_numpy(make_transform(np.eye(3), [0.0, 0.0, 10.0]))[None]
    out = deskew(points, times, 0.1, pose).numpy()
    assert np.isnan(out[:2]).all() and np.allclose(out[2], [5.0, 1.0, 10.0])


@pytest.mark.cuda
def test_on_cuda_the_frame_is_carried_as_on_the_cpu(sample_frame_for_motion):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none on this machine); the same code is tested on the CPU")
    f, sweep = sample_frame_for_motion
    out = {}
    for device in ("cpu", "cuda"):
        completer = DepthCompleter("nearest", device)
        out[device] = process_frame(
            f.points, f.camera, f.t_cam_from_lidar, completer, f.rgb, None, sweep
        ).sparse_depth
    both = (out["cpu"] > 0) & (out["cuda"] > 0)
    assert both.sum() >= 0.999 * (out["cpu"] > 0).sum()
    assert np.abs(out["cpu"] - out["cuda"])[both].max() <= 1e-3


@pytest.fixture
def sample_frame_for_motion():
    """The sample's first frame, its sweep turned 20 degrees and moved 1 m over 0.1 s."""
    from conftest import SAMPLE

    from sparse_depth_node.data.datasets import KittiRawReader

    f = KittiRawReader(SAMPLE).read(0)
    angles = np.radians(np.linspace(-10, 10, 128))
    poses = np.array(
        [
            make_transform(
                [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]],
                [a * 3, 0, 0],
            )
            for a in angles
        ]
    )
    azimuth = np.arctan2(f.points[:, 1], f.points[:, 0])
    times = ((np.pi - azimuth) / (2 * np.pi) * 0.1).astype(np.float32)
    return f, Sweep(times, 0.1, poses)


def test_a_carried_frame_projects_its_points_where_they_were_carried(sample_frame_for_motion):
    """The pipeline's sparse depth of a frame with a sweep equals the projection of the points
    carried by hand, beforehand."""
    f, sweep = sample_frame_for_motion
    completer = DepthCompleter("nearest", "cpu")
    got = process_frame(f.points, f.camera, f.t_cam_from_lidar, completer, f.rgb, None, sweep)
    bins = np.minimum((sweep.times / sweep.span * 128).astype(int), 127)
    carried = (
        np.einsum("nij,nj->ni", sweep.poses[bins, :3, :3], f.points) + sweep.poses[bins, :3, 3]
    )
    ref = process_frame(carried, f.camera, f.t_cam_from_lidar, completer, f.rgb)
    same = np.isclose(got.sparse_depth, ref.sparse_depth, atol=1e-3)
    assert same.mean() > 0.999 and (got.sparse_depth > 0).sum() > 10_000
