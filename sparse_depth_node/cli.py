"""The ``sparse-depth`` command: ``complete`` (one frame of a data set), ``convert-kitti``,
``process`` and ``play`` (rosbag2), ``demo`` (node + bag over DDS), ``node`` (the ROS 2 node),
``evaluate``, ``bench`` and ``train``.

A mistake (a missing folder, a wrong format, an unreadable file) ends with one line naming the
problem and exit status 2; work that takes longer than a moment shows a progress bar on a
terminal (``--quiet`` silences it). Each command imports its modules only when it runs, so
``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

# the bundled sample of a source checkout: `bench` runs on it when no --data is given
SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "kitti_raw_2011_09_26"
Tick = Callable[[], None]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help shows its default; descriptions keep their lines."""


def progress(args: argparse.Namespace, desc: str, total: "int | None" = None, unit: str = "frame"):
    """A tqdm bar on stderr: hidden with --quiet, and when stderr is not a terminal. Redrawn at
    every step (they are frames or passes, each long enough to see), so the last count shows."""
    from tqdm import tqdm

    quiet = getattr(args, "quiet", False)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        mininterval=0,
        miniters=1,
        disable=True if quiet else None,
    )


def _common(p: argparse.ArgumentParser, quiet: bool = True) -> None:
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress output")


def _data_options(p: argparse.ArgumentParser, data_default: "str | None" = None) -> None:
    from .data.datasets import FORMATS

    required = data_default is None
    p.add_argument(
        "--data",
        required=required,
        default=data_default,
        help="data set folder (the layout of --format)",
    )
    p.add_argument(
        "--format",
        required=required,
        default=None if required else "kitti-raw",
        choices=FORMATS,
        help="data set layout",
    )
    p.add_argument(
        "--camera",
        default=None,
        help="camera: KITTI raw index (2) or DDAD name (CAMERA_01); default: the first",
    )


def _speed_options(p: argparse.ArgumentParser) -> None:
    from .core.settings import DEFAULTS, PRECISIONS

    p.add_argument("--device", default=DEFAULTS["device"], help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--inference-scale",
        type=float,
        default=DEFAULTS["inference_scale"],
        help="complete at this fraction of the resolution: 1, 0.5, 0.25, ...",
    )
    p.add_argument(
        "--precision",
        default=DEFAULTS["precision"],
        choices=PRECISIONS,
        help="network precision (fp16: CUDA only)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULTS["threads"],
        help="CPU threads for torch and OpenCV (0: all cores but one)",
    )


