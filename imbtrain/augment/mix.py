"""Batch mixing: Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) on soft targets.

Each sample is paired with a partner from a random permutation of the batch (torch.randperm)
and lambda ~ Beta(alpha, alpha) is drawn through torch.distributions (torch's RNG on the
batch's device). One lambda, and for CutMix one box, per batch: the standard of both papers'
code and of timm's `Mixup(mode="batch")`. The targets mix with the same lambda as the inputs,
so smoothing and class weights downstream see each source label with its share
(docs/methods.md, "5. Label smoothing").
"""

from __future__ import annotations

import torch
from torch import Tensor

from imbtrain.augment.erasing import box_mask
from imbtrain.registry import MIXES


def sample_lambda(alpha: float, device: torch.device) -> Tensor:
    """lambda ~ Beta(alpha, alpha), a 0-d float32 tensor on `device` (no host sync).

    `torch.full` fills on the device, where `torch.tensor(alpha, device=...)` would copy from
    the host and wait for the stream; argument validation (`bool(valid.all())`) would sync
    too, and alpha > 0 is checked once by the config.
    """
    concentration = torch.full((), float(alpha), device=device)
    return torch.distributions.Beta(concentration, concentration, validate_args=False).sample()


def mix_targets(t: Tensor, perm: Tensor, lam: Tensor) -> Tensor:
    """lam t + (1 - lam) t[perm]: rows still sum to 1."""
    return t * lam + t[perm] * (1 - lam)


def mixup_with(x: Tensor, t: Tensor, lam: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
    """Mixup: x~ = lam x + (1 - lam) x[perm], t~ likewise (Zhang et al. 2018, eq. 1)."""
    return x * lam + x[perm] * (1 - lam), mix_targets(t, perm, lam)


def cutmix_box(height: int, width: int, lam: Tensor) -> Tensor:
    """A box (1, 4) = (top, left, h, w) of about (1 - lam) of the image, centre uniform,
    clipped to the image (Yun et al. 2019, appendix; their `rand_bbox`)."""
    device = lam.device
    cut = torch.sqrt(1.0 - lam)
    cut_h, cut_w = torch.floor(height * cut), torch.floor(width * cut)
    cy = torch.randint(height, (), device=device)
    cx = torch.randint(width, (), device=device)
    y1 = (cy - torch.div(cut_h, 2, rounding_mode="floor")).clamp(0, height)
    y2 = (cy + torch.div(cut_h, 2, rounding_mode="floor")).clamp(0, height)
    x1 = (cx - torch.div(cut_w, 2, rounding_mode="floor")).clamp(0, width)
    x2 = (cx + torch.div(cut_w, 2, rounding_mode="floor")).clamp(0, width)
    return torch.stack([y1, x1, y2 - y1, x2 - x1]).view(1, 4).to(torch.float32)


def cutmix_with(x: Tensor, t: Tensor, box: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
    """Paste the partner's box into each image; lambda = 1 - box area / image area."""
    height, width = x.shape[-2:]
    mask = box_mask(box, height, width)  # (1, 1, H, W)
    lam = 1.0 - mask.sum() / (height * width)
    return torch.where(mask, x[perm], x), mix_targets(t, perm, lam)


@MIXES.register("none")
def no_mix(x: Tensor, t: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Identity."""
    return x, t


@MIXES.register("mixup")
def mixup(x: Tensor, t: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Mixup with lambda ~ Beta(alpha, alpha); images or vectors."""
    perm = torch.randperm(x.shape[0], device=x.device)
    return mixup_with(x, t, sample_lambda(alpha, x.device), perm)


@MIXES.register("cutmix")
def cutmix(x: Tensor, t: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """CutMix with lambda ~ Beta(alpha, alpha), corrected to the clipped box's area."""
    perm = torch.randperm(x.shape[0], device=x.device)
    box = cutmix_box(x.shape[-2], x.shape[-1], sample_lambda(alpha, x.device))
    return cutmix_with(x, t, box, perm)
