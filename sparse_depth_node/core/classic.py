"""Classical depth completion: the IP-Basic family (Ku, Harakeh, Waslander, "In Defense of
Classical Image Processing: Fast Depth Completion on the CPU", CRV 2018) in numpy + OpenCV.

Written from the paper. Depth is inverted (``max_depth - d`` on pixels with d > 0.1 m) so that
a grey dilation prefers the nearer surface, filled by morphology, smoothed, and inverted back.

- ``fill_fast``: the paper's fast variant: 5x5 diamond dilation, 5x5 closing, a 7x7 dilation
  into the remaining empty pixels, optionally (``extrapolate``) each column's top value
  extended to the image top and 31x31 dilations into what is left (repeated until no pixel is
  empty, where the paper stops after one), a 5x5 median blur, and a 5x5 Gaussian blur of the
  filled pixels or a bilateral filter. ``classic`` is the fast fill without extrapolation and
  with the bilateral filter (the paper's setting for that case: a Gaussian would blend the
  edges of filled regions with the empty pixels around them); ``classic-full`` extrapolates
  and takes the Gaussian (the paper's KITTI benchmark setting).
- ``fill_multiscale``: the paper's multi-scale variant: the points dilated by distance bins
  (cross kernels 7x7 up to 15 m, 5x5 up to 30 m, 3x3 beyond; nearer bins win), 5x5 closing, a
  5x5 median over the filled pixels (outlier removal), a 9x9 dilation into the empty pixels
  below each column's top, the top extended (``extrapolate``) or masked off, six masked 5x5
  dilations, a 5x5 median and a bilateral blur (5 px, sigma 0.5 / 2.0) below the top.

- ``refine`` (this project's): a fill made to agree with its input, ``classic-refined`` =
  ``classic-multiscale`` refined: the inverse depth interpolated linearly between vertically
  adjacent returns of one surface (exact on planes: no stripes between scan lines), and the
  returns the camera sees put back as measured (parallax-hidden ones, more than 10 % behind a
  return within 3 px, are not).

Inputs and outputs: (H, W) float32 metres, 0 = empty; ``fill_tensor`` wraps a fill for a
(B, 1, H, W) torch tensor on any device (torch is imported there only): OpenCV on the CPU, the
same fills written in PyTorch (classic_torch.py) on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

VALID = 0.1  # metres: the paper's "has depth" threshold, before and after inversion
NEAR, MEDIUM = 15.0, 30.0  # metres: the multi-scale variant's distance bins


def full_kernel(size: int) -> np.ndarray:
    return np.ones((size, size), np.uint8)


def cross_kernel(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_CROSS, (size, size))


def diamond_kernel(size: int) -> np.ndarray:
    r = size // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return np.asarray((np.abs(x) + np.abs(y) <= r).astype(np.uint8))


def invert(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """``max_depth - depth`` where depth > VALID, else unchanged."""
    return np.where(depth > VALID, np.float32(max_depth) - depth, depth)


def uninvert(x: np.ndarray, max_depth: float) -> np.ndarray:
    """Depth from a filled inverted image: ``max_depth - x`` where x > VALID, else 0 (no
    estimate). The paper inverts the same way but leaves values <= VALID as they are, which
    turns the faint rims that blurring leaves around empty regions into depths of a few mm."""
    return np.asarray(np.where(x > VALID, np.float32(max_depth) - x, np.float32(0)))


def fill_where(x: np.ndarray, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``x`` with ``values`` at ``mask`` (in place; returns x)."""
    np.copyto(x, values, where=mask)
    return x


def top_rows(x: np.ndarray) -> np.ndarray:
    """Per column, the first row holding a value (0 for an empty column)."""
    return np.asarray(np.argmax(x > VALID, axis=0))


def below_top(x: np.ndarray) -> np.ndarray:
    """(H, W) bool: at or below each column's first valued row."""
    return np.arange(x.shape[0])[:, None] >= top_rows(x)[None, :]


def extend_to_top(x: np.ndarray) -> np.ndarray:
    """Each column's first value copied into every row above it."""
    rows = top_rows(x)
    top = x[rows, np.arange(x.shape[1])]
    return np.where(below_top(x), x, top[None, :])


