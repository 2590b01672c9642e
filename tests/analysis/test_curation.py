"""Data curation: fixed minority count, growing majority count (Fig. 16)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.curation import curation_analysis, curation_curve
from imbtrain.errors import UserError

# (train_counts, seed, test_acc, test_minority_acc, test_majority_acc)
ROWS = [([200, 200], 0, 0.70, 0.70, 0.70), ([200, 200], 1, 0.72, 0.68, 0.76),
        ([800, 200], 0, 0.80, 0.70, 0.90), ([800, 200], 1, 0.76, 0.62, 0.90),
        ([3200, 200], 0, 0.60, 0.25, 0.95), ([3200, 200], 1, 0.64, 0.35, 0.93),
        ([3200, 200], 2, math.nan, math.nan, math.nan)]  # failed: left out


@pytest.fixture
def results() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["train_counts", "config/seed", "test_acc",
                                       "test_minority_acc", "test_majority_acc"])


def test_curve_mean_and_se_by_majority_count(results):
    t = curation_curve(results)
    assert t[["minority_count", "majority_count", "train_ratio", "n"]].values.tolist() == [
        [200, 200, 1.0, 2], [200, 800, 0.25, 2], [200, 3200, 0.0625, 2]]
    # majority 800: acc 0.80, 0.76 -> 0.78 ± |0.04| / 2 = 0.02;
    #               minority 0.70, 0.62 -> 0.66 ± 0.04; majority 0.90 ± 0
    row = t.iloc[1]
    assert row[["test_acc", "test_acc_se", "test_minority_acc", "test_minority_acc_se",
                "test_majority_acc", "test_majority_acc_se"]].tolist() == pytest.approx(
        [0.78, 0.02, 0.66, 0.04, 0.90, 0.0])


def test_counts_from_config_keys(results):
    df = results.assign(**{"config/n_major": [1, 1, 4, 4, 16, 16, 16],
                           "config/n_minor": [1] * 7}).drop(columns="train_counts")
    t = curation_curve(df, majority_key="n_major", minority_key="n_minor")
    assert t["majority_count"].tolist() == [1, 4, 16]
    with pytest.raises(UserError, match="train_counts"):
        curation_curve(df)


def test_writes_figure_and_table(results, tmp_path):
    paths = curation_analysis(results, pd.DataFrame(), tmp_path)
    assert [p.name for p in paths] == ["curation.png", "curation.parquet", "curation.md"]
    assert "| 200 | 800 | 0.25 | 2 | 0.780 ± 0.020 |" in (tmp_path / "curation.md").read_text()
