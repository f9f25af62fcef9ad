"""Message conversions: real driver cloud layouts, endianness, row padding, every image encoding,
depth images byte for byte, with rclpy and rosbags messages."""

import struct

import numpy as np
import pytest
import torch
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from sparse_depth_node.core.camera import PinholeCamera
from sparse_depth_node.msgs.convert import (
    depth_image_to_metres,
    fill_camera_info,
    image_to_rgb,
    pointcloud2_to_xyz,
)
from sparse_depth_node.msgs.encode import fill_depth_image, fill_pointcloud2

tensor = torch.from_numpy

F32, F64, U16, U8, U32 = 7, 8, 4, 2, 6
PTS = np.array(
    [[1.5, -2.25, 0.125], [10.0, 20.0, -3.0], [np.nan, 0.0, 1.0], [-7.75, 0.5, 99.0]], np.float32
)


def cloud(fields, point_step, rows, width, height=1, big=False, row_pad=0):
    """A PointCloud2 from hand-packed bytes: ``rows`` is one bytes object per point."""
    msg = PointCloud2()
    msg.height, msg.width = height, width
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in fields]
    msg.point_step, msg.is_bigendian = point_step, big
    msg.row_step = point_step * width + row_pad
    data = b"".join(
        b"".join(rows[r * width : (r + 1) * width]) + b"\xee" * row_pad for r in range(height)
    )
    msg.data = data
    return msg


def test_velodyne_layout_x_y_z_intensity_ring_time():
    # velodyne_driver: x y z intensity (f32) ring (u16) time (f32): point_step 22
    fields = [
        ("x", 0, F32),
        ("y", 4, F32),
        ("z", 8, F32),
        ("intensity", 12, F32),
        ("ring", 16, U16),
        ("time", 18, F32),
    ]
    rows = [struct.pack("<ffffHf", *p, 7.0, 3, 0.01) for p in PTS]
    out = pointcloud2_to_xyz(cloud(fields, 22, rows, len(PTS)))
    np.testing.assert_array_equal(out, PTS)


def test_ouster_layout_point_step_48_with_padding():
    # ouster-ros: x y z (f32) + 4 pad, intensity f32 @16, t u32 @20, reflectivity u16 @24,
    # ring u16 @26, ambient u16 @28, range u32 @32, padding to 48
    fields = [
        ("x", 0, F32),
        ("y", 4, F32),
        ("z", 8, F32),
        ("intensity", 16, F32),
        ("t", 20, U32),
        ("reflectivity", 24, U16),
        ("ring", 26, U16),
        ("ambient", 28, U16),
        ("range", 32, U32),
    ]
    rows = [struct.pack("<fff4xfIHHH2xI12x", *p, 1.0, 5, 6, 7, 8, 9) for p in PTS]
    assert len(rows[0]) == 48
    np.testing.assert_array_equal(pointcloud2_to_xyz(cloud(fields, 48, rows, len(PTS))), PTS)


def test_big_endian_float64_fields_in_any_order():
    fields = [("z", 0, F64), ("x", 8, F64), ("y", 16, F64)]
    rows = [struct.pack(">ddd", p[2], p[0], p[1]) for p in PTS.astype(np.float64)]
    np.testing.assert_array_equal(
        pointcloud2_to_xyz(cloud(fields, 24, rows, len(PTS), big=True)), PTS
    )


def test_organised_cloud_with_row_padding():
    fields = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32)]
    rows = [struct.pack("<fff4x", *p) for p in PTS]
    msg = cloud(fields, 16, rows, width=2, height=2, row_pad=8)
    np.testing.assert_array_equal(pointcloud2_to_xyz(msg), PTS)


def test_livox_style_mixed_types():
    # livox_ros_driver2 PointCloud2: x y z f32, intensity f32, tag u8, line u8, timestamp f64:
    # point_step 26
    fields = [
        ("x", 0, F32),
        ("y", 4, F32),
        ("z", 8, F32),
        ("intensity", 12, F32),
        ("tag", 16, U8),
        ("line", 17, U8),
        ("timestamp", 18, F64),
    ]
    rows = [struct.pack("<ffffBBd", *p, 1.0, 0, 3, 12345.5) for p in PTS]
    np.testing.assert_array_equal(pointcloud2_to_xyz(cloud(fields, 26, rows, len(PTS))), PTS)


