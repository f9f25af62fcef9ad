"""The training run of ``sparse-depth train``: start-up (one process or torchrun's), the loop with
its validations, the run's log and TensorBoard events, and the checkpoint with its provenance
(what it does and its splits: train_options.DESCRIPTION, shown by --help). The data, the losses
and the trainer: train_data.py, train_losses.py, trainer.py."""

from __future__ import annotations

import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..core.completion import DepthCompleter, resolve_device
from ..core.methods import JUDGES
from ..core.models import save_checkpoint
from ..core.models.checkpoint import read_checkpoint
from ..core.models.judge import PREFILL
from ..core.runtime import exit_now
from ..data.depth_io import colorize_depth
from .evaluate import MAX_DEPTH, MIN_DEPTH, evaluate
from .train_data import TrainingData, load_training_data, project_frame
from .train_options import parser
from .trainer import Trainer, init_model, load_state, save_state, state_path

REFERENCE = "classic-full"  # the classical method a depth network's validation is scored against
VALIDATION = ("random:0.5", "lines:4")  # the evaluation's protocols; lines only where rings exist


def reference_method(args) -> str:
    """What validation compares with: REFERENCE, or for a judge the fill it judges (its
    confidence 1 wherever it fills)."""
    return str(args.prefill or PREFILL) if args.model in JUDGES else REFERENCE


def validate(completer: DepthCompleter, val: dict[str, list], seed: int) -> dict[str, dict]:
    """{"SET PROTOCOL": mean errors, and the confidence's Brier score and ECE} of ``completer``
    on each validation set (Frame lists)."""
    out = {}
    for name, frames in val.items():
        for protocol in VALIDATION:
            try:
                result = evaluate(frames, {"m": completer}, protocol, seed)
            except ValueError:  # no rings: the lines protocol does not apply
                continue
            m, c = result["methods"]["m"], result["confidence"]["m"]
            out[f"{name} {protocol}"] = {
                **{k: m[k] for k in ("rmse_mm", "mae_mm", "coverage")},
                **{k: c[k] for k in ("brier", "ece")},
            }
    return out


def score(metrics: dict, reference: dict, select: list[str], judge: bool = False) -> float:
    """Over the selected sets' protocols: the mean of the RMSE and MAE ratios to ``reference``;
    for a ``judge`` (whose depth is the fill's) the mean Brier score of its confidence."""
    keys = [k for k in metrics if k.split()[0] in select]
    if judge:
        return float(np.mean([metrics[k]["brier"] for k in keys]))
    return float(
        np.mean([metrics[k][e] / reference[k][e] for k in keys for e in ("rmse_mm", "mae_mm")])
    )


def validation_line(metrics: dict, judge: bool) -> str:
    """A validation's figures in one line: RMSE / MAE (mm) of a depth network, Brier score /
    ECE of a judge's confidence, each set and protocol."""
    if judge:
        figures = (f"{k} {m['brier']:.3f} / {m['ece']:.3f}" for k, m in metrics.items())
        return "Brier / ECE " + ", ".join(figures)
    figures = (f"{k} {m['rmse_mm']:.0f} / {m['mae_mm']:.0f}" for k, m in metrics.items())
    return "rmse / mae mm " + ", ".join(figures)


def check_options(args) -> None:
    """ValueError for options that do not go together."""
    if args.attention_keep and args.model != "guided":
        raise ValueError("--attention-keep applies only to --model guided: drop it")
    if args.prefill and args.model not in ("guided", *JUDGES):
        raise ValueError(
            "--prefill applies only to --model guided (the fill it corrects) and judge (the fill "
            "it judges): drop it"
        )
    if args.precision == "bf16" and args.device == "cpu":
        raise ValueError("--precision bf16 trains under CUDA autocast: add --device cuda")
    depth_only = [
        name
        for name, value in (
            ("--photometric", args.photometric),
            ("--smoothness", args.smoothness),
            ("--keep-input", args.keep_input),
        )
        if value
    ]
    if args.model in JUDGES and depth_only:
        raise ValueError(
            f"{' '.join(depth_only)} train a depth, and a judge's depth is the fill it judges: "
            "drop them"
        )


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
    name = reference_method(args)
    reference = validate(DepthCompleter(name, "cpu", judge=False), data.validation, args.seed)
    log.line(f"{name} val {validation_line(reference, args.model in JUDGES)}")
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
        + (
            "step with the lowest mean Brier score of the confidence"
            if args.model in JUDGES
            else f"step with the lowest mean RMSE and MAE relative to {REFERENCE}"
        )
        + f" on {', '.join(select)}",
        "metrics": json.dumps(
            {
                "model": {"step": best[1], **kept[f"{first} random:0.5"]},
                "sets": kept,
                reference_method(args): reference,
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
        value = score(metrics, reference, select, args.model in JUDGES)
        seconds = round(time.time() - t0, 1)
        mean = running / args.eval_every
        history.append({"step": step, "loss": mean, "score": value, "seconds": seconds, **metrics})
        if best is None or value < best[0]:
            best = (value, step, copy.deepcopy(trainer.net.state_dict()))
        log.line(
            f"step {step:5d} loss {mean:.4f} val {validation_line(metrics, args.model in JUDGES)}"
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
