"""Helpers every analysis shares: columns of a results table, mean ± standard error over
seeds, method and dataset labels, and writing tables (Parquet + Markdown) and figures (PNG).

Statistics used throughout (paper: "error bars represent one standard error over 5 trials"):

    mean = sum(x) / n,   se = std(x, ddof=1) / sqrt(n)   (NaN for n < 2)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from imbtrain.analysis.sensitivity import _column, _finished
from imbtrain.errors import UserError

# Config keys that together name a "method" of the paper (Tables 1, 4, 5): the baseline
# method, then the paper's own knobs. A row's label joins the values that are not "off".
METHOD_KEYS = ("method", "sam", "ssl", "smoothing")
OFF_VALUES = ("none", "erm", "", None)


# ================================================================ columns


def column(results: pd.DataFrame, key: str) -> str:
    """The column of config key `key`: `config/<key>` (results.parquet) or `<key>`."""
    return _column(results, key)


def has_column(results: pd.DataFrame, key: str) -> bool:
    return f"config/{key}" in results.columns or key in results.columns


def finished(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Trials that finished (status TERMINATED when the column exists) with `metric` set."""
    return _finished(results, metric)


def require_metrics(results: pd.DataFrame, metrics: Iterable[str]) -> None:
    missing = [m for m in metrics if m not in results.columns]
    if missing:
        have = sorted(c for c in results.columns if not str(c).startswith(("config/", "best/")))
        raise UserError(f"the results have no metric {', '.join(missing)}; metrics: "
                        f"{', '.join(map(str, have[:20]))}")


