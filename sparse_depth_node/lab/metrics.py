"""Depth-completion metrics as the KITTI depth devkit computes them, and LiDAR hold-out splits.

Per image: MAE and RMSE in millimetres, iMAE and iRMSE in 1/km, over the target pixels;
then averaged over images. Target pixels where a method gives no estimate are counted
(``coverage``) and excluded from the errors, never silently filled.
"""

from __future__ import annotations

import numpy as np
import torch


def random_holdout(
    depth: torch.Tensor,
    mask: torch.Tensor,
    keep: float,
    generator: "torch.Generator | None" = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split valid pixels: a random ``keep`` fraction is the input, the rest the target.

    Returns (input_depth, input_mask, target_mask), shapes as ``depth`` (B, 1, H, W).
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep fraction must be in (0, 1], got {keep}")
    r = torch.rand(depth.shape, generator=generator, device="cpu").to(depth.device)
    valid = mask > 0
    take = valid & (r < keep)
    input_mask = take.to(depth.dtype)
    return depth * input_mask, input_mask, (valid & ~take).to(depth.dtype)


def frame_errors(
    pred: np.ndarray, target: np.ndarray, target_mask: np.ndarray
) -> dict[str, float]:
    """Errors of one image at ``target_mask`` pixels; depths in metres, pred 0 = no estimate."""
    t = target_mask.astype(bool) & (target > 0)
    n = int(t.sum())
    have = t & np.isfinite(pred) & (pred > 0)
    m = int(have.sum())
    if m == 0:
        return {
            "rmse_mm": float("nan"),
            "mae_mm": float("nan"),
            "irmse_per_km": float("nan"),
            "imae_per_km": float("nan"),
            "coverage": 0.0 if n else float("nan"),
            "n": n,
        }
    p, g = pred[have].astype(np.float64), target[have].astype(np.float64)
    err = (p - g) * 1000.0
    ierr = (1.0 / p - 1.0 / g) * 1000.0
    return {
        "rmse_mm": float(np.sqrt(np.mean(err**2))),
        "mae_mm": float(np.mean(np.abs(err))),
        "irmse_per_km": float(np.sqrt(np.mean(ierr**2))),
        "imae_per_km": float(np.mean(np.abs(ierr))),
        "coverage": m / n,
        "n": n,
    }


def mean_errors(per_frame: list[dict[str, float]]) -> dict[str, float]:
    """Average of per-image errors (the devkit's convention), skipping images with no estimate."""
    keys = ("rmse_mm", "mae_mm", "irmse_per_km", "imae_per_km", "coverage")
    out = {}
    for k in keys:
        vals = [f[k] for f in per_frame if np.isfinite(f[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out
