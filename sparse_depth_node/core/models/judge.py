"""The judge: how far to trust a classical fill, pixel by pixel. Its depth is the fill itself,
unchanged (``prefill``: classic-refined, the default); its confidence is the predicted
probability that the fill is within ``base.GOOD_FRACTION`` (5 %) of the truth, learned from
held-out LiDAR returns as the other networks' confidence is.

It looks at each 8 x 8 block (``scale``) of the image, so that it costs a few milliseconds of a
CPU core at KITTI size:
- the LiDAR, through the paper's sparse convolution (Uhrig et al., 3DV 2017) over the mean
  return of each block, and its max-pooled mask stream;
- how many returns the block holds, and how far its farthest lies behind their mean (a depth
  edge inside the block);
- the fill and the image at the block's centre.
Three 3 x 3 convolutions (dilated 1, 2, 4: 7 blocks, 56 px, either side) give one logit per
block, interpolated bilinearly to every pixel: where the fill's depth is exact, where it
bridges a gap between scan lines, where it crosses an edge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..classic import fill_tensor
from .base import DepthNetwork, MaybeTensor, Tensor
from .sparse_conv import SparseConv2d

PREFILL = "classic-refined"
SPARSE_CHANNELS = 8
# per block: the sparse stream and its mask; has a return, the share of its pixels that do, log
# mean, log spread, log fill; RGB
INPUT_CHANNELS = SPARSE_CHANNELS + 1 + 5 + 3


class JudgeNet(DepthNetwork):
    """The classical fill ``prefill`` of sparse depth (B, 1, H, W) metres (0 = empty) and its
    confidence (B, 1, H, W) in [0, 1] from the LiDAR, the image (B, 3, H, W) in [0, 1] and the
    fill. Both 0 where the fill has no depth."""

    learned_confidence = True
    needs_image = True
    onnx_on_cpu = False  # its pooling and resizing run slower there: 34 against 28 ms a frame

    def __init__(
        self,
        prefill: str = PREFILL,
        channels: int = 12,
        scale: int = 8,
        depth_scale: float = 10.0,
        max_depth: float = 100.0,
    ) -> None:
        super().__init__(
            {
                "prefill": prefill,
                "channels": channels,
                "scale": scale,
                "depth_scale": depth_scale,
                "max_depth": max_depth,
            },
            support_margin=None,
            support_multiple=scale,
        )
        self.fill_method, self.scale = prefill, scale
        self.depth_scale, self.max_depth = depth_scale, max_depth
        self.sparse = SparseConv2d(1, SPARSE_CHANNELS, 3)
        c_in = INPUT_CHANNELS
        layers: list[nn.Module] = []
        for dilation in (1, 2, 4):
            layers += [nn.Conv2d(c_in, channels, 3, padding=dilation, dilation=dilation)]
            layers += [nn.ReLU(inplace=True)]
            c_in = channels
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, 1, 1)

    def prefill(self, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The fill judged (B, 1, H, W) metres: the classical method ``prefill`` (core.classic;
        OpenCV on the CPU, PyTorch on a GPU)."""
        return fill_tensor(self.fill_method, depth * mask, self.max_depth)

    def forward(
        self, depth: Tensor, mask: Tensor, rgb: MaybeTensor = None, fill: MaybeTensor = None
    ) -> tuple[Tensor, Tensor]:
        """``fill``: the ``prefill``, computed here when not given."""
        if rgb is None:
            raise ValueError("the judge needs the camera image")
        fill = self.prefill(depth, mask) if fill is None else fill
        s, h, w = self.scale, depth.shape[-2], depth.shape[-1]
        share = F.avg_pool2d(mask, s, ceil_mode=True)  # of the block's pixels holding a return
        has = (share > 0).to(depth.dtype)
        mean = F.avg_pool2d(depth, s, ceil_mode=True) / share.clamp(min=1e-6)
        top = F.max_pool2d(depth, s, ceil_mode=True)
        rows, cols = share.shape[-2:]
        o = s // 2
        at = torch.cat([fill[..., o::s, o::s], rgb[..., o::s, o::s].to(depth.dtype)], 1)
        centre = F.pad(at, (0, cols - at.shape[-1], 0, rows - at.shape[-2]))  # the last blocks
        log_mean = torch.log(mean.clamp(min=1.0))
        blocks = [
            has,
            share,
            (log_mean - 2.5) * has,
            (torch.log(top.clamp(min=1.0)) - log_mean) * has,  # spread: an edge in the block
            torch.log(centre[:, :1].clamp(min=1.0)) - 2.5,
        ]
        x, stream = self.sparse(mean * has / self.depth_scale, has)
        z = torch.cat([F.relu(x), stream, *blocks, centre[:, 1:]], 1)
        # never exactly 0 where the fill has depth: the completer keeps depth where conf > 0
        block = torch.sigmoid(self.head(self.body(z))).clamp(min=1e-6)
        conf = F.interpolate(block, scale_factor=float(s), mode="bilinear")[..., :h, :w]
        return fill, conf.masked_fill_(fill <= 0, 0.0)