def _complete(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

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
    run = (frame.points, frame.camera, frame.t_cam_from_lidar, completer, frame.rgb, params)
    process_frame(*run)  # warm-up
    result = process_frame(*run)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_kitti_depth(out / "sparse_depth.png", result.sparse_depth)
    write_kitti_depth(out / "dense_depth.png", result.dense_depth)
    conf = (np.clip(result.confidence, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(conf).save(out / "confidence.png")
    coverage = (result.dense_depth > 0).mean()
    caption = (
        f"{args.format} {frame.name}: {completer.description}; "
        f"{int(result.mask.sum())} LiDAR pixels ({100 * result.mask.mean():.1f} %), "
        f"dense coverage {100 * coverage:.1f} %"
    )
    preview(
        frame.rgb,
        result.sparse_depth,
        result.dense_depth,
        result.confidence,
        caption,
        max_depth=args.max_depth,
    ).save(out / "preview.png")
    print(caption)
    print(f"{'stage':<12} {'ms':>8}")
    for stage, ms in result.timings_ms.items():
        print(f"{stage:<12} {ms:8.1f}")
    print(f"wrote {out}/sparse_depth.png dense_depth.png confidence.png preview.png")
    if result.mask.any() and coverage == 0:
        print(
            f"sparse-depth complete: warning: {completer.method} gave no depth at all",
            file=sys.stderr,
        )
    return 0


def _convert_kitti(args: argparse.Namespace) -> int:
    from .bag.convert import convert_kitti
    from .data.datasets import parse_frame_range

    frames = parse_frame_range(args.frames, "--frames") if args.frames else None
    with progress(args, "convert-kitti") as bar:
        n = convert_kitti(
            args.data,
            args.out,
            frames,
            args.storage,
            compress=args.compress,
            tick=bar.update,
        )
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
    with progress(args, "process") as bar:

        def tick(report) -> None:
            done.append(report.frames_out)
            bar.update(1)

        try:
            report = process_bag(
                args.in_bag,
                args.out_bag,
                params,
                parse_remaps(args.remap),
                args.storage,
                progress=tick,
                notice=lambda line: print(line, file=sys.stderr),
            )
        except KeyboardInterrupt:
            print(
                f"interrupted after {len(done)} frames: {args.out_bag} holds them (a closed, "
                "readable bag)"
            )
            return 130
    print("inputs: " + ", ".join(f"{k} <- {v}" for k, v in report.inputs.items()))
    print(f"T_camera<-lidar: {report.extrinsic_source}")
    print(report.table())
    print(f"wrote {args.out_bag}")
    if report.frames_out == 0:
        print(
            f"sparse-depth process: error: no frame gave an output ({report.skipped})",
            file=sys.stderr,
        )
        return 1
    return 0


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
        if not args.quiet:
            print(player.summary(args.rate, args.loop), flush=True)
        if any("tf2_msgs" in why for why in player.skipped.values()):
            _print_extrinsic_instead_of_tf(args.bag)
        if args.wait > 0:
            if not args.quiet:
                print(
                    f"play: waiting for a subscriber (up to {args.wait:g} s; --wait 0 skips)",
                    flush=True,
                )
            if not player.wait_for_subscribers(args.wait) and not args.quiet:
                print("play: no subscriber yet; playing anyway", flush=True)
        loops = []

        def on_loop(count: int) -> None:
            loops.append(count)
            if not args.quiet:
                print(f"play: loop {len(loops)} done, {count} messages so far", flush=True)

        n = player.play(rate=args.rate, loop=args.loop, on_loop=on_loop)
        time.sleep(0.5)  # let the last (and transient-local) messages go out
        print(f"published {n} messages from {args.bag}")
        player.close()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.shutdown()
    return 0


def _extrinsic(args: argparse.Namespace) -> int:
    from .bag.extrinsic import bag_extrinsic, parameter_block

    t, camera, lidar = bag_extrinsic(args.bag, None, args.lidar_frame, args.camera_frame)
    print(parameter_block(t, camera, lidar))
    return 0


def _print_extrinsic_instead_of_tf(bag: str) -> None:
    """This ROS install cannot publish the bag's /tf_static: say so, with the node's parameters
    that replace it (a node without TF must not guess its extrinsic)."""
    from .bag.extrinsic import bag_extrinsic, parameter_block

    try:
        block = parameter_block(*bag_extrinsic(bag))
    except ValueError as exc:
        print(f"play: /tf_static cannot be published here, and {exc}", flush=True)
        return
    print(
        "play: this ROS install cannot publish /tf_static (no tf2_msgs); give the node these "
        "parameters instead:\n" + block,
        flush=True,
    )


def _demo(args: argparse.Namespace) -> int:
    from .bag.demo import run_demo

    return run_demo(
        args.bag,
        args.out,
        args.model,
        args.device,
        args.rate,
        log=None if args.quiet else lambda line: print(line, file=sys.stderr),
    )


def _frames_of(reader, spec: "str | None", data: str) -> list:
    ids = reader.frame_ids()
    if spec is None:
        chosen = ids
    elif ":" in spec:
        a, _, b = spec.partition(":")
        chosen = ids[int(a or 0) : int(b) if b else None]
    else:
        chosen = spec.split(",")
    if not chosen:
        raise ValueError(
            f"--frames {spec} selects no frame: {data} has {len(ids)} (indices 0:{len(ids)})"
        )
    return chosen


def _evaluate(args: argparse.Namespace) -> int:
    from .core.completion import DepthCompleter
    from .data.datasets import open_dataset
    from .lab.evaluate import (
        CONFIDENCE_THRESHOLDS,
        density_sweep,
        evaluate,
        format_confidence,
        format_paired,
        format_sweep,
        format_table,
    )
    from .lab.report import write_json

    reader = open_dataset(args.data, args.format, args.camera)
    ids = _frames_of(reader, args.frames, args.data)
    with progress(args, "read") as bar:
        frames = []
        for i in ids:
            frames.append(reader.read(i))
            bar.update(1)
    methods = {}
    for name in args.methods.split(","):
        methods[Path(name).stem if name.endswith(".pt") else name] = DepthCompleter(
            name, args.device, inference_scale=args.inference_scale, precision=args.precision
        )
    densities = [float(d) for d in args.densities.split(",")] if args.densities else None
    with progress(args, "evaluate", len(densities or frames)) as bar:
        if densities:
            sweep = density_sweep(frames, methods, densities, args.seed, tick=bar.update)
            print(format_sweep(sweep))
            result = {
                "protocol": "density sweep (20 % fixed target)",
                "frames": len(frames),
                "seed": args.seed,
                "densities": sweep,
            }
        else:
            thresholds = CONFIDENCE_THRESHOLDS if args.confidence else None
            show = _preview_writer(Path(args.previews), args.protocol) if args.previews else None
            result = evaluate(
                frames, methods, args.protocol, args.seed, thresholds, tick=bar.update, show=show
            )
    if not args.densities:
        print(format_table(result))
        if result["paired"]:
            print(format_paired(result))
        for name, rows in result.get("confidence", {}).items():
            print(format_confidence(name, rows))
    if args.json:
        write_json(args.json, result)
    return 0


def _preview_writer(folder: Path, protocol: str):
    """A ``show`` callback for lab.evaluate that writes FOLDER/<frame>.png: the image, the
    LiDAR input and every method's completion on one colour scale."""
    from .data.depth_io import comparison

    folder.mkdir(parents=True, exist_ok=True)

    def show(frame, split, preds) -> None:
        comparison(
            frame.rgb,
            split.input_depth[0, 0].numpy(),
            preds,
            f"{frame.name}: input {protocol}; methods on one scale (magenta: no estimate)",
        ).save(folder / f"{frame.name}.png")

    return show


def _bench(args: argparse.Namespace) -> int:
    from .lab.bench import format_report, run
    from .lab.report import write_json

    if args.data is None:
        raise ValueError(
            "pass --data with a data set folder (e.g. a KITTI raw drive); "
            f"the bundled sample {SAMPLE} is not here"
        )
    sections = tuple(s for s in args.sections.split(",") if s)

    bars = []

    def bar(desc: str, total: int) -> Tick:
        bars.append(progress(args, desc, total, unit="pass"))
        return bars[-1].update

    try:
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
            progress=bar,
        )
    finally:
        for b in bars:
            b.close()
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
    return 0


def _node(args: argparse.Namespace) -> int:
    from .ros.main import main as node_main

    node_main(["sparse_depth_node", *args.ros_args])
    return 0


def _train(args: argparse.Namespace) -> int:
    if "-h" in args.train_args or "--help" in args.train_args:  # without loading torch
        from .lab.train_options import parser

        parser().print_help()
        return 0
    from .lab.train import main as train_main

    return train_main(args.train_args)


def build_parser() -> argparse.ArgumentParser:
    from .core.methods import DEFAULT_METHOD, METHODS
    from .core.settings import DEFAULTS

    parser = argparse.ArgumentParser(
        prog="sparse-depth", description=__doc__, formatter_class=_Formatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=_Formatter)
        p.set_defaults(func=func)
        return p

    p = command("complete", "complete one frame of a data set and write PNGs", _complete)
    _data_options(p)
    p.add_argument(
        "--frame",
        default="0",
        help="frame: id or number (KITTI: 0 = 0000000000; nuScenes: camera name)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS, help="completion method")
    p.add_argument(
        "--weights", default=None, help="checkpoint path (default: the shipped weights)"
    )
    _speed_options(p)
    p.add_argument(
        "--min-depth", type=float, default=DEFAULTS["min_depth"], help="nearest depth kept, m"
    )
    p.add_argument(
        "--max-depth", type=float, default=DEFAULTS["max_depth"], help="farthest depth kept, m"
    )
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="run a network without trained weights (random initialisation)",
    )

    p = command("convert-kitti", "write a KITTI raw drive as a rosbag2", _convert_kitti)
    p.add_argument("--data", required=True, help="KITTI raw drive folder")
    p.add_argument("--out", required=True, help="bag folder to create")
    p.add_argument("--frames", default=None, help="A:B, frame indices [A, B) (default: all)")
    p.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"], help="bag format")
    p.add_argument(
        "--compress", action="store_true", help="zstd compression (rosbag2 reads it natively)"
    )
    _common(p)

    p = command("process", "run the node's frame path over a bag offline into a new bag", _process)
    p.add_argument("in_bag", help="input rosbag2 folder")
    p.add_argument("out_bag", help="output rosbag2 folder to create")
    p.add_argument(
        "--params", default=None, help="node parameter YAML (default: the node's defaults)"
    )
    p.add_argument(
        "--remap", nargs="*", default=[], help="input topics, e.g. lidar/points:=/velodyne_points"
    )
    p.add_argument("--device", default=None, help="overrides the YAML's device")
    p.add_argument(
        "--storage", default="mcap", choices=["mcap", "sqlite3"], help="output bag format"
    )
    _common(p)

    p = command("play", "publish a bag on live ROS 2 topics with its timing and QoS", _play)
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
        help="seconds to wait for a subscriber before the first message (0: none), "
        "so that the first frames are not lost while the listener discovers us",
    )
    _common(p)

    p = command(
        "extrinsic",
        "print the node's extrinsic.* parameters from a bag's /tf_static "
        "and /tf (ready to paste into a parameter file)",
        _extrinsic,
    )
    p.add_argument("bag", help="rosbag2 folder")
    p.add_argument(
        "--lidar-frame",
        default=None,
        help="LiDAR frame (default: the frame_id of the bag's first cloud)",
    )
    p.add_argument(
        "--camera-frame",
        default=None,
        help="camera optical frame (default: the frame_id of the bag's first image)",
    )

    p = command("demo", "the node live over DDS, a bag played into it, outputs recorded", _demo)
    p.add_argument("--bag", required=True, help="rosbag2 folder with a cloud, image, camera_info")
    p.add_argument("--out", required=True, help="folder for outputs, previews and the node's log")
    p.add_argument("--model", default=DEFAULT_METHOD, help="the node's model parameter")
    p.add_argument("--device", default="auto", help="the node's device parameter")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed, x the recorded rate")
    _common(p)

    p = command("evaluate", "score methods on held-out LiDAR points", _evaluate)
    _data_options(p)
    p.add_argument("--frames", default=None, help="A:B (indices) or id,id,... (default: all)")
    p.add_argument(
        "--protocol",
        default="random:0.5",
        help="random:K (keep K of the points) or lines:K (every K-th scan line)",
    )
    p.add_argument(
        "--densities", default=None, help="density sweep instead, e.g. 0.05,0.1,0.2,0.5,1"
    )
    p.add_argument(
        "--confidence",
        action="store_true",
        help="also: per method, the error of the pixels kept and dropped by confidence thresholds",
    )
    p.add_argument("--seed", type=int, default=0, help="hold-out seed")
    p.add_argument(
        "--previews",
        default=None,
        metavar="DIR",
        help="also write DIR/<frame>.png: image, LiDAR input, each method's depth on one scale",
    )
    p.add_argument(
        "--methods",
        default="sparseconv,classic,nearest",
        help="comma-separated method names or checkpoint paths",
    )
    _speed_options(p)
    p.add_argument("--json", default=None, help="also write the result as JSON here")
    _common(p)

    p = command("bench", "per-stage timings on real frames (median / p90 / p99)", _bench)
    _data_options(p, str(SAMPLE) if SAMPLE.is_dir() else None)
    p.add_argument("--model", default=DEFAULT_METHOD, help="completion method")
    _speed_options(p)
    p.add_argument("--iterations", type=int, default=50, help="timed passes")
    p.add_argument("--warmup", type=int, default=5, help="untimed passes first")
    p.add_argument(
        "--sections",
        default="stages,paths,busy",
        help="comma-separated: stages, paths (a network's completion paths side by "
        "side), compile (adds torch.compile paths), busy (end to end with a busy "
        "neighbour), points, images, models",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="runs per configuration in the scaling sections"
    )
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    _common(p)

    p = command(
        "node",
        "run the ROS 2 node (arguments after 'node' go to ROS: --ros-args -p "
        "NAME:=VALUE ...; 'node --help' lists its topics and parameters)",
        _node,
    )
    p.add_argument("ros_args", nargs=argparse.REMAINDER, help="ROS arguments")
    p = command("train", "train a network (see sparse-depth train --help)", _train)
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="the training script's options")
    return parser


def main(argv: "list[str] | None" = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] in (["train"], ["node"]):  # their own parsers take every argument after them
        func = _train if argv[0] == "train" else _node
        args = argparse.Namespace(
            command=argv[0], func=func, train_args=argv[1:], ros_args=argv[1:]
        )
    else:
        args = parser.parse_args(argv)
    try:
        if hasattr(args, "threads"):  # the commands that compute (speed options)
            from .core.runtime import configure_process

            configure_process(args.threads)
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:  # a mistake in the input: one line, no traceback
        message = (
            str(exc)
            if not isinstance(exc, OSError) or not exc.filename
            else (f"{exc.strerror}: {exc.filename}")
        )
        print(f"sparse-depth {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sparse-depth {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
