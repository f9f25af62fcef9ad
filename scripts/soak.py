"""Overload / soak benchmark: the node in its own process, the bundled bag played in a loop at a
rate above what the node can process, for MINUTES; samples the node's RSS and its latency
(from /diagnostics) every PERIOD seconds and prints a table and the RSS trend.

Usage: python scripts/soak.py [--minutes 20] [--rate 1.5] [--model classic] [--period 10]
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
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from sparse_depth_node.bag import resolve_inputs, open_bag
from sparse_depth_node.demo import node_command
from sparse_depth_node.player import BagPlayer

REPO = Path(__file__).resolve().parents[1]
BAG = REPO / "sample" / "kitti_2011_09_26_sample"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=1.5,
                   help="bag rate: the sample is 10 Hz at rate 1; 1.5 is ~5x what classic sustains on 2 CPU cores")
    p.add_argument("--model", default="classic")
    p.add_argument("--period", type=float, default=10.0)
    args = p.parse_args()
    os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    reader = open_bag(BAG)
    inputs = resolve_inputs(reader.connections, {})
    reader.close()
    node_proc = subprocess.Popen(node_command(BAG, inputs, args.model, "cpu"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("soak", context=ctx)
    outputs, diags = [], []
    node.create_subscription(Image, "depth/image", lambda m: outputs.append(time.monotonic()),
                             QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    player = BagPlayer(node, BAG)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    stop = threading.Event()
    sent = [0]
    player_thread = threading.Thread(target=player.play, kwargs={
        "rate": args.rate, "loop": True, "should_stop": stop.is_set,
        "on_message": lambda topic, _t: sent.__setitem__(0, sent[0] + (topic == inputs["camera/image"]))})
    time.sleep(3.0)
    player_thread.start()
    rows = []
    end = time.monotonic() + args.minutes * 60
    start = time.monotonic()
    print(f"{'t (s)':>6} {'RSS MB':>7} {'frames in':>9} {'out':>5} {'dropped_busy':>12} {'node_total ms (median/p90)':>28}")
    try:
        while time.monotonic() < end:
            time.sleep(args.period)
            values = {kv.key: kv.value for kv in diags[-1].status[0].values} if diags else {}
            row = (time.monotonic() - start, rss_mb(node_proc.pid), sent[0], len(outputs),
                   values.get("count.dropped_busy", "0"), values.get("latency_ms.node_total", "-"))
            rows.append(row)
            print(f"{row[0]:6.0f} {row[1]:7.1f} {row[2]:9d} {row[3]:5d} {row[4]:>12} {row[5]:>28}", flush=True)
    finally:
        stop.set()
        player_thread.join(timeout=10)
        node_proc.terminate()
        node_proc.wait(timeout=20)
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    if len(rows) >= 4:
        quarters = np.array_split(np.array([r[1] for r in rows]), 4)
        print("RSS max per quarter of the run (MB): " + ", ".join(f"{q.max():.0f}" for q in quarters)
              + f"; {rows[-1][3]} of {rows[-1][2]} frames processed at rate {args.rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
