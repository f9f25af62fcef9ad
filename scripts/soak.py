"""Node-level load benchmark: the node in its own process, the bundled bag (10 Hz) played in a
loop into it, the node's RSS and latency (from /diagnostics) sampled every PERIOD seconds.

Three modes:
  soak:  --minutes 20 --rate 2.2    one long run; a row per period and the RSS trend
  rates: --hz 10,20,50 --seconds 30 one run per input rate; a row per rate: frames in and out,
         output rate, frames dropped, latency from the last input message's arrival to the
         publication of the outputs (median / p90), peak RSS
  delivery: --delivery [--hz 10]  one run per driver reliability (reliable, best effort: the
         bag published by this process with Fast DDS's defaults, as a driver would) and
         transport setting (the node as shipped, with its own Fast DDS profile; the node on
         Fast DDS's defaults, as before that profile; FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA on
         both sides): the share of clouds and images that reach the node, the samples it
         counted lost, its depth images, and those this process receives back on a reliable
         and on a best-effort (RViz-like) subscription

Usage: python scripts/soak.py [--model sparseconv] [--param inference_scale:=0.5 ...] MODE
Machine-specific figures: run it on the machine you quote.
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from sparse_depth_node.bag.demo import node_command, read_demo_bag, stop_node
from sparse_depth_node.bag.io import open_bag
from sparse_depth_node.bag.player import BagPlayer
from sparse_depth_node.ros.dds import USER_SETTINGS

REPO = Path(__file__).resolve().parents[1]
BAG = REPO / "sample" / "kitti_2011_09_26_sample"
BAG_HZ = 10.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


LARGE_DATA = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
TRANSPORTS = {  # delivery mode: (the node's DDS environment, this process's)
    "node as shipped": ({}, {}),
    "node on defaults": ({"FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}, {}),
    "both LARGE_DATA": (LARGE_DATA, LARGE_DATA),
}


def run_load(
    rate: float,
    seconds: float,
    model: str,
    params: list[str],
    period: float,
    on_sample=None,
    node_env: "dict | None" = None,
    driver: "ReliabilityPolicy | None" = None,
    final: bool = False,
) -> list[tuple]:
    """Play the bag at ``rate`` (x its 10 Hz) into a fresh node for ``seconds``; every ``period`` s
    a sample (t s, RSS MB, frames in, frames out, dropped_busy, arrival_to_publish latency
    text, {topic: messages sent}, the node's counters, depth images received best effort).
    ``node_env``: the node's environment instead of this process's; ``driver``: the
    reliability the bag is published with (default: as recorded); ``final``: one more sample
    2.5 s after the player stops."""
    with open_bag(BAG) as reader:
        demo = read_demo_bag(reader, BAG)
    inputs = demo.inputs
    env = None
    if node_env is not None:
        env = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS} | node_env
    node_proc = subprocess.Popen(
        node_command(demo, model, "cpu", *params),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("soak", context=ctx)
    outputs, best_effort, diags = [], [], []
    node.create_subscription(
        Image,
        "depth/image",
        lambda m: outputs.append(time.monotonic()),
        QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE),
    )
    node.create_subscription(
        Image, "depth/image", lambda m: best_effort.append(1), qos_profile_sensor_data
    )
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    player = BagPlayer(node, BAG, reliability=driver)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    stop = threading.Event()
    sent: dict[str, int] = {}
    player_thread = threading.Thread(
        target=player.play,
        kwargs={
            "rate": rate,
            "loop": True,
            "should_stop": stop.is_set,
            "on_message": lambda topic, _t: sent.__setitem__(topic, sent.get(topic, 0) + 1),
        },
    )
    time.sleep(5.0)  # the node loads its model
    player_thread.start()
    rows = []
    start = time.monotonic()
    try:

        def sample() -> tuple:
            values = {kv.key: kv.value for kv in diags[-1].status[0].values} if diags else {}
            return (
                time.monotonic() - start,
                rss_mb(node_proc.pid),
                sent.get(inputs["camera/image"], 0),
                len(outputs),
                int(values.get("count.dropped_busy", "0")),
                values.get("latency_ms.arrival_to_publish", "-"),
                {inputs[k]: sent.get(inputs[k], 0) for k in ("lidar/points", "camera/image")},
                {k[6:]: int(v) for k, v in values.items() if k.startswith("count.")},
                len(best_effort),
            )

        while time.monotonic() < start + seconds:
            time.sleep(period)
            rows.append(sample())
            if on_sample:
                on_sample(rows[-1])
        if final:  # the player stopped; the node's next diagnostics (1 Hz) count everything sent
            stop.set()
            player_thread.join(timeout=10)
            time.sleep(2.5)
            rows.append(sample())
    finally:
        stop.set()
        player_thread.join(timeout=10)
        if not stop_node(node_proc):  # seen once with LARGE_DATA on both sides
            print("node did not stop within 20 s of SIGTERM; killed", file=sys.stderr)
        ex.shutdown()
        spinner.join(timeout=10)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return rows


def delivery(hz: float, seconds: float, model: str, params: list[str]) -> int:
    """The delivery table: per driver reliability and transport setting (the node's environment
    and this process's, which holds the driver and the depth subscribers)."""
    print(
        f"delivery at {hz:.0f} Hz for {seconds:.0f} s per row, model {model}; this process "
        "publishes the bag and subscribes to depth/image (reliable and best effort)"
    )
    print(
        f"{'driver':<12} {'transports':<17} {'clouds in':>14} {'images in':>14} {'lost':>5} "
        f"{'depth out':>9} {'back rel.':>9} {'back b.e.':>9}"
    )
    drivers = {
        "reliable": ReliabilityPolicy.RELIABLE,
        "best effort": ReliabilityPolicy.BEST_EFFORT,
    }
    for driver, reliability in drivers.items():
        for transports, (node_env, own_env) in TRANSPORTS.items():
            for name in USER_SETTINGS:
                os.environ.pop(name, None)
            os.environ.update(own_env)  # read when this process's next rclpy context starts
            rows = run_load(
                hz / BAG_HZ,
                seconds,
                model,
                params,
                seconds,
                node_env=node_env,
                driver=reliability,
                final=True,
            )
            _, _, _, n_out, _, _, sent, counts, n_best_effort = rows[-1]
            cloud_topic, image_topic = sent
            shares = [
                f"{counts.get(counter, 0):5d}/{sent[topic]:<5d}"
                f"{100 * counts.get(counter, 0) / max(sent[topic], 1):3.0f}%"
                for counter, topic in (("in_cloud", cloud_topic), ("in_image", image_topic))
            ]
            lost = sum(n for k, n in counts.items() if k.startswith("lost."))
            print(
                f"{driver:<12} {transports:<17} {shares[0]} {shares[1]} {lost:5d} "
                f"{counts.get('frames_out', 0):9d} {n_out:9d} {n_best_effort:9d}",
                flush=True,
            )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="sparseconv")
    p.add_argument(
        "--param", action="append", default=[], help="extra node parameter, NAME:=VALUE"
    )
    p.add_argument("--period", type=float, default=10.0)
    p.add_argument("--minutes", type=float, default=None, help="soak mode: run this long")
    p.add_argument("--rate", type=float, default=2.2, help="soak mode: bag rate (x 10 Hz)")
    p.add_argument("--hz", default=None, help="rates mode: input rates, e.g. 10,20,50")
    p.add_argument("--seconds", type=float, default=30.0, help="rates mode: seconds per rate")
    p.add_argument("--delivery", action="store_true", help="delivery mode (see above)")
    args = p.parse_args()
    if args.delivery:
        return delivery(float(args.hz or 10), args.seconds, args.model, args.param)
    label = " ".join([f"model {args.model}", *args.param])
    if args.hz:
        print(f"node-level throughput, {label}, {args.seconds:.0f} s per rate")
        print(
            f"{'input Hz':>8} {'frames in':>9} {'out':>5} {'out Hz':>7} {'dropped':>7} "
            f"{'arrival->publish ms (last 100 frames)':>38} {'peak RSS MB':>11}"
        )
        for hz in (float(h) for h in args.hz.split(",")):
            rows = run_load(
                hz / BAG_HZ, args.seconds, args.model, args.param, min(args.period, args.seconds)
            )
            t, _, n_in, n_out, dropped, latency, _, _, _ = rows[-1]
            print(
                f"{hz:8.0f} {n_in:9d} {n_out:5d} {n_out / t:7.1f} {dropped:7d} {latency:>38} "
                f"{max(r[1] for r in rows):11.0f}",
                flush=True,
            )
        return 0
    minutes = args.minutes or 20.0
    print(
        f"soak, {label}, bag rate {args.rate} ({args.rate * BAG_HZ:.0f} Hz in) for "
        f"{minutes:.0f} min"
    )
    print(
        f"{'t (s)':>6} {'RSS MB':>7} {'frames in':>9} {'out':>5} {'dropped_busy':>12} "
        f"{'arrival->publish ms':>28}"
    )
    rows = run_load(
        args.rate,
        minutes * 60,
        args.model,
        args.param,
        args.period,
        on_sample=lambda row: print(
            f"{row[0]:6.0f} {row[1]:7.1f} {row[2]:9d} {row[3]:5d} {row[4]:12d} {row[5]:>28}",
            flush=True,
        ),
    )
    if len(rows) >= 4:
        quarters = np.array_split(np.array([r[1] for r in rows]), 4)
        print(
            "RSS max per quarter of the run (MB): "
            + ", ".join(f"{q.max():.0f}" for q in quarters)
            + f"; {rows[-1][3]} of {rows[-1][2]} frames processed at rate {args.rate}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
