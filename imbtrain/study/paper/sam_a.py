"""The SAM-A study (paper Section 3.2, A.6; docs/methods.md, "4. SAM, ASAM and SAM-A").

Claim under test: SAM with a larger ascent radius for minority classes (SAM-A) improves
minority-class accuracy over ERM and over plain SAM. The paper's text and its equation (5)
contradict each other, so imbtrain implements two forms of the per-class radius, `inverse`
(rho_c = rho (K p_c)^-1/2: larger for minority classes, as the text says) and `paper_eq`
(rho_c = rho / (1 - p_c): the printed equation (5), larger for majority classes), and three
modes of making a step from those radii (`sam_a_mode`: weighted, per_class, grouped); this
study compares every mode x form, each at its best rho, and what a step of each costs.

Setup: search_spaces/sam_a.yaml, ERM, SAM and SAM-A mode x form, each mode over its own rho
grid (variants), x seeds at one imbalanced train ratio; by default on the embedded digits with
a small CNN in minutes; `--full`: CIFAR-100 at r = 0.01 with Table 1's routine on a GPU
cluster (without per_class):

    imbtrain study sam_a                      # runs/sam_a/
    imbtrain study sam_a --smoke              # seconds
    imbtrain study sam_a --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (the space's `analyses`: sam_modes, imbtrain.analysis.sam_modes): per arm (ERM, SAM,
mode/form) its best rho by mean val_bal_acc; there, test, minority accuracy and the minority
margin (trial metric `minority_input_margin`: mean first-order distance of the minority
training samples to the decision boundary, pixel units; `_test`: of the minority test
samples), mean ± standard error over seeds and the paired difference from ERM (same seed)
with its t-test p-value; and the cost of a step (forward/backward passes a step, epoch time
over ERM's): sam_modes.png / .md / .parquet (the headline) and sam_modes_sweep.md / .parquet
(every arm and rho), logged to the MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.sam_modes import FORMS, MODES, REFERENCE, SELECT
from imbtrain.study.findings import agreement, diff_text
from imbtrain.study.results import StudyResult
from imbtrain.study.script import Drawn, Outcome, StudyScript

MARGIN = "minority_input_margin"
CLAIM = "SAM-A improves minority-class accuracy over ERM and over SAM"


def _arm_text(row: pd.Series, margin: bool) -> str:
    rho = f" at rho = {row['rho']:g}" if row["rho"] == row["rho"] else ""
    text = (f"{row['arm']}{rho}: test accuracy {diff_text(row, 'test_acc')}, minority "
            f"accuracy {diff_text(row, 'test_minority_acc')}")
    if margin:
        text += f", minority margin {diff_text(row, MARGIN, 4)}"
    return text + f", {row['passes_per_step']:.1f} passes a step"


def findings(best: pd.DataFrame) -> str:
    """One paragraph: every arm at its best rho against ERM, the better form of each mode, the
    best SAM-A arm by validation, its cost, and whether it bears out the claim."""
    if best.attrs.get("by"):  # several train ratios: the most imbalanced one
        key = best.attrs["by"][0]
        best = best[best[key] == best[key].min()]
    best = best.set_index("arm", drop=False)
    margin = MARGIN in best.columns
    arms = [a for a in best.index if a != REFERENCE]
    if not arms:
        return "Only ERM finished; nothing to compare."
    erm = best.loc[REFERENCE] if REFERENCE in best.index else None
    head = (f"Against ERM (paired by seed; ERM test accuracy {erm['test_acc']:.3f}, minority "
            f"{erm['test_minority_acc']:.3f}), each arm at its best rho by mean {SELECT}: "
            if erm is not None else "Each arm at its best rho: ")
    text = head + "; ".join(_arm_text(best.loc[a], margin) for a in arms) + "."
    forms = []
    for mode in MODES:
        pair = [f"{mode}/{f}" for f in FORMS if f"{mode}/{f}" in best.index]
        if len(pair) == 2:
            win = max(pair, key=lambda a: best.loc[a, SELECT])
            forms.append(f"{mode}: {win.split('/')[1]} ({best.loc[win, 'test_acc']:.3f} vs "
                         f"{best.loc[next(p for p in pair if p != win), 'test_acc']:.3f})")
    if forms:
        text += (f" The better radius form of each mode by {SELECT}, with the test accuracy "
                 "of both: " + "; ".join(forms) + ".")
    sam_a = [a for a in arms if "/" in a]
    if sam_a:
        top = max(sam_a, key=lambda a: best.loc[a, SELECT])
        row = best.loc[top]
        over_sam = "sam" not in best.index or (
            row["test_minority_acc"] >= best.loc["sam", "test_minority_acc"])
        text += (f" The best SAM-A arm by {SELECT} is {top} (rho = {row['rho']:g}, "
                 f"{row['passes_per_step']:.1f} passes a step, epoch time "
                 f"{row['time_vs_erm']:.1f}x ERM's). ")
        text += agreement(row["test_minority_acc_diff"] > 0 and over_sam, CLAIM,
                          row["test_minority_acc_p"])
    return text


def analyse(result: StudyResult, drawn: Drawn) -> Outcome:
    """The modes x forms table (each arm at its best rho: the space's sam_modes analysis),
    its Markdown table and the paragraph."""
    from imbtrain.analysis.sam_modes import METRICS, sam_modes_table

    opts = drawn.of("sam_modes")
    best, _ = sam_modes_table(result.results, result.history,
                              list(opts.get("metrics", METRICS)), opts.get("select", SELECT))
    return Outcome(drawn.markdown("sam_modes"), findings(best))


STUDY = StudyScript("sam_a", __doc__, analyse)
