"""Training's losses, each a sum and a count whose ratio is its mean (the trainer normalises the
counts over the global batch): the depth error and a learned confidence's cross-entropy, the
photometric error of the neighbouring views, edge-aware row smoothness; and the masks they use
(returns the camera can see, pixels near a return)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.models import GOOD_FRACTION
from .photometric import grey, photometric_error, warp, window_valid
from .train_data import Neighbours


def batch_photometric_loss(
    pred: torch.Tensor,
    rgb: torch.Tensor,
    places: list[tuple[int, int, bool]],
    views: "list[Neighbours | None]",
    support: "torch.Tensor | None" = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and count of Monodepth2's masked min-reprojection error over the crops of a batch:
    ``pred`` (B, 1, h, w) metres (0 = none) and ``rgb`` (B, 3, h, w) the crops as cropped
    (flipped where ``places`` says so), each crop's ``views`` (None: it has none) warped into it
    with its depth, every (crop, view) pair in one batch. A crop's K is its frame's with the
    principal point moved by the crop's corner; the auto-mask compares each view unwarped.
    ``support`` (B, 1, h, w) bool, as cropped: where the error may count (default: everywhere)."""
    pairs = [(b, v) for b, nb in enumerate(views) if nb is not None for v in range(len(nb.greys))]
    zero = pred.new_zeros(())
    if not pairs:
        return zero, zero
    b_of = torch.tensor([b for b, _ in pairs], device=pred.device)
    flips = torch.tensor([f for _, _, f in places], device=pred.device).view(-1, 1, 1, 1)
    pred, rgb = torch.where(flips, pred.flip(-1), pred), torch.where(flips, rgb.flip(-1), rgb)
    h, w = pred.shape[-2:]
    given = [(b, v, nb) for b, v in pairs if (nb := views[b]) is not None]
    k_view = torch.stack([nb.k for _, _, nb in given])
    corner = torch.tensor([places[b][1::-1] for b, _ in pairs], device=k_view.device)  # (x, y)
    k_crop = k_view.clone()
    k_crop[:, :2, 2] -= corner.to(k_crop.dtype)
    sources = torch.stack([nb.greys[v] for _, v, nb in given])  # (P, 1, H, W)
    motions = torch.stack([nb.motions[v] for _, v, nb in given])
    target = grey(rgb)[b_of]
    warped, valid = warp(sources, pred[b_of], k_crop, k_view, motions)
    error = torch.where(window_valid(valid), photometric_error(target, warped), float("inf"))
    unwarped = torch.stack(
        [
            sources[p, :, y : y + h, x : x + w]
            for p, (y, x, _) in enumerate(places[b] for b, _ in pairs)
        ]
    )
    same = photometric_error(target, unwarped)
    # each crop's per-pixel minimum over its views: views in slots (B, most views), the rest inf
    most = max(len(nb.greys) for nb in views if nb is not None)
    slot = b_of * most + torch.tensor([v for _, v in pairs], device=pred.device)

    def per_crop(x: torch.Tensor) -> torch.Tensor:
        full = x.new_full((len(views) * most, *x.shape[1:]), float("inf"))
        return full.index_put((slot,), x).view(len(views), most, *x.shape[1:]).amin(dim=1)

    best = per_crop(error)
    use = torch.isfinite(best) & (best < per_crop(same)) & (pred > 0)
    if support is not None:
        use &= torch.where(flips, support.flip(-1), support)
    return torch.where(use, best, 0.0).sum(), use.sum()


def depth_terms(
    pred: torch.Tensor,
    conf: torch.Tensor,
    target: torch.Tensor,
    target_mask: torch.Tensor,
    kind: str,
    learned_confidence: bool,
    l2_weight: float = 1.0,
    depth: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sum and count of the L1, L2 or L1 + L2 depth error (metres; the L2 term times
    ``l2_weight``; none without ``depth``: a judge's depth is the fill it judges) over target
    pixels the network reaches (conf > 0): their mean is the loss; for a network with a learned
    confidence the sum adds the binary cross-entropy of that confidence against "the error is
    within GOOD_FRACTION of the depth" (the depth is not pushed by it)."""
    w = target_mask * (conf > 0).to(pred.dtype)
    diff = (pred - target) * w
    total = torch.zeros((), device=pred.device)
    for k in kind.split("+") if depth else ():
        total = total + (diff.abs() if k == "l1" else l2_weight * diff**2).sum()
    if learned_confidence:
        good = ((pred.detach() - target).abs() <= GOOD_FRACTION * target).to(pred.dtype)
        bce = F.binary_cross_entropy(conf.clamp(1e-6, 1 - 1e-6), good, reduction="none")
        total = total + (bce * w).sum()
    return total, w.sum()


def row_smoothness(
    pred: torch.Tensor, rgb: torch.Tensor, sigma: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge-aware vertical smoothness, as a sum and a count whose ratio is the mean |second
    difference along y| of the log of ``pred`` (B, 1, H, W) metres (0 = none), each weighted by
    exp(-|grey step| / sigma), the step of the image (B, 3, H, W) in [0, 1] across the same three
    rows, so that depth may change where the image does.
    Row-to-row alternation between scan lines (stripes) costs most; a plane seen in
    perspective, whose depth changes smoothly with the row, costs little."""
    have = (pred > 0).to(pred.dtype)
    log_d = torch.log(pred.clamp(min=0.1))
    second = (log_d[..., :-2, :] - 2 * log_d[..., 1:-1, :] + log_d[..., 2:, :]).abs()
    grey = rgb.mean(dim=1, keepdim=True)
    step = (grey[..., 2:, :] - grey[..., :-2, :]).abs()
    valid = have[..., :-2, :] * have[..., 1:-1, :] * have[..., 2:, :]
    weight = torch.exp(-step / sigma) * valid
    return (second * weight).sum(), valid.sum()


def near_returns(mask: torch.Tensor, radius: int) -> "torch.Tensor | None":
    """(B, 1, H, W) bool: within ``radius`` px (Chebyshev) of a return of ``mask``; None when
    ``radius`` is 0 (no limit). Where no return lies near, nothing vouches for the surface:
    glass and glossy paint (the LiDAR passes through or misses them, the camera sees a
    reflection of a scene farther away) and the sky."""
    if radius <= 0:
        return None
    return F.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius) > 0


def visible(depth: torch.Tensor, mask: torch.Tensor, margin: float) -> torch.Tensor:
    """(B, 1, H, W) float: 1 at the returns the camera can see, 0 at those lying more than
    ``margin`` (a fraction) behind the nearest return within 3 px — background that the LiDAR,
    mounted above the camera, sees past a foreground edge the camera sees instead (parallax).
    All ones when ``margin`` is 0 (no cleaning)."""
    if margin <= 0:
        return torch.ones_like(mask)
    far = torch.finfo(depth.dtype).max
    nearest = -F.max_pool2d(-torch.where(mask > 0, depth, far), 7, stride=1, padding=3)
    return (depth <= nearest * (1 + margin)).to(mask.dtype)
