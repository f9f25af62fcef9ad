"""Per-stage benchmark on real frames: message decoding, projection, completion, back-projection,
message encoding and end to end, with median / p90 / p99 after warm-up; and, in the same run,
the project's projection and cloud decoding against straightforward references (a numpy
sort-based z-buffer, a per-point Python decoder). CUDA is synchronised before each timer read.
"""

from __future__ import annotations

import platform
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.completion import DepthCompleter
from ..core.geometry import project_points
from ..core.pipeline import process_frame
from ..core.settings import BACKENDS, DEFAULTS
from ..core.timing import Stopwatch
from ..data.datasets import Frame, open_dataset
from ..msgs.convert import pointcloud2_to_xyz
from .bench_frames import bench_frames, frame_messages
from .bench_motion import bench_motion
from .bench_scaling import completion_paths, scaling_image, scaling_models, scaling_points


def numpy_zbuffer(
    points: np.ndarray, p: np.ndarray, width: int, height: int, min_depth: float, max_depth: float
) -> np.ndarray:
    """Reference projection: P (3, 4) @ [x y z 1], then sort by depth and keep the first per
    pixel."""
    h = np.c_[points.astype(np.float64), np.ones(len(points))] @ p.T
    z = h[:, 2]
    ok = (z >= min_depth) & (z <= max_depth)
    u = np.floor(h[ok, 0] / z[ok] + 0.5).astype(np.int64)
    v = np.floor(h[ok, 1] / z[ok] + 0.5).astype(np.int64)
    z = z[ok]
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    idx, z = v[inside] * width + u[inside], z[inside]
    order = np.lexsort((z, idx))
    idx, z = idx[order], z[order]
    first = np.r_[True, idx[1:] != idx[:-1]]
    depth = np.zeros(width * height, np.float32)
    depth[idx[first]] = z[first]
    return depth.reshape(height, width)


def python_cloud_decoder(msg) -> np.ndarray:
    """Reference decoding: one struct.unpack_from per point (x, y, z float32 little-endian)."""
    offsets = {f.name: f.offset for f in msg.fields}
    data = bytes(msg.data)
    out = []
    for i in range(msg.width * msg.height):
        base = i * msg.point_step
        out.append([struct.unpack_from("<f", data, base + offsets[n])[0] for n in ("x", "y", "z")])
    return np.asarray(out, np.float32)


