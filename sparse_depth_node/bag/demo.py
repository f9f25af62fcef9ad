"""The main job on a bag: the node live over DDS in its own process, the bag played into it,
the outputs recorded to a bag, a preview PNG per frame and a summary table.

This is the robot path end to end on one machine: what the node publishes here is what a
planner or RViz receives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer

from ..core.methods import DEFAULT_METHOD
from ..core.runtime import signals_held
from ..data.depth_io import preview
from ..msgs.convert import any_image_to_rgb, depth_image_to_metres, stamp_ns
from ..msgs.extrinsics import extrinsic_parameters
from ..msgs.outputs import OUTPUTS
from ..ros.kit import RclpyKit
from .extrinsic import number_list, reader_extrinsic
from .io import TYPESTORE, deserialize, open_bag, qos, read_messages, resolve_inputs
from .player import BagPlayer

RECORDED = {o.topic: o.msgtype for o in OUTPUTS}  # the demo enables and records every output
ENABLE_ALL = [f"{o.enabled_by}:=true" for o in OUTPUTS if o.enabled_by]


@dataclass
class DemoReport:
    """What the demo did: summary lines (frames in and out, latencies, the node's stages and
    counters, what was written) and, when a frame gave no depth, the problem in one line."""

    lines: list[str]
    problem: "str | None"


@dataclass
class DemoBag:
    """What the demo reads of a bag in its one opening: the node's ``inputs`` found in it (input
    name -> topic), the ``images`` by stamp (ns; for the previews; their count is the frames),
    the camera's ``size`` (width, height) from its first camera_info, and T_camera<-lidar from
    its TF."""

    path: Path
    inputs: dict[str, str]
    images: dict[int, np.ndarray]
    size: "tuple[int, int] | None"
    t_cam_from_lidar: np.ndarray


def read_demo_bag(reader: Any, path: Path) -> DemoBag:
    """The DemoBag of the bag open in ``reader``."""
    inputs = resolve_inputs(reader.connections, {})
    t_cam = reader_extrinsic(reader, path, inputs)[0]
    image, info = inputs["camera/image"], inputs["camera/camera_info"]
    images, size = {}, None
    conns = [c for c in reader.connections if c.topic in (image, info)]
    for conn, _, raw in read_messages(reader, path, conns):
        msg = deserialize(reader, raw, conn.msgtype, path)
        if conn.topic == image:
            images[stamp_ns(msg.header)] = any_image_to_rgb(msg)
        elif size is None:
            size = (int(msg.width), int(msg.height))
    return DemoBag(path, inputs, images, size, t_cam)


def node_command(demo: DemoBag, model: str, device: str, *extra: str) -> list[str]:
    """The command line that runs the node for the demo's bag as a user's rig file would: its
    topics remapped, its /tf_static extrinsic and its image size (``warmup_size``) as
    parameters, and ``extra`` ``-p`` arguments; everything else (QoS, DDS) as shipped."""
    cmd = [sys.executable, "-m", "sparse_depth_node.ros.main", "--ros-args"]
    params = [f"model:={model}", f"device:={device}", "use_tf:=false"]
    for name, value in extrinsic_parameters(demo.t_cam_from_lidar).items():
        params.append(f"{name}:={number_list(value).replace(' ', '')}")
    if demo.size is not None:
        params.append(f"warmup_size:=[{demo.size[0]},{demo.size[1]}]")
    for p in (*params, *extra):
        cmd += ["-p", p]
    for name, topic in demo.inputs.items():
        cmd += ["-r", f"{name}:={topic}"]
    return cmd


def stop_node(proc: subprocess.Popen, timeout: float = 20.0) -> bool:
    """SIGTERM the node's process and wait; SIGKILL it after ``timeout`` s. Returns whether it
    stopped by itself. A Ctrl-C or SIGTERM meanwhile is held until it has (the node would
    outlive us)."""
    with signals_held():
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return False


@dataclass
class Recording:
    """What the demo heard: each output topic's messages, when each frame's image was sent and
    its depth arrived (monotonic s, by stamp ns), the node's /diagnostics."""

    received: dict[str, list] = field(default_factory=lambda: {k: [] for k in RECORDED})
    sent: dict[int, float] = field(default_factory=dict)
    arrival: dict[int, float] = field(default_factory=dict)
    diagnostics: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, topic: str, msg: Any) -> None:
        with self.lock:
            self.received[topic].append(msg)
            if topic == "depth/image":
                self.arrival[stamp_ns(msg.header)] = time.monotonic()

    def complete_frames(self) -> int:
        """How many frames every output has arrived for."""
        with self.lock:
            return min(len(v) for v in self.received.values())


