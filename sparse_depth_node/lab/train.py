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

from ..core.completion import DepthCompleter, image_tensor, resolve_device
from ..core.geometry import project_points
from ..core.models import GOOD_FRACTION, build_model, save_checkpoint
from ..core.models.checkpoint import read_checkpoint
from ..data.datasets import open_dataset, parse_frame_range, resolve_frame_id
from .evaluate import MAX_DEPTH, MIN_DEPTH, evaluate, frame_rings
from .metrics import random_holdout
from .photometric import grey, photometric_error, warp, window_valid
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
    balance, the depth does not. Drawn from ``gen`` on the CPU (the same draws on any device)."""
    b = rgb.shape[0]

    def draw(lo: float, hi: float, channels: int = 1) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(b, channels, 1, 1, generator=gen)).to(rgb.device)

    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    out = (rgb - mean) * draw(0.7, 1.3) + mean * draw(0.7, 1.3)
    return (out * draw(0.9, 1.1, 3)).clamp(0.0, 1.0)


def first_row(sample: torch.Tensor) -> int:
    """The first row of ``sample`` (1, C, H, W) holding a LiDAR return (channel 1 is the mask);
    0 when there is none."""
    rows = torch.nonzero(sample[0, 1].sum(dim=1) > 0).flatten()
    return int(rows[0]) if len(rows) else 0


def random_crop(
    sample: torch.Tensor, top: int, h: int, w: int, rng: random.Random
) -> tuple[torch.Tensor, tuple[int, int, bool]]:
    """A crop (1, C, h, w) of ``sample`` (1, C, H, W) whose top lies at or below ``top`` (its
    first row with LiDAR returns), randomly flipped left-right; and where it lies: (top row,
    left column, flipped)."""
    hh, ww = sample.shape[-2:]
    h, w = min(h, hh), min(w, ww)
    y = rng.randint(min(top, hh - h), hh - h)
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

    def to(self, device: torch.device) -> "Neighbours":
        return Neighbours(self.k.to(device), self.greys.to(device), self.motions.to(device))


def batch_photometric_loss(
    pred: torch.Tensor,
    rgb: torch.Tensor,
    places: list[tuple[int, int, bool]],
    views: "list[Neighbours | None]",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and count of Monodepth2's masked min-reprojection error over the crops of a batch:
    ``pred`` (B, 1, h, w) metres (0 = none) and ``rgb`` (B, 3, h, w) the crops as cropped
    (flipped where ``places`` says so), each crop's ``views`` (None: it has none) warped into it
    with its depth, every (crop, view) pair in one batch. A crop's K is its frame's with the
    principal point moved by the crop's corner; the auto-mask compares each view unwarped."""
    pairs = [(b, v) for b, nb in enumerate(views) if nb is not None for v in range(len(nb.greys))]
    zero = pred.new_zeros(())
    if not pairs:
        return zero, zero
    b_of = torch.tensor([b for b, _ in pairs], device=pred.device)
    flips = torch.tensor([f for _, _, f in places], device=pred.device).view(-1, 1, 1, 1)
    pred, rgb = torch.where(flips, pred.flip(-1), pred), torch.where(flips, rgb.flip(-1), rgb)
    h, w = pred.shape[-2:]
    k_view = torch.stack([views[b].k for b, _ in pairs])
    corner = torch.tensor([places[b][1::-1] for b, _ in pairs], device=k_view.device)  # (x, y)
    k_crop = k_view.clone()
    k_crop[:, :2, 2] -= corner.to(k_crop.dtype)
    sources = torch.stack([views[b].greys[v] for b, v in pairs])  # (P, 1, H, W)
    motions = torch.stack([views[b].motions[v] for b, v in pairs])
    target = grey(rgb)[b_of]
    warped, valid = warp(sources, pred[b_of], k_crop, k_view, motions)
    error = torch.where(window_valid(valid), photometric_error(target, warped), float("inf"))
    unwarped = torch.stack(
        [
            sources[p, :, y : y + h, x : x + w]
            for p, (y, x, _) in enumerate(places[b] for b, _ in pairs)
        ]
    )
    same = photometric_error(target, unwarped)
    # each crop's per-pixel minimum over its views: views in slots (B, most views), the rest inf
    most = max(len(nb.greys) for nb in views if nb is not None)
    slot = b_of * most + torch.tensor([v for _, v in pairs], device=pred.device)

    def per_crop(x: torch.Tensor) -> torch.Tensor:
        full = x.new_full((len(views) * most, *x.shape[1:]), float("inf"))
        return full.index_put((slot,), x).view(len(views), most, *x.shape[1:]).amin(dim=1)

    best = per_crop(error)
    use = torch.isfinite(best) & (best < per_crop(same)) & (pred > 0)
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


