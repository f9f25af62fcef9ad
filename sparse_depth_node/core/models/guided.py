"""The image-guided network (this project's design): a learned correction of a classical fill,
steered by the camera image.

Inputs at full resolution, per pixel (the stem sees each 4 x 4 block's 16 pixels at once,
space to depth, so nothing is averaged away):
- the classical fill: IP-Basic's extrapolated fast fill (``classic-full``, core.classic: crisp,
  foreground-first edges; computed inside ``forward``, no gradient through it);
- the LiDAR depth and mask themselves;
- the image (RGB), whose edges and context say where the fill is wrong.
The LiDAR also enters through the paper's sparse convolutions and their max-pooled mask stream,
on the nearest return of each 4 x 4 block (the z-buffer at 1/4 resolution). A small
encoder-decoder (1/4, 1/8, 1/16, optionally with top-k sparse self-attention at 1/16) feeds a
head that predicts, for each of the 16 pixels of its block (depth to space), a log-depth
correction ``r`` and a confidence logit:

    depth = fill * exp(r)

a relative correction (the same at 5 m and 50 m), per pixel, at full resolution. Untrained
(zero head), the output is the fill. (A variant that could also move each pixel toward the
farthest return within 2 px, against foreground bleeding, scored the same on validation:
docs/EVALUATION.md.)

The depth is defined where the mask stream reaches, within ``REACH`` px of a LiDAR return (the
sky above a LiDAR's top beam stays empty, as with the other networks); the confidence is the
predicted probability that the depth is within ``base.GOOD_FRACTION`` of the truth.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..classic import fill_tensor
from ..inference import downsample_sparse
from .base import DepthNetwork, MaybeTensor, Tensor
from .sparse_conv import SparseConv2d, valid_count

REACH = 40  # px at full resolution: outputs exist within this distance of a return's 4 x 4 block
PREFILL = "classic-full"
FULL_CHANNELS = 6  # per full-resolution pixel: RGB, log fill, log LiDAR depth, LiDAR mask


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.ReLU(inplace=True))


class TopKAttention(nn.Module):
    """Single-head self-attention over the pixels of a feature map (B, C, H, W) in which each
    query keeps only its ``ceil(keep * H * W)`` largest scores (the rest get no weight), added
    to its input as a residual with a learned scale that starts at 0."""

    def __init__(self, channels: int, keep: float) -> None:
        super().__init__()
        self.keep = keep
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).flatten(2).chunk(3, dim=1)  # (B, C, N) each
        scores = torch.einsum("bcn,bcm->bnm", q, k) / c**0.5
        top = max(1, math.ceil(self.keep * h * w))
        kth = scores.topk(top, dim=-1).values[..., -1:]
        weights = torch.softmax(scores.masked_fill(scores < kth, float("-inf")), dim=-1)
        y = torch.einsum("bnm,bcm->bcn", weights, v).reshape(b, c, h, w)
        out: torch.Tensor = x + self.gain * self.out(y)
        return out


class GuidedNet(DepthNetwork):
    """Image-guided completion: sparse depth (B, 1, H, W) metres (0 = empty), its mask and the
    image (B, 3, H, W) in [0, 1] -> dense depth (B, 1, H, W) metres and confidence in [0, 1]
    (0 beyond REACH px of any return). H and W need not be multiples of anything."""

    learned_confidence = True
    needs_image = True

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 48),
        depth_scale: float = 10.0,
        max_depth: float = 100.0,
        attention_keep: float = 0.0,
        prefill: str = PREFILL,
    ) -> None:
        if len(channels) != 3:
            raise ValueError(f"channels must give 3 scales, got {channels}")
        # support margin, px: the network runs on the LiDAR's support window plus this margin
        # (outputs stop at REACH on the 4 x 4 block grid: up to 3 px more at full resolution);
        # windows start on the coarsest scale's grid. Receptive radius,
        # px: no output depends on inputs farther away (1/4 sparse stream 12 px, encoder to 1/16
        # and back about 110 px, rounded up to the grid), given the same classical fill: the
        # completer runs large windows in bands with this much input around each
        super().__init__(
            {
                "channels": list(channels),
                "depth_scale": depth_scale,
                "max_depth": max_depth,
                "attention_keep": attention_keep,
                "prefill": prefill,
            },
            support_margin=REACH + 3,
            support_multiple=16,
            receptive_radius=128,
        )
        self.depth_scale, self.max_depth, self.fill_method = depth_scale, max_depth, prefill
        c2, c3, c4 = channels
        # full resolution -> 1/4: image, fill and returns as 4 x 4 blocks (space to depth)
        self.stem = nn.Sequential(nn.Conv2d(16 * FULL_CHANNELS, c2, 1), nn.ReLU(inplace=True))
        self.sparse = nn.ModuleList([SparseConv2d(1, 16, 5), SparseConv2d(16, 16, 3)])
        self.enc2 = conv(c2 + 16 + 1, c2)
        self.enc3 = nn.Sequential(conv(c2, c3, 2), conv(c3, c3))
        self.enc4 = nn.Sequential(conv(c3, c4, 2), conv(c4, c4), conv(c4, c4))
        # optional global context at the coarsest scale (1/16): top-k sparse self-attention
        self.context = TopKAttention(c4, attention_keep) if attention_keep > 0 else nn.Identity()
        self.dec3 = conv(c4 + c3, c3)
        self.dec2 = conv(c3 + c2, c2)
        # 1/4 -> full resolution: (r, logit) for each of the 16 pixels of a block (depth to
        # space), so the correction can change within a block where the image does
        self.head = nn.Sequential(
            nn.Conv2d(2 * c2, 32, 1), nn.ReLU(inplace=True), nn.Conv2d(32, 2 * 16, 1)
        )
        last = self.head[-1]
        assert isinstance(last, nn.Conv2d)
        nn.init.zeros_(last.weight)  # untrained, the output is the classical fill
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]  # a Conv2d with a bias

    def prefill(self, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The classical fill (B, 1, H, W) metres the network corrects (its ``prefill``, a
        method of classic.FILLS; PREFILL unless the checkpoint says otherwise; on the CPU)."""
        return fill_tensor(self.fill_method, depth * mask, self.max_depth)

    def forward(
        self, depth: Tensor, mask: Tensor, rgb: MaybeTensor = None, fill: MaybeTensor = None
    ) -> tuple[Tensor, Tensor]:
        """``fill``: ``prefill`` of a larger window cropped to this one (the completer's bands),
        computed here when not given."""
        if rgb is None:
            raise ValueError("the guided network needs the camera image")
        h, w = depth.shape[-2:]
        ph, pw = -h % 16, -w % 16  # pad to the coarsest grid; cropped off at the end
        fill = self.prefill(depth, mask) if fill is None else fill
        log_fill = torch.log(fill.clamp(min=1.0)) - 2.5  # log metres, centred (0 .. 4.6 -> ±2.5)
        log_depth = torch.where(mask > 0, torch.log(depth.clamp(min=1.0)) - 2.5, 0.0)
        full = torch.cat([rgb.to(depth.dtype), log_fill, log_depth, mask], dim=1)
        full = F.pad(full, (0, pw, 0, ph))
        d, m = F.pad(depth * mask, (0, pw, 0, ph)), F.pad(mask, (0, pw, 0, ph))

        d4, m4 = downsample_sparse(d, m, 4)
        x, sm = d4 / self.depth_scale, m4
        for layer in self.sparse:  # the paper's layer and its max-pooled mask stream
            x, sm = layer(x, sm)
            x = F.relu_(x)
        stem = self.stem(F.pixel_unshuffle(full, 4))
        e2 = self.enc2(torch.cat([stem, x, sm], dim=1))
        e3 = self.enc3(e2)
        e4 = self.context(self.enc4(e3))
        up = self.dec3(torch.cat([F.interpolate(e4, scale_factor=2.0), e3], dim=1))
        up = self.dec2(torch.cat([F.interpolate(up, scale_factor=2.0), e2], dim=1))
        out = F.pixel_shuffle(self.head(torch.cat([up, stem], dim=1)), 4)
        reach = F.interpolate(
            (valid_count(m4, 2 * (REACH // 4) + 1) > 0).to(m.dtype), scale_factor=4.0
        )
        out, reach = out[..., :h, :w], reach[..., :h, :w]
        dense = fill * torch.exp(out[:, :1].clamp(-3.0, 3.0))
        return dense * reach, torch.sigmoid(out[:, 1:]) * reach * (fill > 0).to(fill.dtype)
