"""Method comparison with paired tests against ERM (beyond the paper; Tables 1, 2, 5 style).

Per method (and per dataset / train ratio when they vary), each metric's mean ± standard
error over seeds, and a paired test of the method against the baseline (ERM) on the seeds
both ran: with d_s = metric(method, s) - metric(ERM, s) over the n paired seeds,

    t = mean(d) / (std(d, ddof=1) / sqrt(n)),  df = n - 1,  p two-sided
    (scipy.stats.ttest_rel; p NaN when n < 2 or every d_s is equal, up to rounding)

reported as `<metric>_diff` (mean d), `<metric>_p` and `<metric>_pairs` (n). Several trials
of one method and seed (e.g. sampled knobs) count as their mean. Methods are labelled by
`common.method_labels` ("erm", "ldam_drw", "sam_a + vicreg", ...).

    >>> import pandas as pd
    >>> results = pd.DataFrame({"config/method": ["erm"] * 3 + ["focal"] * 3,
    ...     "config/seed": [0, 1, 2] * 2, "test_acc": [0.5, 0.6, 0.7, 0.52, 0.64, 0.73]})
    >>> t = method_comparison(results, metrics=["test_acc"])
    >>> round(float(t.loc[1, "test_acc_p"]), 4)              # 1 - sqrt(27 / 29), see the tests
    0.0351
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from imbtrain.analysis.common import (
    METHOD_KEYS,
    column,
    dataset_labels,
    figure,
    finished,
    fmt_mean_se,
    has_column,
    markdown_table,
    method_labels,
    require_metrics,
    save_figure,
    summarise,
    varying,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

METRICS = ("test_acc", "test_bal_acc", "test_minority_acc", "test_majority_acc")


def paired_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    """(mean of a - b, two-sided p of the paired t-test, n pairs); p NaN for n < 2 or
    when the differences are all equal (up to float rounding)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    if n == 0:
        return math.nan, math.nan, 0
    d = a - b
    diff = float(d.mean())
    # No spread (float noise aside): the t statistic is 0/0 or a rounding artefact.
    if n < 2 or np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        return diff, math.nan, n
    from scipy.stats import ttest_rel

    with warnings.catch_warnings():  # all differences equal: t is undefined, p NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(ttest_rel(a, b).pvalue)
    return diff, p, n


def _frame(results: pd.DataFrame, metrics: list[str], method_keys, by) -> tuple[pd.DataFrame,
                                                                                  list[str]]:
    ok = finished(results, metrics[0])
    df = ok[metrics].astype(float).assign(method=method_labels(ok, method_keys).to_numpy(),
                                          seed=ok[column(ok, "seed")].to_numpy())
    if by is None:  # datasets by their labels: imagefolder/isic and imagefolder/aptos differ
        several = has_column(ok, "dataset") and dataset_labels(ok).nunique() > 1
        by = (["dataset"] if several else []) + varying(ok, ["train_ratio"])
    by = list(by)
    for key in by:
        df[key] = dataset_labels(ok).to_numpy() if key == "dataset" else ok[
            column(ok, key)].to_numpy()
    return df, by


def method_comparison(results: pd.DataFrame, metrics=METRICS, baseline: str = "erm",
                      method_keys=METHOD_KEYS, by: list[str] | None = None) -> pd.DataFrame:
    """One row a (by..., method), baseline first: n (seeds) and per metric m: `m`, `m_se`,
    `m_diff`, `m_p`, `m_pairs` (module formulas). `by` defaults to dataset and train ratio
    where they vary. Metrics the results lack are left out (an error when none is there)."""
    # Metrics the results lack are left out (e.g. test_few_acc of a binary problem).
    metrics = [m for m in metrics if m in results.columns] or list(metrics)
    require_metrics(results, metrics)
    df, by = _frame(results, metrics, method_keys, by)
    if not (df["method"] == baseline).any():
        raise UserError(f"no finished trial of the baseline method {baseline!r}; methods: "
                        f"{', '.join(sorted(df['method'].unique()))}")
    if df["method"].nunique() < 2:
        raise UserError(f"the study has a single method ({baseline}); nothing to compare")
    # Other knobs that vary (e.g. a sweep's batch sizes) are averaged over, per seed.
    per_seed = df.groupby([*by, "method", "seed"], as_index=False)[metrics].mean()
    table = summarise(per_seed, [*by, "method"], metrics)
    for m in metrics:
        tests = [paired_against(per_seed, row, by, m, baseline) for _, row in table.iterrows()]
        table[f"{m}_diff"], table[f"{m}_p"], table[f"{m}_pairs"] = (list(t) for t in zip(
            *tests, strict=True))
        table[f"{m}_pairs"] = table[f"{m}_pairs"].astype(int)
    table["is_baseline"] = table["method"] == baseline
    table = table.sort_values([*by, "is_baseline", "method"],
                              ascending=[True] * len(by) + [False, True], ignore_index=True)
    table = table.drop(columns="is_baseline")
    table.attrs.update(metrics=metrics, baseline=baseline, by=by)
    return table


