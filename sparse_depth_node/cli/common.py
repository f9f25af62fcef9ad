"""What the commands share: the help formatter, the progress bar, and the options that come
from one place (the data-set options; the settings' options, generated from core.settings).
Imports nothing heavy: ``--help`` stays instant."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# the bundled sample of a source checkout: `bench` runs on it when no --data is given
SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "kitti_raw_2011_09_26"


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help shows its default; descriptions keep their lines."""


def progress(args: argparse.Namespace, desc: str, total: "int | None" = None, unit: str = "frame"):
    """A tqdm bar on stderr: hidden with --quiet, and when stderr is not a terminal. Redrawn at
    every step (they are frames or passes, each long enough to see), so the last count shows."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        mininterval=0,
        miniters=1,
        disable=True if getattr(args, "quiet", False) else None,
    )


def quiet_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress output")


def setting_option(p: argparse.ArgumentParser, name: str, **overrides) -> None:
    """``--NAME`` (dashes for underscores) for the setting ``name`` of core.settings: its
    default, description, choices and type; ``overrides`` change any of them."""
    from ..core.settings import BY_NAME

    s = BY_NAME[name]
    kwargs = {"default": s.default, "help": s.description}
    if s.choices:
        kwargs["choices"] = s.choices
    if type(s.default) in (int, float):
        kwargs["type"] = type(s.default)
    p.add_argument("--" + name.replace("_", "-"), **{**kwargs, **overrides})


def speed_options(p: argparse.ArgumentParser) -> None:
    """The settings that choose how a network runs: device, backend, inference_scale,
    precision and threads (the process's CPU threads, set by ``main`` before the command
    runs)."""
    for name in ("device", "backend", "inference_scale", "precision", "threads"):
        setting_option(p, name)


def data_options(
    p: argparse.ArgumentParser, data_default: "str | None" = None, required: bool = True
) -> None:
    """--data, --format and --camera: a data set folder (required unless ``data_default`` or
    not ``required``: another option can name the data)."""
    from ..data.datasets import FORMATS

    required = required and data_default is None
    p.add_argument(
        "--data",
        required=required,
        default=data_default,
        help="data set folder (the layout of --format)",
    )
    p.add_argument(
        "--format",
        required=required,
        default=None if required else "kitti-raw",
        choices=FORMATS,
        help="data set layout",
    )
    p.add_argument(
        "--camera",
        default=None,
        help="camera: KITTI raw index (2) or DDAD name (CAMERA_01); default: the first",
    )
