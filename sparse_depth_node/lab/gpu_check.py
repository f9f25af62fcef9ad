"""The GPU check (scripts/gpu_check.sh): what the product does on this machine's GPU, in four
tables, on the bundled frames.

1. Precision: one network with every device, backend and precision the machine can run (on
   CUDA torch replays CUDA graphs; torch-eager is the same network launched op by op): the
   completion alone and the node's frame path end to end (median ms), the classical prefill,
   the largest |depth - the CPU's torch depth| and the share of the CPU's pixels covered, the
   held-out accuracy (random 50 % of the returns, seed 0) and the peak CUDA memory.
2. Situations, on the GPU at fp32: KITTI size, the default classical method at KITTI size,
   1920 x 1080 (a taller camera on the same rig), the host side pinned to 2 cores (a small
   robot computer), and the node's first frame (building the completer, its warm-up, then the
   first real frame).
3. Prefill: each classical fill by OpenCV on the host (with the copies a GPU frame needs) and
   in PyTorch on the device, and their largest difference.
4. Training steps per second (the network, every loss: held-out depth, scan lines,
   smoothness, keep-input, photometric), on the CPU (2 threads) and the GPU (fp32, bf16).

A row the machine cannot run says why; on a CPU-only machine the GPU rows say "no CUDA device",
which is how it is tested before a GPU is lent.

    python -m sparse_depth_node.lab.gpu_check [--model guided] [--iterations 20] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..bag.io import BagKit
from ..core import classic_torch
from ..core.classic import FILLS, fill_tensor
from ..core.completion import DepthCompleter
from ..core.methods import DEFAULT_METHOD
from ..core.runtime import configure_process
from ..core.settings import resolve
from ..data.datasets import Frame, open_dataset
from ..msgs.frame import run_set, warm_up
from ..msgs.outputs import enabled_outputs
from .bench import depth_against, machine
from .bench_frames import bench_frames, frame_messages
from .bench_scaling import camera_of_size, completion_inputs, image_for, time_ms
from .evaluate import evaluate

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "kitti_raw_2011_09_26"
# (device, backend, precision), the first the reference of every other
ROWS = (
    ("cpu", "torch", "fp32"),
    ("cpu", "onnxruntime", "fp32"),
    ("cuda", "torch", "fp32"),
    ("cuda", "torch-eager", "fp32"),  # the same without CUDA graphs: launched op by op
    ("cuda", "torch", "bf16"),
    ("cuda", "torch", "fp16"),
    ("cuda", "onnxruntime", "fp32"),
    ("cuda", "tensorrt", "fp16"),
)
NO_CUDA = "no CUDA device"


def accuracy(frames: list[Frame], completer: DepthCompleter) -> dict[str, float]:
    """Held-out RMSE and MAE (mm) at a random 50 % of the returns (seed 0), the rest the input."""
    m = evaluate(frames, {"m": completer}, "random:0.5", seed=0)["methods"]["m"]
    return {"rmse_mm": m["rmse_mm"], "mae_mm": m["mae_mm"]}


def cuda_peak_mb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0


def precision_rows(model: str, frames: list[Frame], iterations: int) -> list[dict]:
    """Table 1: one row per ROWS entry (or ``unavailable``: why)."""
    rows, reference = [], None
    for device, backend, precision in ROWS:
        row: dict[str, Any] = {"device": device, "backend": backend, "precision": precision}
        rows.append(row)
        if device == "cuda" and not torch.cuda.is_available():
            row["unavailable"] = NO_CUDA
            continue
        try:
            completer = DepthCompleter(
                model, device, precision=precision, backend=backend.replace("-eager", "")
            )
        except ValueError as exc:
            row["unavailable"] = str(exc)
            continue
        if backend.endswith("-eager"):
            completer.runner = completer.model
        if completer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(completer.device)
        dense, diff, cover = depth_against(frames, completer, reference)
        reference = dense if reference is None else reference
        inputs = [completion_inputs(f, completer.device) for f in frames]
        net = completer.model
        with torch.inference_mode():
            complete = [
                time_ms(lambda: completer.complete(d, m, rgb), completer.device, iterations)[0]
                for d, m, rgb in inputs
            ]
            prefill = [
                time_ms(lambda: net.prefill(d, m), completer.device, iterations)[0]
                for d, m, _ in inputs
                if net is not None and net.has_prefill
            ]
        stages = bench_frames(frames, completer, iterations, warmup=3)
        row.update(
            complete_ms=float(np.median(complete)),
            end_to_end_ms=stages["end_to_end"]["median_ms"],
            prefill_ms=float(np.median(prefill)) if prefill else float("nan"),
            max_abs_diff_m=diff,
            coverage=cover,
            cuda_peak_mb=cuda_peak_mb(completer.device),
            providers=getattr(completer.runner, "providers", ["torch"]),
            **accuracy(frames, completer),
        )
    return rows


def on_two_cores(work: Callable[[], dict]) -> dict:
    """``work()`` with this process (its host side) pinned to 2 cores and 2 threads."""
    import cv2

    cores, threads = os.sched_getaffinity(0), torch.get_num_threads()
    os.sched_setaffinity(0, sorted(cores)[:2])
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    try:
        return work()
    finally:
        os.sched_setaffinity(0, cores)
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)


def first_frame(model: str, frame: Frame) -> dict[str, float]:
    """The node's start on CUDA: building the completer (weights to the device), the warm-up at
    the frame's size, then the first real frame, ms each."""
    values = resolve()
    topics, kit = enabled_outputs(values), BagKit()
    t0 = time.perf_counter()
    completer = DepthCompleter(model, "cuda")
    t1 = time.perf_counter()
    warm = warm_up(completer, values, topics, kit, frame.camera.width, frame.camera.height)
    t2 = time.perf_counter()
    msgs = frame_messages(frame)
    run_set(*msgs, lambda *_: frame.t_cam_from_lidar, completer, values, topics, kit)
    torch.cuda.synchronize()
    t3 = time.perf_counter()
    return {
        "build_ms": (t1 - t0) * 1e3,
        "warm_up_ms": warm,
        "first_frame_ms": (t3 - t2) * 1e3,
    }


