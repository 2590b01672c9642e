"""model=logreg: scikit-learn's class-weighted logistic regression on standardised inputs,
kept as a linear head that gives the same predictions, saved and loaded like any model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imbtrain.config import TrainConfig
from imbtrain.errors import ConfigError


def test_head_reproduces_sklearn_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from imbtrain.linear import fit_logreg

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * [1, 10, 100, 0.1, 1] + [0, 5, -50, 1, 0]
    for k in (2, 3):
        y = rng.integers(0, k, size=200)
        w, b = fit_logreg(x, y, k)
        pipe = make_pipeline(StandardScaler(), LogisticRegression(
            class_weight="balanced", max_iter=2000)).fit(x, y)
        logits = x @ w.T + b
        e = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(e / e.sum(1, keepdims=True), pipe.predict_proba(x),
                                   atol=1e-6)


def test_train_and_reload(tmp_path):
    from imbtrain.data import build_data
    from imbtrain.saved import load_model, write_model_folder
    from imbtrain.train import train

    cfg = TrainConfig(dataset="tabular_synth", model="logreg", train_ratio=0.1,
                      tabular_transform="standard", epochs=1)
    data = build_data(cfg)
    result = train(cfg, data=data, log=lambda line: None)
    assert result.metrics["epoch"] == 1.0 and 0.5 < result.metrics["test_bal_acc"] <= 1.0
    write_model_folder(tmp_path / "m", result.model, cfg, data)
    model = load_model(tmp_path / "m")
    assert model.manifest["trainer"] == "logreg"
    with torch.no_grad():
        mine = result.model(data.test_x[:50].float())
        loaded = model.network(data.test_x[:50].float())
    torch.testing.assert_close(loaded, mine)


def test_network_knobs_refused():
    with pytest.raises(ConfigError, match="model=logreg .* sam=sam_a applies to neural"):
        TrainConfig(dataset="tabular_synth", model="logreg", sam="sam_a")
    with pytest.raises(ConfigError, match="supports method=erm only"):
        TrainConfig(dataset="tabular_synth", model="logreg", method="drw")


def test_builds_a_linear_head_over_the_flattened_input():
    from imbtrain.models import create_model, model_trainer

    model = create_model("logreg", (3, 4, 4), 5)
    assert model_trainer("logreg") == "logreg"
    assert model.head.in_features == 48 and model.head.out_features == 5
    assert model(torch.zeros(2, 3, 4, 4)).shape == (2, 5)
