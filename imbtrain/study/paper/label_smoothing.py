"""The label-smoothing study (paper Section 3.2, A.7; docs/methods.md, "5. Label smoothing").

Claim under test: label smoothing helps under imbalance, especially with more smoothing on
minority-class examples (class-conditional smoothing). The paper's text and its equation (6)
contradict each other, so imbtrain implements two forms, `inverse` (eps_c = eps
(K p_c)^-1/2: more smoothing on minority classes, as the text says) and `paper_eq` (eps_c =
eps / (1 - p_c): the printed equation (6), more on majority classes); this study says which
wins.

Setup: search_spaces/label_smoothing.yaml, no smoothing, uniform, class inverse and class
paper_eq (variants) x eps x seeds at one imbalanced train ratio; by default on the embedded
digits with a small CNN in minutes; `--full`: CIFAR-100 at r = 0.01 on a GPU cluster:

    imbtrain study label_smoothing            # runs/label_smoothing/
    imbtrain study label_smoothing --smoke    # seconds
    imbtrain study label_smoothing --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.sweep): per variant and eps, test, minority and majority
accuracy, mean ± standard error over seeds, and the paired difference from no smoothing with
its t-test p-value: sweep.png / .md / .parquet, logged to the MLflow parent run.
"""

from __future__ import annotations

from imbtrain.study.findings import forms_finding
from imbtrain.study.script import StudyScript, sweep_study

FORMS = ("class_inverse", "class_paper_eq")


def findings(table) -> str:
    """One paragraph: each variant at its best eps against none, the winning class form."""
    return forms_finding(table, "eps", FORMS, "class_", rival="uniform", metric="test_acc",
                         claim="smoothing helps under imbalance, class-conditional smoothing "
                               "most")


STUDY = StudyScript("label_smoothing", __doc__, sweep_study(findings))
