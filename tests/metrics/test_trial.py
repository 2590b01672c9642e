"""Trial-level metrics (imbtrain.metrics.trial): every registered one on a trained model."""

from __future__ import annotations

import math

import pytest
import torch

from imbtrain.config import TrainConfig
from imbtrain.data import build_data
from imbtrain.metrics import MARGIN, TRIAL_METRICS, compute_trial_metrics
from imbtrain.models import count_parameters
from imbtrain.train import train


@pytest.fixture(scope="module")
def toy_run():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = TrainConfig(dataset="toy2d", train_ratio=0.02, model="mlp", epochs=1, batch_size=64)
    return train(cfg, log=lambda line: None), build_data(cfg)


@pytest.mark.parametrize("name", TRIAL_METRICS.names())
def test_every_trial_metric_gives_finite_numbers(name, toy_run):
    result, data = toy_run
    out = compute_trial_metrics([name], result, data)
    assert out and all(isinstance(v, float) and math.isfinite(v) for v in out.values())


def test_minority_margin_and_param_count_by_their_definitions(toy_run):
    result, data = toy_run
    out = compute_trial_metrics(["minority_margin", "param_count"], result, data)
    assert set(out) == {MARGIN, "minority_train_acc", "param_count"}
    assert 0.0 <= out[MARGIN] <= 5.0  # a ray that meets no boundary counts max_radius 5
    assert 0.0 <= out["minority_train_acc"] <= 1.0
    assert out["param_count"] == count_parameters(result.model)
