"""Imbalance sensitivity (paper Section 3.1, Fig. 1 and A.1 Fig. 5): how much a knob's value
changes a metric relative to a baseline value of the knob, at each train ratio.

For train ratio r, seed s and knob value b, with acc the metric of that trial:

    change(b, r, s) = (acc(b, r, s) - acc(base, r, s)) / acc(base, r, s) * 100

As docs/methods.md ("Analyses") says, the paper's eq. (1) divides by acc_b; imbtrain divides by
the baseline's accuracy, so the change is "percent improvement over the baseline", as the
paper's text reads. The change is paired by seed (same train ratio, same seed, only the knob
differs), then averaged over seeds: mean and standard error `std(ddof=1) / sqrt(n)` (NaN for n
= 1).

    >>> import pandas as pd
    >>> results = pd.DataFrame({
    ...     "config/batch_size": [128, 16, 128, 16], "config/train_ratio": [0.1] * 4,
    ...     "config/seed": [0, 0, 1, 1], "test_acc": [0.5, 0.6, 0.4, 0.5]})
    >>> t = sensitivity_curve(results, "batch_size", baseline=128)
    >>> t[["batch_size", "n", "pct_change", "pct_change_se"]].round(2).values.tolist()
    [[16.0, 2.0, 22.5, 2.5], [128.0, 2.0, 0.0, 0.0]]

Pure functions of a results table (results.parquet), so they run on any finished study.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

COLUMNS = ("train_ratio", "n", "pct_change", "pct_change_se", "metric_mean", "group", "steps")


def _column(results: pd.DataFrame, key: str) -> str:
    """The results column of a config key: `config/<key>` (results.parquet) or `<key>`."""
    for col in (f"config/{key}", key):
        if col in results.columns:
            return col
    raise UserError(f"the results have no column config/{key} (or {key}); "
                    f"columns: {', '.join(map(str, results.columns[:12]))}, ...")


def _finished(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in results.columns:
        raise UserError(f"the results have no metric {metric!r}")
    ok = results[metric].notna()
    if "status" in results.columns:
        ok &= results["status"] == "TERMINATED"
    return results[ok]


def paired_changes(results: pd.DataFrame, knob: str, baseline, metric: str = "test_acc"):
    """One row a (train ratio, seed, knob value): the metric and its percent change over
    the baseline value's metric at the same train ratio and seed. Pairs whose baseline
    trial is missing (failed, or stopped early) are dropped."""
    kcol, rcol, scol = _column(results, knob), _column(results, "train_ratio"), _column(
        results, "seed")
    df = _finished(results, metric)[[rcol, scol, kcol, metric]]
    df.columns = ["train_ratio", "seed", knob, "metric"]
    if not (df[knob] == baseline).any():
        raise UserError(f"no finished trial has the baseline {knob}={baseline}; values: "
                        f"{', '.join(map(str, sorted(df[knob].unique())))}")
    # Several trials of one (ratio, seed, value), e.g. sampled knobs: their mean.
    df = df.groupby(["train_ratio", "seed", knob], as_index=False)["metric"].mean()
    base = df[df[knob] == baseline][["train_ratio", "seed", "metric"]]
    df = df.merge(base.rename(columns={"metric": "base"}), on=["train_ratio", "seed"])
    df["pct_change"] = (df["metric"] - df["base"]) / df["base"] * 100.0
    return df


def sensitivity_curve(results: pd.DataFrame, knob: str, baseline,
                      metric: str = "test_acc") -> pd.DataFrame:
    """Mean and standard error over seeds of the percent change of `metric` over the
    baseline knob value, per train ratio and knob value (formula in the module docstring).

    Columns: train_ratio, <knob>, n (seeds), pct_change (mean), pct_change_se (standard
    error, NaN for n = 1), metric_mean (the metric's own mean). Sorted by train ratio
    (balanced first) then knob value. `attrs` records knob, baseline and metric for the plot.
    """
    df = paired_changes(results, knob, baseline, metric)
    g = df.groupby(["train_ratio", knob])
    table = g.agg(n=("pct_change", "size"), pct_change=("pct_change", "mean"),
                  pct_change_std=("pct_change", lambda x: x.std(ddof=1)),
                  metric_mean=("metric", "mean")).reset_index()
    table["pct_change_se"] = table["pct_change_std"] / np.sqrt(table["n"])
    table.loc[table["n"] < 2, "pct_change_se"] = math.nan
    table["n"] = table["n"].astype(int)
    table = table[["train_ratio", knob, "n", "pct_change", "pct_change_se", "metric_mean"]]
    table = table.sort_values(["train_ratio", knob], ascending=[False, True],
                              ignore_index=True)
    table.attrs.update(knob=knob, baseline=baseline, metric=metric)
    return table


def trial_steps(results: pd.DataFrame) -> pd.Series:
    """Optimiser steps each trial took: epochs run x `steps_per_epoch` of its train set
    (`train_counts`) and batch size; NaN where the results lack them."""
    from imbtrain.analysis.common import steps_per_epoch

    need = ("train_counts", "config/batch_size")
    epochs = next((c for c in ("epochs_run", "config/epochs") if c in results.columns), None)
    if epochs is None or not all(c in results.columns for c in need):
        return pd.Series(math.nan, index=results.index)
    return pd.Series([float(e) * steps_per_epoch(int(np.sum(c)), b) for e, c, b in zip(
        results[epochs], results["train_counts"], results["config/batch_size"], strict=True)],
        index=results.index)


def grouped_sensitivity(results: pd.DataFrame, knob: str, baseline,
                        groups: dict[str, list[str]], metric: str = "test_acc") -> pd.DataFrame:
    """`sensitivity_curve` within each group of variants (`groups`: a name -> the names of
    its variants, results' `variant` column), stacked with the group's name in `group` and
    the trials' mean optimiser steps in `steps` (`trial_steps`). A variant may sit in
    several groups: the batch-size study's baseline is the anchor of both its comparisons,
    fixed epochs and fixed steps.

        >>> results = pd.DataFrame({"variant": ["a128", "a16", "s16"] * 2,
        ...     "config/batch_size": [128, 16, 16] * 2, "config/epochs": [8, 8, 1] * 2,
        ...     "config/train_ratio": [1.0] * 6, "config/seed": [0, 0, 0, 1, 1, 1],
        ...     "train_counts": [[1000, 1000, 48]] * 6,
        ...     "test_acc": [0.8, 0.9, 0.7, 0.8, 0.88, 0.72]})
        >>> t = grouped_sensitivity(results, "batch_size", 128,
        ...                         {"epochs": ["a16", "a128"], "steps": ["s16", "a128"]})
        >>> for row in t[["group", "batch_size", "pct_change", "steps"]].round(2).values:
        ...     print(*row)
        epochs 16 11.25 1024.0
        epochs 128 0.0 128.0
        steps 16 -11.25 128.0
        steps 128 0.0 128.0
    """
    if "variant" not in results.columns:
        raise UserError("groups need the results' variant column (a study with variants)")
    parts = []
    for name, variants in groups.items():
        unknown = sorted(set(variants) - set(results["variant"].dropna()))
        if unknown:
            raise UserError(f"group {name}: no trial of variant(s) {', '.join(unknown)}; "
                            f"variants: {', '.join(sorted(results['variant'].dropna().unique()))}")
        part = results[results["variant"].isin(list(variants))]
        table = sensitivity_curve(part, knob, baseline, metric)
        ok = _finished(part, metric)
        steps = pd.DataFrame({"train_ratio": ok[_column(ok, "train_ratio")].to_numpy(),
                              knob: ok[_column(ok, knob)].to_numpy(),
                              "steps": trial_steps(ok).to_numpy()})
        steps = steps.groupby(["train_ratio", knob], as_index=False)["steps"].mean()
        parts.append(table.merge(steps, on=["train_ratio", knob], how="left").assign(
            group=name))
    out = pd.concat(parts, ignore_index=True)
    out = out[["group", *[c for c in out.columns if c != "group"]]]
    out.attrs.update(knob=knob, baseline=baseline, metric=metric, groups=list(groups))
    return out


def _knob_of(table: pd.DataFrame) -> str:
    return table.attrs.get("knob") or next(c for c in table.columns if c not in COLUMNS)


def plot_sensitivity(table: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """PNG of a sensitivity table, two panels with error bars (± standard error):
    left, the paper's Fig. 1: percent change vs knob value, one line per train ratio;
    right, the same numbers vs train ratio, one line per knob value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    knob = _knob_of(table)
    metric, baseline = table.attrs.get("metric", "metric"), table.attrs.get("baseline")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    # Categorical knobs (augment, pretrained, sam) sit at evenly spaced positions.
    numeric = _is_numeric(table[knob])
    values = sorted(table[knob].unique(), key=lambda v: (v != baseline, v) if not numeric else v)
    shown = table if numeric else table.assign(**{knob: table[knob].map(
        {v: i for i, v in enumerate(values)})})
    _panel(left, shown, x=knob, line="train_ratio", label="train ratio {}")
    _panel(right, table, x="train_ratio", line=knob, label=f"{knob} {{}}")
    for ax, xlabel in ((left, knob), (right, "train ratio (n_min / n_max)")):
        ax.axhline(0.0, color="grey", lw=0.8, ls="--")
        if ax is right or numeric:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"% change of {metric} over {knob}={baseline}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ticks = values if numeric else list(range(len(values)))
    left.set_xticks(ticks, [_fmt(t) for t in values])
    ratios = sorted(table["train_ratio"].unique())
    right.set_xticks(ratios, [f"{r:g}" for r in ratios])
    for ax in (left, right):
        ax.minorticks_off()
    return _save(fig, path, title or f"Sensitivity of {metric} to {knob} (mean ± s.e. over "
                 "seeds)")


def plot_grouped_sensitivity(table: pd.DataFrame, path: str | Path,
                             title: str | None = None) -> Path:
    """`plot_sensitivity` of a `grouped_sensitivity` table: a row of its two panels a group,
    the group's name in each panel's title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    knob = _knob_of(table)
    metric, baseline = table.attrs.get("metric", "metric"), table.attrs.get("baseline")
    names = table.attrs.get("groups") or list(dict.fromkeys(table["group"]))
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 4.0 * len(names)), squeeze=False)
    for (left, right), name in zip(axes, names, strict=True):
        part = table[table["group"] == name]
        _panel(left, part, x=knob, line="train_ratio", label="train ratio {}")
        _panel(right, part, x="train_ratio", line=knob, label=f"{knob} {{}}")
        for ax, xlabel in ((left, knob), (right, "train ratio (n_min / n_max)")):
            ax.axhline(0.0, color="grey", lw=0.8, ls="--")
            ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"% change of {metric} over {knob}={baseline}")
            ax.set_title(name.replace("_", " "), fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            ax.minorticks_off()
        values = sorted(part[knob].unique())
        left.set_xticks(values, [_fmt(v) for v in values])
        ratios = sorted(part["train_ratio"].unique())
        right.set_xticks(ratios, [f"{r:g}" for r in ratios])
    return _save(fig, path, title or f"Sensitivity of {metric} to {knob} (mean ± s.e. over "
                 "seeds)")


def _save(fig, path: str | Path, title: str) -> Path:
    """Both sensitivity plots' end: the title, then the PNG at `path` (the figure closed)."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path



def grouped_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """`sensitivity_markdown` of each group of a `grouped_sensitivity` table, under the
    group's name, each cell with the mean optimiser steps of its trials."""
    knob = _knob_of(table)
    names = table.attrs.get("groups") or list(dict.fromkeys(table["group"]))
    blocks = []
    for name in names:
        part = table[table["group"] == name]
        ratios = sorted(part["train_ratio"].unique(), reverse=True)
        n = {r: int(part.loc[part["train_ratio"] == r, "n"].max()) for r in ratios}
        lines = [f"{name.replace('_', ' ')}:", "",
                 f"| {knob} | " + " | ".join(f"r = {r:g} (n = {n[r]})" for r in ratios) + " |",
                 "|" + "---|" * (len(ratios) + 1)]
        for value in sorted(part[knob].unique()):
            cells = []
            for r in ratios:
                row = part[(part["train_ratio"] == r) & (part[knob] == value)]
                steps = "" if row.empty or pd.isna(row["steps"].iloc[0]) else (
                    f" ({row['steps'].iloc[0]:.0f} steps)")
                cells.append(_cell(row, digits) + steps)
            lines.append(f"| {_fmt(value)} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    metric, baseline = table.attrs.get("metric", "metric"), table.attrs.get("baseline")
    return ("\n\n".join(blocks) + f"\n\nPercent change of {metric} over {knob} = {baseline} "
            "at the same train ratio and seed, within each comparison; mean ± standard error "
            "over seeds; optimiser steps a trial in brackets.\n")


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _fmt(value) -> str:
    """A knob value for a label: numbers as `:g`, anything else (a policy name) as is."""
    return f"{value:g}" if isinstance(value, int | float | np.number) and not isinstance(
        value, bool) else str(value)


def _panel(ax, table: pd.DataFrame, x: str, line: str, label: str) -> None:
    for value, part in table.groupby(line, sort=True):
        part = part.sort_values(x)
        ax.errorbar(part[x], part["pct_change"], yerr=part["pct_change_se"].fillna(0.0),
                    marker="o", capsize=3, label=label.format(_fmt(value)))


def sensitivity_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A markdown table: one row a knob value, one column a train ratio, cells
    `mean ± se` of the percent change (n seeds in the header)."""
    knob = _knob_of(table)
    ratios = sorted(table["train_ratio"].unique(), reverse=True)
    n = {r: int(table.loc[table["train_ratio"] == r, "n"].max()) for r in ratios}
    head = f"| {knob} | " + " | ".join(f"r = {r:g} (n = {n[r]})" for r in ratios) + " |"
    lines = [head, "|" + "---|" * (len(ratios) + 1)]
    for value in sorted(table[knob].unique()):
        cells = []
        for r in ratios:
            row = table[(table["train_ratio"] == r) & (table[knob] == value)]
            cells.append(_cell(row, digits))
        lines.append(f"| {_fmt(value)} | " + " | ".join(cells) + " |")
    metric, baseline = table.attrs.get("metric", "metric"), table.attrs.get("baseline")
    lines.append("")
    lines.append(f"Percent change of {metric} over {knob} = {baseline} at the same train ratio "
                 "and seed; mean ± standard error over seeds.")
    return "\n".join(lines) + "\n"


def _cell(row: pd.DataFrame, digits: int) -> str:
    if row.empty:
        return "–"
    mean, se = float(row["pct_change"].iloc[0]), float(row["pct_change_se"].iloc[0])
    text = f"{mean:+.{digits}f}"
    return text if math.isnan(se) else f"{text} ± {se:.{digits}f}"


# ================================================================ registry (imbtrain analyze)

# Config keys that vary in every study without being the knob under study.
_AXES = ("train_ratio", "seed", "data_seed", "test_ratio")


def _only_knob(results: pd.DataFrame) -> str:
    knobs = [c.removeprefix("config/") for c in results.columns
             if str(c).startswith("config/") and c.removeprefix("config/") not in _AXES
             and results[c].nunique(dropna=False) > 1]
    if len(knobs) != 1:
        raise UserError(f"say which knob (option knob); the config keys that vary: "
                        f"{', '.join(knobs) or 'none'}")
    return knobs[0]


def _off_value(results: pd.DataFrame, knob: str):
    values = list(results[_column(results, knob)].dropna().unique())
    for off in ("none", "erm"):
        if off in values:
            return off
    raise UserError(f"say which value of {knob} is the baseline (option baseline); values: "
                    f"{', '.join(map(str, sorted(values, key=str)))}")


@register_analysis("sensitivity")
def sensitivity_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                         knob: str | None = None, baseline=None, metric: str = "test_acc",
                         title: str | None = None, stem: str = "sensitivity",
                         groups: dict[str, list[str]] | None = None) -> list[Path]:
    """Percent change over a baseline knob value per train ratio (Fig. 1, 4, 5, 10).

    Writes `sensitivity_curve` as `<stem>.png`, `.md`, `.parquet`; with `groups` (a name ->
    variants: comparisons within one study, e.g. fixed epochs and fixed steps), the
    `grouped_sensitivity` table, a row of panels a group.

    `knob` defaults to the one config key that varies besides train ratio and seeds;
    `baseline` to its "off" value ("none", "erm") when it has one.
    """
    knob = knob or _only_knob(results)
    baseline = _off_value(results, knob) if baseline is None else baseline
    out = Path(out_dir)
    md = out / f"{stem}.md"
    if groups:
        table = grouped_sensitivity(results, knob, baseline, groups, metric)
        png = plot_grouped_sensitivity(table, out / f"{stem}.png", title)
        md.write_text(grouped_markdown(table))
    else:
        table = sensitivity_curve(results, knob, baseline, metric)
        png = plot_sensitivity(table, out / f"{stem}.png", title)
        md.write_text(sensitivity_markdown(table))
    pq = out / f"{stem}.parquet"
    plain = table.copy()
    plain.attrs = {}
    plain.to_parquet(pq, index=False)
    return [png, md, pq]
