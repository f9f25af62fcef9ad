"""Property-based: malformed PointCloud2 / Image / CameraInfo raise ValueError (which the node
turns into a dropped, counted frame) or decode to the right shape, never anything else."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from sparse_depth_node.core.camera import PinholeCamera
from sparse_depth_node.msgs.convert import image_to_rgb, pointcloud2_to_xyz

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELD_NAMES = st.sampled_from(["x", "y", "z", "intensity", "ring", "t", ""])


@st.composite
def clouds(draw):
    msg = PointCloud2()
    msg.height = draw(st.integers(0, 4) | st.sampled_from([2**31 - 1, 2**32 - 1]))
    msg.width = draw(st.integers(0, 8) | st.sampled_from([2**31 - 1, 2**32 - 1]))
    msg.point_step = draw(st.integers(0, 64))
    msg.row_step = draw(st.integers(0, 600) | st.sampled_from([2**32 - 1]))
    msg.is_bigendian = draw(st.booleans())
    n_fields = draw(st.integers(0, 6))
    msg.fields = [
        PointField(
            name=draw(FIELD_NAMES),
            offset=draw(st.integers(0, 80)),
            datatype=draw(st.integers(0, 10)),
            count=draw(st.integers(0, 3)),
        )
        for _ in range(n_fields)
    ]
    msg.data = draw(st.binary(max_size=700))
    return msg


@SETTINGS
@given(clouds())
def test_any_pointcloud2_decodes_or_raises_value_error(msg):
    try:
        xyz = pointcloud2_to_xyz(msg)
    except ValueError:
        return
    assert xyz.dtype == np.float32 and xyz.shape == (msg.width * msg.height, 3)


@SETTINGS
@given(
    st.integers(0, 6),
    st.integers(0, 6),
    st.integers(0, 40),
    st.sampled_from(
        ["rgb8", "bgr8", "mono8", "rgba8", "bgra8", "16UC1", "32FC1", "yuv422", "", "RGB8"]
    ),
    st.binary(max_size=400),
)
def test_any_image_decodes_or_raises_value_error(h, w, step, encoding, data):
    msg = Image(height=h, width=w, step=step, encoding=encoding, data=data)
    try:
        rgb = image_to_rgb(msg)
    except ValueError:
        return
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(-2000, 2000)


@SETTINGS
@given(
    st.lists(FLOATS, min_size=12, max_size=12),
    st.integers(0, 5000),
    st.integers(0, 5000),
    st.integers(0, 4),
    st.integers(0, 4),
)
def test_any_camera_info_gives_a_valid_camera_or_raises_value_error(p, width, height, bx, by):
    info = CameraInfo(width=width, height=height, p=p, binning_x=bx, binning_y=by)
    try:
        cam = PinholeCamera.from_camera_info(info)
    except ValueError:
        return
    assert cam.fx > 0 and cam.fy > 0 and cam.width > 0 and cam.height > 0
    assert all(np.isfinite([cam.fx, cam.fy, cam.cx, cam.cy, *cam.shift]))
