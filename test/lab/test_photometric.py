"""The whole-image evaluation's parts against oracles: the warp reproduces an image exactly
for a known pose and depth, a wrong depth scores worse; the odometry recovers a known motion
of a rendered scene; the views and the table on the bundled sample."""

import numpy as np
import odometry_oracle
import pytest
import torch
from conftest import SAMPLE
from photometric_oracle import SHIFT, H, W, Z, plane_pair

from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.data.datasets import KittiRawReader
from sparse_depth_node.lab.odometry import motion, target
from sparse_depth_node.lab.photometric import (
    identity_error,
    photometric_error,
    reprojection,
    ssim,
    warp,
)
from sparse_depth_node.lab.views import TemporalViews, returns_target
from sparse_depth_node.lab.whole_image import evaluate_whole_image, format_whole_image


def test_a_known_pose_and_depth_reproduce_the_image_and_a_wrong_depth_scores_worse():
    source, target, k, t = plane_pair()
    depth = torch.full((1, 1, H, W), Z)
    warped, valid = warp(source, depth, k, k, t)
    assert valid[..., : W - SHIFT].all() and not valid[..., W - SHIFT + 1 :].any()
    torch.testing.assert_close(warped[..., : W - SHIFT], target[..., : W - SHIFT])
    err = photometric_error(target, warped)
    inner = (slice(None), slice(None), slice(1, H - 1), slice(1, W - SHIFT - 1))
    assert float(err[inner].abs().max()) < 1e-5  # exact where the 3 x 3 SSIM stays inside
    for wrong in (Z * 1.05, Z / 1.05, Z * 1.5):
        w2, v2 = warp(source, torch.full_like(depth, wrong), k, k, t)
        assert float(photometric_error(target, w2)[inner].mean()) > 0.01, wrong  # 0: exact
    best, ok = reprojection(target, depth, k, [(source, t)])
    identity = identity_error(target, [source])
    assert float(best[inner].max()) < 1e-5 and bool(ok[inner].all())
    assert float(identity[inner].mean()) > 0.05  # the unwarped source does not explain it
    assert torch.allclose(ssim(target, target), torch.ones_like(target))


def test_no_depth_or_behind_the_camera_is_not_valid():
    source, _, k, t = plane_pair()
    depth = torch.full((1, 1, H, W), Z)
    depth[..., :10] = 0.0
    t_back = t.clone()
    t_back[2, 3] = -2 * Z  # the plane ends up behind the source camera
    assert not warp(source, depth, k, k, t)[1][..., :10].any()
    assert not warp(source, depth, k, k, t_back)[1].any()


def test_a_pixel_is_scored_only_where_its_window_warped_and_then_whatever_its_neighbours():
    """The error of a pixel next to one without depth would include that neighbour's warped
    garbage: such a pixel is not scored, and every scored pixel's error is the same as with
    the neighbour's depth given (so a method is not judged on the pixels it leaves empty)."""
    source, target, k, t = plane_pair()
    full = torch.full((1, 1, H, W), Z)
    holed = full.clone()
    holed[..., 20:30, 40:50] = 0.0
    e_full, ok_full = reprojection(target, full, k, [(source, t)])
    e_holed, ok_holed = reprojection(target, holed, k, [(source, t)])
    ring = torch.zeros_like(ok_full)
    ring[..., 19:31, 39:51] = True
    assert not ok_holed[ring].any() and ok_holed[ok_full & ~ring].all()
    torch.testing.assert_close(e_holed[ok_holed], e_full[ok_holed], rtol=0, atol=0)
    wrong = holed.clone()
    wrong[..., 20:30, 40:50] = 3.0  # a wrong depth inside is scored, and worse
    e_wrong, ok_wrong = reprojection(target, wrong, k, [(source, t)])
    inside = torch.zeros_like(ok_full)
    inside[..., 21:29, 41:49] = True
    assert ok_wrong[inside].all() and float(e_wrong[inside].mean()) > 0.05


