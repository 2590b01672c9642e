"""Architectures under imbalance (paper Section 3.1, Fig. 3; A.3, Fig. 8, 9).

Per architecture a and train ratio r, the metric's mean ± standard error over seeds. Then:

- Fig. 3 right: across architectures, the mean accuracy on the balanced training set
  (r = 1) against that on an imbalanced one (default: the smallest ratio of the study), and
  their Pearson correlation (scipy.stats.pearsonr; the paper finds 0.14 on CIFAR-100);
- Fig. 3 left: accuracy (the paper: minority-class accuracy) against parameter count, one
  line per train ratio. The count is the results' `param_count` column when the study
  recorded one, else counted by building the model on the meta device
  (`imbtrain.models.create_model`, `count_parameters`) for its input shape and classes.

An architecture is the `model` key, with `model_width` / `model_depth` when they vary
(e.g. "mlp w256 d3").

    >>> import pandas as pd
    >>> results = pd.DataFrame({"config/model": ["a", "a", "b", "b", "c", "c"],
    ...     "config/train_ratio": [1.0, 0.1] * 3, "config/seed": [0] * 6,
    ...     "param_count": [10, 10, 20, 20, 30, 30],
    ...     "test_acc": [0.6, 0.3, 0.7, 0.5, 0.8, 0.4]})
    >>> round(architecture_correlation(architecture_table(results))["pearson_r"], 4)
    0.5
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from imbtrain.analysis.common import (
    column,
    config_frame,
    figure,
    finished,
    has_column,
    markdown_table,
    pearson,
    save_figure,
    summarise,
    varying,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

# Input shapes of the registered datasets (a study may pass `input_shape` for others).
INPUT_SHAPES = {"digits": (1, 8, 8), "mnist5k": (1, 28, 28), "toy2d": (2,),
                "cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "cinic10": (3, 32, 32),
                "tiny_imagenet": (3, 64, 64), "imagefolder": (3, 64, 64)}
NUM_CLASSES = {"digits": 10, "mnist5k": 10, "toy2d": 3, "cifar10": 10, "cifar100": 100,
               "cinic10": 10, "tiny_imagenet": 200}


def architecture_labels(results: pd.DataFrame) -> pd.Series:
    """`model`, with " w<width>" / " d<depth>" when `model_width` / `model_depth` vary (and
    are set: 0 is the model's own default, so "cnn", not "cnn w0 d0")."""
    labels = results[column(results, "model")].astype(str)
    for key, tag in (("model_width", "w"), ("model_depth", "d")):
        if key in varying(results, [key]):
            values = results[column(results, key)]
            labels = labels + values.map(lambda v, t=tag: f" {t}{int(v)}" if v else "")
    return labels.rename("architecture")


def parameter_count(model: str, input_shape: tuple[int, ...], num_classes: int,
                    **kwargs) -> int:
    """Parameters of `create_model(model, input_shape, num_classes, **kwargs)`, built on
    the meta device so that no memory is allocated."""
    import torch

    from imbtrain.models import count_parameters, create_model

    with torch.device("meta"):
        net = create_model(model, tuple(input_shape), int(num_classes), **kwargs)
    return int(count_parameters(net))


def _row_shape(row: pd.Series, input_shape) -> tuple[int, ...]:
    if input_shape is not None:
        return tuple(int(d) for d in input_shape)
    dataset = str(row.get("dataset"))
    if dataset == "synthetic":
        from imbtrain.data.embedded import parse_shape

        return parse_shape(row.get("synthetic_shape", "3x16x16"))
    size = int(row.get("image_size") or 0)
    if size and dataset in ("imagefolder", "tiny_imagenet"):
        return (3, size, size)
    if dataset not in INPUT_SHAPES:
        raise UserError(f"cannot tell the input shape of dataset {dataset}; give option "
                        "input_shape (e.g. [3, 32, 32]) or a param_count column")
    return INPUT_SHAPES[dataset]


def _row_classes(row: pd.Series, counts, num_classes) -> int:
    if num_classes is not None:
        return int(num_classes)
    if counts is not None and len(counts):
        return len(counts)
    if str(row.get("dataset")) == "synthetic":
        return int(row.get("synthetic_classes", 10))
    if str(row.get("dataset")) not in NUM_CLASSES:
        raise UserError("cannot tell the number of classes; give option num_classes")
    return NUM_CLASSES[str(row.get("dataset"))]


def param_counts(results: pd.DataFrame, input_shape=None, num_classes=None) -> pd.Series:
    """Each row's parameter count: the `param_count` column, else counted (module doc)."""
    if "param_count" in results.columns:
        return results["param_count"].astype(float)
    keys = [k for k in ("model", "dataset", "synthetic_shape", "synthetic_classes",
                        "image_size", "model_width", "model_depth", "model_dropout")
            if has_column(results, k)]
    cfg = config_frame(results, keys)
    counts = results["train_counts"] if "train_counts" in results.columns else [None] * len(cfg)
    cache: dict[tuple, int] = {}
    out = []
    for (_, row), tc in zip(cfg.iterrows(), counts, strict=True):
        shape, k = _row_shape(row, input_shape), _row_classes(row, tc, num_classes)
        extra = {name: row[key] for key, name in (("model_width", "width"),
                 ("model_depth", "depth")) if key in row and row[key]}
        key = (row["model"], shape, k, tuple(sorted(extra.items())))
        if key not in cache:
            cache[key] = parameter_count(row["model"], shape, k, **extra)
        out.append(float(cache[key]))
    return pd.Series(out, index=results.index, name="param_count")


def architecture_table(results: pd.DataFrame, metric: str = "test_acc",
                       input_shape=None, num_classes=None) -> pd.DataFrame:
    """Per architecture and train ratio: param_count, n (seeds), `<metric>` (mean) and
    `<metric>_se` (standard error over seeds). Sorted by parameter count."""
    ok = finished(results, metric)
    df = pd.DataFrame({"architecture": architecture_labels(ok),
                       "train_ratio": ok[column(ok, "train_ratio")].astype(float),
                       "param_count": param_counts(ok, input_shape, num_classes),
                       metric: ok[metric].astype(float)})
    table = summarise(df, ["architecture", "train_ratio", "param_count"], [metric])
    table = table.sort_values(["param_count", "architecture", "train_ratio"],
                              ascending=[True, True, False], ignore_index=True)
    table.attrs["metric"] = metric
    return table


def architecture_correlation(table: pd.DataFrame, balanced_ratio: float = 1.0,
                             imbalanced_ratio: float | None = None) -> dict:
    """Across architectures: Pearson r (and p) of the mean metric at `balanced_ratio` vs
    at `imbalanced_ratio` (default the smallest ratio), and the paired table itself."""
    metric = table.attrs.get("metric") or table.columns[4]
    ratios = sorted(table["train_ratio"].unique())
    imbalanced_ratio = ratios[0] if imbalanced_ratio is None else imbalanced_ratio
    if balanced_ratio not in ratios or imbalanced_ratio not in ratios:
        have = ", ".join(f"{r:g}" for r in ratios)
        raise UserError(f"architecture correlation needs train ratios {balanced_ratio:g} and "
                        f"{imbalanced_ratio:g}; the study has {have}")
    if balanced_ratio == imbalanced_ratio:
        raise UserError("the study has a single train ratio; nothing to correlate")

    def at(r: float) -> pd.DataFrame:
        part = table[table["train_ratio"] == r].set_index("architecture")
        return part[[metric, f"{metric}_se", "n", "param_count"]]

    pairs = at(balanced_ratio).join(at(imbalanced_ratio), lsuffix="_balanced",
                                    rsuffix="_imbalanced", how="inner")
    r, p = pearson(pairs[f"{metric}_balanced"], pairs[f"{metric}_imbalanced"])
    return {"pearson_r": r, "p_value": p, "n_architectures": len(pairs),
            "balanced_ratio": float(balanced_ratio), "imbalanced_ratio": float(imbalanced_ratio),
            "pairs": pairs.reset_index()}


def plot_architecture(table: pd.DataFrame, size_table: pd.DataFrame, corr: dict,
                      out_dir: str | Path, stem: str = "architecture") -> Path:
    """Fig. 3: left, `size_table`'s metric vs parameter count per train ratio; right,
    balanced vs imbalanced mean metric per architecture with the Pearson r."""
    metric, size_metric = table.attrs["metric"], size_table.attrs["metric"]
    fig, axes = figure(ncols=2, size=(5.5, 4.5))
    left, right = axes[0]
    for r, part in size_table.groupby("train_ratio"):
        part = part.sort_values("param_count")
        left.errorbar(part["param_count"], part[size_metric],
                      yerr=part[f"{size_metric}_se"].fillna(0.0), marker="o", capsize=3,
                      label=f"train ratio {r:g}")
    left.set_xscale("log")
    left.set_xlabel("parameters")
    left.set_ylabel(size_metric)
    left.legend(fontsize=8)
    pairs = corr["pairs"]
    right.errorbar(pairs[f"{metric}_balanced"], pairs[f"{metric}_imbalanced"],
                   xerr=pairs[f"{metric}_se_balanced"].fillna(0.0),
                   yerr=pairs[f"{metric}_se_imbalanced"].fillna(0.0), fmt="o", capsize=3)
    for row in pairs.itertuples():
        right.annotate(row.architecture, (getattr(row, f"{metric}_balanced"),
                                          getattr(row, f"{metric}_imbalanced")),
                       fontsize=7, xytext=(3, 3), textcoords="offset points")
    right.set_xlabel(f"{metric}, train ratio {corr['balanced_ratio']:g}")
    right.set_ylabel(f"{metric}, train ratio {corr['imbalanced_ratio']:g}")
    right.set_title(f"Pearson r = {corr['pearson_r']:.2f} ({corr['n_architectures']} "
                    "architectures)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return save_figure(fig, out_dir, stem, "Architectures on balanced vs imbalanced data "
                                           "(mean ± s.e. over seeds)")


def architecture_markdown(table: pd.DataFrame, corr: dict, digits: int = 3) -> str:
    """One row an architecture: parameters, then `mean ± se (n)` per train ratio; the
    Pearson r under it."""
    metric = table.attrs["metric"]
    ratios = sorted(table["train_ratio"].unique(), reverse=True)
    rows = []
    for (arch, params), part in table.groupby(["architecture", "param_count"], sort=False):
        row = {"architecture": arch, "parameters": f"{int(params):,}"}
        for r in ratios:
            cell = part[part["train_ratio"] == r]
            row[f"r = {r:g}"] = "–" if cell.empty else _cell(cell.iloc[0], metric, digits)
        rows.append(row)
    r = corr["pearson_r"]
    caption = (f"{metric}, mean ± standard error over seeds (n seeds). Pearson correlation "
               f"across {corr['n_architectures']} architectures between train ratio "
               f"{corr['balanced_ratio']:g} and {corr['imbalanced_ratio']:g}: "
               f"r = {r:.3f} (p = {corr['p_value']:.3g}).")
    return markdown_table(pd.DataFrame(rows), digits, caption)


def _cell(row: pd.Series, metric: str, digits: int) -> str:
    mean, se, n = row[metric], row[f"{metric}_se"], int(row["n"])
    text = f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"
    return f"{text} ({n})"


@register_analysis("architecture")
def architecture_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                          metric: str = "test_acc", size_metric: str = "test_minority_acc",
                          balanced_ratio: float = 1.0, imbalanced_ratio: float | None = None,
                          input_shape: list[int] | None = None, num_classes: int | None = None,
                          stem: str = "architecture") -> list[Path]:
    """Balanced vs imbalanced accuracy across architectures, and vs size (Fig. 3, 8, 9).

    Writes `<stem>.png`, table `<stem>` (per architecture and train ratio) and
    `<stem>_correlation` (the balanced/imbalanced pairs and Pearson r)."""
    table = architecture_table(results, metric, input_shape, num_classes)
    if table["architecture"].nunique() < 2:
        raise UserError("the study has a single architecture; nothing to compare")
    size_metric = size_metric if size_metric in results.columns else metric
    size_table = table if size_metric == metric else architecture_table(
        results, size_metric, input_shape, num_classes)
    corr = architecture_correlation(table, balanced_ratio, imbalanced_ratio)
    pairs = corr["pairs"].assign(pearson_r=corr["pearson_r"], p_value=corr["p_value"])
    md_pairs = markdown_table(pairs, caption=f"Pearson r = {corr['pearson_r']:.3f}, "
                                             f"p = {corr['p_value']:.3g}")
    return [plot_architecture(table, size_table, corr, out_dir, stem),
            *write_table(table, out_dir, stem, architecture_markdown(table, corr)),
            *write_table(pairs, out_dir, f"{stem}_correlation", md_pairs)]
