"""rosbag2 files (mcap and sqlite3) with the ``rosbags`` library, no rosbag2 install needed:
KITTI raw -> bag conversion, and offline processing of a bag through the per-frame pipeline.
(Live playback, which needs rclpy, is in ``player.py``.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import yaml
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from .camera import PinholeCamera
from .completion import DEFAULT_METHOD, DepthCompleter
from .datasets import KittiRawReader
from .extrinsics import extrinsic_from_parameters
from .geometry import matrix_to_quaternion
from .msgs import (
    fill_camera_info,
    fill_cloud_from_array,
    fill_depth_image,
    fill_pointcloud2,
    fill_rgb_image,
    image_to_rgb,
    pointcloud2_to_xyz,
    stamp_seconds,
)
from .pipeline import PipelineParams, process_frame
from .sync import ApproximateSync
from .tf_tree import TfTree

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)  # sensor_msgs are identical from Humble to Kilted
KITTI_TOPICS = {"points": "/kitti/velo/points", "image": "/kitti/camera/image_raw",
                "camera_info": "/kitti/camera/camera_info"}
KITTI_LIDAR_FRAME = "velo_link"
KITTI_CAMERA_FRAME = "camera_optical"
KITTI_START_NS = 1_317_024_000 * 10**9  # 2011-09-26, the drive's day, when a drive has no timestamps
INPUTS = {"lidar/points": "sensor_msgs/msg/PointCloud2", "camera/image": "sensor_msgs/msg/Image",
          "camera/camera_info": "sensor_msgs/msg/CameraInfo"}
OUTPUT_TYPES = {"depth/image": "sensor_msgs/msg/Image", "depth/camera_info": "sensor_msgs/msg/CameraInfo",
                "depth/points": "sensor_msgs/msg/PointCloud2", "depth/confidence": "sensor_msgs/msg/Image"}


def qos(reliable: bool = True, transient_local: bool = False, depth: int = 10) -> Qos:
    """A rosbag2 offered QoS profile."""
    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, depth, QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
               QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
               zero, zero, QosLiveliness.AUTOMATIC, zero, False)


def _storage(name: str) -> StoragePlugin:
    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    if name not in plugins:
        raise ValueError(f"storage must be mcap or sqlite3, got {name}")
    return plugins[name]


def make_header(stamp_ns: int, frame_id: str) -> Any:
    T = TYPESTORE.types
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
                                    frame_id=frame_id)


def blank_message(msgtype: str) -> Any:
    """A blank rosbags PointCloud2, Image or CameraInfo, to be filled by the ``msgs.fill_*`` functions."""
    T = TYPESTORE.types
    cls, hdr, none = T[msgtype], make_header(0, ""), np.zeros(0, np.uint8)
    if msgtype == "sensor_msgs/msg/PointCloud2":
        return cls(header=hdr, height=0, width=0, fields=[], is_bigendian=False, point_step=0, row_step=0,
                   data=none, is_dense=False)
    if msgtype == "sensor_msgs/msg/Image":
        return cls(header=hdr, height=0, width=0, encoding="", is_bigendian=0, step=0, data=none)
    if msgtype == "sensor_msgs/msg/CameraInfo":
        roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return cls(header=hdr, height=0, width=0, distortion_model="", d=np.zeros(0), k=np.zeros(9), r=np.zeros(9),
                   p=np.zeros(12), binning_x=0, binning_y=0, roi=roi)
    raise ValueError(f"no blank message for {msgtype}")


def _tf_static(parent: str, child: str, t_parent_child: np.ndarray, stamp_ns: int) -> Any:
    T = TYPESTORE.types
    q = matrix_to_quaternion(t_parent_child[:3, :3])
    tr = T["geometry_msgs/msg/Transform"](
        translation=T["geometry_msgs/msg/Vector3"](x=float(t_parent_child[0, 3]), y=float(t_parent_child[1, 3]),
                                                   z=float(t_parent_child[2, 3])),
        rotation=T["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))
    ts = T["geometry_msgs/msg/TransformStamped"](header=make_header(stamp_ns, parent), child_frame_id=child, transform=tr)
    return T["tf2_msgs/msg/TFMessage"](transforms=[ts])


def convert_kitti(data: "str | Path", out: "str | Path", frames: "tuple[int, int] | None" = None,
                  storage: str = "mcap", start_ns: int = KITTI_START_NS, compress: bool = False) -> int:
    """Write a KITTI raw drive (camera 2) as a rosbag2; returns the number of frames written.

    Topics: /kitti/velo/points (x, y, z, intensity float32, frame velo_link),
    /kitti/camera/image_raw (rgb8), /kitti/camera/camera_info (rectified: K = P_rect_02[:, :3],
    P = [K | 0]), and /tf_static velo_link -> camera_optical (R_rect_00, Tr_velo_to_cam and camera
    2's offset folded in), offered transient-local. Stamps: 10 Hz from ``start_ns``; message
    time = header stamp. ``frames`` = [A, B) indices into the drive. ``compress``: zstd chunks
    (mcap) or zstd per file (sqlite3), which rosbag2 reads natively.
    """
    reader = KittiRawReader(data)
    ids = reader.frame_ids()
    a, b = frames if frames is not None else (0, len(ids))
    if not 0 <= a < b <= len(ids):
        raise ValueError(f"frames {a}:{b} outside the drive's 0:{len(ids)}")
    cam = reader.camera
    # the camera's optical frame: the reference frame shifted by P_rect_02's translation
    t_cam_velo = cam.optical_from_reference() @ reader.t_cam_from_lidar
    info_cam = PinholeCamera(cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height)
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} exists; rosbag2 writes a new folder")
    T = TYPESTORE.types
    writer = Writer(out, version=8, storage_plugin=_storage(storage))
    if compress:
        writer.set_compression(CompressionMode.STORAGE if storage == "mcap" else CompressionMode.FILE,
                               CompressionFormat.ZSTD)
    with writer:
        c_tf = writer.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=TYPESTORE,
                                     offered_qos_profiles=[qos(transient_local=True, depth=1)])
        c_pts = writer.add_connection(KITTI_TOPICS["points"], "sensor_msgs/msg/PointCloud2", typestore=TYPESTORE,
                                      offered_qos_profiles=[qos()])
        c_img = writer.add_connection(KITTI_TOPICS["image"], "sensor_msgs/msg/Image", typestore=TYPESTORE,
                                      offered_qos_profiles=[qos()])
        c_inf = writer.add_connection(KITTI_TOPICS["camera_info"], "sensor_msgs/msg/CameraInfo", typestore=TYPESTORE,
                                      offered_qos_profiles=[qos()])
        # the camera frame is the tf child: T_parent<-child = T_velo<-cam
        tf = _tf_static(KITTI_LIDAR_FRAME, KITTI_CAMERA_FRAME, np.linalg.inv(t_cam_velo), start_ns)
        writer.write(c_tf, start_ns, TYPESTORE.serialize_cdr(tf, "tf2_msgs/msg/TFMessage"))
        for i in range(a, b):
            f = reader.read(ids[i])
            stamp = start_ns + round((i - a) * 1e8)
            cloud = fill_cloud_from_array(blank_message("sensor_msgs/msg/PointCloud2"), T["sensor_msgs/msg/PointField"],
                                          make_header(stamp, KITTI_LIDAR_FRAME), np.c_[f.points, f.intensity])
            image = fill_rgb_image(blank_message("sensor_msgs/msg/Image"), make_header(stamp, KITTI_CAMERA_FRAME), f.rgb)
            info = fill_camera_info(blank_message("sensor_msgs/msg/CameraInfo"), make_header(stamp, KITTI_CAMERA_FRAME), info_cam)
            writer.write(c_pts, stamp, TYPESTORE.serialize_cdr(cloud, "sensor_msgs/msg/PointCloud2"))
            writer.write(c_img, stamp, TYPESTORE.serialize_cdr(image, "sensor_msgs/msg/Image"))
            writer.write(c_inf, stamp, TYPESTORE.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
    return b - a


def load_parameters(path: "str | Path | None") -> dict[str, Any]:
    """The ``ros__parameters`` of a ROS 2 parameter YAML (``/**:`` or any node name), flattened."""
    if path is None:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    params: dict[str, Any] = {}
    for section in data.values():
        if isinstance(section, dict) and "ros__parameters" in section:
            params.update(section["ros__parameters"] or {})
    return params


def parse_remaps(remaps: Iterable[str]) -> dict[str, str]:
    """``FROM:=TO`` strings -> {FROM: TO}, names without a leading slash on the FROM side."""
    out = {}
    for r in remaps:
        src, sep, dst = r.partition(":=")
        if not sep or not src or not dst:
            raise ValueError(f"remap '{r}' is not FROM:=TO")
        out[src.lstrip("/")] = dst if dst.startswith("/") else "/" + dst
    return out


@dataclass
class ProcessReport:
    """What ``process_bag`` did: frame counts, reasons for frames without output, stage timings."""

    frames_in: int = 0
    frames_out: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def table(self) -> str:
        lines = [f"frames in {self.frames_in}, frames out {self.frames_out}, "
                 f"{self.frames_out / max(self.seconds, 1e-9):.1f} frames/s"]
        lines += [f"skipped ({reason}): {n}" for reason, n in sorted(self.skipped.items())]
        lines.append(f"{'stage':<12} {'median ms':>10} {'p90 ms':>8}")
        for stage, v in self.timings_ms.items():
            lines.append(f"{stage:<12} {np.median(v):10.1f} {np.percentile(v, 90):8.1f}")
        return "\n".join(lines)


def resolve_inputs(connections: list, remaps: dict[str, str]) -> dict[str, str]:
    """Input name -> bag topic: remapped, else the node's own name, else the bag's only topic of that type."""
    topics = {c.topic: c.msgtype for c in connections}
    out = {}
    for name, msgtype in INPUTS.items():
        wanted = remaps.get(name, "/" + name)
        if wanted in topics:
            if topics[wanted] != msgtype:
                raise ValueError(f"topic {wanted} is {topics[wanted]}, expected {msgtype}")
            out[name] = wanted
            continue
        candidates = sorted(t for t, m in topics.items() if m == msgtype)
        if name not in remaps and len(candidates) == 1:
            out[name] = candidates[0]
        else:
            raise ValueError(f"bag has no topic {wanted} for {name} ({msgtype}); candidates: {candidates}; "
                             f"remap with {name}:=TOPIC")
    return out


def open_bag(path: "str | Path") -> AnyReader:
    """An open reader of a rosbag2 folder or file, with a clear error for what is not one."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"bag {path} does not exist")
    reader = AnyReader([path], default_typestore=TYPESTORE)
    try:
        reader.open()
    except Exception as exc:  # rosbags raises its own error classes for broken files
        raise ValueError(f"bag {path} cannot be read: {exc}") from exc
    return reader


def process_bag(in_bag: "str | Path", out_bag: "str | Path", params: "dict[str, Any] | None" = None,
                remaps: "dict[str, str] | None" = None, device: "str | None" = None,
                storage: str = "mcap", progress: Any = None) -> ProcessReport:
    """Run the node's per-frame pipeline over a bag, as fast as possible, into a new bag.

    The output bag has the input bag's topics unchanged plus /depth/image, /depth/camera_info,
    /depth/points and /depth/confidence (stamped as the images). T_camera<-lidar comes from
    the bag's /tf_static and /tf when they connect the cloud's and the image's frames, else
    from the ``extrinsic.*`` parameters.
    """
    params = dict(params or {})
    remaps = remaps or {}
    completer = DepthCompleter(str(params.get("model", DEFAULT_METHOD)), device or str(params.get("device", "auto")),
                               inference_scale=float(params.get("inference_scale", 1.0)),
                               precision=str(params.get("precision", "fp32")))
    pp = PipelineParams.from_parameters(params.get)
    pp.validate()
    fallback = None
    if "extrinsic.translation" in params or "extrinsic.rotation" in params:
        fallback = extrinsic_from_parameters(params.get("extrinsic.translation", [0.0, 0.0, 0.0]),
                                             params.get("extrinsic.rotation", [0.0, 0.0, 0.0, 1.0]))
    sync = ApproximateSync(float(params.get("sync_slop", 0.05)), int(params.get("queue_size", 5)))
    sync.set_sensor_offsets(float(params.get("time_offset.image", 0.0)), float(params.get("time_offset.lidar", 0.0)))
    report = ProcessReport()
    tree = TfTree()
    t0 = time.perf_counter()
    out_bag = Path(out_bag)
    partial = out_bag.with_name(out_bag.name + ".partial")
    for path in (out_bag, partial):
        if path.exists():
            raise ValueError(f"{path} exists; rosbag2 writes a new folder")
    reader = open_bag(in_bag)
    interrupted = None
    try:
        inputs = resolve_inputs(reader.connections, remaps)
        streams = {inputs["lidar/points"]: "cloud", inputs["camera/image"]: "image",
                   inputs["camera/camera_info"]: "info"}
        T = TYPESTORE.types
        # written under OUT.partial and renamed when closed: an interrupted run (Ctrl-C) leaves a
        # closed, readable bag with the frames done so far; a killed one leaves no OUT at all
        with Writer(partial, version=8, storage_plugin=_storage(storage)) as writer:
            passthrough = {}
            for c in reader.connections:
                if c.topic in passthrough:
                    continue
                passthrough[c.topic] = writer.add_connection(
                    c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest,
                    offered_qos_profiles=getattr(c.ext, "offered_qos_profiles", []) or [qos()])
            outs = {name: writer.add_connection("/" + name, t, typestore=TYPESTORE, offered_qos_profiles=[qos()])
                    for name, t in OUTPUT_TYPES.items()}
            try:
                for conn, t_ns, raw in reader.messages():
                    writer.write(passthrough[conn.topic], t_ns, raw)
                    if conn.msgtype == "tf2_msgs/msg/TFMessage":
                        tree.add_message(reader.deserialize(raw, conn.msgtype))
                        continue
                    stream = streams.get(conn.topic)
                    if stream is None:
                        continue
                    msg = reader.deserialize(raw, conn.msgtype)
                    if stream == "image":
                        report.frames_in += 1
                    matched = sync.add(stream, msg, stamp_seconds(msg.header))
                    if matched is None:
                        continue
                    _process_set(matched, tree, fallback, completer, pp, writer, outs, report, T)
                    if progress is not None:
                        progress(report)
            except KeyboardInterrupt as exc:  # close the bag with what is done, then stop
                interrupted = exc
    finally:
        reader.close()
        if (partial / "metadata.yaml").exists():  # the writer closed it: complete or interrupted
            partial.rename(out_bag)
    if interrupted is not None:
        raise interrupted
    unpaired = report.frames_in - report.frames_out - sum(report.skipped.values())
    if unpaired:
        report.skipped["no matching cloud or camera_info within sync_slop"] = unpaired
    report.seconds = time.perf_counter() - t0
    return report


def _process_set(matched: Any, tree: TfTree, fallback: "np.ndarray | None", completer: DepthCompleter,
                 pp: PipelineParams, writer: Writer, outs: dict, report: ProcessReport, T: dict) -> None:
    cloud, image, info = matched.cloud, matched.image, matched.info
    try:
        points = pointcloud2_to_xyz(cloud)
        rgb = image_to_rgb(image)
        camera = PinholeCamera.from_camera_info(info)
    except ValueError as exc:
        report.skip(f"bad input: {exc}")
        return
    t_cam = tree.lookup(image.header.frame_id, cloud.header.frame_id)
    if t_cam is None:
        t_cam = fallback
    if t_cam is None:
        report.skip(f"no transform {cloud.header.frame_id} -> {image.header.frame_id} and no extrinsic.* parameters")
        return
    try:
        result = process_frame(points, camera, t_cam, completer, rgb, pp)
    except ValueError as exc:
        report.skip(f"bad input: {exc}")
        return
    header = image.header
    stamp = header.stamp.sec * 10**9 + header.stamp.nanosec
    depth = fill_depth_image(blank_message("sensor_msgs/msg/Image"), result.dense_depth, header)
    conf = fill_depth_image(blank_message("sensor_msgs/msg/Image"), np.where(result.confidence > 0, result.confidence, np.nan),
                            header)
    pts = fill_pointcloud2(blank_message("sensor_msgs/msg/PointCloud2"), T["sensor_msgs/msg/PointField"], header,
                           result.cloud, result.cloud_rgb)
    info_out = T["sensor_msgs/msg/CameraInfo"](**{**{k: getattr(info, k) for k in info.__dataclass_fields__},
                                                  "header": header})
    for name, msg in (("depth/image", depth), ("depth/camera_info", info_out), ("depth/points", pts),
                      ("depth/confidence", conf)):
        writer.write(outs[name], stamp, TYPESTORE.serialize_cdr(msg, OUTPUT_TYPES[name]))
    for stage, ms in result.timings_ms.items():
        report.timings_ms.setdefault(stage, []).append(ms)
    report.frames_out += 1
