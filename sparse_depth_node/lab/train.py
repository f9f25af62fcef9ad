"""The training loop of ``sparse-depth train``: data, losses, validation, checkpoint (what it
does and its splits: train_options.DESCRIPTION, shown by --help)."""

from __future__ import annotations

import copy
import json
import random
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.completion import DepthCompleter, image_tensor
from ..core.geometry import project_points
from ..core.models import GOOD_FRACTION, build_model, save_checkpoint
from ..core.models.checkpoint import read_checkpoint
from ..data.datasets import open_dataset, parse_frame_range, resolve_frame_id
from .evaluate import MAX_DEPTH, MIN_DEPTH, evaluate, frame_rings
from .metrics import random_holdout
from .photometric import grey, identity_error, reprojection
from .train_options import parser
from .views import TemporalViews


def project_frame(frame, min_depth: float, max_depth: float) -> torch.Tensor:
    """(1, 5, H, W): the frame's sparse depth (metres), its mask and its image (RGB in [0, 1])."""
    depth, mask = project_points(
        torch.from_numpy(frame.points), frame.camera, frame.t_cam_from_lidar, min_depth, max_depth
    )
    return torch.cat([depth, mask, image_tensor(frame.rgb)], dim=1)


def read_frames(reader, ids: list) -> list:
    return [reader.read(i) for i in ids]


REFERENCE = "classic-full"  # the classical method every validation is scored against
RING_STEPS = (2, 4)  # scan-line hold-outs: every 2nd or every 4th ring as input, each phase


def ring_inputs(frame, min_depth: float, max_depth: float) -> torch.Tensor:
    """(1, 2 V, H, W): depth and mask of every scan-line input variant of ``frame`` (for each k in
    RING_STEPS and each phase p, the rings r with r % k == p), rings from the scan order."""
    rings = frame_rings(frame)
    channels = []
    for k in RING_STEPS:
        for phase in range(k):
            pts = np.ascontiguousarray(frame.points[rings % k == phase])
            channels += project_points(
                torch.from_numpy(pts), frame.camera, frame.t_cam_from_lidar, min_depth, max_depth
            )
    return torch.cat(channels, dim=1)


