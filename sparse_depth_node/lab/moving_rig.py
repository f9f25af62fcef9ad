"""A moving rig rendered by ray casting, with exact odometry on /tf: what motion compensation is
judged against (its test, and the table in docs/EVALUATION.md, ``measure``).

The world is a set of boxes (the ground, and blocks 4-35 m around the start) in the ``odom``
frame. The robot (``base_link``) drives a planar path of constant speed and turn rate; its
LiDAR spins once a sweep, firing a column of beams at a time, and a driver publishes the
returns in the LiDAR frame as it was when each fired, with each point's time in the layout of
a Velodyne, Ouster or Hesai driver. The truth of a pixel is the ray cast from where the camera
was at the image's instant. Nothing here uses the code it judges but the bag writer's helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bag.convert import new_writer, tf_message, write
from ..bag.io import TYPESTORE, BagKit, make_header, qos
from ..core.camera import PinholeCamera
from ..core.transforms import invert_transform, make_transform
from ..msgs.convert import (
    FLOAT32,
    FLOAT64,
    UINT16,
    UINT32,
    fill_camera_info,
    fill_rgb_image,
)

START_NS = 1_700_000_000 * 10**9  # the clock of the stamps at the rig's time 0
LIDAR_FRAME, CAMERA_FRAME, BASE_FRAME, ODOM_FRAME = "lidar", "camera_optical", "base_link", "odom"
CONVENTIONS = ("velodyne", "ouster", "hesai", "plain")  # plain: no time field
# base_link <- camera optical frame: optical z forward (base x), x right (-y), y down (-z)
R_BASE_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class Motion:
    """The robot's path: ``speed`` m/s forward, turning ``turn`` rad/s (left positive), from
    the odom origin at time 0."""

    speed: float
    turn: float

    def base_poses(self, t: np.ndarray) -> np.ndarray:
        """T_odom<-base_link (B, 4, 4) at times ``t`` (B,) s."""
        t = np.asarray(t, np.float64)
        yaw = self.turn * t
        if self.turn == 0:
            x, y = self.speed * t, np.zeros_like(t)
        else:
            r = self.speed / self.turn
            x, y = r * np.sin(yaw), r * (1 - np.cos(yaw))
        out = np.broadcast_to(np.eye(4), (len(t), 4, 4)).copy()
        out[:, 0, 0], out[:, 0, 1] = np.cos(yaw), -np.sin(yaw)
        out[:, 1, 0], out[:, 1, 1] = np.sin(yaw), np.cos(yaw)
        out[:, 0, 3], out[:, 1, 3] = x, y
        return out


@dataclass(frozen=True)
class Rig:
    """The sensors on base_link: a spinning LiDAR of ``elevations`` (rad) beams and ``columns``
    columns a ``sweep_s`` sweep, starting at azimuth ``start_azimuth`` (rad, pi: backwards, so
    that it faces forward half way through, as KITTI triggers its camera) and turning
    clockwise seen from above; a camera looking forward."""

    camera: PinholeCamera = PinholeCamera(320.0, 320.0, 320.0, 120.0, 640, 240)
    t_base_lidar: np.ndarray = field(
        default_factory=lambda: make_transform(np.eye(3), [0, 0, 1.73])
    )
    t_base_camera: np.ndarray = field(
        default_factory=lambda: make_transform(R_BASE_OPTICAL, [0.27, 0.0, 1.65])
    )
    elevations: np.ndarray = field(default_factory=lambda: np.radians(np.linspace(2.0, -24.8, 64)))
    columns: int = 1024
    sweep_s: float = 0.1
    start_azimuth: float = np.pi
    max_range: float = 120.0

    def t_camera_lidar(self) -> np.ndarray:
        """T_camera<-lidar (4, 4): the static extrinsic."""
        return np.asarray(invert_transform(self.t_base_camera) @ self.t_base_lidar)


def scene(seed: int = 0) -> np.ndarray:
    """The world's boxes (M, 2, 3): [min corner, max corner] in odom, metres. The ground (top
    at z = 0) and 80 blocks 0.5-4 m wide, 0.5-5 m tall, 4-35 m from the origin, none within
    3 m of the x axis ahead (a street the car drives) or 4.5 m of the robot's circle."""
    rng = np.random.default_rng(seed)
    boxes = [np.array([[-300.0, -300.0, -1.0], [300.0, 300.0, 0.0]])]
    while len(boxes) < 81:
        centre = rng.uniform(-35, 35, 2)
        size = rng.uniform(0.5, 4.0, 2)
        height = rng.uniform(0.5, 5.0)
        distance = np.hypot(*centre)
        in_street = centre[0] > -5 and abs(centre[1]) < 3 + size.max()
        near_circle = np.hypot(centre[0], centre[1] - 1.9) < 4.5 + size.max()
        if 4 <= distance <= 35 and not in_street and not near_circle:
            lo = np.r_[centre - size / 2, 0.0]
            boxes.append(np.array([lo, lo + np.r_[size, height]]))
    return np.array(boxes)


