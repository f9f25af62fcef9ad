"""PointCloud2 / Image / CompressedImage / CameraInfo <-> numpy arrays, vectorised.

Decoding is duck-typed: it reads rclpy messages and ``rosbags`` messages alike (``data`` may
be an ``array.array``, ``bytes`` or a numpy array). Encoding fills message objects whose
classes the caller passes in, so the same code builds rclpy messages for the node and
``rosbags`` messages for bags; the node's outputs are encoded on the frame's device by
encode.py, with the layouts and containers defined here. Every malformed message raises
ValueError naming the problem.
"""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np

from .errors import UndecodableImage
from .types import CompressedImageLike, HeaderLike, ImageLike, PointCloud2Like

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
# 8-bit image encodings: channels, and OpenCV's conversion to RGB (None: already RGB)
_COLOUR = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "8UC1": (1, cv2.COLOR_GRAY2RGB),
    "8UC3": (3, cv2.COLOR_BGR2RGB),
}
MAX_POINTS = 50_000_000  # a cloud larger than this is refused rather than allocated


def _buffer(data: Any) -> np.ndarray:
    """The message's ``data`` as a uint8 numpy view (no copy for array.array, bytes, ndarray)."""
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def pointcloud2_records(msg: PointCloud2Like, names: "tuple[str, ...]") -> np.ndarray:
    """The fields ``names`` of a PointCloud2 as a structured array (N,) of their own datatypes
    (native byte order), for any point_step, either endianness, organised (height > 1, row
    padding allowed) or not. ValueError naming what is malformed or missing."""
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    if height < 0 or width < 0 or height * width > MAX_POINTS:
        raise ValueError(f"PointCloud2 of {width}x{height} points is out of bounds")
    fields = {f.name: f for f in msg.fields}
    if len(fields) != len(msg.fields):
        listed = [f.name for f in msg.fields]
        twice = sorted({n for n in listed if listed.count(n) > 1})
        raise ValueError(f"PointCloud2 names field {twice} more than once")
    missing = [n for n in names if n not in fields]
    if missing:
        raise ValueError(f"PointCloud2 has no field {missing} (fields: {sorted(fields)})")
    order = ">" if msg.is_bigendian else "<"
    formats, offsets = [], []
    for n in names:
        f = fields[n]
        if int(f.datatype) not in _FIELD_DTYPES:
            raise ValueError(f"PointCloud2 field '{n}' has unknown datatype {f.datatype}")
        dt = np.dtype(order + _FIELD_DTYPES[int(f.datatype)])
        if int(f.offset) < 0 or int(f.offset) + dt.itemsize > point_step:
            raise ValueError(
                f"PointCloud2 field '{n}' at offset {f.offset} does not fit point_step "
                f"{point_step}"
            )
        formats.append(dt)
        offsets.append(int(f.offset))
    dtype = np.dtype(
        {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": point_step}
    )
    if height * width == 0:
        return np.zeros(0, dtype)
    if row_step < width * point_step:
        raise ValueError(
            f"PointCloud2 row_step {row_step} < width {width} x point_step {point_step}"
        )
    buf = _buffer(msg.data)
    if buf.size < row_step * (height - 1) + width * point_step:
        raise ValueError(f"PointCloud2 data has {buf.size} bytes, expected {row_step * height}")
    if row_step == width * point_step:
        return np.frombuffer(buf, dtype=dtype, count=height * width)
    rows = np.lib.stride_tricks.as_strided(
        buf, shape=(height, width * point_step), strides=(row_step, 1)
    )
    return np.frombuffer(np.ascontiguousarray(rows).reshape(-1), dtype=dtype)


def pointcloud2_to_xyz(msg: PointCloud2Like) -> np.ndarray:
    """x, y, z of a PointCloud2 as (N, 3) float32, LiDAR frame, metres (any layout:
    ``pointcloud2_records``). Points with a non-finite coordinate are kept (the projection
    ignores them)."""
    rec = pointcloud2_records(msg, ("x", "y", "z"))
    out = np.empty((rec.shape[0], 3), np.float32)
    for i, n in enumerate(("x", "y", "z")):
        out[:, i] = rec[n]
    return out


def pointcloud2_field_types(msg: PointCloud2Like) -> dict[str, str]:
    """Each field's name and numpy type code ('f4', 'u4', ...; '?' for an unknown datatype)."""
    return {f.name: _FIELD_DTYPES.get(int(f.datatype), "?") for f in msg.fields}


def image_to_rgb(msg: ImageLike) -> np.ndarray:
    """An 8-bit Image (rgb8, bgr8, rgba8, bgra8, mono8) as (H, W, 3) uint8 RGB; honours
    ``step``. A tightly packed rgb8 image is returned as a view of the message's bytes (no
    copy; read-only where they are); the others are converted by OpenCV."""
    enc = str(msg.encoding)
    if enc not in _COLOUR:
        raise ValueError(f"Image encoding '{enc}' is not supported (use one of {sorted(_COLOUR)})")
    channels, conversion = _COLOUR[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ValueError(f"Image has size {w}x{h}")
    if step < w * channels:
        raise ValueError(f"Image step {step} < width {w} x {channels} bytes")
    buf = _buffer(msg.data)
    if buf.size < step * (h - 1) + w * channels:
        raise ValueError(f"Image data has {buf.size} bytes, expected {step * h}")
    rows = np.lib.stride_tricks.as_strided(
        buf, shape=(h, w, channels), strides=(step, channels, 1), writeable=False
    )
    if conversion is None:
        return np.ascontiguousarray(rows)
    return cv2.cvtColor(np.ascontiguousarray(rows), conversion)


def compressed_to_rgb(msg: CompressedImageLike) -> np.ndarray:
    """A CompressedImage (JPEG or PNG, as image_transport's ``compressed`` transport writes it;
    colour or grey, 8-bit) as (H, W, 3) uint8 RGB, decoded by OpenCV; UndecodableImage for what
    does not decode, ValueError for what is not a camera image (a ``compressedDepth`` image, a
    16-bit PNG: a depth image)."""
    if "compresseddepth" in str(msg.format).replace(" ", "").lower():
        raise ValueError(
            f"CompressedImage of format '{msg.format}' is a depth image (image_transport's "
            "compressedDepth), not the camera's: subscribe camera/image to the colour image"
        )
    buf = _buffer(msg.data)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None:
        raise UndecodableImage(
            f"CompressedImage ({buf.size} bytes, format '{msg.format}') cannot be decoded"
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"CompressedImage (format '{msg.format}') decodes to {image.dtype} pixels: a depth "
            "or 16-bit image, not an 8-bit camera image"
        )
    channels = 1 if image.ndim == 2 else image.shape[2]
    to_rgb = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
    return cv2.cvtColor(image, to_rgb[channels])


def any_image_to_rgb(msg: ImageLike | CompressedImageLike) -> np.ndarray:
    """An Image or a CompressedImage (told apart by its ``format`` field) as RGB."""
    return compressed_to_rgb(msg) if isinstance(msg, CompressedImageLike) else image_to_rgb(msg)


def stamp_seconds(header: HeaderLike) -> float:
    """A header's stamp in seconds."""
    return int(header.stamp.sec) + int(header.stamp.nanosec) * 1e-9


def stamp_ns(header: HeaderLike) -> int:
    """A header's stamp in integer nanoseconds (exact: the key of a frame across messages)."""
    return int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)


def time_fields(ns: int) -> dict[str, int]:
    """The ``sec`` and ``nanosec`` of a builtin_interfaces/Time at ``ns`` nanoseconds."""
    sec, nanosec = divmod(int(ns), 10**9)
    return {"sec": sec, "nanosec": nanosec}


def depth_image_to_metres(msg: ImageLike) -> np.ndarray:
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
    return np.asarray(np.where(np.isfinite(d) & (d > 0), d, np.float32(0.0)))


def _uint8_array(a: np.ndarray) -> "array.array[int]":
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(a).view(np.uint8).reshape(-1).data)
    return out


