"""Training on tabular data: the CLI entry point with the paper's knobs, and XGBoost as a model.

`imbtrain train` runs through `imbtrain.cli.main` on a CSV written here; XGBoost keeps the
loop's contract (same data, metrics, reports, TrainResult, exact resume).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from imbtrain.cli import main
from imbtrain.config import ConfigError, TrainConfig
from imbtrain.data import build_data, clear_cache
from imbtrain.train import train
from imbtrain.xgb import XGBoostModel, predict_proba, rounds_done, sample_weights

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def csv_file(tmp_path):
    """60 rows: two numeric columns, a categorical one with a missing value, label y (a/b)."""
    rng = np.random.default_rng(0)
    lines = ["amount,score,kind,y"]
    for i in range(60):
        label = "b" if i % 4 == 0 else "a"  # 15 b, 45 a
        shift = 1.5 if label == "b" else 0.0
        kind = "" if i == 7 else ("web" if rng.random() < 0.5 else "pos")
        lines.append(f"{rng.normal() + shift:.3f},{rng.integers(0, 9)},{kind},{label}")
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def cli_train(tmp_path, csv_file, *overrides: str) -> dict:
    out = tmp_path / "out"
    args = ["train", "dataset=tabular", f"data_dir={csv_file}", "label_column=y",
            "val_fraction=0.5", *overrides, "--out", str(out)]
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text())


def test_cli_trains_mlp_with_embeddings_sam_a_and_class_smoothing(tmp_path, csv_file, capsys):
    m = cli_train(tmp_path, csv_file, "model=mlp", "num_embeddings=periodic", "sam=sam_a",
                  "smoothing=class", "epochs=2", "batch_size=8")
    # 60 rows: 45 a, 15 b; train pool 64%: 29 a (45 - round(16.2)), 10 b (15 - round(5.4)).
    assert m["train_counts"] == [29, 10]
    assert 0.0 <= m["test_auroc"] <= 1.0 and 0.0 <= m["test_auprc"] <= 1.0
    assert m["epoch"] == 2 and "fwd_bwd_passes" in m
    assert "final metrics" in capsys.readouterr().out


def test_cli_trains_xgboost(tmp_path, csv_file):
    m = cli_train(tmp_path, csv_file, "model=xgboost", "epochs=2", "xgb_rounds=5",
                  "xgb_class_weight=balanced")
    assert m["epoch"] == 2 and m["trees"] == 5 and m["train_counts"] == [29, 10]
    assert 0.0 <= m["test_auroc"] <= 1.0
    state = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    assert state["booster_ubj"].dtype == torch.uint8 and len(state["booster_ubj"]) > 100


def test_xgboost_reports_like_the_loop_and_resumes_exactly():
    cfg = TrainConfig(dataset="tabular_synth", train_ratio=0.1, test_ratio=0.1,
                      val_fraction=0.4444, model="xgboost", epochs=3, xgb_rounds=7,
                      xgb_subsample=0.8, xgb_max_depth=3)
    data = build_data(cfg)
    states = []
    full = train(cfg, data=data, report=lambda m, s: states.append(s), log=lambda s: None)
    # Rounds after each report: floor(e * 7 / 3) = 2, 4, 7.
    assert [h["trees"] for h in full.history] == [2.0, 4.0, 7.0]
    assert [rounds_done(e, cfg) for e in range(4)] == [0, 2, 4, 7]
    nn_keys = set(train(cfg.replace(model="mlp", epochs=1), data=data,
                        log=lambda s: None).history[0])
    # The loop's per-epoch metrics, less its network-only counters.
    assert nn_keys - set(full.history[0]) == {"fwd_bwd_passes"}
    resumed = train(cfg, data=data, resume=states[0], log=lambda s: None)
    for k, v in full.metrics.items():  # exact but for the timings
        if k not in ("epoch_time_s", "samples_per_s"):
            assert resumed.metrics[k] == pytest.approx(v, nan_ok=True, abs=0), k
    assert bytes(resumed.state["booster"]) == bytes(full.state["booster"])


def test_xgboost_model_gives_log_probabilities():
    cfg = TrainConfig(dataset="toy2d", model="xgboost", epochs=1, xgb_rounds=3)
    result = train(cfg, log=lambda s: None)
    model: XGBoostModel = result.model
    x = torch.randn(5, 2)
    probs = predict_proba(model.booster, x.numpy(), 3)
    torch.testing.assert_close(model(x).softmax(1), torch.from_numpy(probs).float())
    assert result.train_counts == [1000, 1000, 1000]


def test_balanced_class_weights_by_hand():
    cfg = TrainConfig(model="xgboost", dataset="toy2d", xgb_class_weight="balanced")
    # N / (K n_y) with N = 4, K = 2, counts 3 and 1: 4/6 for class 0, 4/2 for class 1.
    w = sample_weights(cfg, np.array([0, 0, 0, 1]), 2, method=None)
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 2.0])


@pytest.mark.parametrize("overrides,message", [
    ({"sam": "sam_a"}, "model=xgboost trains boosted trees; sam=sam_a applies to neural "
                       "networks only"),
    ({"method": "focal"}, "model=xgboost supports method=erm, reweight, smote; got method=focal"),
    ({"method": "reweight", "xgb_class_weight": "balanced"}, "choose method=reweight or "
                                                             "xgb_class_weight=balanced"),
])
def test_xgboost_refuses_network_only_knobs(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(dataset="toy2d", model="xgboost", **overrides)


def test_tabular_config_round_trips_through_yaml(tmp_path):
    from imbtrain.config import load_config

    cfg = TrainConfig(dataset="tabular_synth", model="ft_transformer", model_width=32,
                      model_depth=1, tabular_transform="standard", num_embeddings="none")
    cfg.save(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
