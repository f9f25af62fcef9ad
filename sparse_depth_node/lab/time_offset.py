"""The camera's time offset, measured from a recording: the ``time_offset.image`` that best
aligns the LiDAR's depth edges with the image's edges on a moving robot (``fixed_frame_id``).

Each candidate offset places every set's sweep as the node would with it (msgs/motion.py,
through the bag's TF) and scores where the projected returns at depth discontinuities land
(Levinson & Thrun, "Automatic online calibration of cameras and lasers", RSS 2013): a return's
weight is the square root of the depth jump to its farthest neighbour along the image row
(a foreground silhouette), and the image's edges are its grey gradient magnitude spread by a
truncated inverse distance transform. The sets' curves are summed; the best candidate is
refined by a parabola through its neighbours, and its spread is a bootstrap over the sets.
Without motion every candidate scores the same: the offset cannot be seen, and it is said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..bag.frames import compensated_points
from ..bag.io import open_bag
from ..bag.sets import BagSets
from ..core.geometry import project_points
from ..core.settings import resolve
from ..msgs.errors import Dropped
from ..msgs.frame import DecodedSet, decode_set
from ..msgs.motion import instants_ns, sweep_placement
from ..msgs.point_times import point_times
from ..msgs.tf_buffer import TfBuffer, TfUnavailable
from .metrics import gradient_magnitude

NEIGHBOURS = 6  # px either side along a row where a return's farther neighbour is looked for
MIN_JUMP = 0.1  # a jump smaller than this share of the return's depth is a surface, not an edge
MAX_JUMP_M = 10.0  # larger jumps weigh as this one (sky or a far wall behind: no more certain)
SPREAD = (0.85, 6)  # an edge's score falls by 0.85 a pixel, over 6 px (the inverse distance
# transform of Levinson & Thrun, truncated; 0.7 over 3 px and 0.9 over 10 px: docs/NODE.md)
FLAT = 0.005  # curves whose best beats their mean by less than this share cannot place it
BOOTSTRAP = 200  # resamples of the sets for the spread
SEED = 0


def edge_map(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the image's (H, W, 3 uint8 RGB) grey gradient magnitude over
    its 99th percentile, clipped, then spread: each pixel takes the strongest edge within
    SPREAD[1] px, scaled by SPREAD[0] per pixel away."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = gradient_magnitude(grey)
    edges = np.clip(magnitude / max(float(np.percentile(magnitude, 99)), 1e-6), 0, 1)
    kernel = np.ones((3, 3), np.uint8)
    spread = edges
    for _ in range(SPREAD[1]):
        spread = np.maximum(spread, SPREAD[0] * cv2.dilate(spread, kernel))
    return spread.astype(np.float32)


def silhouette_weights(depth: np.ndarray) -> np.ndarray:
    """(H, W) float32: for each return of a sparse depth image (H, W) metres (0 = none), the
    square root of the jump (m, at most MAX_JUMP_M) to the farthest return within NEIGHBOURS
    px along its row, where it exceeds MIN_JUMP of its depth; 0 elsewhere."""
    kernel = np.ones((1, 2 * NEIGHBOURS + 1), np.uint8)
    farthest = cv2.dilate(depth.astype(np.float32), kernel)
    jump = np.where(depth > 0, farthest - depth, 0.0)
    edge = jump > MIN_JUMP * depth
    return np.where(edge, np.sqrt(np.minimum(jump, MAX_JUMP_M)), 0.0).astype(np.float32)


def alignment(depth: np.ndarray, edges: np.ndarray) -> float:
    """How well the silhouettes of a sparse depth image (H, W) lie on an ``edge_map`` (H, W):
    the weighted mean edge strength under its silhouette returns (0 when it has none)."""
    weights = silhouette_weights(depth)
    total = float(weights.sum())
    return float((weights * edges).sum() / total) if total > 0 else 0.0


@dataclass(frozen=True)
class OffsetEstimate:
    """The measured ``offset`` (s, to add to the ``current`` ``time_offset.image``; None when
    the curve is flat), its bootstrap standard deviation ``spread`` (s), the ``candidates``
    (K,) s, the summed ``curve`` (K,), the ``sets`` scored and the ``skipped`` ones by reason.
    """

    current: float
    offset: "float | None"
    spread: float
    candidates: np.ndarray
    curve: np.ndarray
    sets: int
    skipped: dict[str, int]


def best_offset(candidates: np.ndarray, curve: np.ndarray) -> "float | None":
    """The candidate (s) where ``curve`` peaks, refined by the parabola through it and its two
    neighbours; None when the peak beats the curve's mean by less than FLAT of it."""
    mean = float(np.mean(curve))
    i = int(np.argmax(curve))
    if mean <= 0 or curve[i] - mean < FLAT * mean:
        return None
    if 0 < i < len(curve) - 1:
        a, b, c = curve[i - 1], curve[i], curve[i + 1]
        bend = a - 2 * b + c
        step = float(candidates[i + 1] - candidates[i])
        if bend < 0:
            return float(candidates[i] + 0.5 * (a - c) / bend * step)
    return float(candidates[i])