def paired_against(per_seed: pd.DataFrame, row: pd.Series, by: list[str], metric: str,
                   baseline: str):
    """`paired_test` of the method of `row` against `baseline` on `metric`, over the seeds
    both ran at the row's values of `by` (per_seed: one row a method, seed and `by`)."""
    if row["method"] == baseline:
        return math.nan, math.nan, 0
    same = np.ones(len(per_seed), dtype=bool)
    for key in by:
        same &= (per_seed[key] == row[key]).to_numpy()
    part = per_seed[same]
    a = part[part["method"] == row["method"]].set_index("seed")[metric]
    b = part[part["method"] == baseline].set_index("seed")[metric]
    both = a.to_frame("a").join(b.to_frame("b"), how="inner")
    return paired_test(both["a"].to_numpy(), both["b"].to_numpy())


def comparison_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """`mean ± se` per metric, then `diff (p = ..., n = ...)` against the baseline."""
    metrics, baseline, by = table.attrs["metrics"], table.attrs["baseline"], table.attrs["by"]
    out = table[[*by, "method", "n"]].copy()
    for m in metrics:
        out[m] = [fmt_mean_se(a, s, digits) for a, s in zip(table[m], table[f"{m}_se"],
                                                            strict=True)]
        out[f"{m} vs {baseline}"] = [_vs(d, p, n, digits) for d, p, n in zip(
            table[f"{m}_diff"], table[f"{m}_p"], table[f"{m}_pairs"], strict=True)]
    caption = (f"Mean ± standard error over seeds; vs {baseline}: mean paired difference, "
               "two-sided paired t-test p-value (scipy.stats.ttest_rel) and the number of "
               "paired seeds.")
    return markdown_table(out, digits, caption)


def _vs(diff: float, p: float, n: int, digits: int) -> str:
    if n == 0:
        return "–"
    p_text = "–" if math.isnan(p) else f"{p:.3g}"
    return f"{diff:+.{digits}f} (p = {p_text}, n = {n})"


def plot_comparison(table: pd.DataFrame, out_dir: str | Path, stem: str = "comparison") -> Path:
    """One panel a metric: a bar a method (a group of bars a dataset / train ratio), ± s.e.;
    a star over the methods whose paired p < 0.05."""
    metrics, by = table.attrs["metrics"], table.attrs["by"]
    methods = list(dict.fromkeys(table["method"]))
    groups = (list(table.groupby(by, sort=False)) if by else [((), table)])
    width = 0.8 / len(groups)
    # Two panels a row: a row of six metrics x fourteen methods would be ~70 inches wide.
    ncols = min(2, len(metrics))
    fig, axes = figure(ncols=ncols, nrows=-(-len(metrics) // ncols),
                       size=(max(4.0, 0.45 * len(methods) + 2), 4.0))
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    for ax, m in zip(axes.ravel(), metrics, strict=False):
        for g, (key, part) in enumerate(groups):
            pos = [methods.index(x) + (g - (len(groups) - 1) / 2) * width for x in part["method"]]
            label = ", ".join(f"{k} {v}" for k, v in zip(by, np.atleast_1d(key), strict=False))
            ax.bar(pos, part[m], width, yerr=part[f"{m}_se"].fillna(0.0), capsize=2,
                   label=label or None)
            for x, v, p in zip(pos, part[m], part[f"{m}_p"], strict=True):
                if p < 0.05:
                    ax.annotate("*", (x, v), ha="center", fontsize=12)
        ax.set_xticks(range(len(methods)), methods, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(m)
        ax.grid(alpha=0.3, axis="y")
        if by:
            ax.legend(fontsize=7)
    return save_figure(fig, out_dir, stem, f"Methods vs {table.attrs['baseline']} "
                                           "(mean ± s.e.; * paired p < 0.05)")


@register_analysis("comparison")
def comparison_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                        metrics: list[str] = METRICS, baseline: str = "erm",
                        method_keys: str | list[str] = METHOD_KEYS, by: list[str] | None = None,
                        stem: str = "comparison") -> list[Path]:
    """Methods' mean ± se and paired t-tests against ERM (Tables 1, 2, 5 style).

    Writes `<stem>.png` and table `<stem>` (`method_comparison`)."""
    table = method_comparison(results, metrics, baseline, method_keys, by)
    return [plot_comparison(table, out_dir, stem),
            *write_table(table, out_dir, stem, comparison_markdown(table))]
