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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer

from ..core.completion import DEFAULT_METHOD
from ..data.depth_io import preview
from ..ros.extrinsics import extrinsic_parameters
from ..ros.kits import RclpyKit
from ..ros.msgs import any_image_to_rgb, depth_image_to_metres, stamp_ns
from ..ros.outputs import OUTPUTS
from .extrinsic import bag_extrinsic, number_list
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


def node_command(
    bag: Path, inputs: dict[str, str], model: str, device: str, *extra: str
) -> list[str]:
    """The command line that runs the node for ``bag`` as a user's rig file would: its topics
    remapped, its /tf_static extrinsic and its image size (``warmup_size``) as parameters, and
    ``extra`` ``-p`` arguments; everything else (QoS, DDS) as shipped."""
    cmd = [
        sys.executable,
        "-m",
        "sparse_depth_node.ros.main",
        "--ros-args",
        "-p",
        f"model:={model}",
        "-p",
        f"device:={device}",
        "-p",
        "use_tf:=false",
    ]
    for name, value in extrinsic_parameters(bag_extrinsic(bag, inputs)[0]).items():
        cmd += ["-p", f"{name}:={number_list(value).replace(' ', '')}"]
    size = bag_image_size(bag, inputs)
    if size is not None:
        cmd += ["-p", f"warmup_size:=[{size[0]},{size[1]}]"]
    for e in extra:
        cmd += ["-p", e]
    for name, topic in inputs.items():
        cmd += ["-r", f"{name}:={topic}"]
    return cmd


def stop_node(proc: subprocess.Popen, timeout: float = 20.0) -> bool:
    """SIGTERM the node's process and wait; SIGKILL it after ``timeout`` s. Returns whether it
    stopped by itself."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def bag_image_size(bag: Path, inputs: dict[str, str]) -> "tuple[int, int] | None":
    """(width, height) of the bag's first camera_info, or None when it has none."""
    reader = open_bag(bag)
    try:
        conns = [c for c in reader.connections if c.topic == inputs["camera/camera_info"]]
        for conn, _, raw in read_messages(reader, bag, conns):
            info = deserialize(reader, raw, conn.msgtype, bag)
            return int(info.width), int(info.height)
    finally:
        reader.close()
    return None


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
    hears each step. Returns the summary, with the problem when a frame gave no depth."""
    log = log or (lambda _line: None)
    bag, out = Path(bag), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reader = open_bag(bag)
    inputs = resolve_inputs(reader.connections, {})
    n_frames = sum(c.msgcount for c in reader.connections if c.topic == inputs["camera/image"])
    images = {}
    image_conns = [c for c in reader.connections if c.topic == inputs["camera/image"]]
    for conn, _, raw in read_messages(reader, bag, image_conns):
        msg = deserialize(reader, raw, conn.msgtype, bag)
        images[stamp_ns(msg.header)] = any_image_to_rgb(msg)
    reader.close()
    node_args = node_command(bag, inputs, model, device, *ENABLE_ALL)
    log(f"demo: starting the node ({model} on {device}); its log: {out / 'node.log'}")
    node_log = open(out / "node.log", "w")
    proc = subprocess.Popen(
        node_args, stdout=node_log, stderr=subprocess.STDOUT, env=dict(os.environ)
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("sparse_depth_demo", context=context)
    received: dict[str, list] = {k: [] for k in RECORDED}
    arrival: dict[int, float] = {}
    sent: dict[int, float] = {}
    diagnostics: list = []
    lock = threading.Lock()

    def keep(topic: str, msg) -> None:
        with lock:
            received[topic].append(msg)
            if topic == "depth/image":
                arrival[stamp_ns(msg.header)] = time.monotonic()

    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    kit = RclpyKit()
    for topic, msgtype in RECORDED.items():
        node.create_subscription(kit.cls(msgtype), topic, lambda m, t=topic: keep(t, m), reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    player = BagPlayer(node, bag)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 60.0
        while not (
            player.subscribers_ready(list(inputs.values()))
            and all(node.count_publishers(t) > 0 for t in RECORDED)
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                last = (out / "node.log").read_text().strip().splitlines()[-1:] or ["(empty)"]
                raise ValueError(
                    f"the node did not come up (its log {out / 'node.log'} ends: {last[0]})"
                )
            time.sleep(0.1)
        time.sleep(2.0)  # let discovery settle both ways

        def on_message(topic: str, t_ns: int) -> None:
            if topic == inputs["camera/image"]:
                sent[t_ns] = time.monotonic()

        log(f"demo: node up; playing {n_frames} frames at rate {rate}")
        player.play(rate=rate, on_message=on_message)
        log("demo: played; waiting for the last outputs")
        # wait for every output of every frame (the previews need the sparse and confidence images
        # too), or until the node has been quiet for `quiet` s (it dropped some)
        end, quiet = time.monotonic() + timeout, 10.0
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < end:
            with lock:
                count = min(len(v) for v in received.values())
            if count >= n_frames:
                break
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > quiet:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # one more diagnostics period
    finally:
        stop_node(proc)
        executor.shutdown()
        player.close()
        node.destroy_node()
        if context.ok():  # a signal may have shut it down already
            rclpy.shutdown(context=context)
        spinner.join(timeout=5)
    _write_outputs(out / "outputs", received)
    _write_previews(out, received, images)
    latency = [1e3 * (arrival[k] - sent[k]) for k in arrival if k in sent]
    lines = [
        f"bag {bag}: {n_frames} frames in, {len(received['depth/image'])} depth images and "
        f"{len(received['depth/points'])} clouds out (model {model}, device {device}, rate {rate})"
    ]
    if latency:
        lines.append(
            f"latency image published -> depth received: median {np.median(latency):.0f} ms, "
            f"per frame {[round(x) for x in latency]} ms, "
            f"max {np.max(latency):.0f} ms over {len(latency)} frames"
        )
    if diagnostics:
        values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
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
