"""The training loop of ``sparse-depth train``: data, losses, validation, checkpoint (what it
does and its splits: train_options.DESCRIPTION, shown by --help)."""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from ..core.completion import DepthCompleter, image_tensor, resolve_device
from ..core.geometry import project_points
from ..core.models import GOOD_FRACTION, build_model, save_checkpoint
from ..core.models.checkpoint import read_checkpoint
from ..core.runtime import exit_now
from ..data.datasets import open_dataset, parse_frame_range, resolve_frame_id
from ..data.depth_io import colorize_depth
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
    channels: list[torch.Tensor] = []
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
    support: "torch.Tensor | None" = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and count of Monodepth2's masked min-reprojection error over the crops of a batch:
    ``pred`` (B, 1, h, w) metres (0 = none) and ``rgb`` (B, 3, h, w) the crops as cropped
    (flipped where ``places`` says so), each crop's ``views`` (None: it has none) warped into it
    with its depth, every (crop, view) pair in one batch. A crop's K is its frame's with the
    principal point moved by the crop's corner; the auto-mask compares each view unwarped.
    ``support`` (B, 1, h, w) bool, as cropped: where the error may count (default: everywhere)."""
    pairs = [(b, v) for b, nb in enumerate(views) if nb is not None for v in range(len(nb.greys))]
    zero = pred.new_zeros(())
    if not pairs:
        return zero, zero
    b_of = torch.tensor([b for b, _ in pairs], device=pred.device)
    flips = torch.tensor([f for _, _, f in places], device=pred.device).view(-1, 1, 1, 1)
    pred, rgb = torch.where(flips, pred.flip(-1), pred), torch.where(flips, rgb.flip(-1), rgb)
    h, w = pred.shape[-2:]
    given = [(b, v, nb) for b, v in pairs if (nb := views[b]) is not None]
    k_view = torch.stack([nb.k for _, _, nb in given])
    corner = torch.tensor([places[b][1::-1] for b, _ in pairs], device=k_view.device)  # (x, y)
    k_crop = k_view.clone()
    k_crop[:, :2, 2] -= corner.to(k_crop.dtype)
    sources = torch.stack([nb.greys[v] for _, v, nb in given])  # (P, 1, H, W)
    motions = torch.stack([nb.motions[v] for _, v, nb in given])
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
    if support is not None:
        use &= torch.where(flips, support.flip(-1), support)
    return torch.where(use, best, 0.0).sum(), use.sum()


def training_neighbours(reader, ids: list, baseline: float) -> dict[Any, Neighbours]:
    """{frame id: Neighbours} of the frames ``ids`` of ``reader`` (a contiguous run of its
    frames) that have a view on either side within ``ids`` (views.TemporalViews)."""
    order = reader.frame_ids()
    first, last = order.index(ids[0]), order.index(ids[-1])
    views = TemporalViews(reader, min_baseline=baseline, within=(first, last + 1))
    out = {}
    for fid in ids:
        i = order.index(fid)
        found = views.views(i)
        if found:
            out[fid] = Neighbours(
                torch.from_numpy(views.frame(i).camera.K),
                torch.cat([grey(image_tensor(v.rgb)) for v in found]),
                torch.stack([torch.from_numpy(v.t_view_target) for v in found]),
            )
    return out


def depth_terms(
    pred: torch.Tensor,
    conf: torch.Tensor,
    target: torch.Tensor,
    target_mask: torch.Tensor,
    kind: str,
    learned_confidence: bool,
    l2_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sum and count of the L1, L2 or L1 + L2 depth error (metres; the L2 term times
    ``l2_weight``) over target pixels the network reaches (conf > 0): their mean is the loss;
    for a network with a learned confidence the sum adds the binary cross-entropy of that
    confidence against "the error is within GOOD_FRACTION of the depth" (the depth is not pushed
    by it)."""
    w = target_mask * (conf > 0).to(pred.dtype)
    diff = (pred - target) * w
    total = torch.zeros((), device=pred.device)
    for k in kind.split("+"):
        total = total + (diff.abs() if k == "l1" else l2_weight * diff**2).sum()
    if learned_confidence:
        good = ((pred.detach() - target).abs() <= GOOD_FRACTION * target).to(pred.dtype)
        bce = F.binary_cross_entropy(conf.clamp(1e-6, 1 - 1e-6), good, reduction="none")
        total = total + (bce * w).sum()
    return total, w.sum()


