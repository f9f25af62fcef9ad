"""Motion compensation of LiDAR points, their projection into a depth image, and
back-projection.

Conventions: metres; the camera optical frame is z forward, x right, y down (REP 103);
depth is Z along the optical axis (REP 118); an empty pixel holds depth 0 and mask 0.
Pixel (u, v) has its centre at integer coordinates: u = column, v = row.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .camera import PinholeCamera, ray_maps


def deskew(
    points: torch.Tensor, times: "torch.Tensor | None", span: float, poses: torch.Tensor
) -> torch.Tensor:
    """Points (N, 3) in the LiDAR frame at their firing times -> (N, 3) float32 in the LiDAR
    frame at the camera's instant: p' = R_b p + t_b, with [R_b | t_b] = ``poses`` (B, 4, 4) of
    the bin b of each point's time (``times`` (N,) s from the sweep's start; None: bin 0).

    A point at the LiDAR's own origin (0, 0, 0: a beam without a return, as Ouster's organised
    clouds hold them) and one of unknown time become NaN, which the projection ignores:
    carried, it would land at the LiDAR's position, in view. They take an extra bin of NaN.
    """
    bins = poses.shape[0]
    x, y, z = points[:, :3].to(torch.float32).unbind(1)
    if times is None:
        index = torch.zeros_like(x)
    else:  # bins / span per second; an unknown (NaN) time takes the NaN bin
        scale = bins / span if span > 0 else 0.0
        index = (times * scale).clamp_(0, bins - 1).nan_to_num_(bins)
    index = index.to(torch.int64).masked_fill_((x == 0) & (y == 0) & (z == 0), bins)
    nan = torch.full((1, 12), float("nan"), device=poses.device)
    rows = torch.cat([poses[:, :3, :].reshape(bins, 12).to(torch.float32), nan]).T.contiguous()
    m = rows.index_select(1, index)  # (12, N): row 4 i + j is R_b[i, j], row 4 i + 3 t_b[i]
    out = torch.empty(3, len(x), dtype=torch.float32, device=points.device)
    for i in range(3):  # row i of R_b p + t_b, over every point at once
        torch.addcmul(m[4 * i + 3], m[4 * i], x, out=out[i])
        out[i].addcmul_(m[4 * i + 1], y).addcmul_(m[4 * i + 2], z)
    return out.T


def distort(
    x: torch.Tensor, y: torch.Tensor, model: str, k: "tuple[float, ...]"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised coordinates (X/Z, Y/Z) through a lens: OpenCV's model for ``plumb_bob``
    (k1, k2, p1, p2, k3) and ``rational_polynomial`` (k1, k2, p1, p2, k3, k4, k5, k6), its
    fisheye model for ``equidistant`` (k1, k2, k3, k4); pixels are then fx x + cx, fy y + cy.
    """
    if model == "equidistant":
        r = torch.sqrt(x * x + y * y)
        theta = torch.atan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3]))))
        scale = torch.where(r > 1e-12, theta_d / r.clamp(min=1e-12), torch.ones_like(r))
        return x * scale, y * scale
    k1, k2, p1, p2, k3, k4, k5, k6 = (*k, 0.0, 0.0, 0.0)[:8]
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xy = x * y
    return (
        x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x),
        y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy,
    )


