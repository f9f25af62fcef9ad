"""The node's model: the completer the settings ask for, and what happens when it fails, each
said in one line and counted: a model that cannot load, or cannot run its first frame, gives
way to the classical filler on the CPU (``model_fallback``); CUDA out of memory moves the same
model to the CPU for good (``cuda_oom_fallback``). With ``strict`` each fails instead."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from ..core.completion import DepthCompleter
from ..msgs.frame import warm_up
from ..msgs.outputs import MessageKit, enabled_outputs
from ..msgs.stats import PipelineStats
from .fallback import fallback_completer, load_completer, on_cpu

T = TypeVar("T")


class NodeModel:
    """``completer``, chosen from ``values`` (read-only settings: model, device, backend,
    precision, strict, ...) with ``load_completer``'s fallbacks; ``logger`` an rclpy logger."""

    def __init__(self, values: Mapping[str, Any], stats: PipelineStats, logger: Any) -> None:
        self.values, self.stats, self.logger = dict(values), stats, logger
        self.strict = bool(values["strict"])
        self.completer, error = load_completer(values)
        if error is not None:
            self.stats.count("model_fallback")
            self.logger.error(
                f"cannot use model '{values['model']}' on '{values['device']}': {error}; "
                f"falling back to {self.completer.description} (strict:=true fails instead)"
            )

    def run(self, work: Callable[[DepthCompleter], T]) -> T:
        """``work(completer)``; after a CUDA out-of-memory error, once more on the CPU."""
        try:
            return work(self.completer)
        except torch.cuda.OutOfMemoryError as exc:
            if self.strict:
                raise
            self.completer = on_cpu(self.completer)
            self.stats.count("cuda_oom_fallback")
            self.logger.error(
                f"CUDA out of memory ({exc}); running {self.completer.description} from now on"
            )
            return work(self.completer)

    def warm_up(self, values: Mapping[str, Any], kit: MessageKit, size: tuple[int, int]) -> float:
        """A synthetic frame of ``size`` (width, height) through the frame path, on the calling
        thread (the kernels chosen are its); ms. A model that fails it gives way to the
        default's classical fill on the CPU (with ``strict``, or for a filler, it raises)."""

        def once() -> float:
            return self.run(lambda c: warm_up(c, values, enabled_outputs(values), kit, *size))

        try:
            return once()
        except Exception as exc:  # a model that cannot run its first frame
            if self.strict or self.completer.model is None:
                raise
            failed = self.completer.description
            self.completer = fallback_completer(self.values)
            self.stats.count("model_fallback")
            self.logger.error(
                f"model {failed} failed its first frame ({type(exc).__name__}: {exc}); falling "
                f"back to {self.completer.description} (strict:=true fails instead)"
            )
            return once()
