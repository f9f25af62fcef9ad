"""PointCloud2 / Image / CompressedImage / CameraInfo <-> numpy arrays, vectorised.

Decoding is duck-typed: it reads rclpy messages and ``rosbags`` messages alike (``data`` may
be an ``array.array``, ``bytes`` or a numpy array). Encoding fills message objects whose
classes the caller passes in, so the same code builds rclpy messages for the node and
``rosbags`` messages for bags. Every malformed message raises ValueError naming the problem.
"""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np

# sensor_msgs/PointField datatype codes
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
_FIELD_DTYPES = {
    INT8: "i1",
    UINT8: "u1",
    INT16: "i2",
    UINT16: "u2",
    INT32: "i4",
    UINT32: "u4",
    FLOAT32: "f4",
    FLOAT64: "f8",
}
# 8-bit colour encodings: channels and the order of R, G, B in them
_COLOUR = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
    "8UC1": (1, (0, 0, 0)),
    "8UC3": (3, (2, 1, 0)),
}
MAX_POINTS = 50_000_000  # a cloud larger than this is refused rather than allocated


def _buffer(data: Any) -> np.ndarray:
    """The message's ``data`` as a uint8 numpy view (no copy for array.array, bytes, ndarray)."""
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def pointcloud2_to_xyz(msg: Any) -> np.ndarray:
    """x, y, z of a PointCloud2 as (N, 3) float32, LiDAR frame, metres.

    Reads the fields named x, y and z at their offsets with their datatypes, for any
    point_step, either endianness, organised (height > 1, row padding allowed) or not.
    Points with a non-finite coordinate are kept (the projection ignores them).
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    if height < 0 or width < 0 or height * width > MAX_POINTS:
        raise ValueError(f"PointCloud2 of {width}x{height} points is out of bounds")
    fields = {f.name: f for f in msg.fields}
    if len(fields) != len(msg.fields):
        names = [f.name for f in msg.fields]
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"PointCloud2 names field {twice} more than once")
    missing = [n for n in ("x", "y", "z") if n not in fields]
    if missing:
        raise ValueError(f"PointCloud2 has no field {missing} (fields: {sorted(fields)})")
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for n in ("x", "y", "z"):
        f = fields[n]
        if int(f.datatype) not in _FIELD_DTYPES:
            raise ValueError(f"PointCloud2 field '{n}' has unknown datatype {f.datatype}")
        dt = np.dtype(order + _FIELD_DTYPES[int(f.datatype)])
        if int(f.offset) < 0 or int(f.offset) + dt.itemsize > point_step:
            raise ValueError(
                f"PointCloud2 field '{n}' at offset {f.offset} does not fit point_step "
                f"{point_step}"
            )
        names.append(n)
        formats.append(dt)
        offsets.append(int(f.offset))
    if height * width == 0:
        return np.zeros((0, 3), np.float32)
    if row_step < width * point_step:
        raise ValueError(
            f"PointCloud2 row_step {row_step} < width {width} x point_step {point_step}"
        )
    buf = _buffer(msg.data)
    if buf.size < row_step * (height - 1) + width * point_step:
        raise ValueError(f"PointCloud2 data has {buf.size} bytes, expected {row_step * height}")
    dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
    )
    if row_step == width * point_step:
        rec = np.frombuffer(buf, dtype=dtype, count=height * width)
    else:
        rows = np.lib.stride_tricks.as_strided(
            buf, shape=(height, width * point_step), strides=(row_step, 1)
        )
        rec = np.frombuffer(np.ascontiguousarray(rows).reshape(-1), dtype=dtype)
    out = np.empty((rec.shape[0], 3), np.float32)
    for i, n in enumerate(names):
        out[:, i] = rec[n]
    return out


def image_to_rgb(msg: Any) -> np.ndarray:
    """An 8-bit Image (rgb8, bgr8, rgba8, bgra8, mono8) as (H, W, 3) uint8 RGB; honours
    ``step``."""
    enc = str(msg.encoding)
    if enc not in _COLOUR:
        raise ValueError(f"Image encoding '{enc}' is not supported (use one of {sorted(_COLOUR)})")
    channels, rgb_order = _COLOUR[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ValueError(f"Image has size {w}x{h}")
    if step < w * channels:
        raise ValueError(f"Image step {step} < width {w} x {channels} bytes")
    buf = _buffer(msg.data)
    if buf.size < step * (h - 1) + w * channels:
        raise ValueError(f"Image data has {buf.size} bytes, expected {step * h}")
    rows = np.lib.stride_tricks.as_strided(
        buf, shape=(h, w, channels), strides=(step, channels, 1)
    )
    return np.ascontiguousarray(rows[..., list(rgb_order)])


class UndecodableImage(ValueError):
    """A CompressedImage whose payload no decoder reads."""


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """A CompressedImage (JPEG or PNG, as image_transport's ``compressed`` transport writes it;
    colour or grey) as (H, W, 3) uint8 RGB, decoded by OpenCV; UndecodableImage otherwise."""
    buf = _buffer(msg.data)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        raise UndecodableImage(
            f"CompressedImage ({buf.size} bytes, format '{msg.format}') cannot be decoded"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def any_image_to_rgb(msg: Any) -> np.ndarray:
    """An Image or a CompressedImage (told apart by its ``format`` field) as RGB."""
    return compressed_to_rgb(msg) if hasattr(msg, "format") else image_to_rgb(msg)


def stamp_seconds(header: Any) -> float:
    """A header's stamp in seconds."""
    return int(header.stamp.sec) + int(header.stamp.nanosec) * 1e-9


