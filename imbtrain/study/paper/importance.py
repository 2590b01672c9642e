"""Which knobs matter under imbalance (beyond the paper; its thesis, Section 1 and 3).

Claim under test: the components of an ordinary training routine (batch size, augmentation,
label smoothing, SAM) matter at least as much under imbalance as the choice of a specialised
method (reweighting, resampling, DRW).

Setup: search_spaces/importance.yaml, an Optuna (TPE, seeded) study over eight knobs at one
imbalanced train ratio, tuned on the validation split; by default on the embedded digits at
r = 0.05 with a small CNN, in minutes; `--full`: CIFAR-100 at r = 0.01, 100 trials:

    imbtrain study importance                 # runs/importance/
    imbtrain study importance --smoke         # seconds
    imbtrain study importance --full --dataset cifar100 --data-dir /data/cifar100 \\
        --address auto --storage /shared/runs --mlflow-uri http://head:5000

Analysis (imbtrain.analysis.importance): fANOVA importances (Optuna's seeded
FanovaImportanceEvaluator on the study's storage, optuna.db), normalised to sum to 1:
importance.png / .md / .parquet, logged to the MLflow parent run.
"""

from __future__ import annotations

import pandas as pd

from imbtrain.analysis.common import markdown_table
from imbtrain.analysis.importance import knob_importance
from imbtrain.study.findings import agreement
from imbtrain.study.script import Outcome, StudyScript

METHOD_KNOB = "method"  # the specialised imbalance method; every other knob is the routine's


def analyse(result, drawn) -> Outcome:
    """Knob importance from the study's Optuna storage (the space's importance analysis)."""
    opts = {k: v for k, v in drawn.of("importance").items() if k != "stem"}
    table = knob_importance(result.results, result.path, **opts)
    shown = markdown_table(table, 3, caption=f"Knob importance ({table.attrs['source']}).")
    return Outcome(shown, findings(table))


def findings(table: pd.DataFrame) -> str:
    """One paragraph: the ranking and where the method knob falls in it."""
    ranked = table.sort_values("importance", ascending=False).reset_index(drop=True)
    top = ", ".join(f"{r.knob} {r.importance:.2f}" for r in ranked.head(3).itertuples())
    rank = ranked.index[ranked["knob"] == METHOD_KNOB]
    where = (f"the method knob ranks {int(rank[0]) + 1} of {len(ranked)} "
             f"({float(ranked.loc[rank[0], 'importance']):.2f})" if len(rank) else
             "the method knob was not searched")
    return (f"Over {int(ranked['n_trials'].max())} Optuna trials, the most important knobs "
            f"for validation balanced accuracy are {top}; {where}. "
            + agreement(bool(len(rank)) and ranked.loc[0, "knob"] != METHOD_KNOB,
                        "the routine's own knobs matter more under imbalance than the choice "
                        "of a specialised method"))


STUDY = StudyScript("importance", __doc__, analyse)
