"""Per-point times as each driver writes them, read back in seconds from the cloud's stamp; the
clouds are packed point by point with struct (an encoder independent of the reader)."""

import struct

import numpy as np
import pytest

from sparse_depth_node.bag.io import TYPESTORE, make_header
from sparse_depth_node.core.settings import resolve
from sparse_depth_node.msgs.point_times import point_times

STAMP = 1_700_000_000 * 10**9 + 250_000_000  # ns
CODES = {"f": (7, 4), "d": (8, 8), "I": (6, 4), "H": (4, 2)}  # struct code: datatype, size


def cloud(fields, rows, stamp=STAMP):
    """A PointCloud2 of ``fields`` [(name, struct code)] packed little-endian, one row each."""
    offsets, at = [], 0
    for _, code in fields:
        offsets.append(at)
        at += CODES[code][1]
    fmt = "<" + "".join(c for _, c in fields)
    data = b"".join(struct.pack(fmt, *row) for row in rows)
    T = TYPESTORE.types
    return T["sensor_msgs/msg/PointCloud2"](
        header=make_header(stamp, "lidar"),
        height=1,
        width=len(rows),
        fields=[
            T["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=CODES[c][0], count=1)
            for (n, c), o in zip(fields, offsets)
        ],
        is_bigendian=False,
        point_step=at,
        row_step=at * len(rows),
        data=np.frombuffer(data, np.uint8),
        is_dense=True,
    )


XYZ = [("x", "f"), ("y", "f"), ("z", "f")]
REL = [0.0, 0.0123, 0.0999]  # s after the stamp


@pytest.mark.parametrize(
    "driver, field, values, how",
    [
        ("velodyne", ("time", "f"), REL, "'time' (float32, s, relative)"),
        ("ouster", ("t", "I"), [round(t * 1e9) for t in REL], "'t' (uint32, ns, relative)"),
        (
            "hesai / robosense",
            ("timestamp", "d"),
            [STAMP * 1e-9 + t for t in REL],
            "'timestamp' (float64, s, absolute)",
        ),
        (
            "livox timestamp",
            ("timestamp", "d"),
            [float(STAMP + round(t * 1e9)) for t in REL],
            "'timestamp' (float64, ns, absolute)",
        ),
        ("livox offset_time", ("offset_time", "I"), [round(t * 1e9) for t in REL], "(uint32, ns"),
    ],
)
def test_each_drivers_time_field_is_found_and_read_in_seconds_from_the_stamp(
    driver, field, values, how
):
    msg = cloud([*XYZ, ("intensity", "f"), field], [(1, 2, 3, 9, v) for v in values])
    times, said = point_times(msg, resolve())
    np.testing.assert_allclose(times, REL, atol=1e-6, err_msg=driver)
    assert how in said, said


def test_without_a_time_field_the_whole_cloud_is_at_its_stamp_and_that_is_said():
    times, said = point_times(cloud([*XYZ], [(1, 2, 3)]), resolve())
    assert times is None and "no per-point time field" in said and "'x'" in said


def test_the_field_its_unit_and_its_reference_can_be_named():
    rows = [(1, 2, 3, round(t * 1e6), 5.0) for t in REL]  # 'time' holds nonsense: not read
    msg = cloud([*XYZ, ("t_us", "I"), ("time", "f")], rows)
    named = {"point_time.field": "t_us", "point_time.unit": "us"}
    times, said = point_times(msg, resolve(named))
    np.testing.assert_allclose(times, REL, atol=1e-6)
    assert "'t_us' (uint32, us, relative)" in said
    absolute = cloud([*XYZ, ("when", "d")], [(1, 2, 3, STAMP * 1e-9 - 3.0 + t) for t in REL])
    as_relative = {"point_time.field": "when", "point_time.reference": "relative"}
    with pytest.raises(ValueError, match="point_time.unit and point_time.reference"):
        point_times(absolute, resolve(as_relative))
    with pytest.raises(ValueError, match="'nope' is not in the cloud"):
        point_times(msg, resolve({"point_time.field": "nope"}))


def test_times_that_cannot_be_right_are_refused_with_what_was_assumed():
    ms = cloud([*XYZ, ("time", "f")], [(1, 2, 3, t * 1000) for t in REL])  # ms, read as s
    with pytest.raises(ValueError, match=r"field 'time' \(float32, s, relative\) reach 99.9 s"):
        point_times(ms, resolve())
    gps = cloud([*XYZ, ("timestamp", "d")], [(1, 2, 3, STAMP * 1e-9 + 18 + t) for t in REL])
    with pytest.raises(ValueError, match="timestamp"):  # the LiDAR's clock 18 s from ROS's
        point_times(gps, resolve())


def test_near_the_clock_s_start_relative_times_stay_relative():
    """Under sim time the stamps start near 0, where absolute and relative look alike."""
    msg = cloud([*XYZ, ("time", "f")], [(1, 2, 3, t) for t in REL], stamp=500_000_000)
    times, said = point_times(msg, resolve())
    np.testing.assert_allclose(times, REL, atol=1e-6)
    assert "relative" in said
