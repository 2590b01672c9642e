"""A knob swept for several groups against a reference group (SAM-A's rho, smoothing's eps,
Joint-SSL's lambda; paper Section 3.2, A.5-A.7).

The studies of the paper's own methods sweep one knob (`sam_rho`, `smoothing_eps`,
`ssl_lambda`) for several forms of a method (SAM, SAM-A inverse, SAM-A paper_eq: the study's
variants) and compare each with a reference (ERM: the variant without the method). Per
(train ratio,) group g and knob value v, each metric's mean ± standard error over seeds,
and a paired test against the reference group at the same train ratio, knob value and seed
(`comparison.paired_against`: mean difference d, two-sided paired t-test p, number of pairs):

    <m>, <m>_se, <m>_diff, <m>_p, <m>_pairs

The reference group ignores the knob (ERM has no rho), so its trials at every knob value are
the same run; its curve is flat.

    >>> import pandas as pd
    >>> results = pd.DataFrame({"variant": ["erm", "sam", "erm", "sam"],
    ...     "config/sam_rho": [0.1, 0.1, 0.1, 0.1], "config/seed": [0, 0, 1, 1],
    ...     "test_acc": [0.5, 0.6, 0.7, 0.7]})
    >>> t = sweep_table(results, "sam_rho", metrics=["test_acc"], reference="erm")
    >>> t[["group", "test_acc", "test_acc_diff", "test_acc_pairs"]].round(4).values.tolist()
    [['erm', 0.6, nan, 0], ['sam', 0.65, 0.05, 2]]
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
    require_metrics,
    save_figure,
    summarise,
    varying,
    write_table,
)
from imbtrain.analysis.comparison import paired_against
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

METRICS = ("test_acc", "test_minority_acc")


def sweep_table(results: pd.DataFrame, knob: str, metrics=METRICS, group: str = "variant",
                reference: str | None = None) -> pd.DataFrame:
    """One row a (train ratio where it varies,) group and knob value, reference first: n
    (seeds), per metric m its mean `m`, `m_se` and, against `reference`, `m_diff`, `m_p`,
    `m_pairs` (module formulas). `group` is a column (a config key or `variant`)."""
    metrics = [m for m in metrics if m in results.columns] or list(metrics)
    require_metrics(results, metrics)
    ok = finished(results, metrics[0])
    by = varying(ok, ["train_ratio"])
    keys = [*by, "group", knob]
    df = ok[metrics].astype(float).assign(
        group=ok[column(ok, group)].astype(str).to_numpy(),
        seed=ok[column(ok, "seed")].to_numpy(),
        **{k: ok[column(ok, k)].to_numpy() for k in [*by, knob]})
    if reference is not None and not (df["group"] == reference).any():
        raise UserError(f"no finished trial of the reference {group} {reference!r}; "
                        f"{group}s: {', '.join(sorted(df['group'].unique()))}")
    per_seed = df.groupby([*keys, "seed"], as_index=False)[metrics].mean()
    table = summarise(per_seed, keys, metrics)
    for m in metrics:
        tests = [(math.nan, math.nan, 0) if reference is None or row["group"] == reference
                 else paired_against(per_seed.rename(columns={"group": "method"}),
                                     row.rename({"group": "method"}), [*by, knob], m,
                                     reference) for _, row in table.iterrows()]
        table[f"{m}_diff"], table[f"{m}_p"], table[f"{m}_pairs"] = (list(t) for t in zip(
            *tests, strict=True))
        table[f"{m}_pairs"] = table[f"{m}_pairs"].astype(int)
    table["is_reference"] = table["group"] == reference
    table = table.sort_values([*by, "is_reference", "group", knob],
                              ascending=[True] * len(by) + [False, True, True],
                              ignore_index=True).drop(columns="is_reference")
    table.attrs.update(knob=knob, metrics=metrics, reference=reference, by=by, group=group)
    return table


def sweep_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """`mean ± se` per metric and `diff (p, n)` against the reference."""
    knob, metrics, ref = table.attrs["knob"], table.attrs["metrics"], table.attrs["reference"]
    out = table[[*table.attrs["by"], "group", knob, "n"]].copy()
    for m in metrics:
        out[m] = [fmt_mean_se(a, s, digits) for a, s in zip(table[m], table[f"{m}_se"],
                                                            strict=True)]
        if ref is not None:
            out[f"{m} vs {ref}"] = [
                "–" if n == 0 else f"{d:+.{digits}f} (p = "
                f"{'–' if math.isnan(p) else f'{p:.3g}'}, n = {n})"
                for d, p, n in zip(table[f"{m}_diff"], table[f"{m}_p"], table[f"{m}_pairs"],
                                   strict=True)]
    caption = ("Mean ± standard error over seeds" + (
        f"; vs {ref}: mean paired difference at the same {knob} and seed, two-sided paired "
        "t-test p-value and the number of pairs." if ref is not None else "."))
    return markdown_table(out, digits, caption)


def plot_sweep(table: pd.DataFrame, out_dir: str | Path, stem: str = "sweep") -> Path:
    """One panel a metric (and train ratio): the metric vs the knob, a line a group, ± s.e.;
    the reference group dashed."""
    knob, metrics, ref, by = (table.attrs[k] for k in ("knob", "metrics", "reference", "by"))
    parts = list(table.groupby(by, sort=True)) if by else [((), table)]
    fig, axes = figure(ncols=len(metrics), nrows=len(parts), size=(5.0, 4.0))
    for row, (key, part) in zip(axes, parts, strict=True):
        for ax, m in zip(row, metrics, strict=True):
            for g, line in part.groupby("group", sort=False):
                line = line.sort_values(knob)
                ax.errorbar(line[knob], line[m], yerr=line[f"{m}_se"].fillna(0.0), capsize=3,
                            marker="o", ls="--" if g == ref else "-", label=g)
            values = pd.to_numeric(part[knob], errors="coerce")
            if values.notna().all() and (values > 0).all() and values.nunique() > 2:
                ax.set_xscale("log")
                ax.set_xticks(sorted(values.unique()), [f"{v:g}" for v in sorted(
                    values.unique())])
                ax.minorticks_off()
            at = ", ".join(f"{k} {v:g}" for k, v in zip(by, np.atleast_1d(key), strict=False))
            ax.set_title(f"{m}" + (f" ({at})" if at else ""), fontsize=10)
            ax.set_xlabel(knob)
            ax.set_ylabel(m)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    return save_figure(fig, out_dir, stem, f"Sweep of {knob} (mean ± s.e. over seeds)")


@register_analysis("sweep")
def sweep_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                   knob: str, metrics: list[str] = METRICS, group: str = "variant",
                   reference: str | None = None, stem: str = "sweep") -> list[Path]:
    """A knob per variant against a reference variant (A.5-A.7).

    SAM-A's rho, smoothing's eps, Joint-SSL's lambda. Writes `<stem>.png` and table
    `<stem>` (`sweep_table`)."""
    table = sweep_table(results, knob, metrics, group, reference)
    return [plot_sweep(table, out_dir, stem),
            *write_table(table, out_dir, stem, sweep_markdown(table))]
