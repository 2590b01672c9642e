"""Cross-dataset correlation of methods (paper Section 5, Table 3).

Per dataset d and method m, the mean metric over seeds, acc(d, m). For each pair of datasets
(x, y), across the methods run on both:

    Pearson r of (acc(x, m), acc(y, m))_m       (scipy.stats.pearsonr)
    slope a of the least-squares line acc(y, m) = a * acc(x, m) + b
          a = sum_m (x_m - mean x)(y_m - mean y) / sum_m (x_m - mean x)^2

The paper finds r = 0.03..0.19 and slopes about 0.04 between CIFAR-10 (r = 0.01; x) and
ISIC, APTOS, EuroSAT (y). A method is the label of `common.method_labels` (e.g. "ldam_drw",
"sam_a + vicreg"); a dataset that of `common.dataset_labels` (imagefolder/isic).

    >>> import pandas as pd
    >>> results = pd.DataFrame({"config/dataset": ["a"] * 3 + ["b"] * 3,
    ...     "config/method": ["erm", "focal", "drw"] * 2, "config/seed": [0] * 6,
    ...     "test_acc": [0.1, 0.2, 0.3, 0.5, 0.7, 0.6]})
    >>> t = cross_dataset_correlation(results)
    >>> t[["x", "y", "n_methods", "pearson_r", "slope"]].round(4).values.tolist()
    [['a', 'b', 3, 0.5, 0.5]]
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd

from imbtrain.analysis.common import (
    METHOD_KEYS,
    dataset_labels,
    figure,
    finished,
    markdown_table,
    method_labels,
    pearson,
    save_figure,
    slope,
    summarise,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

COLUMNS = ("x", "y", "n_methods", "pearson_r", "p_value", "slope", "intercept")


def method_means(results: pd.DataFrame, metric: str = "test_acc",
                 method_keys=METHOD_KEYS) -> pd.DataFrame:
    """Per dataset and method: n (seeds), `<metric>` (mean) and `<metric>_se`."""
    ok = finished(results, metric)
    df = pd.DataFrame({"dataset": dataset_labels(ok), "method": method_labels(ok, method_keys),
                       metric: ok[metric].astype(float)})
    table = summarise(df, ["dataset", "method"], [metric])
    table.attrs["metric"] = metric
    return table


def cross_dataset_correlation(results: pd.DataFrame, metric: str = "test_acc",
                              reference: str | None = None,
                              method_keys=METHOD_KEYS) -> pd.DataFrame:
    """One row a dataset pair (x, y): columns x, y, n_methods, pearson_r, p_value, slope,
    intercept (module formulas). `reference`: only the pairs (reference, other), as in
    Table 3; else every pair, x before y in name order."""
    means = method_means(results, metric, method_keys)
    wide = means.pivot(index="method", columns="dataset", values=metric)
    datasets = sorted(wide.columns)
    if len(datasets) < 2:
        raise UserError(f"cross-dataset correlation needs two datasets; the results have "
                        f"{', '.join(datasets) or 'none'}")
    if reference is not None and reference not in datasets:
        raise UserError(f"reference dataset {reference!r} is not in the results: "
                        f"{', '.join(datasets)}")
    pairs = ([(reference, d) for d in datasets if d != reference] if reference
             else list(combinations(datasets, 2)))
    rows = []
    for x, y in pairs:
        both = wide[[x, y]].dropna()
        r, p = pearson(both[x], both[y])
        a, b = slope(both[x], both[y])
        rows.append(dict(zip(COLUMNS, (x, y, len(both), r, p, a, b), strict=True)))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table.attrs.update(metric=metric, means=means)
    return table


def plot_correlation(table: pd.DataFrame, out_dir: str | Path,
                     stem: str = "cross_dataset") -> Path:
    """One scatter a dataset pair: each method's mean metric on x vs y, with the fitted
    line and r, slope in the title."""
    metric, means = table.attrs["metric"], table.attrs["means"]
    wide = means.pivot(index="method", columns="dataset", values=metric)
    n = max(len(table), 1)
    ncols = min(n, 3)
    fig, axes = figure(ncols=ncols, nrows=-(-n // ncols), size=(4.5, 4.0))
    flat = axes.ravel()
    for ax, row in zip(flat, table.itertuples(), strict=False):
        both = wide[[row.x, row.y]].dropna()
        ax.scatter(both[row.x], both[row.y])
        for method, (vx, vy) in both.iterrows():
            ax.annotate(method, (vx, vy), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if len(both) >= 2 and row.slope == row.slope:
            xs = [both[row.x].min(), both[row.x].max()]
            ax.plot(xs, [row.slope * v + row.intercept for v in xs], color="grey", ls="--")
        ax.set_xlabel(f"{metric} on {row.x}")
        ax.set_ylabel(f"{metric} on {row.y}")
        ax.set_title(f"r = {row.pearson_r:.2f}, slope = {row.slope:.2f}", fontsize=10)
        ax.grid(alpha=0.3)
    for ax in flat[len(table):]:
        ax.axis("off")
    return save_figure(fig, out_dir, stem, "Methods across datasets (mean over seeds)")


@register_analysis("correlation")
def correlation_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                         metric: str = "test_acc", reference: str | None = None,
                         method_keys: str | list[str] = METHOD_KEYS,
                         stem: str = "cross_dataset") -> list[Path]:
    """Cross-dataset Pearson r and slope of methods' accuracies (Table 3).

    Writes `<stem>.png`, table `<stem>` (one row a dataset pair) and `<stem>_means` (per
    dataset and method, mean ± se)."""
    table = cross_dataset_correlation(results, metric, reference, method_keys)
    means = table.attrs["means"]
    md = markdown_table(table, caption=f"Across methods: Pearson r (p-value) and least-squares "
                        f"slope of the mean {metric} on y against that on x.")
    md_means = markdown_table(means, caption=f"{metric} per dataset and method: mean and "
                                             "standard error over seeds.")
    return [plot_correlation(table, out_dir, stem), *write_table(table, out_dir, stem, md),
            *write_table(means, out_dir, f"{stem}_means", md_means)]
