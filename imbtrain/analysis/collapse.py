"""The neural-collapse table (paper Section 5, Table 4).

Per method, the mean ± standard error over seeds of the collapse measures each trial
reports (`imbtrain.metrics.neural_collapse`, docs/methods.md, "Metrics"):

- `cdnv`: (sigma_i^2 + sigma_j^2) / (2 ||mu_i - mu_j||^2) averaged over class pairs,
- `cdnv_minority`: the same over the pairs that involve a minority class,
- `ncc_acc_minority_train`: nearest-class-centre accuracy on minority training samples,
- `ncc_acc_test`: nearest-class-centre accuracy on the test set,

and the test accuracy. Low CDNV and high NCC accuracy on minority training samples mean
collapse; the paper finds it goes with lower test accuracy, so the table also gives, across
methods, the Pearson r of each measure with the test accuracy.

    >>> import pandas as pd
    >>> results = pd.DataFrame({"config/method": ["erm", "erm", "focal"],
    ...     "config/seed": [0, 1, 0], "cdnv": [0.4, 0.5, 0.3],
    ...     "cdnv_minority": [0.2, 0.3, 0.1], "ncc_acc_minority_train": [0.9, 1.0, 0.8],
    ...     "ncc_acc_test": [0.7, 0.8, 0.6], "test_acc": [0.8, 0.9, 0.7]})
    >>> collapse_table(results)[["method", "n", "cdnv"]].values.tolist()
    [['erm', 2, 0.45], ['focal', 1, 0.3]]
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imbtrain.analysis.common import (
    METHOD_KEYS,
    column,
    figure,
    finished,
    has_column,
    markdown_table,
    mean_se_frame,
    method_labels,
    pearson,
    require_metrics,
    save_figure,
    summarise,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

MEASURES = ("cdnv", "cdnv_minority", "ncc_acc_minority_train", "ncc_acc_test")


def _erm_first(table: pd.DataFrame, baseline: str = "erm") -> pd.DataFrame:
    order = table["method"].map(lambda m: (m != baseline, m))
    return table.iloc[sorted(range(len(table)), key=lambda i: order.iloc[i])].reset_index(
        drop=True)


def collapse_table(results: pd.DataFrame, measures=MEASURES, metric: str = "test_acc",
                   method_keys=METHOD_KEYS, train_ratio: float | None = None) -> pd.DataFrame:
    """One row a method (ERM first): n (seeds), and per measure and `metric` its mean and
    `<name>_se`. attrs["correlation"]: {measure: Pearson r with `metric` across methods}.

    Table 4 is at one train ratio: `train_ratio`, by default the smallest of the study.
    """
    names = [*measures, metric]
    require_metrics(results, names)
    ok = finished(results, measures[0])
    if has_column(ok, "train_ratio"):
        ratios = ok[column(ok, "train_ratio")].astype(float)
        train_ratio = float(ratios.min()) if train_ratio is None else float(train_ratio)
        if not (ratios == train_ratio).any():
            raise UserError(f"no finished trial at train ratio {train_ratio:g}; ratios: "
                            f"{', '.join(f'{r:g}' for r in sorted(ratios.unique()))}")
        ok = ok[ratios == train_ratio]
    df = ok[names].astype(float).assign(method=method_labels(ok, method_keys).to_numpy())
    table = _erm_first(summarise(df, ["method"], names))
    table.attrs.update(measures=list(measures), metric=metric, train_ratio=train_ratio,
                       correlation={m: pearson(table[m], table[metric])[0] for m in measures})
    return table


def plot_collapse(table: pd.DataFrame, out_dir: str | Path, stem: str = "collapse") -> Path:
    """One bar panel a measure and one for the metric, a bar a method, ± s.e."""
    names = [*table.attrs["measures"], table.attrs["metric"]]
    fig, axes = figure(ncols=len(names), size=(3.6, 4.0))
    for ax, name in zip(axes[0], names, strict=True):
        ax.bar(range(len(table)), table[name], yerr=table[f"{name}_se"].fillna(0.0), capsize=3,
               color=[f"C{i}" for i in range(len(table))])
        ax.set_xticks(range(len(table)), table["method"], rotation=45, ha="right", fontsize=8)
        r = table.attrs["correlation"].get(name)
        ax.set_title(name if r is None else f"{name}\n(r with {names[-1]}: {r:.2f})",
                     fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, out_dir, stem, "Neural collapse per method (mean ± s.e. over seeds)")


@register_analysis("collapse")
def collapse_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                      measures: list[str] = MEASURES, metric: str = "test_acc",
                      method_keys: str | list[str] = METHOD_KEYS,
                      train_ratio: float | None = None, stem: str = "collapse") -> list[Path]:
    """Neural-collapse measures per method, mean ± se (Table 4).

    Writes `<stem>.png` and table `<stem>`."""
    table = collapse_table(results, tuple(measures), metric, method_keys, train_ratio)
    if len(table) < 2:
        raise UserError(f"the study has a single method ({table['method'].iloc[0]}); "
                        "nothing to compare")
    corr = "; ".join(f"{m}: {r:.3f}" for m, r in table.attrs["correlation"].items())
    ratio = table.attrs["train_ratio"]
    at = "" if ratio is None else f"Train ratio {ratio:g}. "
    md = markdown_table(mean_se_frame(table, ["method"], [*measures, metric]),
                        caption=f"{at}Mean ± standard error over seeds. Pearson r across "
                                f"methods with {metric}: {corr}.")
    return [plot_collapse(table, out_dir, stem), *write_table(table, out_dir, stem, md)]
