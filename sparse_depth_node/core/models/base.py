"""The network contract: what every depth-completion network states and takes, so that the
completer, training, the benchmarks and an export read it without probing.

A network is a ``DepthNetwork``: registered by name in ``methods.NETWORKS``, built from its
``config`` (the constructor's keyword arguments, stored in checkpoints), and called as

    dense, confidence = network(depth, mask, rgb, fill)

with depth (B, 1, H, W) metres (0 = empty), mask (B, 1, H, W) in {0, 1}, rgb (B, 3, H, W) in
[0, 1] or None (read only when ``needs_image``), fill the ``prefill`` of a larger window cropped
to this one or None (computed inside when the network has a prefill); it returns dense depth
(B, 1, H, W) metres and confidence (B, 1, H, W) in [0, 1], both 0 where there is no estimate.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

Tensor = torch.Tensor
MaybeTensor = torch.Tensor | None  # the forward signature's optional image and fill
GOOD_FRACTION = 0.05  # |depth error| <= 5 % of the true depth: what a learned confidence predicts


class DepthNetwork(nn.Module):
    """Base class of the networks. Class attributes state what a network takes and gives;
    instance attributes, set by the constructor, state its geometry (pixels, full resolution).

    - ``needs_image``: it reads the camera image (``rgb`` must be given).
    - ``learned_confidence``: its confidence is a trained probability (trained against "the
      error is within GOOD_FRACTION of the depth"), not the reach of its mask stream.
    - ``onnx_on_cpu``: ONNX Runtime runs it faster than torch on the CPU (backend auto's
      choice there; measured per network, docs/SPEED.md).
    - ``support_margin``: no output lies farther than this from a LiDAR return, so the network
      may run on the window of the returns plus this margin; None: only on the whole image.
    - ``support_multiple``: such a window starts and ends on this grid (the coarsest scale).
    - ``receptive_radius``: no output depends on inputs farther away (given the same
      ``prefill``), so a large window may run in bands of rows with this much input around.
    - ``config``: the constructor's keyword arguments (plain values), saved in checkpoints.
    """

    needs_image: ClassVar[bool] = False
    learned_confidence: ClassVar[bool] = False
    onnx_on_cpu: ClassVar[bool] = True

    def __init__(
        self,
        config: dict[str, Any],
        support_margin: "int | None",
        support_multiple: int = 1,
        receptive_radius: "int | None" = None,
    ) -> None:
        super().__init__()
        self.config = dict(config)
        self.support_margin = support_margin
        self.support_multiple = support_multiple
        self.receptive_radius = support_margin if receptive_radius is None else receptive_radius

    def prefill(self, depth: torch.Tensor, mask: torch.Tensor) -> "torch.Tensor | None":
        """The classical fill (B, 1, H, W) metres that the network corrects, or None (no
        prefill). It is not local: the completer computes it once over the whole window and
        hands each band its crop as ``fill``."""
        return None

    @property
    def has_prefill(self) -> bool:
        """Whether the network corrects a classical fill (its class overrides ``prefill``)."""
        return type(self).prefill is not DepthNetwork.prefill

    def confidence_parameters(self) -> list[nn.Parameter]:
        """The parameters of a separate confidence branch (trainable alone, ``--train
        confidence``); empty when the confidence is learned together with the depth."""
        return []

    def forward(
        self, depth: Tensor, mask: Tensor, rgb: MaybeTensor = None, fill: MaybeTensor = None
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def probe_frame(height: int = 75, width: int = 141) -> dict[str, Tensor]:
    """A small synthetic frame: ``depth`` and ``mask`` (1, 1, H, W) with a return at 5 % of the
    pixels (seed 0) at 2-62 m, and ``rgb`` (1, 3, H, W) random; an odd size, on no network's
    grid. What a network is checked on before it is used, and traced with for its export."""
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(1, 1, height, width, generator=g) < 0.05).float()
    depth = (2.0 + 60.0 * torch.rand(1, 1, height, width, generator=g)) * mask
    return {"depth": depth, "mask": mask, "rgb": torch.rand(1, 3, height, width, generator=g)}


def probe_problem(net: DepthNetwork) -> "str | None":
    """Why ``net`` cannot complete ``probe_frame`` as the contract says, or None: it raises,
    or its depth and confidence are not finite (1, 1, H, W) tensors. Catches what a malformed
    but loadable checkpoint does at its first frame (a config value of the wrong type or zero,
    missing layers, NaN weights)."""
    frame = probe_frame()
    size = (1, 1, *frame["depth"].shape[-2:])
    try:
        with torch.no_grad():
            dense, conf = net(frame["depth"], frame["mask"], frame["rgb"])
    except Exception as exc:  # whatever a malformed network raises: said, never raised on
        return f"it fails on a test frame: {type(exc).__name__}: {exc}"
    for name, t in (("depth", dense), ("confidence", conf)):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != size:
            return f"its {name} on a test frame is not a {size} tensor"
        if not bool(torch.isfinite(t).all()):
            return f"its {name} on a test frame is not finite (NaN or infinite weights?)"
    return None
