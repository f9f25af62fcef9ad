"""Calibration parsers for KITTI raw, KITTI object, DDAD and nuScenes.

Each returns a ``PinholeCamera`` and ``t_cam_from_lidar`` (4, 4), the transform from the
LiDAR frame (x forward, y left, z up) into the camera's reference optical frame (z forward,
x right, y down), metres, so that ``camera.P @ t_cam_from_lidar @ [x y z 1]`` projects a point.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.camera import PinholeCamera
from ..core.transforms import invert_transform, transform_from_quaternion


def read_text(path: "str | Path", what: str) -> str:
    """The text of ``path``; ValueError naming ``what`` is missing or unreadable."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {path} cannot be read: {exc}") from None


def read_json(path: "str | Path", what: str) -> dict:
    """The JSON object in ``path``; ValueError naming ``what`` when missing or not JSON."""
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid JSON: {exc}") from None


def read_kitti_calib_file(path: "str | Path") -> dict[str, np.ndarray]:
    """Parse a KITTI ``key: v1 v2 ...`` calibration file; non-numeric lines are skipped."""
    out: dict[str, np.ndarray] = {}
    for line in read_text(path, "calibration file").splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            out[key.strip()] = np.array([float(x) for x in rest.split()], dtype=np.float64)
        except ValueError:
            continue
    return out


def _rigid(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = rotation.reshape(3, 3)
    t[:3, 3] = translation.reshape(3)
    return t


def _require(
    calib: dict[str, np.ndarray], key: str, size: int, source: "str | Path"
) -> np.ndarray:
    if key not in calib:
        raise ValueError(f"{source}: missing calibration entry '{key}'")
    if calib[key].size != size:
        raise ValueError(f"{source}: '{key}' has {calib[key].size} values, expected {size}")
    return calib[key]


def kitti_raw_calibration(
    calib_dir: "str | Path", camera: int = 2
) -> tuple[PinholeCamera, np.ndarray]:
    """Camera ``camera`` (rectified) and T_cam<-velo of a KITTI raw recording day.

    uv ~ P_rect_0c @ R_rect_00 @ Tr_velo_to_cam @ [x y z 1]; the rectifying rotation
    R_rect_00 is folded into the returned transform, P_rect_0c's fourth column into the
    camera's shift.
    """
    calib_dir = Path(calib_dir)
    c2c_path = calib_dir / "calib_cam_to_cam.txt"
    v2c_path = calib_dir / "calib_velo_to_cam.txt"
    c2c = read_kitti_calib_file(c2c_path)
    v2c = read_kitti_calib_file(v2c_path)
    p = _require(c2c, f"P_rect_0{camera}", 12, c2c_path)
    size = _require(c2c, f"S_rect_0{camera}", 2, c2c_path)
    r_rect = np.eye(4)
    r_rect[:3, :3] = _require(c2c, "R_rect_00", 9, c2c_path).reshape(3, 3)
    tr = _rigid(_require(v2c, "R", 9, v2c_path), _require(v2c, "T", 3, v2c_path))
    cam = PinholeCamera.from_projection(p, int(size[0]), int(size[1]))
    return cam, r_rect @ tr


def kitti_object_calibration(
    path: "str | Path", width: int, height: int
) -> tuple[PinholeCamera, np.ndarray]:
    """Camera 2 and T_cam<-velo of a KITTI object frame (``calib/ID.txt``: P2, R0_rect,
    Tr_velo_to_cam)."""
    calib = read_kitti_calib_file(path)
    p2 = _require(calib, "P2", 12, path)
    r0 = np.eye(4)
    r0[:3, :3] = _require(calib, "R0_rect", 9, path).reshape(3, 3)
    tr = np.eye(4)
    tr[:3, :] = _require(calib, "Tr_velo_to_cam", 12, path).reshape(3, 4)
    return PinholeCamera.from_projection(p2, width, height), r0 @ tr


def _ddad_pose(pose: dict) -> np.ndarray:
    r, t = pose["rotation"], pose["translation"]
    return transform_from_quaternion(
        [t["x"], t["y"], t["z"]], [r["qx"], r["qy"], r["qz"], r["qw"]]
    )


def ddad_calibration(
    path: "str | Path", camera: str, width: int, height: int, lidar: str = "LIDAR"
) -> tuple[PinholeCamera, np.ndarray]:
    """Camera and T_cam<-lidar from a DDAD/DGP ``calibration/*.json``.

    Extrinsics there are sensor -> vehicle; T_cam<-lidar = inv(T_vehicle<-cam) @ T_vehicle<-lidar.
    """
    data = read_json(path, "calibration file")
    names = list(data["names"])
    for name in (camera, lidar):
        if name not in names:
            raise ValueError(f"{path}: no sensor '{name}' (has {names})")
    ci, li = names.index(camera), names.index(lidar)
    intr = data["intrinsics"][ci]
    if abs(float(intr.get("skew", 0.0))) > 1e-9:
        raise ValueError(f"{path}: camera {camera} has skew {intr['skew']}, not supported")
    k = np.array([[intr["fx"], 0.0, intr["cx"]], [0.0, intr["fy"], intr["cy"]], [0.0, 0.0, 1.0]])
    t = invert_transform(_ddad_pose(data["extrinsics"][ci])) @ _ddad_pose(data["extrinsics"][li])
    return PinholeCamera.from_intrinsics(k, width, height), t


def exported_calibration(
    path: "str | Path", camera: str, width: int, height: int
) -> tuple[PinholeCamera, np.ndarray]:
    """Camera and T_cam<-lidar from a ``calib_export.json`` (``cameras.NAME.K``,
    ``.T_cam_from_lidar``)."""
    data = read_json(path, "calibration file")
    cams = data["cameras"]
    if camera not in cams:
        raise ValueError(f"{path}: no camera '{camera}' (has {sorted(cams)})")
    entry = cams[camera]
    t = np.asarray(entry["T_cam_from_lidar"], dtype=np.float64).reshape(4, 4)
    return PinholeCamera.from_intrinsics(entry["K"], width, height), t
