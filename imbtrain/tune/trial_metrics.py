"""Extra final metrics a trial computes from its trained model (`trial_metrics:` in a space).

Some analyses need a number that only the trained model can give and the training loop does
not report: the decision-boundary study's minority margin (paper Fig. 18) is measured on the
model's decision regions. A search space names them,

    trial_metrics: [minority_margin]

and each trial, once `train()` has returned, computes them in its worker from the final
(EMA, when on) model and its data, and reports them with its final metrics, so they become
results.parquet columns like any metric. Each is one small function registered by name:

    @register_trial_metric("param_count")
    def param_count(result, data) -> dict[str, float]: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TrialMetric = Callable[[Any, Any], dict[str, float]]
TRIAL_METRICS: dict[str, TrialMetric] = {}


def register_trial_metric(name: str) -> Callable[[TrialMetric], TrialMetric]:
    """Register `fn(result: TrainResult, data: ImbalancedData) -> {column: value}`."""

    def decorator(fn: TrialMetric) -> TrialMetric:
        if name in TRIAL_METRICS:
            raise ValueError(f"trial metric {name!r} is registered twice")
        TRIAL_METRICS[name] = fn
        return fn

    return decorator


def compute_trial_metrics(names, result, data) -> dict[str, float]:
    """The metrics `names` of a finished trial (its TrainResult and data), merged."""
    out: dict[str, float] = {}
    for name in names:
        out.update(TRIAL_METRICS[name](result, data))
    return out


@register_trial_metric("minority_margin")
def minority_margin(result, data) -> dict[str, float]:
    """Mean distance from the minority training points to the decision boundary (2-D inputs
    only; `imbtrain.analysis.boundary.minority_margin`, paper Fig. 18), and the share of
    those points the model classifies correctly (`minority_train_acc`): a point swallowed by
    a majority region is also far from any boundary, so the margin speaks of widened
    minority regions only where that share holds up."""
    import torch

    from imbtrain.analysis.boundary import MARGIN, minority_points, predict
    from imbtrain.analysis.boundary import minority_margin as margin
    from imbtrain.errors import UserError
    from imbtrain.metrics import minority_classes

    if tuple(data.input_shape) != (2,):
        raise UserError(f"trial metric minority_margin needs 2-D inputs (toy2d); "
                        f"{data.name} has shape {tuple(data.input_shape)}")
    counts = list(result.train_counts)
    points = minority_points(data.train_x, data.train_y, counts)
    labels = data.train_y[torch.isin(data.train_y, torch.tensor(minority_classes(counts)))]
    correct = (predict(result.model, points) == labels).float().mean().item()
    return {MARGIN: margin(result.model, points), "minority_train_acc": correct}


@register_trial_metric("param_count")
def param_count(result, data) -> dict[str, float]:
    """Parameters of the model (architecture study, paper Fig. 3 left)."""
    from imbtrain.models import count_parameters

    return {"param_count": float(count_parameters(result.model))}