def colour_jitter(rgb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random brightness (x 0.7-1.3), contrast (x 0.7-1.3) and per-channel gain (x 0.9-1.1) of
    each image of a batch (B, 3, H, W) in [0, 1]: cameras differ in exposure and white
    balance, the depth does not."""
    b = rgb.shape[0]

    def draw(lo: float, hi: float, channels: int = 1) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, channels, 1, 1, generator=gen)

    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    out = (rgb - mean) * draw(0.7, 1.3) + mean * draw(0.7, 1.3)
    return (out * draw(0.9, 1.1, 3)).clamp(0.0, 1.0)


def random_crop(
    sample: torch.Tensor, h: int, w: int, rng: random.Random
) -> tuple[torch.Tensor, tuple[int, int, bool]]:
    """A crop (1, C, h, w) of ``sample`` (1, C, H, W) whose top lies where LiDAR returns exist
    (channel 1 is the mask), randomly flipped left-right; and where it lies: (top row, left
    column, flipped)."""
    rows = torch.nonzero(sample[0, 1].sum(dim=1) > 0).flatten()
    top_min = int(rows[0]) if len(rows) else 0
    hh, ww = sample.shape[-2:]
    h, w = min(h, hh), min(w, ww)
    y = rng.randint(min(top_min, hh - h), hh - h)
    x = rng.randint(0, ww - w)
    crop = sample[..., y : y + h, x : x + w]
    flip = rng.random() < 0.5
    return (crop.flip(-1) if flip else crop), (y, x, flip)


@dataclass
class Neighbours:
    """What the photometric loss needs of a training frame: its intrinsics K (3, 3) and its
    other views: grey images (V, 1, H, W) in [0, 1] and T_view<-frame (V, 4, 4)."""

    k: torch.Tensor
    greys: torch.Tensor
    motions: torch.Tensor


def crop_photometric_loss(
    pred: torch.Tensor, rgb: torch.Tensor, place: tuple[int, int, bool], nb: Neighbours
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and count of Monodepth2's masked min-reprojection error over one crop: ``pred``
    (1, 1, h, w) metres (0 = none) and ``rgb`` (1, 3, h, w) the crop as cropped (flipped when
    ``place`` says so), the views warped into the crop with its depth."""
    y, x, flip = place
    if flip:
        pred, rgb = pred.flip(-1), rgb.flip(-1)
    k = nb.k.clone()
    k[0, 2] -= x
    k[1, 2] -= y
    target = grey(rgb)
    best, ok = reprojection(target, pred, k, list(zip(nb.greys[:, None], nb.motions)), nb.k)
    use = ok & (best < identity_error(target, list(nb.greys[:, None]), (y, x))) & (pred > 0)
    return torch.where(use, best, 0.0).sum(), use.sum()


def training_neighbours(reader, ids: list[int], baseline: float) -> dict[int, Neighbours]:
    """{frame index: Neighbours} of the KITTI frames ``ids`` (indices into ``reader``) that
    have a view on either side within ``ids`` (views.TemporalViews)."""
    views = TemporalViews(reader, min_baseline=baseline, within=(min(ids), max(ids) + 1))
    out = {}
    for i in ids:
        found = views.views(i)
        if found:
            out[i] = Neighbours(
                torch.from_numpy(views.frame(i).camera.K),
                torch.cat([grey(image_tensor(v.rgb)) for v in found]),
                torch.stack([torch.from_numpy(v.t_view_target) for v in found]),
            )
    return out


def masked_loss(
    pred: torch.Tensor,
    conf: torch.Tensor,
    target: torch.Tensor,
    target_mask: torch.Tensor,
    kind: str,
    learned_confidence: bool,
    l2_weight: float = 1.0,
) -> torch.Tensor:
    """Mean L1, L2 or L1 + L2 depth error (metres; the L2 term times ``l2_weight``) over target
    pixels the network reaches (conf > 0);
    for a network with a learned confidence, plus the binary cross-entropy of that confidence
    against "the error is within GOOD_FRACTION of the depth" (the depth is not pushed by it)."""
    w = target_mask * (conf > 0).to(pred.dtype)
    diff = (pred - target) * w
    n = w.sum().clamp(min=1)
    loss = sum(
        (diff.abs() if k == "l1" else l2_weight * diff**2).sum() / n for k in kind.split("+")
    )
    if learned_confidence:
        good = ((pred.detach() - target).abs() <= GOOD_FRACTION * target).to(pred.dtype)
        bce = F.binary_cross_entropy(conf.clamp(1e-6, 1 - 1e-6), good, reduction="none")
        loss = loss + (bce * w).sum() / n
    return loss


def row_smoothness(pred: torch.Tensor, rgb: torch.Tensor, sigma: float = 0.05) -> torch.Tensor:
    """Edge-aware vertical smoothness: the mean |second difference along y| of the log of
    ``pred`` (B, 1, H, W) metres (0 = none), each weighted by exp(-|grey step| / sigma), the
    step of the image (B, 3, H, W) in [0, 1] across the same three rows, so that depth may
    change where the image does.
    Row-to-row alternation between scan lines (stripes) costs most; a plane seen in
    perspective, whose depth changes smoothly with the row, costs little."""
    have = (pred > 0).to(pred.dtype)
    log_d = torch.log(pred.clamp(min=0.1))
    second = (log_d[..., :-2, :] - 2 * log_d[..., 1:-1, :] + log_d[..., 2:, :]).abs()
    grey = rgb.mean(dim=1, keepdim=True)
    step = (grey[..., 2:, :] - grey[..., :-2, :]).abs()
    valid = have[..., :-2, :] * have[..., 1:-1, :] * have[..., 2:, :]
    weight = torch.exp(-step / sigma) * valid
    return (second * weight).sum() / valid.sum().clamp(min=1)


def visible(depth: torch.Tensor, mask: torch.Tensor, margin: float) -> torch.Tensor:
    """(B, 1, H, W) float: 1 at the returns the camera can see, 0 at those lying more than
    ``margin`` (a fraction) behind the nearest return within 3 px — background that the LiDAR,
    mounted above the camera, sees past a foreground edge the camera sees instead (parallax).
    All ones when ``margin`` is 0 (no cleaning)."""
    if margin <= 0:
        return torch.ones_like(mask)
    far = torch.finfo(depth.dtype).max
    nearest = -F.max_pool2d(-torch.where(mask > 0, depth, far), 7, stride=1, padding=3)
    return (depth <= nearest * (1 + margin)).to(mask.dtype)


def init_model(model: torch.nn.Module, path: str) -> str:
    """Load the weights of checkpoint ``path`` into ``model`` where names and shapes match;
    returns the line that says which of the model's parameters it did not provide."""
    source = read_checkpoint(path)["state_dict"]
    own = model.state_dict()
    taken = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    missing = sorted(set(own) - set(taken))
    return f"initialised from {path}: {len(taken)} tensors; new: {', '.join(missing) or 'none'}"


def load_training_data(args) -> tuple[list, list, dict[str, list], str, dict[int, Neighbours]]:
    """(samples, samples with scan-line variants, {validation set: samples}, split text,
    {sample index: Neighbours} with --photometric). The KITTI frames come first in both sample
    lists, in the same order."""
    kitti = open_dataset(args.kitti, "kitti-raw")
    n = len(kitti.frame_ids())
    train_ids, val_ids = (
        list(range(*parse_frame_range(spec, option, n)))
        for spec, option in (
            (args.train_frames, "--train-frames"),
            (args.val_frames, "--val-frames"),
        )
    )
    train_frames = read_frames(kitti, train_ids)
    val = {"kitti": read_frames(kitti, val_ids)}
    split = [f"KITTI raw {args.kitti} frames {args.train_frames} (train), {args.val_frames} (val)"]
    if args.ddad:
        ddad = open_dataset(args.ddad, "ddad")
        train_frames += read_frames(ddad, ddad.frame_ids())
        split.append(f"DDAD {args.ddad} (train)")
    if args.extra:
        extra = open_dataset(args.extra, "kitti-object")
        ids = extra.frame_ids()
        held = [resolve_frame_id(ids, i) for i in args.extra_val.split(",") if i]
        train_frames += read_frames(extra, [i for i in ids if i not in held])
        val["extra"] = read_frames(extra, held)
        split.append(f"KITTI object {args.extra}: {', '.join(held)} (val), the rest (train)")
    if args.rig:
        rig = open_dataset(args.rig, "kitti-object")
        val["rig"] = read_frames(rig, rig.frame_ids())
        split.append(f"other rig {args.rig} (val)")
    train = [project_frame(f, MIN_DEPTH, MAX_DEPTH) for f in train_frames]
    ring_train = []
    if args.ring_holdout > 0:
        for f, sample in zip(train_frames, train):
            try:
                ring_train.append(torch.cat([sample, ring_inputs(f, MIN_DEPTH, MAX_DEPTH)], 1))
            except ValueError:  # no rings (DDAD's LiDAR does not scan ring by ring)
                pass
    neighbours = {}
    if args.photometric > 0:
        by_frame = training_neighbours(kitti, train_ids, args.baseline)
        neighbours = {s: by_frame[i] for s, i in enumerate(train_ids) if i in by_frame}
        split.append(
            f"photometric: {len(neighbours)} of the KITTI training frames have neighbours "
            f"(camera moved >= {args.baseline} m)"
        )
    return train, ring_train, val, "; ".join(split), neighbours


VALIDATION = ("random:0.5", "lines:4")  # the evaluation's protocols; lines only where rings exist


def validate(completer: DepthCompleter, val: dict[str, list], seed: int) -> dict[str, dict]:
    """{"SET PROTOCOL": mean errors} of ``completer`` on each validation set (Frame lists)."""
    out = {}
    for name, frames in val.items():
        for protocol in VALIDATION:
            try:
                result = evaluate(frames, {"m": completer}, protocol, seed)
            except ValueError:  # no rings: the lines protocol does not apply
                continue
            m = result["methods"]["m"]
            out[f"{name} {protocol}"] = {k: m[k] for k in ("rmse_mm", "mae_mm", "coverage")}
    return out


def score(metrics: dict, reference: dict, select: list[str]) -> float:
    """Mean of the RMSE and MAE ratios to ``reference`` over the selected sets' protocols."""
    keys = [k for k in metrics if k.split()[0] in select]
    return float(
        np.mean([metrics[k][e] / reference[k][e] for k in keys for e in ("rmse_mm", "mae_mm")])
    )


def main(argv: "list[str] | None" = None) -> int:
    args = parser().parse_args(argv)
    guided_only = [
        name
        for name, value in (
            ("--attention-keep", args.attention_keep),
            ("--prefill", args.prefill),
        )
        if value
    ]
    if guided_only and args.model != "guided":
        raise ValueError(
            f"{' '.join(guided_only)} apply only to --model guided: "
            "drop them or add --model guided"
        )

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    device = torch.device(args.device)
    train, ring_train, val, split, neighbours = load_training_data(args)
    select = [k for k in args.select.split(",") if k in val] or ["kitti"]
    variants = (ring_train[0].shape[1] - 5) // 2 if ring_train else 0
    print(
        f"train frames {len(train)}, validation frames "
        + ", ".join(f"{k} {len(v)}" for k, v in val.items())
        + (f"; {variants} scan-line inputs per frame of {len(ring_train)}" if variants else ""),
        flush=True,
    )

    config = {"attention_keep": args.attention_keep} if args.attention_keep else {}
    config.update({"prefill": args.prefill} if args.prefill else {})
    model = build_model(args.model, config).to(device)
    if args.init:
        print(init_model(model, args.init), flush=True)
    params = list(
        model.confidence_parameters() if args.train == "confidence" else model.parameters()
    )
    if not params:
        raise ValueError(
            f"--train confidence needs a network with a separate confidence branch (multiscale); "
            f"'{args.model}' learns its confidence with its depth: use --train all"
        )
    opt = torch.optim.Adam(params, lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    reference = validate(DepthCompleter(REFERENCE, "cpu"), val, args.seed)
    print(
        f"{REFERENCE} val rmse / mae mm: "
        + ", ".join(f"{k} {m['rmse_mm']:.0f} / {m['mae_mm']:.0f}" for k, m in reference.items()),
        flush=True,
    )
    history, best = [], None
    t0 = time.time()
    running = 0.0
    bar = tqdm(
        total=args.steps,
        desc="train",
        unit="step",
        file=sys.stderr,
        leave=False,
        disable=True if args.quiet else None,
    )
    for step in range(1, args.steps + 1):
        bar.update(1)
        lines = args.ring_holdout > 0 and rng.random() < args.ring_holdout
        pool = ring_train if lines else train
        chosen = [rng.randrange(len(pool)) for _ in range(args.batch)]
        crops = [random_crop(pool[i], *args.crop, rng) for i in chosen]
        batch = torch.cat([c for c, _ in crops])
        depth, mask = batch[:, :1], batch[:, 1:2]
        rgb = colour_jitter(batch[:, 2:5], gen)
        if lines:
            v = 5 + 2 * rng.randrange(variants)
            inp, inp_mask = batch[:, v : v + 1], batch[:, v + 1 : v + 2]
        else:
            keep = rng.uniform(*args.keep)
            inp, inp_mask, _ = random_holdout(depth, mask, keep)
        pred, conf = model(inp.to(device), inp_mask.to(device), rgb.to(device))
        loss = args.depth_weight * masked_loss(
            pred,
            conf,
            depth.to(device),
            (mask * (1 - inp_mask) * visible(depth, mask, args.clean_targets)).to(device),
            args.loss,
            model.learned_confidence,
            args.l2_weight,
        )
        if args.smoothness:
            loss = loss + args.smoothness * row_smoothness(pred, rgb.to(device))
        if args.keep_input:
            at = (inp_mask > 0).to(device) & (pred > 0)
            kept = torch.log(pred.clamp(min=0.1)) - torch.log(inp.to(device).clamp(min=0.1))
            loss = loss + args.keep_input * kept.abs()[at].mean()
        photo = [
            crop_photometric_loss(pred[b : b + 1], batch[b : b + 1, 2:5].to(device), place, nb)
            for b, (i, (_, place)) in enumerate(zip(chosen, crops))
            if (nb := neighbours.get(i)) is not None
        ]
        if photo:
            total, count = (sum(x) for x in zip(*photo))
            loss = loss + args.photometric * total / count.clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running += loss.item()
        if step % args.eval_every == 0 or step == args.steps:
            completer = DepthCompleter(
                args.model, args.device, model=model.eval(), channels_last=False
            )
            metrics = validate(completer, val, args.seed)
            model.train()
            value = score(metrics, reference, select)
            history.append(
                {"step": step, "loss": running / args.eval_every, "score": value, **metrics}
            )
            if best is None or value < best[0]:
                best = (value, step, copy.deepcopy(model.state_dict()))
            print(
                f"step {step:5d} loss {running / args.eval_every:.4f} val rmse / mae mm "
                + ", ".join(
                    f"{k} {m['rmse_mm']:.0f} / {m['mae_mm']:.0f}" for k, m in metrics.items()
                )
                + f"; score {value:.3f}{' (best)' if best[1] == step else ''} "
                f"({time.time() - t0:.0f} s)",
                flush=True,
            )
            running = 0.0
    bar.close()
    model.load_state_dict(best[2])
    kept = next(h for h in history if h["step"] == best[1])
    provenance = {
        "command": "sparse-depth train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": split,
        "init": (
            f"{args.init}, trained by: "
            f"{read_checkpoint(args.init)['provenance'].get('command', '?')}"
            if args.init
            else "random"
        ),
        "trained": args.train,
        "seed": args.seed,
        "steps": args.steps,
        "kept_step": best[1],
        "seconds": round(time.time() - t0, 1),
        "validation": f"{' and '.join(VALIDATION)} hold-outs, seed {args.seed}; weights of the "
        f"step with the lowest mean RMSE and MAE relative to {REFERENCE} on "
        f"{', '.join(select)}",
        "metrics": json.dumps(
            {
                "model": {"step": best[1], **kept["kitti random:0.5"]},
                "sets": kept,
                REFERENCE: reference,
            }
        ),
        "history": json.dumps(history),
    }
    save_checkpoint(args.out, args.model, model.cpu(), provenance)
    print(f"kept step {best[1]} (score {best[0]:.3f}); wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
