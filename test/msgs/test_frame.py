"""The frame path without DDS: one synchronised set of messages in, the node's outputs out,
equal to the per-frame pipeline's result; malformed sets are dropped with a counter name."""

import dataclasses

import numpy as np
import pytest
from conftest import SAMPLE

from sparse_depth_node.bag.io import BagKit
from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.core.pipeline import process_frame
from sparse_depth_node.core.settings import resolve
from sparse_depth_node.data.datasets import KittiRawReader
from sparse_depth_node.lab.bench_frames import frame_messages
from sparse_depth_node.msgs.convert import pointcloud2_to_xyz
from sparse_depth_node.msgs.errors import Dropped
from sparse_depth_node.msgs.frame import run_set
from sparse_depth_node.msgs.outputs import OUTPUTS, enabled_outputs


@pytest.fixture(scope="module")
def sample_frame():
    return KittiRawReader(SAMPLE).read(0)


def test_the_default_settings_enable_depth_its_camera_info_and_the_cloud():
    assert enabled_outputs(resolve()) == ["depth/image", "depth/camera_info", "depth/points"]
    everything = resolve({f"publish_{k}": True for k in ("confidence", "sparse", "image_raw")})
    assert enabled_outputs(everything) == [o.topic for o in OUTPUTS]
    assert "depth/points" not in enabled_outputs(resolve({"publish_cloud": False}))


def test_a_set_of_messages_gives_the_pipelines_depth_restamped_as_the_image(sample_frame):
    f = sample_frame
    completer = DepthCompleter("nearest", "cpu")
    values = resolve(
        {"publish_confidence": True, "publish_sparse": True, "publish_image_raw": True}
    )
    msgs = frame_messages(f, stamp_ns=1_500_000_000)
    known = lambda *_: f.t_cam_from_lidar  # noqa: E731
    out = run_set(*msgs, known, completer, values, enabled_outputs(values), BagKit())
    messages, timings = out.messages, out.timings
    assert out.empty is None
    info = msgs[2]
    assert sorted(messages) == sorted(o.topic for o in OUTPUTS)
    ref = process_frame(f.points, f.camera, f.t_cam_from_lidar, completer, f.rgb)
    depth = messages["depth/image"]
    got = np.frombuffer(depth.data.tobytes(), "<f4").reshape(f.camera.height, f.camera.width)
    np.testing.assert_array_equal(np.nan_to_num(got, nan=0.0), ref.dense_depth)
    for msg in messages.values():
        assert msg.header.stamp.sec == 1 and msg.header.stamp.nanosec == 500_000_000
        assert msg.header.frame_id == "camera"
    assert list(messages["depth/camera_info"].p) == list(info.p)
    assert messages["depth/points"].width == len(ref.cloud)
    assert {"cloud_msg_to_array", "image_msg_to_array", "complete", "encode depth/points"} <= set(
        timings
    )


