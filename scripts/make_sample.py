"""Derive the bundled sample from ../shared/data/kitti_raw_2011_09_26 (KITTI raw, CC BY-NC-SA 3.0).

Copies frames' images and calibration unchanged and crops each Velodyne scan to the points in
front of camera 2 that project within the image plus a margin, which is all the pipeline uses.
Usage: python scripts/make_sample.py SRC DST FRAME [FRAME ...]
"""

import shutil
import sys
from pathlib import Path

import numpy as np

from sparse_depth_node.data.datasets import KittiRawReader

MARGIN_PX = 64


def main() -> None:
    src, dst, frames = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    reader = KittiRawReader(src)
    (dst / "calib").mkdir(parents=True, exist_ok=True)
    (dst / "velodyne_points" / "data").mkdir(parents=True, exist_ok=True)
    (dst / "image_02" / "data").mkdir(parents=True, exist_ok=True)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        shutil.copy(src / "calib" / name, dst / "calib" / name)
    cam = reader.camera
    p = cam.P @ reader.t_cam_from_lidar
    for frame in frames:
        fid = reader.frame_ids()[int(frame)]
        scan = np.fromfile(
            src / "velodyne_points" / "data" / f"{fid}.bin", dtype=np.float32
        ).reshape(-1, 4)
        h = np.c_[scan[:, :3].astype(np.float64), np.ones(len(scan))] @ p.T
        z = h[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u, v = h[:, 0] / z, h[:, 1] / z
        keep = (
            (z > 0.1)
            & (u > -MARGIN_PX)
            & (u < cam.width + MARGIN_PX)
            & (v > -MARGIN_PX)
            & (v < cam.height + MARGIN_PX)
        )
        scan[keep].tofile(dst / "velodyne_points" / "data" / f"{fid}.bin")
        shutil.copy(
            src / "image_02" / "data" / f"{fid}.png", dst / "image_02" / "data" / f"{fid}.png"
        )
        print(f"{fid}: kept {int(keep.sum())} of {len(scan)} points")


if __name__ == "__main__":
    main()
