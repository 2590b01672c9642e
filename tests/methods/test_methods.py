"""Every registered method (the registry's contents, so a new one is tested as soon as it is
registered): found under its name, and one epoch through the loop."""

from __future__ import annotations

import math

import pytest
import torch

from imbtrain.config import TrainConfig
from imbtrain.methods import METHODS
from imbtrain.train import train


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_is_registered_under_its_name(name):
    assert METHODS[name].name == name


# Tiny vectors: 3 classes of 12, 8, 6 train samples (exp profile at r = 0.5), an MLP.
TINY = dict(dataset="synthetic", synthetic_shape="6", synthetic_classes=3,
            synthetic_samples=12, train_ratio=0.5, model="mlp", epochs=1, batch_size=8,
            m2m_epoch=0, m2m_steps=1, mislas_epochs=1)


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_trains_an_epoch_through_the_loop(name):
    torch.manual_seed(0)
    result = train(TrainConfig(**TINY, method=name), log=lambda line: None)
    assert result.train_counts == [12, 8, 6]
    assert result.history[0]["epoch"] == 1 and math.isfinite(result.metrics["train_loss"])
    assert 0.0 <= result.metrics["test_bal_acc"] <= 1.0
    assert result.metrics["fwd_bwd_passes"] >= 3  # 26 samples (SMOTE: 36) in batches of 8
