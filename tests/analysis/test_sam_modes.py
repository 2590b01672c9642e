"""The SAM-A modes analysis (`imbtrain.analysis.sam_modes`): arms from the config, the best
rho chosen on validation, pairing with ERM by seed, the cost of a step; numbers by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis import ANALYSES
from imbtrain.analysis.common import steps_per_epoch
from imbtrain.analysis.sam_modes import arm_labels, sam_modes_markdown, sam_modes_table


def trial(tid, sam, mode, form, rho, seed, val, test, minority, passes, seconds):
    return {"trial_id": tid, "status": "TERMINATED", "config/sam": sam,
            "config/sam_a_mode": mode, "config/sam_a_form": form, "config/sam_rho": rho,
            "config/seed": seed, "config/train_ratio": 0.05, "config/batch_size": 10,
            "train_counts": [30, 10, 1], "val_bal_acc": val, "test_acc": test,
            "test_minority_acc": minority, "passes": passes, "seconds": seconds}


# 41 train samples, batch 10: 4 steps an epoch (the trailing batch of one is dropped).
ROWS = [
    trial("e0", "none", "weighted", "inverse", 0.05, 0, 0.60, 0.70, 0.20, 4, 1.0),
    trial("e1", "none", "weighted", "inverse", 0.05, 1, 0.62, 0.74, 0.30, 4, 2.0),
    # per_class/inverse at rho 0.01 wins on validation, at 0.02 it would on test
    trial("p0", "sam_a", "per_class", "inverse", 0.01, 0, 0.70, 0.72, 0.40, 64, 8.0),
    trial("p1", "sam_a", "per_class", "inverse", 0.01, 1, 0.72, 0.80, 0.50, 56, 16.0),
    trial("q0", "sam_a", "per_class", "inverse", 0.02, 0, 0.50, 0.90, 0.90, 64, 8.0),
    trial("q1", "sam_a", "per_class", "inverse", 0.02, 1, 0.52, 0.90, 0.90, 64, 16.0),
    trial("s0", "sam", "per_class", "paper_eq", 0.05, 0, 0.55, 0.69, 0.10, 8, 2.0),
    trial("s1", "sam", "per_class", "paper_eq", 0.05, 1, 0.57, 0.71, 0.20, 8, 4.0),
]


def tables():
    rows = pd.DataFrame(ROWS)
    history = pd.DataFrame([{"trial_id": r["trial_id"], "epoch": e,
                             "fwd_bwd_passes": r["passes"], "epoch_time_s": r["seconds"]}
                            for r in ROWS for e in (1, 2)])
    return rows.drop(columns=["passes", "seconds"]), history


def test_arms_come_from_the_config():
    results, _ = tables()
    assert list(arm_labels(results)) == ["erm", "erm"] + ["per_class/inverse"] * 4 + ["sam"] * 2


def test_each_arm_at_its_best_rho_by_validation_paired_with_erm_by_seed():
    best, sweep = sam_modes_table(*tables(), metrics=["test_acc", "test_minority_acc"])
    assert list(best["arm"]) == ["erm", "sam", "per_class/inverse"]
    row = best.set_index("arm").loc["per_class/inverse"]
    assert row["rho"] == 0.01  # not 0.02, whose test accuracy is higher
    assert row["test_acc"] == pytest.approx(0.76) and row["n"] == 2
    # paired by seed: (0.72 - 0.70 + 0.80 - 0.74) / 2, differences 0.02 and 0.06
    assert row["test_acc_diff"] == pytest.approx(0.04) and row["test_acc_pairs"] == 2
    assert row["test_minority_acc_diff"] == pytest.approx(0.2)
    assert math.isnan(row["test_minority_acc_p"])  # both differences 0.2: no spread
    # passes a step: 64 / 4 and 56 / 4; epoch time over ERM's at the same seed: 8 and 8
    assert row["passes_per_step"] == pytest.approx(15.0)
    assert row["time_vs_erm"] == pytest.approx(8.0) and row["time_vs_erm_se"] == 0.0
    erm = best.set_index("arm").loc["erm"]
    assert math.isnan(erm["rho"]) and erm["passes_per_step"] == 1.0
    assert erm["test_acc_pairs"] == 0
    assert best.set_index("arm").loc["sam", "passes_per_step"] == 2.0
    assert len(sweep) == 4 and set(sweep["arm"]) == {"erm", "sam", "per_class/inverse"}


def test_the_headline_table_and_the_registered_analysis(tmp_path):
    results, history = tables()
    best, _ = sam_modes_table(results, history, metrics=["test_acc", "test_minority_acc"])
    md = sam_modes_markdown(best)
    # differences 0.02, 0.06: t = 0.04 / 0.02 = 2 on 1 degree of freedom, p = 1 - 2 atan(2) / pi
    assert "| per_class | inverse | 0.01 | 2 |" in md and "+0.040 (p = 0.3)" in md
    assert 1 - 2 * math.atan(2) / math.pi == pytest.approx(
        best.set_index("arm").loc["per_class/inverse", "test_acc_p"])
    assert "15.00 ± 1.00" in md  # passes a step: 16 and 14
    files = ANALYSES["sam_modes"](results, history, tmp_path,
                                  metrics=["test_acc", "test_minority_acc"])
    assert {f.name for f in files} == {"sam_modes.png", "sam_modes.md", "sam_modes.parquet",
                                       "sam_modes_sweep.md", "sam_modes_sweep.parquet"}
    assert (tmp_path / "sam_modes.png").stat().st_size > 1000


def test_the_loop_takes_the_steps_the_analyses_count():
    """steps_per_epoch is the loop's: an ERM epoch's fwd_bwd_passes, here with a trailing
    batch of one sample (dropped) and of several (kept)."""
    from imbtrain import TrainConfig, train

    base = TrainConfig(dataset="digits", model="mlp", epochs=1, train_ratio=0.05)
    n = sum(train(base.replace(batch_size=2), log=lambda s: None).train_counts)
    for bs in (n - 1, n // 4):
        result = train(base.replace(batch_size=bs), log=lambda s: None)
        assert result.history[0]["fwd_bwd_passes"] == steps_per_epoch(n, bs)
    assert steps_per_epoch(n, n - 1) == 1 and steps_per_epoch(n, n // 4) == 4 + (n % 4 > 1)