def bench_references(frame: Frame, repeats: int = 5) -> dict[str, dict[str, Any]]:
    """The project's projection and cloud decoding against the references, same frame, same
    process."""
    p = frame.camera.P @ frame.t_cam_from_lidar
    lo, hi = DEFAULTS["min_depth"], DEFAULTS["max_depth"]
    pts_t = torch.from_numpy(frame.points)
    cam, w, h = frame.camera, frame.camera.width, frame.camera.height
    watch = Stopwatch()
    for _ in range(repeats):
        watch.time("project", project_points, pts_t, cam, frame.t_cam_from_lidar, lo, hi)
        watch.time("project_reference", numpy_zbuffer, frame.points, p, w, h, lo, hi)
    cloud = frame_messages(frame)[0]
    watch.time("cloud_msg_to_array", pointcloud2_to_xyz, cloud)
    watch.time("cloud_msg_to_array_reference", python_cloud_decoder, cloud)
    med = {k: float(np.median(v)) for k, v in watch.samples.items()}
    return {
        "project": {
            "project_ms": med["project"],
            "reference_ms": med["project_reference"],
            "reference": "numpy sort-based z-buffer",
        },
        "cloud_msg_to_array": {
            "project_ms": med["cloud_msg_to_array"],
            "reference_ms": med["cloud_msg_to_array_reference"],
            "reference": "per-point struct.unpack_from",
        },
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads"


def busy_neighbour(seconds: float) -> subprocess.Popen:
    """Another process keeping one core busy for at most ``seconds`` (a robot's CPU is never
    idle); the caller kills it when done."""
    spin = (
        f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass"
    )
    return subprocess.Popen([sys.executable, "-c", spin])


def bench_busy(
    frames: list[Frame],
    completer: DepthCompleter,
    iterations: int,
    warmup: int,
    tick: "Callable[[], object] | None" = None,
) -> dict:
    """End to end on the idle machine and with a busy neighbour (one other process spinning on
    one core), same frames, same settings; ``p90_ratio`` = busy p90 / idle p90."""
    idle = bench_frames(frames, completer, iterations, warmup, tick)["end_to_end"]
    spinner = busy_neighbour(600)
    try:
        time.sleep(0.2)
        busy = bench_frames(frames, completer, iterations, warmup, tick)["end_to_end"]
    finally:
        spinner.kill()
        spinner.wait()
    return {"idle": idle, "busy": busy, "p90_ratio": busy["p90_ms"] / idle["p90_ms"]}


def depth_against(
    frames: list[Frame], completer: DepthCompleter, reference: "list[np.ndarray] | None" = None
) -> tuple[list[np.ndarray], float, float]:
    """Each frame's dense depth (H, W) metres through the pipeline with ``completer``, and
    against ``reference`` (the same frames' depths; default: these) the largest |difference|
    (m) where both give a depth and the mean share of the reference's pixels given one."""
    depths = [
        process_frame(f.points, f.camera, f.t_cam_from_lidar, completer, f.rgb).dense_depth
        for f in frames
    ]
    reference = depths if reference is None else reference
    both = [(a > 0) & (b > 0) for a, b in zip(depths, reference)]
    diff = max(
        float(np.abs(a - b)[m].max(initial=0.0)) for a, b, m in zip(depths, reference, both)
    )
    cover = float(np.mean([m.sum() / max((b > 0).sum(), 1) for m, b in zip(both, reference)]))
    return depths, diff, cover


def bench_backends(
    frames: list[Frame],
    completer: DepthCompleter,
    iterations: int,
    warmup: int,
    tick: "Callable[[], object] | None" = None,
) -> dict[str, dict]:
    """End to end with each backend (core.backends) of ``completer``'s network, same frames,
    same settings, and against torch's depth (``depth_against``) the largest |difference| (m)
    and the share of its pixels covered; a backend this machine cannot run says why."""
    out: dict[str, dict] = {}
    reference = None
    for name in BACKENDS:
        try:
            runner = completer.replace(backend=name)
        except ValueError as exc:
            out[name] = {"unavailable": str(exc)}
            continue
        depths, diff, cover = depth_against(frames, runner, reference)
        reference = depths if reference is None else reference
        out[name] = {
            **bench_frames(frames, runner, iterations, warmup, tick)["end_to_end"],
            "max_abs_diff_m": diff,
            "coverage": cover,
            "providers": getattr(runner.runner, "providers", ["torch"]),
        }
    return out


SECTIONS = (
    "stages",
    "paths",
    "compile",
    "backends",
    "busy",
    "motion",
    "points",
    "images",
    "models",
)
DEFAULT_SECTIONS = ("stages", "paths", "backends", "busy", "motion")  # a minute on 2 CPU cores
MODELS = (
    "guided",
    "sparseconv",
    "multiscale",
    "classic",
    "classic-full",
    "classic-multiscale",
    "classic-refined",
    "nearest",
)


def run(
    data: "str | Path",
    fmt: str,
    model: str,
    device: str,
    iterations: int,
    warmup: int,
    inference_scale: float = 1.0,
    precision: str = "fp32",
    sections: tuple[str, ...] = DEFAULT_SECTIONS,
    repeats: int = 3,
    progress: "Callable[[str, int], Callable[[], object]] | None" = None,
    backend: str = "auto",
) -> dict:
    """The benchmark's report: ``stages`` (per-stage table of ``model`` as configured, with the
    references), ``busy`` (end to end idle and with a busy neighbour), and the bench_scaling
    sections: ``paths`` (a network's completion paths side by side; ``compile`` adds the
    torch.compile paths, a minute of compiling), ``backends`` (end to end with each backend),
    ``motion`` (what motion compensation adds: lab/bench_motion.py), ``points``, ``images``
    and ``models`` (scaling tables, ``repeats`` runs each).
    ``progress(desc, total)`` gives a callable ticked once per timed pass of the stages, busy
    and backends sections; ``backend`` is the configured one's (core.backends)."""

    def bar(desc: str, total: int) -> "Callable[[], object] | None":
        return progress(desc, total) if progress is not None else None

    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(
            f"unknown bench section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}"
        )
    reader = open_dataset(data, fmt)
    ids = reader.frame_ids()[: max(1, min(iterations, len(reader.frame_ids())))]
    frames = [reader.read(i) for i in ids]
    completer = DepthCompleter(
        model, device, inference_scale=inference_scale, precision=precision, backend=backend
    )
    dev = str(completer.device)
    if completer.device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(completer.device)})"
    report = {
        "device": dev,
        "machine": machine(),
        "model": completer.description,
        "data": f"{fmt} {data}",
        "frames": len(frames),
        "iterations": iterations,
    }
    network = completer.model is not None
    for name, work in section_runs(
        frames, completer, iterations, warmup, repeats, sections, bar, data, fmt
    ).items():
        if name in sections and (network or name not in ("paths", "backends")):
            report.update(work())
    return report


