"""The lab's commands: ``bench`` (per-stage timings and the scaling tables), ``export`` (a
network to ONNX) and ``train``."""

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

    p = command(
        "export",
        "export a network to ONNX (dynamic height and width), checked against torch",
        export,
    )
    p.add_argument("model", help="network name (guided, multiscale, sparseconv) or checkpoint")
    p.add_argument("out", help="ONNX file to write")
    data_options(p, str(SAMPLE) if SAMPLE.is_dir() else None)
    p.add_argument(
        "--frames", default="0:3", help="frames the export is checked on (A:B or id,id,...)"
    )

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
            backend=args.backend,
        )
    finally:
        for b in bars:
            b.close()
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
    return 0


def export(args: argparse.Namespace) -> int:
    import sys

    import torch

    from ..core.backends import (
        OnnxNetwork,
        backend_problem,
        export_onnx,
        graph_inputs,
        largest_difference,
    )
    from ..core.completion import DepthCompleter
    from ..core.methods import NETWORKS
    from ..data.datasets import open_dataset, select_frames
    from ..lab.bench_scaling import completion_inputs

    completer = DepthCompleter(args.model, "cpu", backend="torch")
    if completer.model is None:
        raise ValueError(
            f"{args.model} is a classical filler (OpenCV): nothing to export; export a network "
            f"({', '.join(NETWORKS)}) or a checkpoint"
        )
    print(f"exporting {completer.description} (10-20 s)", file=sys.stderr, flush=True)
    path = export_onnx(completer.model, args.out)
    net = completer.model
    line = (
        f"wrote {path}: inputs {', '.join(graph_inputs(net))} (1, C, H, W) float32, outputs "
        "dense, confidence (1, 1, H, W); H and W dynamic; onnx.checker passed"
    )
    cpu = torch.device("cpu")
    reason = backend_problem("onnxruntime", cpu, "fp32")
    if reason or args.data is None:
        print(f"{line}; not checked against torch ({reason or 'no --data'})")
        return 0
    reader = open_dataset(args.data, args.format, args.camera)
    ids = select_frames(reader.frame_ids(), args.frames, "--frames")
    frames = [completion_inputs(reader.read(i), cpu) for i in ids]
    worst = largest_difference(net, OnnxNetwork(net, "onnxruntime", cpu, path=path), frames)
    print(
        f"{line}; ONNX Runtime against eager torch on {len(frames)} frames of {args.data}: "
        f"max |depth difference| {worst * 1000:.3f} mm"
    )
    if worst > 1e-3:
        print(
            f"sparse-depth export: warning: the export differs by {worst:.4f} m", file=sys.stderr
        )
        return 1
    return 0


def train(args: argparse.Namespace) -> int:
    if "-h" in args.train_args or "--help" in args.train_args:  # without loading torch
        from ..lab.train_options import parser

        parser().print_help()
        return 0
    from ..lab.train import main as train_main

    return train_main(args.train_args)