def project_points(
    points: torch.Tensor,
    camera: PinholeCamera,
    t_cam_from_lidar: np.ndarray,
    min_depth: float = 0.1,
    max_depth: float = 120.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project LiDAR points into a sparse depth image with a z-buffer.

    Args:
        points: (N, 3) float tensor, x/y/z in the LiDAR frame (metres). Rows with NaN or Inf
            are ignored, and so are points at the LiDAR's origin (0, 0, 0): a beam without a
            return, as Ouster's organised clouds hold them (a LiDAR in front of the camera
            would put them in view).
        camera: the camera; its ``shift`` (translation column of P) is applied, and a raw
            image's lens ``distortion`` (points whose undistorted rays lie outside the image's,
            which a distortion polynomial could bring back in, are dropped).
        t_cam_from_lidar: (4, 4) transform mapping LiDAR coordinates into the camera's
            reference optical frame.
        min_depth, max_depth: points with Z outside [min_depth, max_depth] are dropped; so are
            points behind the camera and outside the image.

    Returns:
        depth (1, 1, H, W) float32 in metres, 0 where empty, and mask (1, 1, H, W) float32 in
        {0, 1}; where several points fall on one pixel the nearest wins. Same code on CPU
        and CUDA, no Python loops; the outputs live on ``points.device``.
    """
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must have shape (N, 3), got {tuple(points.shape)}")
    if not min_depth > 0 or not max_depth > min_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
    device = points.device
    h, w = camera.height, camera.width
    t_np = camera.optical_from_reference() @ np.asarray(t_cam_from_lidar, dtype=np.float64)
    t = torch.as_tensor(t_np, dtype=torch.float32, device=device)
    xyz = points[:, :3].to(torch.float32)
    cam = xyz @ t[:3, :3].T + t[:3, 3]
    z = cam[:, 2]
    keep = torch.isfinite(cam).all(dim=1) & (z >= min_depth) & (z <= max_depth)
    keep &= (xyz[:, 0] != 0) | (xyz[:, 1] != 0) | (xyz[:, 2] != 0)  # not the origin
    z_safe = torch.where(keep, z, torch.ones_like(z))
    x, y = cam[:, 0] / z_safe, cam[:, 1] / z_safe
    if camera.distortion:
        x0, x1, y0, y1 = camera.normalised_bounds()
        keep &= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        x, y = distort(x, y, camera.distortion, camera.coeffs)
    u = torch.floor(camera.fx * x + camera.cx + 0.5)
    v = torch.floor(camera.fy * y + camera.cy + 0.5)
    keep &= (u >= 0) & (u < w) & (v >= 0) & (v < h)
    # points not kept go to one extra slot past the image (no boolean indexing: on a GPU that
    # would wait for the device to say how many points are kept)
    index = torch.where(keep, v * w + u, h * w).to(torch.int64)
    flat = torch.full((h * w + 1,), float("inf"), dtype=torch.float32, device=device)
    flat.scatter_reduce_(0, index, z, reduce="amin", include_self=True)
    flat = flat[: h * w]
    mask = torch.isfinite(flat)
    depth = torch.where(mask, flat, torch.zeros_like(flat))
    return depth.view(1, 1, h, w), mask.to(torch.float32).view(1, 1, h, w)


def backproject_depth(
    depth: torch.Tensor,
    camera: PinholeCamera,
    confidence: "torch.Tensor | None" = None,
    confidence_threshold: float = 0.0,
    min_depth: float = 0.0,
    max_depth: float = float("inf"),
    stride: int = 1,
    rgb: "torch.Tensor | None" = None,
) -> tuple[torch.Tensor, "torch.Tensor | None", torch.Tensor]:
    """Back-project a depth image to 3-D points in the camera optical frame.

    X = (u - cx) Z / fx, Y = (v - cy) Z / fy, Z = depth (metres); through a raw image's lens,
    X / Z and Y / Z are its pixel's undistorted ray (camera.ray_maps).

    Args:
        depth: (H, W) or (1, 1, H, W) depth in metres; non-finite or <= 0 means no estimate.
        confidence: optional (H, W) map in [0, 1]; pixels with confidence below
            ``confidence_threshold`` (or 0 when the threshold is 0) are dropped.
        min_depth, max_depth: keep only Z in [min_depth, max_depth].
        stride: keep every ``stride``-th row and column (decimation).
        rgb: optional (H, W, 3) uint8 image at the depth's resolution, for colour.

    Returns:
        points (M, 3) float32, colours (M, 3) uint8 or None, and the (H', W') boolean map of
        kept pixels on the strided grid (row-major order of the points).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    d = depth.reshape(depth.shape[-2], depth.shape[-1])
    h, w = d.shape
    if (h, w) != (camera.height, camera.width):
        raise ValueError(f"depth is {w}x{h} but the camera is {camera.width}x{camera.height}")
    d = d[::stride, ::stride]
    # NaN fails every comparison; the upper bound is finite, so +inf fails it too
    valid = (d > 0) & (d >= min_depth) & (d <= min(max_depth, torch.finfo(torch.float32).max))
    if confidence is not None:
        c = confidence.reshape(h, w)[::stride, ::stride]
        valid &= (c >= confidence_threshold) & (c > 0)
    # one gather of the kept pixels by flat index, of their depth and of X / Z and Y / Z
    hs, ws = d.shape
    idx = torch.nonzero(valid.reshape(-1)).squeeze(1)
    z = d.reshape(-1).index_select(0, idx)
    dev = d.device
    x_over_z, y_over_z = ray_factors(camera, stride, dev)
    points = torch.empty(len(z), 3, dtype=torch.float32, device=dev)
    points[:, 0] = x_over_z.index_select(0, idx) * z
    points[:, 1] = y_over_z.index_select(0, idx) * z
    points[:, 2] = z
    colours = None
    if rgb is not None:
        if tuple(rgb.shape[:2]) != (h, w):
            raise ValueError(f"rgb is {tuple(rgb.shape[:2])} but depth is {(h, w)}")
        colours = rgb[::stride, ::stride].reshape(-1, 3).index_select(0, idx)
    return points, colours, valid


