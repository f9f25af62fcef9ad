"""The evaluation that sees the whole image: each method completes the frame's full LiDAR input,
and its depth is judged by how well it predicts other views of the scene (views.py) — the
Monodepth error of the other views warped into the frame with that depth (photometric.py).

Every method is scored on the same pixels: those every method fills, where at least one view's
warp is defined for every method, and that pass Monodepth2's auto-mask (some method's warp
explains the pixel better than the unwarped views do: a pixel that no motion explains — a
moving object, a change of exposure — would score noise for all). Regions:
- ``all``: those pixels;
- ``between``: those without a LiDAR return (what the completion adds);
- ``edges``: the EDGE_SHARE of them with the strongest image gradient (silhouettes).
Sanity rows: the ``sanity`` method's depth x 1.05, x 0.95 and blurred (Gaussian, sigma 3 px,
over the pixels it fills) must score worse than it. ``kept``: the share of LiDAR input pixels
whose output is within 1 % of the input depth. ``striping``: metrics.striping of each method's
depth on the pixels every method fills (a method that fills more, e.g. the sky with vertical
streaks, is not credited for its own extra pixels). ``confidence``: how each method's confidence
orders its pixels between the returns by this error (uncertainty.sparsification of the
photometric error, pooled: AURG > 0 where the pixels it trusts are the ones the other views
agree with; a confidence that holds only on scan lines scores about 0 here).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from ..core.completion import DepthCompleter, image_tensor
from ..data.datasets import Frame
from .evaluate import project_lidar
from .metrics import gradient_magnitude, striping
from .photometric import grey, identity_error, reprojection
from .uncertainty import sparsification
from .views import View

EDGE_SHARE = 0.1  # the strongest-gradient tenth of the scored pixels
KEEP_TOLERANCE = 0.01  # an input pixel is kept when its output is within 1 % of it
REGIONS = ("all", "between", "edges")


def blurred(depth: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """A depth (H, W) (0 = none) blurred over the pixels it fills (normalised convolution)."""
    have = (depth > 0).astype(np.float32)
    num = cv2.GaussianBlur(depth.astype(np.float32) * have, (0, 0), sigma)
    den = cv2.GaussianBlur(have, (0, 0), sigma)
    return np.where(have > 0, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)


def sanity_rows(name: str, depth: np.ndarray) -> dict[str, np.ndarray]:
    """The depths that must score worse than ``depth``: 5 % farther, 5 % nearer, blurred."""
    return {
        f"sanity: {name} x 1.05": depth * 1.05,
        f"sanity: {name} x 0.95": depth * 0.95,
        f"sanity: {name} blurred 3 px": blurred(depth),
    }


def frame_scores(
    frame: Frame, views: list[View], depths: dict[str, np.ndarray], lidar: np.ndarray
) -> tuple[dict[str, dict[str, float]], int, dict[str, np.ndarray], np.ndarray]:
    """Per method, the mean error over each of REGIONS for one frame, the number of scored
    pixels, each method's error (H, W) and the scored pixels between the returns (H, W) bool.
    ``depths``: {name: (H, W) metres}; ``lidar``: (H, W) bool, pixels with a return."""
    target = grey(image_tensor(frame.rgb))
    images = [grey(image_tensor(v.rgb)) for v in views]
    sources = [(g, torch.from_numpy(v.t_view_target)) for g, v in zip(images, views)]
    k = torch.from_numpy(frame.camera.K)
    errors, valid = {}, []
    for name, d in depths.items():
        err, ok = reprojection(target, torch.from_numpy(d)[None, None], k, sources)
        errors[name] = err[0, 0].numpy()
        valid.append(ok[0, 0].numpy())
    scored = np.logical_and.reduce(valid)
    best = np.min(np.stack(list(errors.values())), axis=0)
    scored &= best < identity_error(target, images)[0, 0].numpy()  # auto-mask
    mag = gradient_magnitude(target[0, 0].numpy())
    cut = np.quantile(mag[scored], 1 - EDGE_SHARE) if scored.any() else np.inf
    regions = {"all": scored, "between": scored & ~lidar, "edges": scored & (mag >= cut)}
    out = {
        name: {r: float(e[m].mean()) if m.any() else float("nan") for r, m in regions.items()}
        for name, e in errors.items()
    }
    return out, int(scored.sum()), errors, regions["between"]


def kept_share(pred: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> float:
    """Share of the input pixels ``mask`` whose ``pred`` is within KEEP_TOLERANCE of ``depth``."""
    d, p = depth[mask], pred[mask]
    return float(np.mean(np.abs(p - d) <= KEEP_TOLERANCE * d)) if d.size else float("nan")


def complete_all(
    methods: dict[str, DepthCompleter], depth: torch.Tensor, mask: torch.Tensor, rgb: torch.Tensor
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each method's dense depth (H, W) metres of the whole LiDAR input, and its confidence."""
    done = {name: c.complete(depth, mask, rgb) for name, c in methods.items()}
    return (
        {name: d[0, 0].numpy() for name, (d, _) in done.items()},
        {name: c[0, 0].numpy() for name, (_, c) in done.items()},
    )


