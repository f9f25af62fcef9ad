"""Rigid transforms in numpy: quaternions (ROS order x, y, z, w), homogeneous (4, 4) matrices.

Translations in metres. No torch: the bag tools and the ROS layer use these without it.
"""

from __future__ import annotations

import numpy as np


def quaternion_to_matrix(q_xyzw: "np.ndarray | list[float]") -> np.ndarray:
    """Rotation matrix (3, 3) from a quaternion given as [x, y, z, w] (ROS order).

    The quaternion is normalised first; a zero or non-finite quaternion raises ValueError.
    """
    q = np.asarray(q_xyzw, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"quaternion {q.tolist()} is zero or not finite")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


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
    """Homogeneous transform (4, 4) from a translation [x, y, z] (m) and a quaternion [x, y, z,
    w]."""
    return make_transform(quaternion_to_matrix(q_xyzw), translation)


def invert_transform(t: np.ndarray) -> np.ndarray:
    """Inverse of a rigid homogeneous transform (4, 4)."""
    r = t[:3, :3]
    out = np.eye(4)
    out[:3, :3] = r.T
    out[:3, 3] = -r.T @ t[:3, 3]
    return out
