"""Train/test ratio alignment (paper A.8.1, Fig. 11-15).

Trials cross train ratios r with test ratios t (the `test_ratio` key). With acc(r, t) the
metric's mean over seeds:

    best(t) = argmax_r acc(r, t)                 (Fig. 12, 13: best train ratio per test ratio)
    misalignment = mean_t |best(t) - t|          (Fig. 15; 0 when always aligned)

Ties go to the train ratio closest to t. Distances are on the ratio scale by default
(`scale="log"`: |log10 best(t) - log10 t|, decades apart). With `group` (e.g.
`synthetic_samples`, the training-set size), the misalignment is computed per value of it,
which is Fig. 15's curve. Fig. 11 / 14: the metric vs test ratio when training balanced
(r = 1), aligned (r = t, where the study has it) and at the best train ratio.

    >>> import pandas as pd
    >>> results = pd.DataFrame({"config/train_ratio": [1.0, 0.1, 1.0, 0.1],
    ...     "config/test_ratio": [1.0, 1.0, 0.1, 0.1], "config/seed": [0] * 4,
    ...     "test_acc": [0.9, 0.8, 0.7, 0.95]})
    >>> misalignment(best_train_ratios(alignment_table(results)))
    0.0
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
    markdown_table,
    mean_se_frame,
    ratio_axis,
    save_figure,
    summarise,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError


def alignment_table(results: pd.DataFrame, metric: str = "test_acc",
                    group: str | None = None) -> pd.DataFrame:
    """Per (group,) test ratio and train ratio: n (seeds), `<metric>` (mean), `<metric>_se`."""
    ok = finished(results, metric)
    keys = ([group] if group else []) + ["test_ratio", "train_ratio"]
    df = pd.DataFrame({k: ok[column(ok, k)].to_numpy() for k in keys})
    df[metric] = ok[metric].to_numpy(dtype=float)
    table = summarise(df, keys, [metric])
    table.attrs.update(metric=metric, group=group)
    return table


def best_train_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Per (group,) test ratio: best_train_ratio (highest mean metric, ties to the ratio
    closest to the test ratio), its metric and the distance |best - test|."""
    metric, group = table.attrs["metric"], table.attrs.get("group")
    keys = ([group] if group else []) + ["test_ratio"]
    rows = []
    for key, part in table.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        t = float(key[-1])
        top = part[part[metric] == part[metric].max()]
        best = top.iloc[int(np.argmin((top["train_ratio"] - t).abs().to_numpy()))]
        rows.append({**dict(zip(keys, key, strict=True)),
                     "best_train_ratio": float(best["train_ratio"]),
                     metric: float(best[metric]), f"{metric}_se": float(best[f"{metric}_se"]),
                     "distance": abs(float(best["train_ratio"]) - t),
                     "log10_distance": abs(math.log10(float(best["train_ratio"]) / t))})
    out = pd.DataFrame(rows)
    out.attrs.update(metric=metric, group=group)
    return out


def misalignment(best: pd.DataFrame, scale: str = "linear") -> float | pd.Series:
    """mean_t |best(t) - t| (module doc); per group value when the table has a group."""
    if scale not in ("linear", "log"):
        raise UserError(f"misalignment scale must be linear or log, got {scale!r}")
    col = "distance" if scale == "linear" else "log10_distance"
    group = best.attrs.get("group")
    if group:
        return best.groupby(group)[col].mean().rename("misalignment")
    return float(best[col].mean())


def _heatmap(ax, table: pd.DataFrame, best: pd.DataFrame, metric: str) -> None:
    grid = table.pivot(index="train_ratio", columns="test_ratio", values=metric)
    grid = grid.sort_index(ascending=False).sort_index(axis=1, ascending=False)
    im = ax.imshow(grid.to_numpy(), cmap="viridis", aspect="auto")
    ax.figure.colorbar(im, ax=ax, label=metric)
    ax.set_xticks(range(grid.shape[1]), [f"{t:g}" for t in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{r:g}" for r in grid.index])
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid.iloc[i, j]):
                ax.text(j, i, f"{grid.iloc[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white")
    for row in best.itertuples():
        i, j = list(grid.index).index(row.best_train_ratio), list(grid.columns).index(
            row.test_ratio)
        ax.add_patch(_box(i, j))
    ax.set_xlabel("test ratio")
    ax.set_ylabel("train ratio")
    ax.set_title("mean over seeds; box: best train ratio")


def _box(i: int, j: int):
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2)