@pytest.mark.parametrize(
    "spoil, match",
    [
        (lambda m: setattr(m, "fields", m.fields[:2]), "no field"),
        (lambda m: setattr(m, "data", m.data[:-1]), "bytes"),
        (lambda m: setattr(m, "point_step", 8), "does not fit"),
        (lambda m: setattr(m, "row_step", 10), "row_step"),
        (
            lambda m: setattr(m, "width", 2**31 - 1) or setattr(m, "height", 2**31 - 1),
            "out of bounds",
        ),
    ],
)
def test_malformed_clouds_raise_value_error(spoil, match):
    fields = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32)]
    msg = cloud(fields, 12, [struct.pack("<fff", *p) for p in PTS], len(PTS))
    spoil(msg)
    with pytest.raises(ValueError, match=match):
        pointcloud2_to_xyz(msg)


def test_unknown_datatype_raises_value_error():
    msg = cloud(
        [("x", 0, 9), ("y", 4, F32), ("z", 8, F32)],
        12,
        [struct.pack("<fff", *p) for p in PTS],
        len(PTS),
    )
    with pytest.raises(ValueError, match="datatype"):
        pointcloud2_to_xyz(msg)


RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 3


@pytest.mark.parametrize(
    "encoding, channels, order",
    [
        ("rgb8", 3, [0, 1, 2]),
        ("bgr8", 3, [2, 1, 0]),
        ("rgba8", 4, [0, 1, 2, None]),
        ("bgra8", 4, [2, 1, 0, None]),
    ],
)
def test_colour_encodings_with_row_padding(encoding, channels, order):
    h, w = RGB.shape[:2]
    px = np.zeros((h, w, channels), np.uint8)
    for c, src in enumerate(order):
        px[..., c] = RGB[..., src] if src is not None else 255
    step = w * channels + 3
    rows = [px[r].tobytes() + b"\x00\x01\x02" for r in range(h)]
    msg = Image(height=h, width=w, encoding=encoding, step=step, data=b"".join(rows))
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


def test_mono8_and_bad_images():
    mono = np.arange(20, dtype=np.uint8).reshape(4, 5)
    out = image_to_rgb(Image(height=4, width=5, encoding="mono8", step=5, data=mono.tobytes()))
    assert out.shape == (4, 5, 3) and np.all(out[..., 0] == mono) and np.all(out[..., 2] == mono)
    with pytest.raises(ValueError, match="not supported"):
        image_to_rgb(Image(height=4, width=5, encoding="yuv422", step=10, data=bytes(40)))
    with pytest.raises(ValueError, match="step"):
        image_to_rgb(Image(height=4, width=5, encoding="rgb8", step=10, data=bytes(60)))
    with pytest.raises(ValueError, match="bytes"):
        image_to_rgb(Image(height=4, width=5, encoding="rgb8", step=15, data=bytes(59)))
    with pytest.raises(ValueError, match="size"):
        image_to_rgb(Image(height=0, width=5, encoding="rgb8", step=15, data=b""))


def test_depth_images_byte_for_byte():
    depth = np.array([[1.5, 0.0], [np.inf, 70.0]], np.float32)
    f = fill_depth_image(Image(), tensor(depth), Header(frame_id="cam"))
    assert (f.encoding, f.height, f.width, f.step, f.is_bigendian) == ("32FC1", 2, 2, 8, 0)
    nan = struct.pack("<f", float("nan"))
    assert bytes(f.data) == struct.pack("<f", 1.5) + nan + nan + struct.pack("<f", 70.0)
    r = fill_depth_image(Image(), tensor(depth), Header(), "16UC1")
    assert (r.encoding, r.step) == ("16UC1", 4) and bytes(r.data) == struct.pack(
        "<4H", 1500, 0, 0, 0
    )
    # 70 m exceeds 16-bit millimetres: invalid (0), not wrapped


