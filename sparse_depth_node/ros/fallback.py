"""The node's model with its fallbacks: the configured model on the configured device, else
(unless ``strict``) the same model on the CPU, else the classical filler; and the move to the CPU
when CUDA runs out of memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.completion import DepthCompleter
from ..core.methods import FALLBACK_METHOD


def cpu_precision(precision: str) -> str:
    """The precision a network runs at on the CPU instead of ``precision`` (fp16 is CUDA-only)."""
    return "fp32" if precision == "fp16" else precision


def load_completer(values: Mapping[str, Any]) -> tuple[DepthCompleter, "Exception | None"]:
    """The completer the settings ask for, or the first fallback that loads, with the error
    that made it fall back (None when the configured model loaded). With ``strict`` the error
    is raised instead."""
    model, device, precision = values["model"], values["device"], values["precision"]
    attempts = [(model, device, precision)]
    attempts += [(model, "cpu", cpu_precision(precision))] if device != "cpu" else []
    attempts += [(FALLBACK_METHOD, "cpu", "fp32")]
    first_error = None
    for m, d, prec in attempts:
        try:
            return DepthCompleter.from_settings(values, method=m, device=d, precision=prec), (
                first_error
            )
        except ValueError as exc:
            if values["strict"]:
                raise
            first_error = first_error or exc
    raise first_error  # unreachable: the classical filler on the CPU always loads


def on_cpu(completer: DepthCompleter) -> DepthCompleter:
    """The same completer (network, weights' metadata, resolution) on the CPU, its network
    moved there, at ``cpu_precision``."""
    return completer.replace(device="cpu", precision=cpu_precision(completer.precision))
