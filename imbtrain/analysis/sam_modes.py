"""SAM-A's modes and radius forms, each at its best rho, against ERM, with the cost of a step
(paper Section 3.2, A.6; docs/methods.md, "4. SAM, ASAM and SAM-A").

The arms of a trial come from its config: `erm` (sam=none), `sam` (plain SAM) and SAM-A as
`<mode>/<form>`, mode one of weighted, per_class, grouped (`sam_a_mode`) and form one of
inverse, paper_eq (`sam_a_form`). Each arm is swept over its own rho values (a mode's good
radius differs: the per-class ascent spends each class's whole radius on that class's loss).

Per arm and rho, over seeds: mean ± standard error of the selection metric (`val_bal_acc`, the
validation split) and of each test metric. An arm's **best rho** is the one with the highest
mean selection metric, never chosen on the test split. At it, each metric's mean ± se and its
paired difference from ERM at the same seed (ERM ignores rho, so it is paired by seed alone;
`comparison.paired_test`: mean difference, two-sided paired t-test p, pairs).

The cost of a step, per trial, from history.parquet:

    passes_per_step = mean over epochs of fwd_bwd_passes / steps_per_epoch
    time_vs_erm     = mean epoch_time_s / mean epoch_time_s of ERM at the same seed

`passes_per_step` counts forward/backward passes exactly (ERM 1, SAM 2, SAM-A per_class 2 per
class present in the batch); `time_vs_erm` is wall clock, includes each epoch's evaluation and
depends on the machine's load.

    >>> import pandas as pd
    >>> res = pd.DataFrame({"trial_id": list("abcd"),
    ...     "config/sam": ["none", "sam_a", "none", "sam_a"],
    ...     "config/sam_a_mode": ["weighted", "per_class"] * 2,
    ...     "config/sam_a_form": ["inverse"] * 4, "config/sam_rho": [0.05, 0.02] * 2,
    ...     "config/seed": [0, 0, 1, 1], "config/batch_size": [4] * 4,
    ...     "train_counts": [[6, 2]] * 4, "val_bal_acc": [0.5, 0.6, 0.7, 0.8],
    ...     "test_acc": [0.5, 0.6, 0.6, 0.8]})
    >>> hist = pd.DataFrame({"trial_id": list("abcd"), "epoch": [1] * 4,
    ...     "fwd_bwd_passes": [2.0, 6.0, 2.0, 8.0], "epoch_time_s": [1.0, 3.0, 1.0, 4.0]})
    >>> best, _ = sam_modes_table(res, hist, metrics=["test_acc"])
    >>> best[["arm", "rho", "test_acc", "test_acc_diff", "passes_per_step", "time_vs_erm"]
    ...      ].round(3).values.tolist()
    [['erm', nan, 0.55, nan, 1.0, 1.0], ['per_class/inverse', 0.02, 0.7, 0.15, 3.5, 3.5]]
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from imbtrain.analysis.common import (
    column,
    figure,
    finished,
    fmt_mean_se,
    markdown_table,
    mean_se,
    require_metrics,
    save_figure,
    steps_per_epoch,
    varying,
    write_table,
)
from imbtrain.analysis.comparison import paired_test
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

METRICS = ("test_acc", "test_minority_acc", "minority_input_margin",
           "minority_input_margin_test")
SELECT = "val_bal_acc"
REFERENCE = "erm"
MODES = ("weighted", "per_class", "grouped")
FORMS = ("inverse", "paper_eq")
ARMS = ("erm", "sam", *(f"{m}/{f}" for m in MODES for f in FORMS))  # the table's order
VERSUS = ("test_acc", "test_minority_acc", "minority_input_margin")  # diffs in the headline
COST = ("passes_per_step", "time_vs_erm")


def arm_labels(results: pd.DataFrame) -> pd.Series:
    """`erm`, `sam` or `<mode>/<form>` for each trial (module docstring)."""
    sam = results[column(results, "sam")].astype(str)
    mode = results[column(results, "sam_a_mode")].astype(str)
    form = results[column(results, "sam_a_form")].astype(str)
    arm = (mode + "/" + form).where(sam == "sam_a", sam.replace({"none": REFERENCE}))
    return arm.rename("arm")


def trial_costs(results: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per trial (index: trial_id): mean `fwd_bwd_passes` a step over its epochs, and mean
    `epoch_time_s`; NaN where the history lacks them."""
    need = {"trial_id", "fwd_bwd_passes", "epoch_time_s"}
    if history is None or not need <= set(history.columns):
        return pd.DataFrame({"passes": math.nan, "epoch_time_s": math.nan},
                            index=results["trial_id"])
    per = history.groupby("trial_id")[["fwd_bwd_passes", "epoch_time_s"]].mean()
    bs = results.set_index("trial_id")[column(results, "batch_size")]
    size = results.set_index("trial_id")["train_counts"].map(lambda c: int(np.sum(c)))
    steps = pd.Series([steps_per_epoch(n, b) for n, b in zip(size, bs, strict=True)],
                      index=bs.index)
    out = pd.DataFrame({"passes": per["fwd_bwd_passes"].reindex(bs.index) / steps,
                        "epoch_time_s": per["epoch_time_s"].reindex(bs.index)})
    return out


