"""Reweighting: per-class loss weights for the whole run (docs/methods.md, "8. Baselines:
Reweighting").

`reweight_form` "effective" (default): w_c ∝ (1 - beta) / (1 - beta ** n_c) with
`reweight_beta` (0.9999, Cui et al. 2019); "inverse": w_c ∝ 1 / n_c. Both sum to K. The loop
weights each sample's loss by s_i = t_i @ w (t its one-hot or mixed target) and divides by the
batch's sum of s_i, as LDAM-DRW's `cross_entropy(weight=)` (methods/weights.py).
"""

from __future__ import annotations

from torch import Tensor

from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData
from imbtrain.methods.base import Method, register_method
from imbtrain.methods.weights import class_weights


@register_method("reweight")
class ReweightMethod(Method):
    """Cross-entropy with fixed class weights from the train counts."""

    def __init__(self, cfg: TrainConfig, data: ImbalancedData):
        super().__init__(cfg, data)
        self.weights = class_weights(self.counts, cfg.reweight_form, cfg.reweight_beta)

    def class_weights(self, epoch: int) -> Tensor:
        """The same weights (K,) float32 at every epoch."""
        return self.weights
