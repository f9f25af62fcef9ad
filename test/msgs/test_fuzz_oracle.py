"""Property-based decoding with an oracle: an independent encoder (struct, byte by byte) builds
random *valid* PointCloud2 / Image / CameraInfo messages from known arrays and values, and the
project's decoders must give exactly those back; malformed intrinsics must be refused. A decoder
that zeroes, reorders, mis-offsets or ignores anything fails these tests."""

import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField, RegionOfInterest

from sparse_depth_node.core.camera import PinholeCamera
from sparse_depth_node.msgs.convert import image_to_rgb, pointcloud2_to_xyz

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COORD = st.floats(-1000, 1000, allow_nan=False, width=32)
# PointField datatype -> struct code
CODES = {
    PointField.FLOAT32: "f",
    PointField.FLOAT64: "d",
    PointField.UINT16: "H",
    PointField.UINT8: "B",
    PointField.INT32: "i",
}


@st.composite
def valid_clouds(draw):
    """(message, the (N, 3) float32 x, y, z it must decode to)."""
    height, width = draw(st.integers(1, 3)), draw(st.integers(0, 5))
    xyz_type = draw(st.sampled_from([PointField.FLOAT32, PointField.FLOAT64]))
    extras = draw(
        st.lists(
            st.sampled_from(
                [
                    ("intensity", PointField.FLOAT32),
                    ("ring", PointField.UINT16),
                    ("t", PointField.INT32),
                    ("tag", PointField.UINT8),
                ]
            ),
            max_size=3,
            unique_by=lambda e: e[0],
        )
    )
    layout = [(n, xyz_type) for n in "xyz"] + extras
    layout = draw(st.permutations(layout))
    fields, offset = [], 0
    for name, datatype in layout:  # in a random order, with random gaps
        offset += draw(st.integers(0, 3))
        fields.append((name, datatype, offset))
        offset += struct.calcsize(CODES[datatype])
    point_step = offset + draw(st.integers(0, 6))
    row_step = width * point_step + (draw(st.integers(0, 7)) if height > 1 else 0)
    big = draw(st.booleans())
    order = ">" if big else "<"
    n = height * width
    xyz = np.array(
        draw(st.lists(st.tuples(COORD, COORD, COORD), min_size=n, max_size=n)), dtype=np.float64
    ).reshape(n, 3)
    data = bytearray(draw(st.binary(min_size=height * row_step, max_size=height * row_step)))
    for i in range(n):
        base = (i // width) * row_step + (i % width) * point_step
        for name, datatype, off in fields:
            value = xyz[i, "xyz".index(name)] if name in "xyz" else 7
            struct.pack_into(order + CODES[datatype], data, base + off, value)
    msg = PointCloud2(
        height=height,
        width=width,
        point_step=point_step,
        row_step=row_step,
        is_bigendian=big,
        is_dense=True,
        data=bytes(data),
        fields=[PointField(name=nm, offset=off, datatype=dt, count=1) for nm, dt, off in fields],
    )
    return msg, xyz.astype(np.float32)


@SETTINGS
@given(valid_clouds())
def test_a_valid_pointcloud2_decodes_to_exactly_its_points(case):
    msg, expected = case
    np.testing.assert_array_equal(pointcloud2_to_xyz(msg), expected)


# encoding -> channel order as written in the message (R, G, B indices; 3 = alpha)
LAYOUTS = {
    "rgb8": (0, 1, 2),
    "bgr8": (2, 1, 0),
    "rgba8": (0, 1, 2, 3),
    "bgra8": (2, 1, 0, 3),
    "mono8": (0,),
}


@st.composite
def valid_images(draw):
    """(message, the (H, W, 3) uint8 RGB it must decode to)."""
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    encoding = draw(st.sampled_from(sorted(LAYOUTS)))
    channels = LAYOUTS[encoding]
    step = w * len(channels) + draw(st.integers(0, 5))
    pixels = draw(st.binary(min_size=h * w * 4, max_size=h * w * 4))
    rgba = np.frombuffer(pixels, np.uint8).reshape(h, w, 4)
    if encoding == "mono8":
        rgba = np.repeat(rgba[..., :1], 4, axis=-1)
    data = bytearray(draw(st.binary(min_size=h * step, max_size=h * step)))
    for r in range(h):
        for c in range(w):
            for k, channel in enumerate(channels):
                data[r * step + c * len(channels) + k] = rgba[r, c, channel]
    msg = Image(height=h, width=w, encoding=encoding, step=step, data=bytes(data))
    return msg, np.ascontiguousarray(rgba[..., :3])


@SETTINGS
@given(valid_images())
def test_a_valid_image_decodes_to_exactly_its_pixels(case):
    msg, expected = case
    np.testing.assert_array_equal(image_to_rgb(msg), expected)


@st.composite
def valid_camera_infos(draw):
    """(message, the expected (fx, fy, cx, cy, width, height, shift)), computed as
    image_geometry does: the ROI offsets the principal point, then binning divides."""
    width, height = draw(st.integers(64, 2000)), draw(st.integers(64, 1500))
    fx, fy = draw(st.floats(100, 3000)), draw(st.floats(100, 3000))
    cx, cy = draw(st.floats(0, width)), draw(st.floats(0, height))
    tx, ty = draw(st.floats(-500, 500)), draw(st.floats(-50, 50))
    bx, by = draw(st.sampled_from([0, 1, 2, 4])), draw(st.sampled_from([0, 1, 2, 4]))
    roi = RegionOfInterest()
    w, h, x0, y0 = width, height, 0, 0
    if draw(st.booleans()):
        w, h = draw(st.integers(16, width)), draw(st.integers(16, height))
        x0, y0 = draw(st.integers(0, width - w)), draw(st.integers(0, height - h))
        roi = RegionOfInterest(x_offset=x0, y_offset=y0, width=w, height=h)
    p = [fx, 0.0, cx, tx, 0.0, fy, cy, ty, 0.0, 0.0, 1.0, 0.0]
    msg = CameraInfo(width=width, height=height, p=p, binning_x=bx, binning_y=by, roi=roi)
    sx, sy = max(bx, 1), max(by, 1)
    expected = (
        fx / sx,
        fy / sy,
        (cx - x0) / sx,
        (cy - y0) / sy,
        w // sx,
        h // sy,
        (tx / fx, ty / fy, 0.0),
    )
    return msg, expected


@SETTINGS
@given(valid_camera_infos())
def test_a_valid_camera_info_gives_exactly_its_camera(case):
    msg, (fx, fy, cx, cy, w, h, shift) = case
    cam = PinholeCamera.from_camera_info(msg)
    assert (cam.width, cam.height) == (w, h)
    np.testing.assert_allclose([cam.fx, cam.fy, cam.cx, cam.cy], [fx, fy, cx, cy], rtol=1e-12)
    np.testing.assert_allclose(cam.shift, shift, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(
    st.sampled_from(["fx", "fy"]),
    st.sampled_from([0.0, -500.0, float("nan"), float("inf"), 1e-300, 1e300]),
)
def test_focal_lengths_that_cannot_project_are_refused(which, bad):
    fx, fy = (bad, 700.0) if which == "fx" else (700.0, bad)
    msg = CameraInfo(
        width=1242, height=375, p=[fx, 0.0, 600.0, 0.0, 0.0, fy, 180.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    )
    try:
        PinholeCamera.from_camera_info(msg)
    except ValueError:
        return
    raise AssertionError(f"{which}={bad} was accepted")


@SETTINGS
@given(st.lists(st.tuples(*[st.floats(width=32) | COORD] * 3), max_size=20), st.booleans())
def test_an_encoded_cloud_decodes_back_and_says_dense_only_when_every_point_is_finite(pts, rgb):
    import torch

    from sparse_depth_node.msgs.encode import fill_pointcloud2

    points = np.array(pts, np.float32).reshape(-1, 3)
    colours = torch.full((len(points), 3), 7, dtype=torch.uint8) if rgb else None
    header = PointCloud2().header
    msg = fill_pointcloud2(PointCloud2(), PointField, header, torch.from_numpy(points), colours)
    assert msg.is_dense == bool(np.isfinite(points).all())
    np.testing.assert_array_equal(pointcloud2_to_xyz(msg), points)


def test_duplicate_field_names_are_refused():
    import pytest

    fields = [
        PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, n in enumerate("xyzx")
    ]
    msg = PointCloud2(height=1, width=1, point_step=16, row_step=16, fields=fields, data=bytes(16))
    with pytest.raises(ValueError, match=r"names field \['x'\] more than once"):
        pointcloud2_to_xyz(msg)
