"""The classical fillers (IP-Basic in OpenCV): behaviour on small hand-made depth images, and
the bundled sample's frame 0 against values stored from the reference implementation
(kujason/ip_basic, run beside the project; see ip_basic_reference.json's "source")."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLE

from sparse_depth_node.core.classic import (
    CROP_MARGIN,
    FILLS,
    cross_kernel,
    diamond_kernel,
    fill_fast,
    fill_multiscale,
    on_support,
)
from sparse_depth_node.core.geometry import project_points
from sparse_depth_node.data.datasets import KittiRawReader

REFERENCE = json.loads((Path(__file__).with_name("ip_basic_reference.json")).read_text())


def test_kernels_are_the_papers_diamond_and_crosses():
    assert diamond_kernel(5).tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]
    cross = cross_kernel(7)
    assert cross.sum() == 13 and cross[3].all() and cross[:, 3].all()


@pytest.mark.parametrize("fill", [fill_fast, fill_multiscale])
def test_holes_between_scan_lines_are_filled_with_the_walls_depth(fill):
    depth = np.zeros((60, 80), np.float32)
    depth[10::4, ::3] = 12.5  # a fronto-parallel wall seen by scan lines, 3 px gaps
    out = fill(depth)
    np.testing.assert_allclose(out[12:56, 2:78], 12.5, atol=1e-4)


@pytest.mark.parametrize("method", ["classic", "classic-multiscale"])
def test_nothing_is_invented_above_the_top_scan_line_unless_extrapolating(method):
    depth = np.zeros((60, 80), np.float32)
    depth[20::2, ::2] = 30.0
    out = FILLS[method](depth, 100.0)
    assert np.all(out[:15] == 0) and np.all(out[24:] > 0)
    full = FILLS["classic-full"](depth, 100.0)
    assert np.all(full > 0)
    np.testing.assert_allclose(full[:15], 30.0, atol=1e-3)  # the top value, extended


@pytest.mark.parametrize("fill", [fill_fast, fill_multiscale])
def test_the_nearer_surface_wins_at_an_edge(fill):
    depth = np.zeros((30, 30), np.float32)
    depth[::2, ::2] = 40.0
    depth[10:20:2, 10:20:2] = 5.0  # a near object in front of a far wall
    out = fill(depth)
    assert out[15, 15] == pytest.approx(5.0, abs=1e-3)
    assert out[2, 2] == pytest.approx(40.0, abs=1e-3)


def test_multiscale_removes_a_lone_outlier_that_the_fast_fill_keeps():
    depth = np.full((40, 40), 25.0, np.float32)  # a dense wall at 25 m
    depth[20, 20] = 3.0  # one spurious near return
    assert fill_multiscale(depth)[20, 20] == pytest.approx(25.0, abs=1e-3)
    assert fill_fast(depth)[20, 20] < 24.0  # the fast fill has no outlier removal


@pytest.mark.parametrize("method", sorted(REFERENCE["methods"]))
def test_sample_frame_equals_the_reference_implementation(method):
    f = KittiRawReader(SAMPLE).read(0)
    depth, _ = project_points(torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0)
    out = FILLS[method](depth[0, 0].numpy(), 100.0)
    ref = REFERENCE["methods"][method]
    rows, cols = np.array(REFERENCE["pixels"]).T
    np.testing.assert_allclose(out[rows, cols], ref["values_m"], atol=1e-3)
    if method == "classic-full":  # the reference leaves a hole wider than its 31 px dilation
        assert (out > 0.1).all() and ref["filled_pixels"] < out.size
    else:
        assert int((out > 0.1).sum()) == ref["filled_pixels"]
        assert float(out[out > 0.1].sum(dtype=np.float64)) == pytest.approx(ref["sum_m"], rel=1e-6)


@pytest.mark.parametrize("fill", [fill_fast, fill_multiscale])
def test_the_support_crop_gives_the_whole_images_result(fill):
    f = KittiRawReader(SAMPLE).read(1)
    depth, _ = project_points(torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0)
    d = depth[0, 0].numpy()
    assert (d > 0).any(axis=1).argmax() > 2 * CROP_MARGIN  # the crop does leave rows out
    np.testing.assert_array_equal(on_support(lambda x: fill(x, 100.0), d), fill(d, 100.0))