@pytest.mark.cuda
@pytest.mark.parametrize("model", ["classic-refined", "guided"])
def test_on_cuda_the_frame_path_publishes_the_cpus_messages(model, kitti_dir):
    """Every output made and encoded on the GPU (fills in torch, message bytes on the device,
    one copy each) decodes to the CPU's, within 1 mm, on every sample frame."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none on this machine); the CPU path is tested above")
    values = resolve({"publish_confidence": True, "publish_sparse": True, "organized_cloud": True})
    topics, kit = enabled_outputs(values), BagKit()
    reader = KittiRawReader(kitti_dir)
    for i in reader.frame_ids():
        f = reader.read(i)
        out = {}
        for device in ("cpu", "cuda"):
            completer = DepthCompleter(model, device)
            msgs = frame_messages(f)
            out[device] = run_set(
                *msgs, lambda *_: f.t_cam_from_lidar, completer, values, topics, kit
            ).messages
        for topic in ("depth/image", "depth/sparse", "depth/confidence"):
            a, b = (np.frombuffer(out[d][topic].data.tobytes(), "<f4") for d in ("cpu", "cuda"))
            both = np.isfinite(a) & np.isfinite(b)
            assert both.sum() >= 0.999 * np.isfinite(a).sum(), topic
            assert np.abs(a - b)[both].max() <= 1e-3, topic
        a, b = (pointcloud2_to_xyz(out[d]["depth/points"]) for d in ("cpu", "cuda"))
        both = np.isfinite(a).all(1) & np.isfinite(b).all(1)  # organised: pixel by pixel
        assert both.sum() >= 0.999 * np.isfinite(a).all(1).sum()
        assert np.abs(a - b)[both].max() <= 2e-3  # 1 mm of depth moves X, Y less (|u - cx| < fx)


def test_malformed_sets_and_missing_transforms_are_dropped_with_a_counter(sample_frame):
    f = sample_frame
    completer = DepthCompleter("nearest", "cpu")
    values, kit = resolve(), BagKit()
    cloud, image, info = frame_messages(f)
    with pytest.raises(Dropped) as missing:
        run_set(cloud, image, info, lambda *_: None, completer, values, ["depth/image"], kit)
    assert missing.value.counter == "tf_missing" and "lidar -> camera" in str(missing.value)
    info.width = 640
    known = lambda *_: f.t_cam_from_lidar  # noqa: E731
    with pytest.raises(Dropped) as bad:
        run_set(cloud, image, info, known, completer, values, ["depth/image"], kit)
    assert bad.value.counter == "rejected_input" and "640x375" in str(bad.value)


def test_one_extrinsic_policy_for_the_node_and_process(sample_frame):
    """ExtrinsicSource, as the node (its /tf buffer) and process (the bag's) build it: with
    use_tf and TF there, TF only (the parameters ignored, and said); without TF or with use_tf
    false, the parameters; with neither, no transform and the reason (extrinsic_missing)."""
    from sparse_depth_node.core.transforms import invert_transform, matrix_to_quaternion
    from sparse_depth_node.msgs.extrinsics import (
        ExtrinsicSource,
        extrinsic_from_parameters,
        extrinsic_parameters,
    )
    from sparse_depth_node.msgs.tf_buffer import TfBuffer

    t_bag = sample_frame.t_cam_from_lidar
    tf = TfBuffer()
    t_velo_cam = invert_transform(t_bag)  # parent <- child, as /tf_static holds it
    tf.add("velo", "cam", 0, t_velo_cam[:3, 3], matrix_to_quaternion(t_velo_cam[:3, :3]), True)
    cloud, image, _ = frame_messages(sample_frame)
    cloud.header.frame_id, image.header.frame_id = "velo", "cam"
    shifted = t_bag.copy()
    shifted[:3, 3] += [0.0, 0.0, 5.0]
    params = extrinsic_parameters(shifted)
    np.testing.assert_allclose(
        extrinsic_from_parameters(*params.values()), shifted, atol=1e-8
    )  # the parameters round-trip (KITTI's rotation is orthonormal to 1e-9)
    cases = [  # (settings, TF source, expected transform or None)
        ({}, tf, t_bag),
        (params, tf, t_bag),
        ({**params, "use_tf": False}, tf, shifted),
        (params, None, shifted),  # use_tf but no TF (tf2_msgs missing): the parameters
        ({}, None, None),
        ({"use_tf": False}, tf, None),
    ]
    for overrides, source, expected in cases:
        values = resolve(overrides)
        s = ExtrinsicSource(lambda v=values: v, source)
        if expected is None:
            with pytest.raises(Dropped) as dropped:
                s.place(cloud, image, sample_frame.camera)
            assert dropped.value.counter == "extrinsic_missing"
            assert "never guessed" in s.problem(), overrides
        else:
            got = s.place(cloud, image, sample_frame.camera)
            np.testing.assert_allclose(got.t_cam_from_lidar, expected, atol=1e-8)
            assert got.sweep is None and s.problem() is None
        assert (s.ignored() is not None) == (source is not None and overrides == params)


def test_an_empty_depth_is_published_and_its_likeliest_cause_said(sample_frame):
    """Every point behind the camera (an extrinsic turned around), every point beyond
    max_depth, a cloud of NaN, an empty cloud: the depth is published (all NaN) and the reason
    names what to check."""
    f = sample_frame
    flipped = np.diag([-1.0, 1.0, -1.0, 1.0]) @ f.t_cam_from_lidar  # 180 degrees about y
    cases = [
        ("extrinsic", f.points, flipped, {}, "behind the camera: check the extrinsic"),
        ("range", f.points, f.t_cam_from_lidar, {"max_depth": 2.0}, "within min_depth..max_depth"),
        ("NaN", np.full_like(f.points, np.nan), f.t_cam_from_lidar, {}, "no finite point"),
        ("empty", f.points[:0], f.t_cam_from_lidar, {}, "holds no point"),
    ]
    for name, points, t, settings, said in cases:
        cloud, image, info = frame_messages(
            dataclasses.replace(f, points=points, intensity=points[:, 0])
        )
        out = run_set(
            cloud, image, info, lambda *_, t=t: t, DepthCompleter("nearest", "cpu"),
            resolve(settings), ["depth/image"], BagKit(),
        )  # fmt: skip
        depth = np.frombuffer(out.messages["depth/image"].data.tobytes(), "<f4")
        assert np.isnan(depth).all() and out.empty is not None and said in out.empty, (
            name,
            out.empty,
        )


def test_an_roi_outside_the_image_and_a_depth_png_as_the_camera_are_refused(sample_frame):
    """What cannot be right is refused and counted (rejected_input), with the reason: an ROI
    that reaches past the image (it was taken), a compressedDepth image or a 16-bit PNG on the
    camera's compressed topic (taken as the camera image)."""
    import cv2

    from sparse_depth_node.bag.io import TYPESTORE

    f = sample_frame
    completer, values, kit = DepthCompleter("nearest", "cpu"), resolve(), BagKit()
    cloud, image, info = frame_messages(f)
    info.roi.x_offset, info.roi.width, info.roi.height = 1000, 400, 200
    with pytest.raises(Dropped) as roi:
        run_set(cloud, image, info, lambda *_: f.t_cam_from_lidar, completer, values, [], kit)
    assert roi.value.counter == "rejected_input" and "ROI 400x200 at (1000, 0)" in str(roi.value)
    cloud, image, info = frame_messages(f)
    depth16 = cv2.imencode(
        ".png", (np.arange(375 * 1242) % 60000).astype(np.uint16).reshape(375, 1242)
    )[1]
    for fmt, said in (
        ("16UC1; compressedDepth png", "is a depth image (image_transport's compressedDepth)"),
        ("png", "decodes to uint16 pixels"),
    ):
        msg = TYPESTORE.types["sensor_msgs/msg/CompressedImage"](
            header=image.header, format=fmt, data=depth16.reshape(-1)
        )
        with pytest.raises(Dropped) as depth:
            run_set(cloud, msg, info, lambda *_: f.t_cam_from_lidar, completer, values, [], kit)
        assert depth.value.counter == "rejected_input" and said in str(depth.value), fmt