def stamp_ns(header: Any) -> int:
    """A header's stamp in integer nanoseconds (exact: the key of a frame across messages)."""
    return int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)


def time_fields(ns: int) -> dict[str, int]:
    """The ``sec`` and ``nanosec`` of a builtin_interfaces/Time at ``ns`` nanoseconds."""
    sec, nanosec = divmod(int(ns), 10**9)
    return {"sec": sec, "nanosec": nanosec}


def depth_image_to_metres(msg: Any) -> np.ndarray:
    """A depth Image (32FC1 metres, NaN = none; or 16UC1 millimetres, 0 = none; REP 118) as
    (H, W) float32 metres, 0 where there is no depth. ValueError for another encoding or a
    wrong size."""
    dtypes = {"32FC1": "f4", "16UC1": "u2"}
    if msg.encoding not in dtypes:
        raise ValueError(f"depth image encoding must be 32FC1 or 16UC1, got {msg.encoding}")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    dtype = np.dtype(dtypes[msg.encoding]).newbyteorder(">" if msg.is_bigendian else "<")
    buf = _buffer(msg.data)
    if step < w * dtype.itemsize or buf.size < step * h:
        raise ValueError(f"depth image of {w}x{h}, step {step}, has {buf.size} bytes")
    rows = buf[: step * h].reshape(h, step)[:, : w * dtype.itemsize]
    d = np.ascontiguousarray(rows).view(dtype).astype(np.float32)
    if msg.encoding == "16UC1":
        d /= 1000.0
    return np.where(np.isfinite(d) & (d > 0), d, np.float32(0.0))


def _uint8_array(a: np.ndarray) -> array.array:
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(a).view(np.uint8).reshape(-1).data)
    return out


def fill_depth_image(msg: Any, depth: np.ndarray, header: Any, encoding: str = "32FC1") -> Any:
    """Fill an Image with depth (H, W) metres, 0 or non-finite = no estimate.

    32FC1: float32 metres, NaN where there is no estimate (REP 118). 16UC1: uint16
    millimetres, 0 where there is none or the depth exceeds 65.535 m. Little-endian.
    """
    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    if encoding == "32FC1":
        data = np.where(valid, d, np.float32(np.nan)).astype("<f4")
    elif encoding == "16UC1":
        mm = np.round(np.where(valid, d, 0.0) * 1000.0)
        data = np.where(mm <= 65535, mm, 0).astype("<u2")
    else:
        raise ValueError(f"depth encoding must be 32FC1 or 16UC1, got {encoding}")
    msg.header = header
    msg.height, msg.width = d.shape
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = d.shape[1] * data.itemsize
    msg.data = _as_data(msg, data)
    return msg


def _as_data(msg: Any, a: np.ndarray) -> Any:
    """The right container for a message's uint8[] field: numpy for rosbags, array.array for
    rclpy."""
    if isinstance(getattr(msg, "data", None), np.ndarray) or type(msg).__module__.startswith(
        "rosbags"
    ):
        return np.ascontiguousarray(a).view(np.uint8).reshape(-1).copy()
    return _uint8_array(a)


