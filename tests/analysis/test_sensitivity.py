"""Imbalance sensitivity on a hand-made results table, against numbers worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.sensitivity import (
    paired_changes,
    plot_sensitivity,
    sensitivity_curve,
    sensitivity_markdown,
)
from imbtrain.errors import UserError

# (train_ratio, seed, batch_size, status, test_acc)
ROWS = [
    (0.1, 0, 128, "TERMINATED", 0.50), (0.1, 0, 16, "TERMINATED", 0.60),
    (0.1, 1, 128, "TERMINATED", 0.40), (0.1, 1, 16, "TERMINATED", 0.50),
    (0.1, 2, 128, "TERMINATED", 0.80), (0.1, 2, 16, "TERMINATED", 0.80),
    (0.1, 0, 64, "TERMINATED", 0.45),
    (0.1, 3, 16, "ERROR", math.nan),     # failed: left out
    (0.1, 4, 16, "TERMINATED", 0.90),    # its baseline (seed 4, bs 128) is missing: left out
    (1.0, 0, 128, "TERMINATED", 0.90), (1.0, 0, 16, "TERMINATED", 0.99),
]


@pytest.fixture
def results() -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["config/train_ratio", "config/seed", "config/batch_size",
                                     "status", "test_acc"])
    df.insert(0, "trial_id", [f"t{i}" for i in range(len(df))])
    return df


def test_changes_are_paired_by_ratio_and_seed(results):
    df = paired_changes(results, "batch_size", 128)
    got = {(r.train_ratio, r.seed, r.batch_size): r.pct_change for r in df.itertuples()}
    # (acc_b - acc_128) / acc_128 * 100 at the same train ratio and seed
    assert got == pytest.approx({
        (0.1, 0, 128): 0.0, (0.1, 0, 16): 20.0, (0.1, 0, 64): -10.0,
        (0.1, 1, 128): 0.0, (0.1, 1, 16): 25.0,
        (0.1, 2, 128): 0.0, (0.1, 2, 16): 0.0,
        (1.0, 0, 128): 0.0, (1.0, 0, 16): 10.0})


def test_curve_mean_and_standard_error_over_seeds(results):
    t = sensitivity_curve(results, "batch_size", baseline=128)
    assert list(t.columns) == ["train_ratio", "batch_size", "n", "pct_change",
                               "pct_change_se", "metric_mean"]
    assert t[["train_ratio", "batch_size", "n"]].values.tolist() == [
        [1.0, 16, 1], [1.0, 128, 1], [0.1, 16, 3], [0.1, 64, 1], [0.1, 128, 3]]
    row = t[(t.train_ratio == 0.1) & (t.batch_size == 16)].iloc[0]
    # changes 20, 25, 0: mean 15; deviations 5, 10, -15 -> var = 350 / 2 = 175 (ddof 1);
    # se = sqrt(175) / sqrt(3) = 7.6376
    assert row["pct_change"] == pytest.approx(15.0)
    assert row["pct_change_se"] == pytest.approx(math.sqrt(175.0) / math.sqrt(3.0))
    assert row.metric_mean == pytest.approx((0.6 + 0.5 + 0.8) / 3)
    base = t[(t.train_ratio == 0.1) & (t.batch_size == 128)].iloc[0]
    assert (base["pct_change"], base["pct_change_se"]) == (0.0, 0.0)
    one = t[(t.train_ratio == 1.0) & (t.batch_size == 16)].iloc[0]
    assert one["pct_change"] == pytest.approx(10.0) and math.isnan(one["pct_change_se"])  # n = 1
    assert t.attrs == {"knob": "batch_size", "baseline": 128, "metric": "test_acc"}


def test_bare_column_names_and_other_metrics(results):
    bare = results.rename(columns=lambda c: c.removeprefix("config/"))
    bare["val_bal_acc"] = bare["test_acc"] * 2
    t = sensitivity_curve(bare, "batch_size", baseline=128, metric="val_bal_acc")
    # Percent changes do not change when the metric is scaled.
    assert t["pct_change"].tolist() == pytest.approx([10.0, 0.0, 15.0, -10.0, 0.0])


def test_markdown_table(results):
    md = sensitivity_markdown(sensitivity_curve(results, "batch_size", 128))
    assert md.splitlines()[:5] == [
        "| batch_size | r = 1 (n = 1) | r = 0.1 (n = 3) |",
        "|---|---|---|",
        "| 16 | +10.00 | +15.00 ± 7.64 |",
        "| 64 | – | -10.00 |",
        "| 128 | +0.00 | +0.00 ± 0.00 |",
    ]


def test_plot_writes_a_png(results, tmp_path):
    import matplotlib.image as mpimg

    path = plot_sensitivity(sensitivity_curve(results, "batch_size", 128),
                            tmp_path / "fig" / "sensitivity.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = mpimg.imread(path).shape[:2]
    assert (width, height) == (1320, 504)  # 11 x 4.2 inches at 120 dpi


def test_missing_baseline_or_metric_is_a_user_error(results):
    with pytest.raises(UserError, match="no finished trial has the baseline batch_size=256"):
        sensitivity_curve(results, "batch_size", 256)
    with pytest.raises(UserError, match="no metric 'test_bal_acc'"):
        sensitivity_curve(results, "batch_size", 128, metric="test_bal_acc")
