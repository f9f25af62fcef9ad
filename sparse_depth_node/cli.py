"""The ``sparse-depth`` command: ``complete`` (one frame of a data set), ``convert-kitti``,
``process`` and ``play`` (rosbag2), ``demo`` (node + bag over DDS), ``node`` (the ROS 2 node)
and ``train`` (self-supervised training)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _add_speed_options(p: argparse.ArgumentParser) -> None:
    from .core.settings import DEFAULTS, PRECISIONS

    p.add_argument(
        "--inference-scale",
        type=float,
        default=DEFAULTS["inference_scale"],
        help="complete at this fraction of the resolution: 1, 0.5, 0.25, ... "
        "(default %(default)s)",
    )
    p.add_argument(
        "--precision",
        default=DEFAULTS["precision"],
        choices=PRECISIONS,
        help="network precision (fp16: CUDA only; default %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULTS["threads"],
        help="CPU threads for torch and OpenCV (default %(default)s: all cores but one)",
    )


def _add_complete(sub: argparse._SubParsersAction) -> None:
    from .core.methods import DEFAULT_METHOD, METHODS
    from .core.settings import DEFAULTS
    from .data.datasets import FORMATS

    p = sub.add_parser("complete", help="complete one frame of a data set and write PNGs")
    p.add_argument("--data", required=True, help="data set folder")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--frame", default="0", help="frame id or index (nuScenes: camera name)")
    p.add_argument(
        "--camera", default=None, help="camera: KITTI raw index (2) or DDAD name (CAMERA_01)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    p.add_argument(
        "--weights", default=None, help="checkpoint path (default: the shipped weights)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    _add_speed_options(p)
    p.add_argument(
        "--min-depth",
        type=float,
        default=DEFAULTS["min_depth"],
        help="nearest depth kept, m (default %(default)s)",
    )
    p.add_argument(
        "--max-depth",
        type=float,
        default=DEFAULTS["max_depth"],
        help="farthest depth kept, m (default %(default)s)",
    )
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="run a network without trained weights (random initialisation)",
    )
    p.set_defaults(func=_complete)


def _complete(args: argparse.Namespace) -> int:
    from .core.completion import DepthCompleter
    from .core.pipeline import process_frame
    from .data.datasets import open_dataset
    from .data.depth_io import preview, write_kitti_depth

    frame = open_dataset(args.data, args.format, args.camera).read(args.frame)
    completer = DepthCompleter(
        args.method,
        args.device,
        args.weights,
        allow_untrained=args.allow_untrained,
        inference_scale=args.inference_scale,
        precision=args.precision,
        max_depth=args.max_depth,
    )
    params = {"min_depth": args.min_depth, "max_depth": args.max_depth}
    process_frame(
        frame.points, frame.camera, frame.t_cam_from_lidar, completer, frame.rgb, params
    )  # warm-up
    result = process_frame(
        frame.points, frame.camera, frame.t_cam_from_lidar, completer, frame.rgb, params
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_kitti_depth(out / "sparse_depth.png", result.sparse_depth)
    write_kitti_depth(out / "dense_depth.png", result.dense_depth)
    from PIL import Image

    Image.fromarray((np.clip(result.confidence, 0, 1) * 255).astype(np.uint8)).save(
        out / "confidence.png"
    )
    caption = (
        f"{args.format} {frame.name}: {completer.description}; "
        f"{int(result.mask.sum())} LiDAR pixels ({100 * result.mask.mean():.1f} %), "
        f"dense coverage {100 * (result.dense_depth > 0).mean():.1f} %"
    )
    preview(frame.rgb, result.sparse_depth, result.dense_depth, result.confidence, caption).save(
        out / "preview.png"
    )
    print(caption)
    print(f"{'stage':<12} {'ms':>8}")
    for stage, ms in result.timings_ms.items():
        print(f"{stage:<12} {ms:8.1f}")
    print(f"wrote {out}/sparse_depth.png dense_depth.png confidence.png preview.png")
    return 0


def _convert_kitti(args: argparse.Namespace) -> int:
    from .bag.convert import convert_kitti

    frames = None
    if args.frames:
        a, _, b = args.frames.partition(":")
        frames = (int(a), int(b))
    n = convert_kitti(args.data, args.out, frames, args.storage, compress=args.compress)
    print(f"wrote {n} frames to {args.out} ({args.storage})")
    return 0


def _process(args: argparse.Namespace) -> int:
    from .bag.io import load_parameters, parse_remaps
    from .bag.process import process_bag
    from .core.runtime import configure_process

    params = load_parameters(args.params)
    if args.device is not None:
        params["device"] = args.device
    configure_process(int(params.get("threads", 0)))
    done = []
    try:
        report = process_bag(
            args.in_bag,
            args.out_bag,
            params,
            parse_remaps(args.remap),
            args.storage,
            progress=done.append,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted after {len(done)} frames: {args.out_bag} holds them (a closed, "
            "readable bag)"
        )
        return 130
    print(report.table())
    print(f"wrote {args.out_bag}")
    return 0 if report.frames_out > 0 else 1


def _play(args: argparse.Namespace) -> int:
    import rclpy

    from .bag.io import parse_remaps
    from .bag.player import BagPlayer

    rclpy.init()
    node = rclpy.create_node("sparse_depth_player")
    try:
        player = BagPlayer(
            node, args.bag, args.topics or None, parse_remaps(args.remap), args.clock
        )
        n = player.play(rate=args.rate, loop=args.loop)
        time.sleep(0.5)  # let the last (and transient-local) messages go out
        print(f"published {n} messages from {args.bag}")
        player.close()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.shutdown()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .bag.demo import run_demo

    return run_demo(args.bag, args.out, args.model, args.device, args.rate)


def _evaluate(args: argparse.Namespace) -> int:
    from .core.completion import DepthCompleter
    from .data.datasets import open_dataset
    from .lab.evaluate import (
        CONFIDENCE_THRESHOLDS,
        density_sweep,
        evaluate,
        format_confidence,
        format_sweep,
        format_table,
    )
    from .lab.report import write_json

    reader = open_dataset(args.data, args.format, args.camera)
    ids = reader.frame_ids()
    if args.frames:
        if ":" in args.frames:
            a, _, b = args.frames.partition(":")
            ids = ids[int(a or 0) : int(b) if b else None]
        else:
            ids = args.frames.split(",")
    frames = [reader.read(i) for i in ids]
    methods = {}
    for name in args.methods.split(","):
        methods[Path(name).stem if name.endswith(".pt") else name] = DepthCompleter(
            name, args.device, inference_scale=args.inference_scale, precision=args.precision
        )
    if args.densities:
        sweep = density_sweep(
            frames, methods, [float(d) for d in args.densities.split(",")], args.seed
        )
        print(format_sweep(sweep))
        result = {
            "protocol": "density sweep (20 % fixed target)",
            "frames": len(frames),
            "seed": args.seed,
            "densities": sweep,
        }
    else:
        result = evaluate(
            frames,
            methods,
            args.protocol,
            args.seed,
            CONFIDENCE_THRESHOLDS if args.confidence else None,
        )
        print(format_table(result))
        for name, rows in result.get("confidence", {}).items():
            print(format_confidence(name, rows))
    if args.json:
        write_json(args.json, result)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .lab.bench import format_report, run
    from .lab.report import write_json

    sections = tuple(s for s in args.sections.split(",") if s)
    report = run(
        args.data,
        args.format,
        args.model,
        args.device,
        args.iterations,
        args.warmup,
        args.inference_scale,
        args.precision,
        sections,
        args.repeats,
    )
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
    return 0


def _node(args: argparse.Namespace) -> int:
    from .ros.node import main as node_main

    node_main(["sparse_depth_node", *args.ros_args])
    return 0


def _train(args: argparse.Namespace) -> int:
    from .lab.train import main as train_main

    return train_main(args.train_args)


def main(argv: "list[str] | None" = None) -> int:
    from .core.methods import DEFAULT_METHOD
    from .core.runtime import configure_process
    from .data.datasets import FORMATS

    parser = argparse.ArgumentParser(prog="sparse-depth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_complete(sub)
    p = sub.add_parser("convert-kitti", help="write a KITTI raw drive as a rosbag2")
    p.add_argument("--data", required=True, help="KITTI raw drive folder")
    p.add_argument("--out", required=True, help="bag folder to create")
    p.add_argument("--frames", default=None, help="A:B, frame indices [A, B)")
    p.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    p.add_argument(
        "--compress", action="store_true", help="zstd compression (rosbag2 reads it natively)"
    )
    p.set_defaults(func=_convert_kitti)
    p = sub.add_parser("process", help="run the pipeline over a bag offline into a new bag")
    p.add_argument("in_bag")
    p.add_argument("out_bag")
    p.add_argument("--params", default=None, help="parameter YAML (as for the node)")
    p.add_argument("--remap", nargs="*", default=[], help="lidar/points:=/velodyne_points ...")
    p.add_argument("--device", default=None, help="overrides the YAML's device")
    p.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    p.set_defaults(func=_process)
    p = sub.add_parser("play", help="publish a bag on live ROS 2 topics with its timing and QoS")
    p.add_argument("bag")
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--loop", action="store_true")
    p.add_argument("--clock", action="store_true", help="publish /clock from the bag's times")
    p.add_argument("--topics", nargs="*", default=[])
    p.add_argument("--remap", nargs="*", default=[], help="FROM:=TO topic remaps")
    p.set_defaults(func=_play)
    p = sub.add_parser(
        "demo", help="the node live over DDS, a bag played into it, outputs recorded"
    )
    p.add_argument("--bag", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--model", default=DEFAULT_METHOD)
    p.add_argument("--device", default="auto")
    p.add_argument("--rate", type=float, default=1.0)
    p.set_defaults(func=_demo)
    p = sub.add_parser("evaluate", help="score methods on held-out LiDAR points")
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--camera", default=None)
    p.add_argument("--frames", default=None, help="A:B (indices) or id,id,...")
    p.add_argument("--protocol", default="random:0.5", help="random:K or lines:K")
    p.add_argument(
        "--densities", default=None, help="density sweep instead, e.g. 0.05,0.1,0.2,0.5,1"
    )
    p.add_argument(
        "--confidence",
        action="store_true",
        help="also: per method, the error of the pixels kept and dropped by confidence thresholds",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--methods", default="sparseconv,classic,nearest", help="names or checkpoint paths"
    )
    p.add_argument("--device", default="auto")
    _add_speed_options(p)
    p.add_argument("--json", default=None)
    p.set_defaults(func=_evaluate)
    p = sub.add_parser("bench", help="per-stage timings on real frames (median / p90 / p99)")
    p.add_argument("--data", default="../shared/data/kitti_raw_2011_09_26")
    p.add_argument("--format", default="kitti-raw", choices=FORMATS)
    p.add_argument("--model", default=DEFAULT_METHOD)
    p.add_argument("--device", default="auto")
    _add_speed_options(p)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument(
        "--sections",
        default="stages,paths,busy",
        help="comma-separated: stages, paths (a network's completion paths side by side), compile "
        "(adds torch.compile paths), busy (end to end with a busy neighbour), points, images, "
        "models (default %(default)s)",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="runs per configuration in the scaling sections"
    )
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench)
    p = sub.add_parser(
        "node",
        help="run the ROS 2 node (arguments after 'node' go to ROS, e.g. --ros-args -p ...)",
    )
    p.add_argument("ros_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_node)
    p = sub.add_parser(
        "train", help="train a network (see sparse-depth train --help)", add_help=False
    )
    p.add_argument("train_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_train)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (
        ["train"],
        ["node"],
    ):  # their own parsers take every argument (REMAINDER cannot lead with --x)
        args = argparse.Namespace(
            command=argv[0],
            func=_train if argv[0] == "train" else _node,
            train_args=argv[1:],
            ros_args=argv[1:],
        )
    else:
        args = parser.parse_args(argv)
    try:
        if hasattr(args, "threads"):  # the commands that compute (speed options)
            configure_process(args.threads)
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"sparse-depth {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