def section_runs(
    frames: list[Frame],
    completer: DepthCompleter,
    iterations: int,
    warmup: int,
    repeats: int,
    sections: tuple[str, ...],
    bar: Callable[[str, int], "Callable[[], object] | None"],
    data: "str | Path",
    fmt: str,
) -> dict[str, Callable[[], dict]]:
    """Each section of the report as a function that measures it, in the report's order."""
    source = (str(data), fmt, frames[0].name)
    few = min(iterations, 20)
    return {
        "stages": lambda: stage_sections(frames, completer, iterations, warmup, bar),
        "busy": lambda: {
            "busy": bench_busy(frames, completer, few, warmup, bar("busy", 2 * (warmup + few)))
        },
        "paths": lambda: {
            "paths": completion_paths(
                frames[:5], completer, repeats, compile_paths="compile" in sections
            )
        },
        "backends": lambda: {
            "backends": bench_backends(
                frames, completer, few, warmup, bar("backends", len(BACKENDS) * (warmup + few))
            )
        },
        "motion": lambda: {
            "motion": bench_motion(
                frames, completer, few, warmup, bar("motion", 2 * (warmup + few))
            )
        },
        "points": lambda: {
            "points": scaling_points(
                frames[0], completer, (30_000, 120_000, 500_000, 2_000_000), repeats, source
            )
        },
        "images": lambda: {"images": scaling_image(frames[0], completer, repeats, source)},
        "models": lambda: {
            "models": scaling_models(frames[0], completer.device, MODELS, repeats, source)
        },
    }


def stage_sections(
    frames: list[Frame],
    completer: DepthCompleter,
    iterations: int,
    warmup: int,
    bar: Callable[[str, int], "Callable[[], object] | None"],
) -> dict:
    """The ``stages`` section: the per-stage table, end to end, and the references."""
    stages = bench_frames(
        frames, completer, iterations, warmup, bar("stages", warmup + iterations)
    )
    return {
        "stages": stages,
        "end_to_end": stages.pop("end_to_end"),
        "references": bench_references(frames[0]),
    }


# the scaling sections' tables: title and columns (key, header, format) besides peak memory
SCALING_TABLES = {
    "points": (
        "points (the frame's sweep repeated, 1 cm jitter):",
        [
            ("points", "points", "d"),
            ("cloud_decode_ms", "decode ms", ".2f"),
            ("project_ms", "project ms", ".2f"),
            ("pipeline_ms", "pipeline ms", ".1f"),
        ],
    ),
    "images": (
        "image size (the pipeline with a colour image of that size):",
        [
            ("image", "image", "<40"),
            ("complete_ms", "complete ms", ".1f"),
            ("pipeline_ms", "pipeline ms", ".1f"),
            ("pipeline_p90_ms", "p90 ms", ".1f"),
        ],
    ),
    "models": (
        "models (shipped weights):",
        [
            ("model", "model", "<10"),
            ("parameters", "params", "d"),
            ("complete_ms", "complete ms", ".1f"),
            ("pipeline_ms", "pipeline ms", ".1f"),
            ("pipeline_p90_ms", "p90 ms", ".1f"),
        ],
    ),
}


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    """Rows as text: columns are (key, header, format); a row with ``unavailable`` says why."""
    out = ["  " + " ".join(f"{h:>{max(len(h), 8)}}" for _, h, _ in columns)]
    for row in rows:
        cells = []
        for key, h, fmt in columns:
            value = row.get(key, "")
            cells.append(f"{format(value, fmt) if value != '' else '-':>{max(len(h), 8)}}")
        out.append(
            "  "
            + " ".join(cells)
            + (f"  unavailable: {row['unavailable']}" if "unavailable" in row else "")
        )
    return out


