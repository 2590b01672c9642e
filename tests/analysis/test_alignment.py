"""Train/test ratio alignment and misalignment (A.8.1) on a hand-made study."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from imbtrain.analysis.alignment import (
    alignment_analysis,
    alignment_table,
    best_train_ratios,
    misalignment,
)

# test_acc per (train ratio, test ratio) for seeds 0 and 1; the best train ratio by the
# MEAN over seeds is starred.
#                  test 1         test 0.1          test 0.01
#   train 1     *0.9, 0.9        0.6, 0.6          0.3, 0.3
#   train 0.1    0.8, 0.8        0.9, 0.5 (0.7)   *0.8, 0.8
#   train 0.01   0.5, 0.5       *0.75, 0.75        0.7, 0.7
# (seed 0 alone would pick 0.1 for test 0.1; the mean picks 0.01)
ACC = {(1.0, 1.0): (0.9, 0.9), (1.0, 0.1): (0.6, 0.6), (1.0, 0.01): (0.3, 0.3),
       (0.1, 1.0): (0.8, 0.8), (0.1, 0.1): (0.9, 0.5), (0.1, 0.01): (0.8, 0.8),
       (0.01, 1.0): (0.5, 0.5), (0.01, 0.1): (0.75, 0.75), (0.01, 0.01): (0.7, 0.7)}


def _results(acc=ACC, size=None) -> pd.DataFrame:
    rows = [{"config/train_ratio": r, "config/test_ratio": t, "config/seed": s,
             "test_acc": a, "status": "TERMINATED", **({"config/synthetic_samples": size}
                                                        if size else {})}
            for (r, t), accs in acc.items() for s, a in enumerate(accs)]
    return pd.DataFrame(rows)


def test_best_train_ratio_per_test_ratio():
    best = best_train_ratios(alignment_table(_results()))
    assert best[["test_ratio", "best_train_ratio"]].values.tolist() == [
        [0.01, 0.1], [0.1, 0.01], [1.0, 1.0]]
    assert best["test_acc"].tolist() == pytest.approx([0.8, 0.75, 0.9])


def test_misalignment_by_hand():
    best = best_train_ratios(alignment_table(_results()))
    # |0.1 - 0.01| = 0.09, |0.01 - 0.1| = 0.09, |1 - 1| = 0 -> mean 0.06
    assert misalignment(best) == pytest.approx(0.06)
    # decades apart: 1, 1, 0 -> 2/3
    assert misalignment(best, "log") == pytest.approx(2 / 3)


def test_ties_go_to_the_train_ratio_closest_to_the_test_ratio():
    acc = {(1.0, 0.1): (0.8,), (0.1, 0.1): (0.8,), (0.01, 0.1): (0.8,)}
    best = best_train_ratios(alignment_table(_results(acc)))
    assert best["best_train_ratio"].tolist() == [0.1]
    assert misalignment(best) == 0.0


def test_misalignment_per_training_set_size():
    aligned = {(1.0, 1.0): (0.9,), (0.1, 1.0): (0.8,), (1.0, 0.1): (0.7,), (0.1, 0.1): (0.8,)}
    crossed = {(1.0, 1.0): (0.7,), (0.1, 1.0): (0.8,), (1.0, 0.1): (0.9,), (0.1, 0.1): (0.8,)}
    results = pd.concat([_results(aligned, 1000), _results(crossed, 100)])
    best = best_train_ratios(alignment_table(results, group="synthetic_samples"))
    mis = misalignment(best)
    # size 1000: both aligned -> 0; size 100: |0.1 - 1| = 0.9 and |1 - 0.1| = 0.9 -> 0.9
    assert mis.to_dict() == pytest.approx({100: 0.9, 1000: 0.0})


def test_writes_figure_and_tables(tmp_path):
    paths = alignment_analysis(_results(), pd.DataFrame(), tmp_path)
    assert [p.name for p in paths] == ["alignment.png", "alignment.parquet", "alignment.md",
                                       "alignment_grid.parquet", "alignment_grid.md"]
    table = pd.read_parquet(tmp_path / "alignment.parquet")
    assert table["misalignment"].tolist() == pytest.approx([0.06] * 3)
    assert "Misalignment, mean |best - test|: 0.0600." in (tmp_path / "alignment.md").read_text()
    grid = pd.read_parquet(tmp_path / "alignment_grid.parquet")
    cell = grid[(grid.train_ratio == 0.1) & (grid.test_ratio == 0.1)].iloc[0]
    assert cell[["test_acc", "test_acc_se"]].tolist() == pytest.approx([0.7, 0.2])
    assert not math.isnan(cell["test_acc_se"])


def test_grouped_figure(tmp_path):
    results = pd.concat([_results(size=1000), _results(size=100)])
    paths = alignment_analysis(results, pd.DataFrame(), tmp_path, group="synthetic_samples")
    assert paths[0].is_file()
    assert pd.read_parquet(paths[1])["misalignment"].tolist() == pytest.approx([0.06] * 6)
