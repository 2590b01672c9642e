"""The sweep analysis (a knob per variant against a reference) on a hand-made table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis import ANALYSES, sweep_table
from imbtrain.analysis.sweep import sweep_markdown

# ERM ignores rho: its three seeds repeat at both rho values.
ROWS = [  # (variant, rho, seed, test_acc)
    *[("erm", rho, s, a) for rho in (0.1, 0.2) for s, a in enumerate((0.5, 0.6, 0.7))],
    ("sam", 0.1, 0, 0.6), ("sam", 0.1, 1, 0.8), ("sam", 0.1, 2, 1.0),
    ("sam", 0.2, 0, 0.6), ("sam", 0.2, 1, 0.7), ("sam", 0.2, 2, 0.8),
]


def results() -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["variant", "config/sam_rho", "config/seed", "test_acc"])
    return df.assign(status="TERMINATED", **{"config/train_ratio": 0.05})


def test_mean_se_and_paired_test_by_hand():
    t = sweep_table(results(), "sam_rho", metrics=["test_acc"], reference="erm")
    assert list(zip(t["group"], t["sam_rho"], strict=True)) == [
        ("erm", 0.1), ("erm", 0.2), ("sam", 0.1), ("sam", 0.2)]
    sam = t.iloc[2]
    # mean 0.8; std(0.6, 0.8, 1.0, ddof=1) = 0.2, / sqrt(3)
    assert sam["test_acc"] == pytest.approx(0.8)
    assert sam["test_acc_se"] == pytest.approx(0.2 / math.sqrt(3))
    # differences 0.1, 0.2, 0.3: mean 0.2, t = 0.2 / (0.1 / sqrt 3) = sqrt 12, df 2;
    # the t(2) CDF is 1/2 + t / (2 sqrt(t^2 + 2)), so p = 1 - sqrt(12 / 14)
    assert sam["test_acc_diff"] == pytest.approx(0.2)
    assert sam["test_acc_p"] == pytest.approx(1 - math.sqrt(6 / 7))
    assert sam["test_acc_pairs"] == 3
    # at rho 0.2 every difference is 0.1: no spread, no p-value
    assert t.iloc[3]["test_acc_diff"] == pytest.approx(0.1) and math.isnan(t.iloc[3]["test_acc_p"])
    assert math.isnan(t.iloc[0]["test_acc_diff"]) and t.iloc[0]["test_acc_pairs"] == 0
    assert "+0.200 (p = 0.0742, n = 3)" in sweep_markdown(t)


def test_train_ratios_are_kept_apart():
    two = pd.concat([results(), results().assign(**{"config/train_ratio": 1.0})])
    t = sweep_table(two, "sam_rho", metrics=["test_acc"], reference="erm")
    assert t.attrs["by"] == ["train_ratio"] and len(t) == 8
    assert (t.groupby("train_ratio")["test_acc_pairs"].sum() == 6).all()


def test_registered_analysis_writes_its_files(tmp_path):
    files = ANALYSES["sweep"](results(), pd.DataFrame(), tmp_path, knob="sam_rho",
                              metrics=["test_acc"], reference="erm")
    assert sorted(f.name for f in files) == ["sweep.md", "sweep.parquet", "sweep.png"]


def test_missing_reference_is_named():
    from imbtrain.errors import UserError

    with pytest.raises(UserError, match="no finished trial of the reference variant 'none'"):
        sweep_table(results(), "sam_rho", metrics=["test_acc"], reference="none")
