"""rosbag2 files (mcap and sqlite3) with the ``rosbags`` library, no rosbag2 install and no
torch needed: the type store, QoS profiles, blank messages, opening a bag, finding the node's
input topics in it, and reading a node parameter file."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rosbags.highlevel import AnyReader
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin
from rosbags.typesys import Stores, get_typestore

from ..msgs.convert import time_fields
from ..msgs.outputs import INPUTS as NODE_INPUTS
from ..msgs.outputs import input_topic
from .errors import DamagedBag

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)  # sensor_msgs are identical from Humble to Kilted
INPUTS = {i.topic: i.msgtype for i in NODE_INPUTS}  # node input -> message type


def qos(reliable: bool = True, transient_local: bool = False, depth: int = 10) -> Qos:
    """A rosbag2 offered QoS profile."""
    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


def storage_plugin(name: str) -> StoragePlugin:
    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    if name not in plugins:
        raise ValueError(f"storage must be mcap or sqlite3, got {name}")
    return plugins[name]


def make_header(stamp_ns: int, frame_id: str) -> Any:
    """A rosbags std_msgs/Header stamped ``stamp_ns`` nanoseconds."""
    T = TYPESTORE.types
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](**time_fields(stamp_ns)), frame_id=frame_id
    )


def blank_message(msgtype: str) -> Any:
    """A blank rosbags PointCloud2, Image or CameraInfo, to be filled by the ``msgs.fill_*``
    functions."""
    T = TYPESTORE.types
    cls, hdr, none = T[msgtype], make_header(0, ""), np.zeros(0, np.uint8)
    if msgtype == "sensor_msgs/msg/PointCloud2":
        return cls(
            header=hdr,
            height=0,
            width=0,
            fields=[],
            is_bigendian=False,
            point_step=0,
            row_step=0,
            data=none,
            is_dense=False,
        )
    if msgtype == "sensor_msgs/msg/Image":
        return cls(header=hdr, height=0, width=0, encoding="", is_bigendian=0, step=0, data=none)
    if msgtype == "sensor_msgs/msg/CameraInfo":
        roi = T["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        return cls(
            header=hdr,
            height=0,
            width=0,
            distortion_model="",
            d=np.zeros(0),
            k=np.zeros(9),
            r=np.zeros(9),
            p=np.zeros(12),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )
    raise ValueError(f"no blank message for {msgtype}")


class BagKit:
    """Blank rosbags messages for the frame path (msgs.outputs.MessageKit)."""

    point_field = TYPESTORE.types["sensor_msgs/msg/PointField"]

    def new(self, msgtype: str) -> Any:
        return blank_message(msgtype)

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        return make_header(stamp_ns, frame_id)


def load_parameters(path: "str | Path | None") -> dict[str, Any]:
    """The ``ros__parameters`` of a ROS 2 parameter YAML (``/**:`` or any node name), nested
    names flattened with dots (``extrinsic: {rotation: …}`` -> ``extrinsic.rotation``)."""
    if path is None:
        return {}
    if not Path(path).is_file():
        raise ValueError(f"parameter file {path} does not exist")
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(
            f"parameter file {path} is not valid YAML: {exc}".replace("\n", " ")
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"parameter file {path} holds no '/**: ros__parameters:' mapping")
    params: dict[str, Any] = {}

    def flatten(prefix: str, d: dict) -> None:
        for key, value in d.items():
            if isinstance(value, dict):
                flatten(f"{prefix}{key}.", value)
            else:
                params[prefix + str(key)] = value

    for section in data.values():
        if isinstance(section, dict) and "ros__parameters" in section:
            flatten("", section["ros__parameters"] or {})
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


def resolve_inputs(
    connections: list, remaps: dict[str, str], image_transport: str = "raw"
) -> dict[str, str]:
    """Input name -> bag topic: remapped, else the node's own name, else the bag's only topic of
    that type. With ``image_transport`` compressed, the image is the CompressedImage topic
    ``<camera/image, remapped>/compressed`` (image_transport's convention) or the only one."""
    topics = {c.topic: c.msgtype for c in connections}
    out = {}
    for name, msgtype in INPUTS.items():
        suffix, msgtype = input_topic(name, msgtype, image_transport)
        wanted = remaps.get(name, "/" + name) + suffix
        if wanted in topics:
            if topics[wanted] != msgtype:
                raise ValueError(f"topic {wanted} is {topics[wanted]}, expected {msgtype}")
            out[name] = wanted
            continue
        candidates = sorted(t for t, m in topics.items() if m == msgtype)
        if name not in remaps and len(candidates) == 1:
            out[name] = candidates[0]
        else:
            raise ValueError(
                f"bag has no topic {wanted} for {name} ({msgtype}); candidates: {candidates}; "
                f"remap with {name}:=TOPIC"
            )
    return out


# the readers of salvaged bags (open_bag), and where each was cut
TRUNCATED: "weakref.WeakKeyDictionary[AnyReader, str]" = weakref.WeakKeyDictionary()
MCAP_MAGIC = b"\x89MCAP0\r\n"
MCAP_DATA_END, MCAP_FOOTER = 0x0F, 0x02  # record opcodes


def truncated_mcap(path: Path) -> "tuple[bytes, int] | None":
    """For an .mcap cut short (a recording killed before it wrote its index and footer): the
    file's complete records, closed as an unindexed MCAP (a DataEnd record and a footer without
    a summary, which readers scan from the start), and how many bytes of the file they keep;
    None for a file that is not a cut MCAP."""
    data = path.read_bytes()
    if not data.startswith(MCAP_MAGIC) or data.endswith(MCAP_MAGIC):
        return None
    at = len(MCAP_MAGIC)
    while at + 9 <= len(data):  # a record: opcode (1), length (8), body
        length = int.from_bytes(data[at + 1 : at + 9], "little")
        if data[at] in (MCAP_DATA_END, MCAP_FOOTER) or at + 9 + length > len(data):
            break
        at += 9 + length
    end = bytes([MCAP_DATA_END]) + (4).to_bytes(8, "little") + bytes(4)  # no CRC
    footer = bytes([MCAP_FOOTER]) + (20).to_bytes(8, "little") + bytes(20)  # no summary
    return data[:at] + end + footer + MCAP_MAGIC, at


@contextlib.contextmanager
def open_bag(path: "str | Path") -> Iterator[AnyReader]:
    """``with open_bag(path) as reader``: an open reader of a rosbag2 folder or file, closed
    on the way out; a clear error for what is not one. A folder whose .mcap was cut short is
    read up to the cut (``salvaged``), and ``read_messages`` raises DamagedBag there."""
    path = Path(path)
    if not path.exists():
        raise ValueError(
            f"bag {path} does not exist: pass a rosbag2 folder (metadata.yaml + .mcap/.db3)"
        )
    with contextlib.ExitStack() as stack:
        try:
            reader = AnyReader([path], default_typestore=TYPESTORE)
            reader.open()
        except Exception as exc:  # rosbags raises its own error classes for broken files
            rescued = salvaged(path, stack)
            if rescued is None:
                raise ValueError(
                    f"bag {path} cannot be read ({exc}): pass a rosbag2 folder "
                    "(metadata.yaml + .mcap/.db3)"
                ) from None
            reader = rescued
        try:
            yield reader
        finally:
            reader.close()


def salvaged(path: Path, stack: contextlib.ExitStack) -> "AnyReader | None":
    """A reader of the bag folder ``path`` whose .mcap files were cut short, each closed after
    its last complete record in a temporary copy (removed by ``stack``), with a line saying
    where in TRUNCATED; None when the folder holds no cut .mcap."""
    cut = {f: truncated_mcap(f) for f in sorted(path.glob("*.mcap"))} if path.is_dir() else {}
    if not any(cut.values()):
        return None
    copy = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="salvaged_")))
    folder = copy / path.name
    shutil.copytree(path, folder, ignore=shutil.ignore_patterns("*.mcap"))
    said = []
    for f, fixed in cut.items():
        if fixed is None:
            shutil.copy2(f, folder / f.name)
            continue
        data, kept = fixed
        (folder / f.name).write_bytes(data)
        said.append(f"{f.name} ends at byte {f.stat().st_size} without its index and footer")
    try:
        reader = AnyReader([folder], default_typestore=TYPESTORE)
        reader.open()
    except Exception:  # not even the records before the cut make a bag
        return None
    TRUNCATED[reader] = f"bag {path} is truncated: {'; '.join(said)}"
    return reader


def read_messages(reader: AnyReader, path: "str | Path", connections: "list | None" = None):
    """``reader.messages()`` as (connection, time ns, raw), with a damaged stretch of the file
    raised as DamagedBag naming how many messages were read and the last good time, as is the
    end of a salvaged (cut) bag's messages (open_bag)."""
    count, last = 0, None
    messages = reader.messages(connections=connections) if connections else reader.messages()
    while True:
        try:
            item = next(messages)
        except StopIteration:
            cut = TRUNCATED.get(reader)
            if cut:
                at = f" (time {last * 1e-9:.3f} s)" if last else ""
                raise DamagedBag(f"{cut}: the {count} messages before the cut read{at}") from None
            return
        except Exception as exc:  # rosbags, mcap and zstd each raise their own errors
            where = f"after message {count}" + (f" (time {last * 1e-9:.3f} s)" if last else "")
            raise DamagedBag(f"bag {path} is damaged {where}: {exc}") from None
        count, last = count + 1, item[1]
        yield item


def deserialize(reader: AnyReader, raw: bytes, msgtype: str, path: "str | Path") -> Any:
    """One message, or DamagedBag when its bytes do not decode."""
    try:
        return reader.deserialize(raw, msgtype)
    except Exception as exc:
        raise DamagedBag(f"bag {path} holds a {msgtype} that does not decode: {exc}") from None
