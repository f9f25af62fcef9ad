"""The IP-Basic fills of classic.py in plain PyTorch, for the GPU: the same operations, step by
step, on (B, 1, H, W) float32 tensors (metres, 0 = empty) on any device.

OpenCV's operations as tensor operations:
- grey dilation (erosion) by a rectangle: two 1-D max pools (of the negated image), with the
  border ignored as OpenCV's default border does; a cross: the larger of its two bars; the 5 x 5
  diamond: two 3 x 3 crosses (a diamond is a cross dilated by a cross). Exact.
- the 5 x 5 median (``cv2.medianBlur``, replicated border): the 25 values of each window sorted,
  the 13th taken. Exact.
- the 5 x 5 Gaussian (sigma 0: OpenCV's fixed kernel [1, 4, 6, 4, 1] / 16, reflected border):
  two 1-D convolutions. Float rounding apart, OpenCV's.
- the bilateral filter (``cv2.bilateralFilter``, float32, d = 5): OpenCV's algorithm as it is
  written, its 4096-bin look-up table of the range weight over the image's value span, linearly
  interpolated, and the 13 taps within a 2 px radius. Float rounding apart, OpenCV's.
- the refinement's scan-line interpolation: the nearest seen return above and below each pixel
  by a running maximum and minimum down the columns (``cummax``), then the same arithmetic.

No window larger than 5 x 5 is ever unfolded (a 31 x 31 unfold of a KITTI image is 1.8 GB); the
5 x 5 window filters run in bands of rows of at most BAND_PIXELS pixels (peak memory). Each
fill runs on the box of its image's returns plus classic.CROP_MARGIN, as classic.py does. On a
GPU the cost is the number of operations, not their arithmetic: each is a kernel launch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .classic import (
    CROP_MARGIN,
    FAR,
    HIDDEN,
    HIDDEN_RADIUS,
    LINE_AGREE,
    LINE_GAP,
    MEDIUM,
    NEAR,
    VALID,
)
from .inference import support_box

Tensor = torch.Tensor
BAND_PIXELS = 1 << 18  # px per band of a 5 x 5 window filter (25 values each: ~26 MB a band)
LUT_BINS = 1 << 12  # OpenCV's bilateral range look-up table for one channel (kExpNumBins)
FLT_EPSILON = 1.1920929e-07  # OpenCV returns an image whose value span is below this unfiltered


def dilate(x: Tensor, height: int, width: int) -> Tensor:
    """Grey dilation of (B, 1, H, W) by a ``height`` x ``width`` rectangle (odd sizes)."""
    if width > 1:
        x = F.max_pool2d(x, (1, width), stride=1, padding=(0, width // 2))
    if height > 1:
        x = F.max_pool2d(x, (height, 1), stride=1, padding=(height // 2, 0))
    return x


def dilate_full(x: Tensor, size: int) -> Tensor:
    return dilate(x, size, size)


def dilate_cross(x: Tensor, size: int) -> Tensor:
    return torch.maximum(dilate(x, 1, size), dilate(x, size, 1))


def dilate_diamond5(x: Tensor) -> Tensor:
    return dilate_cross(dilate_cross(x, 3), 3)


def erode_full(x: Tensor, size: int) -> Tensor:
    return -dilate_full(-x, size)


def close_full(x: Tensor, size: int) -> Tensor:
    """Morphological closing (dilation, then erosion) by a ``size`` x ``size`` square."""
    return erode_full(dilate_full(x, size), size)


def in_bands(x: Tensor, padded: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """A 5 x 5 window filter of ``x`` (B, 1, H, W): ``fn`` takes the windows of a band of rows,
    (B, 1, h, W, 25) in row-major window order (index 12 the centre), cut from ``padded``
    (``x`` with 2 px of border), and returns the band's output (B, 1, h, W); bands of at most
    BAND_PIXELS pixels."""
    h, w = x.shape[-2:]
    rows = max(1, BAND_PIXELS // max(w, 1))
    out = torch.empty_like(x)
    for a in range(0, h, rows):
        b = min(a + rows, h)
        windows = padded[..., a : b + 4, :].unfold(-2, 5, 1).unfold(-2, 5, 1)
        out[..., a:b, :] = fn(windows.reshape(*windows.shape[:-2], 25))
    return out


def median5(x: Tensor) -> Tensor:
    """``cv2.medianBlur(x, 5)`` of each image of (B, 1, H, W)."""
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    return in_bands(x, padded, lambda w: w.sort(dim=-1).values[..., 12])


GAUSS5 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)  # OpenCV's 5-tap Gaussian for sigma 0


def gaussian5(x: Tensor) -> Tensor:
    """``cv2.GaussianBlur(x, (5, 5), 0)`` of each image of (B, 1, H, W)."""
    k = torch.tensor(GAUSS5, dtype=x.dtype, device=x.device)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="reflect"), k.view(1, 1, 1, 5))
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="reflect"), k.view(1, 1, 5, 1))


def bilateral5(x: Tensor, sigma_color: float, sigma_space: float) -> Tensor:
    """``cv2.bilateralFilter(x, 5, sigma_color, sigma_space)`` of each image of (B, 1, H, W)
    float32: each pixel the mean of the 13 pixels within 2 px, weighted by
    exp(-r^2 / (2 sigma_space^2)) and by OpenCV's look-up table of
    exp(-|value difference|^2 / (2 sigma_color^2)), LUT_BINS bins over the image's value span,
    interpolated linearly. An image of one value is returned as it is (as OpenCV does)."""
    out = []
    for img in torch.split(x, 1):
        lo, hi = img.amin(), img.amax()
        span = (hi - lo).to(torch.float32)
        scale = LUT_BINS / span.clamp(min=FLT_EPSILON)  # float32, as OpenCV's scale_index
        bins = torch.arange(LUT_BINS + 2, device=x.device, dtype=torch.float64) / scale.double()
        lut = torch.exp(bins * bins * (-0.5 / sigma_color**2)).to(torch.float32)
        taps = [(i, j) for i in range(-2, 3) for j in range(-2, 3) if 0 < i * i + j * j <= 4]
        space = torch.tensor(
            [math.exp((i * i + j * j) * -0.5 / sigma_space**2) for i, j in taps],
            dtype=torch.float32,
            device=x.device,
        )
        offsets = torch.tensor([(i + 2) * 5 + (j + 2) for i, j in taps], device=x.device)

        def band(windows: Tensor) -> Tensor:
            centre = windows[..., 12:13]
            vals = windows.index_select(-1, offsets)
            alpha = (vals - centre).abs_().mul_(scale)
            idx = alpha.floor()
            alpha.sub_(idx)
            idx = idx.long()
            below = lut[idx]
            w = (lut[idx + 1] - below).mul_(alpha).add_(below).mul_(space)
            # the centre's own weight is 1 (distance 0, difference 0)
            return (vals.mul(w).sum(-1) + centre[..., 0]) / (w.sum(-1) + 1.0)

        padded = F.pad(img, (2, 2, 2, 2), mode="reflect")
        out.append(torch.where(span < FLT_EPSILON, img, in_bands(img, padded, band)))
    return torch.cat(out)


def invert(depth: Tensor, max_depth: float) -> Tensor:
    """``max_depth - depth`` where depth > VALID, else unchanged."""
    return torch.where(depth > VALID, max_depth - depth, depth)


def uninvert(x: Tensor, max_depth: float) -> Tensor:
    """``max_depth - x`` where x > VALID, else 0 (classic.uninvert)."""
    return torch.where(x > VALID, max_depth - x, torch.zeros_like(x))


def top_rows(x: Tensor) -> Tensor:
    """(B, 1, 1, W): per column, the first row holding a value (0 for an empty column)."""
    h = x.shape[-2]
    rows = torch.arange(h, device=x.device).view(-1, 1)
    first = torch.where(x > VALID, rows, h).amin(dim=-2, keepdim=True)
    return torch.where(first == h, 0, first)


def below_top(x: Tensor) -> Tensor:
    """(B, 1, H, W) bool: at or below each column's first valued row."""
    return torch.arange(x.shape[-2], device=x.device).view(-1, 1) >= top_rows(x)


