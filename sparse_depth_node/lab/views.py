"""Other views of a frame's scene, for judging a depth image by the images it predicts:

- temporal: the frames before and after in a sequence (KITTI raw: 10 Hz), the camera's motion
  from the frame's LiDAR returns tracked into the other image (odometry.py), each the nearest
  frame on its side whose camera moved at least MIN_BASELINE (a standing car shows no
  parallax);
- stereo: the other camera of a rectified pair, where the data set has one (KITTI raw's
  image_03 beside image_02), the motion from the two cameras' projection matrices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.datasets import Frame, KittiRawReader, load_rgb
from .odometry import Target, motion, target

MIN_BASELINE = 0.3  # m the camera must have moved for a temporal view
MAX_GAP = 10  # frames searched on each side


@dataclass(frozen=True)
class View:
    """Another image of the target frame's scene: ``rgb`` (H', W', 3) uint8, its intrinsics
    ``k`` (3, 3), ``t_view_target`` (4, 4) mapping target camera coordinates (optical frame of
    the target's image) into this view's, and a name ("t+2", "stereo")."""

    name: str
    rgb: np.ndarray
    k: np.ndarray
    t_view_target: np.ndarray


def camera_from_lidar(frame: Frame) -> np.ndarray:
    """T_camera<-lidar (4, 4) into the optical frame of the frame's own image (the reference
    frame's transform with the camera's P offset applied)."""
    return frame.camera.optical_from_reference() @ frame.t_cam_from_lidar


def returns_target(frame: Frame) -> Target:
    """The frame's image and its LiDAR returns, as odometry.motion starts from them."""
    t_cam = camera_from_lidar(frame)
    points = frame.points @ t_cam[:3, :3].T + t_cam[:3, 3]
    return target(points, frame.camera.K, frame.rgb)


class TemporalViews:
    """Temporal views of the frames of ``reader`` (a sequence: frame ids in time order)."""

    def __init__(
        self,
        reader,
        min_baseline: float = MIN_BASELINE,
        max_gap: int = MAX_GAP,
        within: "tuple[int, int] | None" = None,
    ) -> None:
        """``within``: frame indices [A, B) the views may come from (default: all)."""
        self.reader, self.ids = reader, reader.frame_ids()
        self.min_baseline, self.max_gap = min_baseline, max_gap
        self.within = within or (0, len(self.ids))
        self._frames: dict[int, Frame] = {}

    def frame(self, i: int) -> Frame:
        if i not in self._frames:
            self._frames[i] = self.reader.read(self.ids[i])
        return self._frames[i]

    def views(self, i: int) -> list[View]:
        """The nearest frame before and after frame index ``i`` whose camera moved at least
        ``min_baseline`` (frames whose motion cannot be found are passed over)."""
        first = returns_target(self.frame(i))
        k = self.frame(i).camera.K
        out = []
        for direction in (-1, 1):
            for j in range(i + direction, i + direction * (self.max_gap + 1), direction):
                if not self.within[0] <= j < self.within[1]:
                    break
                source = self.frame(j)
                found = motion(first, k, source.rgb)
                if found is None or np.linalg.norm(found.transform[:3, 3]) < self.min_baseline:
                    continue
                out.append(View(f"t{j - i:+d}", source.rgb, source.camera.K, found.transform))
                break
        return out


def stereo_view(root: "str | Path", frame: Frame, camera: int = 3) -> "View | None":
    """The other camera of a KITTI raw drive (``image_0{camera}``) at the same frame, or None
    when the drive has no such images."""
    path = Path(root) / f"image_0{camera}" / "data" / f"{frame.name}.png"
    if not path.is_file():
        return None
    other = KittiRawReader(root, camera).camera  # the calibration only: no sweep to read
    t = other.optical_from_reference() @ np.linalg.inv(frame.camera.optical_from_reference())
    return View("stereo", load_rgb(path), other.K, t)


def sequence_views(
    reader: Any,
    ids: list,
    stereo_root: "str | Path | None" = None,
    tick: "Callable[[], object] | None" = None,
) -> list[tuple[Frame, list[View]]]:
    """Each frame ``ids`` of the sequence ``reader`` with its other views: the neighbouring
    frames (TemporalViews) and, with ``stereo_root`` (a KITTI raw drive), the right camera;
    ``tick`` after each frame."""
    temporal = TemporalViews(reader)
    index = {fid: i for i, fid in enumerate(reader.frame_ids())}
    out = []
    for fid in ids:
        frame = temporal.frame(index[fid])
        views = temporal.views(index[fid])
        stereo = stereo_view(stereo_root, frame) if stereo_root is not None else None
        out.append((frame, views + ([stereo] if stereo is not None else [])))
        if tick is not None:
            tick()
    return out
