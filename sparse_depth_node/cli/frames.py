"""Commands over a data set's frames: ``complete`` (one frame to PNGs) and ``evaluate``
(methods scored on held-out LiDAR points)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.options import renamed
from .common import data_options, progress, quiet_option, setting_option, speed_options


def register(command) -> None:
    from ..core.methods import DEFAULT_METHOD, METHODS

    p = command("complete", "complete one frame of a data set and write PNGs", complete)
    data_options(p)
    p.add_argument(
        "--frame",
        default="0",
        help="frame: id or number (KITTI: 0 = 0000000000; nuScenes: camera name)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default=DEFAULT_METHOD, choices=METHODS, help="completion method")
    renamed(p, "--method", "--model", "model", choices=METHODS)
    p.add_argument(
        "--weights", default=None, help="checkpoint path (default: the shipped weights)"
    )
    speed_options(p)
    setting_option(p, "min_depth")
    setting_option(p, "max_depth")
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="run a network without trained weights (random initialisation)",
    )

    p = command(
        "evaluate",
        "score methods on held-out LiDAR points of a data set, or judge them on a robot's own "
        "recordings (--bags: every judge, and which model to run)",
        evaluate,
    )
    data_options(p, required=False)
    p.add_argument(
        "--bags",
        nargs="+",
        default=None,
        help="instead of --data: rosbag2 recordings never trained on (bags, or folders of bags), "
        "read as the node reads its topics (--params, --remap); every method judged held out, "
        "between the returns (accumulated) and on the whole image (photometric), then one line "
        "says which to run on this robot and by how much",
    )
    p.add_argument("--params", default=None, help="node parameter YAML for --bags (topics, TF)")
    p.add_argument("--remap", nargs="*", default=[], help="input topics of --bags")
    p.add_argument(
        "--frames", default=None, help="A:B (indices; A: or :B too) or id,id,... (default: all)"
    )
    p.add_argument(
        "--protocol",
        default="random:0.5",
        help="random:K (keep K of the points), lines:K (every K-th scan line), accumulated:N "
        "(the whole sweep in; scored at the returns of the sweeps up to N frames each side, "
        "moved by the camera's motion and kept where the frame's returns vouch for them: a "
        "sequence such as KITTI raw), or photometric "
        "(the whole image: other views of the scene warped with each method's depth; a "
        "sequence such as KITTI raw, and the stereo camera where there is one; the first "
        "method gives the sanity rows; the temporal poses come from the frame's LiDAR returns "
        "tracked into the other image: docs/EVALUATION.md)",
    )
    p.add_argument(
        "--densities", default=None, help="density sweep instead, e.g. 0.05,0.1,0.2,0.5,1"
    )
    p.add_argument(
        "--confidence",
        action="store_true",
        help="also: per method, the error of the pixels kept and dropped at each confidence "
        "threshold (the calibration and order of every confidence are always printed)",
    )
    p.add_argument("--seed", type=int, default=0, help="hold-out seed")
    p.add_argument(
        "--previews",
        default=None,
        metavar="DIR",
        help="also write DIR/<frame>.png: image, LiDAR input, each method's depth on one scale",
    )
    p.add_argument(
        "--models",
        default="sparseconv,classic,nearest",
        help="comma-separated method names or checkpoint paths",
    )
    renamed(p, "--methods", "--models", "models")
    speed_options(p)
    p.add_argument("--json", default=None, help="also write the result as JSON here")
    quiet_option(p)


def complete(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from ..core.completion import DepthCompleter
    from ..core.pipeline import process_frame
    from ..data.datasets import open_dataset
    from ..data.depth_io import preview, write_kitti_depth

    frame = open_dataset(args.data, args.format, args.camera).read(args.frame)
    completer = DepthCompleter(
        args.model,
        args.device,
        weights=args.weights,
        allow_untrained=args.allow_untrained,
        inference_scale=args.inference_scale,
        precision=args.precision,
        max_depth=args.max_depth,
        backend=args.backend,
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


def evaluate(args: argparse.Namespace) -> int:
    from ..data.datasets import open_dataset, select_frames

    if (args.bags is None) == (args.data is None):
        raise ValueError("pass --data with --format (a data set folder) or --bags (recordings)")
    if args.bags:
        return _recordings(args)
    if args.format is None:
        raise ValueError("--data needs --format (one of the data set layouts)")
    reader = open_dataset(args.data, args.format, args.camera)
    ids = select_frames(reader.frame_ids(), args.frames, "--frames")
    methods = _methods(args)
    if args.protocol == "photometric":
        return _whole_image(args, reader, ids, methods)
    splits = None
    if args.protocol.startswith("accumulated:"):
        frames, splits = _accumulated(args, reader, ids)
    else:
        with progress(args, "read") as bar:
            frames = []
            for i in ids:
                frames.append(reader.read(i))
                bar.update(1)
    if args.densities:
        return _densities(args, frames, methods)
    return _held_out(args, frames, methods, splits)


def _methods(args: argparse.Namespace) -> dict:
    """{name: completer} of --models (a checkpoint by its file's stem)."""
    from ..core.completion import DepthCompleter

    return {
        Path(name).stem if name.endswith(".pt") else name: DepthCompleter(
            name,
            args.device,
            inference_scale=args.inference_scale,
            precision=args.precision,
            backend=args.backend,
        )
        for name in args.models.split(",")
    }


def _held_out(args: argparse.Namespace, frames: list, methods: dict, splits: "list | None") -> int:
    """``evaluate`` at held-out points (or the accumulated targets of ``splits``): the table,
    the pairs, and the confidences' calibration and order (with --confidence also what each
    threshold keeps)."""
    from ..lab.evaluate import evaluate as run_evaluation
    from ..lab.evaluate import format_confidence, format_paired, format_table
    from ..lab.report import write_json

    show = _preview_writer(Path(args.previews), args.protocol) if args.previews else None
    with progress(args, "evaluate", len(frames)) as bar:
        result = run_evaluation(
            frames, methods, args.protocol, args.seed, bar.update, show, splits
        )
    print(format_table(result))
    if result["paired"]:
        print(format_paired(result))
    print(format_confidence(result, thresholds=args.confidence))
    if args.json:
        write_json(args.json, result)
    return 0


def _densities(args: argparse.Namespace, frames: list, methods: dict) -> int:
    """``evaluate --densities``: the density sweep."""
    from ..lab.evaluate import density_sweep, format_sweep
    from ..lab.report import write_json

    densities = [float(d) for d in args.densities.split(",")]
    with progress(args, "evaluate", len(densities)) as bar:
        sweep = density_sweep(frames, methods, densities, args.seed, tick=bar.update)
    print(format_sweep(sweep))
    if args.json:
        write_json(
            args.json,
            {
                "protocol": "density sweep (20 % fixed target)",
                "frames": len(frames),
                "seed": args.seed,
                "densities": sweep,
            },
        )
    return 0


def _recordings(args: argparse.Namespace) -> int:
    """``evaluate --bags``: every judge on the recordings (lab.recordings), the three tables and
    the verdict line."""
    from ..bag.fleet import expand_bags
    from ..bag.frames import BagFrames, cache_frames
    from ..bag.io import load_parameters, parse_remaps
    from ..lab.evaluate import format_confidence, format_table
    from ..lab.recordings import judge_recordings, verdict
    from ..lab.report import write_json
    from ..lab.whole_image import format_whole_image

    params = load_parameters(args.params) if args.params else {}
    bags = expand_bags(args.bags)
    readers = []
    with progress(args, "decode", len(bags), unit="bag") as bar:
        for bag in bags:
            readers.append(BagFrames(cache_frames(bag, params, parse_remaps(args.remap))))
            bar.update(1)
    methods = _methods(args)
    frames = sum(len(r.frame_ids()) for r in readers)
    with progress(args, "judge", 3 * frames, unit="frame") as bar:
        result = judge_recordings(readers, methods, args.seed, bar.update)
    for name in ("held_out", "accumulated"):
        if name in result:
            print(format_table(result[name]))
            print(format_confidence(result[name], thresholds=args.confidence))
    print(format_whole_image(result["photometric"], reference="classic-multiscale"))
    networks = [n for n, c in methods.items() if c.model is not None]
    result["verdict"] = verdict(result, networks)
    print(result["verdict"])
    if args.json:
        write_json(args.json, result)
    return 0


def _accumulated(args: argparse.Namespace, reader, ids: list[str]) -> tuple[list, list]:
    """``evaluate --protocol accumulated:N``: the frames that have a neighbour's motion, and
    their splits (lab.accumulate.accumulated_frames)."""
    from ..lab.accumulate import accumulated_frames

    span = accumulated_span(args.protocol)
    with progress(args, "accumulate", len(ids)) as bar:
        frames, splits = accumulated_frames(reader, ids, span, bar.update)
    if not frames:
        raise ValueError(
            "--protocol accumulated: no frame has a neighbour whose motion was found; "
            "it needs a sequence such as KITTI raw"
        )
    return frames, splits


def accumulated_span(protocol: str) -> int:
    """N of ``accumulated:N``; ValueError naming the fix."""
    value = protocol.partition(":")[2]
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"--protocol accumulated:N needs a whole N >= 1, got '{value}'")
    return int(value)


