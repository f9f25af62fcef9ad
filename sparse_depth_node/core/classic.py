"""Classical depth completion after IP-Basic (Ku, Harakeh, Waslander, CRV 2018), in torch.

Written from the paper's description of its fast variant: invert depth so that dilation
prefers near points, dilate with a 5x5 diamond, close small holes with a 5x5 square, fill
remaining empty pixels from a 7x7 dilation, optionally extend each column's top value to the
image top and fill what is left with a 31x31 dilation, median-blur 5x5 and Gaussian-blur 5x5
the valid pixels, and invert back. Morphology is max-pooling, so it runs on CPU and CUDA alike.
One change from the paper: the median and the Gaussian consider only filled pixels of each
window. IP-Basic extrapolates everywhere first, so its windows are always full; without
extrapolation (the node's default: no invented depth in the sky) empty pixels would pull the
edges of filled regions towards the far end of the inverted range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_VALID = 0.1  # metres: IP-Basic's threshold for "has depth" in the inverted image


def _dilate_square(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.max_pool2d(x, k, stride=1, padding=k // 2)


def _dilate(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    return F.max_pool2d(x, (kh, kw), stride=1, padding=(kh // 2, kw // 2))


def _dilate_diamond5(x: torch.Tensor) -> torch.Tensor:
    """Dilation with the 5x5 diamond (|dx| + |dy| <= 2): the union of a 1x5, a 5x1 and a 3x3."""
    return torch.maximum(torch.maximum(_dilate(x, 1, 5), _dilate(x, 5, 1)), _dilate_square(x, 3))


def _erode_square(x: torch.Tensor, k: int) -> torch.Tensor:
    return -F.max_pool2d(-x, k, stride=1, padding=k // 2)


def _median5(x: torch.Tensor) -> torch.Tensor:
    """5x5 median over the filled pixels of each window (empty ones, 0, are left out)."""
    padded = F.pad(
        torch.where(x > _VALID, x, torch.full_like(x, float("nan"))),
        (2, 2, 2, 2),
        mode="replicate",
    )
    patches = padded.unfold(2, 5, 1).unfold(3, 5, 1)
    return torch.nan_to_num(patches.reshape(*x.shape, 25).nanmedian(dim=-1).values, nan=0.0)


def _gaussian5(x: torch.Tensor) -> torch.Tensor:
    """5x5 Gaussian (OpenCV's sigma), normalised over the filled pixels of each window."""
    valid = (x > _VALID).to(x.dtype)
    return _gaussian5_raw(x * valid) / _gaussian5_raw(valid).clamp(min=1e-6)


def _gaussian5_raw(x: torch.Tensor) -> torch.Tensor:
    sigma = 0.3 * ((5 - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for a 5-tap kernel with sigma 0
    t = torch.arange(5, dtype=x.dtype, device=x.device) - 2
    g = torch.exp(-(t * t) / (2 * sigma * sigma))
    g = g / g.sum()
    y = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="reflect"), g.view(1, 1, 1, 5))
    return F.conv2d(F.pad(y, (0, 0, 2, 2), mode="reflect"), g.view(1, 1, 5, 1))


def _extend_to_top(x: torch.Tensor) -> torch.Tensor:
    """Fill each column above its top-most valid pixel with that pixel's value."""
    valid = x > _VALID
    h = x.shape[-2]
    rows = torch.arange(h, device=x.device).view(1, 1, h, 1)
    top = torch.where(valid, rows, torch.full_like(rows, h)).amin(dim=2, keepdim=True)
    top_value = torch.gather(x, 2, top.clamp(max=h - 1))
    fill = (rows < top) & (top < h)
    return torch.where(fill, top_value, x)


def _fill_along(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Each empty pixel takes the value of the nearest valid pixel along ``dim`` (either side;
    the nearer, the lower index on a tie); lines with no valid pixel stay empty."""
    n = x.shape[dim]
    shape = [1] * x.dim()
    shape[dim] = n
    pos = torch.arange(n, device=x.device).view(shape).expand_as(x)
    valid = x > _VALID
    before = torch.where(valid, pos, torch.full_like(pos, -n)).cummax(dim=dim).values
    after = (
        torch.where(valid, pos, torch.full_like(pos, 2 * n))
        .flip(dim)
        .cummin(dim=dim)
        .values.flip(dim)
    )
    take_before = (pos - before) <= (after - pos)
    src = torch.where(take_before, before, after).clamp(0, n - 1)
    filled = torch.gather(x, dim, src)
    has = (before >= 0) | (after < n)
    return torch.where(valid | ~has, x, filled)


def ip_basic(
    depth: torch.Tensor, max_depth: float = 100.0, extrapolate: bool = False
) -> torch.Tensor:
    """Fill a sparse depth image (B, 1, H, W), metres, 0 = empty; returns the same shape.

    With ``extrapolate`` every pixel gets a value (sky and image top included, as IP-Basic's
    benchmark setting); without it, pixels far from any measurement stay 0.
    """
    x = depth.to(torch.float32)
    valid = x > _VALID
    x = torch.where(valid, max_depth - x, torch.zeros_like(x))
    x = _dilate_diamond5(x)
    x = _erode_square(_dilate_square(x, 5), 5)
    empty = x < _VALID
    x = torch.where(empty, _dilate_square(x, 7), x)
    if extrapolate:
        x = _extend_to_top(x)
        empty = x < _VALID
        x = torch.where(empty, _dilate_square(x, 31), x)
        x = _fill_along(
            _fill_along(x, -1), -2
        )  # what is still empty: nearest in its row, then column
    x = torch.where(x > _VALID, _median5(x), x)
    valid = x > _VALID
    x = torch.where(valid, _gaussian5(x), x)
    valid = x > _VALID
    return torch.where(valid, max_depth - x, torch.zeros_like(x))
