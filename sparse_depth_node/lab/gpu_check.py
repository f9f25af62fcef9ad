"""The GPU check (scripts/gpu_check.sh): one network on the bundled frames with every device,
backend and precision this machine can run, in one table: the completion alone and the node's
frame path end to end (median ms), the host <-> device copies of that path and the classical
prefill with its copies (what keeping OpenCV's fill on the host costs on a GPU), and the largest
|depth - the CPU's torch depth| with the share of the CPU's pixels each row covers. A row the
machine cannot run says why. Runs on a CPU-only machine too (the CUDA rows say so), which is how
it is tested before a GPU is lent.

    python -m sparse_depth_node.lab.gpu_check [--model guided] [--iterations 20]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..core.completion import DepthCompleter
from ..core.runtime import configure_process
from ..data.datasets import open_dataset
from .bench import bench_frames, depth_against, machine
from .bench_scaling import completion_inputs, time_ms

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "kitti_raw_2011_09_26"
# (device, backend, precision), the first the reference of every other
ROWS = (
    ("cpu", "torch", "fp32"),
    ("cpu", "onnxruntime", "fp32"),
    ("cuda", "torch", "fp32"),
    ("cuda", "torch", "fp16"),
    ("cuda", "onnxruntime", "fp32"),
    ("cuda", "tensorrt", "fp32"),
    ("cuda", "tensorrt", "fp16"),
)


def check(model: str, data: Path, iterations: int, warmup: int = 3) -> list[dict]:
    """One row per ROWS entry: ``complete_ms``, ``end_to_end_ms``, ``copies_ms`` (to_device +
    to_host), ``max_abs_diff_m`` and ``coverage`` against the first row, or ``unavailable``."""
    reader = open_dataset(data, "kitti-raw")
    frames = [reader.read(i) for i in reader.frame_ids()]
    rows, reference = [], None
    for device, backend, precision in ROWS:
        row = {"device": device, "backend": backend, "precision": precision}
        rows.append(row)
        if device == "cuda" and not torch.cuda.is_available():
            row["unavailable"] = "no CUDA device"
            continue
        try:
            completer = DepthCompleter(model, device, precision=precision, backend=backend)
        except ValueError as exc:
            row["unavailable"] = str(exc)
            continue
        dense, diff, cover = depth_against(frames, completer, reference)
        reference = dense if reference is None else reference
        inputs = [completion_inputs(f, completer.device) for f in frames]
        with torch.inference_mode():
            complete = [
                time_ms(lambda: completer.complete(d, m, rgb), completer.device, iterations)[0]
                for d, m, rgb in inputs
            ]
            # the classical prefill runs in OpenCV on the host: on CUDA this includes its
            # device -> host -> device copies (the CPU rows: the fill alone)
            net = completer.model
            prefill = [
                time_ms(lambda: net.prefill(d, m), completer.device, iterations)[0]
                for d, m, _ in inputs
                if net.has_prefill
            ]
        stages = bench_frames(frames, completer, iterations, warmup)
        row.update(
            complete_ms=float(np.median(complete)),
            end_to_end_ms=stages["end_to_end"]["median_ms"],
            copies_ms=stages["to_device"]["median_ms"] + stages["to_host"]["median_ms"],
            prefill_ms=float(np.median(prefill)) if prefill else float("nan"),
            max_abs_diff_m=diff,
            coverage=cover,
            providers=getattr(completer.runner, "providers", ["torch"]),
        )
    return rows


def format_rows(rows: list[dict], model: str) -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    lines = [
        f"{model} on the bundled frames; {machine()}; GPU: {gpu}",
        f"{'device':<6} {'backend':<12} {'prec':<5} {'complete ms':>11} {'end to end ms':>13} "
        f"{'copies ms':>9} {'prefill ms':>10} {'max |diff| mm':>13} {'coverage':>8}",
    ]
    for r in rows:
        head = f"{r['device']:<6} {r['backend']:<12} {r['precision']:<5}"
        if "unavailable" in r:
            lines.append(f"{head} unavailable: {r['unavailable']}")
            continue
        lines.append(
            f"{head} {r['complete_ms']:11.1f} {r['end_to_end_ms']:13.1f} {r['copies_ms']:9.2f} "
            f"{r['prefill_ms']:10.2f} {r['max_abs_diff_m'] * 1000:13.3f} {r['coverage']:8.1%}"
        )
    lines.append(
        "copies: the frame path's to_device + to_host; prefill: the network's classical fill "
        "(OpenCV, on the host: on CUDA with its copies); max |diff| and coverage: against the "
        "first row (the CPU's torch depth)"
    )
    return "\n".join(lines)


def main(argv: "list[str] | None" = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="guided")
    p.add_argument("--data", default=str(SAMPLE), help="a KITTI raw drive")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    configure_process(1)  # one inference thread on the CPU rows, as the README's Speed table
    rows = check(args.model, Path(args.data), args.iterations)
    print(format_rows(rows, args.model))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
