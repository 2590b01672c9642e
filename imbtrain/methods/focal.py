"""Focal loss (Lin et al. 2017; docs/methods.md, "8. Baselines: Focal loss").

Per sample, with p = softmax(z): (1 - p_y) ** gamma * (-log p_y). Against soft targets q
(mixing, smoothing) the natural extension sum_k q_k (1 - p_k) ** gamma * (-log p_k), which is
the formula above for one-hot q and cross-entropy against q at gamma = 0. `focal_gamma`
default 1 (LDAM-DRW's comparisons); 2 is Lin et al.'s.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData
from imbtrain.methods.base import Method, register_method


def focal_loss(logits: Tensor, q: Tensor, gamma: float) -> Tensor:
    """Per-sample focal loss (B,): sum_k q_k (1 - p_k) ** gamma * (-log p_k).

    Example (p = [1/4, 3/4], target 0, gamma 2: (3/4)^2 * ln 4 = 0.7798):
        >>> import math, torch
        >>> focal_loss(torch.tensor([[0.0, math.log(3)]]), torch.tensor([[1.0, 0.0]]), 2.0)
        tensor([0.7798])
    """
    log_p = F.log_softmax(logits.float(), dim=1)
    return -(q * (1 - log_p.exp()) ** gamma * log_p).sum(dim=1)


@register_method("focal")
class FocalMethod(Method):
    """Focal loss with `focal_gamma`, no class weights, no re-sampling."""

    def __init__(self, cfg: TrainConfig, data: ImbalancedData):
        super().__init__(cfg, data)
        self.gamma = float(cfg.focal_gamma)

    def loss(self, logits: Tensor, q: Tensor) -> Tensor:
        """`focal_loss(logits, q, focal_gamma)`."""
        return focal_loss(logits, q, self.gamma)
