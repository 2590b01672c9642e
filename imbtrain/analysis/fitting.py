"""How fast imbalanced data is fitted (paper A.10, Fig. 17), from history.parquet.

Per train ratio and epoch, the training accuracy's mean ± standard error over seeds (one
curve a ratio, Fig. 17), and per train ratio the epochs to fit: the first epoch whose
metric reaches `threshold` (default 0.99), mean ± se over the seeds that reach it, with how
many did. The paper: imbalanced data takes longer, but ERM fits every training sample
eventually, minority ones included (`metric="train_minority_acc"` shows those).

    >>> import pandas as pd
    >>> results = pd.DataFrame({"trial_id": ["a", "b"], "config/train_ratio": [1.0, 0.1],
    ...     "config/seed": [0, 0]})
    >>> history = pd.DataFrame({"trial_id": ["a", "a", "b", "b"], "epoch": [1, 2, 1, 2],
    ...     "train_acc": [0.995, 1.0, 0.9, 0.99]})
    >>> epochs_to_fit(results, history)[["train_ratio", "epochs_to_fit"]].values.tolist()
    [[1.0, 1.0], [0.1, 2.0]]
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imbtrain.analysis.common import (
    column,
    figure,
    markdown_table,
    mean_se,
    mean_se_frame,
    save_figure,
    summarise,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError


def _joined(results: pd.DataFrame, history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """history rows with their trial's train ratio and seed."""
    if history.empty or metric not in history.columns:
        raise UserError(f"history.parquet has no {metric} per epoch")
    if "trial_id" not in results.columns:
        raise UserError("the results have no trial_id to join history.parquet with")
    keys = pd.DataFrame({"trial_id": results["trial_id"].to_numpy(),
                         "train_ratio": results[column(results, "train_ratio")].to_numpy(),
                         "seed": results[column(results, "seed")].to_numpy()})
    return history[["trial_id", "epoch", metric]].merge(keys, on="trial_id").dropna(
        subset=[metric])


def fitting_curves(results: pd.DataFrame, history: pd.DataFrame,
                   metric: str = "train_acc") -> pd.DataFrame:
    """Per train ratio and epoch: n (trials), `<metric>` mean and `<metric>_se`."""
    table = summarise(_joined(results, history, metric), ["train_ratio", "epoch"], [metric])
    table = table.sort_values(["train_ratio", "epoch"], ascending=[False, True],
                              ignore_index=True)
    table.attrs["metric"] = metric
    return table


def epochs_to_fit(results: pd.DataFrame, history: pd.DataFrame, metric: str = "train_acc",
                  threshold: float = 0.99) -> pd.DataFrame:
    """Per train ratio: n (trials), n_fitted (trials that reach `threshold`), epochs_to_fit
    (mean first epoch with metric >= threshold over the fitted ones) and its se, and the
    final metric (mean over trials of the last epoch's)."""
    df = _joined(results, history, metric).sort_values("epoch")
    rows = []
    for r, part in df.groupby("train_ratio"):
        firsts, finals = [], []
        for _, trial in part.groupby("trial_id"):
            hit = trial[trial[metric] >= threshold]
            if not hit.empty:
                firsts.append(float(hit["epoch"].iloc[0]))
            finals.append(float(trial[metric].iloc[-1]))
        mean, se, _ = mean_se(firsts)
        rows.append({"train_ratio": r, "n": len(finals), "n_fitted": len(firsts),
                     "epochs_to_fit": mean, "epochs_to_fit_se": se,
                     f"final_{metric}": mean_se(finals)[0]})
    table = pd.DataFrame(rows).sort_values("train_ratio", ascending=False, ignore_index=True)
    table.attrs.update(metric=metric, threshold=threshold)
    return table


def plot_fitting(curves: pd.DataFrame, out_dir: str | Path, stem: str = "fitting") -> Path:
    metric = curves.attrs["metric"]
    fig, axes = figure(ncols=1, size=(6.0, 4.2))
    ax = axes[0, 0]
    for r, part in curves.groupby("train_ratio", sort=False):
        ax.plot(part["epoch"], part[metric], label=f"train ratio {r:g}")
        ax.fill_between(part["epoch"], part[metric] - part[f"{metric}_se"].fillna(0.0),
                        part[metric] + part[f"{metric}_se"].fillna(0.0), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, stem, f"Fitting the training set ({metric}, mean ± s.e.)")


def has_curves(results: pd.DataFrame, history: pd.DataFrame, metric: str = "train_acc",
               **options) -> str | None:
    """Why fitting would draw no curve for this study (no `metric` over several epochs), else
    None (`imbtrain.analysis.registry.fits`)."""
    epochs = (history.dropna(subset=[metric])["epoch"].nunique()
              if not history.empty and metric in history.columns else 0)
    if epochs < 2:
        return (f"fitting draws {metric} over epochs; history.parquet has it for {epochs} "
                "epoch(s)")
    return None


@register_analysis("fitting", fits=has_curves)
def fitting_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                     metric: str = "train_acc", threshold: float = 0.99,
                     stem: str = "fitting") -> list[Path]:
    """Training accuracy per epoch and epochs to fit, per train ratio (Fig. 17).

    Writes `<stem>.png` (curves), table `<stem>` (epochs to fit per train ratio) and
    `<stem>_curves` (per epoch). Drawn for a study only when its history holds `metric` for
    two epochs or more (`has_curves`)."""
    curves = fitting_curves(results, history, metric)
    fit = epochs_to_fit(results, history, metric, threshold)
    md = markdown_table(
        mean_se_frame(fit, ["train_ratio"], ["epochs_to_fit"]).assign(
            n_fitted=fit["n_fitted"], **{f"final_{metric}": fit[f"final_{metric}"]}),
        caption=f"First epoch with {metric} >= {threshold}: mean ± standard error over the "
                "trials that reach it (n_fitted of n).")
    md_curves = markdown_table(mean_se_frame(curves, ["train_ratio", "epoch"], [metric]))
    return [plot_fitting(curves, out_dir, stem), *write_table(fit, out_dir, stem, md),
            *write_table(curves, out_dir, f"{stem}_curves", md_curves)]