def situation_rows(model: str, frames: list[Frame], iterations: int) -> list[dict]:
    """Table 2: end to end on the GPU (fp32) in each situation, and the node's first frame."""
    if not torch.cuda.is_available():
        return [{"situation": "all", "unavailable": NO_CUDA}]
    completer = DepthCompleter(model, "cuda")
    tall = [
        dataclasses.replace(
            f, camera=camera_of_size(f.camera), rgb=image_for(f, camera_of_size(f.camera))
        )
        for f in frames
    ]
    default = DepthCompleter(DEFAULT_METHOD, "cuda")
    rows = []
    for name, work in (
        ("KITTI size (1242 x 375)", lambda: bench_frames(frames, completer, iterations, 3)),
        (
            f"{DEFAULT_METHOD} (the default), KITTI size",
            lambda: bench_frames(frames, default, iterations, 3),
        ),
        ("1920 x 1080", lambda: bench_frames(tall, completer, iterations, 3)),
        (
            "host on 2 cores, KITTI size",
            lambda: on_two_cores(lambda: bench_frames(frames, completer, iterations, 3)),
        ),
    ):
        torch.cuda.reset_peak_memory_stats(completer.device)
        stages = work()
        rows.append(
            {
                "situation": name,
                "end_to_end_ms": stages["end_to_end"]["median_ms"],
                "complete_ms": stages["complete"]["median_ms"],
                "stages": {k: v["median_ms"] for k, v in stages.items()},
                "cuda_peak_mb": cuda_peak_mb(completer.device),
            }
        )
    rows.append({"situation": "the node's first frame", **first_frame(model, frames[0])})
    return rows


def prefill_rows(frames: list[Frame], iterations: int) -> list[dict]:
    """Table 3: each classical fill by OpenCV (device -> host -> device) and in torch on the
    device, median ms over the frames, and their largest |difference| (m)."""
    if not torch.cuda.is_available():
        return [{"fill": "all", "unavailable": NO_CUDA}]
    device = torch.device("cuda")
    inputs = [completion_inputs(f, device)[0] for f in frames]
    rows = []
    for name in FILLS:
        opencv, torch_ms, diff = [], [], 0.0
        for d in inputs:
            ms, _, ref = time_ms(
                lambda: fill_tensor(name, d.cpu(), 100.0).to(device), device, iterations
            )
            opencv.append(ms)
            ms, _, got = time_ms(lambda: classic_torch.FILLS[name](d, 100.0), device, iterations)
            torch_ms.append(ms)
            diff = max(diff, float((ref - got).abs().max()))
        rows.append(
            {
                "fill": name,
                "opencv_ms": float(np.median(opencv)),
                "torch_ms": float(np.median(torch_ms)),
                "max_abs_diff_m": diff,
            }
        )
    return rows


def training_rows(model: str, steps: int) -> list[dict]:
    """Table 4: optimiser steps per second of ``model`` with every loss on the sample's frames
    (batch 8, the default crop), on the CPU with 2 threads and on the GPU at fp32 and bf16."""
    from .train_data import load_training_data
    from .train_options import parser
    from .trainer import Trainer

    rows = []
    for device, precision in (("cpu", "fp32"), ("cuda", "fp32"), ("cuda", "bf16")):
        row: dict[str, Any] = {"device": device, "precision": precision}
        rows.append(row)
        if device == "cuda" and not torch.cuda.is_available():
            row["unavailable"] = NO_CUDA
            continue
        args = parser().parse_args(
            ["--data", str(SAMPLE), "--ddad", "", "--extra", "", "--rig", ""]
            + ["--train-frames", "0:3", "--val-frames", "0:1", "--model", model, "--batch", "8"]
            + ["--photometric", "1", "--smoothness", "1", "--keep-input", "1"]
            + ["--ring-holdout", "0.25", "--clean-targets", "0.1", "--out", os.devnull]
            + ["--device", device, "--precision", precision]
        )
        threads = torch.get_num_threads()
        torch.set_num_threads(2 if device == "cpu" else threads)
        try:
            trainer = Trainer(
                args, load_training_data(args, torch.device(device)), torch.device(device)
            )
            n = max(2, steps // 10) if device == "cpu" else steps
            losses = [trainer.step() for _ in range(2)]  # warm-up
            t0 = time.perf_counter()
            losses += [trainer.step() for _ in range(n)]
            seconds = (time.perf_counter() - t0) / n
        finally:
            torch.set_num_threads(threads)
        row.update(
            steps_per_s=1.0 / seconds,
            s_per_step=seconds,
            final_loss=losses[-1],
            finite=bool(np.isfinite(losses).all()),
        )
    cpu = rows[0].get("steps_per_s")
    for r in rows:
        if cpu and "steps_per_s" in r:
            r["speed_up"] = r["steps_per_s"] / cpu
    return rows


def fmt(value: float, spec: str = ".1f") -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and np.isnan(value))
        else format(value, spec)
    )


