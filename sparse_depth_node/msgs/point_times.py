"""Each LiDAR point's firing time, read from the PointCloud2 field its driver writes, as seconds
since the cloud's stamp: what motion compensation (msgs/motion.py) carries each point by.

Found by name, as the drivers publish them, unless ``point_time.field`` names another:
- Velodyne (velodyne_pointcloud) ``time``: float32 s, relative to the stamp;
- Ouster (ouster-ros) ``t``: uint32 ns, relative;
- Hesai (HesaiLidar_ROS_2.0), Robosense (rslidar_sdk) ``timestamp``: float64 s, absolute;
  Livox (livox_ros_driver2) ``timestamp``: float64 ns, absolute;
- Livox ``offset_time``: uint32 ns, relative.
``point_time.unit`` auto: an absolute field's unit is the one that puts its times near the stamp;
a relative one's is s for a float field and ns for an integer one. ``point_time.reference`` auto:
absolute when the times' median lies within MAX_SPAN_S of the stamp (a stamp over 2 MAX_SPAN_S:
nearer zero, as a simulation starts, the two cannot be told apart and relative is taken), else
relative.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.settings import TIME_UNITS
from .convert import pointcloud2_field_types, pointcloud2_records, stamp_ns
from .types import PointCloud2Like

TIME_FIELDS = ("time", "t", "timestamp", "offset_time")  # tried in this order
UNITS = dict(zip(TIME_UNITS[1:], (1.0, 1e-3, 1e-6, 1e-9)))  # seconds per unit
MAX_SPAN_S = 1.0  # a point fired further than this from the stamp is a misread time


def time_field(cloud: PointCloud2Like, values: Mapping[str, Any]) -> "str | None":
    """The name of the cloud's per-point time field: ``point_time.field`` when set (ValueError
    when the cloud lacks it), else the first of TIME_FIELDS it has, else None."""
    types = pointcloud2_field_types(cloud)
    wanted = values["point_time.field"]
    if wanted:
        if wanted not in types:
            raise ValueError(
                f"point_time.field '{wanted}' is not in the cloud (fields: {sorted(types)})"
            )
        return str(wanted)
    return next((n for n in TIME_FIELDS if n in types), None)


def point_times(
    cloud: PointCloud2Like, values: Mapping[str, Any]
) -> "tuple[np.ndarray | None, str]":
    """(N,) float32 seconds from the cloud's stamp to each point's firing (the order of
    ``pointcloud2_to_xyz``; NaN where the field is not finite), and how they were read in
    words; (None, why) without a time field. ValueError when the times read lie further than
    MAX_SPAN_S from the stamp (a unit or reference misread: the line says which was assumed)."""
    name = time_field(cloud, values)
    if name is None:
        fields = sorted(pointcloud2_field_types(cloud))
        return None, f"no per-point time field (fields: {fields}): the whole cloud at its stamp"
    raw = pointcloud2_records(cloud, (name,))[name]
    integer = raw.dtype.kind in "iu"
    stamp = stamp_ns(cloud.header)
    unit, reference = values["point_time.unit"], values["point_time.reference"]
    sample = raw[:: max(1, len(raw) // 256)].astype(np.float64)  # enough to tell the scale
    median = float(np.nanmedian(sample)) if len(sample) else 0.0
    near = [
        u
        for u in UNITS
        if stamp * 1e-9 > 2 * MAX_SPAN_S and abs(median * UNITS[u] - stamp * 1e-9) < MAX_SPAN_S
    ]
    if reference == "auto":
        reference = "absolute" if (near if unit == "auto" else unit in near) else "relative"
    if unit == "auto":
        unit = near[0] if reference == "absolute" and near else ("ns" if integer else "s")
    if reference == "absolute" and integer:  # integer nanoseconds: exact before the subtraction
        times = ((raw.astype(np.int64) * round(UNITS[unit] * 1e9) - stamp) * 1e-9).astype(
            np.float32
        )
    elif reference == "absolute":
        times = (raw.astype(np.float64) * UNITS[unit] - stamp * 1e-9).astype(np.float32)
    else:
        times = raw.astype(np.float32) * np.float32(UNITS[unit])
    how = f"field '{name}' ({raw.dtype.name}, {unit}, {reference})"
    lo, hi = time_range(times)
    if max(abs(lo), abs(hi)) > MAX_SPAN_S:
        raise ValueError(
            f"point times from {how} reach {max(abs(lo), abs(hi)):.3g} s from the cloud's stamp "
            f"(at most {MAX_SPAN_S:g} s): set point_time.unit and point_time.reference to what "
            "the driver writes"
        )
    return times, how


def time_range(times: np.ndarray) -> tuple[float, float]:
    """The first and the last of ``times`` that are finite ((0, 0) when none is)."""
    if len(times) == 0:
        return 0.0, 0.0
    lo, hi = float(times.min()), float(times.max())
    if np.isfinite(lo) and np.isfinite(hi):  # the common case: no copy
        return lo, hi
    finite = times[np.isfinite(times)]
    return (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