def fill_fast(
    depth: np.ndarray, max_depth: float = 100.0, extrapolate: bool = False, blur: str = "gaussian"
) -> np.ndarray:
    """The paper's fast fill of a sparse depth image; see the module text. ``blur``: "gaussian"
    (the paper's lower-RMSE choice, for a fully extrapolated image) or "bilateral" (5 px, sigma
    1.5 / 2.0: it keeps structure, and does not blend filled pixels with empty ones)."""
    x = invert(np.asarray(depth, np.float32), max_depth)
    x = cv2.dilate(x, diamond_kernel(5))
    x = cv2.morphologyEx(x, cv2.MORPH_CLOSE, full_kernel(5))
    x = fill_where(x, x < VALID, cv2.dilate(x, full_kernel(7)))
    if extrapolate:
        x = extend_to_top(x)
        while (x < VALID).any() and (x > VALID).any():  # the paper dilates once; holes wider
            x = fill_where(x, x < VALID, cv2.dilate(x, full_kernel(31)))  # than 31 px remain
    x = cv2.medianBlur(x, 5)
    if blur == "bilateral":
        x = cv2.bilateralFilter(x, 5, 1.5, 2.0)
    else:
        x = fill_where(x, x > VALID, cv2.GaussianBlur(x, (5, 5), 0))
    return uninvert(x, max_depth)


def fill_multiscale(
    depth: np.ndarray, max_depth: float = 100.0, extrapolate: bool = False
) -> np.ndarray:
    """The paper's multi-scale fill (bilateral variant) of a sparse depth image; see the module
    text."""
    d = np.asarray(depth, np.float32)
    x = invert(d, max_depth)
    bins = (
        (d > MEDIUM, cross_kernel(3)),
        ((d > NEAR) & (d <= MEDIUM), cross_kernel(5)),
        ((d > VALID) & (d <= NEAR), cross_kernel(7)),
    )
    # Each bin dilated from the points alone; where several reach a pixel the nearest bin wins,
    # and its inverted values are the largest, so the combination is their maximum (a point's
    # own bin always reaches it: no pixel keeps its undilated value).
    grown = [cv2.dilate(x * in_bin, kernel) for in_bin, kernel in bins]
    x = np.maximum(np.maximum(grown[0], grown[1]), grown[2])
    x = cv2.morphologyEx(x, cv2.MORPH_CLOSE, full_kernel(5))
    x = fill_where(x, x > VALID, cv2.medianBlur(x, 5))
    x = fill_where(x, ~(x > VALID) & below_top(x), cv2.dilate(x, full_kernel(9)))
    if extrapolate:
        x, inside = extend_to_top(x), np.ones(x.shape, bool)
    else:
        inside = below_top(x)
    for _ in range(6):
        x = fill_where(x, (x < VALID) & inside, cv2.dilate(x, full_kernel(5)))
    smooth = (x > VALID) & inside
    x = fill_where(x, smooth, cv2.medianBlur(x, 5))
    x = fill_where(x, smooth, cv2.bilateralFilter(x, 5, 0.5, 2.0))
    return uninvert(x, max_depth)


HIDDEN = 0.10  # a return this much behind the nearest return near it is one the camera cannot see
HIDDEN_RADIUS = 3  # px: how near (Chebyshev) that nearer return must be
LINE_GAP = 12  # px: the farthest apart two returns of a column are interpolated between
LINE_AGREE = 0.10  # the most two such returns may differ (relative) to be one surface
FAR = 1e6  # metres: "no return" in a minimum filter (finite: a border of infinities overflows)


def visible_returns(depth: np.ndarray) -> np.ndarray:
    """(H, W) bool: the returns (depth > VALID) the camera sees. A return more than HIDDEN
    behind the nearest return within HIDDEN_RADIUS px is background the LiDAR sees past a
    foreground edge that the camera, mounted elsewhere, does not (parallax): not visible."""
    has = depth > VALID
    far = np.where(has, depth, np.float32(FAR)).astype(np.float32, copy=False)
    nearest = cv2.erode(far, full_kernel(2 * HIDDEN_RADIUS + 1))
    return np.asarray(has & (depth <= np.float32(1.0 + HIDDEN) * nearest))


