"""Augmentation variance by class group (Fig. 2) on a hand-made study."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.variance import (
    augmentation_variance,
    class_group_accuracy,
    improvements,
    variance_analysis,
)
from imbtrain.errors import UserError

COUNTS = [100, 50, 20, 10, 5]  # K = 5: minority = class 4, majority = class 0 (20% of 5 = 1)
# (seed, augment, per-class test accuracy); worked out below
ROWS = [
    (0, "none", [0.8, 0.6, 0.5, 0.4, 0.2]),         # min 0.2, maj 0.8, all 2.5/5 = 0.5
    (0, "flip_crop", [0.8, 0.6, 0.5, 0.4, 0.3]),    # min +50%, maj 0%, all 0.52 -> +4%
    (0, "autoaugment", [0.88, 0.6, 0.5, 0.4, 0.25]),  # min +25%, maj +10%, all 0.526 -> +5.2%
    (1, "none", [0.9, 0.6, 0.5, 0.4, 0.1]),         # min 0.1, maj 0.9, all 0.5
    (1, "flip_crop", [0.9, 0.6, 0.5, 0.4, 0.2]),    # min +100%, maj 0%, all +4%
    (1, "autoaugment", [0.9, 0.6, 0.5, 0.4, 0.1]),  # min 0%, maj 0%, all 0%
    (2, "flip_crop", [0.9, 0.9, 0.9, 0.9, 0.9]),    # no baseline at seed 2: left out
]


@pytest.fixture
def results() -> pd.DataFrame:
    rows = []
    for seed, aug, acc in ROWS:
        row = {"config/train_ratio": 0.05, "config/seed": seed, "config/augment": aug,
               "status": "TERMINATED", "train_counts": COUNTS}
        row.update({f"test_class_acc_{k}": a for k, a in enumerate(acc)})
        rows.append(row)
    return pd.DataFrame(rows)


def test_group_accuracy_from_per_class_columns(results):
    g = class_group_accuracy(results)
    assert g.iloc[0].tolist() == pytest.approx([0.2, 0.8, 0.5])
    assert g.iloc[2].tolist() == pytest.approx([0.25, 0.88, 0.526])


def test_improvements_are_paired_by_seed(results):
    df = improvements(results)
    got = {(r.seed, r.policy, r.group): r.pct_change for r in df.itertuples()}
    assert got == pytest.approx({
        (0, "flip_crop", "minority"): 50.0, (0, "flip_crop", "majority"): 0.0,
        (0, "flip_crop", "all"): 4.0, (0, "autoaugment", "minority"): 25.0,
        (0, "autoaugment", "majority"): 10.0, (0, "autoaugment", "all"): 5.2,
        (1, "flip_crop", "minority"): 100.0, (1, "flip_crop", "majority"): 0.0,
        (1, "flip_crop", "all"): 4.0, (1, "autoaugment", "minority"): 0.0,
        (1, "autoaugment", "majority"): 0.0, (1, "autoaugment", "all"): 0.0})


def test_variance_across_policies(results):
    imp, var = augmentation_variance(results)
    v = var.set_index("group")
    # minority: seed 0 {50, 25}: mean 37.5, var (ddof 1) = 2 * 12.5^2 = 312.5;
    #           seed 1 {100, 0}: var = 2 * 50^2 = 5000.
    # mean over seeds 2656.25; se of two values = |a - b| / 2 = 2343.75
    assert v.loc["minority", "variance"] == pytest.approx(2656.25)
    assert v.loc["minority", "variance_se"] == pytest.approx(2343.75)
    # majority: {0, 10} -> 50, {0, 0} -> 0: mean 25, se 25; all: {4, 5.2} -> 0.72, {4, 0} -> 8
    assert v.loc["majority", ["variance", "variance_se"]].tolist() == pytest.approx([25, 25])
    assert v.loc["all", "variance"] == pytest.approx((0.72 + 8) / 2)
    assert (v["n"] == 2).all() and (v["n_policies"] == 2).all()
    # Fig. 2 left: flip_crop on the minority classes: 50, 100 -> 75 ± 25
    row = imp[(imp.group == "minority") & (imp.policy == "flip_crop")].iloc[0]
    assert row[["n", "pct_change", "pct_change_se"]].tolist() == pytest.approx([2, 75, 25])


def test_population_variance_option(results):
    _, var = augmentation_variance(results, ddof=0)
    # minority seed 0: 12.5^2 = 156.25; seed 1: 50^2 = 2500
    assert var.set_index("group").loc["minority", "variance"] == pytest.approx(1328.125)


def test_group_metrics_fallback_and_missing_baseline():
    df = pd.DataFrame({"config/augment": ["none", "augmix"], "config/seed": [0, 0],
                       "config/train_ratio": [1.0, 1.0], "test_minority_acc": [0.4, 0.5],
                       "test_majority_acc": [0.8, 0.8], "test_bal_acc": [0.6, 0.66]})
    _, var = augmentation_variance(df)
    assert var["n"].tolist() == [0, 0, 0]  # one policy: no variance across policies
    assert math.isnan(var["variance"].iloc[0])
    with pytest.raises(UserError, match="baseline augment=autoaugment"):
        augmentation_variance(df, baseline="autoaugment")
    with pytest.raises(UserError, match="test_class_acc"):
        augmentation_variance(df.drop(columns="test_bal_acc"))


def test_writes_figure_and_tables(results, tmp_path):
    paths = variance_analysis(results, pd.DataFrame(), tmp_path, policy="flip_crop")
    assert [p.name for p in paths] == [
        "augmentation_variance.png", "augmentation_variance.parquet",
        "augmentation_variance.md", "augmentation_variance_improvement.parquet",
        "augmentation_variance_improvement.md"]
    md = (tmp_path / "augmentation_variance.md").read_text()
    assert "| 0.05 | minority | 2 | 2656.250 ± 2343.750 | 2 |" in md