@pytest.fixture(scope="module")
def sample():
    return KittiRawReader(SAMPLE)


def _known_motion() -> np.ndarray:
    import cv2

    t = np.eye(4)
    t[:3, :3] = cv2.Rodrigues(np.array([[0.004], [0.02], [0.003]]))[0]  # ~1.2 degrees of yaw
    t[:3, 3] = [0.05, -0.02, -0.5]  # T_view<-first: the camera drove 0.5 m forward
    return t


def test_odometry_recovers_a_known_motion_and_takes_its_scale_from_the_returns():
    """A rendered ground and wall: the motion comes back within 1 % of its length and 0.5
    mrad; returns 5 % farther give a motion 5 % longer (the scale is the LiDAR's, nothing
    else's); an image without texture gives no motion rather than a guess."""
    t = _known_motion()
    first, view, points = odometry_oracle.scene(t)
    k = odometry_oracle.K
    got = motion(target(points, k, first), k, view)
    assert got.inliers > 0.8 * len(points)
    assert np.linalg.norm(got.transform[:3, 3] - t[:3, 3]) < 0.005  # 1 % of 0.5 m
    assert np.abs(got.transform[:3, :3] - t[:3, :3]).max() < 5e-4
    farther = motion(target(points * 1.05, k, first), k, view)
    np.testing.assert_allclose(farther.transform[:3, 3], 1.05 * got.transform[:3, 3], rtol=1e-3)
    assert motion(target(points, k, np.full_like(first, 128)), k, view) is None


def test_odometry_of_real_frames_chains_and_inverts(sample):
    """The sample's frames 0, 1, 2 (the camera ~0.25 m forward per frame): 0->1 then 1->2
    agrees with 0->2 directly within 2 % of its length, and 1->0 undoes 0->1 within 1 cm."""
    frames = [sample.read(i) for i in range(3)]

    def step(i: int, j: int) -> np.ndarray:
        return motion(returns_target(frames[i]), frames[i].camera.K, frames[j].rgb).transform

    direct = step(0, 2)
    assert -0.55 < direct[2, 3] < -0.45 and np.linalg.norm(direct[:2, 3]) < 0.03  # forward
    chained = step(1, 2) @ step(0, 1)
    assert np.linalg.norm(chained[:3, 3] - direct[:3, 3]) < 0.02 * np.linalg.norm(direct[:3, 3])
    assert np.linalg.norm((step(1, 0) @ step(0, 1))[:3, 3]) < 0.01


def test_temporal_views_take_the_nearest_neighbour_that_moved_enough(sample):
    """~0.25 m per frame: with the default 0.3 m, frame 0 needs two frames and frame 1 has no
    view (the frames beside it are too near, none is beyond); with 0.2 m, one frame will do."""
    views = TemporalViews(sample)
    first = views.views(0)
    assert [v.name for v in first] == ["t+2"]
    assert -0.55 < first[0].t_view_target[2, 3] < -0.45  # forward along the optical axis
    assert views.views(1) == []
    assert [v.name for v in TemporalViews(sample, min_baseline=0.2).views(1)] == ["t-1", "t+1"]


def test_whole_image_table_on_the_sample_scores_the_sanity_rows_worse(sample):
    views = TemporalViews(sample)
    frames = [(views.frame(0), views.views(0)), (views.frame(1), views.views(1))]
    names = ("classic-multiscale", "classic-refined", "nearest")
    methods = {n: DepthCompleter(n, "cpu") for n in names}
    shown = []
    result = evaluate_whole_image(frames, methods, show=lambda f, d, p: shown.append(f.name))
    assert result["frames"] == 1 and shown == [frames[0][0].name]  # frame 1 has no view
    m = result["methods"]
    for row in ("x 1.05", "x 0.95", "blurred 3 px"):
        for region in ("all", "between", "edges"):
            row_name = f"sanity: classic-multiscale {row}"
            assert m[row_name][region] > m["classic-multiscale"][region], (row, region)
    assert m["nearest"]["kept"] == 1.0  # nearest keeps every input pixel as it is
    assert 0.5 < m["classic-multiscale"]["kept"] < 0.9 < m["classic-refined"]["kept"] < 1.0
    # the refinement interpolates between scan lines: fewer row-to-row steps, same pixels
    assert m["classic-refined"]["striping"] < 0.9 * m["classic-multiscale"]["striping"]
    assert result["pixels"] > 50_000
    assert "ratios to classic-multiscale" in format_whole_image(result)
    with pytest.raises(ValueError, match="no frame has another view"):
        evaluate_whole_image(frames[1:], methods)


