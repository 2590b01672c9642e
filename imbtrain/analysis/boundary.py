"""Decision boundaries on the 2-D toy problem (paper Section 5, Fig. 18; A.11).

The paper shows that ERM draws small margins around minority training points and SAM-A
widens them. The number, the **minority margin** (the mean distance from the minority
training points to the decision boundary), is a model probe of `imbtrain.metrics.probes`,
computed by each trial of a decision-boundary study (trial metric `minority_margin`); this
module tables it per method and draws the decision regions (Fig. 18).

    >>> results = pd.DataFrame({"config/sam": ["none", "none", "sam_a", "sam_a"],
    ...                         "minority_margin": [0.2, 0.4, 0.5, 0.7]})
    >>> print(margin_table(results).round(4).to_string(index=False))
    method  n  minority_margin  minority_margin_se
       erm  2              0.3                 0.1
     sam_a  2              0.6                 0.1
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from imbtrain.analysis.common import (
    METHOD_KEYS,
    figure,
    finished,
    markdown_table,
    mean_se_frame,
    method_labels,
    save_figure,
    summarise,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.metrics.probes import (  # noqa: F401  (re-exported: the analyses' probes)
    MARGIN,
    boundary_distances,
    minority_margin,
    minority_points,
    predict,
)

# ================================================================ pictures


def plot_decision_boundaries(models: dict[str, nn.Module], x: Tensor, y: Tensor,
                             out_dir: str | Path, train_counts=None,
                             margins: dict[str, float] | None = None,
                             resolution: int = 300, stem: str = "decision_boundary") -> Path:
    """Fig. 18: one panel a model (e.g. {"ERM": m1, "SAM-A": m2}), side by side: the
    predicted class over the plane, the training points on top, minority points ringed
    (when `train_counts` is given) and the minority margin in the title."""
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    lo, hi = x.min(dim=0).values - 0.5, x.max(dim=0).values + 0.5
    gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], resolution),
                            torch.linspace(lo[1], hi[1], resolution), indexing="xy")
    plane = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    k = int(y.max()) + 1 if len(y) else 2
    minority = minority_points(x, y, train_counts) if train_counts is not None else None
    fig, axes = figure(ncols=len(models), size=(4.6, 4.4))
    for ax, (name, model) in zip(axes[0], models.items(), strict=True):
        pred = predict(model, plane).reshape(resolution, resolution).numpy()
        ax.contourf(gx.numpy(), gy.numpy(), pred, levels=np.arange(k + 1) - 0.5,
                    cmap="Pastel1", vmin=-0.5, vmax=8.5)
        ax.contour(gx.numpy(), gy.numpy(), pred, levels=np.arange(k) + 0.5, colors="k",
                   linewidths=0.8)
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="Set1", vmin=0, vmax=8, s=6)
        if minority is not None and len(minority):
            ax.scatter(minority[:, 0], minority[:, 1], s=50, facecolors="none",
                       edgecolors="k", linewidths=1.0, label="minority")
            ax.legend(fontsize=8, loc="upper right")
        margin = (margins or {}).get(name)
        ax.set_title(name if margin is None else f"{name}: minority margin {margin:.3f}")
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, out_dir, stem, "Decision boundaries on toy2d")


# ================================================================ the table of margins


def margin_table(results: pd.DataFrame, method_keys=METHOD_KEYS) -> pd.DataFrame:
    """Per method (and train ratio): n (seeds), minority_margin mean and se; plus the test
    accuracy and minority accuracy when recorded."""
    ok = finished(results, MARGIN)
    extra = [m for m in ("test_acc", "test_minority_acc") if m in ok.columns]
    df = ok[[MARGIN, *extra]].astype(float).assign(method=method_labels(ok, method_keys)
                                                   .to_numpy())
    by = ["method"]
    for key in ("train_ratio",):
        col = f"config/{key}" if f"config/{key}" in ok.columns else key
        if col in ok.columns and ok[col].nunique() > 1:
            df[key] = ok[col].to_numpy()
            by.append(key)
    table = summarise(df, by, [MARGIN, *extra])
    table.attrs.update(values=[MARGIN, *extra], by=by)
    return table


def plot_margins(table: pd.DataFrame, out_dir: str | Path, stem: str) -> Path:
    fig, axes = figure(ncols=1, size=(5.0, 4.0))
    ax = axes[0, 0]
    labels = table[table.attrs["by"]].astype(str).agg(", ".join, axis=1)
    ax.bar(range(len(table)), table[MARGIN], yerr=table[f"{MARGIN}_se"].fillna(0.0), capsize=4,
           color=[f"C{i}" for i in range(len(table))])
    ax.set_xticks(range(len(table)), labels, rotation=30, ha="right")
    ax.set_ylabel("mean distance of minority points to the boundary")
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, out_dir, stem, "Minority margin (mean ± s.e. over seeds)")


@register_analysis("boundary")
def boundary_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                      method_keys: str | list[str] = METHOD_KEYS,
                      stem: str = "minority_margin") -> list[Path]:
    """Minority margin per method, mean ± se over seeds (Fig. 18's number).

    From a results table with a `minority_margin` column (the
    decision-boundary study computes it with `minority_margin`), the margin per method,
    mean ± se over seeds: `<stem>.png` and table `<stem>`. The pictures need the trained
    models, so the study draws them itself with `plot_decision_boundaries`."""
    table = margin_table(results, method_keys)
    md = markdown_table(mean_se_frame(table, table.attrs["by"], table.attrs["values"], 4), 4,
                        caption="Mean distance from minority training points to the decision "
                                "boundary (64 rays, bisection); mean ± standard error over "
                                "seeds.")
    return [plot_margins(table, out_dir, stem), *write_table(table, out_dir, stem, md)]
