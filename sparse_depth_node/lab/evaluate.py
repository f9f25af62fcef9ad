"""Evaluation without dense ground truth: hold LiDAR points out and score the completion there.

Protocols:
- ``random:K``: a seeded random fraction K of the projected LiDAR pixels is the input, the
  rest the target.
- ``lines:K``: every K-th laser ring is the input (e.g. 64 -> 16 lines with K = 4), the pixels
  of the other rings the target. Rings come from the cloud's ring field, else from the scan
  order (a new ring starts where the azimuth wraps, as KITTI stores HDL-64E sweeps).
- density sweep: a fixed seeded 20 % of the pixels is the target; of the other 80 % a fraction
  D is the input, D from 5 % to 100 % (the paper's density experiment on our data).
- ``accumulated:N``: the whole sweep is the input; the target is the returns of the sweeps up to
  N frames each side of a sequence, moved into the frame and kept where its own returns vouch
  for them (accumulate.py): measurements between the frame's own returns.

Metrics are the KITTI devkit's, per image then averaged (``metrics.py``); pixels without an
estimate are reported as coverage, not filled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.completion import DepthCompleter, image_tensor
from ..core.geometry import project_points
from ..core.settings import DEFAULTS
from ..core.timing import Stopwatch
from ..data.datasets import Frame
from .metrics import edge_mask, finite_mean, frame_errors, mean_errors, striping
from .uncertainty import ece, good, sparsification

MIN_DEPTH, MAX_DEPTH = DEFAULTS["min_depth"], DEFAULTS["max_depth"]


def rings_from_scan_order(points: np.ndarray, jump_deg: float = 5.0) -> np.ndarray:
    """Laser ring per point of a sweep stored ring after ring (as KITTI stores HDL-64E scans).

    A laser's run starts where the sweep's first point lies (KITTI's: facing forward, where the
    camera is triggered) and turns one way; so the azimuth is measured from the first point in
    the direction of rotation, and a new ring starts where it falls back by more than
    ``jump_deg``: the start of the next laser's run, or the return to the sector's start in a
    cloud cropped to the camera's view. (The wrap at +-180 degrees lies in the middle of a run,
    behind the sensor: split there, KITTI's rings would be two lasers each, meeting in the
    middle of the image.)
    """
    az = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    if len(az) < 2:
        return np.zeros(len(points), np.int32)
    step = (np.diff(az) + 180.0) % 360.0 - 180.0  # the turn between neighbours, wraps undone
    direction = np.sign(np.median(step)) or 1.0
    # degrees turned since half a point's spacing before the first point: each run's first
    # point lies that far past it, give or take float rounding, not a hair before
    start = az[0] - direction * abs(np.median(step)) / 2
    turned = ((az - start) * direction) % 360.0
    starts = np.r_[False, np.diff(turned) < -jump_deg]
    return np.cumsum(starts).astype(np.int32)


def frame_rings(frame: Frame) -> np.ndarray:
    """The frame's ring per point: its ring field, else the scan-order rings; ValueError when
    neither gives rings (a sensor that does not scan ring by ring, such as DDAD's)."""
    if frame.ring is not None:
        return frame.ring
    rings = rings_from_scan_order(frame.points)
    if not 8 <= rings.max() + 1 <= 260:
        raise ValueError(
            f"frame {frame.name}: no ring field and the scan order gives {rings.max() + 1} rings; "
            "the lines protocol needs a ring-by-ring spinning LiDAR"
        )
    return rings


@dataclass
class Split:
    """Input and target of one frame, (1, 1, H, W) tensors (depth in metres), and the frame's
    image (1, 3, H, W) in [0, 1]."""

    depth: torch.Tensor
    input_depth: torch.Tensor
    input_mask: torch.Tensor
    target_mask: torch.Tensor
    rgb: torch.Tensor


def project_lidar(frame: Frame, points: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse depth and mask (1, 1, H, W) of ``points`` of ``frame`` over the evaluation's
    depth range."""
    return project_points(
        torch.from_numpy(np.ascontiguousarray(points)),
        frame.camera,
        frame.t_cam_from_lidar,
        MIN_DEPTH,
        MAX_DEPTH,
    )


def split_frame(frame: Frame, protocol: str, seed: int) -> Split:
    """Input/target split of ``frame`` under ``protocol`` (``random:K`` or ``lines:K``), seeded."""
    kind, _, value = protocol.partition(":")
    depth, mask = project_lidar(frame, frame.points)
    if kind == "random":
        keep = float(value)
        if not 0.0 < keep < 1.0:
            raise ValueError(f"random:K needs 0 < K < 1, got {value}")
        gen = torch.Generator().manual_seed(seed)
        take = (torch.rand(mask.shape, generator=gen) < keep) & (mask > 0)
        return Split(
            depth,
            depth * take,
            take.float(),
            ((mask > 0) & ~take).float(),
            image_tensor(frame.rgb),
        )
    if kind == "lines":
        k = int(value)
        if k < 2:
            raise ValueError(f"lines:K needs K >= 2, got {value}")
        kept = frame_rings(frame) % k == 0
        in_depth, in_mask = project_lidar(frame, frame.points[kept])
        target = ((mask > 0) & (in_mask == 0)).float()
        return Split(depth, in_depth, in_mask, target, image_tensor(frame.rgb))
    raise ValueError(f"unknown protocol '{protocol}' (random:K or lines:K)")


def density_split(frame: Frame, density: float, seed: int, target_fraction: float = 0.2) -> Split:
    """A fixed seeded ``target_fraction`` of the pixels as target; ``density`` of the rest as
    input."""
    depth, mask = project_lidar(frame, frame.points)
    gen = torch.Generator().manual_seed(seed)
    r = torch.rand(mask.shape, generator=gen)
    target = (mask > 0) & (r < target_fraction)
    pool_draw = (r - target_fraction) / (1.0 - target_fraction)  # uniform in [0, 1) over the pool
    take = (mask > 0) & ~target & (pool_draw < density)
    return Split(depth, depth * take, take.float(), target.float(), image_tensor(frame.rgb))


def predict(completer: DepthCompleter, split: Split) -> tuple[np.ndarray, np.ndarray, float]:
    """The completion (H, W) metres (0 = no estimate) of the split's input, its confidence
    (H, W) in [0, 1], and its time in ms."""
    watch = Stopwatch(cuda=completer.device.type == "cuda")
    pred, conf = completer.complete(split.input_depth, split.input_mask, split.rgb)
    ms = watch.lap("complete")
    return pred[0, 0].cpu().numpy(), conf[0, 0].cpu().numpy(), ms


def score(completer: DepthCompleter, split: Split) -> tuple[dict[str, float], float]:
    """Errors of one completion at the split's target pixels, and its time in ms."""
    pred, _, ms = predict(completer, split)
    return frame_errors(pred, split.depth[0, 0].numpy(), split.target_mask[0, 0].numpy()), ms


def evaluate(
    frames: list[Frame],
    methods: dict[str, DepthCompleter],
    protocol: str,
    seed: int,
    tick: "Callable[[], object] | None" = None,
    show: "Callable[[Frame, np.ndarray, dict[str, np.ndarray]], object] | None" = None,
    splits: "list[Split] | None" = None,
) -> dict:
    """The JSON-ready result: {"protocol", "frames", "seed", "common_coverage", "methods": {NAME:
    metrics + ms_per_frame + "common": the metrics on the target pixels that every method covers
    + "edge": the metrics on the targets near a strong image edge (metrics.edge_mask) +
    "striping" (metrics.striping, mean over frames)}, "paired": {NAME: {"first", "this": the
    metrics of the first method and of NAME on the targets both cover, "share": their share of
    the targets}} for every method after the first, "confidence": {NAME: how its confidence
    serves, ``confidence_report``}}.

    The "common" metrics compare methods on the same pixels, whatever each one's coverage; the
    "paired" ones compare the first method with each other on the pixels the two cover.
    ``tick`` is called after each frame, ``show`` with each frame, its input depth (H, W)
    metres and every method's prediction {NAME: (H, W) metres}. ``splits``: the frames'
    input/target splits, made elsewhere (default: split_frame under ``protocol``, seed + i)."""
    scores = Scores(list(methods))
    for i, frame in enumerate(frames):
        split = splits[i] if splits is not None else split_frame(frame, protocol, seed + i)
        preds, confs, ms = {}, {}, {}
        for name, completer in methods.items():
            preds[name], confs[name], ms[name] = predict(completer, split)
        scores.add(frame, split, preds, confs, ms)
        if show is not None:
            show(frame, split.input_depth[0, 0].numpy(), preds)
        if tick is not None:
            tick()
    return scores.result(protocol, seed)


class Scores:
    """What ``evaluate`` gathers frame by frame for each method, and its result."""

    def __init__(self, methods: list[str]) -> None:
        self.methods, self.first = methods, methods[0]
        self.per: dict[str, list] = {m: [] for m in methods}
        self.common: dict[str, list] = {m: [] for m in methods}
        self.edge: dict[str, list] = {m: [] for m in methods}
        self.stripes: dict[str, list] = {m: [] for m in methods}
        self.times: dict[str, list] = {m: [] for m in methods}
        self.errors_mm: dict[str, list] = {m: [] for m in methods}
        self.truths_mm: dict[str, list] = {m: [] for m in methods}
        self.confidences: dict[str, list] = {m: [] for m in methods}
        self.paired: dict[str, dict[str, list[Any]]] = {
            m: {"first": [], "this": [], "share": []} for m in methods[1:]
        }
        self.common_share: list[float] = []
        self.frames = 0

    def add(
        self,
        frame: Frame,
        split: Split,
        preds: dict[str, np.ndarray],
        confs: dict[str, np.ndarray],
        ms: dict[str, float],
    ) -> None:
        """One frame: each method's prediction and confidence (H, W) and its time."""
        depth, target = split.depth[0, 0].numpy(), split.target_mask[0, 0].numpy() > 0
        measured = target & (depth > 0)
        near_edge = target & edge_mask(frame.rgb)
        for name, pred in preds.items():
            self.per[name].append(frame_errors(pred, depth, target))
            self.edge[name].append(frame_errors(pred, depth, near_edge))
            self.stripes[name].append(striping(pred))
            self.times[name].append(ms[name])
            covered = measured & (pred > 0)
            self.errors_mm[name].append((pred[covered].astype(np.float64) - depth[covered]) * 1e3)
            self.truths_mm[name].append(depth[covered].astype(np.float64) * 1e3)
            self.confidences[name].append(confs[name][covered].astype(np.float64))
        common = target & np.logical_and.reduce([p > 0 for p in preds.values()])
        self.common_share.append(common.sum() / max(int(measured.sum()), 1))
        for name, pred in preds.items():
            self.common[name].append(frame_errors(pred, depth, common))
        for name, rows in self.paired.items():
            both = measured & (preds[self.first] > 0) & (preds[name] > 0)
            rows["first"].append(frame_errors(preds[self.first], depth, both))
            rows["this"].append(frame_errors(preds[name], depth, both))
            rows["share"].append(both.sum() / max(int(measured.sum()), 1))
        self.frames += 1

    def result(self, protocol: str, seed: int) -> dict:
        """The JSON-ready result ``evaluate`` describes."""
        out = {
            "protocol": protocol,
            "frames": self.frames,
            "seed": seed,
            "common_coverage": float(np.mean(self.common_share)),
            "methods": {
                m: {
                    **mean_errors(self.per[m]),
                    "ms_per_frame": float(np.median(self.times[m])),
                    "common": mean_errors(self.common[m]),
                    "edge": mean_errors(self.edge[m]),
                    "striping": finite_mean(self.stripes[m]),
                }
                for m in self.methods
            },
            "paired": {
                m: {
                    "first": mean_errors(rows["first"]),
                    "this": mean_errors(rows["this"]),
                    "share": float(np.mean(rows["share"])),
                }
                for m, rows in self.paired.items()
            },
        }
        out["confidence"] = {
            m: confidence_report(
                np.concatenate(self.errors_mm[m]),
                np.concatenate(self.truths_mm[m]),
                np.concatenate(self.confidences[m]),
                seed,
            )
            for m in self.methods
        }
        return out


def density_sweep(
    frames: list[Frame],
    methods: dict[str, DepthCompleter],
    densities: list[float],
    seed: int,
    tick: "Callable[[], object] | None" = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """{density: {method: mean errors}} with one fixed target set per frame; ``tick`` is called
    after each density."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for d in densities:
        per: dict[str, list[Any]] = {name: [] for name in methods}
        for i, frame in enumerate(frames):
            split = density_split(frame, d, seed + i)
            for name, completer in methods.items():
                per[name].append(score(completer, split)[0])
        out[f"{d:g}"] = {name: mean_errors(v) for name, v in per.items()}
        if tick is not None:
            tick()
    return out


CONFIDENCE_THRESHOLDS = (0.25, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def confidence_report(
    err: np.ndarray, truth: np.ndarray, conf: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """How a method's confidence ``conf`` serves at pixels with errors ``err`` and true depths
    ``truth`` (mm), pooled: "ece", "brier" (the mean squared gap between the confidence and the
    outcome, 1 good or 0 not: calibration and sharpness in one proper score), "binary"
    (whether it takes two values at most: a mask, not a probability), "rmse" and "mae"
    sparsification ({"ause", "aurg", "curve", "oracle"}), "fractions", and "thresholds"
    (``confidence_curve`` at CONFIDENCE_THRESHOLDS)."""
    outcome = good(err, truth)
    return {
        "ece": ece(conf, outcome),
        "brier": float(np.mean((conf - outcome) ** 2)) if conf.size else float("nan"),
        "binary": bool(np.unique(conf[: 10**6]).size <= 2),
        **sparsification(err, conf, seed),
        "thresholds": confidence_curve(err, conf, CONFIDENCE_THRESHOLDS),
    }


def confidence_curve(
    err: np.ndarray, conf: np.ndarray, thresholds: tuple[float, ...]
) -> list[dict]:
    """What a confidence threshold buys: for each threshold t, the share of the covered target
    pixels whose confidence ``conf`` is >= t, and the RMSE and MAE (mm) of their errors ``err``
    (mm) and of the rest's, pooled over pixels."""

    def rmse_mae(e: np.ndarray) -> tuple[float, float]:
        return (
            (float(np.sqrt(np.mean(e**2))), float(np.mean(np.abs(e))))
            if e.size
            else (float("nan"),) * 2
        )

    rows = []
    for t in thresholds:
        kept = conf >= t
        (rk, mk), (rd, md) = rmse_mae(err[kept]), rmse_mae(err[~kept])
        rows.append(
            {
                "threshold": t,
                "kept": float(kept.mean()) if err.size else float("nan"),
                "rmse_kept_mm": rk,
                "mae_kept_mm": mk,
                "rmse_dropped_mm": rd,
                "mae_dropped_mm": md,
            }
        )
    return rows


def format_confidence(result: dict, thresholds: bool = True) -> str:
    """Per method: its confidence's calibration (ECE) and order (AUSE, AURG for RMSE and MAE);
    with ``thresholds`` then what each threshold keeps and the error of the pixels kept and
    dropped."""
    lines = [
        "confidence: ECE of 'within 5 %'; sparsification AUSE / AURG for RMSE and MAE "
        "(AURG >= AUSE: at least half of what the oracle's order recovers)",
        f"{'method':<28} {'ECE':>6} {'AUSE RMSE':>10} {'AURG RMSE':>10} {'AUSE MAE':>9} "
        f"{'AURG MAE':>9}",
    ]
    for name, c in result["confidence"].items():
        lines.append(
            f"{name:<28} {c['ece']:6.3f} {c['rmse']['ause']:10.3f} {c['rmse']['aurg']:10.3f} "
            f"{c['mae']['ause']:9.3f} {c['mae']['aurg']:9.3f}"
            + ("  (a mask: two values)" if c["binary"] else "")
        )
    if thresholds:
        lines += [format_thresholds(n, c["thresholds"]) for n, c in result["confidence"].items()]
    return "\n".join(lines)


def format_thresholds(name: str, rows: list[dict]) -> str:
    lines = [
        f"{name}: confidence threshold against the error of the pixels kept and dropped",
        f"{'threshold':>9} {'kept':>7} {'RMSE kept':>10} {'MAE kept':>9} {'RMSE dropped':>13} "
        f"{'MAE dropped':>12}",
    ]
    for r in rows:
        lines.append(
            f"{r['threshold']:9.2f} {100 * r['kept']:6.1f}% {r['rmse_kept_mm']:10.0f} "
            f"{r['mae_kept_mm']:9.0f} "
            f"{r['rmse_dropped_mm']:13.0f} {r['mae_dropped_mm']:12.0f}"
        )
    return "\n".join(lines)


def format_table(result: dict) -> str:
    """One row per method: the four metrics, coverage and ms per frame."""
    lines = [
        f"protocol {result['protocol']}, {result['frames']} frames, seed {result['seed']}; "
        f"'common': on the {100 * result['common_coverage']:.1f} % of targets every method covers",
        f"{'method':<28} {'RMSE mm':>9} {'MAE mm':>8} {'iRMSE 1/km':>11} {'iMAE 1/km':>10} "
        f"{'coverage':>9} "
        f"{'ms/frame':>9} {'common RMSE':>12} {'common MAE':>11} {'edge RMSE':>10} "
        f"{'edge MAE':>9} {'striping':>9}",
    ]
    for name, m in result["methods"].items():
        lines.append(
            f"{name:<28} {m['rmse_mm']:9.0f} {m['mae_mm']:8.0f} {m['irmse_per_km']:11.2f} "
            f"{m['imae_per_km']:10.2f} {100 * m['coverage']:8.1f}% {m['ms_per_frame']:9.1f} "
            f"{m['common']['rmse_mm']:12.0f} {m['common']['mae_mm']:11.0f} "
            f"{m['edge']['rmse_mm']:10.0f} {m['edge']['mae_mm']:9.0f} {m['striping']:9.2f}"
        )
    return "\n".join(lines)


def format_paired(result: dict) -> str:
    """The first method against each other one on the targets both cover: RMSE and MAE of
    both, and the first's as a ratio of the other's."""
    first = next(iter(result["methods"]))
    lines = [
        f"{first} against each method on the targets both cover",
        f"{'method':<28} {'share':>6} {'RMSE mm':>8} {first + ' RMSE':>16} {'ratio':>6} "
        f"{'MAE mm':>7} {first + ' MAE':>15} {'ratio':>6}",
    ]
    for name, p in result["paired"].items():
        a, b = p["first"], p["this"]
        lines.append(
            f"{name:<28} {100 * p['share']:5.1f}% {b['rmse_mm']:8.0f} {a['rmse_mm']:16.0f} "
            f"{a['rmse_mm'] / b['rmse_mm']:6.2f} {b['mae_mm']:7.0f} {a['mae_mm']:15.0f} "
            f"{a['mae_mm'] / b['mae_mm']:6.2f}"
        )
    return "\n".join(lines)


def format_sweep(sweep: dict) -> str:
    """RMSE (mm) per input density (rows) and method (columns)."""
    methods = list(next(iter(sweep.values())))
    lines = [f"{'density':>8} " + " ".join(f"{m:>14}" for m in methods)]
    for d, row in sweep.items():
        lines.append(
            f"{100 * float(d):7.0f}% " + " ".join(f"{row[m]['rmse_mm']:14.0f}" for m in methods)
        )
    return "\n".join(lines)
