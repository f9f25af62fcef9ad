"""Checkpoint format: weights + model config + provenance, loadable without pickle execution.

A checkpoint is a dict saved with ``torch.save``: ``format``, ``model`` (a name in
methods.NETWORKS),
``config`` (constructor keyword arguments), ``state_dict`` and ``provenance`` (data, command,
seed, metrics; plain strings and numbers). It is read back with ``torch.load(weights_only=True)``,
so a weights file cannot run code.
"""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ..methods import TRAINABLE
from .base import DepthNetwork, probe_problem

FORMAT = "sparse_depth_node/checkpoint/1"


def model_class(name: str) -> type[DepthNetwork]:
    """The class of network ``name`` (a key of methods.TRAINABLE)."""
    if name not in TRAINABLE:
        raise ValueError(f"unknown model '{name}', expected one of {sorted(TRAINABLE)}")
    module, cls = TRAINABLE[name].split(":")
    found: type[DepthNetwork] = getattr(importlib.import_module(f"{__package__}.{module}"), cls)
    return found


def build_model(name: str, config: "dict[str, Any] | None" = None) -> DepthNetwork:
    """A new model ``name`` (a key of methods.TRAINABLE) built with ``config``."""
    cls = model_class(name)
    cfg = dict(config or {})
    for key in ("kernels", "channels"):
        if isinstance(cfg.get(key), list):
            cfg[key] = tuple(cfg[key])
    return cls(**cfg)


def save_checkpoint(
    path: "str | Path", name: str, model: DepthNetwork, provenance: dict[str, Any]
) -> None:
    """Write ``model`` (built as ``name`` with ``model.config``) and its provenance to ``path``."""
    torch.save(
        {
            "format": FORMAT,
            "model": name,
            "config": dict(model.config),
            "state_dict": model.state_dict(),
            "provenance": provenance,
        },
        str(path),
    )


def read_checkpoint(
    path: "str | Path", map_location: "str | torch.device" = "cpu"
) -> dict[str, Any]:
    """The checkpoint dict stored at ``path``, read without executing code.

    Raises ValueError naming the file when it is missing or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's own lines about the pickle: said below
            warnings.simplefilter("ignore")
            ckpt = torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as exc:  # a pickle that is not plain data (never run), a damaged file
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            raise ValueError(
                f"weights file {path} holds objects other than tensors and plain values "
                f"({found.group(1)}): refused without running them (a checkpoint of "
                "sparse-depth train holds none)"
            ) from None
        raise ValueError(
            f"weights file {path} cannot be read: not a checkpoint, or damaged "
            f"({type(exc).__name__})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"weights file {path} is not a {FORMAT} checkpoint")
    return ckpt


def load_checkpoint(
    path: "str | Path", map_location: "str | torch.device" = "cpu"
) -> tuple[DepthNetwork, dict[str, Any]]:
    """The model stored at ``path`` and the checkpoint's dict (without the state dict).

    Raises ValueError naming the file when it is missing, not a checkpoint, names an unknown
    model, holds a config the model cannot be built from, entries that are not real
    floating-point tensors or whose names or shapes do not fit that model (checked on the meta
    device first, so no config allocates memory), or when the network built cannot complete a
    test frame (base.probe_problem: a config value of the wrong type or zero, NaN weights).
    """
    path = Path(path)
    ckpt = read_checkpoint(path, map_location)
    name, config, state = (ckpt.get(k) for k in ("model", "config", "state_dict"))
    if not isinstance(name, str):
        raise ValueError(f"weights file {path} names no model")
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise ValueError(f"weights file {path} has no model config or no state dict")
    try:
        with torch.device("meta"):  # built without memory first: a huge config costs nothing
            shapes = {k: tuple(v.shape) for k, v in build_model(name, config).state_dict().items()}
    except Exception as exc:  # a constructor given odd values may raise anything
        raise ValueError(
            f"weights file {path}: model '{name}' cannot be built from its config {config}: {exc}"
        ) from None
    odd = sorted(
        k for k, v in state.items() if not isinstance(v, torch.Tensor) or not v.is_floating_point()
    )
    if odd:
        raise ValueError(
            f"weights file {path}: {', '.join(odd[:3])}{' ...' if len(odd) > 3 else ''} "
            "not real floating-point tensors"
        )
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if stored != shapes:
        wrong = sorted(set(shapes) ^ set(stored)) or sorted(
            k for k in shapes if shapes[k] != stored[k]
        )
        raise ValueError(
            f"weights file {path} does not fit model '{name}': tensors "
            f"{', '.join(wrong[:3])}{' ...' if len(wrong) > 3 else ''} differ"
        )
    model = build_model(name, config)
    model.load_state_dict(state)
    problem = probe_problem(model.eval())
    if problem:
        raise ValueError(f"weights file {path}: model '{name}' is unusable: {problem}")
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, meta