@pytest.mark.validation
def test_on_full_sweeps_the_sanity_rows_score_worse_and_the_default_beats_guided(full_data):
    """Two moving frames of the KITTI drive with their full sweeps, a view on each side: the
    scaled and the blurred depth score worse than the depth they come from, in every region;
    the shipped default (classic-refined) agrees with the other views better than the guided
    network it replaced, over all pixels and between returns, and as well as the classical
    fill it refines (within 1 %), with more of the returns kept and fewer stripes
    (docs/EVALUATION.md)."""
    from sparse_depth_node.core.methods import DEFAULT_METHOD
    from sparse_depth_node.data.datasets import open_dataset

    views = TemporalViews(open_dataset(full_data / "kitti_raw_2011_09_26", "kitti-raw"))
    frames = [(views.frame(i), views.views(i)) for i in (4, 12)]
    assert all(len(v) == 2 for _, v in frames)
    names = (DEFAULT_METHOD, "guided", "classic-multiscale")
    result = evaluate_whole_image(frames, {n: DepthCompleter(n, "cpu") for n in names})
    m = result["methods"]
    for row in ("x 1.05", "x 0.95", "blurred 3 px"):
        for region in ("all", "between", "edges"):
            assert m[f"sanity: {DEFAULT_METHOD} {row}"][region] > m[DEFAULT_METHOD][region]
    for region in ("all", "between"):
        assert m[DEFAULT_METHOD][region] < m["guided"][region], region
    fill = m["classic-multiscale"]
    for region in ("all", "between", "edges"):
        assert m[DEFAULT_METHOD][region] < 1.01 * fill[region], region
    assert m[DEFAULT_METHOD]["kept"] > 0.95 > fill["kept"]
    assert m[DEFAULT_METHOD]["striping"] < 0.9 * fill["striping"]


def test_evaluate_photometric_without_another_view_is_one_line_and_status_2(capsys):
    """The sample's frame 1 has no neighbour 0.3 m away (the default): ~0.25 m each side."""
    from sparse_depth_node.cli import main

    argv = ["evaluate", "--data", str(SAMPLE), "--format", "kitti-raw", "--quiet", "--frames", "1"]
    code = main([*argv, "--protocol", "photometric", "--models", "nearest"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no frame has another view" in err[0]


def test_stereo_view_is_the_other_camera_a_baseline_to_the_side(tmp_path, sample):
    """KITTI's cameras 2 and 3 are ~0.53 m apart along x, rectified (no rotation); a drive
    without image_03 has no stereo view."""
    import shutil

    from sparse_depth_node.lab.views import stereo_view

    frame = sample.read(0)
    assert stereo_view(SAMPLE, frame) is None
    drive = tmp_path / "drive"
    shutil.copytree(SAMPLE, drive)
    shutil.copytree(drive / "image_02", drive / "image_03")  # stand-in pixels, real calibration
    view = stereo_view(drive, frame)
    t = view.t_view_target
    np.testing.assert_allclose(t[:3, :3], np.eye(3), atol=1e-12)
    assert 0.5 < -t[0, 3] < 0.56 and abs(t[1, 3]) < 0.01 and abs(t[2, 3]) < 0.01
    assert view.name == "stereo" and view.rgb.shape == frame.rgb.shape
