"""One pass of real frames through the node's frame path, timed by stage: what the benchmark's
stage table, its motion section and the GPU check measure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..bag.io import BagKit
from ..core.completion import DepthCompleter
from ..core.settings import resolve
from ..core.timing import Stopwatch, summary
from ..data.datasets import Frame
from ..msgs.frame import ExtrinsicLookup, run_set
from ..msgs.kits import sensor_messages
from ..msgs.outputs import enabled_outputs


def frame_messages(frame: Frame, stamp_ns: int = 0) -> tuple[Any, Any, Any]:
    """The frame as a driver would publish it (rosbags messages; msgs.kits.sensor_messages),
    the cloud in frame "lidar", the image in "camera"."""
    points = np.c_[frame.points, frame.intensity]
    return sensor_messages(BagKit(), points, frame.rgb, frame.camera, stamp_ns, "lidar", "camera")


def bench_frames(
    frames: list[Frame],
    completer: DepthCompleter,
    iterations: int,
    warmup: int,
    tick: "Callable[[], object] | None" = None,
    values: "Mapping[str, Any] | None" = None,
    place: "ExtrinsicLookup | None" = None,
    messages: "Callable[[Frame, int], tuple[Any, Any, Any]] | None" = None,
) -> dict:
    """Stage timings over ``iterations`` frames (cycling through ``frames``) after ``warmup``.

    One pass per frame through the node's frame path (msgs.frame.run_set) with the settings
    ``values`` (default: the defaults) and their outputs: decode the messages, the pipeline's
    stages, encode every output; ``end_to_end`` is that whole pass. ``messages(frame, i)``
    gives pass i's messages (default: ``frame_messages`` at stamp 0) and ``place`` places them
    (default: the frame's own T_camera<-lidar).
    """
    values = resolve(values)
    topics = enabled_outputs(values)
    kit = BagKit()
    watch = Stopwatch(cuda=completer.device.type == "cuda")
    samples: dict[str, list[float]] = {}
    for it in range(warmup + iterations):
        if tick is not None:
            tick()
        f = frames[it % len(frames)]
        msgs = messages(f, it) if messages is not None else frame_messages(f)
        watch.restart()
        fixed = lambda *_, f=f: f.t_cam_from_lidar  # noqa: E731
        timings = run_set(*msgs, place or fixed, completer, values, topics, kit).timings
        end_to_end = watch.lap("end_to_end")
        if it >= warmup:
            for stage, ms in {**timings, "end_to_end": end_to_end}.items():
                samples.setdefault(stage, []).append(ms)
    samples.pop("total", None)
    return {k: summary(v) for k, v in samples.items()}