def _whole_image(args: argparse.Namespace, reader, ids: list[str], methods: dict) -> int:
    """``evaluate --protocol photometric``: the whole-image table (lab.whole_image)."""
    from ..lab.report import write_json
    from ..lab.views import sequence_views
    from ..lab.whole_image import evaluate_whole_image, format_whole_image

    stereo = args.data if args.format == "kitti-raw" else None
    with progress(args, "views", len(ids)) as bar:
        frames = sequence_views(reader, ids, stereo, bar.update)
    with progress(args, "evaluate", len(frames)) as bar:
        show = _preview_writer(Path(args.previews), "all LiDAR") if args.previews else None
        result = evaluate_whole_image(frames, methods, tick=bar.update, show=show)
    print(format_whole_image(result))
    if args.json:
        write_json(args.json, result)
    return 0


def _preview_writer(folder: Path, protocol: str):
    """A ``show`` callback for lab.evaluate that writes FOLDER/<frame>.png: the image, the
    LiDAR input and every method's completion on one colour scale."""
    from ..data.depth_io import comparison

    folder.mkdir(parents=True, exist_ok=True)

    def show(frame, input_depth, preds) -> None:
        comparison(
            frame.rgb,
            input_depth,
            preds,
            f"{frame.name}: input {protocol}; methods on one scale (magenta: no estimate)",
        ).save(folder / f"{frame.name}.png")

    return show
