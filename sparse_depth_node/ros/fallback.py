"""The node's model with its fallbacks: the configured model on the configured device with the
configured backend, else (unless ``strict``) the same model in torch, then on the CPU, else the
default's classical fill; and the move to the CPU when CUDA runs out of memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.completion import DepthCompleter
from ..core.methods import FALLBACK_METHOD


def cpu_precision(precision: str) -> str:
    """The precision a network runs at on the CPU instead of ``precision`` (fp16 is CUDA-only)."""
    return "fp32" if precision == "fp16" else precision


def cpu_backend(backend: str) -> str:
    """The backend a network runs with on the CPU instead of ``backend`` (TensorRT is
    CUDA-only: the CPU's default then)."""
    return "auto" if backend == "tensorrt" else backend


def load_completer(values: Mapping[str, Any]) -> tuple[DepthCompleter, "Exception | None"]:
    """The completer the settings ask for, or the first fallback that loads, with the error
    that made it fall back (None when the configured model loaded): the same model with the
    torch backend, then on the CPU, then the classical filler. With ``strict`` the error is
    raised instead."""
    model, device, precision = values["model"], values["device"], values["precision"]
    backend = values["backend"]
    attempts = [dict(method=model, device=device, precision=precision, backend=backend)]
    if backend not in ("auto", "torch"):
        attempts.append(dict(attempts[0], backend="torch"))
    if device != "cpu":
        cpu = dict(device="cpu", precision=cpu_precision(precision), backend=cpu_backend(backend))
        attempts.append(dict(method=model, **cpu))
    first_error = None
    for attempt in attempts:
        try:
            return DepthCompleter.from_settings(values, **attempt), first_error
        except Exception as exc:  # at any stage: loading, building, exporting, the test frame
            if values["strict"]:
                raise (
                    exc
                    if isinstance(exc, ValueError)
                    else ValueError(f"{type(exc).__name__}: {exc}")
                ) from exc
            first_error = first_error or exc
    return fallback_completer(values), first_error


def fallback_completer(values: Mapping[str, Any]) -> DepthCompleter:
    """The last fallback: the default's classical fill on the CPU, without a judge (always
    loads)."""
    return DepthCompleter.from_settings(
        values,
        method=FALLBACK_METHOD,
        device="cpu",
        precision="fp32",
        backend="torch",
        judge=False,
    )


def on_cpu(completer: DepthCompleter) -> DepthCompleter:
    """The same completer (network, weights' metadata, resolution) on the CPU, its network
    moved there, at ``cpu_precision`` with ``cpu_backend``."""
    return completer.replace(
        device="cpu",
        precision=cpu_precision(completer.precision),
        backend=cpu_backend(completer.options.backend),
    )
