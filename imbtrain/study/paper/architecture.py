"""The architecture study (paper Section 3.1, Fig. 3; A.3, Fig. 8, 9).

Claim under test: architectures that do well on balanced data need not do well on imbalanced
data (Pearson r 0.14 across architectures on CIFAR-100), and larger networks, which keep
improving on balanced data, overfit the minority classes under imbalance (minority accuracy
peaks at a middle size).

Setup: search_spaces/architecture.yaml, eight architectures from a 5k-parameter MLP to a
2M-parameter MLP (CNN, ResNet-8/20/32, WRN-16-2 between; each a variant) x a balanced and an
imbalanced train ratio x seeds; every trial records its parameter count
(`trial_metrics: [param_count]`). By default on the embedded digits in minutes; `--full`:
CIFAR-100 at r = 0.001 with ResNets, WideResNets and timm architectures on a GPU cluster:

    imbtrain study architecture               # runs/architecture/
    imbtrain study architecture --smoke       # seconds
    imbtrain study architecture --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.architecture): per architecture and train ratio, test accuracy
mean ± standard error over seeds; across architectures, the Pearson r of the balanced against
the imbalanced accuracy (Fig. 3 right) and minority-class accuracy against parameter count
(Fig. 3 left): architecture.png / .md / .parquet and architecture_correlation.md / .parquet.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.architecture import (
    architecture_correlation,
    architecture_markdown,
    architecture_table,
)
from imbtrain.study.findings import agreement
from imbtrain.study.script import Outcome, StudyScript


def analyse(result, drawn) -> Outcome:
    """Fig. 3: balanced vs imbalanced accuracy (Pearson r) and accuracy vs size (the
    space's architecture analysis)."""
    opts = drawn.of("architecture")
    table = architecture_table(result.results, opts.get("metric", "test_acc"))
    corr = architecture_correlation(table)
    size_metric = opts.get("size_metric", "test_minority_acc")
    sizes = architecture_table(result.results, size_metric)
    return Outcome(architecture_markdown(table, corr), findings(corr, sizes, size_metric))


def _peak(sizes: pd.DataFrame, ratio: float, size_metric: str) -> pd.Series:
    part = sizes[sizes["train_ratio"] == ratio].sort_values("param_count")
    return part.loc[part[size_metric].idxmax()]


def findings(corr: dict, sizes: pd.DataFrame, size_metric: str = "test_minority_acc") -> str:
    """One paragraph: the Pearson r, and where minority accuracy peaks with size."""
    bal, imb = corr["balanced_ratio"], corr["imbalanced_ratio"]
    largest = sizes["param_count"].max()
    peak_imb, peak_bal = _peak(sizes, imb, size_metric), _peak(sizes, bal, size_metric)
    at_largest = sizes[(sizes["train_ratio"] == imb) & (sizes["param_count"] == largest)]
    r = corr["pearson_r"]
    overfit = peak_imb["param_count"] < largest
    return (f"Across {corr['n_architectures']} architectures, test accuracy at r = {bal:g} "
            f"and at r = {imb:g} correlate with Pearson r = {r:.2f} (p = "
            f"{corr['p_value']:.2g}; the paper: 0.14). Minority-class accuracy at r = {imb:g} "
            f"peaks at {peak_imb['architecture']} ({int(peak_imb['param_count']):,} "
            f"parameters, {peak_imb[size_metric]:.3f}) and is "
            f"{float(at_largest[size_metric].iloc[0]):.3f} for the largest "
            f"({int(largest):,}); at r = {bal:g} it peaks at {peak_bal['architecture']}. "
            + agreement(abs(r) < 0.5 and overfit, "balanced and imbalanced accuracies are "
                        "weakly correlated across architectures, and the largest networks "
                        "overfit under imbalance"))


STUDY = StudyScript("architecture", __doc__, analyse)
