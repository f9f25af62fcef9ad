"""An exact photometric oracle: a textured fronto-parallel plane seen by two cameras 0.4 m
apart, whose images are the same texture shifted by a whole number of pixels."""

import torch

H, W, Z, FX, SHIFT = 48, 96, 10.0, 100.0, 4  # a plane 10 m away; 0.4 m baseline: 4 px


def plane_pair():
    """A textured source image and the target a camera 0.4 m to its left sees of the same
    fronto-parallel plane: exactly the source shifted by 4 px."""
    g = torch.Generator().manual_seed(0)
    source = torch.rand(1, 1, H, W + SHIFT, generator=g)[..., :W]
    target = torch.zeros(1, 1, H, W)
    target[..., : W - SHIFT] = source[..., SHIFT:]
    k = torch.tensor([[FX, 0.0, W / 2], [0.0, FX, H / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    t = torch.eye(4, dtype=torch.float64)
    t[0, 3] = SHIFT * Z / FX  # T_source<-target: x_s = x_t + 0.4 m
    return source, target, k, t
