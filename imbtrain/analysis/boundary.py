"""Decision boundaries on the 2-D toy problem (paper Section 5, Fig. 18; A.11).

The paper shows that ERM draws small margins around minority training points and SAM-A
widens them. imbtrain measures it: the **minority margin** is the mean, over the minority
training points p, of the distance from p to the decision boundary, i.e. to the nearest
input whose predicted class differs from p's own.

Method (`boundary_distances`): from each point, `directions` rays at angles 2 pi j / D
(j = 0..D-1; default 64). Along each ray, a scan of `steps` equal steps up to `max_radius`
finds the first step whose predicted class differs from that at p; bisection (`iters`
halvings) between the last unchanged and the first changed step pins the crossing. A
point's distance is the smallest crossing over its rays. Accuracy: the true distance d is
reached along the boundary's normal, and the nearest ray is at most pi / D off it, so for a
straight boundary the estimate lies in [d, d / cos(pi / D)] (within 0.12% for D = 64), plus
the bisection's max_radius / steps / 2^iters. Regions thinner than max_radius / steps along
a ray can be missed; a ray that meets no boundary within max_radius counts as max_radius
(so the margin is then a lower bound).

A linear boundary checks it by hand: logits (0, x1 - 1) put class 1 right of x1 = 1, so
the origin lies 1 away:

    >>> import torch
    >>> head = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = head.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    ...     _ = head.bias.copy_(torch.tensor([0.0, -1.0]))
    >>> round(minority_margin(head, torch.zeros(1, 2)), 4)
    1.0
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

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

if TYPE_CHECKING:
    from torch import Tensor, nn

MARGIN = "minority_margin"  # the results column a decision-boundary study records


def predict(model: nn.Module, x: Tensor, batch: int = 65536) -> Tensor:
    """Predicted classes (N,) of points x (N, 2), in eval mode, in batches."""
    import torch

    model.eval()
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        out = [model(x[i:i + batch].to(device, dtype)).argmax(dim=1).cpu()
               for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def boundary_distances(model: nn.Module, points: Tensor, directions: int = 64,
                       max_radius: float = 5.0, steps: int = 256,
                       iters: int = 30) -> np.ndarray:
    """Distance (N,) from each point (N, 2) to the decision boundary (module doc)."""
    import torch

    p = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)
    if len(p) == 0:
        return np.zeros(0)
    if len(p) > 64:  # the scan holds N x D x S points: go 64 points at a time
        return np.concatenate([boundary_distances(model, p[i:i + 64], directions, max_radius,
                                                  steps, iters) for i in range(0, len(p), 64)])
    n = len(p)
    angles = torch.arange(directions, dtype=torch.float32) * (2 * math.pi / directions)
    u = torch.stack([angles.cos(), angles.sin()], dim=1)                 # (D, 2)
    own = predict(model, p)                                               # (N,)
    ts = torch.linspace(max_radius / steps, max_radius, steps)            # (S,)
    grid = p[:, None, None, :] + ts[None, None, :, None] * u[None, :, None, :]
    changed = (predict(model, grid.reshape(-1, 2)).reshape(n, directions, steps)
               != own[:, None, None])                                     # (N, D, S)
    hit = changed.any(dim=2)
    first = changed.float().argmax(dim=2)                                 # first changed step
    hi = ts[first]
    lo = torch.where(first > 0, ts[(first - 1).clamp(min=0)], torch.zeros_like(hi))
    origin, ray, cls = p[:, None, :].expand(n, directions, 2), u[None].expand(n, -1, -1), \
        own[:, None].expand(n, directions)
    for _ in range(iters):
        mid = (lo + hi) / 2
        moved = predict(model, (origin + mid[..., None] * ray).reshape(-1, 2)).reshape(
            n, directions) != cls
        hi, lo = torch.where(moved, mid, hi), torch.where(moved, lo, mid)
    dist = torch.where(hit, hi, torch.full_like(hi, max_radius))
    return dist.min(dim=1).values.double().numpy()


def minority_margin(model: nn.Module, points: Tensor, directions: int = 64,
                    max_radius: float = 5.0, steps: int = 256, iters: int = 30) -> float:
    """Mean distance from `points` (the minority training points, (N, 2)) to the decision
    boundary of `model` (an ImbModel on inputs (2,), or any module x -> logits)."""
    d = boundary_distances(model, points, directions, max_radius, steps, iters)
    return float(d.mean()) if len(d) else math.nan


def minority_points(x: Tensor, y: Tensor, train_counts) -> Tensor:
    """The training points of the minority classes (`imbtrain.metrics.minority_classes`)."""
    import torch

    from imbtrain.metrics import minority_classes

    keep = torch.isin(torch.as_tensor(y), torch.tensor(minority_classes(list(train_counts))))
    return torch.as_tensor(x)[keep]


# ================================================================ pictures


def plot_decision_boundaries(models: dict[str, nn.Module], x: Tensor, y: Tensor,
                             out_dir: str | Path, train_counts=None,
                             margins: dict[str, float] | None = None,
                             resolution: int = 300, stem: str = "decision_boundary") -> Path:
    """Fig. 18: one panel a model (e.g. {"ERM": m1, "SAM-A": m2}), side by side: the
    predicted class over the plane, the training points on top, minority points ringed
    (when `train_counts` is given) and the minority margin in the title."""
    import torch

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
