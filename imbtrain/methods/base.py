"""The plug-in interface between the training loop and the imbalance methods.

The loop (imbtrain/train.py) never branches on a method's name: it asks the method for the
data it trains on, the sampling of each epoch, the class weights of each epoch, the
per-sample loss, an optional batch transformation, and a final stage. ERM is this base class
with every hook at its default. A method is one subclass registered by name, in a module of
its own in this package (every module here is imported with the package):

    @register_method("focal")
    class FocalMethod(Method): ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData
from imbtrain.registry import METHODS


def register_method(name: str, **meta: Any) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: make a Method available as `method=<name>` (`METHODS`)."""

    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        return METHODS.register(name, **meta)(cls)

    return deco


def soft_cross_entropy(logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy against soft targets q (B, K): -sum_k q_k log softmax(z)_k."""
    return -(q * F.log_softmax(logits.float(), dim=1)).sum(dim=1)


class Method:
    """ERM: cross-entropy, no re-balancing. Subclasses override the hooks they need."""

    name = "erm"
    stage1_mix: str | None = None  # a mixing the method trains with (MiSLAS: mixup)
    stage1_mix_alpha: float | None = None

    def __init__(self, cfg: TrainConfig, data: ImbalancedData):
        self.cfg = cfg
        self.num_classes = data.num_classes
        self.counts = torch.tensor(data.train_counts, dtype=torch.float64)
        self.passes = 0  # extra forward/backward passes beyond the loop's own, for reporting
        self.log: Callable[[str], None] = print  # the loop sets its own
        # The loop hands over its train function (`imbtrain.train.train`), for a method that
        # trains a model of its own first (M2m's ERM teacher): the methods sit below the loop.
        self.train_fn: Callable[..., Any] | None = None

    def prepare_data(self, data: ImbalancedData) -> ImbalancedData:
        """The data the model trains on (e.g. SMOTE adds synthetic minority samples)."""
        return data

    def configure_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Adapt the model before training (e.g. LDAM's normalised classifier head)."""
        return model

    def class_weights(self, epoch: int) -> torch.Tensor | None:
        """Per-class loss weights (K,) for this epoch, or None for unweighted."""
        return None

    def sampling(self, epoch: int) -> str:
        """How this epoch's batches are drawn: "shuffle" (each sample once) or "balanced"."""
        return "shuffle"

    def loss(self, logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Per-sample loss (B,) of logits against soft targets q (B, K)."""
        return soft_cross_entropy(logits, q)

    def transform_batch(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                        epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace samples of a batch (e.g. M2m's translations).

        x is the normalised float batch after the policy augmentation, before mixing.
        """
        return x, y

    def finish(self, model: torch.nn.Module, data: ImbalancedData, ctx: dict) -> None:
        """A stage after the main epochs (e.g. MiSLAS's classifier re-training).

        ctx holds "device", "train_view", "batch_size", "log" and "autocast". A method that
        overrides this hook gets its model evaluated again afterwards.
        """

    @classmethod
    def has_final_stage(cls) -> bool:
        return cls.finish is not Method.finish


register_method("erm")(Method)


def build_method(cfg: TrainConfig, data: ImbalancedData) -> Method:
    """The Method named by `cfg.method`, built for this data."""
    return METHODS.get(cfg.method)(cfg, data)