def cast(origins: np.ndarray, directions: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Distance (N,) along each unit ray (origins, directions (N, 3)) to the nearest box face
    (slab method), inf where it hits none."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / directions[:, None, :]
        a = (boxes[None, :, 0, :] - origins[:, None, :]) * inv
        b = (boxes[None, :, 1, :] - origins[:, None, :]) * inv
    near = np.nanmax(np.minimum(a, b), axis=2)
    far = np.nanmin(np.maximum(a, b), axis=2)
    hit = (far >= near) & (near > 1e-6)
    return np.asarray(np.where(hit, near, np.inf).min(axis=1))


@dataclass
class Sweep:
    """A sweep as the LiDAR measured it: ``points`` (beams, columns, 3) in the LiDAR frame at
    each firing, zero where there is no return; ``times`` (columns,) s from the sweep's start;
    ``start`` the rig's time of the start, s."""

    points: np.ndarray
    times: np.ndarray
    start: float


def lidar_sweep(rig: Rig, motion: Motion, boxes: np.ndarray, start: float) -> Sweep:
    """The sweep that starts at rig time ``start``: each column fired at its own time from
    where the LiDAR then was."""
    beams = len(rig.elevations)
    times = np.arange(rig.columns) * rig.sweep_s / rig.columns
    azimuth = rig.start_azimuth - 2 * np.pi * np.arange(rig.columns) / rig.columns
    el, az = np.meshgrid(rig.elevations, azimuth, indexing="ij")  # (beams, columns)
    rays = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    t_odom_lidar = motion.base_poses(start + times) @ rig.t_base_lidar  # (columns, 4, 4)
    r, o = t_odom_lidar[:, :3, :3], t_odom_lidar[:, :3, 3]
    directions = np.einsum("cij,bcj->bci", r, rays).reshape(-1, 3)
    origins = np.broadcast_to(o, (beams, rig.columns, 3)).reshape(-1, 3)
    distance = cast(origins, directions, boxes).reshape(beams, rig.columns)
    hit = distance <= rig.max_range
    points = np.where(hit[..., None], rays * np.where(hit, distance, 0.0)[..., None], 0.0)
    return Sweep(points.astype(np.float32), times, start)


def camera_rays(rig: Rig, motion: Motion, t: float, uv: np.ndarray) -> tuple[np.ndarray, ...]:
    """Origins and unit directions (K, 3) in odom of the camera's rays through pixels ``uv``
    (K, 2) at rig time ``t``, and each ray's Z per metre along it."""
    cam = rig.camera
    d = np.c_[(uv[:, 0] - cam.cx) / cam.fx, (uv[:, 1] - cam.cy) / cam.fy, np.ones(len(uv))]
    z_per_metre = 1.0 / np.linalg.norm(d, axis=1)
    t_odom_cam = motion.base_poses(np.array([t]))[0] @ rig.t_base_camera
    directions = (d * z_per_metre[:, None]) @ t_odom_cam[:3, :3].T
    return np.broadcast_to(t_odom_cam[:3, 3], directions.shape), directions, z_per_metre


def true_depth(
    rig: Rig, motion: Motion, boxes: np.ndarray, t: float, uv: np.ndarray
) -> np.ndarray:
    """The camera's depth (Z, m; inf: nothing) through pixel positions ``uv`` (K, 2) at ``t``."""
    origins, directions, z_per_metre = camera_rays(rig, motion, t, uv)
    return np.asarray(cast(origins, directions, boxes) * z_per_metre)


def footprint(
    rig: Rig, motion: Motion, boxes: np.ndarray, t: float, pixels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The true depth over each pixel (K, 2) (u, v integer, centres) at ``t``: lowest and
    highest over its centre, its four corners and its edges' midpoints, and at its centre."""
    offsets = np.array([[0, 0], [-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
    offsets = np.r_[offsets, [[0, -0.5], [0, 0.5], [-0.5, 0], [0.5, 0]]]
    depth = np.stack([true_depth(rig, motion, boxes, t, pixels + o) for o in offsets], 1)
    return depth.min(axis=1), depth.max(axis=1), depth[:, 0]


def render(rig: Rig, motion: Motion, boxes: np.ndarray, t: float) -> np.ndarray:
    """(H, W, 3) uint8 image at rig time ``t``: each box its own grey, the ground a 1 m
    checkerboard, darker with distance."""
    cam = rig.camera
    v, u = np.mgrid[0 : cam.height, 0 : cam.width].reshape(2, -1).astype(np.float64)
    origins, directions, _ = camera_rays(rig, motion, t, np.c_[u, v])
    grey = np.zeros(len(u))
    for i in range(0, len(u), 8192):  # rays x boxes in memory a slice at a time
        s = slice(i, i + 8192)
        distance = cast(origins[s], directions[s], boxes)
        hit = origins[s] + directions[s] * np.where(np.isfinite(distance), distance, 0)[:, None]
        checker = (np.floor(hit[:, 0]) + np.floor(hit[:, 1])) % 2
        level = np.where(np.abs(hit[:, 2]) < 1e-6, 60 + 80 * checker, 120 + (hit[:, 2] * 37) % 120)
        grey[s] = np.where(np.isfinite(distance), level * np.exp(-distance / 80), 200)
    return np.repeat(grey.reshape(cam.height, cam.width, 1), 3, axis=2).astype(np.uint8)


# each driver's layout: fields (name, datatype, offset), point_step, organised or not
LAYOUTS = {
    "velodyne": (
        [("x", FLOAT32, 0), ("y", FLOAT32, 4), ("z", FLOAT32, 8), ("intensity", FLOAT32, 12),
         ("ring", UINT16, 16), ("time", FLOAT32, 18)],
        22, False,
    ),
    "ouster": (
        [("x", FLOAT32, 0), ("y", FLOAT32, 4), ("z", FLOAT32, 8), ("intensity", FLOAT32, 16),
         ("t", UINT32, 20), ("reflectivity", UINT16, 24), ("ring", UINT16, 26),
         ("ambient", UINT16, 28), ("range", UINT32, 32)],
        48, True,
    ),
    "hesai": (
        [("x", FLOAT32, 0), ("y", FLOAT32, 4), ("z", FLOAT32, 8), ("intensity", FLOAT32, 12),
         ("ring", UINT16, 16), ("timestamp", FLOAT64, 18)],
        26, False,
    ),
    "plain": (
        [("x", FLOAT32, 0), ("y", FLOAT32, 4), ("z", FLOAT32, 8), ("intensity", FLOAT32, 12),
         ("ring", UINT16, 16)],
        18, False,
    ),
}  # fmt: skip
_NUMPY = {FLOAT32: "<f4", FLOAT64: "<f8", UINT16: "<u2", UINT32: "<u4"}


def cloud_message(sweep: Sweep, convention: str, stamp_ns: int, frame: str = LIDAR_FRAME) -> Any:
    """The sweep as a rosbags PointCloud2 in the layout of a ``convention`` driver (LAYOUTS),
    stamped at the sweep's start ``stamp_ns``: Velodyne's ``time`` float32 s and Hesai's
    ``timestamp`` float64 s since the epoch, unorganised, returns only; Ouster's ``t`` uint32
    ns, organised beams x columns with zeros where there is no return."""
    fields, step, organised = LAYOUTS[convention]
    beams, columns = sweep.points.shape[:2]
    dtype = np.dtype(
        {
            "names": [n for n, _, _ in fields],
            "formats": [_NUMPY[d] for _, d, _ in fields],
            "offsets": [o for _, _, o in fields],
            "itemsize": step,
        }
    )
    rec = np.zeros((beams, columns), dtype)
    for i, n in enumerate("xyz"):
        rec[n] = sweep.points[..., i]
    rec["ring"] = np.arange(beams)[:, None]
    rec["intensity"] = 100.0
    times = np.broadcast_to(sweep.times, (beams, columns))
    if convention == "velodyne":
        rec["time"] = times
    elif convention == "ouster":
        rec["t"] = np.round(times * 1e9)
        rec["range"] = np.round(np.linalg.norm(sweep.points, axis=-1) * 1000)
    elif convention == "hesai":
        rec["timestamp"] = stamp_ns * 1e-9 + times
    if not organised:  # column-major, as the beams fire
        rec = rec.T[(sweep.points != 0).any(axis=-1).T]
    T = TYPESTORE.types
    return T["sensor_msgs/msg/PointCloud2"](
        header=make_header(stamp_ns, frame),
        height=beams if organised else 1,
        width=columns if organised else len(rec),
        fields=[
            T["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=1)
            for n, d, o in fields
        ],
        is_bigendian=False,
        point_step=step,
        row_step=step * (columns if organised else len(rec)),
        data=np.ascontiguousarray(rec).view(np.uint8).reshape(-1),
        is_dense=not organised,
    )


@dataclass(frozen=True)
class Drive:
    """A recording: ``frames`` sweeps at 1 / sweep_s, the camera at ``camera_delay_s`` after
    each sweep's start, the LiDAR's points in ``convention``'s layout, odometry on /tf at
    ``tf_hz``; the images stamped ``image_stamp_late_s`` after their instants (a driver that
    stamps on arrival: the node's ``time_offset.image`` should then be its negative)."""

    motion: Motion
    camera_delay_s: float = 0.0
    convention: str = "velodyne"
    frames: int = 3
    tf_hz: float = 100.0
    image_stamp_late_s: float = 0.0
    rig: Rig = field(default_factory=Rig)
    seed: int = 0

    def sweep_starts(self) -> np.ndarray:
        return np.arange(self.frames) * self.rig.sweep_s

    def image_times(self) -> np.ndarray:
        return self.sweep_starts() + self.camera_delay_s


def write_drive(
    drive: Drive, out: Path, tick: "Callable[[], object] | None" = None
) -> tuple[np.ndarray, list[Sweep]]:
    """Record ``drive`` as a rosbag2 at ``out``: /tf_static (base_link -> lidar, base_link ->
    camera_optical), /tf (odom -> base_link from 0.5 s before the first sweep to 0.5 s after the
    last image), /lidar/points, /camera/image and /camera/camera_info (rectified), each written
    at its stamp. Returns the boxes and the sweeps (for the truth)."""
    boxes = scene(drive.seed)
    rig, kit = drive.rig, BagKit()
    sweeps = [lidar_sweep(rig, drive.motion, boxes, t) for t in drive.sweep_starts()]
    tf_times = np.arange(-0.5, drive.image_times()[-1] + 0.5, 1.0 / drive.tf_hz)
    base = drive.motion.base_poses(tf_times)
    messages: list[tuple[int, str, Any]] = [
        (START_NS - 10**9, "/tf_static", tf_message(BASE_FRAME, child, t, 0))
        for child, t in ((LIDAR_FRAME, rig.t_base_lidar), (CAMERA_FRAME, rig.t_base_camera))
    ]
    for t, pose in zip(tf_times, base):
        ns = START_NS + round(t * 1e9)
        messages.append((ns, "/tf", tf_message(ODOM_FRAME, BASE_FRAME, pose, ns)))
    for sweep, t_image in zip(sweeps, drive.image_times()):
        cloud_ns = START_NS + round(sweep.start * 1e9)
        # the driver publishes once the sweep is over
        done = cloud_ns + round(rig.sweep_s * 1e9)
        messages.append((done, "/lidar/points", cloud_message(sweep, drive.convention, cloud_ns)))
        image_ns = START_NS + round((t_image + drive.image_stamp_late_s) * 1e9)
        header = make_header(image_ns, CAMERA_FRAME)
        rgb = render(rig, drive.motion, boxes, t_image)
        messages.append(
            (
                image_ns,
                "/camera/image",
                fill_rgb_image(kit.new("sensor_msgs/msg/Image"), header, rgb),
            )
        )
        info = fill_camera_info(kit.new("sensor_msgs/msg/CameraInfo"), header, rig.camera)
        messages.append((image_ns, "/camera/camera_info", info))
        if tick is not None:
            tick()
    types = {
        "/tf_static": "tf2_msgs/msg/TFMessage",
        "/tf": "tf2_msgs/msg/TFMessage",
        "/lidar/points": "sensor_msgs/msg/PointCloud2",
        "/camera/image": "sensor_msgs/msg/Image",
        "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
    }
    with new_writer(out, "mcap", False) as writer:
        connections = {
            topic: writer.add_connection(
                topic,
                msgtype,
                typestore=TYPESTORE,
                offered_qos_profiles=[qos(transient_local=topic == "/tf_static")],
            )
            for topic, msgtype in types.items()
        }
        for ns, topic, msg in sorted(messages, key=lambda m: m[0]):
            write(writer, connections[topic], ns, msg)
    return boxes, sweeps


def sparse_errors(drive: Drive, boxes: np.ndarray, sparse: "list[np.ndarray]") -> dict[str, float]:
    """How far the projected returns ``sparse`` ((H, W) metres, 0 = none; one per image of
    ``drive``) lie from the truth at the images' instants, over the returns whose pixel sees
    something: p90 of |error| at the pixel's centre and beyond the depth its footprint spans
    (``footprint``), in % of the true depth, and the share more than 5 % off."""
    centre_err, beyond_err = [], []
    for depth, t in zip(sparse, drive.image_times()):
        v, u = np.nonzero(depth > 0)
        z = depth[v, u].astype(np.float64)
        lo, hi, centre = footprint(drive.rig, drive.motion, boxes, t, np.c_[u, v].astype(float))
        seen = np.isfinite(centre)
        z, lo, hi, centre = z[seen], lo[seen], hi[seen], centre[seen]
        centre_err.append(np.abs(z - centre) / centre)
        beyond_err.append(np.maximum(0.0, np.maximum(z - hi, lo - z)) / centre)
    c, b = np.concatenate(centre_err), np.concatenate(beyond_err)
    return {
        "p90_centre_pct": float(np.percentile(c, 90) * 100),
        "p90_beyond_footprint_pct": float(np.percentile(b, 90) * 100),
        "over_5pct": float(np.mean(c > 0.05)),
        "returns": int(len(c)),
    }


def measure(
    drive: Drive, folder: Path, fixed_frame_id: str, params: "dict[str, Any] | None" = None
) -> dict[str, float]:
    """Record ``drive`` under ``folder`` (once), run ``sparse-depth process`` over it with
    ``fixed_frame_id`` (and ``params``), and score its depth/sparse (``sparse_errors``)."""
    from ..bag.io import deserialize, open_bag, read_messages
    from ..bag.process import process_bag
    from ..msgs.convert import depth_image_to_metres

    name = (
        f"v{drive.motion.speed:g}_w{np.degrees(drive.motion.turn):g}_d"
        f"{drive.camera_delay_s * 1000:g}ms_{drive.convention}_{drive.frames}"
    ) + (f"_late{drive.image_stamp_late_s * 1000:g}ms" if drive.image_stamp_late_s else "")
    bag = folder / name
    if not bag.exists():
        write_drive(drive, bag)
    out = folder / f"{name}.out_{fixed_frame_id or 'none'}"
    settings = {"model": "nearest", "device": "cpu", "publish_sparse": True}
    settings.update(publish_cloud=False, fixed_frame_id=fixed_frame_id, **(params or {}))
    if not out.exists():
        process_bag(bag, out, settings)
    sparse = []
    with open_bag(out) as reader:
        for conn, _, raw in read_messages(reader, out):
            if conn.topic == "/depth/sparse":
                sparse.append(depth_image_to_metres(deserialize(reader, raw, conn.msgtype, out)))
    if len(sparse) != drive.frames:
        raise ValueError(f"{out}: {len(sparse)} sparse depth images for {drive.frames} frames")
    return sparse_errors(drive, scene(drive.seed), sparse)
