"""The lab's commands: ``bench`` (per-stage timings and the scaling tables) and ``train``."""

from __future__ import annotations

import argparse

from .common import SAMPLE, data_options, progress, quiet_option, setting_option, speed_options


def register(command) -> None:
    p = command("bench", "per-stage timings on real frames (median / p90 / p99)", bench)
    data_options(p, str(SAMPLE) if SAMPLE.is_dir() else None)
    setting_option(p, "model")
    speed_options(p)
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
    quiet_option(p)

    p = command("train", "train a network (see sparse-depth train --help)", train)
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="the training script's options")


def bench(args: argparse.Namespace) -> int:
    from ..lab.bench import format_report, run
    from ..lab.report import write_json

    if args.data is None:
        raise ValueError(
            "pass --data with a data set folder (e.g. a KITTI raw drive); "
            f"the bundled sample {SAMPLE} is not here"
        )
    sections = tuple(s for s in args.sections.split(",") if s)
    bars = []

    def bar(desc: str, total: int):
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


def train(args: argparse.Namespace) -> int:
    if "-h" in args.train_args or "--help" in args.train_args:  # without loading torch
        from ..lab.train_options import parser

        parser().print_help()
        return 0
    from ..lab.train import main as train_main

    return train_main(args.train_args)
