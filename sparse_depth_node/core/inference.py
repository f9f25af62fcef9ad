"""Ways to run a completion network faster without changing what it computes, or at a
measured cost: crop to the LiDAR's support, run at a lower resolution, run in reduced precision.

The tensor functions take and return (1, 1, H, W) tensors: depth in metres (0 = empty / no
estimate) and a mask or confidence in [0, 1], on any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .settings import PRECISIONS

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def support_box(valid: torch.Tensor, margin: int) -> tuple[int, int, int, int]:
    """Rows y0:y1 and columns x0:x1 of the (H, W) bool ``valid``'s set pixels plus ``margin``
    px, clipped to the image at the top and left (slicing clips the rest); (0, 0, 0, 0) when
    none is set. One synchronisation with the device."""
    h, w = valid.shape
    rows, cols = valid.any(dim=1), valid.any(dim=0)
    r, c = torch.arange(h, device=valid.device), torch.arange(w, device=valid.device)
    bounds = torch.stack(
        [
            torch.where(rows, r, h).amin(),
            torch.where(rows, r, -1).amax(),
            torch.where(cols, c, w).amin(),
            torch.where(cols, c, -1).amax(),
        ]
    ).tolist()
    if bounds[1] < 0:
        return 0, 0, 0, 0
    y0, y1, x0, x1 = bounds
    return max(y0 - margin, 0), y1 + 1 + margin, max(x0 - margin, 0), x1 + 1 + margin


def support_window(
    mask: torch.Tensor, margin: int, multiple: int = 1
) -> tuple[int, int, int, int]:
    """Rows y0:y1 and columns x0:x1 holding every valid pixel plus ``margin`` px, clipped to
    the image, with y0 and x0 rounded down to a multiple of ``multiple`` (so that a network
    that pools by that factor sees the same pooling grid as on the whole image).

    A network whose output is zero beyond ``margin`` px of any valid input (its receptive
    radius) gives exactly the same output on this window as on the whole image. An empty
    mask gives an empty window (0, 0, 0, 0).
    """
    h, w = mask.shape[-2:]
    y0, y1, x0, x1 = support_box(mask.reshape(h, w) > 0, margin)
    y1, x1 = min(y1, h), min(x1, w)
    return y0 - y0 % multiple, y1, x0 - x0 % multiple, x1


def downsample_sparse(
    depth: torch.Tensor, mask: torch.Tensor, factor: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse depth at 1/factor resolution: each factor x factor block keeps its nearest valid
    depth (as a z-buffer projection at that resolution would); the mask says which blocks had
    one."""
    if factor == 1:
        return depth, mask
    # a finite stand-in for "no return" (an exported graph may turn an infinity into it)
    far = torch.where(mask > 0, depth, torch.full_like(depth, torch.finfo(depth.dtype).max))
    low = -F.max_pool2d(-far, factor, stride=factor, ceil_mode=True)
    valid = F.max_pool2d(mask, factor, stride=factor, ceil_mode=True) > 0
    return torch.where(valid, low, torch.zeros_like(low)), valid.to(mask.dtype)


def upsample_dense(
    depth: torch.Tensor, confidence: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense depth at ``size`` (H, W) by mask-aware bilinear interpolation: pixels with no
    estimate (depth 0) take no part, so no depth is blended with an empty pixel's zero.
    The confidence is interpolated bilinearly."""
    if tuple(depth.shape[-2:]) == tuple(size):
        return depth, confidence
    has = (depth > 0).to(depth.dtype)
    num = F.interpolate(depth * has, size=size, mode="bilinear", align_corners=False)
    den = F.interpolate(has, size=size, mode="bilinear", align_corners=False)
    dense = torch.where(den > 1e-6, num / den.clamp(min=1e-6), torch.zeros_like(num))
    conf = F.interpolate(confidence, size=size, mode="bilinear", align_corners=False)
    return dense, conf * (dense > 0).to(conf.dtype)


def autocast_dtype(precision: str, device: torch.device) -> "torch.dtype | None":
    """The autocast dtype of ``precision`` on ``device`` (None for fp32); ValueError when the
    device cannot run it (fp16 convolutions need CUDA)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 on the CPU")
    return None if precision == "fp32" else DTYPES[precision]
