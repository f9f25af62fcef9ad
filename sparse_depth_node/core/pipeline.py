"""The per-frame function: LiDAR points + camera (+ image) -> sparse, dense depth and a cloud.

The same function serves the ROS node, offline bag processing, evaluation and the
benchmarks. Everything stays on the completer's device: one host->device copy of the points
and of the image per frame, projection, completion (a network's classical prefill included:
classic_torch on a GPU) and back-projection there. ``run_frame`` leaves the outputs there (the
frame path encodes its messages on the device and copies each message's bytes to the host
once); ``process_frame`` copies them all to the host as numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from .camera import PinholeCamera
from .completion import DepthCompleter, image_tensor
from .geometry import backproject_depth, deskew, project_points, voxel_downsample
from .motion import Sweep
from .settings import resolve
from .timing import Stopwatch

A = TypeVar("A", torch.Tensor, np.ndarray)


@dataclass
class FrameResult(Generic[A]):
    """Outputs of one frame: tensors on the completer's device (``run_frame``) or numpy arrays
    on the host (``process_frame``, ``to_host``).

    sparse_depth, dense_depth: (H, W) float32 metres, 0 = no measurement / no estimate.
    mask: (H, W) bool, pixels with a LiDAR return. confidence: (H, W) float32 in [0, 1].
    cloud: (M, 3) float32 in the camera's reference optical frame (the frame t_cam_from_lidar
    maps into, i.e. the image's frame_id; P's translation column is undone); cloud_rgb: (M, 3)
    uint8 or None;
    cloud_pixels: (H', W') bool on the strided grid, True where a cloud point comes from
    (row-major order of ``cloud``; with ``cloud_voxel`` the cloud holds one point per voxel
    instead). timings_ms: per-stage wall time.
    """

    sparse_depth: A
    mask: A
    dense_depth: A
    confidence: A
    cloud: A
    cloud_rgb: "A | None"
    cloud_pixels: A
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_host(self: "FrameResult[torch.Tensor]") -> "FrameResult[np.ndarray]":
        """Every output copied to the host (timed as ``to_host``)."""
        timer = Stopwatch(cuda=self.dense_depth.device.type == "cuda")
        host = FrameResult(
            sparse_depth=self.sparse_depth.cpu().numpy(),
            mask=self.mask.cpu().numpy(),
            dense_depth=self.dense_depth.cpu().numpy(),
            confidence=self.confidence.cpu().numpy(),
            cloud=self.cloud.cpu().numpy(),
            cloud_rgb=None if self.cloud_rgb is None else self.cloud_rgb.cpu().numpy(),
            cloud_pixels=self.cloud_pixels.cpu().numpy(),
            timings_ms=dict(self.timings_ms),
        )
        host.timings_ms["to_host"] = timer.lap("to_host")
        host.timings_ms["total"] += host.timings_ms["to_host"]
        return host


def to_device(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array as a tensor on ``device``: on the CPU the array itself (copied only when
    it is read-only or strided, as a decoded message's bytes can be); on a GPU copied once into
    pinned memory and uploaded from there without waiting."""
    if device.type == "cpu":
        return torch.from_numpy(np.require(a, requirements=("C", "W")))
    dtype = torch.from_numpy(np.empty(0, a.dtype)).dtype
    host = torch.empty(a.shape, dtype=dtype, pin_memory=True)
    host.numpy()[...] = a
    return host.to(device, non_blocking=True)


def process_frame(
    points: np.ndarray,
    camera: PinholeCamera,
    t_cam_from_lidar: np.ndarray,
    completer: DepthCompleter,
    rgb: "np.ndarray | None" = None,
    settings: "Mapping[str, Any] | None" = None,
    sweep: "Sweep | None" = None,
) -> FrameResult[np.ndarray]:
    """``run_frame``, its outputs copied to the host."""
    return run_frame(points, camera, t_cam_from_lidar, completer, rgb, settings, sweep).to_host()


