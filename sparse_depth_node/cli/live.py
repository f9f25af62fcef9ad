"""Commands on live ROS 2 topics: ``play`` (a bag with its timing and QoS), ``demo`` (the node
over DDS with a bag played into it) and ``node`` (the ROS 2 node itself)."""

from __future__ import annotations

import argparse
import sys
import time

from .common import quiet_option, setting_option


def register(command) -> None:
    p = command("play", "publish a bag on live ROS 2 topics with its timing and QoS", play)
    p.add_argument("bag", help="rosbag2 folder")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed, x the recorded rate")
    p.add_argument("--loop", action="store_true", help="start again at the end")
    p.add_argument("--clock", action="store_true", help="publish /clock from the bag's times")
    p.add_argument("--topics", nargs="*", default=[], help="only these topics (default: all)")
    p.add_argument("--remap", nargs="*", default=[], help="FROM:=TO topic remaps")
    p.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to wait, before the first message, for the node --wait-for names to "
        "subscribe to a played cloud, image and camera_info (0: no wait), so that no frame is "
        "lost while it warms up and discovers us",
    )
    p.add_argument(
        "--wait-for",
        default="sparse_depth_node",
        help="the node --wait waits for (empty: any subscriber of any played topic)",
    )
    quiet_option(p)

    p = command("demo", "the node live over DDS, a bag played into it, outputs recorded", demo)
    p.add_argument("--bag", required=True, help="rosbag2 folder with a cloud, image, camera_info")
    p.add_argument("--out", required=True, help="folder for outputs, previews and the node's log")
    setting_option(p, "model", help="the node's model: " + _description("model"))
    setting_option(p, "device", help="the node's device: " + _description("device"))
    p.add_argument("--rate", type=float, default=1.0, help="playback speed, x the recorded rate")
    quiet_option(p)

    p = command(
        "node",
        "run the ROS 2 node (arguments after 'node' go to ROS: --ros-args -p "
        "NAME:=VALUE ...; 'node --help' lists its topics and parameters)",
        node,
    )
    p.add_argument("ros_args", nargs=argparse.REMAINDER, help="ROS arguments")


def _description(name: str) -> str:
    from ..core.settings import BY_NAME

    return BY_NAME[name].description


def play(args: argparse.Namespace) -> int:
    import rclpy

    from ..bag.io import parse_remaps
    from ..bag.player import BagPlayer

    rclpy.init()
    ros_node = rclpy.create_node("sparse_depth_player")
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    try:
        player = BagPlayer(
            ros_node, args.bag, args.topics or None, parse_remaps(args.remap), args.clock
        )
        say(player.summary(args.rate, args.loop))
        if any("tf2_msgs" in why for why in player.skipped.values()):
            print(_extrinsic_instead_of_tf(args.bag), flush=True)
        if args.wait > 0:
            who = args.wait_for or "a subscriber"
            say(f"play: waiting for {who} (up to {args.wait:g} s; --wait 0 skips)")
            if not player.wait_for_subscribers(args.wait, args.wait_for or None):
                say(f"play: no {who} yet; playing anyway")
        loops = []

        def on_loop(count: int) -> None:
            loops.append(count)
            say(f"play: loop {len(loops)} done, {count} messages so far")

        n = player.play(rate=args.rate, loop=args.loop, on_loop=on_loop)
        time.sleep(0.5)  # let the last (and transient-local) messages go out
        print(f"published {n} messages from {args.bag}")
        player.close()
    except Exception:
        if rclpy.ok():
            raise
        # a signal shut the context down mid-publish; its KeyboardInterrupt follows (cli main)
        raise KeyboardInterrupt from None
    finally:
        ros_node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def _extrinsic_instead_of_tf(bag: str) -> str:
    """This ROS install cannot publish the bag's /tf_static: the line that says so, with the
    node's parameters that replace it (a node without TF must not guess its extrinsic)."""
    from ..bag.extrinsic import bag_extrinsic, parameter_block

    try:
        block = parameter_block(*bag_extrinsic(bag))
    except ValueError as exc:
        return f"play: /tf_static cannot be published here, and {exc}"
    return (
        "play: this ROS install cannot publish /tf_static (no tf2_msgs); give the node these "
        "parameters instead:\n" + block
    )


def demo(args: argparse.Namespace) -> int:
    from ..bag.demo import run_demo

    report = run_demo(
        args.bag,
        args.out,
        args.model,
        args.device,
        args.rate,
        log=None if args.quiet else lambda line: print(line, file=sys.stderr),
    )
    print("\n".join(report.lines))
    if report.problem:
        print(f"demo: {report.problem}", file=sys.stderr)
        return 1
    return 0


def node(args: argparse.Namespace) -> int:
    from ..ros.main import main as node_main

    node_main(["sparse_depth_node", *args.ros_args])
    return 0
