"""Nearest fill, the DepthCompleter and the per-frame pipeline on real frames."""

from dataclasses import asdict

import numpy as np
import pytest
import torch

from sparse_depth_node.core.completion import DepthCompleter, nearest_fill, resolve_device
from sparse_depth_node.core.geometry import project_points
from sparse_depth_node.core.pipeline import process_frame


def test_nearest_fill_takes_the_nearest_valid_pixel():
    depth = torch.zeros(1, 1, 10, 10)
    mask = torch.zeros_like(depth)
    depth[0, 0, 2, 2], depth[0, 0, 2, 8] = 3.0, 7.0
    mask[0, 0, 2, 2] = mask[0, 0, 2, 8] = 1
    out = nearest_fill(depth, mask, radius=3)
    assert out[0, 0, 2, 4] == 3.0 and out[0, 0, 2, 6] == 7.0 and out[0, 0, 9, 9] == 0
    assert out[0, 0, 2, 5] == 3.0  # equally far (3 px): the nearer depth


def test_resolve_device_and_errors():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_untrained_network_needs_an_explicit_opt_in(tmp_path, monkeypatch):
    import sparse_depth_node.core.completion as completion

    monkeypatch.setattr(completion, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="no weights"):
        DepthCompleter("sparseconv", "cpu")
    c = DepthCompleter("sparseconv", "cpu", allow_untrained=True)
    assert not c.trained and "UNTRAINED" in c.description


@pytest.mark.parametrize("method", ["classic", "classic-multiscale", "nearest"])
def test_pipeline_on_kitti_frame_keeps_lidar_depth_at_lidar_pixels(kitti_frame0, method):
    f = kitti_frame0
    r = process_frame(f.points, f.camera, f.t_cam_from_lidar, DepthCompleter(method, "cpu"), f.rgb)
    assert r.sparse_depth.shape == (375, 1242) and r.mask.sum() > 15000
    assert (r.dense_depth > 0).mean() > 0.5
    at = r.mask & (r.dense_depth > 0)
    err = np.abs(r.dense_depth[at] - r.sparse_depth[at])
    if method == "nearest":
        assert np.all(err == 0)
    else:
        assert np.median(err) < 0.05
    assert (
        r.cloud.shape[0] == int((r.dense_depth > 0).sum()) and r.cloud_rgb.shape == r.cloud.shape
    )
    assert set(r.timings_ms) == {
        "to_device",
        "project",
        "complete",
        "backproject",
        "to_host",
        "total",
    }
    assert np.all(r.dense_depth[r.dense_depth > 0] >= 0.5) and np.all(r.dense_depth <= 100.0)


@pytest.mark.cuda
def test_pipeline_cuda_path_matches_cpu(kitti_frame0):
    """The same code on CUDA when a GPU exists; on CPU-only machines the CPU result is checked
    alone."""
    f = kitti_frame0
    cpu = process_frame(
        f.points, f.camera, f.t_cam_from_lidar, DepthCompleter("classic", "cpu"), f.rgb
    )
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine; the CPU path is tested above")
    gpu = process_frame(
        f.points, f.camera, f.t_cam_from_lidar, DepthCompleter("classic", "cuda"), f.rgb
    )
    np.testing.assert_array_equal(cpu.sparse_depth, gpu.sparse_depth)
    np.testing.assert_allclose(cpu.dense_depth, gpu.dense_depth, atol=1e-3)


def test_classic_full_extrapolates_to_every_pixel_and_keeps_the_lidar_depth(kitti_frame0):
    f = kitti_frame0
    depth, mask = project_points(
        torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0
    )
    full, conf = DepthCompleter("classic-full", "cpu").complete(depth, mask)
    part, _ = DepthCompleter("classic", "cpu").complete(depth, mask)
    assert torch.all(full > 0) and torch.all(conf == 1)
    assert (part > 0).float().mean() < 0.9
    at_lidar = mask > 0
    rel = ((full - depth).abs() / depth)[at_lidar]
    assert rel.median() < 0.01 and (rel < 0.05).float().mean() > 0.95  # edges are smoothed


