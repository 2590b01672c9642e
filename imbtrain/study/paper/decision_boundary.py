"""The decision-boundary study (paper Section 5, Fig. 18; A.11).

Claim under test: ERM trained on imbalanced data draws small margins around the minority
training points (it "shrink-wraps" them), and SAM-A widens those margins.

Setup: search_spaces/decision_boundary.yaml, a 3-layer MLP on the 2-D toy problem (toy2d at
r = 0.01: 1000, 100 and 10 training points) trained with ERM and with SAM-A (variants) over
5 seeds. Each trial measures its minority margin (`trial_metrics: [minority_margin]`): the
mean distance from the minority training points to its decision boundary, with the share of
those points it classifies correctly. Minutes on a laptop; `--full` trains longer, 10 seeds:

    imbtrain study decision_boundary          # runs/decision_boundary/
    imbtrain study decision_boundary --smoke  # seconds

Analysis: the margin per method, mean ± standard error over seeds, and a paired t-test of
SAM-A against ERM (imbtrain.analysis.boundary: minority_margin.png / .md / .parquet); the
decision regions of ERM and SAM-A for the first seed, rebuilt from the trials' last
checkpoints (decision_boundary.png); all logged to the MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.boundary import MARGIN, margin_table, plot_decision_boundaries
from imbtrain.analysis.common import markdown_table, mean_se_frame
from imbtrain.analysis.comparison import paired_test
from imbtrain.study.checkpoints import trial_model
from imbtrain.study.findings import agreement
from imbtrain.study.script import Outcome, StudyScript, finished

LABELS = {"erm": "ERM", "sam_a": "SAM-A"}
VALUES = (MARGIN, "minority_train_acc", "test_minority_acc", "test_acc")


def analyse(result, drawn) -> Outcome:
    """Fig. 18: the minority margin per method (mean ± s.e.: the space's boundary analysis)
    and the decision regions (the trained models' pictures, drawn here)."""
    table = margin_table(result.results, drawn.of("boundary").get("method_keys", "variant"))
    shown = markdown_table(mean_se_frame(table, ["method"], list(table.attrs["values"]), 4), 4,
                           caption="Mean distance from the minority training points to the "
                                   "decision boundary, mean ± standard error over seeds.")
    return Outcome(shown, findings(finished(result)), [pictures(result)])


def pictures(result):
    """The decision regions of the first seed's ERM and SAM-A models, side by side."""
    done = finished(result)
    first = done[done["config/seed"] == done["config/seed"].min()]
    models, margins, data = {}, {}, None
    for variant, label in LABELS.items():
        row = first[first["variant"] == variant]
        if row.empty:
            continue
        models[label], data = trial_model(result, row["trial_id"].iloc[0])
        margins[label] = float(row[MARGIN].iloc[0])
    return plot_decision_boundaries(models, data.train_x, data.train_y, result.path,
                                    train_counts=data.train_counts, margins=margins)


def findings(done: pd.DataFrame) -> str:
    """One paragraph: the margin of each method (mean ± s.e.), the paired test, and the
    minority accuracy on train and test."""
    per = done.pivot_table(index="config/seed", columns="variant", values=list(VALUES))
    text = []
    for v, label in LABELS.items():
        m = per[MARGIN][v]
        text.append(f"{label} {m.mean():.3f} ± {m.std(ddof=1) / len(m) ** 0.5:.3f} "
                    f"(minority train accuracy {per['minority_train_acc'][v].mean():.2f}, "
                    f"minority test accuracy {per['test_minority_acc'][v].mean():.3f})")
    diff, p, n = paired_test(per[MARGIN]["sam_a"], per[MARGIN]["erm"])
    # A point swallowed by a majority region is far from any boundary too: the margin
    # counts as widened only while SAM-A still classifies the minority points as ERM does.
    kept = per["minority_train_acc"]["sam_a"].mean()
    wider = diff > 0 and kept > 0 and kept >= per["minority_train_acc"]["erm"].mean() - 0.1
    return (f"Mean distance from the minority training points to the decision boundary over "
            f"{n} seeds (mean ± s.e.): {'; '.join(text)}. SAM-A - ERM: {diff:+.3f} "
            f"(paired t-test p = {p:.2g}). "
            + agreement(wider, "SAM-A pulls the decision boundary away from the minority "
                               "points, where ERM shrink-wraps them", p))


STUDY = StudyScript("decision_boundary", __doc__, analyse)
