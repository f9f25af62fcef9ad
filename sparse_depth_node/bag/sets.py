"""The synchronised cloud / image / camera_info sets of a bag, read as the node reads its topics:
the inputs resolved (remaps, image transport), T_camera<-lidar by the node's policy (the bag's
/tf_static and /tf when ``use_tf`` and it records TF, else ``extrinsic.*``), pairing by the
node's synchroniser (``sync_slop``, ``time_offset.*``). ``sparse-depth process`` writes the
node's outputs for each set; training and evaluation on bags decode each into a frame."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader

from ..msgs.convert import stamp_seconds
from ..msgs.extrinsics import ExtrinsicSource
from ..msgs.outputs import INPUTS
from ..msgs.sync import ApproximateSync, SyncedSet
from .io import deserialize, read_messages, resolve_inputs
from .tf_tree import TfTree

TF = "tf2_msgs/msg/TFMessage"


class BagSets:
    """The sets of the bag open in ``reader`` (at ``path``) under the node's ``values`` and
    input ``remaps``: ``inputs`` {input name: bag topic}, ``extrinsics`` (its ``lookup`` gives
    T_camera<-lidar for a set), ``images_in`` (images read so far). ValueError when the bag
    lacks an input or any source of T_camera<-lidar."""

    def __init__(
        self,
        reader: AnyReader,
        path: "str | Path",
        values: Mapping[str, Any],
        remaps: "dict[str, str] | None" = None,
    ) -> None:
        self.reader, self.path, self.values = reader, path, values
        self.tree = TfTree()
        has_tf = any(c.msgtype == TF for c in reader.connections)
        self.extrinsics = ExtrinsicSource(
            lambda: values,
            (lambda cam, lidar, _stamp: self.tree.lookup(cam, lidar)) if has_tf else None,
            "the bag's /tf_static and /tf",
        )
        self.inputs = resolve_inputs(reader.connections, remaps or {}, values["image_transport"])
        if self.extrinsics.problem():
            raise ValueError(f"{path}: {self.extrinsics.problem()}")
        self.streams = {self.inputs[i.topic]: i.stream for i in INPUTS}
        self.sync = ApproximateSync.from_settings(values)
        self.images_in = 0

    def feed(self, connection: Any, raw: bytes) -> "SyncedSet | None":
        """One message of the bag, in time order: TF kept, an input queued; the set it
        completes, if any."""
        if connection.msgtype == TF:
            if self.extrinsics.tf is not None:
                self.tree.add_message(deserialize(self.reader, raw, TF, self.path))
            return None
        stream = self.streams.get(connection.topic)
        if stream is None:
            return None
        msg = deserialize(self.reader, raw, connection.msgtype, self.path)
        if stream == "image":
            self.images_in += 1
        return self.sync.add(stream, msg, stamp_seconds(msg.header))

    def __iter__(self) -> Iterator[SyncedSet]:
        """Every set of the bag, in time order (DamagedBag where the file is damaged)."""
        for connection, _, raw in read_messages(self.reader, self.path):
            matched = self.feed(connection, raw)
            if matched is not None:
                yield matched
