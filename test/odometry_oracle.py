"""An exact odometry oracle: a textured ground plane and wall ahead, rendered by ray casting
from two camera poses of known relative motion, and LiDAR-like returns on them (exact points
on the planes, seen from the first camera)."""

import cv2
import numpy as np

H, W = 240, 640
K = np.array([[400.0, 0.0, 320.0], [0.0, 400.0, 120.0], [0.0, 0.0, 1.0]])
GROUND, WALL = 1.6, 12.0  # m: the ground plane y = 1.6 (optical frame, y down), the wall z = 12
TEXEL = 0.01  # m per texel of the random texture on both planes


def _texture(seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).random((3000, 3000)).astype(np.float32)
    return 0.5 + 6.0 * (cv2.GaussianBlur(noise, (0, 0), 2.0) - 0.5)  # smooth, contrasty


def _cast(origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """The nearest hit (N, 3) of ``rays`` (N, 3) from ``origin`` (3,) on the ground or wall
    (first camera's frame); rays that hit neither (upwards and away) get nan."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s_ground = np.where(rays[:, 1] > 0, (GROUND - origin[1]) / rays[:, 1], np.inf)
        s_wall = np.where(rays[:, 2] > 0, (WALL - origin[2]) / rays[:, 2], np.inf)
    s = np.minimum(s_ground, s_wall)
    s[~np.isfinite(s)] = np.nan
    return origin + s[:, None] * rays


def render(t_view_first: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image of the scene from the camera at T_view<-first."""
    u, v = np.meshgrid(np.arange(W) + 0.0, np.arange(H) + 0.0)
    rays_view = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(K).T
    r, t = t_view_first[:3, :3], t_view_first[:3, 3]
    hits = _cast(-r.T @ t, rays_view @ r)  # the view's rays in the first camera's frame
    on_wall = np.abs(hits[:, 2] - WALL) < 1e-6
    a = hits[:, 0] / TEXEL + 1500
    b = np.where(on_wall, hits[:, 1] + 20.0, hits[:, 2]) / TEXEL  # wall texels above the ground's
    grey = cv2.remap(
        texture, a.reshape(H, W).astype(np.float32), (b % 3000).reshape(H, W).astype(np.float32),
        cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP,
    )  # fmt: skip
    grey = np.where(np.isnan(hits[:, 0]).reshape(H, W), 0.0, grey)
    return np.repeat(np.clip(grey * 255, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def scene(t_view_first: np.ndarray, returns: int = 4000, seed: int = 1):
    """The first image, the view's image and ``returns`` exact points (N, 3) on the planes
    seen from the first camera (its optical frame, metres)."""
    texture = _texture()
    rng = np.random.default_rng(seed)
    uv = rng.uniform([0, 0], [W - 1, H - 1], (returns, 2))
    rays = np.c_[uv, np.ones(returns)] @ np.linalg.inv(K).T
    points = _cast(np.zeros(3), rays)
    points = points[~np.isnan(points[:, 0])]
    return render(np.eye(4), texture), render(t_view_first, texture), points
