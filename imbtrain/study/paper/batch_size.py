"""The batch-size study (paper Section 3.1, Fig. 1; A.1, Fig. 5).

Claim under test: batch size matters much more when the training set is imbalanced, and small
batches are best there, while the curve of balanced data stays flat.

Setup: search_spaces/batch_size.yaml, batch sizes x train ratios x seeds; by default on the
embedded mnist5k with a small CNN, in minutes on a laptop (`make study`); `--full` runs the
paper's setting (WRN-28-10 on CIFAR with the tuned routine of Table 1) on a GPU cluster:

    imbtrain study batch_size                 # runs/batch_size/
    imbtrain study batch_size --smoke         # seconds: runs/batch_size_smoke/
    imbtrain study batch_size --full --data-dir /data/cifar10 --address auto \\
        --storage /shared/runs --mlflow-uri http://head:5000

Analysis (the space's `analyses`): the percent change of test accuracy over batch size 128 at
the same train ratio and seed, mean ± standard error over seeds
(imbtrain.analysis.sensitivity), written as sensitivity.png, sensitivity.md and
sensitivity.parquet next to the study's tables and logged to the study's MLflow parent run.
Ends by printing what it found and the best configuration at each train ratio.
"""

from __future__ import annotations

import math

import pandas as pd

from imbtrain.study.script import StudyScript, sensitivity_study

# ================================================================ analysis


def findings(table: pd.DataFrame, knob: str = "batch_size", baseline=128) -> str:
    """One paragraph: how flat the balanced curve is, and what helps most under imbalance
    (the `sensitivity_curve` of `knob` over `baseline`, the space's sensitivity analysis)."""
    ratios = sorted(table["train_ratio"].unique(), reverse=True)
    others = table[table[knob] != baseline]
    if others.empty:
        return f"Only the baseline {knob} {baseline} finished; nothing to compare."
    parts = []
    for r in ratios:
        rows = others[others["train_ratio"] == r]
        top = rows.loc[rows["pct_change"].idxmax()]
        spread = rows["pct_change"].abs().max()
        se = "" if math.isnan(top["pct_change_se"]) else f" ± {top['pct_change_se']:.1f}"
        parts.append(f"at r = {r:g} the largest change is {spread:.1f}%, and the best "
                     f"{knob} is {int(top[knob])} ({top['pct_change']:+.1f}%{se} over "
                     f"{baseline})")
    flat = others[others["train_ratio"] == ratios[0]]["pct_change"].abs().max()
    steep = others[others["train_ratio"] == ratios[-1]]["pct_change"].abs().max()
    verdict = ("batch size matters more under imbalance, as the paper reports"
               if steep > flat else "this run does not show batch size mattering more "
               "under imbalance")
    n = int(table["n"].max())
    return (f"Test accuracy relative to {knob} {baseline}, over {n} seed(s): "
            + "; ".join(parts) + f". So {verdict} (largest change {steep:.1f}% at "
            f"r = {ratios[-1]:g} vs {flat:.1f}% at r = {ratios[0]:g}).")


# ================================================================ main

# Fig. 1: the space's sensitivity analysis (PNG, markdown and parquet in the study folder,
# recorded in analyses.yaml so that `imbtrain analyze <study>` draws it again).
STUDY = StudyScript("batch_size", __doc__, sensitivity_study(findings), findings_file=False)
