"""LDAM-DRW (Cao et al. 2019; docs/methods.md, "8. Baselines: LDAM-DRW").

Label-distribution-aware margins m_c = C / n_c ** (1/4), C such that max_c m_c = `ldam_max_m`
(0.5): the rarest class gets the largest margin. The margin is taken off the true-class logit,
the logits are scaled by `ldam_s` (30) and go into cross-entropy:

    loss = CE(s * (z - m_y e_y), y).

With soft targets q (mixing, smoothing) the margin is spread as the target is:
z_k - q_k m_k (z - q @ diag(m)), and the cross-entropy is taken against q; one-hot q gives
the formula above. Class weights follow DRW (unweighted until `drw_epoch`, effective number
after), and the weighted loss is normalised as LDAM-DRW's `cross_entropy(weight=)` does,
sum(w_y l) / sum(w_y) over the batch (methods/weights.py). `ldam_normed`: the head becomes a
cosine classifier (LDAM-DRW's `NormedLinear`, used with `s = 30` for their CIFAR results), so
logits lie in [-1, 1] before the scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData
from imbtrain.methods.base import register_method, soft_cross_entropy
from imbtrain.methods.drw import DRWMethod


def ldam_margins(counts: Sequence[int] | Tensor, max_m: float = 0.5) -> Tensor:
    """m_c = C / n_c ** 0.25 with C chosen so that max_c m_c = max_m. float32 (K,).

    Example (10000^-1/4 = 0.1, 16^-1/4 = 0.5, so C = 1):
        >>> ldam_margins([10000, 16])
        tensor([0.1000, 0.5000])
    """
    raw = torch.as_tensor(counts, dtype=torch.float64) ** -0.25
    return (raw * (max_m / raw.max())).float()


def ldam_loss(logits: Tensor, q: Tensor, margins: Tensor, s: float) -> Tensor:
    """Per-sample LDAM loss (B,): cross-entropy of s * (z - q * m) against q."""
    shifted = logits.float() - q * margins.to(device=logits.device)[None]
    return soft_cross_entropy(s * shifted, q)


class NormedLinear(nn.Linear):
    """Cosine classifier: logits_k = <x / |x|, w_k / |w_k|> (LDAM-DRW's `NormedLinear`).

    A subclass of nn.Linear without bias, so `model.head` stays an nn.Linear with
    `in_features` / `out_features` / `weight` for every part of imbtrain that reads it.
    """

    def __init__(self, in_features: int, out_features: int, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=False, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


@register_method("ldam_drw")
class LDAMDRWMethod(DRWMethod):
    """LDAM loss with DRW class weights, optionally a normalised (cosine) head."""

    def __init__(self, cfg: TrainConfig, data: ImbalancedData):
        super().__init__(cfg, data)
        self.margins = ldam_margins(self.counts, cfg.ldam_max_m)
        self.s = float(cfg.ldam_s)
        self.normed = bool(cfg.ldam_normed)

    def configure_model(self, model: nn.Module) -> nn.Module:
        """With `ldam_normed`, replace `model.head` by a NormedLinear of the same shape."""
        if self.normed:
            old = model.head
            model.head = NormedLinear(old.in_features, old.out_features,
                                      device=old.weight.device, dtype=old.weight.dtype)
        return model

    def loss(self, logits: Tensor, q: Tensor) -> Tensor:
        """`ldam_loss(logits, q, margins, ldam_s)`; the margins move to the logits' device
        once, at the first step, not at every step."""
        if self.margins.device != logits.device:
            self.margins = self.margins.to(logits.device)
        return ldam_loss(logits, q, self.margins, self.s)
