"""XGBoost as a registered model: `model=xgboost`, the strong tree baseline of Table 6.

Boosted trees are not an ImbModel and the loop does not train them: the registry entry names
its own trainer (`trainer="xgboost"`, `imbtrain.xgb.train_xgboost`) and a config rule
(`check_xgboost_config`), which `TrainConfig` runs at validation. What lives here is what the
rest of imbtrain sees of a trained booster:

- `XGBoostModel`, an nn.Module whose `state_dict` holds the booster's bytes and whose forward
  gives log-probabilities, so `torch.save(model.state_dict())` and code that reads logits
  work unchanged;
- `predict_proba`, the (N, K) class probabilities of a booster.

The network-only knobs (SAM, smoothing, SSL, mixing, augmentation, EMA, embeddings,
pre-training) are refused: set, they would be silently ignored by trees.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imbtrain.errors import ConfigError, UserError
from imbtrain.models.registry import register_model

SUPPORTED_METHODS = ("erm", "reweight", "smote")
# Network-only knobs and their "off" values: set, they would be silently ignored by trees.
NETWORK_ONLY = {"sam": "none", "smoothing": "none", "ssl": "none", "mix": "none",
                "augment": "none", "random_erasing": 0.0, "ema_decay": 0.0,
                "num_embeddings": "none", "pretrained": "none"}


def check_xgboost_config(cfg) -> None:
    """ConfigError if cfg asks model=xgboost for something trees do not do."""
    if cfg.method not in SUPPORTED_METHODS:
        raise ConfigError(f"model=xgboost supports method={', '.join(SUPPORTED_METHODS)}; got "
                          f"method={cfg.method}")
    if cfg.method == "reweight" and cfg.xgb_class_weight != "none":
        raise ConfigError("model=xgboost: choose method=reweight or xgb_class_weight=balanced, "
                          "not both")
    set_knobs = [f"{k}={getattr(cfg, k)}" for k, off in NETWORK_ONLY.items()
                 if getattr(cfg, k) != off]
    if set_knobs:
        raise ConfigError(f"model=xgboost trains boosted trees; {', '.join(set_knobs)} applies "
                          "to neural networks only; leave it at its default")


@register_model("xgboost", vectors=True, trainer="xgboost", check_config=check_xgboost_config)
def xgboost_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """No untrained network to build: trees grow while they train (`imbtrain.xgb`)."""
    raise UserError("model 'xgboost' is boosted trees, grown by its own trainer "
                    "(train(cfg) with model=xgboost); there is no untrained network to build")


class XGBoostModel(nn.Module):
    """A trained booster as an nn.Module: forward(x) = log class probabilities (B, K).

    `state_dict()` holds the booster as a uint8 buffer (its UBJSON bytes); `booster` is the
    live xgboost.Booster.
    """

    def __init__(self, booster, num_classes: int) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.booster = booster
        raw = bytes(booster.save_raw(raw_format="ubj"))
        self.register_buffer("booster_ubj", torch.frombuffer(bytearray(raw), dtype=torch.uint8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = predict_proba(self.booster, x.detach().reshape(len(x), -1).cpu().numpy(),
                              self.num_classes)
        return torch.from_numpy(probs).clamp_min(1e-12).log().to(x.device, torch.float32)


def load_booster(raw: bytes):
    """An xgboost.Booster from its saved bytes."""
    import xgboost as xgb  # lazy: a second to import, and only model=xgboost needs it

    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


def predict_proba(booster, x: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, K) class probabilities of every tree built so far."""
    import xgboost as xgb

    p = booster.predict(xgb.DMatrix(x))
    return np.stack([1.0 - p, p], axis=1) if num_classes == 2 else p.reshape(len(x), -1)
