"""Photometric consistency: how well a depth image explains another view of the same scene.

A target view t and a source view s (the next or previous frame of a sequence, or the other
camera of a rectified stereo pair) with intrinsics K (3, 3) and the rigid motion T_s<-t (4, 4,
camera optical frames, metres): each target pixel with depth z is back-projected, moved into s,
projected and the source image is sampled there (bilinear). Where the depth is right (and the
scene static and visible from s) the warped source reproduces the target. The error per pixel is
Monodepth's (Godard et al., CVPR 2017; Monodepth2, ICCV 2019):

    e = 0.85 * (1 - SSIM(target, warped)) / 2 + 0.15 * |target - warped|

on grey values in [0, 1], SSIM over 3 x 3 windows. With several sources the per-pixel minimum is
taken (a pixel hidden in one neighbour is usually seen in the other), and Monodepth2's auto-mask
drops pixels where a source explains the target better unwarped than warped (a static camera, an
object moving with it). Pure torch, any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WEIGHT = 0.85  # Monodepth's weighting of (1 - SSIM) / 2 against the absolute difference


def grey(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luma (ITU-R BT.601) of an RGB image (B, 3, H, W) in [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device)
    return (rgb * w.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of (B, C, H, W) images in [0, 1] over 3 x 3 windows (reflection padded),
    as Monodepth2 computes it."""
    c1, c2 = 0.01**2, 0.03**2
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x**2
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y**2
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2)
    return (num / den).clamp(-1.0, 1.0)


def photometric_error(target: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) Monodepth error between two grey images (B, 1, H, W) in [0, 1]."""
    l1 = (target - warped).abs()
    return SSIM_WEIGHT * (1.0 - ssim(target, warped)) / 2.0 + (1.0 - SSIM_WEIGHT) * l1


def warp(
    source: torch.Tensor,
    depth: torch.Tensor,
    k_target: torch.Tensor,
    k_source: torch.Tensor,
    t_source_target: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The source images (B, C, H', W') seen from the target views, and where that is defined.

    ``depth`` (B, 1, H, W): target depth, metres along the optical axis, 0 = none; ``k_*``
    (3, 3) or per image (B, 3, 3) intrinsics (pixel centres at integer coordinates);
    ``t_source_target`` (4, 4) or (B, 4, 4) maps target camera coordinates into source camera
    coordinates. Returns the warped images (B, C, H, W) and a mask (B, 1, H, W): depth given,
    in front of the source camera, and projecting inside the source image (bilinear sampling
    needs all four neighbours)."""
    b, _, h, w = depth.shape
    dev, dt = depth.device, depth.dtype
    v, u = torch.meshgrid(
        torch.arange(h, device=dev, dtype=dt), torch.arange(w, device=dev, dtype=dt), indexing="ij"
    )
    k_t, k_s, t = (
        m.to(dev, torch.float64).expand(b, *m.shape[-2:])
        for m in (k_target, k_source, t_source_target)
    )
    pixels = torch.stack([u, v, torch.ones_like(u)]).reshape(3, -1)
    rays = torch.linalg.inv(k_t).to(dt) @ pixels  # (B, 3, N)
    points = rays * depth.reshape(b, 1, -1)  # target camera frame
    moved = t[:, :3, :3].to(dt) @ points + t[:, :3, 3:].to(dt)
    pix = k_s.to(dt) @ moved
    z = pix[:, 2:3]
    uv = pix[:, :2] / z.clamp(min=1e-6)
    hs, ws = source.shape[-2:]
    inside = (
        (uv[:, 0] >= 0) & (uv[:, 0] <= ws - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= hs - 1)
    ).reshape(b, 1, h, w)
    valid = inside & (z.reshape(b, 1, h, w) > 1e-3) & (depth > 0)
    grid = torch.stack(
        [2.0 * uv[:, 0] / max(ws - 1, 1) - 1.0, 2.0 * uv[:, 1] / max(hs - 1, 1) - 1.0], dim=-1
    ).reshape(b, h, w, 2)
    warped = F.grid_sample(
        source.to(dt), grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    return warped, valid


def reprojection(
    target: torch.Tensor,
    depth: torch.Tensor,
    k: torch.Tensor,
    sources: "list[tuple[torch.Tensor, torch.Tensor]]",
    k_source: "torch.Tensor | None" = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-pixel minimum over ``sources`` ((grey image (B, 1, H', W'), T_source<-target))
    of the error of each warped source against the grey ``target`` (B, 1, H, W) with
    ``depth``, and the mask where at least one error is defined. ``k``: the target's
    intrinsics; ``k_source`` the sources' (default: ``k``). An error is defined where the warp
    of its whole SSIM window is (``window_valid``): a pixel next to one without depth would
    otherwise score the warped garbage of its neighbour, and a method would be judged on the
    pixels it leaves empty."""
    k_source = k if k_source is None else k_source
    best = torch.full_like(depth, float("inf"))
    for image, t_source_target in sources:
        warped, valid = warp(image, depth, k, k_source, t_source_target)
        error = photometric_error(target, warped)
        best = torch.minimum(best, torch.where(window_valid(valid), error, best))
    return best, torch.isfinite(best)


def window_valid(valid: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) bool: the whole 3 x 3 SSIM window of the pixel is ``valid`` (reflected at
    the image border, as ``ssim`` pads)."""
    invalid = F.pad((~valid).to(torch.float32), (1, 1, 1, 1), mode="reflect")
    return F.max_pool2d(invalid, 3, stride=1) == 0


def identity_error(
    target: torch.Tensor, images: "list[torch.Tensor]", corner: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """The per-pixel minimum error of the unwarped source ``images`` against ``target`` (the
    auto-mask's reference: the depth does not enter, so it is computed once per target). A
    target that is a crop of a view the size of the sources has ``corner`` (top row, left
    column): the sources are cropped the same."""
    (y, x), (h, w) = corner, target.shape[-2:]
    errors = [photometric_error(target, g[..., y : y + h, x : x + w]) for g in images]
    return torch.stack(errors).amin(dim=0)