def checked_inputs(
    points: np.ndarray,
    camera: PinholeCamera,
    t_cam_from_lidar: np.ndarray,
    rgb: "np.ndarray | None",
) -> tuple[np.ndarray, np.ndarray]:
    """The points (N, 3+) and the transform (4, 4, float64) of a frame, checked: ValueError for
    wrong shapes, a non-finite transform or an image that does not match the camera."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    t = np.asarray(t_cam_from_lidar, dtype=np.float64)
    if t.shape != (4, 4) or not np.all(np.isfinite(t)):
        raise ValueError("t_cam_from_lidar must be a finite (4, 4) matrix")
    if rgb is not None and tuple(rgb.shape) != (camera.height, camera.width, 3):
        raise ValueError(
            f"image is {tuple(rgb.shape)} but the camera expects "
            f"({camera.height}, {camera.width}, 3)"
        )
    return pts, t


def frame_cloud(
    dense: torch.Tensor,
    camera: PinholeCamera,
    rgb: "torch.Tensor | None",
    s: Mapping[str, Any],
) -> "tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]":
    """The cloud of a dense depth (1, 1, H, W) as the settings ``s`` ask (stride, colour,
    voxels), in the camera's reference optical frame: points, colours, kept pixels."""
    cloud, colours, kept = backproject_depth(
        dense, camera, stride=int(s["cloud_stride"]), rgb=rgb if s["colorize_cloud"] else None
    )
    if any(camera.shift):  # back into the reference optical frame, the frame of t_cam_from_lidar
        cloud = cloud - torch.tensor(camera.shift, dtype=cloud.dtype, device=cloud.device)
    if s["cloud_voxel"] > 0:
        cloud, colours = voxel_downsample(cloud, s["cloud_voxel"], colours)
    return cloud, colours, kept


def run_frame(
    points: np.ndarray,
    camera: PinholeCamera,
    t_cam_from_lidar: np.ndarray,
    completer: DepthCompleter,
    rgb: "np.ndarray | None" = None,
    settings: "Mapping[str, Any] | None" = None,
    sweep: "Sweep | None" = None,
) -> FrameResult[torch.Tensor]:
    """Run motion compensation, projection, completion and back-projection on one frame, on
    the completer's device.

    Args:
        points: (N, 3+) float LiDAR points (x, y, z first), LiDAR frame, metres.
        camera: the rectified pinhole camera of the image.
        t_cam_from_lidar: (4, 4) LiDAR (at the camera's instant) -> camera reference optical
            frame.
        completer: the completion method and its device.
        rgb: optional (H, W, 3) uint8 image of the camera: the input of an image-guided
            completer (which needs it) and the cloud's colour.
        settings: the settings (core.settings) that differ from the defaults, or all of them;
            per frame: min_depth, max_depth, confidence_threshold, cloud_stride, cloud_voxel,
            colorize_cloud.
        sweep: each point's motion from its firing to the camera's instant (core.motion);
            None: the points are taken as they are.

    Raises ValueError for malformed input (wrong shapes, an image that does not match the
    camera, a non-finite transform, settings out of range). Empty clouds give an empty, valid
    result.
    """
    s = resolve(settings)
    pts, t = checked_inputs(points, camera, t_cam_from_lidar, rgb)
    device = completer.device
    timer = Stopwatch(cuda=device.type == "cuda")
    pts_t = to_device(np.asarray(pts[:, :3], dtype=np.float32), device)
    rgb_t = None if rgb is None else to_device(np.asarray(rgb, dtype=np.uint8), device)
    timer.lap("to_device")
    if sweep is not None:
        times = None if sweep.times is None else to_device(sweep.times, device)
        poses = torch.as_tensor(sweep.poses, dtype=torch.float32).to(device, non_blocking=True)
        pts_t = deskew(pts_t, times, sweep.span, poses)
        timer.lap("deskew")
    sparse, mask = project_points(pts_t, camera, t, s["min_depth"], s["max_depth"])
    timer.lap("project")
    image = image_tensor(rgb_t) if rgb_t is not None and completer.needs_image else None
    dense, conf = completer.complete(sparse, mask, image)
    in_range = (dense >= s["min_depth"]) & (dense <= s["max_depth"])
    # a LiDAR return is published whatever the confidence: the threshold is for the fill
    in_range &= ((conf >= s["confidence_threshold"]) & (conf > 0)) | (mask > 0)
    dense = torch.where(in_range, dense, torch.zeros_like(dense))
    timer.lap("complete")
    cloud, colours, kept = frame_cloud(dense, camera, rgb_t, s)
    timer.lap("backproject")
    result = FrameResult(
        sparse_depth=sparse[0, 0],
        mask=mask[0, 0] > 0,
        dense_depth=dense[0, 0],
        confidence=conf[0, 0],
        cloud=cloud,
        cloud_rgb=colours,
        cloud_pixels=kept,
        timings_ms=dict(timer.laps),
    )
    result.timings_ms["total"] = sum(timer.laps.values())
    return result
