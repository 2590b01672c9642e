"""The augmentation study (paper Section 3.1, Fig. 2; A.2, Fig. 6, 7).

Claim under test: augmentation matters far more under imbalance, above all for the minority
classes, and which policy is best depends on the imbalance (TrivialAugment wins on balanced
data, AutoAugment on highly imbalanced data).

Setup: search_spaces/augmentation.yaml, eight policies (none, flip_crop, AutoAugment,
TrivialAugment, AugMix, RandAugment, CutMix, Mixup; each a variant) x train ratios x seeds;
by default on the embedded digits with a small CNN, in minutes on a laptop; `--full` runs the
paper's scale (CIFAR-100, WRN-28-10, the rest of Table 1's routine) on a GPU cluster:

    imbtrain study augmentation               # runs/augmentation/
    imbtrain study augmentation --smoke       # seconds
    imbtrain study augmentation --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.variance): per train ratio, seed and class group (minority /
majority: the 20% of classes with the fewest / most train samples), the percent improvement
of each policy's test accuracy over no augmentation (paired by seed), and its variance across
policies, mean ± standard error over seeds: augmentation_variance.png / .md / .parquet and
augmentation_variance_improvement.md / .parquet, logged to the MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.common import markdown_table, mean_se_frame
from imbtrain.analysis.variance import augmentation_variance
from imbtrain.study.findings import agreement
from imbtrain.study.script import Outcome, StudyScript


def analyse(result, drawn) -> Outcome:
    """Fig. 2, 6, 7: improvement per policy and group, variance across policies (the space's
    variance analysis: the policy is the variant, over no augmentation)."""
    opts = drawn.of("variance")
    imp, var = augmentation_variance(result.results, opts.get("knob", "variant"),
                                     opts.get("baseline", "none"))
    table = markdown_table(mean_se_frame(var, ["train_ratio", "group"], ["variance"]),
                           caption="Variance across policies of the % improvement over no "
                                   "augmentation (mean ± s.e. over seeds).")
    return Outcome(table, findings(imp, var))


def _at(table: pd.DataFrame, ratio: float, group: str) -> pd.DataFrame:
    return table[(table["train_ratio"] == ratio) & (table["group"] == group)]


def findings(imp: pd.DataFrame, var: pd.DataFrame) -> str:
    """One paragraph: the variance across policies on minority classes under imbalance vs on
    balanced data, TrivialAugment's minority change (Fig. 2 left), and the best policy at
    each end."""
    hi, lo = imp["train_ratio"].max(), imp["train_ratio"].min()
    v_bal = float(_at(var, hi, "all")["variance"].iloc[0])
    v_min = float(_at(var, lo, "minority")["variance"].iloc[0])
    best = {r: _at(imp, r, "all").sort_values("pct_change").iloc[-1] for r in (hi, lo)}
    policy = "trivialaugment" if (imp["policy"] == "trivialaugment").any() else best[lo]["policy"]
    minority = {r: _at(imp, r, "minority").set_index("policy")["pct_change"].get(policy)
                for r in (hi, lo)}
    return (f"Across {imp['policy'].nunique()} policies, the variance of the percent "
            f"improvement over no augmentation is {v_min:.1f} on the minority classes at "
            f"r = {lo:g} against {v_bal:.1f} on all classes at r = {hi:g}; {policy} changes "
            f"minority accuracy by {minority[lo]:+.1f}% at r = {lo:g} and "
            f"{minority[hi]:+.1f}% at r = {hi:g}. Best policy for test accuracy: "
            f"{best[hi]['policy']} at r = {hi:g} ({best[hi]['pct_change']:+.1f}%), "
            f"{best[lo]['policy']} at r = {lo:g} ({best[lo]['pct_change']:+.1f}%). "
            + agreement(v_min > v_bal and abs(minority[lo]) > abs(minority[hi]),
                        "augmentation matters far more under imbalance, above all for "
                        "minority classes") + " "
            + agreement(best[lo]["pct_change"] > 0, "augmentation improves accuracy under "
                                                    "imbalance"))


STUDY = StudyScript("augmentation", __doc__, analyse)