def row_smoothness(
    pred: torch.Tensor, rgb: torch.Tensor, sigma: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge-aware vertical smoothness, as a sum and a count whose ratio is the mean |second
    difference along y| of the log of ``pred`` (B, 1, H, W) metres (0 = none), each weighted by
    exp(-|grey step| / sigma), the step of the image (B, 3, H, W) in [0, 1] across the same three
    rows, so that depth may change where the image does.
    Row-to-row alternation between scan lines (stripes) costs most; a plane seen in
    perspective, whose depth changes smoothly with the row, costs little."""
    have = (pred > 0).to(pred.dtype)
    log_d = torch.log(pred.clamp(min=0.1))
    second = (log_d[..., :-2, :] - 2 * log_d[..., 1:-1, :] + log_d[..., 2:, :]).abs()
    grey = rgb.mean(dim=1, keepdim=True)
    step = (grey[..., 2:, :] - grey[..., :-2, :]).abs()
    valid = have[..., :-2, :] * have[..., 1:-1, :] * have[..., 2:, :]
    weight = torch.exp(-step / sigma) * valid
    return (second * weight).sum(), valid.sum()


def near_returns(mask: torch.Tensor, radius: int) -> "torch.Tensor | None":
    """(B, 1, H, W) bool: within ``radius`` px (Chebyshev) of a return of ``mask``; None when
    ``radius`` is 0 (no limit). Where no return lies near, nothing vouches for the surface:
    glass and glossy paint (the LiDAR passes through or misses them, the camera sees a
    reflection of a scene farther away) and the sky."""
    if radius <= 0:
        return None
    return F.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius) > 0


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
    scan-line input variants: ring_inputs) of the frames that have rings, ``ring_of`` the sample
    each is; the first row holding a return of each (``tops``, ``ring_tops``); ``neighbours``
    {sample index: Neighbours} for the photometric loss; ``validation`` {set: Frame list}
    (host); ``split`` the text that says what is what."""

    samples: list[torch.Tensor]
    ring_samples: list[torch.Tensor]
    ring_of: list[int]
    tops: list[int]
    ring_tops: list[int]
    neighbours: dict[int, Neighbours]
    validation: dict[str, list]
    split: str

    @property
    def variants(self) -> int:
        """Scan-line input variants per ring sample."""
        return (self.ring_samples[0].shape[1] - 5) // 2 if self.ring_samples else 0


@dataclass
class Source:
    """One recording or data set folder: its ``reader`` (a data set reader or bag.BagFrames),
    the frame ids to ``train`` and to validate (``val``, the validation set ``name``) on,
    whether its training frames are a sequence whose neighbours the photometric loss may warp
    (``sequence``), and the text that says so."""

    name: str
    reader: Any
    train: list
    val: list
    sequence: bool
    text: str


def folder_sources(args) -> list[Source]:
    """The data set folders of ``args``: a KITTI raw drive (--train-frames, --val-frames), a
    DDAD scene (training), KITTI object frames of other drives (--extra-val validate, the rest
    train), another rig (validation)."""
    kitti = open_dataset(args.data, "kitti-raw", option="--data")
    ids = kitti.frame_ids()
    train, val = (
        ids[slice(*parse_frame_range(spec, option, len(ids)))]
        for spec, option in (
            (args.train_frames, "--train-frames"),
            (args.val_frames, "--val-frames"),
        )
    )
    text = f"KITTI raw {args.data} frames {args.train_frames} (train), {args.val_frames} (val)"
    out = [Source("kitti", kitti, train, val, True, text)]
    if args.ddad:
        ddad = open_dataset(args.ddad, "ddad", option="--ddad")
        out.append(Source("ddad", ddad, ddad.frame_ids(), [], False, f"DDAD {args.ddad} (train)"))
    if args.extra:
        extra = open_dataset(args.extra, "kitti-object", option="--extra")
        held = [resolve_frame_id(extra.frame_ids(), i) for i in args.extra_val.split(",") if i]
        rest = [i for i in extra.frame_ids() if i not in held]
        text = f"KITTI object {args.extra}: {', '.join(held)} (val), the rest (train)"
        out.append(Source("extra", extra, rest, held, False, text))
    if args.rig:
        rig = open_dataset(args.rig, "kitti-object", option="--rig")
        out.append(Source("rig", rig, [], rig.frame_ids(), False, f"other rig {args.rig} (val)"))
    return out


def time_split(stamps: list[float], val_fraction: float, gap: float) -> tuple[range, range]:
    """Indices of a recording's frames (``stamps`` in time order, s) to train and to validate
    on: the last ``val_fraction`` validates (none when 0), the frames up to ``gap`` s before it
    train, so that no two neighbouring frames fall on both sides. ValueError when nothing is
    left to train on."""
    n_val = max(1, round(val_fraction * len(stamps))) if val_fraction > 0 else 0
    first_val = len(stamps) - n_val
    last_train = first_val
    while n_val and last_train > 0 and stamps[last_train - 1] > stamps[first_val] - gap:
        last_train -= 1
    if last_train == 0:
        raise ValueError(
            f"{len(stamps)} frames leave none to train on before the last {n_val} "
            f"(--val-fraction {val_fraction}) less --gap {gap} s: record longer or lower them"
        )
    return range(last_train), range(first_val, len(stamps))


def bag_sources(args, tick=None) -> list[Source]:
    """The recordings of ``args.bags`` (bags, or folders of bags), each decoded once into the
    frame cache (bag.frames) under the node parameters ``args.params`` and ``args.remap``, split
    by time (``time_split``: validation set "bags"); and those of ``args.val_bags``, held out
    for validation only (set "held_out")."""
    from ..bag.fleet import expand_bags
    from ..bag.frames import BagFrames, cache_frames
    from ..bag.io import load_parameters, parse_remaps

    params = load_parameters(args.params) if args.params else {}
    remaps = parse_remaps(args.remap)
    out = []
    for bag in expand_bags(args.bags):
        frames = BagFrames(cache_frames(bag, params, remaps, tick=tick))
        train, val = time_split(frames.stamps, args.val_fraction, args.gap)
        ids = frames.frame_ids()
        text = f"bag {bag}: frames 0:{len(train)} (train)" + (
            f", {val.start}:{val.stop} (val), {args.gap} s apart" if len(val) else ""
        )
        out.append(
            Source("bags", frames, [ids[i] for i in train], [ids[i] for i in val], True, text)
        )
    for bag in expand_bags(args.val_bags or []):
        frames = BagFrames(cache_frames(bag, params, remaps, tick=tick))
        text = f"bag {bag}: {len(frames.frame_ids())} frames (held out: val)"
        out.append(Source("held_out", frames, [], frames.frame_ids(), False, text))
    return out


def load_training_data(args, device: torch.device) -> TrainingData:
    """The frames of the sources ``args`` name (bags with --bags, else data set folders),
    projected once and moved to ``device`` once; training frames in source order."""
    sources = bag_sources(args) if args.bags else folder_sources(args)
    split = [s.text for s in sources]
    samples: list[torch.Tensor] = []
    ring_samples: list[torch.Tensor] = []
    ring_of: list[int] = []
    neighbours: dict[int, Neighbours] = {}
    validation: dict[str, list] = {}
    for source in sources:
        if source.val:
            validation.setdefault(source.name, []).extend(read_frames(source.reader, source.val))
        first = len(samples)
        for fid in source.train:
            frame = source.reader.read(fid)
            sample = project_frame(frame, MIN_DEPTH, MAX_DEPTH)
            if args.ring_holdout > 0:
                try:
                    rings = ring_inputs(frame, MIN_DEPTH, MAX_DEPTH)
                    ring_samples.append(torch.cat([sample, rings], 1).to(device))
                    ring_of.append(len(samples))
                except ValueError:  # no rings (DDAD's LiDAR does not scan ring by ring)
                    pass
            samples.append(sample.to(device))
        if args.photometric > 0 and source.sequence:
            by_frame = training_neighbours(source.reader, source.train, args.baseline)
            for k, fid in enumerate(source.train):
                if fid in by_frame:
                    neighbours[first + k] = by_frame[fid].to(device)
    if args.photometric > 0:
        split.append(
            f"photometric: {len(neighbours)} of the training frames have neighbours "
            f"(camera moved >= {args.baseline} m)"
        )
    return TrainingData(
        samples=samples,
        ring_samples=ring_samples,
        ring_of=ring_of,
        tops=[first_row(t) for t in samples],
        ring_tops=[first_row(t) for t in ring_samples],
        neighbours=neighbours,
        validation=validation,
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
    network under autocast (the losses in float32).

    Distributed (torch.distributed initialised, e.g. under ``torchrun``): every process draws
    the same global batch of ``args.batch`` crops and keeps its share, the network is wrapped in
    DistributedDataParallel, and ``combine`` normalises every loss over the global batch, so
    that N processes take the step one process takes (``net`` is the network itself)."""

    def __init__(self, args, data: TrainingData, device: torch.device) -> None:
        self.args, self.data, self.device = args, data, device
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        config = {"attention_keep": args.attention_keep} if args.attention_keep else {}
        config.update({"prefill": args.prefill} if args.prefill else {})
        self.net = build_model(args.model, config).to(device)
        self.model: torch.nn.Module = self.net
        if self.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        params = list(
            self.net.confidence_parameters()
            if args.train == "confidence"
            else self.net.parameters()
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
        h, w = args.crop
        crops = [random_crop(pool[i], tops[i], h, w, rng) for i in chosen]
        batch = torch.cat([c for c, _ in crops])
        depth, mask = batch[:, :1], batch[:, 1:2]
        rgb = colour_jitter(batch[:, 2:5], self.gen)
        if lines:
            v = 5 + 2 * rng.randrange(data.variants)
            inp, inp_mask = batch[:, v : v + 1], batch[:, v + 1 : v + 2]
        else:
            inp, inp_mask, _ = random_holdout(depth, mask, rng.uniform(*args.keep))
        places = [place for _, place in crops]
        full = Batch(depth, mask, inp, inp_mask, rgb, batch[:, 2:5], chosen, places, lines)
        return full if self.world == 1 else self.share(full)

    def share(self, b: Batch) -> Batch:
        """This process's share of the global batch ``b``: a contiguous slice of its crops."""
        lo, hi = (
            self.rank * len(b.chosen) // self.world,
            (self.rank + 1) * len(b.chosen) // self.world,
        )
        cut = {
            k: getattr(b, k)[lo:hi] for k in ("depth", "mask", "inp", "inp_mask", "rgb", "raw_rgb")
        }
        return Batch(**cut, chosen=b.chosen[lo:hi], places=b.places[lo:hi], lines=b.lines)

    def loss(self, b: Batch) -> torch.Tensor:
        """The weighted sum of the losses ``args`` switch on, for one batch (``combine``)."""
        args, model = self.args, self.model
        with torch.autocast(
            self.device.type, dtype=self.autocast or torch.float32, enabled=bool(self.autocast)
        ):
            pred, conf = model(b.inp, b.inp_mask, b.rgb)
        pred, conf = pred.float(), conf.float()
        targets = b.mask * (1 - b.inp_mask) * visible(b.depth, b.mask, args.clean_targets)
        learned = self.net.learned_confidence
        terms = [
            (
                args.depth_weight,
                *depth_terms(pred, conf, b.depth, targets, args.loss, learned, args.l2_weight),
            )
        ]
        if args.smoothness:
            terms.append((args.smoothness, *row_smoothness(pred, b.rgb)))
        if args.keep_input:
            at = (b.inp_mask > 0) & (pred > 0)
            kept = torch.log(pred.clamp(min=0.1)) - torch.log(b.inp.clamp(min=0.1))
            terms.append((args.keep_input, kept.abs()[at].sum(), at.sum()))
        if self.data.neighbours:
            samples = [self.data.ring_of[i] for i in b.chosen] if b.lines else b.chosen
            views = [self.data.neighbours.get(i) for i in samples]
            support = near_returns(b.inp_mask, args.photometric_support)
            photo = batch_photometric_loss(pred, b.raw_rgb, b.places, views, support)
            terms.append((args.photometric, *photo))
        return self.combine(terms)

    def combine(self, terms: list[tuple[float, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The sum of weight x total / count over ``terms``, each count over the global batch:
        in a distributed run the processes' counts are summed, and the loss is scaled by their
        number (DDP averages the gradients), so that N processes take exactly the step one
        process takes with the whole batch."""
        counts = torch.stack([n.to(torch.float32) for _, _, n in terms])
        if self.world > 1:
            dist.all_reduce(counts)
        loss = sum(w * t / n.clamp(min=1) for (w, t, _), n in zip(terms, counts))
        return loss * self.world

    def step(self) -> float:
        """One optimiser step; the loss of the global batch (a float: the device is
        synchronised)."""
        loss = self.loss(self.batch())
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        value = loss.detach() / self.world
        if self.world > 1:
            dist.all_reduce(value)
        return value.item()

    def completer(self) -> DepthCompleter:
        """The network as it is now, in evaluation mode, as a completer on the training device."""
        return DepthCompleter(
            self.args.model, str(self.device), model=self.net.eval(), channels_last=False
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


def state_path(out: "str | Path") -> Path:
    """Where a run writing ``out`` keeps its training state (``--resume`` reads it)."""
    return Path(f"{out}.state")


def save_state(trainer: Trainer, out: "str | Path", progress: dict) -> None:
    """The network, optimiser, schedule and random generators with ``progress`` (step,
    history, best, running loss, seconds), written atomically beside ``out``."""
    state = {
        "net": trainer.net.state_dict(),
        "opt": trainer.opt.state_dict(),
        "sched": trainer.sched.state_dict(),
        "rng": trainer.rng.getstate(),
        "gen": trainer.gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        **progress,
    }
    path = state_path(out)
    torch.save(state, str(path) + ".partial")
    os.replace(str(path) + ".partial", path)


def load_state(trainer: Trainer, out: "str | Path") -> dict:
    """The progress saved beside ``out``, with the trainer put back where it was."""
    path = state_path(out)
    if not path.is_file():
        raise ValueError(f"--resume: {path} does not exist (no earlier run wrote {out})")
    state = torch.load(str(path), map_location=trainer.device, weights_only=True)
    trainer.net.load_state_dict(state["net"])
    trainer.opt.load_state_dict(state["opt"])
    trainer.sched.load_state_dict(state["sched"])
    trainer.rng.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["rng"]))
    trainer.gen.set_state(state["gen"].cpu())
    torch.set_rng_state(state["torch_rng"].cpu())
    return {k: state[k] for k in ("step", "history", "best", "running", "seconds")}


class RunLog:
    """What a run says, from its first process only: lines on stdout, a progress bar, and
    TensorBoard event files beside the checkpoint (``<out>.tensorboard/``: the loss of every
    step, each validation's errors and score, and a preview of the first validation frame's
    depth) when tensorboard is installed (else one line says so)."""

    def __init__(self, args, rank: int, start: int) -> None:
        self.on = rank == 0
        self.writer = None
        self.bar = tqdm(
            total=args.steps,
            initial=start,
            desc="train",
            unit="step",
            file=sys.stderr,
            leave=False,
            disable=True if (args.quiet or not self.on) else None,
        )
        if not self.on:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.line("train: no TensorBoard event files (pip install tensorboard)")
        else:
            self.writer = SummaryWriter(log_dir=f"{args.out}.tensorboard", purge_step=start + 1)

    def line(self, text: str) -> None:
        if self.on:
            print(text, flush=True)

    def step(self, step: int, loss: float) -> None:
        self.bar.update(1)
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)

    def validation(self, step: int, metrics: dict, value: float, preview: np.ndarray) -> None:
        if self.writer is None:
            return
        for name, m in metrics.items():
            for key in ("rmse_mm", "mae_mm", "coverage"):
                self.writer.add_scalar(f"val/{name}/{key}", m[key], step)
        self.writer.add_scalar("val/score", value, step)
        self.writer.add_image("val/depth", preview, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def preview(completer: DepthCompleter, frame) -> np.ndarray:
    """The first validation frame's dense depth, coloured (H, W, 3) uint8."""
    with torch.inference_mode():
        sample = project_frame(frame, MIN_DEPTH, MAX_DEPTH).to(completer.device)
        dense, _ = completer.complete(sample[:, :1], sample[:, 1:2], sample[:, 2:5])
    return colorize_depth(dense[0, 0].cpu().numpy())


def init_distributed(args) -> str:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on CUDA, gloo on the CPU)
    and return this process's device (cuda:LOCAL_RANK on CUDA); else ``args.device``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return args.device
    cuda = args.device.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo")
    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if cuda else args.device


def main(argv: "list[str] | None" = None) -> int:
    args = parser().parse_args(argv)
    check_options(args)
    device = resolve_device(init_distributed(args))
    if not dist.is_initialized():
        return train(args, device, argv)
    try:
        status = train(args, device, argv)
    finally:
        dist.destroy_process_group()
    # the work is done and written; left to the interpreter's exit, gloo's threads can end a
    # torchrun worker in "terminate called without an active exception" (SIGABRT: 2 of 41 runs
    # of two processes here; ended here, none of 60)
    exit_now(status)


def train(args, device: torch.device, argv: "list[str] | None") -> int:
    """Load the data, train (from the saved state with --resume), write the checkpoint."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_training_data(args, device)
    first = next(iter(data.validation))  # the training recording's own held-out frames
    select = [k for k in args.select.split(",") if k in data.validation] or [first]
    trainer = Trainer(args, data, device)
    if args.init:
        message = init_model(trainer.net, args.init)
    progress = load_state(trainer, args.out) if args.resume else None
    log = RunLog(args, trainer.rank, progress["step"] if progress else 0)
    log.line(
        f"train frames {len(data.samples)}, validation frames "
        + ", ".join(f"{k} {len(v)}" for k, v in data.validation.items())
        + (
            f"; {data.variants} scan-line inputs per frame of {len(data.ring_samples)}"
            if data.variants
            else ""
        )
        + (f"; {trainer.world} processes" if trainer.world > 1 else "")
    )
    if args.init:
        log.line(message)
    if progress:
        log.line(f"resumed at step {progress['step']} from {state_path(args.out)}")
    reference = validate(DepthCompleter(REFERENCE, "cpu"), data.validation, args.seed)
    log.line(
        f"{REFERENCE} val rmse / mae mm: "
        + ", ".join(f"{k} {m['rmse_mm']:.0f} / {m['mae_mm']:.0f}" for k, m in reference.items())
    )
    try:
        history, best = run(trainer, reference, select, log, progress)
    finally:
        log.close()
    if trainer.rank:
        return 0
    trainer.net.load_state_dict(best[2])
    provenance = run_provenance(args, argv, data, history, best, select, reference)
    save_checkpoint(args.out, args.model, trainer.net.cpu(), provenance)
    log.line(f"kept step {best[1]} (score {best[0]:.3f}); wrote {args.out}")
    return 0


def run_provenance(
    args,
    argv: "list[str] | None",
    data: TrainingData,
    history: list[dict],
    best: tuple,
    select: list[str],
    reference: dict,
) -> dict:
    """What the checkpoint says of the run that made it: command, data, init, seed, steps, the
    step kept and why, its metrics and the validation history."""
    kept = next(h for h in history if h["step"] == best[1])
    first = next(iter(data.validation))
    return {
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
                "model": {"step": best[1], **kept[f"{first} random:0.5"]},
                "sets": kept,
                REFERENCE: reference,
            }
        ),
        "history": json.dumps(history),
    }


def run(
    trainer: Trainer, reference: dict, select: list[str], log: RunLog, progress: "dict | None"
) -> tuple[list[dict], tuple]:
    """The training loop: ``args.steps`` steps (from ``progress`` on: a resumed run) with a
    validation every ``args.eval_every`` (and at the last) by the first process, which saves
    the training state then; the history of validations and the best (score, step, weights)."""
    args = trainer.args
    progress = progress or {"step": 0, "history": [], "best": None, "running": 0.0, "seconds": 0}
    history, best, running = progress["history"], progress["best"], progress["running"]
    t0 = time.time() - progress["seconds"]
    for step in range(progress["step"] + 1, args.steps + 1):
        loss = trainer.step()
        running += loss
        log.step(step, loss)
        if (step % args.eval_every and step != args.steps) or trainer.rank:
            continue
        completer = trainer.completer()
        metrics = validate(completer, trainer.data.validation, args.seed)
        image = preview(completer, next(iter(trainer.data.validation.values()))[0])
        trainer.model.train()
        value = score(metrics, reference, select)
        seconds = round(time.time() - t0, 1)
        mean = running / args.eval_every
        history.append({"step": step, "loss": mean, "score": value, "seconds": seconds, **metrics})
        if best is None or value < best[0]:
            best = (value, step, copy.deepcopy(trainer.net.state_dict()))
        log.line(
            f"step {step:5d} loss {mean:.4f} val rmse / mae mm "
            + ", ".join(f"{k} {m['rmse_mm']:.0f} / {m['mae_mm']:.0f}" for k, m in metrics.items())
            + f"; score {value:.3f}{' (best)' if best[1] == step else ''} ({seconds:.0f} s)"
        )
        log.validation(step, metrics, value, image)
        running = 0.0
        save_state(
            trainer,
            args.out,
            {
                "step": step,
                "history": history,
                "best": best,
                "running": running,
                "seconds": seconds,
            },
        )
    return history, best


if __name__ == "__main__":
    sys.exit(main())
