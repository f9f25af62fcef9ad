"""Readers of the LiDAR + camera layouts in ../shared/data, one frame at a time.

Formats: ``kitti-raw`` (a drive folder with ``velodyne_points/data``, ``image_02/data`` and
``calib/``, or the calibration one level up as KITTI ships it), ``kitti-object``
(``velodyne/``, ``image_2/``, ``calib/``), ``ddad`` (one DGP scene folder) and ``nuscenes``
(a folder with ``*LIDAR_TOP*.pcd.bin``, ``CAM_*`` images and ``calib_export.json``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.camera import PinholeCamera
from .calibration import (
    ddad_calibration,
    exported_calibration,
    kitti_object_calibration,
    kitti_raw_calibration,
    read_json,
)

FORMATS = ("kitti-raw", "kitti-object", "ddad", "nuscenes")
# Unix seconds of 2011-09-26 00:00 UTC, KITTI's first recording day: the time of a KITTI folder
# that gives none (no timestamps.txt, no YYYY_MM_DD in its path), frames 0.1 s apart from it
KITTI_EPOCH = 1_316_995_200.0


def kitti_stamps(root: Path, stems: list[str]) -> list[float]:
    """Unix seconds of each KITTI frame ``stems`` (file stems, frame numbers): the camera's
    ``image_02/timestamps.txt`` lines when the drive has them ("2011-09-26 13:02:25.964389445",
    UTC), else 10 Hz from midnight UTC of the recording day that the drive's or its parent's
    folder name gives (YYYY_MM_DD, as KITTI names them), else from KITTI_EPOCH."""
    lines = []
    path = root / "image_02" / "timestamps.txt"
    if path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if stems and len(lines) > max(int(s) for s in stems):
        out = []
        for s in stems:
            day, _, frac = lines[int(s)].partition(".")
            whole = datetime.strptime(day, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
            out.append(whole.timestamp() + float(f"0.{frac or 0}"))
        return out
    root = root.resolve()
    named = re.findall(r"(\d{4})_(\d{2})_(\d{2})", f"{root.parent.name}/{root.name}")
    start = (
        datetime(
            int(named[-1][0]), int(named[-1][1]), int(named[-1][2]), tzinfo=timezone.utc
        ).timestamp()
        if named
        else KITTI_EPOCH
    )
    return [start + 0.1 * int(s) for s in stems]


@dataclass
class Frame:
    """One synchronised LiDAR sweep and camera image.

    points: (N, 3) float32, LiDAR frame, metres. intensity: (N,) float32 or None.
    rgb: (H, W, 3) uint8. t_cam_from_lidar: (4, 4) float64 into the camera's reference
    optical frame. stamp: the image's time, Unix seconds (UTC; each reader says where it comes
    from). ring: (N,) int laser index or None.
    """

    name: str
    points: np.ndarray
    rgb: np.ndarray
    camera: PinholeCamera
    t_cam_from_lidar: np.ndarray
    stamp: float
    intensity: "np.ndarray | None" = None
    ring: "np.ndarray | None" = None


def load_rgb(path: "str | Path") -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; ValueError naming a missing or unreadable file."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise ValueError(f"image {path} does not exist") from None
    except OSError as exc:  # truncated or not an image (PIL's errors are OSErrors)
        raise ValueError(f"image {path} cannot be read: {exc}") from None


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as exc:
        raise ValueError(f"image {path} cannot be read: {exc}") from None


def resolve_frame_id(ids: list[str], frame_id: "str | int") -> str:
    """The frame id ``frame_id`` names: an id in ``ids``, or an index into ``ids``."""
    if str(frame_id) in ids:
        return str(frame_id)
    if isinstance(frame_id, int) or str(frame_id).lstrip("-").isdigit():
        i = int(frame_id)
        if 0 <= i < len(ids):
            return ids[i]
    raise ValueError(f"no frame '{frame_id}' ({len(ids)} frames: {ids[0]} .. {ids[-1]})")


def parse_frame_range(spec: str, option: str, count: "int | None" = None) -> tuple[int, int]:
    """(A, B) of "A:B" (frame indices, B exclusive), within [0, ``count``] when given;
    ValueError naming ``option`` otherwise."""
    a, sep, b = spec.partition(":")
    if not sep or not a.isdigit() or not b.isdigit():
        raise ValueError(f"{option} must be A:B (frame indices, B exclusive), got '{spec}'")
    if count is not None and not 0 <= int(a) < int(b) <= count:
        raise ValueError(f"{option} '{spec}' must be A:B with 0 <= A < B <= {count}")
    return int(a), int(b)


def select_frames(ids: list[str], spec: "str | None", option: str) -> list[str]:
    """The frame ids ``spec`` selects from ``ids``: all (None), "A:B" (indices, B exclusive;
    either end may be left out) or "id,id,..." (ids or indices). ValueError naming
    ``option`` when that selects nothing or names an unknown frame."""
    if spec is None:
        chosen = list(ids)
    elif ":" in spec:
        a, _, b = spec.partition(":")
        lo, hi = parse_frame_range(f"{a or 0}:{b or len(ids)}", option)
        chosen = ids[lo:hi]
    else:
        chosen = [resolve_frame_id(ids, i) for i in spec.split(",") if i]
    if not chosen:
        raise ValueError(f"{option} {spec} selects no frame: {len(ids)} frames (0:{len(ids)})")
    return chosen


def _read_float32_cloud(path: Path, columns: int) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"LiDAR scan {path} does not exist")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size == 0:
        raise ValueError(f"LiDAR scan {path} is empty ({path.stat().st_size} bytes): no points")
    if raw.size % columns:
        raise ValueError(f"{path}: {raw.size} floats is not a multiple of {columns}")
    return raw.reshape(-1, columns)


class KittiRawReader:
    """A KITTI raw drive: frame ids are the file stems ('0000000000', ...); stamps from
    ``kitti_stamps``."""

    def __init__(self, root: "str | Path", camera: int = 2) -> None:
        self.root = Path(root)
        files = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt")
        # KITTI raw keeps the day's calibration beside the drive folders; a copy may sit in calib/
        calib_dir = next(
            (d for d in (self.root / "calib", self.root.parent) if (d / files[0]).is_file()), None
        )
        if calib_dir is None:
            raise ValueError(
                f"{self.root} has no calib/{files[0]} (nor has its parent, the recording day's "
                f"folder): copy the day's {files[0]} and {files[1]} into {self.root / 'calib'}"
            )
        self.camera, self.t_cam_from_lidar = kitti_raw_calibration(calib_dir, camera)
        self.image_dir = self.root / f"image_0{camera}" / "data"
        self.velo_dir = self.root / "velodyne_points" / "data"
        self._ids = sorted(p.stem for p in self.velo_dir.glob("*.bin"))
        if not self._ids:
            raise ValueError(f"{self.velo_dir}: no .bin scans")
        self._stamps = dict(zip(self._ids, kitti_stamps(self.root, self._ids)))

    def frame_ids(self) -> list[str]:
        return list(self._ids)

    def read(self, frame_id: "str | int") -> Frame:
        """Frame ``frame_id``: a file stem, or a frame number (0 -> '0000000000')."""
        fid = str(frame_id)
        if fid.isdigit() and len(fid) < 10:
            fid = f"{int(fid):010d}"
        if fid not in self._ids:
            raise ValueError(
                f"no frame {fid}: {self.velo_dir / (fid + '.bin')} does not exist "
                f"({len(self._ids)} scans: {self._ids[0]} .. {self._ids[-1]})"
            )
        cloud = _read_float32_cloud(self.velo_dir / f"{fid}.bin", 4)
        rgb = load_rgb(self.image_dir / f"{fid}.png")
        if rgb.shape[:2] != (self.camera.height, self.camera.width):
            raise ValueError(
                f"{fid}: image is {rgb.shape[1]}x{rgb.shape[0]}, calibration says "
                f"{self.camera.width}x{self.camera.height}"
            )
        return Frame(
            fid,
            np.ascontiguousarray(cloud[:, :3]),
            rgb,
            self.camera,
            self.t_cam_from_lidar,
            self._stamps[fid],
            intensity=cloud[:, 3].copy(),
        )


class KittiObjectReader:
    """The KITTI object layout; frame ids are the file stems, which need not be consecutive.
    It records no time: stamps are KITTI_EPOCH + 0.1 s x the frame's index."""

    def __init__(self, root: "str | Path") -> None:
        self.root = Path(root)
        self._ids = sorted(p.stem for p in (self.root / "velodyne").glob("*.bin"))
        if not self._ids:
            raise ValueError(f"{self.root / 'velodyne'}: no .bin scans")

    def frame_ids(self) -> list[str]:
        return list(self._ids)

    def read(self, frame_id: "str | int") -> Frame:
        fid = resolve_frame_id(self._ids, frame_id)
        rgb = load_rgb(self.root / "image_2" / f"{fid}.png")
        cam, t = kitti_object_calibration(
            self.root / "calib" / f"{fid}.txt", rgb.shape[1], rgb.shape[0]
        )
        cloud = _read_float32_cloud(self.root / "velodyne" / f"{fid}.bin", 4)
        return Frame(
            fid,
            np.ascontiguousarray(cloud[:, :3]),
            rgb,
            cam,
            t,
            KITTI_EPOCH + 0.1 * self._ids.index(fid),
            intensity=cloud[:, 3].copy(),
        )