def run_demo(
    bag: "str | Path",
    out: "str | Path",
    model: str = DEFAULT_METHOD,
    device: str = "auto",
    rate: float = 1.0,
    timeout: float = 300.0,
    log: "Callable[[str], None] | None" = None,
) -> DemoReport:
    """Play ``bag`` into a live node; write out/outputs (a bag) and out/preview_*.png; ``log``
    hears each step. Returns the summary, with the problem when a frame gave no depth. The bag
    is opened once."""
    log = log or (lambda _line: None)
    bag, out = Path(bag), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open_bag(bag) as reader:
        demo = read_demo_bag(reader, bag)
        log(f"demo: starting the node ({model} on {device}); its log: {out / 'node.log'}")
        with open(out / "node.log", "w") as node_log:
            proc = None
            try:
                # a Ctrl-C or SIGTERM while the node starts is held until ``proc`` holds it,
                # so that the finally below stops it (else the node would outlive the demo)
                with signals_held():
                    proc = subprocess.Popen(
                        node_command(demo, model, device, *ENABLE_ALL),
                        stdout=node_log,
                        stderr=subprocess.STDOUT,
                        env=dict(os.environ),
                    )
                recording = play_into(proc, reader, demo, out, rate, timeout, log)
            finally:
                if proc is not None:
                    stop_node(proc)
    _write_outputs(out / "outputs", recording.received)
    _write_previews(out, recording.received, demo.images)
    return summarise(demo, recording, out, f"model {model}, device {device}, rate {rate}")


def play_into(
    proc: subprocess.Popen,
    reader: Any,
    demo: DemoBag,
    out: Path,
    rate: float,
    timeout: float,
    log: Callable[[str], None],
) -> Recording:
    """Listen to every output of the node ``proc`` and play the bag open in ``reader`` into it
    once both ends are matched; wait for the last outputs."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("sparse_depth_demo", context=context)
    recording = Recording()
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    kit = RclpyKit()
    for topic, msgtype in RECORDED.items():
        node.create_subscription(kit.cls(msgtype), topic, partial(recording.keep, topic), reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", recording.diagnostics.append, 10)
    player = BagPlayer(node, demo.path, reader=reader)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        wait_until_up(proc, player, node, demo, out)

        def on_message(topic: str, t_ns: int) -> None:
            if topic == demo.inputs["camera/image"]:
                recording.sent[t_ns] = time.monotonic()

        log(f"demo: node up; playing {len(demo.images)} frames at rate {rate}")
        player.play(rate=rate, on_message=on_message)
        log("demo: played; waiting for the last outputs")
        wait_for_outputs(recording, len(demo.images), timeout)
        time.sleep(1.5)  # one more diagnostics period
    finally:
        executor.shutdown()
        player.close()
        node.destroy_node()
        if context.ok():  # a signal may have shut it down already
            rclpy.shutdown(context=context)
        spinner.join(timeout=5)
    return recording


def wait_until_up(
    proc: subprocess.Popen, player: BagPlayer, node: Any, demo: DemoBag, out: Path
) -> None:
    """Until the node subscribes to the bag's inputs and publishes every output (60 s at most;
    ValueError with its log's last line when it does not come up), then 2 s of discovery."""
    deadline = time.monotonic() + 60.0
    while not (
        player.subscribers_ready(list(demo.inputs.values()))
        and all(node.count_publishers(t) > 0 for t in RECORDED)
    ):
        if proc.poll() is not None or time.monotonic() > deadline:
            last = (out / "node.log").read_text().strip().splitlines()[-1:] or ["(empty)"]
            raise ValueError(
                f"the node did not come up (its log {out / 'node.log'} ends: {last[0]})"
            )
        time.sleep(0.1)
    time.sleep(2.0)  # let discovery settle both ways


