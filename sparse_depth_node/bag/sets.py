"""The synchronised cloud / image / camera_info sets of a bag, read as the node reads its topics:
the inputs resolved (remaps, image transport), placed by the node's policy (msgs.extrinsics:
the bag's /tf_static and /tf, kept by time, when ``use_tf`` and it records TF, else
``extrinsic.*``), paired by the node's synchroniser (``sync_slop``, ``time_offset.*``).
``sparse-depth process`` writes the node's outputs for each set; training and evaluation on
bags decode each into a frame.

With ``fixed_frame_id`` a set waits until the bag's TF has been read HOLD_S past its stamps
(the sweep's last points and the image's instant are then covered), or until the bag's input
stamps have run LATE_S beyond that (TF stopped: the set is placed and dropped for it, said), or
the bag ends: TF is read ahead as far as a frame needs, never the whole bag first."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader

from ..core.camera import assumed_rectified
from ..msgs.convert import stamp_ns, stamp_seconds
from ..msgs.extrinsics import ExtrinsicSource
from ..msgs.motion import instants_ns
from ..msgs.outputs import INPUTS
from ..msgs.sync import ApproximateSync, SyncedSet
from ..msgs.tf_buffer import TfBuffer
from .io import deserialize, read_messages, resolve_inputs

TF = "tf2_msgs/msg/TFMessage"
HOLD_S = 0.5  # TF must reach this far past a set's newest stamp before the set is placed
LATE_S = 1.0  # a set waits no longer than this for TF once the inputs have run past HOLD_S


class BagSets:
    """The sets of the bag open in ``reader`` (at ``path``) under the node's ``values`` and
    input ``remaps``: ``inputs`` {input name: bag topic}, ``extrinsics`` (its ``place`` places a
    set), ``images_in`` (images read so far). ``say`` gets the lines worth saying once.
    ValueError when the bag lacks an input or any source of T_camera<-lidar."""

    def __init__(
        self,
        reader: AnyReader,
        path: "str | Path",
        values: Mapping[str, Any],
        remaps: "dict[str, str] | None" = None,
        say: "Callable[[str], None] | None" = None,
    ) -> None:
        self.reader, self.path, self.values = reader, path, values
        self.tf = TfBuffer()
        has_tf = any(c.msgtype == TF for c in reader.connections)
        self.extrinsics = ExtrinsicSource(
            lambda: values,
            self.tf if has_tf else None,
            "the bag's /tf_static and /tf",
            None if say is None else lambda _level, line: say(line),
        )
        self.inputs = resolve_inputs(reader.connections, remaps or {}, values["image_transport"])
        if self.extrinsics.problem():
            raise ValueError(f"{path}: {self.extrinsics.problem()}")
        self.streams = {self.inputs[i.topic]: i.stream for i in INPUTS}
        self.sync = ApproximateSync.from_settings(values)
        self.images_in = 0
        self._held: deque[tuple[int, SyncedSet]] = deque()  # (TF time it waits for, set)
        self.say = say
        self._lens_checked = False
        self._newest_input_ns = 0

    def feed(self, connection: Any, raw: bytes) -> list[SyncedSet]:
        """One message of the bag, in time order: TF kept, an input queued; the sets ready to
        be placed now (in time order)."""
        if connection.msgtype == TF:
            if self.extrinsics.tf is not None:
                msg = deserialize(self.reader, raw, TF, self.path)
                self.tf.add_message(msg, static=connection.topic.endswith("tf_static"))
            return self._ready()
        stream = self.streams.get(connection.topic)
        if stream is None:
            return []
        msg = deserialize(self.reader, raw, connection.msgtype, self.path)
        if stream == "image":
            self.images_in += 1
        if stream == "info" and not self._lens_checked:
            self._lens_checked = True
            line = assumed_rectified(
                msg, self.inputs["camera/image"], self.values["image_rectified"]
            )
            if line and self.say is not None:
                self.say(line)
        self._newest_input_ns = max(self._newest_input_ns, stamp_ns(msg.header))
        matched = self.sync.add(stream, msg, stamp_seconds(msg.header))
        if matched is not None:
            self._held.append((self._needed_ns(matched), matched))
        return self._ready()

    def flush(self) -> list[SyncedSet]:
        """The sets still held at the end of the bag."""
        held = [s for _, s in self._held]
        self._held.clear()
        return held

    def _needed_ns(self, matched: SyncedSet) -> int:
        """How far TF must reach before ``matched`` is placed (0: no wait)."""
        if not (self.values["fixed_frame_id"] and self.extrinsics.tf is not None):
            return 0
        return max(instants_ns(matched.cloud, matched.image, self.values)) + round(HOLD_S * 1e9)

    def _ready(self) -> list[SyncedSet]:
        ready = []
        reached = self.tf.newest_ns or 0
        while self._held:
            needed, matched = self._held[0]
            if needed > reached and needed + round(LATE_S * 1e9) > self._newest_input_ns:
                break
            ready.append(matched)
            self._held.popleft()
        return ready

    def __iter__(self) -> Iterator[SyncedSet]:
        """Every set of the bag, in time order (DamagedBag where the file is damaged)."""
        for connection, _, raw in read_messages(self.reader, self.path):
            yield from self.feed(connection, raw)
        yield from self.flush()
