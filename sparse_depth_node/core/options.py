"""Command-line option helpers shared by ``sparse-depth`` (cli/) and the training script's
parser (lab/train_options.py, apart from the training code so that --help needs no torch)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


class Renamed(argparse.Action):
    """An option's old spelling, accepted for a release: it sets the new option and says so
    in one line on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: "str | None" = None,
    ) -> None:
        print(
            f"{parser.prog}: warning: {option_string} is deprecated and will go: use {self.new}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def renamed(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """Accept ``old`` for the option ``new`` (whose value goes to ``dest``), with a warning."""
    p.add_argument(old, dest=dest, action=Renamed, new=new, **kwargs)
