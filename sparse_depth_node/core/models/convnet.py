"""The plain CNN baseline of the paper: the SparseConvNet's shape with ordinary convolutions.

Empty pixels hold the default value 0 and the mask is given as a second input channel
("ConvNet + mask" in Uhrig et al.). Nothing normalises by the number of valid pixels, so the
output depends on the input density.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .sparse_conv import PAPER_CHANNELS, PAPER_KERNELS


class ConvNet(nn.Module):
    """Convs 11, 7, 5, 3, 3 (16 channels, ReLU) then 1x1 to depth, on [depth, mask].

    Returns dense depth (B, 1, H, W) in metres and the receptive-field validity, 1 where at
    least one valid input lies within the network's receptive field: the same confidence
    the SparseConvNet gives, so both are scored on the same pixels.
    """

    def __init__(
        self,
        channels: int = PAPER_CHANNELS,
        kernels: tuple[int, ...] = PAPER_KERNELS,
        depth_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.config = {"channels": channels, "kernels": list(kernels), "depth_scale": depth_scale}
        self.depth_scale = depth_scale
        self.kernels = tuple(kernels)
        convs = []
        c_in = 2
        for k in kernels:
            convs.append(nn.Conv2d(c_in, channels, k, padding=k // 2))
            c_in = channels
        self.convs = nn.ModuleList(convs)
        self.head = nn.Conv2d(channels, 1, 1)
        # px: the confidence is 0 beyond r = sum(k // 2) of any valid input, but empty pixels carry
        # bias-driven features, so an output with confidence sees inputs up to 2 r from valid
        # pixels
        self.support_margin = 2 * sum(k // 2 for k in kernels)

    def forward(
        self, depth: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([depth * mask / self.depth_scale, mask], dim=1)
        m = mask
        for conv, k in zip(self.convs, self.kernels):
            x = F.relu(conv(x))
            m = F.max_pool2d(m, k, stride=1, padding=k // 2)
        return self.head(x) * self.depth_scale * m, m
