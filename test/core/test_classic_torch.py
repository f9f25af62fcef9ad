"""The classical fills in PyTorch (core/classic_torch.py, what a GPU runs) against the OpenCV code
they replace (core/classic.py), on every bundled frame and fixture: bit for bit where the
operation is a maximum, a minimum or a median, within 1 mm where it is a float blur. Run here on
the CPU, so that CI checks them; the same code on CUDA is checked by the ``cuda`` test below."""

import cv2
import numpy as np
import pytest
import torch

from sparse_depth_node.core import classic, classic_torch
from sparse_depth_node.core.geometry import project_points
from sparse_depth_node.data.datasets import DdadReader, KittiRawReader, NuscenesReader

TOLERANCE_M = 1e-3


@pytest.fixture(scope="module")
def sparse_frames(kitti_dir, ddad_dir, nuscenes_dir) -> list[torch.Tensor]:
    """(1, 1, H, W) sparse depth of the 3 sample frames, the 2 DDAD and the nuScenes fixture."""
    kitti = KittiRawReader(kitti_dir)
    frames = [kitti.read(i) for i in kitti.frame_ids()]
    frames += [DdadReader(ddad_dir / s).read(0) for s in ("scene_01", "scene_02")]
    frames.append(NuscenesReader(nuscenes_dir).read("CAM_FRONT"))
    return [
        project_points(torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0)[0]
        for f in frames
    ]


def as_torch(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))[None, None]


def test_morphology_and_median_are_opencvs_bit_for_bit(sparse_frames):
    """On each frame's inverted depth (what the fills filter), every max / min / median
    primitive, including the diamond composed of crosses and the rectangles of two 1-D pools."""
    for depth in sparse_frames:
        x = classic.invert(depth[0, 0].numpy(), 100.0)
        t = as_torch(x)
        pairs = [
            (cv2.dilate(x, classic.diamond_kernel(5)), classic_torch.dilate_diamond5(t)),
            (
                cv2.morphologyEx(x, cv2.MORPH_CLOSE, classic.full_kernel(5)),
                classic_torch.close_full(t, 5),
            ),
            (cv2.erode(x, classic.full_kernel(7)), classic_torch.erode_full(t, 7)),
            (cv2.medianBlur(x, 5), classic_torch.median5(t)),
            (classic.extend_to_top(x), classic_torch.extend_to_top(t)),
        ]
        pairs += [
            (cv2.dilate(x, classic.cross_kernel(k)), classic_torch.dilate_cross(t, k))
            for k in (3, 5, 7)
        ]
        pairs += [
            (cv2.dilate(x, classic.full_kernel(k)), classic_torch.dilate_full(t, k))
            for k in (7, 9, 31)
        ]
        for i, (ref, got) in enumerate(pairs):
            assert np.array_equal(ref, got[0, 0].numpy()), i


def test_blurs_are_opencvs_within_float_rounding(sparse_frames):
    x = classic.invert(sparse_frames[0][0, 0].numpy(), 100.0)
    x = cv2.dilate(x, classic.full_kernel(7))  # a filled image: every blur weight matters
    t = as_torch(x)
    np.testing.assert_allclose(
        classic_torch.gaussian5(t)[0, 0].numpy(), cv2.GaussianBlur(x, (5, 5), 0), rtol=1e-6
    )
    for sigma_color in (0.5, 1.5):
        ref = cv2.bilateralFilter(x, 5, sigma_color, 2.0)
        got = classic_torch.bilateral5(t, sigma_color, 2.0)[0, 0].numpy()
        np.testing.assert_allclose(got, ref, atol=5e-4)
    flat = np.full((20, 30), 7.0, np.float32)  # one value: OpenCV returns the image as it is
    assert np.array_equal(classic_torch.bilateral5(as_torch(flat), 0.5, 2.0)[0, 0].numpy(), flat)


def test_every_fill_is_opencvs_within_1_mm_on_every_frame(sparse_frames):
    for depth in sparse_frames:
        for name, fill in classic.FILLS.items():
            ref = fill(depth[0, 0].numpy(), 100.0)
            got = classic_torch.FILLS[name](depth, 100.0)[0, 0].numpy()
            assert np.array_equal(ref > 0, got > 0), name  # the same pixels get a depth
            assert np.abs(ref - got).max() <= TOLERANCE_M, name


def test_the_refinement_is_opencvs_bit_for_bit(sparse_frames):
    """visible_returns and the scan-line interpolation (cummax / cummin instead of numpy's
    accumulate, the same float32 arithmetic) on the OpenCV multi-scale fill."""
    for depth in sparse_frames:
        d = depth[0, 0].numpy()
        fill = classic.fill_multiscale(d)
        ref = classic.refine(fill, d)
        got = classic_torch.refine(as_torch(fill), depth)[0, 0].numpy()
        assert np.array_equal(ref, got)


def test_bands_batches_and_empty_images_give_the_single_image_result(sparse_frames, monkeypatch):
    """A batch fills each image as alone (an empty image beside a full one: the extrapolation
    loop ends), and window filters run in bands of rows give the result of one band (the
    median bit for bit; the bilateral filter's sums may round differently)."""
    depth = sparse_frames[0]
    alone = classic_torch.FILLS["classic-full"](depth, 100.0)
    batch = classic_torch.FILLS["classic-full"](torch.cat([depth, torch.zeros_like(depth)]), 100.0)
    assert torch.equal(batch[:1], alone) and not batch[1].any()
    x = classic_torch.dilate_full(classic_torch.invert(depth, 100.0), 7)
    one_band = classic_torch.median5(x), classic_torch.bilateral5(x, 0.5, 2.0)
    monkeypatch.setattr(classic_torch, "BAND_PIXELS", 5000)  # about 4 rows a band
    assert torch.equal(classic_torch.median5(x), one_band[0])
    torch.testing.assert_close(
        classic_torch.bilateral5(x, 0.5, 2.0), one_band[1], rtol=1e-6, atol=0
    )


@pytest.mark.cuda
def test_on_cuda_every_fill_is_opencvs_within_1_mm(sparse_frames):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none on this machine); the same code is tested on the CPU")
    for depth in sparse_frames:
        for name in classic.FILLS:
            ref = classic.fill_tensor(name, depth, 100.0)
            got = classic.fill_tensor(name, depth.cuda(), 100.0).cpu()
            assert torch.equal(ref > 0, got > 0), name
            assert float((ref - got).abs().max()) <= TOLERANCE_M, name
