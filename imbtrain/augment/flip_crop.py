"""Random crop with zero padding and horizontal flip, vectorised over the batch on the device.

The standard CIFAR augmentation (He et al. 2016: pad 4, random 32x32 crop, flip with p 0.5).
Instead of one crop call per image, the batch is padded once and every output pixel is gathered
from its image's own offset, flipped columns included: one `gather` for the whole batch (the
same result as airbench's batch_crop/batch_flip_lr, without a loop over offsets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def crop_padding(height: int, width: int) -> int:
    """4 pixels for images of 32 px and more, H/8 below (28 px: 3, 8 px: 1), at least 1."""
    return min(4, max(1, min(height, width) // 8))


def crop_flip(x: Tensor, top: Tensor, left: Tensor, flip: Tensor, padding: int) -> Tensor:
    """out[b, :, i, j] = pad(x)[b, :, top_b + i, left_b + (W - 1 - j if flip_b else j)].

    x: (B, C, H, W); top, left: (B,) int offsets in [0, 2 padding]; flip: (B,) bool.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)  # zeros: black before normalisation, like RandomCrop
    hp, wp = h + 2 * padding, w + 2 * padding
    i = torch.arange(h, device=x.device)
    j = torch.arange(w, device=x.device)
    rows = top[:, None] + i  # (B, H)
    cols = left[:, None] + torch.where(flip[:, None], w - 1 - j, j)  # (B, W)
    index = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, hp * wp).gather(2, index).view(b, c, h, w)


class FlipCrop:
    """Per image: a crop offset uniform in [0, 2p]^2 of the zero-padded image, a flip w.p. 0.5."""

    def __init__(self, height: int, width: int, padding: int | None = None) -> None:
        self.padding = crop_padding(height, width) if padding is None else padding

    def __call__(self, x: Tensor) -> Tensor:
        n, device = x.shape[0], x.device
        top = torch.randint(2 * self.padding + 1, (n,), device=device)
        left = torch.randint(2 * self.padding + 1, (n,), device=device)
        flip = torch.rand(n, device=device) < 0.5
        return crop_flip(x, top, left, flip, self.padding)