def extend_to_top(x: Tensor) -> Tensor:
    """Each column's first value copied into every row above it."""
    top = x.gather(-2, top_rows(x))
    return torch.where(below_top(x), x, top)


def fill_fast(
    depth: Tensor, max_depth: float = 100.0, extrapolate: bool = False, blur: str = "gaussian"
) -> Tensor:
    """classic.fill_fast of each image of (B, 1, H, W)."""
    x = invert(depth, max_depth)
    x = dilate_diamond5(x)
    x = close_full(x, 5)
    x = torch.where(x < VALID, dilate_full(x, 7), x)
    if extrapolate:
        x = extend_to_top(x)
        while True:  # until no image holds both an empty pixel and a value
            flat = x.flatten(1)
            if not ((flat < VALID).any(1) & (flat > VALID).any(1)).any():
                break
            x = torch.where(x < VALID, dilate_full(x, 31), x)
    x = median5(x)
    if blur == "bilateral":
        x = bilateral5(x, 1.5, 2.0)
    else:
        x = torch.where(x > VALID, gaussian5(x), x)
    return uninvert(x, max_depth)


def fill_multiscale(depth: Tensor, max_depth: float = 100.0) -> Tensor:
    """classic.fill_multiscale (without extrapolation) of each image of (B, 1, H, W)."""
    x = invert(depth, max_depth)
    bins = (
        (depth > MEDIUM, 3),
        ((depth > NEAR) & (depth <= MEDIUM), 5),
        ((depth > VALID) & (depth <= NEAR), 7),
    )
    grown = [dilate_cross(x * in_bin, size) for in_bin, size in bins]
    x = torch.maximum(torch.maximum(grown[0], grown[1]), grown[2])
    x = close_full(x, 5)
    x = torch.where(x > VALID, median5(x), x)
    inside = below_top(x)
    x = torch.where(~(x > VALID) & inside, dilate_full(x, 9), x)
    inside = below_top(x)
    for _ in range(6):
        x = torch.where((x < VALID) & inside, dilate_full(x, 5), x)
    smooth = (x > VALID) & inside
    x = torch.where(smooth, median5(x), x)
    x = torch.where(smooth, bilateral5(x, 0.5, 2.0), x)
    return uninvert(x, max_depth)


