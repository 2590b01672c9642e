"""The neural-collapse table (Table 4) on a hand-made study."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.collapse import collapse_analysis, collapse_table
from imbtrain.errors import UserError

# (method, sam, ssl, seed, cdnv, cdnv_minority, ncc_acc_minority_train, ncc_acc_test, test_acc)
ROWS = [("reweight", "none", "none", 0, 0.38, 0.30, 0.94, 0.70, 0.82),
        ("erm", "none", "none", 0, 0.40, 0.30, 0.90, 0.70, 0.84),
        ("erm", "none", "none", 1, 0.44, 0.34, 0.94, 0.74, 0.86),
        ("erm", "sam_a", "vicreg", 0, 0.43, 0.33, 0.90, 0.72, 0.85)]


@pytest.fixture
def results() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["config/method", "config/sam", "config/ssl",
                                       "config/seed", "cdnv", "cdnv_minority",
                                       "ncc_acc_minority_train", "ncc_acc_test", "test_acc"])


def test_mean_and_se_per_method_erm_first(results):
    t = collapse_table(results)
    assert t["method"].tolist() == ["erm", "reweight", "sam_a + vicreg"]
    erm = t.iloc[0]
    # cdnv 0.40, 0.44 -> 0.42 ± 0.02; ncc minority 0.90, 0.94 -> 0.92 ± 0.02
    assert erm[["n", "cdnv", "cdnv_se", "ncc_acc_minority_train",
                "ncc_acc_minority_train_se"]].tolist() == pytest.approx([2, 0.42, 0.02, 0.92,
                                                                         0.02])
    assert math.isnan(t.iloc[1]["cdnv_se"])  # one seed


def test_correlation_with_accuracy_across_methods(results):
    t = collapse_table(results, measures=("cdnv",))
    # cdnv (0.42, 0.38, 0.43) vs acc (0.85, 0.82, 0.85): dx = (0.01, -0.03, 0.02),
    # dy = (0.01, -0.02, 0.01): Sxy = 0.0001 + 0.0006 + 0.0002 = 0.0009,
    # Sxx = 0.0014, Syy = 0.0006 -> r = 0.0009 / sqrt(0.0014 * 0.0006) = 0.98198
    assert t.attrs["correlation"]["cdnv"] == pytest.approx(0.0009 / math.sqrt(0.0014 * 0.0006))


def test_missing_measure(results):
    with pytest.raises(UserError, match="no metric cdnv_minority"):
        collapse_table(results.drop(columns="cdnv_minority"))


def test_writes_figure_and_table(results, tmp_path):
    paths = collapse_analysis(results, pd.DataFrame(), tmp_path)
    assert [p.name for p in paths] == ["collapse.png", "collapse.parquet", "collapse.md"]
    md = (tmp_path / "collapse.md").read_text()
    assert "| erm | 2 | 0.420 ± 0.020 | 0.320 ± 0.020 | 0.920 ± 0.020 | 0.720 ± 0.020 |" in md


def test_one_train_ratio_the_smallest_by_default(results):
    other = results.assign(**{"config/train_ratio": 1.0, "cdnv": 9.0})
    both = pd.concat([results.assign(**{"config/train_ratio": 0.01}), other])
    t = collapse_table(both)
    assert t.attrs["train_ratio"] == 0.01 and t["cdnv"].max() < 1
    assert collapse_table(both, train_ratio=1.0)["cdnv"].tolist() == [9.0] * 3
    with pytest.raises(UserError, match="no finished trial at train ratio 0.1"):
        collapse_table(both, train_ratio=0.1)
