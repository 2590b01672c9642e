"""The Joint-SSL study (paper Section 3.2, A.5).

Claim under test: adding a self-supervised loss (VICReg, on two views of each sample, blind to
the labels and so to the imbalance) to the supervised loss improves the features and the
accuracy on imbalanced data.

Setup: search_spaces/joint_ssl.yaml, no SSL and VICReg (variants) x lambda (L = L_ssl +
lambda L_supervised) x a balanced and an imbalanced train ratio x seeds; by default on the
embedded digits with a small CNN in minutes; `--full`: CIFAR-100 on a GPU cluster:

    imbtrain study joint_ssl                  # runs/joint_ssl/
    imbtrain study joint_ssl --smoke          # seconds
    imbtrain study joint_ssl --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.sweep): per train ratio, variant and lambda, test, minority and
majority accuracy, mean ± standard error over seeds, and the paired difference from no SSL
with its t-test p-value: sweep.png / .md / .parquet, logged to the MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.study.findings import agreement, best_against_reference, best_rows
from imbtrain.study.script import StudyScript, sweep_study

SSL = "vicreg"  # the variant with the SSL loss (its sweep's reference: the space's)


def findings(table: pd.DataFrame) -> str:
    """One paragraph: the best lambda's gain over no SSL at each train ratio."""
    best = best_rows(table)
    keys = sorted((k for k in best.index if k[-1] == SSL), reverse=True)
    gain = {r: best.loc[(r, g), "test_acc_diff"] for r, g in keys}
    lo, hi = min(gain), max(gain)
    return (f"VICReg against no SSL loss (paired by seed), at the best lambda, by train ratio "
            f"{', '.join(f'{r:g}' for r, _ in keys)}: "
            f"{best_against_reference(table, 'lambda', keys)}. "
            + agreement(gain[lo] > 0 and gain[lo] >= gain[hi],
                        "the SSL loss improves accuracy under imbalance",
                        best.loc[(lo, SSL), "test_acc_p"]))


STUDY = StudyScript("joint_ssl", __doc__, sweep_study(findings))
