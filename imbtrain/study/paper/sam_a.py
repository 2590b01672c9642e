"""The SAM-A study (paper Section 3.2, A.6; docs/methods.md, "4. SAM, ASAM and SAM-A").

Claim under test: SAM with a larger ascent radius for minority classes (SAM-A) improves
minority-class accuracy over ERM and over plain SAM. The paper's text and its equation (5)
contradict each other, so imbtrain implements two forms of the per-class radius, `inverse`
(rho_c = rho (K p_c)^-1/2: larger for minority classes, as the text says) and `paper_eq`
(rho_c = rho / (1 - p_c): the printed equation (5), larger for majority classes); this
study says which wins.

Setup: search_spaces/sam_a.yaml, ERM, SAM, SAM-A inverse and SAM-A paper_eq (variants) x rho
x seeds at one imbalanced train ratio; by default on the embedded digits with a small CNN in
minutes; `--full`: CIFAR-100 at r = 0.01 with Table 1's routine on a GPU cluster:

    imbtrain study sam_a                      # runs/sam_a/
    imbtrain study sam_a --smoke              # seconds
    imbtrain study sam_a --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.sweep): per variant and rho, test, minority and majority
accuracy, mean ± standard error over seeds, and the paired difference from ERM (same seed)
with its t-test p-value: sweep.png / .md / .parquet, logged to the MLflow parent run.
"""

from __future__ import annotations

from imbtrain.study.findings import forms_finding
from imbtrain.study.script import StudyScript, sweep_study

FORMS = ("sam_a_inverse", "sam_a_paper_eq")


def findings(table) -> str:
    """One paragraph: each variant at its best rho against ERM, and which SAM-A form wins."""
    return forms_finding(table, "rho", FORMS, "sam_a_", rival="sam", metric="test_minority_acc",
                         claim="SAM-A improves minority-class accuracy over ERM and over SAM")


STUDY = StudyScript("sam_a", __doc__, sweep_study(findings))
