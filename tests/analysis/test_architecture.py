"""Architectures on balanced vs imbalanced data (Fig. 3) on a hand-made study."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.architecture import (
    architecture_analysis,
    architecture_correlation,
    architecture_table,
    param_counts,
    parameter_count,
)
from imbtrain.errors import UserError

# (model, train_ratio, seed, test_acc)
ROWS = [
    ("a", 1.0, 0, 0.6), ("a", 1.0, 1, 0.6), ("a", 0.01, 0, 0.2), ("a", 0.01, 1, 0.4),
    ("b", 1.0, 0, 0.7), ("b", 0.01, 0, 0.5),
    ("c", 1.0, 0, 0.8), ("c", 0.01, 0, 0.4),
]


@pytest.fixture
def results() -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["config/model", "config/train_ratio", "config/seed",
                                     "test_acc"])
    df["param_count"] = df["config/model"].map({"a": 10, "b": 20, "c": 30})
    df["test_minority_acc"] = df["test_acc"] / 2
    return df


def test_table_mean_and_se_per_architecture_and_ratio(results):
    t = architecture_table(results)
    row = t[(t.architecture == "a") & (t.train_ratio == 0.01)].iloc[0]
    # 0.2 and 0.4: mean 0.3, se = |0.4 - 0.2| / 2 = 0.1
    assert row[["n", "test_acc", "test_acc_se"]].tolist() == pytest.approx([2, 0.3, 0.1])
    assert t["architecture"].tolist() == ["a", "a", "b", "b", "c", "c"]  # by parameters


def test_pearson_r_between_balanced_and_imbalanced(results):
    corr = architecture_correlation(architecture_table(results))
    # balanced 0.6, 0.7, 0.8; imbalanced 0.3, 0.5, 0.4
    # dx = (-0.1, 0, 0.1), dy = (-0.1, 0.1, 0): Sxy = 0.01, Sxx = Syy = 0.02 -> r = 0.5
    assert corr["pearson_r"] == pytest.approx(0.5)
    assert (corr["n_architectures"], corr["imbalanced_ratio"]) == (3, 0.01)
    with pytest.raises(UserError, match="train ratios 1 and 0.1"):
        architecture_correlation(architecture_table(results), imbalanced_ratio=0.1)


def test_parameter_count_by_hand():
    # mlp on (2,), width 4, depth 1, 3 classes: Linear(2, 4) 8 + 4, head Linear(4, 3) 12 + 3
    assert parameter_count("mlp", (2,), 3, width=4, depth=1) == 27
    df = pd.DataFrame({"config/model": ["mlp", "mlp"], "config/dataset": ["toy2d"] * 2,
                       "config/model_width": [4, 8], "config/model_depth": [1, 1],
                       "train_counts": [[10, 5, 1], [10, 5, 1]]})
    # width 8: 2*8 + 8 + 8*3 + 3 = 51
    assert param_counts(df).tolist() == [27.0, 51.0]
    with pytest.raises(UserError, match="input_shape"):
        param_counts(df.assign(**{"config/dataset": "mystery"}))
    assert param_counts(df.assign(**{"config/dataset": "mystery"}), input_shape=[2])[0] == 27


def test_writes_figure_and_tables(results, tmp_path):
    paths = architecture_analysis(results, pd.DataFrame(), tmp_path)
    assert [p.name for p in paths] == ["architecture.png", "architecture.parquet",
                                       "architecture.md", "architecture_correlation.parquet",
                                       "architecture_correlation.md"]
    md = (tmp_path / "architecture.md").read_text()
    assert "| a | 10 | 0.600 ± 0.000 (2) | 0.300 ± 0.100 (2) |" in md
    assert "r = 0.500" in md
    pairs = pd.read_parquet(tmp_path / "architecture_correlation.parquet")
    assert pairs["pearson_r"].tolist() == pytest.approx([0.5] * 3)
    assert not math.isnan(pairs["p_value"].iloc[0])
