"""Depth-completion metrics as the KITTI depth devkit computes them, and LiDAR hold-out splits.

Per image: MAE and RMSE in millimetres, iMAE and iRMSE in 1/km, over the target pixels;
then averaged over images. Target pixels where a method gives no estimate are counted
(``coverage``) and excluded from the errors, never silently filled.
"""

from __future__ import annotations

import cv2
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


def finite_mean(values: list[float]) -> float:
    """The mean of the finite values (NaN: an image without an estimate); NaN when none is."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def mean_errors(per_frame: list[dict[str, float]]) -> dict[str, float]:
    """Average of per-image errors (the devkit's convention), skipping images with no estimate."""
    keys = ("rmse_mm", "mae_mm", "irmse_per_km", "imae_per_km", "coverage")
    return {k: finite_mean([f[k] for f in per_frame]) for k in keys}


EDGE_PERCENTILE = 90.0  # a pixel is on a strong edge above this percentile of the Sobel magnitude
EDGE_RADIUS = 3  # px: targets within this distance of a strong edge are "edge" targets


def gradient_magnitude(grey: np.ndarray) -> np.ndarray:
    """(H, W) float32 Sobel gradient magnitude of a float32 grey image (H, W)."""
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def edge_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels within EDGE_RADIUS px (Chebyshev) of a strong edge of the image
    (H, W, 3) uint8, where the grey image's Sobel gradient magnitude exceeds its
    EDGE_PERCENTILE-th percentile. Defined by the image alone, the same for every method."""
    mag = gradient_magnitude(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32))
    strong = (mag > np.percentile(mag, EDGE_PERCENTILE)).astype(np.uint8)
    size = 2 * EDGE_RADIUS + 1
    return cv2.dilate(strong, np.ones((size, size), np.uint8)) > 0


def striping(pred: np.ndarray) -> float:
    """Row-to-row alternation of a dense depth (H, W) metres (0 = no estimate) relative to the
    same along rows: the mean |d(y-1) - 2 d(y) + d(y+1)| / d(y) over pixels with an estimate
    and both vertical neighbours, divided by the same second difference along x. About 1 for
    isotropic texture; above 1 where the depth alternates from row to row, as scan-line
    stripes do (a road or a wall, smooth both ways, adds little to either). NaN when fewer
    than 100 pixels qualify either way."""
    d = pred.astype(np.float64)
    have = d > 0

    def second_difference(a: np.ndarray, ok: np.ndarray, axis: int) -> "float | None":
        a, ok = np.moveaxis(a, axis, 0), np.moveaxis(ok, axis, 0)
        both = ok[:-2] & ok[1:-1] & ok[2:]
        if both.sum() < 100:
            return None
        dd = np.abs(a[:-2] - 2 * a[1:-1] + a[2:])[both] / a[1:-1][both]
        return float(dd.mean())

    v, h = second_difference(d, have, 0), second_difference(d, have, 1)
    return float("nan") if v is None or h is None or h == 0 else v / h
