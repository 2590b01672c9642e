"""The batch-size study (paper Section 3.1, Fig. 1; A.1, Fig. 5).

Claim under test: batch size matters much more when the training set is imbalanced, and small
batches are best there, while the curve of balanced data stays flat.

At a fixed number of epochs (the paper's comparison) a smaller batch also takes more
optimiser steps (8 times as many at batch 16 as at 128), so the study makes two comparisons,
each a group of the space's variants:

- fixed epochs: every batch size trains the same epochs (variants `bs16` ... `bs128`);
- fixed steps: every batch size takes as many steps as batch 128 in those epochs, its
  epochs scaled by batch / 128 (variants `<name>_steps`, e.g. `bs16_steps`, anchored on
  batch 128's fixed-epoch trials, which then belong to both).

Setup: search_spaces/batch_size.yaml, the variants x train ratios x seeds; by default on the
embedded mnist5k with a small CNN, in minutes on a laptop (`make study`); its `long` section
trains 3 times longer (batch 128 to its plateau on balanced data); `--full` runs the paper's
setting (WRN-28-10 on CIFAR with the tuned routine of Table 1) on a GPU cluster:

    imbtrain study batch_size                 # runs/batch_size/
    imbtrain study batch_size --section long  # runs/batch_size_long/
    imbtrain study batch_size --smoke         # seconds: runs/batch_size_smoke/
    imbtrain study batch_size --full --data-dir /data/cifar10 --address auto \\
        --storage /shared/runs --mlflow-uri http://head:5000

Analysis (the space's `analyses`: its sensitivity analysis, the comparisons its `groups`,
each section naming the variants it runs): within each comparison, the percent change of test
accuracy over batch size 128 at the same train ratio and seed, mean ± standard error over
seeds, with each trial's optimiser steps (imbtrain.analysis.sensitivity), written as
sensitivity.png, sensitivity.md and sensitivity.parquet next to the study's tables and logged
to the study's MLflow parent run. Ends by printing what it found and the best configuration at
each train ratio.
"""

from __future__ import annotations

import math

import pandas as pd

from imbtrain.study.results import StudyResult
from imbtrain.study.script import Drawn, Outcome, StudyScript

KNOB, BASELINE = "batch_size", 128  # Fig. 1: over batch size 128 (the space's defaults)
STEPS_SUFFIX = "_steps"  # a variant of the fixed-step comparison
COMPARISONS = ("fixed_epochs", "fixed_steps")  # the space's sensitivity `groups`


def comparison_groups(results: pd.DataFrame) -> dict[str, list[str]]:
    """The variants of each comparison: `<name>_steps` in fixed_steps, the others in
    fixed_epochs; the baseline's fixed-epoch variant anchors fixed_steps too unless a
    `_steps` variant has the baseline batch size itself; fixed_steps only when the study
    ran some.

        >>> res = pd.DataFrame({"variant": ["bs16", "bs128", "bs16_steps"],
        ...                     "config/batch_size": [16, 128, 16]})
        >>> comparison_groups(res)
        {'fixed_epochs': ['bs128', 'bs16'], 'fixed_steps': ['bs128', 'bs16_steps']}
    """
    names = sorted(results["variant"].dropna().unique())
    epochs = [v for v in names if not v.endswith(STEPS_SUFFIX)]
    steps = [v for v in names if v.endswith(STEPS_SUFFIX)]
    size = results.groupby("variant")["config/batch_size"].first()
    groups = {"fixed_epochs": epochs}
    if steps:
        anchored = any(size[v] == BASELINE for v in steps)
        anchor = [] if anchored else [v for v in epochs if size[v] == BASELINE]
        groups["fixed_steps"] = sorted({*anchor, *steps})
    return groups


# ================================================================ analysis


def _comparison(table: pd.DataFrame, knob: str = KNOB,
                baseline=BASELINE) -> tuple[list[str], float, float, pd.Series]:
    """The sentences of one comparison: per train ratio the best batch size over the
    baseline; the largest change at the most and least imbalanced ratio; and the best row at
    the most imbalanced ratio."""
    ratios = sorted(table["train_ratio"].unique(), reverse=True)
    others = table[table[knob] != baseline]
    parts = []
    for r in ratios:
        rows = others[others["train_ratio"] == r]
        top = rows.loc[rows["pct_change"].idxmax()]
        se = "" if math.isnan(top["pct_change_se"]) else f" ± {top['pct_change_se']:.1f}"
        low = rows.loc[rows["pct_change"].idxmin()]
        steps = "" if pd.isna(top.get("steps", math.nan)) else f", {top['steps']:.0f} steps"
        parts.append(f"r = {r:g}: best {knob} {int(top[knob])} ({top['pct_change']:+.1f}%"
                     f"{se} over {baseline}{steps}), worst {int(low[knob])} "
                     f"({low['pct_change']:+.1f}%)")
    flat = others[others["train_ratio"] == ratios[0]]["pct_change"].abs().max()
    steep = others[others["train_ratio"] == ratios[-1]]["pct_change"].abs().max()
    rows = others[others["train_ratio"] == ratios[-1]]
    return parts, flat, steep, rows.loc[rows["pct_change"].idxmax()]