def config_frame(results: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The config columns `keys` under their bare names (`config/seed` -> `seed`)."""
    return pd.DataFrame({k: results[column(results, k)].to_numpy() for k in keys},
                        index=results.index)


def varying(results: pd.DataFrame, keys: Iterable[str]) -> list[str]:
    """The keys among `keys` whose column exists and takes more than one value."""
    return [k for k in keys if has_column(results, k) and results[column(results, k)].nunique(
        dropna=False) > 1]


# ================================================================ labels


def method_labels(results: pd.DataFrame, keys: str | Sequence[str] = METHOD_KEYS) -> pd.Series:
    """One label a row naming its method, e.g. "erm", "ldam_drw", "sam_a + vicreg".

    `keys` a string: that column's values as they are (a study may store its own label).
    `keys` a sequence: the values of those config keys that are not off ("none", "erm"),
    joined by " + " (smoothing as "<value> smoothing"); "erm" when all are off.
    """
    if isinstance(keys, str):
        return results[column(results, keys)].astype(str)
    present = [k for k in keys if has_column(results, k)]
    if not present:
        raise UserError(f"the results have none of the method columns {', '.join(keys)}")
    frame = config_frame(results, present)

    def label(row) -> str:
        parts = [f"{v} smoothing" if k == "smoothing" else str(v)
                 for k, v in row.items() if v not in OFF_VALUES]
        return " + ".join(parts) or "erm"

    return frame.apply(label, axis=1).rename("method")


def dataset_labels(results: pd.DataFrame) -> pd.Series:
    """The dataset of each row; an on-disk folder dataset (imagefolder, tabular) is named by
    its tabular preset or its folder (`imagefolder/isic`), so ISIC and APTOS stay apart."""
    names = results[column(results, "dataset")].astype(str)
    generic = names.isin(["imagefolder", "tabular"])
    if has_column(results, "data_dir"):
        folder = results[column(results, "data_dir")].fillna("").astype(str).map(
            lambda d: Path(d.rstrip("/")).stem if d else "")
        names = names.where(~generic | (folder == ""), names + "/" + folder)
    if has_column(results, "tabular_preset"):  # the preset names it better than its file
        preset = results[column(results, "tabular_preset")].astype(str)
        base = results[column(results, "dataset")].astype(str)
        names = names.where(preset.isin(["none", ""]), base + "/" + preset)
    return names.rename("dataset")


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Optimiser steps in an epoch of the training loop (`imbtrain.train`): the batches of
    the shuffled train set, a trailing batch of a single sample dropped (BatchNorm needs two).

        >>> steps_per_epoch(1120, 128), steps_per_epoch(1121, 16), steps_per_epoch(1122, 16)
        (9, 70, 71)
    """
    return int(train_size) // int(batch_size) + int(int(train_size) % int(batch_size) > 1)


# ================================================================ statistics


def mean_se(values: Iterable[float]) -> tuple[float, float, int]:
    """(mean, standard error std(ddof=1) / sqrt(n), n) of the non-NaN values; se NaN for
    n < 2, mean NaN for n = 0."""
    x = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(x.mean()), se, n


def summarise(df: pd.DataFrame, by: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Per group of `by`: n (rows of the group) and, per value column v, `v` (mean) and
    `v_se` (standard error over the group's rows, e.g. over seeds)."""
    rows = []
    for key, part in df.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        row["n"] = len(part)
        for v in values:
            row[v], row[f"{v}_se"], _ = mean_se(part[v])
        rows.append(row)
    cols = [*by, "n", *[c for v in values for c in (v, f"{v}_se")]]
    return pd.DataFrame(rows, columns=cols)


def pearson(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(Pearson r, two-sided p-value) with scipy.stats.pearsonr; NaN for fewer than 2
    points or a constant input."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    from scipy.stats import pearsonr

    res = pearsonr(x, y)
    return float(res.statistic), float(res.pvalue)


def slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares line y = a x + b: (a, b) = (cov(x, y) / var(x), mean(y) - a mean(x));
    NaN for fewer than 2 points or a constant x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan
    dx = x - x.mean()
    a = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    return a, float(y.mean() - a * x.mean())


# ================================================================ output


def fmt(value: float, digits: int = 3) -> str:
    """A number for a Markdown cell: as is when it has at most 6 significant digits (a
    ratio 0.001, a count 2656.25), else to `digits` decimals; "–" for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float | np.floating):
        short = f"{value:.6g}"
        return short if float(short) == value and "e" not in short else f"{value:.{digits}f}"
    return str(value)


def fmt_mean_se(mean: float, se: float, digits: int = 3) -> str:
    """`mean ± se`, or `mean` alone when se is NaN (one seed)."""
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" if pd.isna(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def markdown_table(df: pd.DataFrame, digits: int = 3, caption: str = "") -> str:
    """A pipe table of `df` (floats to `digits` places, NaN as "–"), then `caption`."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    lines = [head, "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v, digits) for v in row) + " |")
    if caption:
        lines += ["", caption]
    return "\n".join(lines) + "\n"


def mean_se_frame(table: pd.DataFrame, keys: Sequence[str], values: Sequence[str],
                  digits: int = 3) -> pd.DataFrame:
    """`table` (from `summarise`) for Markdown: the key columns, n, and a `mean ± se` cell
    per value."""
    out = table[list(keys)].copy()
    if "n" in table.columns:
        out["n"] = table["n"]
    for v in values:
        out[v] = [fmt_mean_se(m, s, digits) for m, s in zip(table[v], table[f"{v}_se"],
                                                              strict=True)]
    return out


def write_table(table: pd.DataFrame, out_dir: str | Path, stem: str, markdown: str) -> list[Path]:
    """`<stem>.parquet` (the numbers) and `<stem>.md` (`markdown`) in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pq, md = out / f"{stem}.parquet", out / f"{stem}.md"
    plain = table.copy()
    plain.attrs = {}  # attrs hold Python objects for plots; Parquet metadata wants JSON
    plain.to_parquet(pq, index=False)
    md.write_text(markdown)
    return [pq, md]


def figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 4.0)):
    """A matplotlib figure on the Agg backend (no display needed): (fig, axes array)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    return fig, axes


def save_figure(fig, out_dir: str | Path, stem: str, title: str = "") -> Path:
    """Write `fig` as `<stem>.png` in `out_dir` and close it."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(out_dir) / f"{stem}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ratio_axis(ax, ratios: Iterable[float], axis: str = "x") -> None:
    """A log axis of train (or test) ratios, ticked at the ratios themselves."""
    ticks = sorted(set(float(r) for r in ratios))
    if axis == "x":
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    else:
        ax.set_yscale("log")
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
