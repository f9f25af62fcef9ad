"""The frame path without DDS: one synchronised set of messages in, the node's outputs out,
equal to the per-frame pipeline's result; malformed sets are dropped with a counter name."""

import numpy as np
import pytest
from conftest import SAMPLE

from sparse_depth_node.bag.io import BagKit
from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.core.pipeline import process_frame
from sparse_depth_node.core.settings import resolve
from sparse_depth_node.data.datasets import KittiRawReader
from sparse_depth_node.lab.bench import frame_messages
from sparse_depth_node.ros.frame import Dropped, run_set
from sparse_depth_node.ros.outputs import OUTPUTS, enabled_outputs


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
    cloud, image, info = frame_messages(f, stamp_ns=1_500_000_000)
    messages, timings = run_set(
        cloud,
        image,
        info,
        lambda *_: f.t_cam_from_lidar,
        completer,
        values,
        enabled_outputs(values),
        BagKit(),
    )
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


def test_malformed_sets_and_missing_transforms_are_dropped_with_a_counter(sample_frame):
    f = sample_frame
    completer = DepthCompleter("nearest", "cpu")
    values, kit = resolve(), BagKit()
    cloud, image, info = frame_messages(f)
    with pytest.raises(Dropped) as missing:
        run_set(cloud, image, info, lambda *_: None, completer, values, ["depth/image"], kit)
    assert missing.value.counter == "tf_missing" and "lidar -> camera" in str(missing.value)
    info.width = 640
    with pytest.raises(Dropped) as bad:
        run_set(
            cloud,
            image,
            info,
            lambda *_: f.t_cam_from_lidar,
            completer,
            values,
            ["depth/image"],
            kit,
        )
    assert bad.value.counter == "rejected_input" and "640x375" in str(bad.value)
