"""Sparsity-invariant convolution and the SparseConvNet of Uhrig et al. (3DV 2017).

For input features x (B, C, H, W) and a validity mask m (B, 1, H, W) in {0, 1}:

    out(u, v)  = sum_ij m(u+i, v+j) x(u+i, v+j) w(i, j) / sum_ij m(u+i, v+j) + b
    mask'(u, v) = max_ij m(u+i, v+j)

Written the way it runs fast, with the same result for a binary mask:
- the features are zero wherever the mask is (the network masks its input once, and every
  layer zeroes its output where its new mask is 0), so ``m * x`` is ``x`` and the
  convolution takes x as it is;
- the denominator, the number of valid pixels under the kernel, is a box filter of the
  one-channel mask (the convolution with a ones kernel), computed separably as two 1-D
  average pools times the kernel area;
- the max-pooled mask is exactly ``count > 0``, so no max-pool is run.
The count is an integer >= 1 wherever the new mask is 1; where it is 0 the division is by 1
and the output is zeroed, so gradients stay finite (the authors' code uses where(count == 0)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import DepthNetwork, MaybeTensor, Tensor

PAPER_KERNELS = (11, 7, 5, 3, 3)
PAPER_CHANNELS = 16


def valid_count(mask: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Number of mask pixels set under each k x k window ('same' size, zero outside the image)."""
    k, p = kernel_size, kernel_size // 2
    if k == 1:
        return mask
    rows = F.avg_pool2d(mask, (1, k), stride=1, padding=(0, p))
    return F.avg_pool2d(rows, (k, 1), stride=1, padding=(p, 0)) * (k * k)


class SparseConv2d(nn.Module):
    """One sparsity-invariant convolution (stride 1, 'same' padding) and its mask pooling."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x must be zero where ``mask`` is 0; so is the output where the returned mask is."""
        count = valid_count(mask, self.kernel_size)
        new_mask = (count > 0.5).to(mask.dtype)
        out = F.conv2d(
            x, self.weight, padding=self.padding
        )  # in place below: no full-size temporaries
        return out.div_(count.clamp(min=1.0)).add_(self.bias.view(1, -1, 1, 1)).mul_(
            new_mask
        ), new_mask


class SparseConvNet(DepthNetwork):
    """The paper's network: sparse convs 11, 7, 5, 3, 3 with 16 channels + ReLU, then a 1x1 to
    depth.

    Input: sparse depth (B, 1, H, W) in metres (0 = empty) and its mask (B, 1, H, W).
    Output: dense depth (B, 1, H, W) in metres and the propagated mask, 1 where at least one
    valid input lies within the network's receptive field (12 px here), used as confidence.
    Depth is divided by ``depth_scale`` on the way in and multiplied on the way out.
    """

    def __init__(
        self,
        channels: int = PAPER_CHANNELS,
        kernels: tuple[int, ...] = PAPER_KERNELS,
        depth_scale: float = 10.0,
    ) -> None:
        # support margin, px: outputs are 0 beyond it from any valid input, and empty pixels
        # carry zero features, so the network gives the same result on any window holding the
        # valid pixels plus this
        super().__init__(
            {"channels": channels, "kernels": list(kernels), "depth_scale": depth_scale},
            support_margin=sum(k // 2 for k in kernels),
        )
        self.depth_scale = depth_scale
        layers = []
        c_in = 1
        for k in kernels:
            layers.append(SparseConv2d(c_in, channels, k))
            c_in = channels
        self.layers = nn.ModuleList(layers)
        self.head = SparseConv2d(channels, 1, 1)

    def forward(
        self, depth: Tensor, mask: Tensor, rgb: MaybeTensor = None, fill: MaybeTensor = None
    ) -> tuple[Tensor, Tensor]:
        """``rgb`` and ``fill`` are not read (the contract's signature)."""
        m = mask
        x = depth / self.depth_scale * m
        for layer in self.layers:
            x, m = layer(x, m)
            x = F.relu_(x)
        x, m = self.head(x, m)
        return x * self.depth_scale, m