def _scenarios(ax, table: pd.DataFrame, best: pd.DataFrame, metric: str) -> None:
    """Fig. 11: metric vs test ratio for balanced, aligned and best training."""
    top = table["train_ratio"].max()  # 1 (balanced) when the study has it
    balanced = table[table["train_ratio"] == top]
    aligned = table[np.isclose(table["train_ratio"], table["test_ratio"])]
    for name, part in ((f"train ratio {top:g}", balanced), ("train = test", aligned),
                       ("best train ratio", best)):
        if part.empty:
            continue
        part = part.sort_values("test_ratio")
        ax.errorbar(part["test_ratio"], part[metric], yerr=part[f"{metric}_se"].fillna(0.0),
                    marker="o", capsize=3, label=name)
    ratio_axis(ax, table["test_ratio"])
    ax.set_xlabel("test ratio")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def plot_alignment(table: pd.DataFrame, best: pd.DataFrame, out_dir: str | Path,
                   stem: str = "alignment", scale: str = "linear") -> Path:
    """Per group (one row each): the heat-map of the metric over train x test ratios with
    the best train ratio boxed (Fig. 11-13 style), the best train ratio vs the test ratio
    against the diagonal (Fig. 12), and the three training scenarios (Fig. 11); with a
    group, a last row of misalignment vs the group (Fig. 15)."""
    metric, group = table.attrs["metric"], table.attrs.get("group")
    parts = list(table.groupby(group)) if group else [(None, table)]
    rows = len(parts) + (1 if group else 0)
    fig, axes = figure(ncols=3, nrows=rows, size=(5.0, 4.2))
    for (value, part), ax in zip(parts, axes, strict=False):
        b = best[best[group] == value] if group else best
        _heatmap(ax[0], part, b, metric)
        ax[1].plot(b["test_ratio"], b["best_train_ratio"], "o-", label="best train ratio")
        lims = sorted(set(part["test_ratio"]) | set(part["train_ratio"]))
        ax[1].plot(lims, lims, color="grey", ls="--", label="aligned")
        ratio_axis(ax[1], lims)
        ratio_axis(ax[1], lims, axis="y")
        ax[1].set_xlabel("test ratio")
        ax[1].set_ylabel("best train ratio")
        ax[1].legend(fontsize=8)
        _scenarios(ax[2], part, b, metric)
        if group:
            ax[0].set_title(f"{group} = {value}")
    if group:
        mis = misalignment(best, scale)
        last = axes[-1]
        last[0].plot(mis.index, mis.to_numpy(), "o-")
        last[0].set_xlabel(group)
        last[0].set_ylabel(f"train/test misalignment ({scale})")
        for ax in last[1:]:
            ax.axis("off")
    return save_figure(fig, out_dir, stem, f"Train/test ratio alignment of {metric}")


@register_analysis("alignment")
def alignment_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                       metric: str = "test_acc", group: str | None = None,
                       scale: str = "linear", stem: str = "alignment") -> list[Path]:
    """Train/test ratio alignment and misalignment (A.8.1, Fig. 11-15).

    Writes `<stem>.png`; tables `<stem>` (the best train ratio per test ratio, and the
    misalignment) and `<stem>_grid` (every train x test ratio, mean ± se)."""
    table = alignment_table(results, metric, group)
    if table["test_ratio"].nunique() < 2 or table["train_ratio"].nunique() < 2:
        raise UserError("alignment needs several train ratios and several test ratios")
    best = best_train_ratios(table)
    mis = misalignment(best, scale)
    if group:
        text = "; ".join(f"{group} = {k}: {v:.4f}" for k, v in mis.items())
        out = best.merge(mis.reset_index(), on=group)
    else:
        text = f"{mis:.4f}"
        out = best.assign(misalignment=mis)
    dist = "|best - test|" if scale == "linear" else "|log10 best - log10 test|"
    md = markdown_table(out, 4, caption=f"Best train ratio (highest mean {metric} over seeds) "
                                         f"per test ratio. Misalignment, mean {dist}: {text}.")
    keys = ([group] if group else []) + ["test_ratio", "train_ratio"]
    md_grid = markdown_table(mean_se_frame(table, keys, [metric]),
                             caption=f"{metric}: mean ± standard error over seeds.")
    return [plot_alignment(table, best, out_dir, stem, scale),
            *write_table(out, out_dir, stem, md),
            *write_table(table, out_dir, f"{stem}_grid", md_grid)]
