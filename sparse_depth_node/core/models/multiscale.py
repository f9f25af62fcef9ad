"""A multi-scale sparsity-invariant network with a learned confidence (this project's design).

Every operation normalises by validity, as the paper's layer does, so the network stays
invariant to the input density by construction:
- SparseConv2d (sparse_conv.py) at each scale;
- mask-aware down-sampling: the mean of the valid features of each 2 x 2 block, and the
  block's mask is set if any of its pixels is;
- mask-aware up-sampling: nearest neighbour for features and mask alike;
- fusion of a skip and an up-sampled stream: one sparse convolution per stream, each
  normalised by its own mask, summed; the fused mask is the union.
The coarsest scale (1/8) gives a receptive field of about 90 px, which fills the gaps between
scan lines that the paper's 12 px cannot reach. The confidence is the predicted probability
that the depth is within ``base.GOOD_FRACTION`` of the truth (trained by the training script): the
head's second channel plus a small plain-convolution branch that also sees how many inputs lie
near each pixel (the log counts in 5 x 5 and 15 x 15 windows). The depth is density-invariant;
the confidence deliberately is not, since nearby support is what makes an estimate reliable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import DepthNetwork, MaybeTensor, Tensor
from .sparse_conv import SparseConv2d, valid_count


def sparse_downsample(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the valid features of each 2 x 2 block (x is zero where mask is), and its mask."""
    count = F.avg_pool2d(mask, 2, ceil_mode=True)
    total = F.avg_pool2d(x, 2, ceil_mode=True)
    new_mask = (count > 0).to(mask.dtype)
    return total / count.clamp(min=0.25) * new_mask, new_mask


def upsample_to(
    x: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-neighbour 2x up-sampling, cropped to ``size`` (H, W)."""
    up = F.interpolate(torch.cat([x, mask], dim=1), scale_factor=2.0, mode="nearest")[
        ..., : size[0], : size[1]
    ]
    return up[:, :-1], up[:, -1:]


class SparseFuse(nn.Module):
    """Sparse convolution of a skip stream plus one of an up-sampled stream, each normalised by its
    own mask."""

    def __init__(
        self, skip_channels: int, up_channels: int, out_channels: int, kernel_size: int = 3
    ) -> None:
        super().__init__()
        self.skip = SparseConv2d(skip_channels, out_channels, kernel_size)
        self.up = SparseConv2d(up_channels, out_channels, kernel_size)

    def forward(
        self, skip: torch.Tensor, skip_mask: torch.Tensor, up: torch.Tensor, up_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a, ma = self.skip(skip, skip_mask)
        b, mb = self.up(up, up_mask)
        return a + b, torch.maximum(ma, mb)


class SparseMultiScaleNet(DepthNetwork):
    """Encoder-decoder over 4 scales (1, 1/2, 1/4, 1/8) of sparse convolutions.

    Input: sparse depth (B, 1, H, W) in metres (0 = empty) and its mask (B, 1, H, W).
    Output: dense depth (B, 1, H, W) in metres and confidence (B, 1, H, W) in [0, 1], 0 where
    no valid input lies within the receptive field. Depth is divided by ``depth_scale`` on
    the way in and multiplied on the way out.
    """

    learned_confidence = True

    def __init__(
        self, channels: tuple[int, ...] = (16, 24, 32, 32), depth_scale: float = 10.0
    ) -> None:
        if len(channels) != 4:
            raise ValueError(f"channels must give 4 scales, got {channels}")
        # support margin, px: no output reaches farther than 45 px from a valid input
        # (test_models checks it), and empty pixels carry zero features; windows start on the
        # coarsest scale's 8 px grid
        super().__init__(
            {"channels": list(channels), "depth_scale": depth_scale},
            support_margin=48,
            support_multiple=8,
        )
        self.depth_scale = depth_scale
        c0, c1, c2, c3 = channels
        self.enc = nn.ModuleList(
            [
                nn.ModuleList([SparseConv2d(1, c0, 5), SparseConv2d(c0, c0, 3)]),
                nn.ModuleList([SparseConv2d(c0, c1, 3), SparseConv2d(c1, c1, 3)]),
                nn.ModuleList([SparseConv2d(c1, c2, 3), SparseConv2d(c2, c2, 3)]),
                nn.ModuleList([SparseConv2d(c2, c3, 3), SparseConv2d(c3, c3, 3)]),
            ]
        )
        self.dec = nn.ModuleList(
            [SparseFuse(c2, c3, c2), SparseFuse(c1, c2, c1), SparseFuse(c0, c1, c0)]
        )
        self.head = SparseConv2d(c0, 2, 1)
        self.confidence = nn.Sequential(
            nn.Conv2d(c0 + 2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 1)
        )

    def confidence_parameters(self) -> list[nn.Parameter]:
        return list(self.confidence.parameters())

    def forward(
        self, depth: Tensor, mask: Tensor, rgb: MaybeTensor = None, fill: MaybeTensor = None
    ) -> tuple[Tensor, Tensor]:
        """``rgb`` and ``fill`` are not read (the contract's signature)."""
        x, m = depth / self.depth_scale * mask, mask
        skips = []
        for level, convs in enumerate(self.enc):
            if level > 0:
                x, m = sparse_downsample(x, m)
            for conv in convs:  # type: ignore[attr-defined]  # an nn.ModuleList
                x, m = conv(x, m)
                x = F.relu_(x)
            skips.append((x, m))
        for fuse, (sx, sm) in zip(self.dec, reversed(skips[:-1])):
            ux, um = upsample_to(x, m, (sx.shape[-2], sx.shape[-1]))
            x, m = fuse(sx, sm, ux, um)
            x = F.relu_(x)
        out, m = self.head(x, m)
        support = torch.cat(
            [torch.log1p(valid_count(mask, 5)), torch.log1p(valid_count(mask, 15))], dim=1
        )
        logit = out[:, 1:] + self.confidence(torch.cat([x, support], dim=1))
        return out[:, :1] * self.depth_scale, torch.sigmoid(logit) * m
