"""The neural-collapse study (paper Section 5, Table 4).

Claim under test: naive training under imbalance overfits the minority training samples,
whose penultimate features collapse onto their class means (low CDNV, high nearest-class-
centre accuracy on minority training samples), and collapse goes with low test accuracy:
methods that resist it do better.

Setup: search_spaces/neural_collapse.yaml, ERM, reweighting, resampling, LDAM-DRW and
Joint-SSL + SAM-A (variants) x seeds at an imbalanced train ratio; every trial reports the
collapse measures of its final model (imbtrain.metrics.neural_collapse). By default on the
embedded digits with a small CNN in minutes; `--full`: CIFAR-10 at r = 0.01 (Table 4's
setting) on a GPU cluster:

    imbtrain study neural_collapse            # runs/neural_collapse/
    imbtrain study neural_collapse --smoke    # seconds
    imbtrain study neural_collapse --full --dataset cifar10 --data-dir /data/cifar10 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.collapse): per method, CDNV (all class pairs and pairs with a
minority class), NCC accuracy on minority training samples and on the test set, and test
accuracy, mean ± standard error over seeds, with the Pearson r of each measure with test
accuracy across methods: collapse.png / .md / .parquet, logged to the MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.collapse import MEASURES, collapse_table
from imbtrain.analysis.common import markdown_table, mean_se_frame
from imbtrain.study.findings import agreement
from imbtrain.study.script import Outcome, StudyScript


def analyse(result, drawn) -> Outcome:
    """Table 4: collapse measures per method, against test accuracy (the space's collapse
    analysis)."""
    table = collapse_table(result.results,
                           method_keys=drawn.of("collapse").get("method_keys", "variant"))
    shown = markdown_table(mean_se_frame(table, ["method"], [*MEASURES, "test_acc"]), 3,
                           caption="Mean ± standard error over seeds.")
    return Outcome(shown, findings(table))


def findings(table: pd.DataFrame) -> str:
    """One paragraph: the correlations with test accuracy, and the most and least collapsed
    methods."""
    corr = table.attrs["correlation"]
    low, high = (table.loc[table["cdnv"].idxmin()], table.loc[table["cdnv"].idxmax()])
    best = table.loc[table["test_acc"].idxmax()]
    return (f"Across {len(table)} methods, test accuracy correlates with CDNV at r = "
            f"{corr['cdnv']:.2f} and with minority-train NCC accuracy at r = "
            f"{corr['ncc_acc_minority_train']:.2f}. Most collapsed (lowest CDNV): "
            f"{low['method']} ({low['cdnv']:.3f}, test accuracy {low['test_acc']:.3f}); "
            f"least: {high['method']} ({high['cdnv']:.3f}, {high['test_acc']:.3f}); best "
            f"test accuracy: {best['method']} ({best['test_acc']:.3f}). "
            + agreement(corr["cdnv"] > 0 and corr["ncc_acc_minority_train"] < 0,
                        "more collapse (lower CDNV, higher minority NCC accuracy) goes with "
                        "lower test accuracy"))


STUDY = StudyScript("neural_collapse", __doc__, analyse)