def bootstrap_spread(candidates: np.ndarray, curves: np.ndarray) -> float:
    """Standard deviation (s) of ``best_offset`` over BOOTSTRAP resamples of the sets' curves
    (S, K), with replacement (0 for one set; resamples with a flat curve left out)."""
    if len(curves) < 2:
        return 0.0
    rng = np.random.default_rng(SEED)
    picks = rng.integers(0, len(curves), (BOOTSTRAP, len(curves)))
    found = [best_offset(candidates, curves[p].sum(axis=0)) for p in picks]
    kept = [f for f in found if f is not None]
    return float(np.std(kept)) if kept else float("nan")


def set_curve(
    decoded: DecodedSet,
    cloud: Any,
    image: Any,
    values: Mapping[str, Any],
    tf: TfBuffer,
    candidates: np.ndarray,
) -> np.ndarray:
    """(K,) the alignment of one set's sweep placed with each candidate offset (s, added to
    ``time_offset.image``). TfUnavailable where TF does not cover a candidate."""
    times, _ = point_times(cloud, values)
    cloud_ns, image_ns = instants_ns(cloud, image, values)
    edges = edge_map(decoded.rgb)
    scores = []
    for dt in candidates:
        placement = sweep_placement(
            tf, values["fixed_frame_id"], image.header.frame_id, cloud.header.frame_id,
            image_ns + round(float(dt) * 1e9), cloud_ns, times,
        )  # fmt: skip
        carried = torch.from_numpy(compensated_points(decoded.points, placement.sweep))
        depth, _ = project_points(
            carried, decoded.camera, placement.t_cam_from_lidar, values["min_depth"],
            values["max_depth"],
        )  # fmt: skip
        scores.append(alignment(depth[0, 0].numpy(), edges))
    return np.asarray(scores)


def estimate_offset(
    bag: "str | Path",
    params: "Mapping[str, Any] | None",
    candidates: np.ndarray,
    remaps: "dict[str, str] | None" = None,
    max_sets: int = 0,
    tick: "Callable[[], object] | None" = None,
) -> OffsetEstimate:
    """The camera's time offset in ``bag`` under the node's ``params`` (``fixed_frame_id``
    required: without the robot's motion from TF an offset moves nothing): every set (the
    first ``max_sets``, 0: all) scored at each of ``candidates`` (K,) s added to
    ``time_offset.image``. Sets that cannot be placed are skipped and counted. ValueError
    without fixed_frame_id, or when no set could be scored."""
    values = resolve(params)
    if not values["fixed_frame_id"]:
        raise ValueError(
            "time-offset needs fixed_frame_id (the odometry frame of the bag's /tf, e.g. odom) "
            "in --params: without the robot's motion an offset moves nothing"
        )
    curves: list[np.ndarray] = []
    skipped: dict[str, int] = {}
    with open_bag(bag) as reader:
        sets = BagSets(reader, bag, values, remaps)
        for matched in sets:
            cloud, image, info = matched.cloud, matched.image, matched.info
            try:
                decoded = decode_set(cloud, image, info, sets.extrinsics.place, values)
                curves.append(set_curve(decoded, cloud, image, values, sets.tf, candidates))
            except (Dropped, TfUnavailable) as exc:
                reason = exc.counter if isinstance(exc, Dropped) else "TF misses a candidate"
                skipped[reason] = skipped.get(reason, 0) + 1
            if tick is not None:
                tick()
            if max_sets and len(curves) >= max_sets:
                break
    if not curves:
        raise ValueError(f"{bag}: no set could be scored (skipped: {skipped or 'none found'})")
    stacked = np.stack(curves)
    curve = stacked.sum(axis=0)
    offset = best_offset(candidates, curve)
    spread = bootstrap_spread(candidates, stacked) if offset is not None else float("nan")
    current = values["time_offset.image"]
    return OffsetEstimate(current, offset, spread, candidates, curve, len(curves), skipped)