@dataclass
class TrainingData:
    """What training draws from, on the training device: ``samples`` (1, 5, H, W) (sparse depth
    metres, mask, RGB in [0, 1]) and ``ring_samples`` (1, 5 + 2 V, H, W) (the same with the
    scan-line input variants: ring_inputs), each with the first row holding a return
    (``tops``, ``ring_tops``); ``neighbours`` {sample index: Neighbours} for the photometric
    loss; ``validation`` {set: Frame list} (host); ``split`` the text that says what is what.
    The KITTI frames come first in both sample lists, in the same order."""

    samples: list[torch.Tensor]
    ring_samples: list[torch.Tensor]
    tops: list[int]
    ring_tops: list[int]
    neighbours: dict[int, Neighbours]
    validation: dict[str, list]
    split: str

    @property
    def variants(self) -> int:
        """Scan-line input variants per ring sample."""
        return (self.ring_samples[0].shape[1] - 5) // 2 if self.ring_samples else 0


def load_training_data(args, device: torch.device) -> TrainingData:
    """The frames ``args`` name, projected once and moved to ``device`` once."""
    kitti = open_dataset(args.kitti, "kitti-raw", option="--kitti")
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
        ddad = open_dataset(args.ddad, "ddad", option="--ddad")
        train_frames += read_frames(ddad, ddad.frame_ids())
        split.append(f"DDAD {args.ddad} (train)")
    if args.extra:
        extra = open_dataset(args.extra, "kitti-object", option="--extra")
        ids = extra.frame_ids()
        held = [resolve_frame_id(ids, i) for i in args.extra_val.split(",") if i]
        train_frames += read_frames(extra, [i for i in ids if i not in held])
        val["extra"] = read_frames(extra, held)
        split.append(f"KITTI object {args.extra}: {', '.join(held)} (val), the rest (train)")
    if args.rig:
        rig = open_dataset(args.rig, "kitti-object", option="--rig")
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
        neighbours = {s: by_frame[i].to(device) for s, i in enumerate(train_ids) if i in by_frame}
        split.append(
            f"photometric: {len(neighbours)} of the KITTI training frames have neighbours "
            f"(camera moved >= {args.baseline} m)"
        )
    return TrainingData(
        samples=[t.to(device) for t in train],
        ring_samples=[t.to(device) for t in ring_train],
        tops=[first_row(t) for t in train],
        ring_tops=[first_row(t) for t in ring_train],
        neighbours=neighbours,
        validation=val,
        split="; ".join(split),
    )


@dataclass
class Batch:
    """One step's crops, on the training device: targets ``depth`` and ``mask`` (B, 1, h, w),
    the network's input ``inp`` and ``inp_mask``, its image ``rgb`` (colour-jittered) and the
    image as recorded ``raw_rgb`` (the photometric loss compares views), the sample index and
    the place (top, left, flipped) of each crop, and whether the input is scan lines."""

    depth: torch.Tensor
    mask: torch.Tensor
    inp: torch.Tensor
    inp_mask: torch.Tensor
    rgb: torch.Tensor
    raw_rgb: torch.Tensor
    chosen: list[int]
    places: list[tuple[int, int, bool]]
    lines: bool


class Trainer:
    """A network, its optimiser and its training data on one device. ``step()`` draws a batch
    (random crops of random samples: ``rng`` for the crops, ``gen`` for the colour jitter, the
    global torch generator for the hold-outs, all on the CPU so that any device draws the same)
    and takes one optimiser step of the loss ``args`` describe; ``precision`` bf16 runs the
    network under autocast (the losses in float32)."""

    def __init__(self, args, data: TrainingData, device: torch.device) -> None:
        self.args, self.data, self.device = args, data, device
        config = {"attention_keep": args.attention_keep} if args.attention_keep else {}
        config.update({"prefill": args.prefill} if args.prefill else {})
        self.model = build_model(args.model, config).to(device)
        params = list(
            self.model.confidence_parameters()
            if args.train == "confidence"
            else self.model.parameters()
        )
        if not params:
            raise ValueError(
                "--train confidence needs a network with a separate confidence branch "
                f"(multiscale); '{args.model}' learns its confidence with its depth: use --train "
                "all"
            )
        self.opt = torch.optim.Adam(params, lr=args.lr)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, args.steps)
        self.rng = random.Random(args.seed)
        self.gen = torch.Generator().manual_seed(args.seed)
        self.autocast = torch.bfloat16 if args.precision == "bf16" else None

    def batch(self) -> Batch:
        args, data, rng = self.args, self.data, self.rng
        lines = args.ring_holdout > 0 and rng.random() < args.ring_holdout
        pool, tops = (data.ring_samples, data.ring_tops) if lines else (data.samples, data.tops)
        chosen = [rng.randrange(len(pool)) for _ in range(args.batch)]
        crops = [random_crop(pool[i], tops[i], *args.crop, rng) for i in chosen]
        batch = torch.cat([c for c, _ in crops])
        depth, mask = batch[:, :1], batch[:, 1:2]
        rgb = colour_jitter(batch[:, 2:5], self.gen)
        if lines:
            v = 5 + 2 * rng.randrange(data.variants)
            inp, inp_mask = batch[:, v : v + 1], batch[:, v + 1 : v + 2]
        else:
            inp, inp_mask, _ = random_holdout(depth, mask, rng.uniform(*args.keep))
        places = [place for _, place in crops]
        return Batch(depth, mask, inp, inp_mask, rgb, batch[:, 2:5], chosen, places, lines)

    def loss(self, b: Batch) -> torch.Tensor:
        """The weighted sum of the losses ``args`` switch on, for one batch."""
        args, model = self.args, self.model
        with torch.autocast(
            self.device.type, dtype=self.autocast or torch.float32, enabled=bool(self.autocast)
        ):
            pred, conf = model(b.inp, b.inp_mask, b.rgb)
        pred, conf = pred.float(), conf.float()
        targets = b.mask * (1 - b.inp_mask) * visible(b.depth, b.mask, args.clean_targets)
        loss = args.depth_weight * masked_loss(
            pred, conf, b.depth, targets, args.loss, model.learned_confidence, args.l2_weight
        )
        if args.smoothness:
            loss = loss + args.smoothness * row_smoothness(pred, b.rgb)
        if args.keep_input:
            at = (b.inp_mask > 0) & (pred > 0)
            kept = torch.log(pred.clamp(min=0.1)) - torch.log(b.inp.clamp(min=0.1))
            loss = loss + args.keep_input * kept.abs()[at].mean()
        if self.data.neighbours:
            views = [self.data.neighbours.get(i) for i in b.chosen]
            total, count = batch_photometric_loss(pred, b.raw_rgb, b.places, views)
            loss = loss + args.photometric * total / count.clamp(min=1)
        return loss

    def step(self) -> float:
        """One optimiser step; the loss (a float: the device is synchronised)."""
        loss = self.loss(self.batch())
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.item()

    def completer(self) -> DepthCompleter:
        """The network as it is now, in evaluation mode, as a completer on the training device."""
        return DepthCompleter(
            self.args.model, str(self.device), model=self.model.eval(), channels_last=False
        )


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


