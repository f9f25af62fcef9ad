"""The frame path: one synchronised cloud / image / camera_info set in, every output message
out. The node, ``sparse-depth process`` and the benchmark all run a frame through here, so what
is benchmarked and what is written to a bag is what the node publishes.

Messages are duck-typed (rclpy or ``rosbags`` classes); a ``MessageKit`` (kits.py, bag/io.py)
makes the blank outputs of either kind; what is published comes from the output table
(outputs.py). Nothing here imports rclpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.camera import PinholeCamera
from ..core.completion import DepthCompleter
from ..core.geometry import FEW_RETURNS, empty_depth_reason
from ..core.pipeline import run_frame
from ..core.timing import Stopwatch
from .admit import size_problem
from .convert import any_image_to_rgb, pointcloud2_to_xyz
from .errors import Dropped, UndecodableImage
from .kits import sensor_messages
from .motion import Placement
from .outputs import OUTPUTS, MessageKit

# (cloud, image, the image's camera) -> the set's placement (a bare T_camera<-lidar (4, 4) for
# a fixed extrinsic), or None when there is none yet; ExtrinsicSource.place is the full one
ExtrinsicLookup = Callable[[Any, Any, PinholeCamera], "Placement | np.ndarray | None"]


@dataclass
class DecodedSet:
    """A synchronised set as arrays: points (N, 3) float32 in the LiDAR frame, metres; the image
    (H, W, 3) uint8 RGB; its camera; where the cloud goes (T_camera<-lidar (4, 4) and the sweep's
    motion); the stage timings (ms)."""

    points: np.ndarray
    rgb: np.ndarray
    camera: PinholeCamera
    placement: Placement
    timings_ms: dict[str, float]


def decode_set(
    cloud: Any, image: Any, info: Any, extrinsic: ExtrinsicLookup, values: Mapping[str, Any]
) -> DecodedSet:
    """The messages of a synchronised set as arrays, each checked against the caps first
    (admit.py). ``extrinsic(cloud, image, camera)`` places the cloud (ExtrinsicSource.place,
    whose Dropped passes through; None: ``tf_missing``); ``image`` is an Image or a
    CompressedImage. Raises ``Dropped`` for a malformed set or one larger than the caps
    (``rejected_input``) or a compressed image that cannot be decoded (``undecodable_image``)."""
    watch = Stopwatch()
    try:
        for stream, msg in (("cloud", cloud), ("image", image), ("info", info)):
            problem = size_problem(stream, msg, values)
            if problem:
                raise ValueError(problem)
        points = pointcloud2_to_xyz(cloud)
        watch.lap("cloud_msg_to_array")
        rgb = any_image_to_rgb(image)
        watch.lap("image_msg_to_array")
        camera = PinholeCamera.from_camera_info(info, values["image_rectified"])
        if (camera.width, camera.height) != (rgb.shape[1], rgb.shape[0]):
            raise ValueError(
                f"camera_info is {camera.width}x{camera.height} but the image is "
                f"{rgb.shape[1]}x{rgb.shape[0]}"
            )
    except UndecodableImage as exc:
        raise Dropped("undecodable_image", str(exc)) from exc
    except ValueError as exc:
        raise Dropped("rejected_input", str(exc)) from exc
    placed = extrinsic(cloud, image, camera)
    if placed is None:
        raise Dropped(
            "tf_missing", f"no transform {cloud.header.frame_id} -> {image.header.frame_id}"
        )
    placement = placed if isinstance(placed, Placement) else Placement(np.asarray(placed))
    watch.lap("camera_and_extrinsic")
    return DecodedSet(points, rgb, camera, placement, dict(watch.laps))


@dataclass
class SetOutput:
    """What a set gives: {topic: message} (stamped and framed as the image, REP 118), the stage
    timings (ms), and ``empty``: why the depth holds (nearly) no LiDAR return, when it does (the
    messages are published all the same: NaN is no estimate)."""

    messages: dict[str, Any]
    timings: dict[str, float]
    empty: "str | None" = None


def run_set(
    cloud: Any,
    image: Any,
    info: Any,
    extrinsic: ExtrinsicLookup,
    completer: DepthCompleter,
    values: Mapping[str, Any],
    topics: "list[str]",
    kit: MessageKit,
) -> SetOutput:
    """Decode a synchronised set (``decode_set``, whose ``Dropped`` it raises), run the
    per-frame pipeline and encode the outputs ``topics``: their messages, the stage timings
    (decoding each message, the pipeline's stages, encoding each output on the completer's
    device with its one copy to the host) and why the depth is empty when it is
    (core.geometry.empty_depth_reason: fewer than FEW_RETURNS pixels hold a return).
    ``torch.cuda.OutOfMemoryError`` passes through for the caller to handle.
    """
    decoded = decode_set(cloud, image, info, extrinsic, values)
    try:
        result = run_frame(
            decoded.points,
            decoded.camera,
            decoded.placement.t_cam_from_lidar,
            completer,
            decoded.rgb,
            values,
            decoded.placement.sweep,
        )
    except ValueError as exc:
        raise Dropped("rejected_input", str(exc)) from exc
    watch = Stopwatch()
    by_topic = {o.topic: o for o in OUTPUTS}
    messages = {}
    for t in topics:
        messages[t] = by_topic[t].encode(result, image.header, info, values, kit)
        watch.lap(f"encode {t}")
    empty = None
    if int(result.mask.sum()) < FEW_RETURNS:
        p = decoded.placement
        empty = empty_depth_reason(
            decoded.points,
            decoded.camera,
            p.t_cam_from_lidar,
            float(values["min_depth"]),
            float(values["max_depth"]),
        )
    return SetOutput(messages, {**decoded.timings_ms, **result.timings_ms, **watch.laps}, empty)


def warm_up(
    completer: DepthCompleter,
    values: Mapping[str, Any],
    topics: "list[str]",
    kit: MessageKit,
    width: int,
    height: int,
) -> float:
    """Run one synthetic set of ``width`` x ``height`` through the frame path (decoding, the
    network, encoding ``topics``), so that the first real frame of that size costs what every
    frame costs: the network's kernels are chosen and the allocator holds its buffers. The
    scene: a plane 10 m ahead of the camera seen by 64 scan lines (a point every other column,
    fewer where ``max_points`` allows fewer: a configuration real frames fit is never refused),
    an image with texture. Returns the milliseconds it took."""
    watch = Stopwatch()
    camera = PinholeCamera(width / 2, width / 2, width / 2, height / 2, width, height)
    rows = len(range(0, height, max(height // 64, 1)))
    step = max(2, -(-rows * width // int(values["max_points"])))
    v, u = np.mgrid[0 : height : max(height // 64, 1), 0:width:step].reshape(2, -1) + 0.5
    z = np.full(u.shape, 10.0)
    points = np.c_[(u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, z, z * 0]
    rgb = (np.mgrid[0:height, 0:width, 0:3].sum(0) * 7 % 256).astype(np.uint8)
    cloud, image, info = sensor_messages(kit, points, rgb, camera, 0, "lidar", "camera")
    run_set(cloud, image, info, lambda *_: np.eye(4), completer, values, topics, kit)
    return watch.lap("warm_up")
