"""Metrics: of a split, of neural collapse, of a trained model's decision regions, of a trial.

- `split` (`split_metrics`): accuracy, balanced accuracy, macro F1, minority / majority and
  few / med / many accuracies, per-class accuracy, AUROC and AUPRC, from a split's confusion
  matrix (docs/methods.md, "2. Metrics");
- `collapse` (`neural_collapse`): CDNV and nearest-class-centre accuracies of penultimate
  features (paper Table 4; docs/methods.md, "2. Metrics");
- `probes` (`minority_margin`): predictions over the plane and the distance from minority
  points to the decision boundary (paper Fig. 18);
- `trial` (`compute_trial_metrics`): the registered trial-level metrics a search space can
  ask each trial for (`imbtrain.registry.TRIAL_METRICS`).

    >>> import numpy as np
    >>> m = split_metrics(np.array([[8, 2], [1, 9]]), [100, 10], "test")  # 10 a class
    >>> round(m["test_acc"], 4), round(m["test_bal_acc"], 4), m["test_minority_acc"]
    (0.85, 0.85, 0.9)
"""

from imbtrain.metrics.collapse import (
    cdnv,
    class_means,
    ncc_accuracy,
    ncc_predict,
    neural_collapse,
    within_class_variance,
)
from imbtrain.metrics.probes import (
    MARGIN,
    boundary_distances,
    minority_margin,
    minority_points,
    predict,
)
from imbtrain.metrics.split import (
    FEW_BELOW,
    MANY_ABOVE,
    MINORITY_FRACTION,
    binary_ranking_metrics,
    confusion_matrix,
    confusion_update,
    group_classes,
    majority_classes,
    minority_classes,
    per_class_accuracy,
    per_class_f1,
    split_metrics,
)
from imbtrain.metrics.trial import TRIAL_METRICS, compute_trial_metrics, register_trial_metric

__all__ = [
    "FEW_BELOW", "MANY_ABOVE", "MARGIN", "MINORITY_FRACTION", "TRIAL_METRICS",
    "binary_ranking_metrics", "boundary_distances", "cdnv", "class_means",
    "compute_trial_metrics", "confusion_matrix", "confusion_update", "group_classes",
    "majority_classes", "minority_classes", "minority_margin", "minority_points",
    "ncc_accuracy", "ncc_predict", "neural_collapse", "per_class_accuracy", "per_class_f1",
    "predict", "register_trial_metric", "split_metrics", "within_class_variance",
]