class DdadReader:
    """One DGP scene folder: LiDAR sweeps paired with the nearest image of ``camera``. File
    stems are the data's times in microseconds (as its scene JSON's ISO stamps say)."""

    def __init__(self, root: "str | Path", camera: str = "CAMERA_01") -> None:
        self.root = Path(root)
        self.camera_name = camera
        self._clouds = sorted((self.root / "point_cloud" / "LIDAR").glob("*.npz"))
        self._images = sorted((self.root / "rgb" / camera).glob("*.jpg"))
        if not self._clouds or not self._images:
            raise ValueError(f"{self.root}: no LiDAR sweeps or no images for {camera}")
        calibs = sorted((self.root / "calibration").glob("*.json"))
        if not calibs:
            raise ValueError(f"{self.root / 'calibration'}: no calibration json")
        w, h = _image_size(self._images[0])
        self.camera, self.t_cam_from_lidar = ddad_calibration(calibs[0], camera, w, h)

    def frame_ids(self) -> list[str]:
        return [p.stem for p in self._clouds]

    def read(self, frame_id: "str | int") -> Frame:
        ids = self.frame_ids()
        cloud_path = self._clouds[ids.index(resolve_frame_id(ids, frame_id))]
        t_lidar = int(cloud_path.stem)
        image_path = min(self._images, key=lambda p: abs(int(p.stem) - t_lidar))
        cloud = np.load(cloud_path)["data"]
        return Frame(
            cloud_path.stem,
            cloud[:, :3].astype(np.float32),
            load_rgb(image_path),
            self.camera,
            self.t_cam_from_lidar,
            int(image_path.stem) * 1e-6,
            intensity=cloud[:, 3].astype(np.float32),
        )