def check_options(args) -> None:
    """ValueError for options that do not go together."""
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
    if args.precision == "bf16" and args.device == "cpu":
        raise ValueError("--precision bf16 trains under CUDA autocast: add --device cuda")


def main(argv: "list[str] | None" = None) -> int:
    args = parser().parse_args(argv)
    check_options(args)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_training_data(args, device)
    select = [k for k in args.select.split(",") if k in data.validation] or ["kitti"]
    print(
        f"train frames {len(data.samples)}, validation frames "
        + ", ".join(f"{k} {len(v)}" for k, v in data.validation.items())
        + (
            f"; {data.variants} scan-line inputs per frame of {len(data.ring_samples)}"
            if data.variants
            else ""
        ),
        flush=True,
    )
    trainer = Trainer(args, data, device)
    if args.init:
        print(init_model(trainer.model, args.init), flush=True)
    reference = validate(DepthCompleter(REFERENCE, "cpu"), data.validation, args.seed)
    print(
        f"{REFERENCE} val rmse / mae mm: "
        + ", ".join(f"{k} {m['rmse_mm']:.0f} / {m['mae_mm']:.0f}" for k, m in reference.items()),
        flush=True,
    )
    history, best = run(trainer, reference, select)
    trainer.model.load_state_dict(best[2])
    kept = next(h for h in history if h["step"] == best[1])
    provenance = {
        "command": "sparse-depth train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": data.split,
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
        "seconds": history[-1]["seconds"],
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
    save_checkpoint(args.out, args.model, trainer.model.cpu(), provenance)
    print(f"kept step {best[1]} (score {best[0]:.3f}); wrote {args.out}", flush=True)
    return 0


def run(trainer: Trainer, reference: dict, select: list[str]) -> tuple[list[dict], tuple]:
    """The training loop: ``args.steps`` steps with a validation every ``args.eval_every`` (and
    at the last); the history of validations and the best (score, step, weights)."""
    args = trainer.args
    history: list[dict] = []
    best = None
    t0, running = time.time(), 0.0
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
        running += trainer.step()
        if step % args.eval_every and step != args.steps:
            continue
        metrics = validate(trainer.completer(), trainer.data.validation, args.seed)
        trainer.model.train()
        value = score(metrics, reference, select)
        seconds = round(time.time() - t0, 1)
        loss = running / args.eval_every
        history.append({"step": step, "loss": loss, "score": value, "seconds": seconds, **metrics})
        if best is None or value < best[0]:
            best = (value, step, copy.deepcopy(trainer.model.state_dict()))
        print(
            f"step {step:5d} loss {loss:.4f} val rmse / mae mm "
            + ", ".join(f"{k} {m['rmse_mm']:.0f} / {m['mae_mm']:.0f}" for k, m in metrics.items())
            + f"; score {value:.3f}{' (best)' if best[1] == step else ''} ({seconds:.0f} s)",
            flush=True,
        )
        running = 0.0
    bar.close()
    return history, best


if __name__ == "__main__":
    sys.exit(main())
