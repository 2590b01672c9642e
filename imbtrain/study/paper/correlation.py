"""The cross-dataset study (paper Section 4.1.3, Table 3).

Claim under test: how well a method does on one benchmark says little about how it does on
another: across methods, accuracy on CIFAR-10 and on real-world datasets (ISIC, APTOS,
EuroSAT) correlates weakly (Pearson r 0.03 to 0.19, slopes about 0.04).

Setup: search_spaces/correlation.yaml, eight methods (variants) x datasets (a knob) x seeds at
one imbalanced train ratio; by default the embedded digits and mnist5k with a small CNN, in
minutes; `--full` takes class-per-folder trees, one a dataset (their own imbalance, train
ratio 1; CIFAR-10 exported as a long-tailed folder tree), with a ResNeXt-50:

    imbtrain study correlation                # runs/correlation/
    imbtrain study correlation --smoke        # seconds
    imbtrain study correlation --full --data-dir /data/cifar10_lt /data/isic /data/aptos \\
        /data/eurosat --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.correlation): per dataset and method the mean test accuracy over
seeds; per pair of datasets, across methods, the Pearson r and least-squares slope:
cross_dataset.png / .md / .parquet and cross_dataset_means.md / .parquet, logged to the
MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.common import markdown_table
from imbtrain.analysis.correlation import cross_dataset_correlation
from imbtrain.study.findings import agreement
from imbtrain.study.script import Outcome, StudyScript


def analyse(result, drawn) -> Outcome:
    """Table 3: across methods, r and slope between datasets (the space's correlation
    analysis)."""
    opts = drawn.of("correlation")
    metric = opts.get("metric", "test_acc")
    table = cross_dataset_correlation(result.results, metric,
                                      method_keys=opts.get("method_keys", "variant"))
    means = table.attrs["means"].pivot(index="method", columns="dataset", values=metric).round(3)
    shown = markdown_table(table, 3, caption="Across methods: Pearson r and least-squares "
                                             "slope of mean test accuracy on y against x.")
    shown += "\n" + markdown_table(means.reset_index(), 3, caption="Mean test accuracy over "
                                                                   "seeds.")
    return Outcome(shown, findings(table, means))


def findings(table: pd.DataFrame, means: pd.DataFrame) -> str:
    """One paragraph: r and slope per pair, and the best method on each dataset."""
    pairs = "; ".join(f"{r.x} vs {r.y}: r = {r.pearson_r:.2f} (p = {r.p_value:.2g}), slope "
                      f"{r.slope:.2f} over {r.n_methods} methods" for r in table.itertuples())
    best = ", ".join(f"{d}: {means[d].idxmax()}" for d in means.columns)
    weak = (table["pearson_r"].abs() < 0.5).all()
    return (f"Across methods, {pairs}. Best method per dataset: {best}. "
            + agreement(bool(weak), "a method's accuracy on one dataset predicts little of "
                                    "its accuracy on another"))


STUDY = StudyScript("correlation", __doc__, analyse)
