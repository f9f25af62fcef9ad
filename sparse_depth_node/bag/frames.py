"""The frames of a robot's own recordings, for training and evaluation: each synchronised set of a
rosbag2 (bag/sets.py: the node's topics, remaps, TF or extrinsic parameters, time offsets)
decoded as the node decodes it (msgs.frame.decode_set) into a data.datasets.Frame.

A bag is decoded once into a cache folder of plain files (``cache_frames``): the points of every
frame end to end (float32) and the images (uint8), both read back memory-mapped, and a JSON of
the rest (names, stamps, cameras, transforms). ``BagFrames`` reads a cache with the interface of
the data set readers (``frame_ids``, ``read``), so training, its photometric views and the
evaluation take a bag as they take a KITTI folder, and a GPU never waits on rosbag decoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.camera import PinholeCamera
from ..core.geometry import deskew
from ..core.motion import Sweep
from ..core.settings import resolve
from ..data.datasets import Frame
from ..msgs.convert import stamp_ns
from ..msgs.errors import Dropped
from ..msgs.frame import decode_set
from .io import open_bag
from .sets import BagSets

CACHE_VERSION = 1
# the settings that decide which frames a bag gives and what they hold
DECODING = (
    "image_transport",
    "use_tf",
    "extrinsic.translation",
    "extrinsic.rotation",
    "time_offset.image",
    "time_offset.lidar",
    "fixed_frame_id",
    "point_time.field",
    "point_time.unit",
    "point_time.reference",
    "sync_slop",
    "queue_size",
    "max_points",
    "max_image_pixels",
)


def default_cache() -> Path:
    """$SPARSE_DEPTH_CACHE/frames, else ~/.cache/sparse_depth_node/frames."""
    root = os.environ.get("SPARSE_DEPTH_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "sparse_depth_node") / "frames"


def cache_key(bag: Path, values: Mapping[str, Any], remaps: Mapping[str, str]) -> str:
    """What a cache of ``bag`` depends on: the bag's files (names, sizes, times), the decoding
    settings, the remaps and the cache format."""
    files = sorted(bag.iterdir()) if bag.is_dir() else [bag]
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    settings = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}
    spec = [CACHE_VERSION, str(bag.resolve()), stats, [settings[k] for k in DECODING]]
    spec.append(sorted(remaps.items()))
    return hashlib.sha1(json.dumps(spec, default=str).encode()).hexdigest()[:16]


def camera_record(camera: PinholeCamera) -> list[float]:
    return [camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height, *camera.shift]


def cache_frames(
    bag: "str | Path",
    params: "Mapping[str, Any] | None" = None,
    remaps: "Mapping[str, str] | None" = None,
    root: "Path | None" = None,
    tick: "Callable[[], object] | None" = None,
) -> Path:
    """The cache folder of ``bag`` under the node parameters ``params`` and input ``remaps``:
    reused when it exists, else made (in a ``.partial`` folder of its own, renamed when
    complete: an interrupted run leaves no half cache, and processes that make the same cache
    at once, as torchrun's do, never write into one folder). ``tick`` is called after each set
    decoded. ValueError when the bag gives no frame (why each set was dropped) or frames of
    different sizes."""
    bag, values, remaps = Path(bag), resolve(params), dict(remaps or {})
    folder = (root or default_cache()) / cache_key(bag, values, remaps)
    if (folder / "frames.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(
        tempfile.mkdtemp(prefix=f"{folder.name}.", suffix=".partial", dir=folder.parent)
    )
    try:
        write_frames(bag, values, remaps, partial, tick)
        partial.rename(folder)
    except OSError:
        if not (folder / "frames.json").is_file():
            raise
        # another process completed the same cache first: its folder is the same frames
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def write_frames(
    bag: Path,
    values: "Mapping[str, Any]",
    remaps: dict[str, str],
    out: Path,
    tick: "Callable[[], object] | None",
) -> None:
    """Decode every set of ``bag`` into the folder ``out``: points.f32 (N, 3) float32 metres in
    the LiDAR frame, rgb.u8 (H, W, 3) uint8 per frame, frames.json (ids, stamps, cameras,
    transforms, point offsets, the sets dropped by counter)."""
    meta: dict[str, Any] = {"bag": str(bag), "names": [], "stamps": [], "cameras": []}
    meta.update(transforms=[], offsets=[0], skipped={})
    with open_bag(bag) as reader:
        sets = BagSets(reader, bag, values, remaps)
        with open(out / "points.f32", "wb") as points, open(out / "rgb.u8", "wb") as rgb:
            for matched in sets:
                if tick is not None:
                    tick()
                try:
                    d = decode_set(
                        matched.cloud, matched.image, matched.info, sets.extrinsics.place, values
                    )
                except Dropped as exc:
                    meta["skipped"][exc.counter] = meta["skipped"].get(exc.counter, 0) + 1
                    continue
                xyz = compensated_points(d.points, d.placement.sweep)
                size = [d.camera.width, d.camera.height]
                if meta.setdefault("size", size) != size:
                    raise ValueError(
                        f"{bag}: images of {meta['size']} and {size} px: one camera size per bag"
                    )
                points.write(np.ascontiguousarray(xyz, np.float32).tobytes())
                rgb.write(np.ascontiguousarray(d.rgb, np.uint8).tobytes())
                meta["names"].append(str(stamp_ns(matched.image.header)))
                meta["stamps"].append(stamp_ns(matched.image.header) * 1e-9)
                meta["cameras"].append(camera_record(d.camera))
                meta["transforms"].append(d.placement.t_cam_from_lidar.ravel().tolist())
                meta["offsets"].append(meta["offsets"][-1] + len(xyz))
    if not meta["names"]:
        raise ValueError(f"{bag} gives no frame (dropped: {meta['skipped'] or 'no set paired'})")
    (out / "frames.json").write_text(json.dumps(meta))


def compensated_points(points: np.ndarray, sweep: "Sweep | None") -> np.ndarray:
    """(N', 3) float32: the points carried to the camera's instant by ``sweep`` (core.motion,
    on the CPU), those without a place (no return, no time) left out; as they are without."""
    if sweep is None:
        return points
    times = None if sweep.times is None else torch.from_numpy(sweep.times)
    carried = deskew(torch.from_numpy(points), times, sweep.span, torch.from_numpy(sweep.poses))
    kept = carried.numpy()
    return np.asarray(kept[np.isfinite(kept).all(axis=1)])


class BagFrames:
    """The frames of one bag's cache (``cache_frames``), read as a data set is read: frame ids
    are the images' stamps in nanoseconds (as text), in time order; ``read`` takes an id or an
    index. ``skipped``: the sets the cache dropped, by counter."""

    def __init__(self, folder: "str | Path") -> None:
        self.folder = Path(folder)
        meta = json.loads((self.folder / "frames.json").read_text())
        self.bag, self._ids, self.stamps = meta["bag"], meta["names"], meta["stamps"]
        self.skipped = meta["skipped"]
        self._cameras, self._transforms = meta["cameras"], meta["transforms"]
        self._offsets = meta["offsets"]
        width, height = meta["size"]
        self._points = np.memmap(self.folder / "points.f32", np.float32, "r").reshape(-1, 3)
        self._rgb = np.memmap(self.folder / "rgb.u8", np.uint8, "r").reshape(
            len(self._ids), height, width, 3
        )

    def frame_ids(self) -> list[str]:
        return list(self._ids)

    def read(self, frame_id: "str | int") -> Frame:
        """Frame ``frame_id``: an id (a stamp), or an index into ``frame_ids``."""
        fid = str(frame_id)
        i = self._ids.index(fid) if fid in self._ids else int(fid)
        if not 0 <= i < len(self._ids):
            raise ValueError(f"no frame {frame_id}: {self.bag} gives {len(self._ids)} frames")
        fx, fy, cx, cy, w, h, *shift = self._cameras[i]
        a, b = self._offsets[i], self._offsets[i + 1]
        return Frame(
            self._ids[i],
            np.array(self._points[a:b]),
            np.array(self._rgb[i]),
            PinholeCamera(fx, fy, cx, cy, int(w), int(h), shift=tuple(shift)),
            np.asarray(self._transforms[i], np.float64).reshape(4, 4),
            self.stamps[i],
        )
