"""A raw camera (image_rectified: false): the node's projection through K and D against OpenCV's
projectPoints (plumb_bob, rational_polynomial) and fisheye.projectPoints (equidistant), the
cloud back through the lens, and the refusals and notices around it."""

import cv2
import numpy as np
import pytest
import torch
from conftest import SAMPLE

from sparse_depth_node.bag.io import BagKit
from sparse_depth_node.core.camera import PinholeCamera, assumed_rectified
from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.core.settings import resolve
from sparse_depth_node.data.datasets import KittiRawReader
from sparse_depth_node.lab.bench_frames import frame_messages
from sparse_depth_node.msgs.convert import depth_image_to_metres, pointcloud2_to_xyz
from sparse_depth_node.msgs.errors import Dropped
from sparse_depth_node.msgs.frame import run_set

LENSES = {
    "plumb_bob": [-0.3, 0.09, 0.001, -0.002, -0.01],
    "rational_polynomial": [-0.25, 0.08, 0.001, -0.002, 0.0, 0.05, 0.01, 0.0],
    "equidistant": [0.08, -0.03, 0.01, -0.002],
}


@pytest.fixture(scope="module")
def frame():
    return KittiRawReader(SAMPLE).read(0)


def raw_set(frame, model: str):
    """The frame's messages with a raw camera: the KITTI intrinsics as K, ``model``'s D; its
    points and T_camera<-lidar into that camera."""
    cloud, image, info = frame_messages(frame)
    info.distortion_model = model
    info.d = np.array(LENSES[model])
    return cloud, image, info


def opencv_zbuffer(frame, model: str) -> np.ndarray:
    """(H, W) nearest Z of the frame's points where OpenCV's projection puts them."""
    cam = frame.camera
    t = cam.optical_from_reference() @ frame.t_cam_from_lidar
    xyz = frame.points @ t[:3, :3].T + t[:3, 3]
    xyz = xyz[(xyz[:, 2] >= 0.5) & (xyz[:, 2] <= 100.0)]
    k, d = cam.K, np.array(LENSES[model])
    pts = xyz.astype(np.float64)[:, None, :]
    if model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(pts, np.zeros(3), np.zeros(3), k, d)
    else:
        uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), k, d)
    u, v = np.floor(uv.reshape(-1, 2) + 0.5).astype(int).T
    inside = (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    depth = np.full((cam.height, cam.width), np.inf)
    np.minimum.at(depth, (v[inside], u[inside]), xyz[inside, 2])
    return np.where(np.isfinite(depth), depth, 0.0)


@pytest.mark.parametrize("model", list(LENSES))
def test_returns_land_where_opencv_projects_them_through_the_lens(frame, model):
    """At least 95 % of the returns OpenCV puts in the image land on its pixel with the same
    depth within 1 %, and the published cloud lies on each pixel's ray through the lens."""
    values = resolve({"image_rectified": False, "publish_sparse": True, "organized_cloud": True})
    completer = DepthCompleter("nearest", "cpu")
    messages = run_set(
        *raw_set(frame, model),
        lambda *_: frame.camera.optical_from_reference() @ frame.t_cam_from_lidar,
        completer,
        values,
        ["depth/sparse", "depth/image", "depth/points"],
        BagKit(),
    ).messages
    ours = depth_image_to_metres(messages["depth/sparse"])
    truth = opencv_zbuffer(frame, model)
    returns = truth > 0
    same = returns & (np.abs(ours - truth) <= 0.01 * truth)
    assert returns.sum() > 10_000 and same.sum() >= 0.95 * returns.sum(), (
        same.sum() / returns.sum()
    )
    # the organised cloud: pixel (v, u)'s point projects back onto (u, v) through the lens
    cloud = pointcloud2_to_xyz(messages["depth/points"])
    h, w = frame.camera.height, frame.camera.width
    v, u = np.mgrid[0:h, 0:w].reshape(2, -1)
    have = np.isfinite(cloud).all(axis=1)
    pts = cloud[have].astype(np.float64)[:, None, :]
    k, d = frame.camera.K, np.array(LENSES[model])
    if model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(pts, np.zeros(3), np.zeros(3), k, d)
    else:
        uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), k, d)
    uv = uv.reshape(-1, 2)
    assert have.sum() > 100_000
    assert np.abs(uv - np.c_[u[have], v[have]]).max() < 0.01


def test_a_raw_camera_without_a_known_model_is_refused_with_the_reason(frame):
    cloud, image, info = raw_set(frame, "plumb_bob")
    info.distortion_model = "thin_prism"
    with pytest.raises(Dropped) as refused:
        run_set(
            cloud, image, info, lambda *_: frame.t_cam_from_lidar,
            DepthCompleter("nearest", "cpu"), resolve({"image_rectified": False}),
            ["depth/image"], BagKit(),
        )  # fmt: skip
    assert refused.value.counter == "rejected_input"
    assert "distortion_model is 'thin_prism'" in str(refused.value)
    info.d = np.zeros(5)  # no distortion: the pinhole K, whatever the model says
    camera = PinholeCamera.from_camera_info(info, rectified=False)
    assert camera.distortion == "" and camera.fx == frame.camera.fx


def test_a_distorted_camera_info_on_a_topic_that_looks_raw_is_said_once_assumed_rectified(frame):
    _, _, info = raw_set(frame, "plumb_bob")
    line = assumed_rectified(info, "/camera/image_raw", True)
    assert "/camera/image_raw" in line and "set image_rectified: false" in line
    assert assumed_rectified(info, "/camera/image_rect_color", True) is None
    assert assumed_rectified(info, "/camera/image_raw", False) is None
    info.d = np.zeros(5)
    assert assumed_rectified(info, "/camera/image_raw", True) is None


def test_a_strong_lens_cannot_fold_points_from_outside_the_view_into_it():
    """Far off axis a plumb_bob polynomial with k1 < 0 turns back: a point there would land in
    the image; the projection keeps only points whose ray lies within the image's."""
    camera = PinholeCamera(
        500, 500, 320, 240, 640, 480, distortion="plumb_bob", coeffs=(-0.4, 0.0, 0.0, 0.0, 0.0)
    )
    from sparse_depth_node.core.geometry import distort, project_points

    far = torch.tensor([[1.8, 0.0, 1.0]])  # X/Z = 1.8: beyond the image's edge ray (0.75)
    xd, _ = distort(far[:, 0], far[:, 1], camera.distortion, camera.coeffs)
    assert 0 <= camera.fx * float(xd) + camera.cx < camera.width  # folded back in view
    depth, mask = project_points(far, camera, np.eye(4))
    assert mask.sum() == 0