def evaluate_whole_image(
    frames: list[tuple[Frame, list[View]]],
    methods: dict[str, DepthCompleter],
    sanity: "str | None" = None,
    tick: "Callable[[], object] | None" = None,
    show: "Callable[[Frame, np.ndarray, dict[str, np.ndarray]], object] | None" = None,
) -> dict:
    """The JSON-ready result: {"protocol", "frames", "views", "pixels", "methods": {NAME:
    {"all", "between", "edges": mean photometric error over frames, "kept": share of input
    pixels kept, "striping": on the pixels every method fills}}, "sanity": the method the
    sanity rows come from}. ``frames``: (frame, its
    views) pairs; a frame without views is skipped. ``sanity``: a method of ``methods``
    (default: the first). ``show`` is called with each scored frame, its LiDAR depth (H, W)
    metres and every method's depth {NAME: (H, W) metres}."""
    sanity = sanity or next(iter(methods))
    per: dict[str, list[dict[str, float]]] = {}
    trust: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in methods}
    kept: dict[str, list[float]] = {name: [] for name in methods}
    stripes: dict[str, list[float]] = {name: [] for name in methods}
    used, views_used, pixels = 0, [], []
    for frame, views in frames:
        if tick is not None:
            tick()
        if not views:
            continue
        depth, mask = project_lidar(frame, frame.points)
        preds, confs = complete_all(methods, depth, mask, image_tensor(frame.rgb))
        lidar = mask[0, 0].numpy() > 0
        for name, pred in preds.items():
            kept[name].append(kept_share(pred, depth[0, 0].numpy(), lidar))
        if show is not None:
            show(frame, depth[0, 0].numpy(), preds)
        common = np.logical_and.reduce([p > 0 for p in preds.values()])
        for name, pred in preds.items():
            stripes[name].append(striping(np.where(common, pred, 0.0)))
        preds.update(sanity_rows(sanity, preds[sanity]))
        scores, n, errors, between = frame_scores(frame, views, preds, lidar)
        for name, score in scores.items():
            per.setdefault(name, []).append(score)
        for name in methods:
            trust[name].append((errors[name][between], confs[name][between]))
        used += 1
        views_used.append(",".join(v.name for v in views))
        pixels.append(n)
    if not used:
        raise ValueError(
            "no frame has another view of its scene (neighbours that moved, or a "
            "second camera): nothing to score"
        )
    result = whole_image_result(per, kept, stripes, sanity, views_used, pixels)
    result["confidence"] = {}
    for name, pairs in trust.items():
        errors, confidences = zip(*pairs)
        result["confidence"][name] = sparsification(
            np.concatenate(errors), np.concatenate(confidences)
        )
    return result


def whole_image_result(
    per: dict[str, list[dict[str, float]]],
    kept: dict[str, list[float]],
    stripes: dict[str, list[float]],
    sanity: str,
    views_used: list[str],
    pixels: list[int],
) -> dict:
    """The JSON-ready result of ``evaluate_whole_image`` from its per-frame figures."""
    return {
        "protocol": "whole image: photometric error of other views warped with each depth",
        "frames": len(views_used),
        "views": views_used,
        "pixels": float(np.mean(pixels)),
        "sanity": sanity,
        "methods": {
            name: {
                **{r: float(np.nanmean([s[r] for s in rows])) for r in REGIONS},
                **(
                    {
                        "kept": float(np.nanmean(kept[name])),
                        "striping": float(np.nanmean(stripes[name])),
                    }
                    if name in kept
                    else {}
                ),
            }
            for name, rows in per.items()
        },
    }


def format_whole_image(result: dict, reference: "str | None" = None) -> str:
    """One row per method: the error in each region and, where ``reference`` (default: the
    sanity method) is in the table, the ratio to it (lower is better); the share kept and the
    striping."""
    methods = result["methods"]
    ref = methods.get(reference or result["sanity"])
    lines = [
        f"{result['protocol']}; {result['frames']} frames, {result['pixels']:.0f} pixels "
        f"scored per frame; ratios to {reference or result['sanity']}",
        f"{'method':<40}"
        + "".join(f"{r:>10}{'ratio':>7}" for r in REGIONS)
        + f"{'kept':>8}{'striping':>10}",
    ]
    for name, m in methods.items():
        cells = "".join(
            f"{m[r]:10.4f}{m[r] / ref[r] if ref else float('nan'):7.3f}" for r in REGIONS
        )
        kept = f"{100 * m['kept']:7.1f}%{m['striping']:10.2f}" if "kept" in m else ""
        lines.append(f"{name:<40}{cells}{kept}")
    if "confidence" in result:
        lines.append(
            "confidence judged by the other views: sparsification of the photometric error "
            "between the returns, AUSE / AURG (AURG > 0: the pixels it trusts are the ones "
            "the other views agree with)"
        )
        for name, c in result["confidence"].items():
            lines.append(f"{name:<40}{c['mae']['ause']:10.3f}{c['mae']['aurg']:10.3f}")
    return "\n".join(lines)
