"""The options of ``sparse-depth train``, apart from the training code so that ``--help``
answers without loading torch."""

from __future__ import annotations

import argparse

from ..core.methods import TRAINABLE
from ..core.options import renamed

DESCRIPTION = """\
Self-supervised training from LiDAR alone: the input is a random subset of a frame's
projected points, the target the held-out rest. (Targets accumulated from the neighbouring
sweeps, on ICP poses and again on the camera's, were measured and lost; docs/EVALUATION.md keeps
the figures.)

With --ring-holdout, that share of the batches takes every 2nd or 4th scan line as input and
the other lines as targets (the evaluation's lines:K protocol). A network that needs the image
(guided, judge) gets each crop's image, colour-jittered.

--model judge trains the confidence of a classical fill (--prefill, default classic-refined:
the default model's), its depth the fill unchanged: the probability that the fill is within
5 % of each held-out return. Give it whole frames (--crop 375 1242: the fill of a crop is not
the fill of the frame) and no depth losses; its kept step is the one with the lowest Brier score.

Splits (defaults): train on KITTI raw frames 0-59, DDAD scene_01 and the KITTI object frames of
other drives and days except --extra-val; validate on KITTI raw 60-77, the --extra-val frames
(other drives, and a recording day absent from training) and the other rig (--rig, never
trained on), each with a seeded random 50 % hold-out, scored against classic-full in the same
run. The weights kept are those of the validation step with the lowest mean RMSE relative to
classic-full on the --select sets (by default the other drives and the other rig, not frames
of the training drive).
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparse-depth train",
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--bags",
        nargs="+",
        default=None,
        help="train on these rosbag2 recordings (bags, or folders of bags) instead of the data "
        "set folders below: each decoded once into a frame cache as the node reads its topics "
        "(--params, --remap), the last --val-fraction of each by time validates",
    )
    p.add_argument(
        "--val-bags",
        nargs="+",
        default=None,
        help="recordings that only validate (set 'held_out': never trained on); with them "
        "--val-fraction may be 0",
    )
    p.add_argument("--params", default=None, help="node parameter YAML for --bags (topics, TF)")
    p.add_argument(
        "--remap", nargs="*", default=[], help="input topics of --bags, e.g. lidar/points:=/velo"
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="share of each bag's frames, its last by time, that validates (0: none)",
    )
    p.add_argument(
        "--gap",
        type=float,
        default=1.0,
        help="seconds between a bag's last training frame and its first validation frame (no "
        "neighbouring frames on both sides)",
    )
    p.add_argument(
        "--data",
        default="../shared/data/kitti_raw_2011_09_26",
        help="KITTI raw drive folder (training and validation frames)",
    )
    renamed(p, "--kitti", "--data", "data")
    p.add_argument(
        "--ddad",
        default="../shared/data/ddad_test_scene/scene_01",
        help="DDAD scene folder added to the training frames ('' for none)",
    )
    p.add_argument(
        "--extra",
        default="../shared/data/kitti_object_extra",
        help="KITTI object folder of other drives and days: --extra-val frames validate, the "
        "rest train ('' for none)",
    )
    p.add_argument(
        "--extra-val",
        default="000000,000003,000008,000009,000010",
        help="frames of --extra held out for validation (ids or indices, comma-separated)",
    )
    p.add_argument(
        "--rig",
        default="../shared/data/pjlab_opencalib",
        help="KITTI object folder of another rig, validation only ('' for none)",
    )
    p.add_argument(
        "--select",
        default="extra,rig",
        help="validation sets whose mean RMSE (relative to classic-full) picks the weights kept",
    )
    p.add_argument("--train-frames", default="0:60", help="KITTI frames A:B to train on")
    p.add_argument("--val-frames", default="60:78", help="KITTI frames A:B to validate on")
    p.add_argument(
        "--model",
        default="sparseconv",
        choices=sorted(TRAINABLE),
        help="network to train (judge: the confidence of a classical fill, its depth unchanged)",
    )
    p.add_argument(
        "--attention-keep",
        type=float,
        default=0.0,
        help="guided only: add top-k sparse self-attention at the coarsest scale, each query "
        "keeping this share of the keys (0: none)",
    )
    p.add_argument(
        "--prefill",
        default=None,
        choices=("classic-full", "classic-multiscale", "classic-refined"),
        help="guided: the classical fill the network corrects (default classic-full); judge: "
        "the fill it judges (default classic-refined)",
    )
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps")
    p.add_argument("--batch", type=int, default=4, help="random crops per step")
    p.add_argument(
        "--crop", type=int, nargs=2, default=[192, 512], metavar=("H", "W"), help="crop size, px"
    )
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine decay)")
    p.add_argument(
        "--keep",
        type=float,
        nargs=2,
        default=[0.3, 0.9],
        metavar=("MIN", "MAX"),
        help="input density range, as a fraction of the frame's points",
    )
    p.add_argument("--loss", default="l2", choices=["l1", "l2", "l1+l2"], help="depth loss")
    p.add_argument(
        "--smoothness",
        type=float,
        default=0.0,
        help="weight of an edge-aware penalty on row-to-row changes of log depth (stripes)",
    )
    p.add_argument(
        "--l2-weight", type=float, default=1.0, help="weight of the L2 term (per m^2 of error)"
    )
    p.add_argument(
        "--photometric",
        type=float,
        default=0.0,
        help="weight of the photometric loss: the neighbouring KITTI frames (the nearest each "
        "side whose camera moved >= --baseline m, poses from the frame's LiDAR returns tracked "
        "into the other image, within the training frames) warped into the crop with its "
        "depth, Monodepth2's per-pixel minimum and auto-mask (docs/EVALUATION.md)",
    )
    p.add_argument(
        "--baseline", type=float, default=0.2, help="least camera motion (m) of a neighbour"
    )
    p.add_argument(
        "--photometric-support",
        type=int,
        default=0,
        metavar="PX",
        help="the photometric loss only within PX px of an input return (0: everywhere): "
        "nothing vouches for a surface with no return near, such as glass, which shows a "
        "reflection of a scene farther away (docs/EVALUATION.md)",
    )
    p.add_argument(
        "--clean-targets",
        type=float,
        default=0.0,
        help="drop held-out returns more than this fraction behind the nearest return within "
        "3 px (LiDAR-camera parallax: background the camera does not see); 0: keep all",
    )
    p.add_argument(
        "--depth-weight",
        type=float,
        default=1.0,
        help="weight of the held-out depth loss (and its confidence term); 0 with --photometric: "
        "trained by the other views alone",
    )
    p.add_argument(
        "--keep-input",
        type=float,
        default=0.0,
        help="weight of |log depth - log input| at the input's LiDAR pixels (keep the returns)",
    )
    p.add_argument(
        "--ring-holdout",
        type=float,
        default=0.0,
        help="share of the batches whose input is every 2nd or 4th scan line of a KITTI frame "
        "and whose "
        "targets are the other lines (the rest: a random hold-out)",
    )
    p.add_argument(
        "--init",
        default=None,
        help="start from this checkpoint's weights (new modules keep their init)",
    )
    p.add_argument(
        "--train",
        default="all",
        choices=["all", "confidence"],
        help="which parameters learn: all, or only the confidence branch (the depth stays as "
        "in --init)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=500,
        help="steps between validations (a line with loss and metrics each)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (crops, hold-outs, init)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16"],
        help="the network's forward pass in float32, or in bfloat16 under CUDA autocast (the "
        "losses stay float32)",
    )
    p.add_argument("--out", required=True, help="checkpoint path to write")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run that writes --out from its last validation (OUT.state, saved at "
        "each); the same options as that run",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p
