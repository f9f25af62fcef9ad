"""Sparsity-invariant convolution and the SparseConvNet of Uhrig et al. (3DV 2017).

For input features x (B, C, H, W) and a validity mask m (B, 1, H, W) in {0, 1}:

    out(u, v)  = sum_ij m(u+i, v+j) x(u+i, v+j) w(i, j) / (sum_ij m(u+i, v+j) + eps) + b
    mask'(u, v) = max_ij m(u+i, v+j)

The denominator, the number of valid pixels under the kernel, is a box filter of the
one-channel mask (the convolution with a ones kernel), computed as an average pool times the
kernel area. It is clamped below at ``eps`` rather than offset by it: for a binary mask
the count is 0 or >= 1, so the division is exact wherever a pixel is valid, 0 elsewhere,
and safe in half precision (the authors' code does the same with where(count == 0)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PAPER_KERNELS = (11, 7, 5, 3, 3)
PAPER_CHANNELS = 16


class SparseConv2d(nn.Module):
    """One sparsity-invariant convolution (stride 1, 'same' padding) and its mask pooling."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, eps: float = 1e-4) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, p = self.kernel_size, self.padding
        features = F.conv2d(x * mask, self.weight, padding=p)
        count = F.avg_pool2d(mask, k, stride=1, padding=p, count_include_pad=True) * (k * k)
        out = features / count.clamp(min=self.eps) + self.bias.view(1, -1, 1, 1)
        return out, F.max_pool2d(mask, k, stride=1, padding=p)


class SparseConvNet(nn.Module):
    """The paper's network: sparse convs 11, 7, 5, 3, 3 with 16 channels + ReLU, then a 1x1 to depth.

    Input: sparse depth (B, 1, H, W) in metres (0 = empty) and its mask (B, 1, H, W).
    Output: dense depth (B, 1, H, W) in metres and the propagated mask, 1 where at least one
    valid input lies within the network's receptive field (12 px here), used as confidence.
    Depth is divided by ``depth_scale`` on the way in and multiplied on the way out.
    """

    def __init__(self, channels: int = PAPER_CHANNELS, kernels: tuple[int, ...] = PAPER_KERNELS,
                 depth_scale: float = 10.0) -> None:
        super().__init__()
        self.config = {"channels": channels, "kernels": list(kernels), "depth_scale": depth_scale}
        self.depth_scale = depth_scale
        layers = []
        c_in = 1
        for k in kernels:
            layers.append(SparseConv2d(c_in, channels, k))
            c_in = channels
        self.layers = nn.ModuleList(layers)
        self.head = SparseConv2d(channels, 1, 1)

    def forward(self, depth: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = depth / self.depth_scale
        m = mask
        for layer in self.layers:
            x, m = layer(x, m)
            x = F.relu(x)
        x, m = self.head(x, m)
        return x * self.depth_scale * m, m
