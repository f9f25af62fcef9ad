"""The trainer: a network, its optimiser and its training data on one device; each step a batch
of random crops with random hold-outs (scan lines or points) and colour jitter, its losses, one
optimiser step, the same on N processes as on one (DDP); its state saved and resumed."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ..core.completion import DepthCompleter
from ..core.methods import JUDGES
from ..core.models import build_model
from ..core.models.checkpoint import read_checkpoint
from .metrics import random_holdout
from .train_data import TrainingData
from .train_losses import (
    batch_photometric_loss,
    depth_terms,
    near_returns,
    row_smoothness,
    visible,
)


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
                *depth_terms(
                    pred,
                    conf,
                    b.depth,
                    targets,
                    args.loss,
                    learned,
                    args.l2_weight,
                    depth=args.model not in JUDGES,
                ),  # fmt: skip
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
