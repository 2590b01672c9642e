"""Random erasing (Zhong et al. 2020) per image, vectorised with masks.

torchvision v2 `RandomErasing(p, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)` semantics,
but with its own rectangle for every image (v2 on a batch erases the same box everywhere):
with probability p, up to 10 attempts draw an area s HW, s ~ U(scale), and an aspect
r = exp(U(log ratio)); h = round(sqrt(s HW r)), w = round(sqrt(s HW / r)); the first attempt
with h < H and w < W is placed uniformly and set to 0 (the channel mean, since the tensor is
already normalised). An image with no valid attempt is left as is, as in torchvision.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def erase_boxes(x: Tensor, p: float, scale: tuple[float, float] = (0.02, 0.33),
                ratio: tuple[float, float] = (0.3, 3.3), attempts: int = 10) -> Tensor:
    """Boxes (B, 4) = (top, left, h, w) as floats, h = w = 0 for images not erased."""
    b, _, height, width = x.shape
    device = x.device
    erase = torch.rand(b, device=device) < p
    area = height * width * torch.empty(b, attempts, device=device).uniform_(*scale)
    log_ratio = torch.empty(b, attempts, device=device).uniform_(math.log(ratio[0]),
                                                                   math.log(ratio[1]))
    aspect = log_ratio.exp()
    h = (area * aspect).sqrt().round()
    w = (area / aspect).sqrt().round()
    valid = (h < height) & (w < width)
    first = valid.to(torch.uint8).argmax(dim=1, keepdim=True)  # first valid attempt
    keep = erase & valid.any(dim=1)
    h = h.gather(1, first).squeeze(1) * keep
    w = w.gather(1, first).squeeze(1) * keep
    top = (torch.rand(b, device=device) * (height - h + 1)).floor()
    left = (torch.rand(b, device=device) * (width - w + 1)).floor()
    return torch.stack([top, left, h, w], dim=1)


def box_mask(boxes: Tensor, height: int, width: int) -> Tensor:
    """(B, 1, H, W) bool: inside each image's box."""
    top, left, h, w = boxes.unbind(dim=1)
    i = torch.arange(height, device=boxes.device)[None, :]
    j = torch.arange(width, device=boxes.device)[None, :]
    rows = (i >= top[:, None]) & (i < (top + h)[:, None])
    cols = (j >= left[:, None]) & (j < (left + w)[:, None])
    return (rows[:, :, None] & cols[:, None, :])[:, None]


def random_erasing(x: Tensor, p: float) -> Tensor:
    """Set a random rectangle of each image to 0 with probability p; x float (B, C, H, W)."""
    if p <= 0:
        return x
    return x.masked_fill(box_mask(erase_boxes(x, p), x.shape[-2], x.shape[-1]), 0.0)
