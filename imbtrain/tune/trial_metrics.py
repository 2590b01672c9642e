"""The trial-level metrics, which live in `imbtrain.metrics.trial` (re-exported here)."""

from imbtrain.metrics.trial import (  # noqa: F401
    TRIAL_METRICS,
    TrialMetric,
    compute_trial_metrics,
    minority_margin_metric,
    param_count,
    register_trial_metric,
)
