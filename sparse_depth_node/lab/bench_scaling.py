"""Benchmarks beyond the per-stage table: the completion paths side by side (the paper's
equations run eagerly against the project's optimised paths, with the error each adds), and
how time and memory scale with the number of points, the image size and the model.

Every function runs real frames from the data set; times are medians over ``repeats`` after
one warm-up, CUDA synchronised. Peak memory is measured per configuration in a fresh process
(``peak_memory``: the pipeline run twice, then the process's peak RSS and, on CUDA,
``max_memory_allocated``), so that no configuration inherits another's peak.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..bag.io import BagKit
from ..core.camera import PinholeCamera
from ..core.completion import DepthCompleter, image_tensor
from ..core.geometry import project_points
from ..core.models import SparseConv2d, SparseConvNet
from ..core.pipeline import process_frame
from ..core.settings import DEFAULTS
from ..core.timing import Stopwatch, summary
from ..data.datasets import Frame
from ..msgs.convert import fill_cloud_from_array, pointcloud2_to_xyz
from ..msgs.outputs import POINTCLOUD2

DEPTH_RANGE = (DEFAULTS["min_depth"], DEFAULTS["max_depth"])


def paper_forward(
    model: SparseConvNet, depth: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The SparseConvNet's equations as the paper writes them, eagerly, on the whole image:
    conv(m * x) / conv(m, ones) + b and a max-pooled mask, layer by layer (the baseline)."""
    x, m = depth / model.depth_scale, mask
    layers: list[SparseConv2d] = [*model.layers, model.head]
    for i, layer in enumerate(layers):
        k = layer.kernel_size
        num = F.conv2d(x * m, layer.weight, padding=k // 2)
        count = F.conv2d(m, torch.ones(1, 1, k, k, device=m.device, dtype=m.dtype), padding=k // 2)
        x = num / count.clamp(min=1e-4) + layer.bias.view(1, -1, 1, 1)
        m = F.max_pool2d(m, k, stride=1, padding=k // 2)
        if i < len(model.layers):
            x = F.relu(x)
    return torch.where(m > 0, (x * model.depth_scale).clamp(min=0), torch.zeros_like(x)), m


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """This process's peak RSS (MB) and, on CUDA, the peak allocated (MB)."""
    out: dict[str, Any] = {"host_peak_rss_mb": float("nan")}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["host_peak_rss_mb"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def time_ms(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, float, Any]:
    """Median and p90 ms of ``fn()`` over ``repeats`` after one warm-up call, and its last
    result."""
    out = fn()
    watch = Stopwatch(cuda=device.type == "cuda")
    for _ in range(repeats):
        out = watch.time("run", fn)
    t = summary(watch.samples["run"])
    return t["median_ms"], t["p90_ms"], out


def peak_memory(
    source: tuple[str, str, str],
    completer: DepthCompleter,
    points: "int | None" = None,
    camera: str = "1.0x",
) -> dict[str, Any]:
    """Peak memory of the pipeline on frame ``source`` (data folder, format, frame id) with
    ``completer`` rebuilt from its options (the same weights and settings), with ``points``
    synthetic points (None: the frame's own) and ``camera`` "Sx" (scaled) or "1920x1080",
    measured in a fresh Python process."""
    spec = json.dumps(
        {
            "source": list(source),
            "completer": dataclasses.asdict(completer.options),
            "points": points,
            "camera": camera,
        }
    )
    out = subprocess.run(
        [sys.executable, "-m", "sparse_depth_node.lab.bench_scaling", spec],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        return {
            "host_peak_rss_mb": float("nan"),
            "memory_error": out.stderr.strip().splitlines()[-1:],
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


def _camera(frame: Frame, name: str) -> PinholeCamera:
    """ "Sx": the frame's camera scaled by S; "WxH": camera_of_size(W, H)."""
    if name.endswith("x"):
        return frame.camera.scaled(float(name.rstrip("x")))
    width, height = (int(v) for v in name.split("x"))
    return camera_of_size(frame.camera, width, height)


def _peak_memory_main(spec: dict) -> None:
    from ..data.datasets import open_dataset

    data, fmt, frame_id = spec["source"]
    frame = open_dataset(data, fmt).read(frame_id)
    completer = DepthCompleter(**spec["completer"])
    pts = frame.points if spec["points"] is None else synthetic_cloud(frame, spec["points"])
    for _ in range(2):
        cam = _camera(frame, spec["camera"])
        process_frame(pts, cam, frame.t_cam_from_lidar, completer, image_for(frame, cam))
    print(json.dumps(peak_memory_mb(completer.device)))


def completion_inputs(frame: Frame, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The frame's sparse depth, mask and image, the inputs of DepthCompleter.complete."""
    pts = torch.from_numpy(np.ascontiguousarray(frame.points[:, :3], np.float32)).to(device)
    depth, mask = project_points(
        pts, frame.camera, frame.t_cam_from_lidar, DEPTH_RANGE[0], DEPTH_RANGE[1]
    )
    return depth, mask, image_tensor(frame.rgb).to(device)


def completion_paths(
    frames: list[Frame], completer: DepthCompleter, repeats: int, compile_paths: bool = True
) -> dict[str, dict]:
    """The completion paths of ``completer``'s network (its weights, on its device) side by
    side on the same frames: ms per frame (median, p90 over frames x repeats) and the mean
    |depth - eager depth| (m) where both give one, with the fraction of eager's pixels each
    path covers. A path the device cannot run says why. ``compile_paths`` False leaves out the
    torch.compile paths (a minute of compiling on a CPU)."""
    inputs = [completion_inputs(f, completer.device) for f in frames]
    results: dict[str, dict] = {}
    eager_out: list[torch.Tensor] = []
    for name, make in path_makers(completer, compile_paths).items():
        try:
            results[name] = time_path(make(), inputs, completer.device, repeats, eager_out)
        except Exception as exc:  # a path this machine cannot run (no compiler, no bf16 kernels)
            results[name] = {
                "unavailable": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            }
    return results


def path_makers(
    completer: DepthCompleter, compile_paths: bool
) -> "dict[str, Callable[[], DepthCompleter | Callable]]":
    """Each completion path of ``completer``'s network, by name, as a function that builds it:
    a completer, or a callable (depth, mask, rgb) -> (dense, confidence). The first is the
    reference (eager)."""
    device = completer.device
    base = completer.replace(
        precision="fp32", inference_scale=1.0, channels_last=True, backend="torch"
    )
    plain = base.replace(channels_last=False, model=copy.deepcopy(base.model))
    # the network itself takes the image only when it needs one
    image = (lambda rgb: (rgb,)) if base.needs_image else (lambda rgb: ())
    half = "fp16" if device.type == "cuda" else "bf16"
    paths: dict[str, Callable[[], "DepthCompleter | Callable"]] = {}
    network = plain.model
    assert network is not None  # the completion paths of a network
    if isinstance(network, SparseConvNet):
        paper = network
        paths["eager, paper equations, whole image"] = lambda: (
            lambda d, m, rgb: paper_forward(paper, d, m)
        )
    whole = "fused layer, whole image" if paths else "eager, whole image"
    paths[whole] = lambda: lambda d, m, rgb: network(d, m, *image(rgb))
    paths.update(
        {
            "  + support crop": lambda: plain,
            "  + channels-last (default)": lambda: base,
            f"  + {half}": lambda: base.replace(precision=half),
            "  + inference_scale 0.5": lambda: base.replace(inference_scale=0.5),
            f"  + inference_scale 0.5 + {half}": lambda: base.replace(
                inference_scale=0.5, precision=half
            ),
            "  + onnxruntime (exact export)": lambda: base.replace(backend="onnxruntime"),
        }
    )
    if device.type == "cuda":
        paths["  + tensorrt"] = lambda: base.replace(backend="tensorrt")
        paths["  + tensorrt fp16"] = lambda: base.replace(backend="tensorrt", precision="fp16")
    if compile_paths:
        paths["  + torch.compile"] = lambda: base.replace(
            model=torch.compile(copy.deepcopy(base.model), dynamic=True)
        )
        if device.type == "cuda":
            paths["  + torch.compile, CUDA graphs"] = lambda: base.replace(
                model=torch.compile(copy.deepcopy(base.model), mode="reduce-overhead")
            )
    return paths


def time_path(
    runner: "DepthCompleter | Callable",
    inputs: list[tuple[torch.Tensor, ...]],
    device: torch.device,
    repeats: int,
    eager_out: list[torch.Tensor],
) -> dict:
    """One path's times over ``inputs`` and its difference from ``eager_out`` (the first path's
    depths, filled in by the first path timed)."""
    run = runner.complete if isinstance(runner, DepthCompleter) else runner
    samples, diffs, cover = [], [], []
    with torch.inference_mode():
        for i, (d, m, rgb) in enumerate(inputs):
            med, _, out = time_ms(lambda: run(d, m, rgb), device, repeats)
            samples.append(med)
            dense = out[0].float()
            if len(eager_out) <= i:
                eager_out.append(dense)
            ref = eager_out[i]
            both = (dense > 0) & (ref > 0)
            diffs.append(float((dense - ref)[both].abs().mean()) if both.any() else float("nan"))
            cover.append(float(both.sum()) / max(float((ref > 0).sum()), 1.0))
    t = summary(samples)
    return {
        "median_ms": t["median_ms"],
        "p90_ms": t["p90_ms"],
        "mean_abs_diff_m": float(np.nanmean(diffs)),
        "coverage_of_eager": float(np.mean(cover)),
    }


def synthetic_cloud(frame: Frame, n: int, seed: int = 0) -> np.ndarray:
    """``n`` points made from the frame's real sweep: its points repeated, each copy jittered by
    1 cm (so the scene's geometry and the camera's view of it are the real ones)."""
    rng = np.random.default_rng(seed)
    reps = int(np.ceil(n / len(frame.points)))
    pts = np.tile(frame.points[:, :3], (reps, 1))[:n]
    return (pts + rng.normal(0.0, 0.01, pts.shape)).astype(np.float32)


def scaling_points(
    frame: Frame,
    completer: DepthCompleter,
    counts: tuple[int, ...],
    repeats: int,
    source: tuple[str, str, str],
) -> list[dict]:
    """Cloud decoding, projection and the pipeline's end to end versus the number of points;
    ``source`` names ``frame`` (data folder, format, frame id) for the memory measurement."""
    kit = BagKit()
    rows = []
    for n in counts:
        pts = synthetic_cloud(frame, n)
        msg = fill_cloud_from_array(
            kit.new(POINTCLOUD2),
            kit.point_field,
            kit.header(0, "lidar"),
            np.c_[pts, pts[:, 0] * 0],
        )
        decode, _, _ = time_ms(lambda: pointcloud2_to_xyz(msg), completer.device, repeats)
        pts_t = torch.from_numpy(pts).to(completer.device)
        project, _, _ = time_ms(
            lambda: project_points(
                pts_t, frame.camera, frame.t_cam_from_lidar, DEPTH_RANGE[0], DEPTH_RANGE[1]
            ),
            completer.device,
            repeats,
        )
        total, _, _ = time_ms(
            lambda: process_frame(pts, frame.camera, frame.t_cam_from_lidar, completer, frame.rgb),
            completer.device,
            repeats,
        )
        rows.append(
            {
                "points": n,
                "cloud_decode_ms": decode,
                "project_ms": project,
                "pipeline_ms": total,
                **peak_memory(source, completer, points=n),
            }
        )
    return rows


def image_for(frame: Frame, camera: PinholeCamera) -> np.ndarray:
    """The frame's image resized to ``camera``'s size (the input of an image-guided method; its
    content does not change the time)."""
    if (camera.width, camera.height) == (frame.camera.width, frame.camera.height):
        return frame.rgb
    return cv2.resize(frame.rgb, (camera.width, camera.height), interpolation=cv2.INTER_LINEAR)


def camera_of_size(camera: PinholeCamera, width: int = 1920, height: int = 1080) -> PinholeCamera:
    """The camera scaled to ``width`` px wide, its image grown to ``height`` rows about the same
    centre (a taller field of view than the LiDAR's, as a 1080p or 4K camera on the same rig
    would have)."""
    s = camera.scaled(width / camera.width)
    return replace(s, cy=s.cy + (height - s.height) / 2, height=height)


def scaling_image(
    frame: Frame, completer: DepthCompleter, repeats: int, source: tuple[str, str, str]
) -> list[dict]:
    """The pipeline at 0.5x, 1x, 2x the frame's size and 1920 x 1080 with the
    frame's points, then the memory targets: 1920 x 1080 with 300,000 points and 4K (3840 x
    2160) with 2,000,000."""
    rows = []
    configs: list[tuple[str, int | None]] = [
        (n, None) for n in ("0.5x", "1.0x", "2.0x", "1920x1080")
    ]
    configs += [("1920x1080", 300_000), ("3840x2160", 2_000_000)]
    for name, n_points in configs:
        cam = _camera(frame, name)
        pts = frame.points if n_points is None else synthetic_cloud(frame, n_points)
        rgb = image_for(frame, cam)
        total, p90, result = time_ms(
            lambda: process_frame(pts, cam, frame.t_cam_from_lidar, completer, rgb),
            completer.device,
            repeats,
        )
        label = f"{name} ({cam.width}x{cam.height})"
        rows.append(
            {
                "image": label + (f", {n_points:,} points" if n_points else ""),
                "pipeline_ms": total,
                "pipeline_p90_ms": p90,
                "complete_ms": result.timings_ms["complete"],
                **peak_memory(source, completer, points=n_points, camera=name),
            }
        )
    return rows


def scaling_models(
    frame: Frame,
    device: torch.device,
    models: tuple[str, ...],
    repeats: int,
    source: tuple[str, str, str],
) -> list[dict]:
    """The pipeline per completion method, same frame (shipped weights; a network without
    them runs its random initialisation, which takes the same time)."""
    rows = []
    for name in models:
        completer = DepthCompleter(name, str(device), allow_untrained=True)
        params = (
            sum(p.numel() for p in completer.model.parameters())
            if completer.model is not None
            else 0
        )
        total, p90, result = time_ms(
            lambda: process_frame(
                frame.points, frame.camera, frame.t_cam_from_lidar, completer, frame.rgb
            ),
            device,
            repeats,
        )
        rows.append(
            {
                "model": name,
                "parameters": params,
                "pipeline_ms": total,
                "pipeline_p90_ms": p90,
                "complete_ms": result.timings_ms["complete"],
                **peak_memory(source, completer),
            }
        )
    return rows


if __name__ == "__main__":
    _peak_memory_main(json.loads(sys.argv[1]))
