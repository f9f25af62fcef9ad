"""The output messages' bytes, made where the frame was computed: a REP 118 depth image or the
records of a PointCloud2 are built as one uint8 tensor on the frame's device (GPU or CPU) and
copied to the host once, into pinned memory on a GPU (``host_bytes``), then handed to the
message. Works on rclpy and ``rosbags`` message classes alike (msgs.py's duck typing).

Byte order: little-endian, the messages say so (``is_bigendian`` 0); every machine this package
runs on (x86-64, aarch64) is little-endian, so a tensor's own bytes are the message's.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch

from .convert import FLOAT32, as_data, cloud_dtype

if sys.byteorder != "little":  # pragma: no cover - no such machine runs ROS 2 today
    raise ImportError("sparse_depth_node encodes messages on little-endian machines only")


def host_bytes(t: torch.Tensor) -> np.ndarray:
    """``t``'s bytes as a uint8 numpy array on the host, owned by nobody else (``t`` is a fresh
    payload): its own memory on the CPU; from a GPU one copy into pinned memory (PyTorch's
    caching host allocator hands the same pinned blocks back frame after frame, once the
    messages holding them are gone, so nothing is allocated per frame once warm)."""
    t = t.contiguous().view(torch.uint8).reshape(-1)
    if t.device.type == "cpu":
        return t.numpy()
    host = torch.empty(t.shape, dtype=torch.uint8, pin_memory=True)
    host.copy_(t)
    return host.numpy()


def depth_payload(depth: torch.Tensor, encoding: str = "32FC1") -> torch.Tensor:
    """The (H, W) depth (metres; 0 or non-finite = no estimate) as REP 118 pixels, on its
    device: 32FC1 float32 metres with NaN where there is no estimate, or 16UC1 uint16
    millimetres with 0 where there is none or the depth exceeds 65.535 m; (H, W, itemsize)
    uint8."""
    d = depth.to(torch.float32)
    valid = (d > 0) & (d <= torch.finfo(torch.float32).max)  # NaN and +inf fail one of them
    if encoding == "32FC1":
        return torch.where(valid, d, float("nan")).view(torch.uint8).view(*d.shape, 4)
    if encoding == "16UC1":
        mm = torch.round(torch.where(valid, d, 0.0) * 1000.0)
        mm = torch.where(mm <= 65535, mm, 0.0).to(torch.int32)
        # int16 keeps an int32's low 16 bits: the uint16's bytes (torch has no uint16 kernels)
        return mm.to(torch.int16).view(torch.uint8).view(*d.shape, 2)
    raise ValueError(f"depth encoding must be 32FC1 or 16UC1, got {encoding}")


def fill_depth_image(msg: Any, depth: torch.Tensor, header: Any, encoding: str = "32FC1") -> Any:
    """Fill an Image with the (H, W) depth tensor (metres, 0 or non-finite = no estimate) as
    ``depth_payload`` encodes it."""
    data = host_bytes(depth_payload(depth, encoding))
    msg.header = header
    msg.height, msg.width = depth.shape
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = data.size // max(depth.shape[0], 1)
    msg.data = as_data(msg, data, owned=True)
    return msg


def cloud_payload(
    points: torch.Tensor,
    rgb: "torch.Tensor | None" = None,
    organized: "torch.Tensor | None" = None,
) -> torch.Tensor:
    """The PointCloud2 records (msgs.cloud_dtype) of points (M, 3) float32, with their colours
    (M, 3) uint8 when given, as (rows, point_step) uint8 on the points' device. The colour is
    PCL's and RViz's ``rgb`` field, a float32 whose bits are 0x00RRGGBB: little-endian, the
    bytes B, G, R, 0. With ``organized`` (H, W) bool, the pixels the points came from
    (row-major), H x W records with NaN x, y, z where no point is."""
    layout = cloud_dtype(rgb is not None)
    rows = len(points) if organized is None else organized.numel()
    out = torch.zeros(rows, layout.itemsize, dtype=torch.uint8, device=points.device)
    words = out.view(torch.float32)
    at: "slice | torch.Tensor" = slice(None)
    if organized is not None:
        kept = torch.nonzero(organized.reshape(-1)).squeeze(1)
        if len(kept) != len(points):
            raise ValueError(f"{len(points)} points for {len(kept)} organised pixels")
        words[:, :3] = float("nan")
        at = kept
    fields = layout.fields
    assert fields is not None  # cloud_dtype is a structured dtype
    x = fields["x"][1] // 4
    words[at, x : x + 3] = points.to(torch.float32)  # x, y, z are consecutive
    if rgb is not None:
        offset = fields["rgb"][1]
        for byte, channel in enumerate((2, 1, 0)):  # B, G, R
            out[at, offset + byte] = rgb[:, channel]
    return out


def fill_pointcloud2(
    msg: Any,
    field_cls: type,
    header: Any,
    points: torch.Tensor,
    rgb: "torch.Tensor | None" = None,
    organized: "torch.Tensor | None" = None,
) -> Any:
    """Fill a PointCloud2 with points (M, 3) float32 in the header's frame (``cloud_payload``):
    unorganised (height 1; is_dense when every point is finite) by default, or H x W with NaN
    holes and is_dense false with ``organized``, as depth_image_proc publishes."""
    dtype = cloud_dtype(rgb is not None)
    h, w = (1, len(points)) if organized is None else tuple(organized.shape)
    # every coordinate finite iff the smallest and the largest are (NaN propagates)
    dense = organized is None and (
        len(points) == 0 or all(bool(torch.isfinite(x)) for x in torch.aminmax(points))
    )
    data = host_bytes(cloud_payload(points, rgb, organized))
    msg.header = header
    msg.height, msg.width = h, w
    fields, names = dtype.fields, dtype.names
    assert fields is not None and names is not None  # cloud_dtype is a structured dtype
    msg.fields = [field_cls(name=n, offset=fields[n][1], datatype=FLOAT32, count=1) for n in names]
    msg.is_bigendian = False
    msg.point_step = dtype.itemsize
    msg.row_step = dtype.itemsize * w
    msg.is_dense = dense
    msg.data = as_data(msg, data, owned=True)
    return msg
