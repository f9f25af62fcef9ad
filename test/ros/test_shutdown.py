"""Shutdown is always clean: SIGINT (Ctrl-C: the whole process group), SIGTERM (launch,
systemd) or SIGHUP (the terminal closed, an ssh session ended) at a random moment -- while
Python starts, while the model loads, idle, or mid-frame with frames flowing in and a subscriber
listening -- ends the installed executable with exit status 0, no traceback and no ERROR line."""

import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import rclpy
from conftest import process_group
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import extrinsic_parameters, frame_messages, input_publishers, isolate_dds
from sensor_msgs.msg import Image

isolate_dds()
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def test_a_signal_at_any_moment_ends_the_node_cleanly(kitti_frame0):
    exe = Path(sys.executable).with_name("sparse_depth_node")
    params = {
        "model": "nearest",
        "device": "cpu",
        "use_tf": False,
        **extrinsic_parameters(kitti_frame0),
    }
    args = [str(exe), "--ros-args"]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}".replace(" ", "")]
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("shutdown_test_load", context=ctx)
    pubs = input_publishers(node, RELIABLE)
    received = []
    node.create_subscription(Image, "depth/image", received.append, RELIABLE)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    stop = threading.Event()
    frames = [frame_messages(kitti_frame0, 10**9 + k * 10**8) for k in range(10)]

    def load():  # 10 Hz of frames, spinning the subscriber in between
        k = 0
        while not stop.is_set():
            for pub, msg in zip(pubs, frames[k % len(frames)]):
                pub.publish(msg)
            k += 1
            end = time.monotonic() + 0.1
            while time.monotonic() < end:
                ex.spin_once(timeout_sec=0.02)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    rng = random.Random(0)
    failures = []
    try:
        for run in range(20):
            sig = rng.choice([signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
            delay = rng.uniform(0.0, 5.0)  # start-up takes ~2-3 s here: both phases are hit
            proc = process_group(args, env=dict(os.environ))
            time.sleep(delay)
            os.killpg(proc.pid, sig)
            out, _ = proc.communicate(timeout=60)
            if proc.returncode != 0 or "Traceback" in out or "ERROR" in out:
                failures.append(
                    f"run {run}: {sig.name} after {delay:.1f} s, "
                    f"exit {proc.returncode}:\n{out[-1500:]}"
                )
    finally:
        stop.set()
        loader.join(timeout=5)
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    assert not failures, "\n".join(failures)
    assert received, "no frame was processed: the signals never landed mid-frame"
