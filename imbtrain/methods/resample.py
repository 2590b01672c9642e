"""Resampling: class-balanced sampling with replacement (docs/methods.md, "8. Baselines:
Resampling").

Every epoch draws N samples with per-sample weight 1 / n_{y_i}
(`imbtrain.methods.sampling.epoch_indices(y, "balanced")`), so each class is equally likely
at every draw; the loss is plain cross-entropy.
"""

from __future__ import annotations

from imbtrain.methods.base import Method, register_method


@register_method("resample")
class ResampleMethod(Method):
    """ERM on class-balanced batches."""

    def sampling(self, epoch: int) -> str:
        """"balanced" at every epoch."""
        return "balanced"
