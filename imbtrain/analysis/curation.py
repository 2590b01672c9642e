"""Data curation: more majority samples for a fixed minority (paper A.8.2, Fig. 16).

Trials keep the minority classes' train count fixed and grow the majority classes'. Each
trial's majority count is max(train_counts) and its minority count min(train_counts) (or the
config keys named by `majority_key` / `minority_key` when the study sets them directly).
Per minority count and majority count, each metric's mean ± standard error over seeds:
overall (`test_acc`), minority (`test_minority_acc`) and majority (`test_majority_acc`)
accuracy against the majority count, one curve per minority count. The paper sees accuracy
on a balanced test set rise, peak near a balanced training set, then fall.

    >>> import pandas as pd
    >>> results = pd.DataFrame({"train_counts": [[10, 5], [20, 5], [20, 5]],
    ...     "config/seed": [0, 0, 1], "test_acc": [0.6, 0.7, 0.8],
    ...     "test_minority_acc": [0.5, 0.4, 0.5], "test_majority_acc": [0.7, 1.0, 1.0]})
    >>> curation_curve(results)[["majority_count", "n", "test_acc"]].values.tolist()
    [[10.0, 1.0, 0.6], [20.0, 2.0, 0.75]]
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imbtrain.analysis.common import (
    column,
    figure,
    finished,
    markdown_table,
    mean_se_frame,
    require_metrics,
    save_figure,
    summarise,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

METRICS = ("test_acc", "test_minority_acc", "test_majority_acc")


def _counts(ok: pd.DataFrame, key: str | None, pick) -> pd.Series:
    if key is not None:
        return ok[column(ok, key)].astype(float)
    if "train_counts" not in ok.columns:
        raise UserError("data curation needs the trials' train_counts (results.parquet) or "
                        "options majority_key / minority_key naming config keys")
    return ok["train_counts"].map(lambda c: float(pick(c)) if c is not None and len(c)
                                  else float("nan"))


def curation_curve(results: pd.DataFrame, metrics=METRICS, majority_key: str | None = None,
                   minority_key: str | None = None) -> pd.DataFrame:
    """Per minority count and majority count: n (seeds), train_ratio (minority / majority)
    and, per metric, its mean and `<metric>_se`. Sorted by minority then majority count."""
    metrics = list(metrics)
    require_metrics(results, metrics)
    ok = finished(results, metrics[0])
    df = pd.DataFrame({"minority_count": _counts(ok, minority_key, min),
                       "majority_count": _counts(ok, majority_key, max)})
    for m in metrics:
        df[m] = ok[m].astype(float)
    table = summarise(df.dropna(subset=["majority_count"]), ["minority_count", "majority_count"],
                      metrics)
    table.insert(2, "train_ratio", table["minority_count"] / table["majority_count"])
    table.attrs["metrics"] = metrics
    return table.sort_values(["minority_count", "majority_count"], ignore_index=True)


def plot_curation(table: pd.DataFrame, out_dir: str | Path, stem: str = "curation") -> Path:
    """Fig. 16: one panel a metric vs the majority count (log), a curve per minority
    count, error bars ± s.e.; the best majority count of each curve ringed."""
    metrics = table.attrs["metrics"]
    fig, axes = figure(ncols=len(metrics), size=(4.5, 4.0))
    for ax, m in zip(axes[0], metrics, strict=True):
        for n_min, part in table.groupby("minority_count"):
            line = ax.errorbar(part["majority_count"], part[m], yerr=part[f"{m}_se"].fillna(0.0),
                               marker="o", capsize=3, label=f"{int(n_min)} minority samples")
            top = part.loc[part[m].idxmax()]
            ax.scatter([top["majority_count"]], [top[m]], s=160, facecolors="none",
                       edgecolors=line[0].get_color())
        ax.set_xscale("log")
        ax.set_xlabel("majority-class train samples")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out_dir, stem, "Adding majority samples (mean ± s.e. over seeds)")


@register_analysis("curation")
def curation_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                      metrics: list[str] = METRICS, majority_key: str | None = None,
                      minority_key: str | None = None, stem: str = "curation") -> list[Path]:
    """Accuracy vs majority count at a fixed minority count (Fig. 16).

    Writes `<stem>.png` and table `<stem>`."""
    table = curation_curve(results, metrics, majority_key, minority_key)
    if table.groupby("minority_count")["majority_count"].nunique().max() < 2:
        raise UserError("no minority count was trained with several majority counts")
    shown = mean_se_frame(table, ["minority_count", "majority_count", "train_ratio"],
                          table.attrs["metrics"])
    md = markdown_table(shown, 3, caption="Fixed minority count, growing majority count: "
                                          "mean ± standard error over seeds.")
    return [plot_curation(table, out_dir, stem), *write_table(table, out_dir, stem, md)]
