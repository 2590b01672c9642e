"""Trial-level metrics: numbers only the trained model can give, computed after `train()`.

Some analyses need a number the training loop does not report: the decision-boundary study's
minority margin (paper Fig. 18) is measured on the model's decision regions, the
architecture study's parameter count on the model itself. A search space names them,

    trial_metrics: [minority_margin]

and each trial, once `train()` has returned, computes them in its worker from the final
(EMA, when on) model and its data, and reports them with its final metrics, so they become
results.parquet columns like any metric. Each is one small function registered by name in
`imbtrain.registry.TRIAL_METRICS`:

    @register_trial_metric("param_count")
    def param_count(result, data) -> dict[str, float]: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from imbtrain.errors import UserError
from imbtrain.metrics.probes import (
    MARGIN,
    input_margins,
    minority_margin,
    minority_points,
    predict,
)
from imbtrain.metrics.split import minority_classes
from imbtrain.models import count_parameters
from imbtrain.registry import TRIAL_METRICS

TrialMetric = Callable[[Any, Any], dict[str, float]]

register_trial_metric = TRIAL_METRICS.register
"""`@register_trial_metric(name)` on `fn(result: TrainResult, data: ImbalancedData) ->
{column: value}`."""


def compute_trial_metrics(names: Iterable[str], result, data) -> dict[str, float]:
    """The metrics `names` of a finished trial (its TrainResult and data), merged."""
    out: dict[str, float] = {}
    for name in names:
        out.update(TRIAL_METRICS.get(name)(result, data))
    return out


@register_trial_metric("minority_margin")
def minority_margin_metric(result, data) -> dict[str, float]:
    """Mean distance from the minority training points to the decision boundary (2-D inputs
    only; `imbtrain.metrics.probes.minority_margin`, paper Fig. 18), and the share of those
    points the model classifies correctly (`minority_train_acc`): a point swallowed by a
    majority region is also far from any boundary, so the margin speaks of widened minority
    regions only where that share holds up."""
    if tuple(data.input_shape) != (2,):
        raise UserError(f"trial metric minority_margin needs 2-D inputs (toy2d); "
                        f"{data.name} has shape {tuple(data.input_shape)}")
    counts = list(result.train_counts)
    points = minority_points(data.train_x, data.train_y, counts)
    labels = data.train_y[torch.isin(data.train_y, torch.tensor(minority_classes(counts)))]
    correct = (predict(result.model, points) == labels).float().mean().item()
    return {MARGIN: minority_margin(result.model, points), "minority_train_acc": correct}


@register_trial_metric("param_count")
def param_count(result, data) -> dict[str, float]:
    """Parameters of the model (architecture study, paper Fig. 3 left)."""
    return {"param_count": float(count_parameters(result.model))}


@register_trial_metric("minority_input_margin")
def minority_input_margin(result, data) -> dict[str, float]:
    """Margins of the minority classes' samples (`imbtrain.metrics.minority_classes`) for any
    input shape, images included (`imbtrain.metrics.probes.input_margins`): the mean
    first-order distance to the decision boundary of the minority training samples
    (`minority_input_margin`: the counterpart of the 2-D `minority_margin`, paper Fig. 18;
    pixel units of [0, 1] for images) and of the minority test samples
    (`minority_input_margin_test`), and the mean logit margins z_y - max_{j != y} z_j of
    both (`minority_logit_margin`, `minority_logit_margin_test`). Misclassified samples count
    with a negative margin, so a model that gives up on a minority class is not rewarded
    for its points lying far inside a majority region."""
    minority = torch.tensor(minority_classes(list(result.train_counts)))
    out: dict[str, float] = {}
    for split, suffix in (("train", ""), ("test", "_test")):
        x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        keep = torch.isin(y, minority)
        logit, dist = input_margins(result.model, x[keep], y[keep], data.mean, data.std)
        nan = float("nan")
        out[f"minority_input_margin{suffix}"] = float(dist.mean()) if len(dist) else nan
        out[f"minority_logit_margin{suffix}"] = float(logit.mean()) if len(logit) else nan
    return out