def test_pipeline_bad_and_degenerate_input(kitti_frame0):
    f = kitti_frame0
    c = DepthCompleter("classic", "cpu")
    empty = process_frame(np.zeros((0, 3), np.float32), f.camera, f.t_cam_from_lidar, c, f.rgb)
    assert empty.mask.sum() == 0 and empty.cloud.shape == (0, 3) and np.all(empty.dense_depth == 0)
    nan = f.points.copy()
    nan[::2] = np.nan
    r = process_frame(nan, f.camera, f.t_cam_from_lidar, c, f.rgb)
    assert np.isfinite(r.dense_depth).all() and 5000 < r.mask.sum() < 12000
    behind = f.points * np.float32([-1, -1, 1])  # the sweep turned 180 degrees: behind the camera
    assert len(behind) > 10000
    r = process_frame(behind, f.camera, f.t_cam_from_lidar, c)
    assert r.mask.sum() == 0 and np.all(r.dense_depth == 0) and len(r.cloud) == 0
    with pytest.raises(ValueError, match="image is"):
        process_frame(f.points, f.camera, f.t_cam_from_lidar, c, f.rgb[:, :-1])
    with pytest.raises(ValueError, match="points must have shape"):
        process_frame(f.points[:, :2], f.camera, f.t_cam_from_lidar, c)
    bad_t = f.t_cam_from_lidar.copy()
    bad_t[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        process_frame(f.points, f.camera, bad_t, c)
    with pytest.raises(ValueError, match="min_depth"):
        process_frame(f.points, f.camera, f.t_cam_from_lidar, c, settings={"min_depth": 0.0})


def test_confidence_threshold_and_stride_shape_the_cloud(kitti_frame0):
    f = kitti_frame0
    c = DepthCompleter("classic", "cpu")
    full = process_frame(f.points, f.camera, f.t_cam_from_lidar, c, f.rgb)
    strided = process_frame(
        f.points,
        f.camera,
        f.t_cam_from_lidar,
        c,
        f.rgb,
        {"cloud_stride": 4, "colorize_cloud": False},
    )
    assert strided.cloud_rgb is None and strided.cloud_pixels.shape == (94, 311)
    assert abs(len(strided.cloud) * 16 - len(full.cloud)) < 0.05 * len(full.cloud)


def test_confidence_threshold_drops_exactly_the_less_confident_pixels_but_no_return(
    kitti_frame0,
):
    f = kitti_frame0
    c = DepthCompleter("multiscale", "cpu")
    every = process_frame(
        f.points, f.camera, f.t_cam_from_lidar, c, settings={"confidence_threshold": 0.0}
    )
    sure = process_frame(
        f.points, f.camera, f.t_cam_from_lidar, c, settings={"confidence_threshold": 0.5}
    )
    reached = every.dense_depth > 0
    assert reached.mean() > 0.7 and np.array_equal(reached, every.confidence > 0)
    kept = reached & ((every.confidence >= 0.5) | every.mask)  # a return whatever it says
    np.testing.assert_array_equal(sure.dense_depth > 0, kept)
    assert (every.mask & reached & (every.confidence < 0.5)).any()  # such returns exist
    assert 0.5 < (sure.dense_depth > 0).sum() / reached.sum() < 0.95


def test_sparse_conv_density_invariance_on_a_real_frame(kitti_frame0):
    """An untrained SparseConvNet on a real frame: dropping points changes the output little where
    both densities reach, because each layer averages over the valid pixels it sees."""
    f = kitti_frame0
    depth, mask = project_points(
        torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0
    )
    from sparse_depth_node.core.models import SparseConvNet

    torch.manual_seed(0)
    net = SparseConvNet().eval()
    with torch.no_grad():
        for layer in list(net.layers) + [net.head]:
            layer.weight.abs_()
    keep = (
        torch.rand(depth.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    ).float() * mask
    with torch.no_grad():
        a, ca = net(depth, mask)
        b, cb = net(depth * keep, keep)
    both = (ca > 0) & (cb > 0)
    rel = ((a - b).abs() / a.abs().clamp(min=1e-3))[both]
    assert rel.median() < 0.1


def test_a_checkpoint_whose_output_covered_nothing_is_not_called_trained(tmp_path):
    import json

    from sparse_depth_node.core.models import SparseConvNet, save_checkpoint

    metrics = {"model": {"step": 3, "coverage": 0.0}, "classic": {"rmse_mm": 3000.0}}
    path = tmp_path / "three_steps.pt"
    save_checkpoint(
        path, "sparseconv", SparseConvNet(), {"steps": 3, "metrics": json.dumps(metrics)}
    )
    c = DepthCompleter(str(path), "cpu")
    assert "BARELY TRAINED: 3 steps, its output covered 0 % of validation" in c.description
    assert "(trained" in DepthCompleter("sparseconv", "cpu").description


def _perturbed_checkpoint(tmp_path):
    """A sparseconv checkpoint whose weights differ from the shipped ones, with provenance."""
    from sparse_depth_node.core.models import SparseConvNet, save_checkpoint

    torch.manual_seed(3)
    path = tmp_path / "mine.pt"
    save_checkpoint(path, "sparseconv", SparseConvNet(), {"steps": 7, "note": "mine"})
    return path


def test_replace_keeps_the_network_and_its_metadata_and_changes_only_what_it_is_told(
    tmp_path, kitti_frame0
):
    path = _perturbed_checkpoint(tmp_path)
    c = DepthCompleter(str(path), "cpu")
    depth, mask = project_points(
        torch.from_numpy(kitti_frame0.points), kitti_frame0.camera, kitti_frame0.t_cam_from_lidar
    )
    for changes in ({"precision": "bf16"}, {"inference_scale": 0.5}, {"channels_last": False}):
        copy = c.replace(**changes)
        fresh = DepthCompleter(**{**asdict(c.options), **changes})  # the same options, loaded anew
        assert copy.meta == c.meta == fresh.meta and copy.meta["provenance"]["note"] == "mine"
        assert copy.options == fresh.options and copy.description == fresh.description
        torch.testing.assert_close(copy.complete(depth, mask), fresh.complete(depth, mask))
    rebuilt = DepthCompleter(**asdict(c.options))
    torch.testing.assert_close(rebuilt.complete(depth, mask), c.complete(depth, mask))
    shipped = DepthCompleter("sparseconv", "cpu").complete(depth, mask)[0]
    assert not torch.equal(shipped, c.complete(depth, mask)[0])  # the options name *this* file
    with pytest.raises(ValueError, match="replace"):
        c.replace(method="nearest")


def test_on_cpu_keeps_precision_resolution_and_the_checkpoints_metadata(tmp_path):
    from sparse_depth_node.ros.fallback import on_cpu

    path = _perturbed_checkpoint(tmp_path)
    c = DepthCompleter(str(path), "cpu", precision="bf16", inference_scale=0.5)
    moved = on_cpu(c)
    assert moved.model is c.model and moved.meta == c.meta
    assert (moved.precision, moved.factor, moved.device.type) == ("bf16", 2, "cpu")
    assert moved.description == c.description
