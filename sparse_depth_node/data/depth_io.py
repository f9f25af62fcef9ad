"""Depth images on disk (KITTI encoding) and colour previews.

KITTI depth PNG: uint16, value = metres x 256, 0 = empty (KITTI depth devkit readme).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


NO_ESTIMATE = (255, 0, 255)  # magenta: a pixel with no depth (or no confidence) at all
NEAREST_SHOWN = 2.0  # metres: the near end of the colour scale


def colorize_depth(depth: np.ndarray, max_depth: float = 80.0) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 on one scale: near red, far blue (inverse depth, from
    NEAREST_SHOWN to ``max_depth``), no estimate NO_ESTIMATE."""
    valid = np.isfinite(depth) & (depth > 0)
    inv = np.where(valid, 1.0 / np.maximum(depth, 1e-3), 0.0)
    lo, hi = 1.0 / max_depth, 1.0 / NEAREST_SHOWN
    rgb = _turbo((inv - lo) / (hi - lo))
    rgb[~valid] = NO_ESTIMATE
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


def _font(size: int) -> "ImageFont.ImageFont | ImageFont.FreeTypeFont":
    """A scalable font of ``size`` px (PIL's bundled one), for labels readable at any width."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def depth_colour_bar(
    width: int, max_depth: float, font: "ImageFont.ImageFont | ImageFont.FreeTypeFont"
) -> Image.Image:
    """A horizontal bar of the depth colours with metre ticks, and the no-estimate colour."""
    size = getattr(font, "size", 12)
    h = 3 * size
    bar = Image.new("RGB", (width, h), (0, 0, 0))
    draw = ImageDraw.Draw(bar)
    key = 9 * size  # room for the no-estimate key on the right
    span = max(width - key - 2 * size, 10)
    depths = 1.0 / np.linspace(1.0 / NEAREST_SHOWN, 1.0 / max_depth, span)
    strip = colorize_depth(np.tile(depths, (size, 1)), max_depth)
    bar.paste(Image.fromarray(strip), (size, 0))
    for d in (2, 3, 5, 10, 20, 80):
        if NEAREST_SHOWN <= d <= max_depth:
            x = size + int(
                round(
                    (1 / NEAREST_SHOWN - 1 / d) / (1 / NEAREST_SHOWN - 1 / max_depth) * (span - 1)
                )
            )
            draw.line([(x, 0), (x, size + 2)], fill=(255, 255, 255))
            draw.text((x + 2, size + 2), f"{d} m", fill=(255, 255, 255), font=font)
    draw.rectangle([width - key + size, 0, width - key + 2 * size, size], fill=NO_ESTIMATE)
    draw.text((width - key + 2.5 * size, 0), "no estimate", fill=(255, 255, 255), font=font)
    return bar


def stacked_panels(
    panels: list[tuple[str, np.ndarray]], caption: str, max_depth: float
) -> Image.Image:
    """(title, (H, W, 3) uint8) panels stacked vertically, each titled, under the caption and a
    depth colour bar in metres (the scale of every depth panel)."""
    h, w = panels[0][1].shape[:2]
    font = _font(max(12, w // 60))
    size = getattr(font, "size", 12)
    label = int(size * 1.6)
    colour_bar = depth_colour_bar(w, max_depth, font)
    top = label + colour_bar.height
    canvas = Image.new("RGB", (w, top + len(panels) * (h + label)), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), caption, fill=(255, 255, 255), font=font)
    canvas.paste(colour_bar, (0, label))
    for i, (title, panel) in enumerate(panels):
        y = top + i * (h + label)
        draw.text((4, y + 2), title, fill=(220, 220, 220), font=font)
        canvas.paste(Image.fromarray(panel), (0, y + label))
    return canvas


def lidar_panel(sparse: np.ndarray, max_depth: float) -> tuple[str, np.ndarray]:
    shown = dilate_for_display(sparse)
    lidar = colorize_depth(shown, max_depth)
    lidar[~(shown > 0)] = 0
    return "LiDAR depth (projected, dilated for display; black: no return)", lidar


def preview(
    rgb: np.ndarray,
    sparse: np.ndarray,
    dense: np.ndarray,
    confidence: np.ndarray,
    caption: str,
    max_depth: float = 80.0,
) -> Image.Image:
    """Image, sparse depth, dense depth and confidence stacked vertically, labelled, with the
    caption on top and a depth colour bar in metres (one scale for both depth panels)."""
    conf = colorize_unit(confidence)
    conf[~(confidence > 0)] = NO_ESTIMATE
    panels = [
        ("camera image", rgb),
        lidar_panel(sparse, max_depth),
        ("dense depth", colorize_depth(dense, max_depth)),
        ("confidence (black 0 .. white 1)", conf),
    ]
    return stacked_panels(panels, caption, max_depth)


def comparison(
    rgb: np.ndarray,
    sparse: np.ndarray,
    dense: dict[str, np.ndarray],
    caption: str,
    max_depth: float = 80.0,
) -> Image.Image:
    """Image, the LiDAR input, then each method's dense depth ({title: (H, W) metres}), one
    colour scale with a metre colour bar; pixels without an estimate in NO_ESTIMATE colour."""
    panels = [("camera image", rgb), lidar_panel(sparse, max_depth)]
    panels += [(title, colorize_depth(d, max_depth)) for title, d in dense.items()]
    return stacked_panels(panels, caption, max_depth)
