"""Deferred re-weighting, DRW (Cao et al. 2019; docs/methods.md, "8. Baselines: DRW").

Plain (unweighted) loss for epochs 0 .. drw_epoch - 1, then effective-number class weights
(beta 0.9999, sum K) from epoch `drw_epoch` on (0-based epochs, as LDAM-DRW's
`idx = epoch // 160` with 200 epochs: weighted from epoch 160). `drw_epoch = -1` means
floor(0.8 * epochs), the default of docs/methods.md. The weighted stage averages the loss as
LDAM-DRW's `cross_entropy(weight=)` does, sum(w_y l) / sum(w_y) over the batch
(methods/weights.py), so the switch keeps the loss on cross-entropy's scale.
"""

from __future__ import annotations

import math

from torch import Tensor

from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData
from imbtrain.methods.base import Method, register_method
from imbtrain.methods.weights import effective_number_weights

DRW_BETA = 0.9999  # LDAM-DRW's `betas = [0, 0.9999]`: the second stage's beta, not a knob.


def deferred_epoch(value: int, epochs: int) -> int:
    """The (0-based) epoch a deferred stage starts at: `value`, or floor(0.8 * epochs) if -1.

    Example:
        >>> deferred_epoch(-1, 200), deferred_epoch(5, 200)
        (160, 5)
    """
    return math.floor(0.8 * epochs) if value == -1 else int(value)


@register_method("drw")
class DRWMethod(Method):
    """Cross-entropy, unweighted until `drw_epoch`, effective-number weighted after."""

    def __init__(self, cfg: TrainConfig, data: ImbalancedData):
        super().__init__(cfg, data)
        self.drw_epoch = deferred_epoch(cfg.drw_epoch, cfg.epochs)
        self.weights = effective_number_weights(self.counts, DRW_BETA)

    def class_weights(self, epoch: int) -> Tensor | None:
        """None before `drw_epoch`, the effective-number weights (K,) from it on."""
        return None if epoch < self.drw_epoch else self.weights
