"""How fast the training set is fitted per train ratio (Fig. 17), from history.parquet."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.fitting import epochs_to_fit, fitting_analysis, fitting_curves
from imbtrain.errors import UserError

RESULTS = pd.DataFrame({"trial_id": ["a", "b", "c", "d"],
                        "config/train_ratio": [1.0, 1.0, 0.01, 0.01],
                        "config/seed": [0, 1, 0, 1]})
# train_acc per epoch 1..4
CURVES = {"a": [0.5, 0.99, 1.0, 1.0], "b": [0.6, 0.9, 1.0, 1.0],
          "c": [0.3, 0.6, 0.9, 0.995], "d": [0.2, 0.5, 0.7, 0.8]}
HISTORY = pd.DataFrame([{"trial_id": t, "trial_name": t, "epoch": e + 1, "train_acc": v}
                        for t, vs in CURVES.items() for e, v in enumerate(vs)])


def test_curves_mean_and_se_per_epoch():
    c = fitting_curves(RESULTS, HISTORY)
    row = c[(c.train_ratio == 1.0) & (c.epoch == 1)].iloc[0]
    # 0.5, 0.6 -> 0.55 ± 0.05
    assert row[["n", "train_acc", "train_acc_se"]].tolist() == pytest.approx([2, 0.55, 0.05])
    assert c["train_ratio"].tolist()[:4] == [1.0] * 4  # balanced first


def test_epochs_to_fit():
    t = epochs_to_fit(RESULTS, HISTORY, threshold=0.99).set_index("train_ratio")
    # r = 1: a reaches 0.99 at epoch 2, b at 3 -> 2.5 ± 0.5; r = 0.01: only c, at epoch 4
    assert t.loc[1.0, ["n", "n_fitted", "epochs_to_fit", "epochs_to_fit_se"]].tolist() == \
        pytest.approx([2, 2, 2.5, 0.5])
    assert t.loc[0.01, ["n_fitted", "epochs_to_fit"]].tolist() == [1, 4.0]
    assert math.isnan(t.loc[0.01, "epochs_to_fit_se"])
    assert t.loc[0.01, "final_train_acc"] == pytest.approx((0.995 + 0.8) / 2)


def test_missing_history_metric():
    with pytest.raises(UserError, match="no train_minority_acc"):
        fitting_curves(RESULTS, HISTORY, "train_minority_acc")


def test_writes_figure_and_tables(tmp_path):
    paths = fitting_analysis(RESULTS, HISTORY, tmp_path)
    assert [p.name for p in paths] == ["fitting.png", "fitting.parquet", "fitting.md",
                                       "fitting_curves.parquet", "fitting_curves.md"]
    assert "| 1 | 2 | 2.500 ± 0.500 | 2 | 1 |" in (tmp_path / "fitting.md").read_text()
