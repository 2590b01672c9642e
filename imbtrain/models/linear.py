"""A class-weighted logistic regression as a registered model: `model=logreg`, the simple
baseline a practitioner tries first on a table.

It is fitted by scikit-learn (`imbtrain.linear`, trainer "logreg"), not by the loop, and
kept as what every other model is: an `ImbModel` whose head is an `nn.Linear` (the backbone
only flattens), so the model folder, `imbtrain.load_model` and `imbtrain predict` treat it
like any network. The standardisation it is fitted with is folded into the head's weights.

    >>> import torch
    >>> logreg_model((4,), 3)(torch.zeros(2, 4)).shape
    torch.Size([2, 3])

The network-only knobs (SAM, smoothing, SSL, mixing, augmentation, EMA, embeddings,
pre-training) and every method but ERM are refused: set, they would be silently ignored.
"""

from __future__ import annotations

import math

from torch import nn

from imbtrain.errors import ConfigError
from imbtrain.models.base import ImbModel
from imbtrain.models.registry import register_model
from imbtrain.models.trees import NETWORK_ONLY


def check_logreg_config(cfg) -> None:
    """ConfigError if cfg asks model=logreg for something a logistic regression does not do."""
    if cfg.method != "erm":
        raise ConfigError(f"model=logreg is class-weighted by itself and supports method=erm "
                          f"only; got method={cfg.method}")
    set_knobs = [f"{k}={getattr(cfg, k)}" for k, off in NETWORK_ONLY.items()
                 if getattr(cfg, k) != off]
    if set_knobs:
        raise ConfigError(f"model=logreg is a logistic regression fitted by scikit-learn; "
                          f"{', '.join(set_knobs)} applies to neural networks only; leave it "
                          "at its default")


@register_model("logreg", vectors=True, trainer="logreg", check_config=check_logreg_config)
def logreg_model(input_shape: tuple[int, ...], num_classes: int) -> ImbModel:
    """A linear classifier over the flattened input (its weights set by `imbtrain.linear`)."""
    return ImbModel(nn.Flatten(), math.prod(input_shape), num_classes)