def findings(table: pd.DataFrame, knob: str = KNOB, baseline=BASELINE) -> str:
    """One paragraph: each comparison at each train ratio, and in each whether the paper's
    claim holds: batch size matters more at the most imbalanced ratio than at the most
    balanced one, and a batch smaller than the baseline is the best there.

        >>> rows = [(g, r, b, c) for g, changes in (("fixed_epochs", (1.0, 0.0, 20.0, 0.0)),
        ...         ("fixed_steps", (-2.0, 0.0, -15.0, 0.0))) for (r, b), c in zip(
        ...         [(1.0, 16), (1.0, 128), (0.05, 16), (0.05, 128)], changes)]
        >>> table = pd.DataFrame(rows, columns=["group", "train_ratio", KNOB, "pct_change"]
        ...                      ).assign(pct_change_se=0.5, n=3)
        >>> text = findings(table)
        >>> "as the paper reports" in text, "(the best change at r = 0.05 is -15.0%)" in text
        (True, True)
        >>> "and still at a fixed number of steps" in findings(table.assign(pct_change=[
        ...     1.0, 0.0, 20.0, 0.0, 0.5, 0.0, 9.0, 0.0]))
        True
    """
    if "group" not in table.columns:
        table = table.assign(group="fixed_epochs")
    if table[table[knob] != baseline].empty:
        return f"Only the baseline {knob} {baseline} finished; nothing to compare."
    n = int(table["n"].max())
    text, holds, best = [], {}, {}
    for name in [g for g in COMPARISONS if (table["group"] == g).any()]:
        part = table[table["group"] == name]
        if part[part[knob] != baseline].empty:
            continue
        parts, flat, steep, top = _comparison(part, knob, baseline)
        ratios = sorted(part["train_ratio"].unique(), reverse=True)
        holds[name] = bool(steep > flat and top["pct_change"] > 0 and top[knob] < baseline)
        best[name] = (ratios[-1], top)
        text.append(f"{name.replace('_', ' ')}: " + "; ".join(parts)
                    + f" (largest change {steep:.1f}% at r = {ratios[-1]:g} vs {flat:.1f}% at "
                    f"r = {ratios[0]:g})")
    head = f"Test accuracy relative to {knob} {baseline}, over {n} seed(s). " + ". ".join(
        text) + "."
    if holds.get("fixed_epochs") and holds.get("fixed_steps"):
        verdict = ("Small batches help more under imbalance at fixed epochs, as the paper "
                   "reports, and still at a fixed number of steps, so the effect is not only "
                   "that small batches take more steps")
    elif holds.get("fixed_epochs") and "fixed_steps" in holds:
        r, top = best["fixed_steps"]
        verdict = (f"Small batches help more under imbalance at fixed epochs, as the paper "
                   f"reports. At a fixed number of steps small batches are not better (the best "
                   f"change at r = {r:g} is {top['pct_change']:+.1f}%): here the gain of small "
                   "batches under imbalance goes with the extra steps they take")
    elif holds.get("fixed_epochs"):
        verdict = "Small batches help more under imbalance, as the paper reports"
    else:
        verdict = "This run does not show small batches helping more under imbalance"
    return f"{head} {verdict}."


def analyse(result: StudyResult, drawn: Drawn) -> Outcome:
    """The sensitivity of test accuracy to batch size within each comparison (Fig. 1): the
    space's sensitivity analysis, its Markdown table, and `findings` on its table."""
    from imbtrain.analysis.sensitivity import grouped_sensitivity, sensitivity_curve

    opts = drawn.of("sensitivity")
    knob, baseline = opts.get("knob", KNOB), opts.get("baseline", BASELINE)
    metric, groups = opts.get("metric", "test_acc"), opts.get("groups")
    if groups:
        table = grouped_sensitivity(result.results, knob, baseline, groups, metric)
    else:
        table = sensitivity_curve(result.results, knob, baseline, metric)
    return Outcome(drawn.markdown("sensitivity"), findings(table, knob, baseline))


# ================================================================ main

# Fig. 1: the space's sensitivity analysis (PNG, markdown and parquet in the study folder,
# recorded in analyses.yaml so that `imbtrain analyze <study>` draws it again).
STUDY = StudyScript("batch_size", __doc__, analyse, findings_file=False)
