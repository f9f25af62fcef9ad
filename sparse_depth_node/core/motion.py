"""A LiDAR sweep's motion, as motion compensation uses it: where the LiDAR was while it fired,
relative to where it is at the camera's instant (geometry.deskew carries each point by it, on
the CPU or a GPU), so that a moving robot's points land where the camera saw them.

A sweep's poses are sampled at the centres of B equal time bins spanning its points' times
(msgs/motion.py looks them up in TF); a point takes its bin's pose: with 128 bins over a 0.1 s
sweep a point's pose is at most 0.4 ms off its own time (4 mm at 10 m/s, 0.02 degrees at
60 degrees/s). No torch: the bag tools describe sweeps too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 128  # time bins of a sweep, one pose each


@dataclass(frozen=True)
class Sweep:
    """Where the LiDAR was while it fired, relative to where it is at the camera's instant.

    times: (N,) float32 seconds from the sweep's start to each point's firing (NaN: unknown),
        in the order of the points; None: every point fired at the start (a cloud without a
        time field, carried from its stamp).
    span: seconds from the start to the last point's firing (0 for one instant).
    poses: (B, 4, 4) float64 T_lidar(camera instant)<-lidar(centre of bin b), bin b covering
        [b, b + 1) * span / B.
    """

    times: "np.ndarray | None"
    span: float
    poses: np.ndarray


def bin_centres(start: float, span: float, bins: int) -> np.ndarray:
    """(bins,) the times of the bins' centres, seconds, of a sweep from ``start`` lasting
    ``span``."""
    return np.asarray(start + (np.arange(bins) + 0.5) * span / bins)
