"""The neighbouring sweeps accumulated into a frame — the recipe behind KITTI's depth-completion
ground truth (Uhrig et al. accumulate 11 scans) — as the targets of ``evaluate --protocol
accumulated:N``: each neighbouring sweep's returns moved into the frame's camera by the camera's
motion (odometry.py: from the frame's own returns tracked into the neighbour's image),
projected, and kept only where the frame's own sweep vouches for them:

- supported: an own return within SUPPORT px agrees with the point's depth within AGREE (a point
  of an object that moved between the sweeps, or of a pose gone wrong, finds none);
- visible: not more than classic.HIDDEN behind the nearest point (own or accumulated) within
  classic.HIDDEN_RADIUS px (a surface the frame's camera sees in front of it: occlusion).

(As training targets they lost, on ICP poses and on these: docs/EVALUATION.md.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..core.classic import FAR, VALID, visible_returns
from ..core.completion import image_tensor
from ..core.geometry import project_points
from ..data.datasets import Frame
from .evaluate import MAX_DEPTH, MIN_DEPTH, Split, project_lidar
from .odometry import motion
from .views import camera_from_lidar, returns_target

AGREE = 0.05  # the most a kept point's depth may differ (relative) from a supporting own return
SUPPORT = 4  # px (Chebyshev): how near that own return must be


def supported(points: np.ndarray, own: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of ``points`` (H, W) metres (0 = none) with a pixel of ``own``
    (H, W) metres (0 = none) within SUPPORT px whose depth agrees within AGREE."""
    h, w = own.shape
    r = SUPPORT
    padded = np.pad(own, r)
    out = np.zeros(own.shape, bool)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            o = padded[dy : dy + h, dx : dx + w]
            out |= (o > VALID) & (np.abs(points - o) <= AGREE * o)
    return out & (points > VALID)


def accumulate(own: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """(H, W) metres (0 = none): the points of ``neighbours`` (V, H, W) metres (0 = none; each
    a neighbouring sweep projected into the frame's camera) that are supported by the frame's
    own returns ``own`` (H, W) and visible, at the pixels ``own`` leaves empty; where several
    neighbours hit one pixel the nearest point is taken."""
    near = np.where(neighbours > VALID, neighbours, np.float32(FAR)).min(axis=0)
    points = np.where((near < FAR) & ~(own > VALID), near, 0.0).astype(np.float32)
    seen = visible_returns(np.where(own > VALID, own, points).astype(np.float32))
    return np.where(seen & supported(points, own), points, 0.0).astype(np.float32)


def neighbour_depth(frame: Frame, other: Frame, t_frame_other: np.ndarray) -> np.ndarray:
    """(H, W) metres (0 = none): the returns of ``other`` projected into ``frame``'s image, the
    camera having moved by ``t_frame_other`` (4, 4: ``other``'s camera optical frame into
    ``frame``'s)."""
    t = (
        np.linalg.inv(frame.camera.optical_from_reference())
        @ t_frame_other
        @ camera_from_lidar(other)
    )
    depth, _ = project_points(
        torch.from_numpy(other.points), frame.camera, t, MIN_DEPTH, MAX_DEPTH
    )
    return depth[0, 0].numpy()


def accumulated_split(frame: Frame, others: list[Frame]) -> "Split | None":
    """The evaluation's ``accumulated`` split of ``frame``: its whole sweep the input, the target
    the points accumulate() keeps of the sweeps of ``others`` (neighbouring frames of its
    sequence, each moved by the camera's motion from odometry.motion): independent
    measurements at pixels between the frame's own returns. None when no neighbour's motion is
    found."""
    first = returns_target(frame)
    depth, mask = project_lidar(frame, frame.points)
    moved = []
    for other in others:
        found = motion(first, frame.camera.K, other.rgb)
        if found is not None:
            moved.append(neighbour_depth(frame, other, np.linalg.inv(found.transform)))
    if not moved:
        return None
    extra = torch.from_numpy(accumulate(depth[0, 0].numpy(), np.stack(moved)))[None, None]
    return Split(depth + extra, depth, mask, (extra > 0).float(), image_tensor(frame.rgb))


def accumulated_frames(
    reader: Any, ids: list, span: int, tick: "Callable[[], object] | None" = None
) -> tuple[list[Frame], list[Split]]:
    """The frames ``ids`` of the sequence ``reader`` that have a neighbour's motion within
    ``span`` frames each side, and their ``accumulated_split``s; ``tick`` after each frame."""
    from .views import TemporalViews

    temporal = TemporalViews(reader)
    index = {fid: i for i, fid in enumerate(reader.frame_ids())}
    frames, splits = [], []
    for fid in ids:
        i = index[fid]
        near = [j for j in range(i - span, i + span + 1) if j != i and 0 <= j < len(index)]
        split = accumulated_split(temporal.frame(i), [temporal.frame(j) for j in near])
        if split is not None:
            frames.append(temporal.frame(i))
            splits.append(split)
        if tick is not None:
            tick()
    return frames, splits
