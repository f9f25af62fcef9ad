"""Other views of a frame's scene, for judging a depth image by the images it predicts:

- temporal: the frames before and after in a sequence (KITTI raw: 10 Hz), the camera's motion
  from registering the LiDAR sweeps (registration.py), each the nearest frame on its side
  whose camera moved at least MIN_BASELINE (a standing car shows no parallax);
- stereo: the other camera of a rectified pair, where the data set has one (KITTI raw's
  image_03 beside image_02), the motion from the two cameras' projection matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.datasets import Frame, KittiRawReader, load_rgb
from .registration import camera_motion, register

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


class TemporalViews:
    """Temporal views of the frames of ``reader`` (a sequence: frame ids in time order), with
    the consecutive sweeps' registrations cached."""

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
        self._steps: dict[int, np.ndarray] = {}  # i -> T_lidar(i+1)<-lidar(i)

    def frame(self, i: int) -> Frame:
        if i not in self._frames:
            self._frames[i] = self.reader.read(self.ids[i])
        return self._frames[i]

    def _step(self, i: int) -> np.ndarray:
        if i not in self._steps:
            self._steps[i] = register(self.frame(i).points, self.frame(i + 1).points).transform
        return self._steps[i]

    def _chained(self, i: int, j: int) -> np.ndarray:
        """T_lidar(j)<-lidar(i) composed from the consecutive steps."""
        t = np.eye(4)
        for k in range(i, j) if j > i else range(i - 1, j - 1, -1):
            t = (self._step(k) if j > i else np.linalg.inv(self._step(k))) @ t
        return t

    def views(self, i: int) -> list[View]:
        """The nearest frame before and after frame index ``i`` whose camera moved at least
        ``min_baseline``, each registered to ``i`` directly from the chained guess."""
        target = self.frame(i)
        t_cam = camera_from_lidar(target)
        out = []
        for direction in (-1, 1):
            for j in range(i + direction, i + direction * (self.max_gap + 1), direction):
                if not self.within[0] <= j < self.within[1]:
                    break
                guess = self._chained(i, j)
                if np.linalg.norm(camera_motion(t_cam, guess)[:3, 3]) < self.min_baseline:
                    continue
                lidar = register(target.points, self.frame(j).points, guess).transform
                source = self.frame(j)
                out.append(
                    View(f"t{j - i:+d}", source.rgb, source.camera.K, camera_motion(t_cam, lidar))
                )
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