def sam_modes_table(results: pd.DataFrame, history: pd.DataFrame, metrics=METRICS,
                    select: str = SELECT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(best, sweep): `sweep` one row an arm and rho (n, `select`, each metric, mean and
    `_se`, and the cost columns); `best` one row an arm at its best rho by mean `select`,
    with `<m>_diff`, `<m>_p`, `<m>_pairs` against ERM (module formulas). ERM's rho is NaN."""
    metrics = [m for m in metrics if m in results.columns] or list(metrics)
    require_metrics(results, [select, *metrics])
    ok = finished(results, select)
    if ok.empty:
        raise UserError(f"no finished trial has {select}")
    by = varying(ok, ["train_ratio"])
    costs = trial_costs(ok, history)
    df = ok[[select, *metrics]].astype(float).assign(
        arm=arm_labels(ok).to_numpy(), seed=ok[column(ok, "seed")].to_numpy(),
        rho=ok[column(ok, "sam_rho")].astype(float).to_numpy(),
        passes=costs["passes"].reindex(ok["trial_id"]).to_numpy(),
        epoch_time_s=costs["epoch_time_s"].reindex(ok["trial_id"]).to_numpy(),
        **{k: ok[column(ok, k)].to_numpy() for k in by})
    df.loc[df["arm"] == REFERENCE, "rho"] = math.nan  # ERM has no radius
    if not (df["arm"] == REFERENCE).any():
        raise UserError(f"no finished ERM trial (sam=none) to compare with; arms: "
                        f"{', '.join(sorted(df['arm'].unique()))}")
    erm_time = df[df["arm"] == REFERENCE].groupby([*by, "seed"])["epoch_time_s"].mean()
    df["time_vs_erm"] = [t / erm_time.get(tuple(k) if by else k[0], math.nan) for t, k in zip(
        df["epoch_time_s"], df[[*by, "seed"]].itertuples(index=False), strict=True)]
    df = df.rename(columns={"passes": "passes_per_step"})
    values = [select, *metrics, *COST]
    sweep = _summary(df, [*by, "arm", "rho"], values)
    best_idx = sweep.groupby([*by, "arm"], dropna=False)[select].idxmax()
    best = sweep.loc[best_idx.to_numpy()].reset_index(drop=True)
    for m in [select, *metrics]:
        tests = []
        for _, row in best.iterrows():
            if row["arm"] == REFERENCE:
                tests.append((math.nan, math.nan, 0))
                continue
            same = np.ones(len(df), dtype=bool)
            for k in by:
                same &= (df[k] == row[k]).to_numpy()
            arm = df[same & (df["arm"] == row["arm"]).to_numpy()
                     & np.isclose(df["rho"], row["rho"])].groupby("seed")[m].mean()
            ref = df[same & (df["arm"] == REFERENCE).to_numpy()].groupby("seed")[m].mean()
            both = arm.to_frame("a").join(ref.to_frame("b"), how="inner")
            tests.append(paired_test(both["a"].to_numpy(), both["b"].to_numpy()))
        best[f"{m}_diff"], best[f"{m}_p"], best[f"{m}_pairs"] = (list(t) for t in zip(
            *tests, strict=True))
        best[f"{m}_pairs"] = best[f"{m}_pairs"].astype(int)
    order = {a: i for i, a in enumerate(ARMS)}
    for t in (best, sweep):
        t["_order"] = t["arm"].map(lambda a: order.get(a, len(order)))
        t.sort_values([*by, "_order", "arm", "rho"], inplace=True, ignore_index=True)
        t.drop(columns="_order", inplace=True)
        t.attrs.update(metrics=metrics, select=select, by=by)
    return best, sweep


def _summary(df: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Per group of `keys` (rho NaN for ERM kept as a group): n seeds, each value's mean and
    standard error over the seeds."""
    rows = []
    for key, part in df.groupby(keys, sort=True, dropna=False):
        row = dict(zip(keys, key, strict=True))
        per_seed = part.groupby("seed")[values].mean()
        row["n"] = len(per_seed)
        for v in values:
            row[v], row[f"{v}_se"], _ = mean_se(per_seed[v])
        rows.append(row)
    return pd.DataFrame(rows, columns=[*keys, "n", *[c for v in values
                                                     for c in (v, f"{v}_se")]])


def _split_arm(arm: str) -> tuple[str, str]:
    """(mode, form) of an arm: `per_class/inverse` -> (per_class, inverse); erm, sam -> (erm, –)."""
    mode, _, form = arm.partition("/")
    return (mode, form) if form else (arm, "–")


def sam_modes_markdown(best: pd.DataFrame, digits: int = 3,
                       versus: tuple[str, ...] = VERSUS) -> str:
    """The headline table: one row an arm at its best rho (mode, form, rho, n), each metric
    `mean ± se`, the paired difference from ERM of those in `versus`, and the cost of a
    step."""
    metrics, select, by = best.attrs["metrics"], best.attrs["select"], best.attrs["by"]
    out = best[by].copy() if by else pd.DataFrame(index=best.index)
    out["mode"], out["form"] = zip(*best["arm"].map(_split_arm), strict=True)
    out["best rho"] = ["–" if math.isnan(r) else f"{r:g}" for r in best["rho"]]
    out["n"] = best["n"]
    out[select] = [fmt_mean_se(a, s, digits) for a, s in zip(best[select], best[f"{select}_se"],
                                                             strict=True)]
    for m in metrics:
        out[m] = [fmt_mean_se(a, s, digits) for a, s in zip(best[m], best[f"{m}_se"],
                                                            strict=True)]
        if m in versus:
            out[f"{m} vs erm"] = ["–" if n == 0 else f"{d:+.{digits}f} (p = "
                                  f"{'–' if math.isnan(p) else f'{p:.2g}'})"
                                  for d, p, n in zip(best[f"{m}_diff"], best[f"{m}_p"],
                                                     best[f"{m}_pairs"], strict=True)]
    out["passes/step"] = [fmt_mean_se(a, s, 2) for a, s in zip(
        best["passes_per_step"], best["passes_per_step_se"], strict=True)]
    out["epoch time vs erm"] = [fmt_mean_se(a, s, 2) for a, s in zip(
        best["time_vs_erm"], best["time_vs_erm_se"], strict=True)]
    caption = (f"Each arm at its best rho by mean {select} (validation); mean ± standard "
               "error over seeds; vs erm: mean paired difference from ERM at the same seed "
               "and the two-sided paired t-test p-value. Margins: mean first-order distance "
               "to the decision boundary of the minority classes' training (and test) samples, "
               "pixel units of [0, 1], negative when misclassified. passes/step: "
               "forward/backward passes a step (fwd_bwd_passes / steps); epoch time vs erm: "
               "wall clock of an epoch (its evaluation included) over ERM's at the same seed.")
    return markdown_table(out, digits, caption)


def sweep_markdown(sweep: pd.DataFrame, digits: int = 3) -> str:
    """Every arm at every rho it ran: `mean ± se` of the selection metric and each metric."""
    metrics, select, by = sweep.attrs["metrics"], sweep.attrs["select"], sweep.attrs["by"]
    out = sweep[by].copy() if by else pd.DataFrame(index=sweep.index)
    out["mode"], out["form"] = zip(*sweep["arm"].map(_split_arm), strict=True)
    out["rho"] = ["–" if math.isnan(r) else f"{r:g}" for r in sweep["rho"]]
    out["n"] = sweep["n"]
    for m in [select, *metrics]:
        out[m] = [fmt_mean_se(a, s, digits) for a, s in zip(sweep[m], sweep[f"{m}_se"],
                                                            strict=True)]
    out["passes/step"] = [f"{v:.2f}" for v in sweep["passes_per_step"]]
    return markdown_table(out, digits, "Mean ± standard error over seeds, per arm and rho.")


def _style(arm: str) -> dict:
    """A mode's colour, a form's line and marker (SAM grey, dotted)."""
    mode, form = _split_arm(arm)
    colour = {m: f"C{i}" for i, m in enumerate(MODES)}.get(mode, "grey")
    line = {"inverse": ("-", "o"), "paper_eq": ("--", "s")}.get(form, (":", "^"))
    return {"color": colour, "ls": line[0], "marker": line[1]}


def plot_sam_modes(best: pd.DataFrame, sweep: pd.DataFrame, out_dir: str | Path,
                   stem: str = "sam_modes") -> Path:
    """One panel a metric against rho (a colour a mode, a line a form, ± s.e.; ERM a dashed
    band), and the passes a step of each arm."""
    metrics, select = sweep.attrs["metrics"], sweep.attrs["select"]
    shown = [select, *metrics]
    ncols = 3
    nrows = math.ceil((len(shown) + 1) / ncols)
    fig, axes = figure(ncols=ncols, nrows=nrows, size=(4.6, 3.6))
    axes = list(axes.flat)
    erm = sweep[sweep["arm"] == REFERENCE]
    arms = [a for a in dict.fromkeys(sweep["arm"]) if a != REFERENCE]
    rhos = sorted(sweep["rho"].dropna().unique())
    for ax, m in zip(axes, shown, strict=False):
        for arm in arms:
            line = sweep[sweep["arm"] == arm].sort_values("rho")
            ax.errorbar(line["rho"], line[m], yerr=line[f"{m}_se"].fillna(0.0), capsize=3,
                        label=arm, **_style(arm))
        if len(erm):
            mean, se = float(erm[m].iloc[0]), float(np.nan_to_num(erm[f"{m}_se"].iloc[0]))
            ax.axhline(mean, color="black", ls="--", lw=1, label=REFERENCE)
            ax.axhspan(mean - se, mean + se, color="grey", alpha=0.2)
        if rhos and rhos[0] > 0 and len(rhos) > 2:
            ax.set_xscale("log")
            ax.set_xticks(rhos, [f"{r:g}" for r in rhos], fontsize=7)
            ax.minorticks_off()
        ax.set_xlabel("rho")
        ax.set_title(m, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    ax = axes[len(shown)]
    labels = list(best["arm"])
    ax.bar(range(len(labels)), best["passes_per_step"],
           color=[_style(a)["color"] if a != REFERENCE else "black" for a in labels])
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("forward/backward passes a step")
    ax.set_title("cost of a step (at the best rho)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    for extra in axes[len(shown) + 1:]:
        extra.axis("off")
    return save_figure(fig, out_dir, stem, "SAM-A modes x radius forms against rho "
                                           "(mean ± s.e. over seeds)")


@register_analysis("sam_modes")
def sam_modes_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                       metrics: list[str] = METRICS, select: str = SELECT,
                       stem: str = "sam_modes") -> list[Path]:
    """SAM-A's modes x radius forms (and SAM), each at its best rho, against ERM (A.6).

    Writes `<stem>.png`, table `<stem>` (each arm at its best rho, `sam_modes_table`) and
    table `<stem>_sweep` (every arm and rho)."""
    best, sweep = sam_modes_table(results, history, metrics, select)
    return [plot_sam_modes(best, sweep, out_dir, stem),
            *write_table(best, out_dir, stem, sam_modes_markdown(best)),
            *write_table(sweep, out_dir, f"{stem}_sweep", sweep_markdown(sweep))]
