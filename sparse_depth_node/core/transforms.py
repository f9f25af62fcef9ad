"""Rigid transforms in numpy: quaternions (ROS order x, y, z, w), homogeneous (4, 4) matrices.

Translations in metres. No torch: the bag tools and the ROS layer use these without it.
"""

from __future__ import annotations

import numpy as np


def quaternion_to_matrix(q_xyzw: "np.ndarray | list[float]") -> np.ndarray:
    """Rotation matrices (..., 3, 3) from quaternions (..., 4) given as [x, y, z, w] (ROS
    order): one (3, 3) for one quaternion.

    Each quaternion is normalised first; a zero or non-finite one raises ValueError.
    """
    q = np.asarray(q_xyzw, dtype=np.float64)
    if q.shape[-1:] != (4,):
        raise ValueError(f"quaternions must have 4 values [x, y, z, w], got shape {q.shape}")
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    bad = ~np.isfinite(norm) | (norm < 1e-12)
    if bad.any():
        raise ValueError(f"quaternion {q[bad[..., 0]][0].tolist()} is zero or not finite")
    x, y, z, w = np.moveaxis(q / norm, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def slerp(q0: np.ndarray, q1: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Unit quaternions (B, 4) [x, y, z, w] a fraction ``f`` (B,) of the way from ``q0`` to
    ``q1`` (each (B, 4), unit) along the shorter arc: spherical linear interpolation, as tf2
    interpolates rotations (linear, renormalised, where the two are within 0.03 degrees)."""
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where(dot[:, None] < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    near = sin < 1e-6
    safe = np.where(near, 1.0, sin)
    a = np.where(near, 1.0 - f, np.sin((1.0 - f) * theta) / safe)
    b = np.where(near, f, np.sin(f * theta) / safe)
    q = a[:, None] * q0 + b[:, None] * q1
    return np.asarray(q / np.linalg.norm(q, axis=-1, keepdims=True))


def rotation_angle(t: np.ndarray) -> np.ndarray:
    """The angle (radians, in [0, pi]) of the rotation of each transform (..., 4, 4) or
    rotation (..., 3, 3)."""
    r = np.asarray(t)[..., :3, :3]
    cos = (np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.asarray(np.arccos(np.clip(cos, -1.0, 1.0)))


def matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Quaternion [x, y, z, w] (w >= 0) of a rotation matrix (3, 3)."""
    r = np.asarray(rotation, dtype=np.float64)
    w = 0.5 * np.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2]))
    x = 0.5 * np.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2]))
    y = 0.5 * np.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2]))
    z = 0.5 * np.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2]))
    x = np.copysign(x, r[2, 1] - r[1, 2])
    y = np.copysign(y, r[0, 2] - r[2, 0])
    z = np.copysign(z, r[1, 0] - r[0, 1])
    q = np.array([x, y, z, w])
    return np.asarray(q / np.linalg.norm(q))


def make_transform(rotation: np.ndarray, translation: "np.ndarray | list[float]") -> np.ndarray:
    """Homogeneous transform (4, 4) from a rotation (3, 3) and a translation (3,) in metres."""
    t = np.eye(4)
    t[:3, :3] = np.asarray(rotation, dtype=np.float64)
    t[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return t


def transform_from_quaternion(
    translation: "np.ndarray | list[float]", q_xyzw: "np.ndarray | list[float]"
) -> np.ndarray:
    """Homogeneous transforms (..., 4, 4) from translations (..., 3) [x, y, z] (m) and
    quaternions (..., 4) [x, y, z, w]: one (4, 4) for one of each."""
    r = quaternion_to_matrix(q_xyzw)
    t = np.zeros(r.shape[:-2] + (4, 4))
    t[..., :3, :3] = r
    t[..., :3, 3] = np.asarray(translation, dtype=np.float64)
    t[..., 3, 3] = 1.0
    return t


def invert_transform(t: np.ndarray) -> np.ndarray:
    """Inverses of rigid homogeneous transforms (..., 4, 4)."""
    r = np.swapaxes(np.asarray(t, dtype=np.float64)[..., :3, :3], -1, -2)
    out = np.zeros(np.shape(t))
    out[..., :3, :3] = r
    out[..., :3, 3] = -(r @ np.asarray(t, dtype=np.float64)[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out