def cloud_dtype(colorize: bool) -> np.dtype:
    """x, y, z float32 at 0/4/8 and point_step 16, or with ``rgb`` (float32-packed) at 16 and
    point_step 32."""
    if colorize:
        return np.dtype(
            {
                "names": ["x", "y", "z", "rgb"],
                "formats": ["<f4"] * 4,
                "offsets": [0, 4, 8, 16],
                "itemsize": 32,
            }
        )
    return np.dtype(
        {"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [0, 4, 8], "itemsize": 16}
    )


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 -> (N,) float32 whose bits are 0x00RRGGBB (PCL's and RViz's ``rgb`` field)."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    return ((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype("<u4").view("<f4")


def fill_pointcloud2(
    msg: Any,
    field_cls: type,
    header: Any,
    points: np.ndarray,
    rgb: "np.ndarray | None" = None,
    organized: "np.ndarray | None" = None,
) -> Any:
    """Fill a PointCloud2 with points (M, 3) float32 in the header's frame.

    Unorganised (height 1; is_dense when every point is finite) by default. With
    ``organized`` = the (H, W) boolean map of pixels the points came from (row-major), an
    H x W cloud with NaN holes and is_dense false, as depth_image_proc publishes.
    """
    dtype = cloud_dtype(rgb is not None)
    if organized is not None:
        h, w = organized.shape
        rec = np.zeros(h * w, dtype=dtype)
        for n in ("x", "y", "z"):
            rec[n] = np.nan
        idx = np.flatnonzero(organized.reshape(-1))
        if len(idx) != len(points):
            raise ValueError(f"{len(points)} points for {len(idx)} organised pixels")
    else:
        h, w = 1, len(points)
        rec = np.zeros(w, dtype=dtype)
        idx = slice(None)
    rec["x"][idx], rec["y"][idx], rec["z"][idx] = points[:, 0], points[:, 1], points[:, 2]
    if rgb is not None:
        rec["rgb"][idx] = pack_rgb(rgb)
    msg.header = header
    msg.height, msg.width = h, w
    names = list(dtype.names)
    msg.fields = [
        field_cls(name=n, offset=dtype.fields[n][1], datatype=FLOAT32, count=1) for n in names
    ]
    msg.is_bigendian = False
    msg.point_step = dtype.itemsize
    msg.row_step = dtype.itemsize * w
    msg.is_dense = bool(organized is None and np.isfinite(points).all())
    msg.data = _as_data(msg, rec)
    return msg


def fill_cloud_from_array(msg: Any, field_cls: type, header: Any, points: np.ndarray) -> Any:
    """Fill a PointCloud2 with (N, K) float32 columns named x, y, z[, intensity] (point_step 4K),
    as a LiDAR driver publishes; unorganised."""
    pts = np.ascontiguousarray(points, dtype="<f4")
    names = ["x", "y", "z", "intensity"][: pts.shape[1]]
    msg.header = header
    msg.height, msg.width = 1, pts.shape[0]
    msg.fields = [
        field_cls(name=n, offset=4 * i, datatype=FLOAT32, count=1) for i, n in enumerate(names)
    ]
    msg.is_bigendian = False
    msg.point_step = 4 * pts.shape[1]
    msg.row_step = msg.point_step * pts.shape[0]
    msg.is_dense = bool(np.isfinite(pts[:, :3]).all())
    msg.data = _as_data(msg, pts)
    return msg


def fill_rgb_image(msg: Any, header: Any, rgb: np.ndarray) -> Any:
    """Fill an Image with (H, W, 3) uint8 RGB as rgb8."""
    msg.header = header
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = 3 * rgb.shape[1]
    msg.data = _as_data(msg, np.ascontiguousarray(rgb, dtype=np.uint8))
    return msg


def fill_camera_info(msg: Any, header: Any, camera: Any) -> Any:
    """Fill a CameraInfo for a rectified PinholeCamera: K, P = K [I | shift], R = I, no
    distortion."""
    msg.header = header
    msg.width, msg.height = camera.width, camera.height
    msg.distortion_model = "plumb_bob"
    as_seq = (
        (lambda a: np.asarray(a, np.float64))
        if type(msg).__module__.startswith("rosbags")
        else (lambda a: [float(x) for x in a])
    )
    msg.d = as_seq(np.zeros(5))
    msg.k = as_seq(camera.K.ravel())
    msg.r = as_seq(np.eye(3).ravel())
    msg.p = as_seq(camera.P.ravel())
    return msg
