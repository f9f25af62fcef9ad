"""Commands over rosbag2 files, offline: ``convert-kitti``, ``process``, ``extrinsic`` and
``time-offset``."""

from __future__ import annotations

import argparse
import sys

from .common import progress, quiet_option, setting_option

STORAGES = ("mcap", "sqlite3")


def register(command) -> None:
    p = command("convert-kitti", "write a KITTI raw drive as a rosbag2", convert_kitti)
    p.add_argument("--data", required=True, help="KITTI raw drive folder")
    p.add_argument("--out", required=True, help="bag folder to create")
    p.add_argument("--frames", default=None, help="A:B, frame indices [A, B) (default: all)")
    p.add_argument("--storage", default="mcap", choices=STORAGES, help="bag format")
    p.add_argument(
        "--compress", action="store_true", help="zstd compression (rosbag2 reads it natively)"
    )
    quiet_option(p)

    p = command(
        "process",
        "run the node's frame path over a bag offline into a new bag; over many bags (or "
        "folders of bags) into OUT_DIR on Ray",
        process,
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="BAG",
        help="IN_BAG OUT_BAG (one bag), or BAG... OUT_DIR (bags or folders of bags, on Ray: "
        "OUT_DIR/<bag name> each; finished ones are skipped on a rerun)",
    )
    p.add_argument(
        "--params", default=None, help="node parameter YAML (default: the node's defaults)"
    )
    p.add_argument(
        "--remap", nargs="*", default=[], help="input topics, e.g. lidar/points:=/velodyne_points"
    )
    p.add_argument("--device", default=None, help="overrides the YAML's device")
    setting_option(p, "backend", default=None, help="overrides the YAML's backend")
    p.add_argument("--storage", default="mcap", choices=STORAGES, help="output bag format")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="bags processed at once, one CPU and one torch thread each (0: one per CPU)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="a running Ray cluster to join (auto, ray://HOST:10001; default: a local Ray)",
    )
    quiet_option(p)

    p = command(
        "extrinsic",
        "print the node's extrinsic.* parameters from a bag's /tf_static "
        "and /tf (ready to paste into a parameter file)",
        extrinsic,
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

    p = command(
        "time-offset",
        "measure the camera's time_offset.image from a bag of a moving robot: the offset that "
        "best aligns the LiDAR's depth edges with the image's edges (needs fixed_frame_id)",
        time_offset,
    )
    p.add_argument("bag", help="rosbag2 folder with /tf odometry")
    p.add_argument(
        "--params", default=None, help="node parameter YAML with fixed_frame_id (e.g. odom)"
    )
    p.add_argument(
        "--remap", nargs="*", default=[], help="input topics, e.g. lidar/points:=/velodyne_points"
    )
    p.add_argument(
        "--range", type=float, default=0.1, help="offsets tried: the current one +- this, s"
    )
    p.add_argument("--step", type=float, default=0.005, help="between offsets tried, s")
    p.add_argument("--sets", type=int, default=0, help="sets scored (0: every set of the bag)")
    quiet_option(p)


def convert_kitti(args: argparse.Namespace) -> int:
    from ..bag.convert import convert_kitti as convert
    from ..data.datasets import parse_frame_range

    frames = parse_frame_range(args.frames, "--frames") if args.frames else None
    with progress(args, "convert-kitti") as bar:
        n = convert(args.data, args.out, frames, args.storage, args.compress, tick=bar.update)
    print(f"wrote {n} frames to {args.out} ({args.storage})")
    return 0


def process(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..bag.fleet import is_bag
    from ..bag.io import load_parameters, parse_remaps
    from ..bag.process import process_bag
    from ..core.runtime import configure_process

    if len(args.paths) < 2:
        raise ValueError("pass IN_BAG OUT_BAG, or BAG... OUT_DIR (several bags, on Ray)")
    params = load_parameters(args.params)
    for name in ("device", "backend"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    inputs, out = args.paths[:-1], args.paths[-1]
    folder_of_bags = Path(inputs[0]).is_dir() and not is_bag(Path(inputs[0]))
    if len(inputs) > 1 or folder_of_bags or args.workers or args.address:
        return _process_fleet(args, inputs, out, params)
    args.in_bag, args.out_bag = inputs[0], out
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
            raise
    print("inputs: " + ", ".join(f"{k} <- {v}" for k, v in report.inputs.items()))
    print(f"T_camera<-lidar: {report.extrinsic_source}")
    print(report.table())
    print(f"wrote {args.out_bag}")
    return 0


def _process_fleet(args: argparse.Namespace, inputs: list[str], out: str, params: dict) -> int:
    """``process BAG... OUT_DIR``: every bag on Ray (bag.fleet), one summary."""
    import time

    from ..bag.fleet import expand_bags, ray_missing, run_fleet, summary
    from ..bag.io import parse_remaps

    missing = ray_missing()
    if missing:
        raise ValueError(missing)
    bags = expand_bags(inputs)
    t0 = time.perf_counter()
    with progress(args, f"process {len(bags)} bags", unit="frame") as bar:

        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        results = run_fleet(
            bags,
            out,
            params,
            parse_remaps(args.remap),
            args.storage,
            args.workers,
            args.address,
            progress=tick,
        )
    print(summary(results, time.perf_counter() - t0))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"sparse-depth process: error: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def extrinsic(args: argparse.Namespace) -> int:
    from ..bag.extrinsic import bag_extrinsic, parameter_block

    t, camera, lidar = bag_extrinsic(args.bag, None, args.lidar_frame, args.camera_frame)
    print(parameter_block(t, camera, lidar))
    return 0


def time_offset(args: argparse.Namespace) -> int:
    import numpy as np

    from ..bag.io import load_parameters, parse_remaps
    from ..lab.time_offset import estimate_offset

    if not (0 < args.step <= args.range <= 1.0):
        raise ValueError("pass 0 < --step <= --range <= 1 (seconds)")
    params = load_parameters(args.params)
    half = int(round(args.range / args.step))
    candidates = np.arange(-half, half + 1) * args.step
    with progress(args, "time-offset", unit="set") as bar:
        found = estimate_offset(
            args.bag, params, candidates, parse_remaps(args.remap), args.sets, bar.update
        )
    skipped = ", ".join(f"{n} {k}" for k, n in found.skipped.items()) or "none"
    print(f"{found.sets} sets scored at {len(candidates)} offsets (skipped: {skipped})")
    if found.offset is None:
        print(
            "the edge alignment is the same at every offset: the bag shows too little motion "
            "to see the camera's time offset (record the robot turning)"
        )
        return 1
    if abs(found.offset) > args.range - args.step / 2:
        print(
            f"the best offset tried is at the edge of the range ({found.offset * 1000:+.1f} ms "
            "from the current one): the camera's may lie beyond; run again with a larger --range"
        )
        return 1
    print(
        f"the depth edges meet the image edges best {found.offset * 1000:+.1f} ms from the "
        f"current offset (bootstrap spread over the sets: {found.spread * 1000:.1f} ms)"
    )
    print(f"time_offset.image: {found.current + found.offset:.4f}")
    return 0
