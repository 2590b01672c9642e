"""The train/test ratio study (paper A.8.1, Fig. 11-15).

Claim under test: when the test data are imbalanced too, training on data with the same
imbalance beats training on balanced data (Fig. 11), the best train ratio lies close to the
test ratio (Fig. 12, 13), and the more training data, the closer (Fig. 15).

Setup: search_spaces/test_ratio.yaml, train ratios x test ratios x two training-set sizes x
seeds; by default on embedded synthetic vectors (10 Gaussian classes in 8 dimensions) with an
MLP, in minutes; `--full`: CIFAR-100 with a WRN-28-10 on a GPU cluster:

    imbtrain study test_ratio                 # runs/test_ratio/
    imbtrain study test_ratio --smoke         # seconds
    imbtrain study test_ratio --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.alignment): test accuracy (on the imbalanced test set) per train
and test ratio, mean ± standard error over seeds; per test ratio the best train ratio, and
the misalignment mean_t |best(t) - t| per training-set size: alignment.png / .md / .parquet
and alignment_grid.md / .parquet, logged to the MLflow parent run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbtrain.analysis.alignment import alignment_table, best_train_ratios, misalignment
from imbtrain.analysis.common import markdown_table
from imbtrain.analysis.common import varying as varying_keys
from imbtrain.study.findings import agreement
from imbtrain.study.script import Outcome, StudyScript

METRIC, SIZE = "test_acc", "synthetic_samples"


def analyse(result, drawn) -> Outcome:
    """Fig. 11-15: the best train ratio per test ratio and the misalignment (the space's
    alignment analysis, by training-set size when it declares that group and it varies)."""
    group = drawn.of("alignment").get("group")
    group = group if group and varying_keys(result.results, [group]) else None
    table = alignment_table(result.results, METRIC, group)
    best = best_train_ratios(table)
    shown = markdown_table(best, 4, caption="Best train ratio (highest mean test accuracy "
                                            "over seeds) per test ratio.")
    return Outcome(shown, findings(table, best, group))


def findings(table: pd.DataFrame, best: pd.DataFrame, group: str | None) -> str:
    """One paragraph: misalignment (per size), and aligned vs balanced training at the most
    imbalanced test ratio."""
    mis = misalignment(best)
    t = table["test_ratio"].min()
    top = table[table[group] == table[group].max()] if group else table
    at_t = top[top["test_ratio"] == t].set_index("train_ratio")[METRIC]
    aligned, balanced = at_t.get(t, np.nan), at_t.get(top["train_ratio"].max(), np.nan)
    if group:
        sizes = ", ".join(f"{v:.3f} at {group} = {k}" for k, v in mis.items())
        text = f"Misalignment mean_t |best(t) - t|: {sizes}."
        more_data = " " + agreement(bool(mis.iloc[-1] < mis.iloc[0]),
                                    "the more training data, the closer the alignment")
    else:
        more_data, text = "", f"Misalignment mean_t |best(t) - t|: {mis:.3f}."
    always_balanced = float((1.0 - best["test_ratio"]).abs().mean())
    return (f"{text} Training always balanced would be off by {always_balanced:.3f}. At "
            f"test ratio {t:g}, training at the same ratio gives test accuracy {aligned:.3f} "
            f"against {balanced:.3f} when training balanced. "
            + agreement(aligned > balanced and float(np.mean(mis)) < always_balanced,
                        "for imbalanced test data, training with the same imbalance beats "
                        "balanced training, and the best train ratio follows the test ratio")
            + more_data)


STUDY = StudyScript("test_ratio", __doc__, analyse)