def wait_for_outputs(
    recording: Recording, frames: int, timeout: float, quiet: float = 10.0
) -> None:
    """Until every output of every frame has arrived (the previews need the sparse and
    confidence images too), or the node has been quiet for ``quiet`` s (it dropped some), or
    ``timeout`` s have passed."""
    end = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < end:
        count = recording.complete_frames()
        if count >= frames:
            return
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > quiet:
            return
        time.sleep(0.1)


def summarise(demo: DemoBag, recording: Recording, out: Path, settings: str) -> DemoReport:
    """The summary lines (frames, latencies, the node's stages and counters, what was written)
    and the problem when a frame gave no depth."""
    received, n_frames = recording.received, len(demo.images)
    latency = [
        1e3 * (t - recording.sent[k]) for k, t in recording.arrival.items() if k in recording.sent
    ]
    lines = [
        f"bag {demo.path}: {n_frames} frames in, {len(received['depth/image'])} depth images and "
        f"{len(received['depth/points'])} clouds out ({settings})"
    ]
    if latency:
        lines.append(
            f"latency image published -> depth received: median {np.median(latency):.0f} ms, "
            f"per frame {[round(x) for x in latency]} ms, "
            f"max {np.max(latency):.0f} ms over {len(latency)} frames"
        )
    if recording.diagnostics:
        values = {kv.key: kv.value for kv in recording.diagnostics[-1].status[0].values}
        lines += [f"node: {values.get('model')}", f"{'stage':<22} latency in the node (ms)"]
        lines += [
            f"{key[len('latency_ms.') :]:<22} {value}"
            for key, value in values.items()
            if key.startswith("latency_ms.")
        ]
        lines.append(
            "counters: "
            + ", ".join(f"{k[6:]}={v}" for k, v in values.items() if k.startswith("count."))
        )
    lines.append(
        f"wrote {out / 'outputs'} (rosbag2, mcap) and {len(list(out.glob('preview_*.png')))} "
        f"previews in {out}"
    )
    problem = None
    if len(received["depth/image"]) < n_frames:
        problem = (
            f"{n_frames - len(received['depth/image'])} of {n_frames} frames gave no depth: "
            "the node drops what it cannot keep up with (lower --rate or use a faster --model) "
            f"or could not process (see {out / 'node.log'})"
        )
    return DemoReport(lines, problem)


def _write_outputs(path: Path, received: dict[str, list]) -> None:
    if path.exists():
        shutil.rmtree(path)
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, msgs in received.items():
            conn = writer.add_connection(
                "/" + topic, RECORDED[topic], typestore=TYPESTORE, offered_qos_profiles=[qos()]
            )
            for m in msgs:
                writer.write(conn, stamp_ns(m.header), serialize_message(m))


def _write_previews(out: Path, received: dict[str, list], images: dict[int, np.ndarray]) -> None:
    by_stamp = {
        name: {stamp_ns(m.header): m for m in received[name]}
        for name in ("depth/image", "depth/sparse", "depth/confidence")
    }
    for i, (stamp, depth_msg) in enumerate(sorted(by_stamp["depth/image"].items())):
        if stamp not in images or stamp not in by_stamp["depth/sparse"]:
            continue
        dense = depth_image_to_metres(depth_msg)
        sparse = depth_image_to_metres(by_stamp["depth/sparse"][stamp])
        conf_msg = by_stamp["depth/confidence"].get(stamp)
        conf = (  # a 32FC1 image in [0, 1], NaN where none: read like a depth image
            depth_image_to_metres(conf_msg)
            if conf_msg is not None
            else (dense > 0).astype(np.float32)
        )
        caption = f"frame {i} stamp {stamp / 1e9:.3f} s: received over DDS from sparse_depth_node"
        preview(images[stamp], sparse, dense, conf, caption).save(out / f"preview_{i:04d}.png")