@functools.lru_cache(maxsize=16)
def ray_factors(
    camera: PinholeCamera, stride: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """X / Z and Y / Z of each pixel of the strided grid, flattened (row-major), on ``device``:
    for a pinhole a per-column and a per-row factor broadcast over the grid; through a lens the
    camera's ray maps (undistortPoints, once a camera). Kept for the camera's next frames."""
    if camera.distortion:
        x, y = ray_maps(camera)
        return (
            torch.from_numpy(np.ascontiguousarray(x[::stride, ::stride])).reshape(-1).to(device),
            torch.from_numpy(np.ascontiguousarray(y[::stride, ::stride])).reshape(-1).to(device),
        )
    hs, ws = -(-camera.height // stride), -(-camera.width // stride)
    grid = torch.arange(0, max(camera.height, camera.width), stride, dtype=torch.float32)
    grid = grid.to(device)
    x_over_z = ((grid[:ws] - camera.cx) / camera.fx).expand(hs, ws).reshape(-1)
    y_over_z = ((grid[:hs] - camera.cy) / camera.fy)[:, None].expand(hs, ws).reshape(-1)
    return x_over_z, y_over_z


def voxel_downsample(
    points: torch.Tensor, size: float, rgb: "torch.Tensor | None" = None
) -> tuple[torch.Tensor, "torch.Tensor | None"]:
    """One point per occupied cube of ``size`` metres (axis-aligned in the points' frame): the
    mean of the points (M, 3) in it, and of their colours (M, 3) uint8 when given, rounded.
    The occupancy of any grid of cells of ``size`` or larger aligned with it is unchanged.
    Returns (K, 3) float32 and (K, 3) uint8 or None, ordered by cube (x slowest, z fastest)."""
    if not size > 0:
        raise ValueError(f"voxel size must be > 0, got {size}")
    if len(points) == 0:
        return points, rgb
    cells = torch.floor(points / size).to(torch.int64)
    cells = cells - cells.min(dim=0).values
    span = cells.max(dim=0).values + 1
    key = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]
    _, inverse = torch.unique(key, return_inverse=True)
    k = int(inverse.max()) + 1
    count = torch.zeros(k, dtype=torch.float32, device=points.device)
    count.index_add_(0, inverse, torch.ones_like(points[:, 0]))
    mean = torch.zeros(k, 3, dtype=torch.float32, device=points.device)
    mean.index_add_(0, inverse, points.to(torch.float32)).div_(count[:, None])
    if rgb is None:
        return mean, None
    colour = torch.zeros(k, 3, dtype=torch.float32, device=points.device)
    colour.index_add_(0, inverse, rgb.to(torch.float32)).div_(count[:, None])
    return mean, colour.round_().to(torch.uint8)


FEW_RETURNS = 100  # a depth with fewer pixels holding a return than this is (nearly) empty


def empty_depth_reason(
    points: np.ndarray,
    camera: PinholeCamera,
    t_cam_from_lidar: np.ndarray,
    min_depth: float,
    max_depth: float,
) -> str:
    """Why the points (N, 3+) of a frame whose depth came out (nearly) empty give so few
    returns, the likeliest cause first, in words: the cloud (empty, not finite, no return), the
    extrinsic (every point behind the camera), the range (none within min_depth..max_depth), or
    the image (none in view)."""
    xyz = np.asarray(points, np.float64)[:, :3]
    if len(xyz) == 0:
        return "the cloud holds no point"
    finite = np.isfinite(xyz).all(axis=1)
    returns = finite & (xyz != 0).any(axis=1)
    if not returns.any():
        what = "no finite point" if not finite.any() else "only points at the LiDAR's origin"
        return f"the cloud ({len(xyz)} points) holds {what} (no return)"
    t = camera.optical_from_reference() @ np.asarray(t_cam_from_lidar, np.float64)
    cam = xyz[returns] @ t[:3, :3].T + t[:3, 3]
    ahead = cam[:, 2] > 0
    if not ahead.any():
        return (
            f"every one of the {len(cam)} points lies behind the camera: check the extrinsic "
            "(T_camera<-lidar: TF or extrinsic.*; the rotation above all)"
        )
    z = cam[ahead, 2]
    near = (z >= min_depth) & (z <= max_depth)
    if near.sum() < FEW_RETURNS:
        return (
            f"of the {int(ahead.sum())} points in front of the camera {int(near.sum())} lie "
            f"within min_depth..max_depth ({min_depth:g}..{max_depth:g} m; theirs "
            f"{z.min():.2f}..{z.max():.2f} m): check the range, or the extrinsic's translation"
        )
    return (
        f"{int(near.sum())} points lie in front within range but few fall inside the "
        f"{camera.width}x{camera.height} image: check the extrinsic and camera_info"
    )