def visible_returns(depth: Tensor) -> Tensor:
    """classic.visible_returns of (B, 1, H, W): the returns the camera sees."""
    has = depth > VALID
    far = torch.where(has, depth, FAR)
    nearest = erode_full(far, 2 * HIDDEN_RADIUS + 1)
    return has & (depth <= torch.tensor(1.0 + HIDDEN, dtype=torch.float32) * nearest)


def interpolate_scanlines(fill: Tensor, depth: Tensor, seen: Tensor) -> Tensor:
    """classic.interpolate_scanlines of (B, 1, H, W), for every pixel at once: the nearest seen
    return above and below each pixel by a running maximum (minimum) of its row index down
    (up) the column."""
    h = depth.shape[-2]
    rows = torch.arange(h, device=depth.device).view(-1, 1)
    above = torch.where(seen, rows, -1).cummax(dim=-2).values
    below = torch.where(seen, rows, h).flip(-2).cummin(dim=-2).values.flip(-2)
    candidates = ~seen & (above >= 0) & (below < h) & (below - above <= LINE_GAP)
    d0 = depth.gather(-2, above.clamp(min=0))
    d1 = depth.gather(-2, below.clamp(max=h - 1))
    one = (d1 - d0).abs() <= torch.tensor(LINE_AGREE, dtype=torch.float32) * torch.minimum(d0, d1)
    t = ((rows - above).double() / (below - above).clamp(min=1).double()).to(torch.float32)
    value = 1.0 / ((1.0 - t) / d0 + t / d1)
    return torch.where(candidates & (fill > VALID) & one, value, fill)


def refine(fill: Tensor, depth: Tensor) -> Tensor:
    """classic.refine of (B, 1, H, W)."""
    seen = visible_returns(depth)
    return torch.where(seen, depth, interpolate_scanlines(fill, depth, seen))


def on_support(fill: Callable[[Tensor], Tensor], depth: Tensor) -> Tensor:
    """classic.on_support for each image of (B, 1, H, W): ``fill`` on the box of its valid
    pixels plus CROP_MARGIN, pasted into zeros."""
    out = torch.zeros_like(depth)
    for b, img in enumerate(torch.split(depth, 1)):
        y0, y1, x0, x1 = support_box(img[0, 0] > VALID, CROP_MARGIN)
        if y1 > y0:
            out[b : b + 1, :, y0:y1, x0:x1] = fill(img[..., y0:y1, x0:x1])
    return out


FILLS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "classic": lambda d, m: on_support(lambda x: fill_fast(x, m, blur="bilateral"), d),
    "classic-full": lambda d, m: fill_fast(d, m, extrapolate=True),
    "classic-multiscale": lambda d, m: on_support(lambda x: fill_multiscale(x, m), d),
    "classic-refined": lambda d, m: on_support(lambda x: refine(fill_multiscale(x, m), x), d),
}
