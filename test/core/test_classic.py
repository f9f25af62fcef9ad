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
    interpolate_scanlines,
    on_support,
    refine,
    visible_returns,
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


def tilted_plane(h: int = 60, w: int = 40) -> np.ndarray:
    """The depth (H, W) metres of the ground 3 m below a pinhole camera (fy = 100, horizon 60 rows
    above the image): z = 100 * 3 / (v + 60), so 1 / z is affine in the row v."""
    v = np.arange(h, dtype=np.float64)[:, None] + 60.0
    return np.broadcast_to(300.0 / v, (h, w)).astype(np.float32)


def test_between_scan_lines_of_a_plane_the_refinement_is_the_plane():
    """Oracle: the plane's own depth. Scan lines every 4 rows (adjacent ones within 7 % of
    each other); the multi-scale fill between them is a staircase (stripes), the refinement
    reproduces the plane."""
    plane = tilted_plane()
    sparse = np.zeros_like(plane)
    sparse[2::4] = plane[2::4]
    inside = (slice(2, 59), slice(3, 37))  # between the first and the last scan line
    fill = fill_multiscale(sparse)
    refined = refine(fill, sparse)
    assert np.abs(fill - plane)[inside].max() > 0.05  # the staircase the test can see
    np.testing.assert_allclose(refined[inside], plane[inside], rtol=1e-5)
    np.testing.assert_array_equal(refined[sparse > 0], sparse[sparse > 0])  # returns kept
    column = (slice(2, 59), 20)  # down the image the ground comes nearer at every row
    assert np.all(np.diff(refined[column]) < 0) and np.any(np.diff(fill[column]) == 0)


def test_a_return_hidden_behind_a_nearer_one_is_neither_kept_nor_interpolated_from():
    """Parallax: a wall return at 20 m two pixels from a pole's return at 5 m is background
    the camera does not see; an isolated return, and both sides of an edge farther apart than
    3 px, are seen."""
    depth = np.zeros((30, 30), np.float32)
    depth[10, 10], depth[10, 12] = 5.0, 20.0  # pole, hidden wall
    depth[10, 20] = 20.0  # wall, 8 px away from the pole: seen
    depth[25, 5] = 7.0
    seen = visible_returns(depth)
    assert seen[10, 10] and not seen[10, 12] and seen[10, 20] and seen[25, 5]
    assert seen.sum() == 3
    fill = np.full_like(depth, 9.0)
    out = refine(fill, depth)
    assert out[10, 12] == 9.0 and out[10, 10] == 5.0 and out[10, 20] == 20.0


def test_returns_of_two_surfaces_are_not_interpolated_across():
    """A depth edge between two scan lines (10 m above, 14 m below: 40 % apart) keeps the
    fill's foreground-first edge; the same gap on one surface (10 and 10.5 m) is interpolated."""
    depth = np.zeros((20, 4), np.float32)
    depth[4, :2], depth[12, :2] = 10.0, 14.0
    depth[4, 2:], depth[12, 2:] = 10.0, 10.5
    fill = np.full_like(depth, 10.0)
    out = interpolate_scanlines(fill, depth, visible_returns(depth))
    np.testing.assert_array_equal(out[5:12, :2], 10.0)
    expected = 1.0 / ((1 - np.arange(1, 8) / 8) / 10.0 + (np.arange(1, 8) / 8) / 10.5)
    np.testing.assert_allclose(out[5:12, 2], expected, rtol=1e-6)
