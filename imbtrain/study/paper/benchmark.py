"""The benchmark (paper Section 4, Tables 1, 2, 5).

Claim under test: on a well-tuned routine, the specialised methods for imbalance gain little
over ERM (reweighting and resampling lose), the paper's SAM-A and Joint-SSL match or beat
them, and combining them with M2m (Joint-SSL + SAM-A + M2m) is the best, lifting minority
(few-shot) accuracy while keeping majority accuracy.

Setup: search_spaces/benchmark.yaml, fourteen methods (ERM, reweighting, resampling, SMOTE,
DRW, focal, LDAM-DRW, MiSLAS, M2m, SAM-A, Joint-SSL and the paper's combinations; each a
variant) x seeds on one routine; by default on the embedded digits at r = 0.05 with a small
CNN; `--full`: CIFAR-100 at r = 0.01 and 0.02 with a WRN-28-10 and Table 1's routine:

    imbtrain study benchmark                  # runs/benchmark/
    imbtrain study benchmark --smoke          # seconds
    imbtrain study benchmark --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.comparison): per method (and train ratio), test accuracy overall,
minority / majority (20% of classes with the fewest / most train samples) and few / medium /
many-shot (< 20, 20-100, > 100 train samples), mean ± standard error over seeds, each with a
paired t-test against ERM: comparison.png / .md / .parquet, logged to the MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.comparison import comparison_markdown, method_comparison
from imbtrain.study.findings import agreement, diff_text
from imbtrain.study.script import Outcome, StudyScript

OURS = ("sam_a", "joint_ssl", "joint_ssl+sam_a+smoothing", "sam_a+m2m", "joint_ssl+sam_a+m2m")


def analyse(result, drawn) -> Outcome:
    """Tables 1, 2, 5: every method against ERM, paired by seed (the space's comparison
    analysis; the findings read test_acc, test_few_acc and test_majority_acc)."""
    opts = drawn.of("comparison")
    table = method_comparison(result.results, tuple(opts["metrics"]), opts.get("baseline", "erm"),
                              opts.get("method_keys", "variant"))
    return Outcome(comparison_markdown(table), findings(table))


def findings(table: pd.DataFrame) -> str:
    """One paragraph: the ranking, the best of the paper's methods and of the baselines, and
    reweighting / resampling against ERM."""
    parts = []
    for key, part in (table.groupby(table.attrs["by"]) if table.attrs["by"] else [((), table)]):
        ranked = part.sort_values("test_acc", ascending=False).set_index("method")
        ours = [m for m in ranked.index if m in OURS]
        base = [m for m in ranked.index if m not in OURS and m != "erm"]
        top = ranked.index[0]
        at = f"at r = {key[0]:g}, " if len(table.attrs["by"]) else ""
        text = (f"{at}the best test accuracy is {top} ({ranked.loc[top, 'test_acc']:.3f}); "
                f"ERM {ranked.loc['erm', 'test_acc']:.3f}")
        if ours:
            m = ours[0]
            text += (f"; best of the paper's methods {m} {diff_text(ranked.loc[m], 'test_acc')}"
                     f" over ERM, few-shot {diff_text(ranked.loc[m], 'test_few_acc')}, "
                     f"majority {diff_text(ranked.loc[m], 'test_majority_acc')}")
        if base:
            m = base[0]
            text += f"; best baseline {m} {diff_text(ranked.loc[m], 'test_acc')}"
        parts.append((text, top in OURS, ranked))
    rebal = [r.loc[m, "test_acc_diff"] < 0 for _, _, r in parts for m in ("reweight", "resample")
             if m in r.index]
    return ("Against ERM (paired by seed): " + "; ".join(p[0] for p in parts) + ". "
            + agreement(all(p[1] for p in parts), "the paper's methods and combinations come "
                                                  "out on top")
            + (" " + agreement(all(rebal), "reweighting and resampling fall below ERM on a "
                                           "tuned routine") if rebal else ""))


STUDY = StudyScript("benchmark", __doc__, analyse)