def _speed_row(name: str, s: dict, width: int, base_ms: float, tail: Callable[[dict], str]) -> str:
    """A side-by-side row: ``name``, its median and p90 ms, its speed-up against ``base_ms``
    and ``tail(s)``; or why it is unavailable."""
    if "unavailable" in s:
        return f"  {name:<{width}} unavailable: {s['unavailable']}"
    return (
        f"  {name:<{width}} {s['median_ms']:8.1f} ms  p90 {s['p90_ms']:8.1f}  "
        f"x{base_ms / s['median_ms']:5.2f}  {tail(s)}"
    )


def _path_tail(s: dict) -> str:
    return f"|diff| {s['mean_abs_diff_m'] * 1000:7.1f} mm  coverage {s['coverage_of_eager']:6.1%}"


def _backend_tail(s: dict) -> str:
    return (
        f"max |diff| {s['max_abs_diff_m'] * 1000:7.3f} mm  coverage {s['coverage']:6.1%}  "
        f"({', '.join(s['providers'])})"
    )


def motion_line(m: dict) -> str:
    """The motion section in one line: what carrying each point through odom adds to a frame,
    the stages it adds to and the whole frame, medians."""
    static, moving = m["static"], m["moving"]
    place = (
        moving["camera_and_extrinsic"]["median_ms"] - static["camera_and_extrinsic"]["median_ms"]
    )
    deskew = moving["deskew"]["median_ms"]
    whole = (moving["end_to_end"]["median_ms"], static["end_to_end"]["median_ms"])
    return (
        f"motion compensation (fixed_frame_id, 128 poses a sweep): +{place + deskew:.2f} ms a "
        f"frame (point times and TF +{place:.2f}, deskew {deskew:.2f}); end to end "
        f"{whole[0]:.1f} ms against {whole[1]:.1f}"
    )


def format_report(r: dict) -> str:
    lines = [
        f"{r['model']}; device {r['device']}; {r['machine']}; {r['data']}, {r['iterations']} "
        "iterations "
        f"over {r['frames']} frames after warm-up"
    ]
    if "stages" in r:
        lines.append(f"{'stage':<20} {'median ms':>10} {'p90 ms':>8} {'p99 ms':>8}")
        for stage, s in list(r["stages"].items()) + [("end_to_end", r["end_to_end"])]:
            lines.append(
                f"{stage:<20} {s['median_ms']:10.2f} {s['p90_ms']:8.2f} {s['p99_ms']:8.2f}"
            )
        lines.append("side by side, same frame:")
        for stage, s in r["references"].items():
            lines.append(
                f"  {stage:<18} project {s['project_ms']:8.2f} ms  vs {s['reference']} "
                f"{s['reference_ms']:9.2f} ms  "
                f"({s['reference_ms'] / max(s['project_ms'], 1e-9):.1f}x)"
            )
    if "busy" in r:
        b = r["busy"]
        lines.append(
            f"end to end, busy neighbour (one other process spinning on one core): median / p90 "
            f"{b['busy']['median_ms']:.1f} / {b['busy']['p90_ms']:.1f} ms against idle "
            f"{b['idle']['median_ms']:.1f} / {b['idle']['p90_ms']:.1f} ms "
            f"(p90 x{b['p90_ratio']:.2f})"
        )
    if "paths" in r:
        eager = next(iter(r["paths"].values())).get("median_ms")
        lines.append(
            "completion paths, same frames (speed-up against the first row; |diff| against its "
            "depth):"
        )
        for name, s in r["paths"].items():
            lines.append(_speed_row(name, s, 40, eager, _path_tail))
    if "backends" in r:
        lines.append(
            "backends, end to end, same frames (speed-up against torch; max |depth - torch's|):"
        )
        torch_ms = r["backends"]["torch"]["median_ms"]
        for name, s in r["backends"].items():
            lines.append(_speed_row(name, s, 12, torch_ms, _backend_tail))
    if "motion" in r:
        lines.append(motion_line(r["motion"]))
    mem = [("host_peak_rss_mb", "peak RSS MB", ".0f"), ("cuda_max_allocated_mb", "CUDA MB", ".0f")]
    for key, (title, columns) in SCALING_TABLES.items():
        if key in r:
            lines.append(title)
            lines += _table(r[key], [*columns, *mem])
    return "\n".join(lines)