def interpolate_scanlines(fill: np.ndarray, depth: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``fill`` with each pixel between two vertically adjacent returns ``seen`` of its column
    (at most LINE_GAP px apart, depths within LINE_AGREE of each other: one surface) set to the
    depth whose inverse is linear in the row between them, where ``fill`` has a depth. A plane's
    inverse depth is affine in the image coordinates, so a plane between two scan lines is
    reproduced exactly, and the row-to-row steps a morphological fill leaves between scan lines
    (stripes) go. Elsewhere (a depth edge, a gap, no fill) ``fill`` stays."""
    h = depth.shape[0]
    rows = np.arange(h, dtype=np.int32)[:, None]
    above = np.maximum.accumulate(np.where(seen, rows, -1), axis=0)
    below = np.minimum.accumulate(np.where(seen, rows, h)[::-1], axis=0)[::-1]
    candidates = ~seen & (above >= 0) & (below < h) & (below - above <= LINE_GAP)
    ys, xs = np.nonzero(candidates & (fill > VALID))
    a, b = above[ys, xs], below[ys, xs]
    d0, d1 = depth[a, xs], depth[b, xs]
    one = np.abs(d1 - d0) <= LINE_AGREE * np.minimum(d0, d1)
    t = ((ys - a) / (b - a)).astype(np.float32)
    out: np.ndarray = fill.copy()
    out[ys[one], xs[one]] = 1.0 / ((1.0 - t[one]) / d0[one] + t[one] / d1[one])
    return out


def refine(fill: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """A classical fill made to agree with its own input: between scan lines the inverse depth
    interpolated (``interpolate_scanlines``) and the returns the camera sees put back as
    measured (``visible_returns``; the fills' median and bilateral filters move them)."""
    seen = visible_returns(depth)
    out = interpolate_scanlines(fill, depth, seen)
    out[seen] = depth[seen]
    return out


CROP_MARGIN = 32  # px of empty border kept around the points: wider than any fill's reach


def on_support(fill: Callable[[np.ndarray], np.ndarray], depth: np.ndarray) -> np.ndarray:
    """``fill`` run on the box that holds every valid pixel plus CROP_MARGIN px, pasted into
    zeros: the same result as on the whole image for a fill that does not extrapolate (all
    that the box leaves out is empty, and stays empty), at a fraction of the cost when the
    LiDAR covers only part of the image."""
    rows, cols = (
        np.flatnonzero((depth > VALID).any(axis=1)),
        np.flatnonzero((depth > VALID).any(axis=0)),
    )
    out = np.zeros(depth.shape, np.float32)
    if len(rows):
        y0, y1 = max(rows[0] - CROP_MARGIN, 0), rows[-1] + 1 + CROP_MARGIN
        x0, x1 = max(cols[0] - CROP_MARGIN, 0), cols[-1] + 1 + CROP_MARGIN
        out[y0:y1, x0:x1] = fill(depth[y0:y1, x0:x1])
    return out


FILLS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "classic": lambda d, m: on_support(lambda x: fill_fast(x, m, blur="bilateral"), d),
    "classic-full": lambda d, m: fill_fast(d, m, extrapolate=True),
    "classic-multiscale": lambda d, m: on_support(lambda x: fill_multiscale(x, m), d),
    "classic-refined": lambda d, m: on_support(lambda x: refine(fill_multiscale(x, m), x), d),
}


def fill_tensor(method: str, depth: "torch.Tensor", max_depth: float) -> "torch.Tensor":
    """FILLS[method] of each image of (B, 1, H, W) metres (0 = empty), on ``depth``'s device: on
    the CPU by OpenCV, on a GPU by the same operations in PyTorch (classic_torch.FILLS: equal to
    OpenCV's within 1 mm, bit for bit where the operation is a maximum or a median). No gradient
    flows through it and no autocast applies to it (its blurs stay in float32)."""
    import torch

    with torch.no_grad(), torch.autocast(depth.device.type, enabled=False):
        depth = depth.detach().to(torch.float32)
        if depth.device.type != "cpu":
            from .classic_torch import FILLS as DEVICE_FILLS

            return DEVICE_FILLS[method](depth, max_depth)
        filled = [torch.from_numpy(FILLS[method](d[0], max_depth)) for d in depth.numpy()]
        return torch.stack(filled)[:, None]
