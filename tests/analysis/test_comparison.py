"""Method comparison with paired t-tests against ERM, on a hand-made study."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.comparison import comparison_analysis, method_comparison, paired_test
from imbtrain.errors import UserError

# (train_ratio, method, seed, test_acc)
ROWS = [(0.01, "erm", 0, 0.50), (0.01, "erm", 1, 0.60), (0.01, "erm", 2, 0.70),
        (0.01, "focal", 0, 0.52), (0.01, "focal", 1, 0.64), (0.01, "focal", 2, 0.73),
        (0.01, "drw", 0, 0.55), (0.01, "drw", 3, 0.90),      # one seed paired with erm
        (1.0, "erm", 0, 0.90), (1.0, "focal", 0, 0.80), (1.0, "focal", 1, 0.84)]

# focal - erm at r = 0.01: d = (0.02, 0.04, 0.03); mean 0.03; std (ddof 1) =
# sqrt((0.01^2 + 0.01^2 + 0) / 2) = 0.01; t = 0.03 / (0.01 / sqrt 3) = 3 sqrt 3 = 5.196, df 2.
# Student t with 2 df: P(|T| > t) = 1 - t / sqrt(2 + t^2) = 1 - sqrt(27 / 29) = 0.035098
P_FOCAL = 1 - math.sqrt(27 / 29)


@pytest.fixture
def results() -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["config/train_ratio", "config/method", "config/seed",
                                     "test_acc"])
    df["status"] = "TERMINATED"
    return df


def test_paired_p_value_by_hand():
    diff, p, n = paired_test([0.52, 0.64, 0.73], [0.50, 0.60, 0.70])
    assert (diff, p, n) == (pytest.approx(0.03), pytest.approx(P_FOCAL), 3)
    one = paired_test([0.5], [0.4])
    assert one[0] == pytest.approx(0.1) and math.isnan(one[1]) and one[2] == 1
    same = paired_test([0.5, 0.6], [0.4, 0.5])  # equal differences: t undefined
    assert math.isnan(same[1]) and same[2] == 2


def test_table_per_ratio_and_method(results):
    t = method_comparison(results, metrics=["test_acc"])
    assert t[["train_ratio", "method", "n"]].values.tolist() == [
        [0.01, "erm", 3], [0.01, "drw", 2], [0.01, "focal", 3],
        [1.0, "erm", 1], [1.0, "focal", 2]]
    focal = t.iloc[2]
    # mean 0.63; values 0.52, 0.64, 0.73: deviations -0.11, 0.01, 0.10 ->
    # var = (0.0121 + 0.0001 + 0.01) / 2 = 0.0111, se = sqrt(0.0111 / 3)
    assert focal[["test_acc", "test_acc_se", "test_acc_diff", "test_acc_p",
                  "test_acc_pairs"]].tolist() == pytest.approx(
        [0.63, math.sqrt(0.0111 / 3), 0.03, P_FOCAL, 3])
    drw = t.iloc[1]
    assert drw["test_acc_pairs"] == 1 and math.isnan(drw["test_acc_p"])  # fewer than 2 pairs
    assert drw["test_acc_diff"] == pytest.approx(0.05)
    erm = t.iloc[0]
    assert erm["test_acc_pairs"] == 0 and math.isnan(erm["test_acc_p"])
    r1 = t.iloc[4]  # at r = 1 only seed 0 pairs: 0.80 - 0.90
    assert (r1["test_acc_pairs"], r1["test_acc_diff"]) == (1, pytest.approx(-0.1))


def test_baseline_must_exist(results):
    with pytest.raises(UserError, match="baseline method 'ldam_drw'"):
        method_comparison(results, metrics=["test_acc"], baseline="ldam_drw")


def test_writes_figure_and_markdown(results, tmp_path):
    paths = comparison_analysis(results, pd.DataFrame(), tmp_path, metrics=["test_acc"])
    assert [p.name for p in paths] == ["comparison.png", "comparison.parquet", "comparison.md"]
    md = (tmp_path / "comparison.md").read_text()
    assert "| 0.01 | focal | 3 | 0.630 ± 0.061 | +0.030 (p = 0.0351, n = 3) |" in md
    assert "| 0.01 | drw | 2 | 0.725 ± 0.175 | +0.050 (p = –, n = 1) |" in md


def test_folder_datasets_are_compared_apart():
    df = pd.DataFrame({"config/dataset": ["imagefolder"] * 4,
                       "config/data_dir": ["/d/isic", "/d/isic", "/d/aptos", "/d/aptos"],
                       "config/method": ["erm", "focal"] * 2, "config/seed": [0] * 4,
                       "test_acc": [0.5, 0.6, 0.7, 0.6]})
    t = method_comparison(df, metrics=["test_acc"])
    assert t[["dataset", "method"]].values.tolist() == [
        ["imagefolder/aptos", "erm"], ["imagefolder/aptos", "focal"],
        ["imagefolder/isic", "erm"], ["imagefolder/isic", "focal"]]
    assert t["test_acc_diff"].tolist() == pytest.approx([math.nan, -0.1, math.nan, 0.1],
                                                        nan_ok=True)
    with pytest.raises(UserError, match="single method"):
        method_comparison(df[df["config/method"] == "erm"], metrics=["test_acc"])