class NuscenesReader:
    """A nuScenes key frame: one LIDAR_TOP sweep; frame ids are the camera names."""

    def __init__(self, root: "str | Path") -> None:
        self.root = Path(root)
        self.calib_path = self.root / "calib_export.json"
        self.calib = read_json(self.calib_path, "calibration file")

    def frame_ids(self) -> list[str]:
        return sorted(self.calib["cameras"])

    def read(self, frame_id: "str | int" = "CAM_FRONT") -> Frame:
        name = resolve_frame_id(self.frame_ids(), frame_id)
        entry = self.calib["cameras"][name]
        rgb = load_rgb(self.root / entry["image"])
        cam, t = exported_calibration(self.calib_path, name, rgb.shape[1], rgb.shape[0])
        cloud = _read_float32_cloud(self.root / self.calib["lidar_file"], 5)
        return Frame(
            name,
            np.ascontiguousarray(cloud[:, :3]),
            rgb,
            cam,
            t,
            float(entry["timestamp"]),
            intensity=cloud[:, 3].copy(),
            ring=cloud[:, 4].astype(np.int32),
        )


# what each format's folder holds: a glob that finds its LiDAR files, and the layout in words
LAYOUTS = {
    "kitti-raw": (
        "velodyne_points/data/*.bin",
        "calib/, image_02/data/*.png, velodyne_points/data/*.bin",
    ),
    "kitti-object": ("velodyne/*.bin", "calib/*.txt, image_2/*.png, velodyne/*.bin"),
    "ddad": (
        "point_cloud/LIDAR/*.npz",
        "calibration/*.json, point_cloud/LIDAR/*.npz, rgb/CAMERA_XX/",
    ),
    "nuscenes": ("*.pcd.bin", "calib_export.json, *LIDAR_TOP*.pcd.bin, *CAM_*.jpg"),
}


def check_layout(root: Path, fmt: str, option: str = "--data") -> None:
    """ValueError naming the problem and the fix (``option``: the command's option that names
    the folder) when ``root`` is not a ``fmt`` folder."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}', expected one of {', '.join(FORMATS)}")
    pattern, layout = LAYOUTS[fmt]
    if not root.is_dir():
        raise ValueError(
            f"data folder {root} does not exist: pass {option} with a {fmt} folder ({layout})"
        )
    if not any(root.glob(pattern)):
        guess = next((f for f in FORMATS if f != fmt and any(root.glob(LAYOUTS[f][0]))), None)
        hint = (
            f"it looks like a {guess} folder: pass --format {guess}"
            if guess
            else f"a {fmt} folder holds {layout}"
        )
        raise ValueError(f"{root} is not a {fmt} folder: {hint}")


def open_dataset(
    root: "str | Path", fmt: str, camera: "str | None" = None, option: str = "--data"
):
    """A reader for ``fmt`` (one of FORMATS) at ``root``; ValueError (problem and fix: pass
    ``option``) when ``root`` does not hold that format."""
    check_layout(Path(root), fmt, option)
    if fmt == "kitti-raw":
        return KittiRawReader(root, int(camera) if camera else 2)
    if fmt == "kitti-object":
        return KittiObjectReader(root)
    if fmt == "ddad":
        return DdadReader(root, camera or "CAMERA_01")
    if fmt == "nuscenes":
        return NuscenesReader(root)
    raise ValueError(f"unknown format '{fmt}', expected one of {FORMATS}")