def test_depth_images_decode_from_hand_packed_bytes():
    """32FC1 big-endian with row padding and 16UC1 millimetres, packed with struct: metres,
    0 where there is no depth."""
    msg = Image(height=2, width=2, encoding="32FC1", is_bigendian=1, step=10)
    rows = [struct.pack(">2f", 1.5, float("nan")), struct.pack(">2f", -1.0, 70.25)]
    msg.data = rows[0] + b"\xee\xee" + rows[1] + b"\xee\xee"
    np.testing.assert_array_equal(depth_image_to_metres(msg), [[1.5, 0.0], [0.0, 70.25]])
    mm = Image(height=1, width=3, encoding="16UC1", is_bigendian=0, step=6)
    mm.data = struct.pack("<3H", 1500, 0, 65535)
    np.testing.assert_allclose(depth_image_to_metres(mm), [[1.5, 0.0, 65.535]], rtol=1e-6)
    for bad, match in (
        (Image(encoding="rgb8"), "32FC1 or 16UC1"),
        (Image(height=2, width=2, encoding="16UC1", step=4), "bytes"),
    ):
        with pytest.raises(ValueError, match=match):
            depth_image_to_metres(bad)


def test_cloud_output_layouts_and_rgb_packing():
    pts = PTS[[0, 1, 3]]
    rgb = np.array([[255, 0, 0], [0, 128, 0], [1, 2, 3]], np.uint8)
    msg = fill_pointcloud2(
        PointCloud2(), PointField, Header(frame_id="cam"), tensor(pts), tensor(rgb)
    )
    assert bytes(msg.data[:32]) == struct.pack("<fff4xI12x", *pts[0], 0xFF0000)
    np.testing.assert_array_equal(pointcloud2_to_xyz(msg), pts)
    words = [struct.unpack_from("<I", bytes(msg.data), 32 * i + 16)[0] for i in range(3)]
    assert words == [0xFF0000, 0x008000, 0x010203]  # 0x00RRGGBB, as PCL and RViz read it
    plain = fill_pointcloud2(PointCloud2(), PointField, Header(), tensor(pts))
    assert plain.point_step == 16 and [f.name for f in plain.fields] == ["x", "y", "z"]
    assert bytes(plain.data[16:32]) == struct.pack("<fff4x", *pts[1])
    organized = np.array([[True, False], [True, True]])
    org = fill_pointcloud2(
        PointCloud2(), PointField, Header(), tensor(pts), organized=tensor(organized)
    )
    assert (org.height, org.width, org.is_dense, org.row_step) == (2, 2, False, 32)
    back = pointcloud2_to_xyz(org)
    assert np.isnan(back[1]).all() and np.array_equal(back[[0, 2, 3]], pts)


def test_rosbags_messages_decode_and_encode_the_same():
    from rosbags.typesys import Stores, get_typestore

    from sparse_depth_node.bag.io import blank_message

    ts = get_typestore(Stores.ROS2_JAZZY)
    T = ts.types
    hdr = T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=3, nanosec=5), frame_id="cam"
    )
    rgb = np.array([[255, 0, 0], [0, 128, 0], [1, 2, 3]], np.uint8)
    ros_msg = fill_pointcloud2(
        PointCloud2(), PointField, Header(frame_id="cam"), tensor(PTS[:3]), tensor(rgb)
    )
    blank = blank_message("sensor_msgs/msg/PointCloud2")  # the bag tools' (Humble's) class
    bag_msg = fill_pointcloud2(
        blank, T["sensor_msgs/msg/PointField"], hdr, tensor(PTS[:3]), tensor(rgb)
    )
    assert isinstance(bag_msg.data, np.ndarray) and bag_msg.data.tobytes() == bytes(ros_msg.data)
    cdr = ts.serialize_cdr(bag_msg, "sensor_msgs/msg/PointCloud2")
    np.testing.assert_array_equal(
        pointcloud2_to_xyz(ts.deserialize_cdr(cdr, "sensor_msgs/msg/PointCloud2")), PTS[:3]
    )
    cam = PinholeCamera(700.0, 710.0, 320.0, 240.0, 640, 480, shift=(-0.5, 0.0, 0.0))
    info = fill_camera_info(CameraInfo(), Header(), cam)
    assert PinholeCamera.from_camera_info(info) == cam
