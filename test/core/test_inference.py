"""Faster inference: cropping to the LiDAR's support (exact), mask-aware resampling, reduced
precision, the allocator setting; and the node's parameters for them."""

import pytest
import torch

from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.core.geometry import project_points
from sparse_depth_node.core.inference import (
    autocast_dtype,
    downsample_sparse,
    support_window,
    upsample_dense,
)
from sparse_depth_node.core.runtime import retain_freed_memory
from sparse_depth_node.core.settings import scale_factor


def projected(frame):
    return project_points(
        torch.from_numpy(frame.points), frame.camera, frame.t_cam_from_lidar, 0.5, 100.0
    )


def test_support_window_is_the_valid_bounding_box_plus_margin_clipped_and_aligned():
    mask = torch.zeros(1, 1, 20, 30)
    mask[0, 0, 7, 11] = mask[0, 0, 9, 25] = 1
    assert support_window(mask, 3) == (4, 13, 8, 29)
    assert support_window(mask, 3, multiple=4) == (4, 13, 8, 29)
    assert support_window(mask, 2, multiple=4) == (4, 12, 8, 28)  # 5 -> 4, 9 -> 8
    assert support_window(mask, 10) == (0, 20, 1, 30)
    assert support_window(torch.zeros(1, 1, 5, 5), 3) == (0, 0, 0, 0)


@pytest.mark.parametrize("method", ["sparseconv", "multiscale"])
def test_network_on_the_support_window_equals_the_network_on_the_whole_image(kitti_frame0, method):
    depth, mask = projected(kitti_frame0)
    completer = DepthCompleter(method, "cpu", allow_untrained=True)
    y0, _, _, _ = support_window(mask, completer.model.support_margin)
    assert y0 > 0  # KITTI: no returns in the top rows, so the window is smaller than the image
    dense, conf = completer.complete(depth, mask)
    with torch.inference_mode():
        full, full_conf = completer.model(depth, mask)
    full = torch.where(full_conf > 0, full.clamp(min=0), torch.zeros_like(full))
    torch.testing.assert_close(conf, full_conf)
    torch.testing.assert_close(dense, full, atol=1e-4, rtol=1e-5)


def test_downsample_keeps_the_nearest_valid_depth_of_each_block():
    depth = torch.tensor(
        [[[[4.0, 9.0, 0.0, 0.0, 6.0], [3.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 7.0, 0.0, 0.0]]]]
    )
    mask = (depth > 0).float()
    mask[0, 0, 1, 0] = 0  # 3.0 is not a measurement: ignored
    low, low_mask = downsample_sparse(depth, mask, 2)
    assert low.tolist() == [[[[4.0, 0.0, 6.0], [0.0, 7.0, 0.0]]]]
    assert low_mask.tolist() == [[[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]]
    same = downsample_sparse(depth, mask, 1)
    assert same[0] is depth and same[1] is mask


def test_upsample_never_blends_depth_with_an_empty_pixel():
    depth = torch.tensor([[[[5.0, 0.0], [0.0, 8.0]]]])
    conf = (depth > 0).float()
    up, up_conf = upsample_dense(depth, conf, (4, 4))
    values = set(up.unique().tolist())
    assert values <= {0.0, 5.0, 8.0} | {v for v in values if 5.0 < v < 8.0}
    assert up[0, 0, 0, 0] == 5.0 and up[0, 0, 3, 3] == 8.0
    assert torch.all((up > 0) == (up_conf > 0))
    const, _ = upsample_dense(torch.full((1, 1, 3, 5), 2.5), torch.ones(1, 1, 3, 5), (6, 10))
    torch.testing.assert_close(const, torch.full((1, 1, 6, 10), 2.5))


def test_scale_and_precision_options_are_validated():
    assert [scale_factor(s) for s in (1.0, 0.5, 1 / 3, 0.25)] == [1, 2, 3, 4]
    for bad in (0.0, 0.3, 1.5, -0.5):
        with pytest.raises(ValueError, match="inference_scale"):
            scale_factor(bad)
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="CUDA"):
        autocast_dtype("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision"):
        DepthCompleter("nearest", "cpu", precision="fp8")


def test_half_resolution_and_bf16_stay_close_to_full_precision_on_a_real_frame(kitti_frame0):
    depth, mask = projected(kitti_frame0)
    ref, _ = DepthCompleter("sparseconv", "cpu").complete(depth, mask)
    bf16, _ = DepthCompleter("sparseconv", "cpu", precision="bf16").complete(depth, mask)
    both = (ref > 0) & (bf16 > 0)
    assert torch.equal(ref > 0, bf16 > 0)
    assert (bf16 - ref)[both].abs().mean() < 0.05  # metres
    half = DepthCompleter("sparseconv", "cpu", inference_scale=0.5)
    low, conf = half.complete(depth, mask)
    assert low.shape == ref.shape and conf.shape == ref.shape
    both = (ref > 0) & (low > 0)
    assert both.sum() > 0.9 * (ref > 0).sum()
    assert (low - ref)[both].abs().median() < 0.5
    assert "1/2 resolution" in half.description


def test_retain_freed_memory_takes_effect_with_glibc():
    assert retain_freed_memory() is True


@pytest.mark.parametrize("method", ["sparseconv", "multiscale", "guided"])
def test_large_windows_run_in_bands_with_the_same_result(kitti_frame0, method, monkeypatch):
    """The bands see their network's receptive radius around them (and ``guided`` the
    classical fill of the whole window), so banding changes nothing."""
    import sparse_depth_node.core.completion as completion

    depth, mask = projected(kitti_frame0)
    rgb = completion.image_tensor(kitti_frame0.rgb)
    completer = DepthCompleter(method, "cpu")
    whole, whole_conf = completer.complete(depth, mask, rgb)
    calls = []
    forward = completer.model.forward
    monkeypatch.setattr(
        completer.model, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k)
    )
    monkeypatch.setattr(completion, "BAND_PIXELS", 40 * 1242)  # bands of 40 rows here
    banded, banded_conf = completer.complete(depth, mask, rgb)
    assert len(calls) >= 5  # it did run in bands
    torch.testing.assert_close(banded, whole, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(banded_conf, whole_conf, atol=1e-5, rtol=1e-5)
