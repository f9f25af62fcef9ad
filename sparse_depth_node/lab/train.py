"""The training loop of ``sparse-depth train``: data, losses, validation, checkpoint (what it
does and its splits: train_options.DESCRIPTION, shown by --help)."""

from __future__ import annotations

import json
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.completion import DepthCompleter
from ..core.geometry import project_points
from ..core.models import build_model, save_checkpoint
from ..core.models.checkpoint import read_checkpoint
from ..core.models.multiscale import GOOD_FRACTION
from ..data.datasets import open_dataset, parse_frame_range
from .evaluate import MAX_DEPTH, MIN_DEPTH, frame_rings
from .metrics import frame_errors, mean_errors, random_holdout
from .train_options import parser


def project_frames(
    reader, ids: list, min_depth: float, max_depth: float
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Sparse depth and mask (1, 1, H, W) of each frame id."""
    out = []
    for fid in ids:
        f = reader.read(fid)
        out.append(
            project_points(
                torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, min_depth, max_depth
            )
        )
    return out


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


def random_crop(sample: torch.Tensor, h: int, w: int, rng: random.Random) -> torch.Tensor:
    """A crop (1, C, h, w) of ``sample`` (1, C, H, W) whose top lies where LiDAR returns exist
    (channel 1 is the mask), randomly flipped left-right."""
    rows = torch.nonzero(sample[0, 1].sum(dim=1) > 0).flatten()
    top_min = int(rows[0]) if len(rows) else 0
    hh, ww = sample.shape[-2:]
    h, w = min(h, hh), min(w, ww)
    y = rng.randint(min(top_min, hh - h), hh - h)
    x = rng.randint(0, ww - w)
    crop = sample[..., y : y + h, x : x + w]
    return crop.flip(-1) if rng.random() < 0.5 else crop


def masked_loss(
    pred: torch.Tensor,
    conf: torch.Tensor,
    target: torch.Tensor,
    target_mask: torch.Tensor,
    kind: str,
    learned_confidence: bool,
) -> torch.Tensor:
    """Mean L1 or L2 depth error (metres) over target pixels the network reaches (conf > 0);
    for a network with a learned confidence, plus the binary cross-entropy of that confidence
    against "the error is within GOOD_FRACTION of the depth" (the depth is not pushed by it)."""
    w = target_mask * (conf > 0).to(pred.dtype)
    diff = (pred - target) * w
    n = w.sum().clamp(min=1)
    loss = (diff.abs() if kind == "l1" else diff**2).sum() / n
    if learned_confidence:
        good = ((pred.detach() - target).abs() <= GOOD_FRACTION * target).to(pred.dtype)
        bce = F.binary_cross_entropy(conf.clamp(1e-6, 1 - 1e-6), good, reduction="none")
        loss = loss + (bce * w).sum() / n
    return loss


def init_model(model: torch.nn.Module, path: str) -> None:
    """Load the weights of checkpoint ``path`` into ``model`` where names and shapes match,
    saying which of the model's parameters it did not provide."""
    source = read_checkpoint(path)["state_dict"]
    own = model.state_dict()
    taken = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    missing = sorted(set(own) - set(taken))
    print(
        f"initialised from {path}: {len(taken)} tensors; new: {', '.join(missing) or 'none'}",
        flush=True,
    )


def evaluate_holdout(
    completer: DepthCompleter, frames: list, keep: float, seed: int
) -> dict[str, float]:
    """Mean errors of ``completer`` on ``frames`` under a seeded random hold-out."""
    gen = torch.Generator().manual_seed(seed)
    per = []
    for depth, mask in frames:
        inp, inp_mask, tgt = random_holdout(depth, mask, keep, gen)
        pred, _ = completer.complete(inp, inp_mask)
        per.append(frame_errors(pred[0, 0].cpu().numpy(), depth[0, 0].numpy(), tgt[0, 0].numpy()))
    return mean_errors(per)


def main(argv: "list[str] | None" = None) -> int:
    args = parser().parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = torch.device(args.device)
    kitti = open_dataset(args.kitti, "kitti-raw")
    n = len(kitti.frame_ids())
    train_ids, val_ids = (
        list(range(*parse_frame_range(spec, option, n)))
        for spec, option in (
            (args.train_frames, "--train-frames"),
            (args.val_frames, "--val-frames"),
        )
    )
    train = [
        torch.cat([d, m, d, m], dim=1)
        for d, m in project_frames(kitti, train_ids, MIN_DEPTH, MAX_DEPTH)
    ]
    if args.ddad:
        ddad = open_dataset(args.ddad, "ddad")
        train += [
            torch.cat([d, m, d, m], dim=1)
            for d, m in project_frames(ddad, ddad.frame_ids(), MIN_DEPTH, MAX_DEPTH)
        ]
    val = project_frames(kitti, val_ids, MIN_DEPTH, MAX_DEPTH)
    # KITTI samples with their scan-line input variants appended (channels 4 on)
    ring_train = (
        [
            torch.cat([s, ring_inputs(kitti.read(i), MIN_DEPTH, MAX_DEPTH)], dim=1)
            for i, s in zip(train_ids, train)
        ]
        if args.ring_holdout > 0
        else []
    )
    variants = (ring_train[0].shape[1] - 4) // 2 if ring_train else 0
    print(
        f"train frames {len(train)}, validation frames {len(val)}"
        + (f", {variants} scan-line inputs per KITTI frame" if variants else ""),
        flush=True,
    )

    model = build_model(args.model).to(device)
    if args.init:
        init_model(model, args.init)
    params = model.confidence.parameters() if args.train == "confidence" else model.parameters()
    opt = torch.optim.Adam(params, lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    classic = evaluate_holdout(DepthCompleter("classic", "cpu"), val, 0.5, args.seed)
    print(
        f"classic  val rmse {classic['rmse_mm']:.0f} mm mae {classic['mae_mm']:.0f} mm", flush=True
    )
    history = []
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
        batch = torch.cat(
            [
                random_crop(pool[rng.randrange(len(pool))], *args.crop, rng)
                for _ in range(args.batch)
            ]
        ).to(device)
        depth, mask, tgt_depth, tgt_mask = batch[:, :4].split(1, dim=1)
        if lines:
            v = 4 + 2 * rng.randrange(variants)
            inp, inp_mask = batch[:, v : v + 1], batch[:, v + 1 : v + 2]
        else:
            keep = rng.uniform(*args.keep)
            inp, inp_mask, _ = random_holdout(depth, mask, keep)
        pred, conf = model(inp, inp_mask)
        loss = masked_loss(
            pred,
            conf,
            tgt_depth,
            tgt_mask * (1 - inp_mask),
            args.loss,
            getattr(model, "learned_confidence", False),
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running += loss.item()
        if step % args.eval_every == 0 or step == args.steps:
            metrics = evaluate_holdout(
                DepthCompleter(args.model, args.device, model=model.eval(), channels_last=False),
                val,
                0.5,
                args.seed,
            )
            model.train()
            history.append({"step": step, "loss": running / args.eval_every, **metrics})
            print(
                f"step {step:5d} loss {running / args.eval_every:.4f} val rmse "
                f"{metrics['rmse_mm']:.0f} mm "
                f"mae {metrics['mae_mm']:.0f} mm coverage {metrics['coverage']:.3f} "
                f"({time.time() - t0:.0f} s)",
                flush=True,
            )
            running = 0.0
    provenance = {
        "command": "sparse-depth train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": f"KITTI raw {args.kitti} frames {args.train_frames} + DDAD {args.ddad} (train); "
        f"KITTI raw frames {args.val_frames} "
        "(validation)",
        "init": (
            f"{args.init}, trained by: "
            f"{read_checkpoint(args.init)['provenance'].get('command', '?')}"
            if args.init
            else "random"
        ),
        "trained": args.train,
        "seed": args.seed,
        "steps": args.steps,
        "seconds": round(time.time() - t0, 1),
        "validation": f"random hold-out, keep 0.5, seed {args.seed}",
        "metrics": json.dumps({"model": history[-1], "classic": classic}),
    }
    bar.close()
    save_checkpoint(args.out, args.model, model.cpu(), provenance)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