def format_tables(result: dict) -> str:
    """The four tables as text, the machine on the first line."""
    lines = [f"{result['model']} on the bundled frames; {result['machine']}; GPU: {result['gpu']}"]
    lines.append(
        f"{'device':<6} {'backend':<12} {'prec':<5} {'complete':>9} {'end2end':>8} {'prefill':>8} "
        f"{'max|diff|mm':>11} {'cover':>6} {'RMSE mm':>8} {'MAE mm':>7} {'CUDA MB':>8}"
    )
    for r in result["precision"]:
        head = f"{r['device']:<6} {r['backend']:<12} {r['precision']:<5}"
        if "unavailable" in r:
            lines.append(f"{head} unavailable: {r['unavailable']}")
            continue
        lines.append(
            f"{head} {fmt(r['complete_ms']):>9} {fmt(r['end_to_end_ms']):>8} "
            f"{fmt(r['prefill_ms'], '.2f'):>8} {fmt(r['max_abs_diff_m'] * 1000, '.3f'):>11} "
            f"{r['coverage']:6.1%} {fmt(r['rmse_mm'], '.0f'):>8} {fmt(r['mae_mm'], '.0f'):>7} "
            f"{fmt(r['cuda_peak_mb'], '.0f'):>8}"
        )
    lines.append("situations (cuda, fp32): end to end / complete ms, CUDA peak MB")
    for r in result["situations"]:
        if "unavailable" in r:
            lines.append(f"  unavailable: {r['unavailable']}")
        elif "first_frame_ms" in r:
            lines.append(
                f"  {r['situation']}: build {r['build_ms']:.0f} ms, warm-up {r['warm_up_ms']:.0f}"
                f" ms, first frame {r['first_frame_ms']:.1f} ms"
            )
        else:
            lines.append(
                f"  {r['situation']:<30} {r['end_to_end_ms']:7.2f} / {r['complete_ms']:6.2f} ms, "
                f"{r['cuda_peak_mb']:.0f} MB"
            )
            lines.append("    " + ", ".join(f"{k} {v:.2f}" for k, v in r["stages"].items()))
    lines.append("prefill: OpenCV on the host (with copies) / torch on the GPU, ms; max |diff| mm")
    for r in result["prefill"]:
        if "unavailable" in r:
            lines.append(f"  unavailable: {r['unavailable']}")
        else:
            lines.append(
                f"  {r['fill']:<20} {r['opencv_ms']:7.2f} / {r['torch_ms']:6.2f} ms, "
                f"{r['max_abs_diff_m'] * 1000:.3f} mm"
            )
    lines.append("training (every loss, batch 8): steps/s, s/step, x the CPU")
    for r in result["training"]:
        head = f"  {r['device']:<5} {r['precision']:<5}"
        if "unavailable" in r:
            lines.append(f"{head} unavailable: {r['unavailable']}")
        else:
            lines.append(
                f"{head} {r['steps_per_s']:7.2f} {r['s_per_step']:7.3f} "
                f"x{fmt(r.get('speed_up'), '.1f')} (loss {r['final_loss']:.3f}, finite "
                f"{r['finite']})"
            )
    return "\n".join(lines)


def check(model: str, data: Path, iterations: int, train_steps: int) -> dict:
    """Every table (module text) as one JSON-ready dict."""
    reader = open_dataset(data, "kitti-raw")
    frames = [reader.read(i) for i in reader.frame_ids()]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else NO_CUDA
    return {
        "model": model,
        "machine": machine(),
        "gpu": gpu,
        "precision": precision_rows(model, frames, iterations),
        "situations": situation_rows(model, frames, iterations),
        "prefill": prefill_rows(frames, iterations),
        "training": training_rows(model, train_steps),
    }


def main(argv: "list[str] | None" = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="guided")
    p.add_argument("--data", default=str(SAMPLE), help="a KITTI raw drive")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--train-steps", type=int, default=30, help="timed steps on the GPU")
    p.add_argument("--json", default=None, help="also write the tables as JSON here")
    args = p.parse_args(argv)
    configure_process(1)  # one inference thread on the CPU rows, as the Speed page's tables
    result = check(args.model, Path(args.data), args.iterations, args.train_steps)
    print(format_tables(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
