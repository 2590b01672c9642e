"""The data-curation study (paper A.8.2, Fig. 16).

Claim under test: with the minority count fixed, collecting more majority samples first helps
accuracy on a balanced test set, then hurts once the training set grows too imbalanced; the
best training set is nearly balanced.

Setup: search_spaces/data_curation.yaml, 50 minority samples a class and 50 to 1600 majority
samples a class (the step profile; each majority count a variant setting synthetic_samples
and train_ratio together) x seeds, on embedded synthetic vectors with an MLP, in minutes.
The pool of a dataset on disk is fixed, so only generated data (dataset=synthetic) can grow
its majority classes; `--full` runs them at CIFAR-100's shape and size with a WRN-28-10:

    imbtrain study data_curation              # runs/data_curation/
    imbtrain study data_curation --smoke      # seconds
    imbtrain study data_curation --full --address auto --storage /shared/runs \\
        --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.curation): overall, minority and majority test accuracy against
the majority count, mean ± standard error over seeds: curation.png / .md / .parquet, logged
to the MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.common import markdown_table, mean_se_frame
from imbtrain.analysis.curation import METRICS, curation_curve
from imbtrain.errors import UserError
from imbtrain.study.findings import agreement
from imbtrain.study.script import Outcome, StudyScript


def prepare(spec, args, kwargs, backend):
    """Only generated data can grow its majority classes (module doc)."""
    if spec.base.get("dataset", "synthetic") != "synthetic":
        raise UserError(f"data curation grows the majority classes through synthetic_samples, "
                        f"so it needs dataset=synthetic; {spec.base['dataset']} has a fixed "
                        "pool (a cap on n_max, not in TrainConfig yet, would lift this)")
    return spec


def analyse(result, drawn) -> Outcome:
    """Fig. 16: accuracy against the majority count at a fixed minority count (the space's
    curation analysis)."""
    drawn.of("curation")
    table = curation_curve(result.results)
    shown = markdown_table(mean_se_frame(table, ["minority_count", "majority_count",
                                                 "train_ratio"], list(METRICS)), 3,
                           caption="Fixed minority count, growing majority count: mean ± "
                                   "standard error over seeds.")
    return Outcome(shown, findings(table))


def _above(a: pd.Series, b: pd.Series) -> bool:
    """a's test accuracy above b's by more than their standard errors together."""
    return bool(a["test_acc"] - b["test_acc"] > a["test_acc_se"] + b["test_acc_se"])


def findings(table: pd.DataFrame) -> str:
    """One paragraph: where overall accuracy peaks, whether it rose before and how far it
    falls at the end."""
    curve = table.sort_values("majority_count")
    peak = curve.loc[curve["test_acc"].idxmax()]
    first, last = curve.iloc[0], curve.iloc[-1]
    return (f"With {int(peak['minority_count'])} minority samples a class, balanced test "
            f"accuracy goes from {first['test_acc']:.3f} at {int(first['majority_count'])} "
            f"majority samples to a peak of {peak['test_acc']:.3f} at "
            f"{int(peak['majority_count'])} (train ratio {peak['train_ratio']:.3g}) and "
            f"{last['test_acc']:.3f} at {int(last['majority_count'])}; minority accuracy "
            f"{first['test_minority_acc']:.3f} -> {last['test_minority_acc']:.3f}, majority "
            f"{first['test_majority_acc']:.3f} -> {last['test_majority_acc']:.3f}. "
            + agreement(_above(peak, last) and peak["train_ratio"] >= 0.1,
                        "too many majority samples degrade accuracy; the best training set "
                        "is nearly balanced") + " "
            + agreement(_above(peak, first), "a moderate number of extra majority samples "
                                             "helps first"))


STUDY = StudyScript("data_curation", __doc__, analyse, prepare=prepare)
