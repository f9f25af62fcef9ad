"""Depth images on disk (KITTI encoding) and colour previews.

KITTI depth PNG: uint16, value = metres x 256, 0 = empty (KITTI depth devkit readme).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

KITTI_SCALE = 256.0


def encode_kitti_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) metres (0 or non-finite = empty) -> uint16 metres x 256, 0 = empty; clips at 255.99
    m."""
    d = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    return np.clip(np.round(d * KITTI_SCALE), 0, 65535).astype(np.uint16)


def decode_kitti_depth(png: np.ndarray) -> np.ndarray:
    """uint16 KITTI depth -> (H, W) float32 metres, 0 = empty."""
    return png.astype(np.float32) / KITTI_SCALE


def write_kitti_depth(path: "str | Path", depth: np.ndarray) -> None:
    """Write (H, W) metres as a 16-bit KITTI depth PNG."""
    Image.fromarray(encode_kitti_depth(depth)).save(str(path))


def read_kitti_depth(path: "str | Path") -> np.ndarray:
    """Read a 16-bit KITTI depth PNG as (H, W) float32 metres."""
    with Image.open(path) as im:
        return decode_kitti_depth(np.asarray(im, dtype=np.uint16))


def _turbo(x: np.ndarray) -> np.ndarray:
    """Google's Turbo colour map (polynomial approximation), x in [0, 1] -> (..., 3) uint8."""
    x = np.clip(x, 0.0, 1.0)[..., None]
    r = np.array([0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943])
    g = np.array([0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604])
    b = np.array([0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973])
    powers = x ** np.arange(6)
    rgb = np.stack([powers @ r, powers @ g, powers @ b], axis=-1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def colorize_depth(depth: np.ndarray, max_depth: float = 80.0) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8: near red, far blue (inverse depth), empty black."""
    valid = np.isfinite(depth) & (depth > 0)
    inv = np.where(valid, 1.0 / np.maximum(depth, 1e-3), 0.0)
    lo, hi = 1.0 / max_depth, 1.0 / 2.0
    rgb = _turbo((inv - lo) / (hi - lo))
    rgb[~valid] = 0
    return rgb


def colorize_unit(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 grey."""
    g = (np.clip(values, 0, 1) * 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def dilate_for_display(depth: np.ndarray, radius: int = 1) -> np.ndarray:
    """Sparse depth grown by ``radius`` px (nearest wins) so single returns are visible in a
    preview."""
    d = np.where(depth > 0, depth, np.inf)
    out = d.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out = np.minimum(out, np.roll(np.roll(d, dy, axis=0), dx, axis=1))
    return np.where(np.isfinite(out), out, 0.0)


def preview(
    rgb: np.ndarray,
    sparse: np.ndarray,
    dense: np.ndarray,
    confidence: np.ndarray,
    caption: str,
    max_depth: float = 80.0,
) -> Image.Image:
    """Image, sparse depth, dense depth and confidence stacked vertically, with a caption."""
    panels = [
        ("image", rgb),
        ("sparse LiDAR depth", colorize_depth(dilate_for_display(sparse), max_depth)),
        ("dense depth", colorize_depth(dense, max_depth)),
        ("confidence", colorize_unit(confidence)),
    ]
    h, w = rgb.shape[:2]
    bar = 16
    canvas = Image.new("RGB", (w, bar + len(panels) * (h + bar)), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), caption, fill=(255, 255, 255))
    for i, (title, panel) in enumerate(panels):
        y = bar + i * (h + bar)
        draw.text((4, y + 2), title, fill=(200, 200, 200))
        canvas.paste(Image.fromarray(panel), (0, y + bar))
    return canvas