def as_data(msg: Any, a: np.ndarray, owned: bool = False) -> Any:
    """The right container for a message's uint8[] field: numpy for rosbags (``a`` itself when
    the message may keep it, ``owned``: nobody else writes to it), array.array for rclpy (its
    only fast container, always a copy)."""
    if isinstance(getattr(msg, "data", None), np.ndarray) or type(msg).__module__.startswith(
        "rosbags"
    ):
        flat = np.ascontiguousarray(a).view(np.uint8).reshape(-1)
        return flat if owned else flat.copy()
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


def fill_cloud_from_array(
    msg: Any,
    field_cls: type,
    header: Any,
    points: np.ndarray,
    names: "tuple[str, ...]" = ("x", "y", "z", "intensity"),
) -> Any:
    """Fill a PointCloud2 with (N, K) float32 columns named the first K of ``names`` (x, y,
    z[, intensity] by default; point_step 4K), as a LiDAR driver publishes; unorganised."""
    pts = np.ascontiguousarray(points, dtype="<f4")
    names = names[: pts.shape[1]]
    msg.header = header
    msg.height, msg.width = 1, pts.shape[0]
    msg.fields = [
        field_cls(name=n, offset=4 * i, datatype=FLOAT32, count=1) for i, n in enumerate(names)
    ]
    msg.is_bigendian = False
    msg.point_step = 4 * pts.shape[1]
    msg.row_step = msg.point_step * pts.shape[0]
    msg.is_dense = bool(np.isfinite(pts[:, :3]).all())
    msg.data = as_data(msg, pts)
    return msg


def fill_rgb_image(msg: Any, header: Any, rgb: np.ndarray) -> Any:
    """Fill an Image with (H, W, 3) uint8 RGB as rgb8."""
    msg.header = header
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = 3 * rgb.shape[1]
    msg.data = as_data(msg, np.ascontiguousarray(rgb, dtype=np.uint8))
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
