"""Metrics of a split (docs/methods.md, "2. Metrics"), from its confusion matrix.

Every split metric is computed from the split's confusion matrix (rows = true class,
columns = predicted class), so the training loop only accumulates a (K, K) tensor on the
device (`confusion_update`, no host sync) and hands it over once per epoch.

Conventions (the choices the paper leaves open):

- A class with no samples in a split has an undefined recall: its `class_acc_k` is NaN and it
  is left out of every mean (`bal_acc`, `macro_f1`, group accuracies). A group whose classes
  are all absent, or that is empty, is NaN, never 0.
- Minority / majority classes: the `max(1, round(0.2 * K))` classes with the fewest / most
  TRAIN samples; ties go to the lower label (so with all counts equal both are the first
  classes). 0.2 * K is never exactly x.5 for an integer K, so the rounding mode does not matter.
- Few / med / many (Kang et al., "Decoupling representation and classifier", 2020; paper
  A.9): fewer than 20, 20 to 100 inclusive, more than 100 train samples, from the actual train
  counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

MINORITY_FRACTION = 0.2
FEW_BELOW = 20  # Kang et al.: few-shot classes have < 20 train samples
MANY_ABOVE = 100  # ... many-shot classes > 100; medium-shot 20..100 inclusive

ArrayLike = np.ndarray | torch.Tensor | Sequence


def _numpy(x) -> np.ndarray:
    """A numpy view of an array, a (possibly device) tensor or a list."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ----------------------------------------------------------------------------------------------
# Confusion matrices
# ----------------------------------------------------------------------------------------------


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts, `C[i, j]` = samples of true class i predicted as j."""
    y_true = _numpy(y_true).astype(np.int64).ravel()
    y_pred = _numpy(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}")
    k = num_classes
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def confusion_update(conf: torch.Tensor, y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Add a batch to a contiguous (K, K) confusion tensor in place, on its device; return it.

    Cell `y * K + pred` of the flattened matrix gets +1. This is `torch.bincount(y * K + pred,
    minlength=K * K)`, written as `index_add_` because CUDA's bincount copies the input's min
    and max back to the host to size its output (two syncs per batch; ATen SummaryOps.cu),
    while `index_add_` only launches a kernel. No range check for the same reason: labels
    come from the data module and predictions from `argmax`.
    """
    k = conf.shape[0]
    cells = y.reshape(-1) * k + pred.reshape(-1)
    conf.view(-1).index_add_(0, cells, torch.ones_like(cells, dtype=conf.dtype))
    return conf


# ----------------------------------------------------------------------------------------------
# Class groups (from TRAIN counts)
# ----------------------------------------------------------------------------------------------


def _group_size(num_classes: int) -> int:
    return max(1, round(MINORITY_FRACTION * num_classes))


def minority_classes(train_counts: Sequence[int]) -> list[int]:
    """The max(1, round(0.2 K)) classes with the fewest train samples, ties to the lower label.

    Returned in label order.
    """
    order = sorted(range(len(train_counts)), key=lambda c: (train_counts[c], c))
    return sorted(order[: _group_size(len(train_counts))])


def majority_classes(train_counts: Sequence[int]) -> list[int]:
    """The max(1, round(0.2 K)) classes with the most train samples, ties to the lower label.

    Returned in label order.
    """
    order = sorted(range(len(train_counts)), key=lambda c: (-train_counts[c], c))
    return sorted(order[: _group_size(len(train_counts))])


def group_classes(train_counts: Sequence[int]) -> dict[str, list[int]]:
    """Kang et al. groups: few (< 20 train samples), med (20..100), many (> 100)."""
    groups: dict[str, list[int]] = {"few": [], "med": [], "many": []}
    for c, n in enumerate(train_counts):
        key = "few" if n < FEW_BELOW else "many" if n > MANY_ABOVE else "med"
        groups[key].append(c)
    return groups


# ----------------------------------------------------------------------------------------------
# Split metrics
# ----------------------------------------------------------------------------------------------


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class, `C[c, c] / sum_j C[c, j]`; NaN for a class absent from the split."""
    support = confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, np.diag(confusion) / support, np.nan)


def per_class_f1(confusion: np.ndarray) -> np.ndarray:
    """F1 of each class, `2 TP / (2 TP + FP + FN)`; NaN for a class absent from the split."""
    tp = np.diag(confusion).astype(np.float64)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    support = confusion.sum(axis=1)
    # support > 0 means 2 TP + FN > 0, so the division is safe where it is kept.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, 2 * tp / (2 * tp + fp + fn), np.nan)


def _mean_over(values: np.ndarray, classes: Iterable[int]) -> float:
    """Mean of `values` over `classes`, skipping NaN (absent) ones; NaN when none is left."""
    picked = values[list(classes)]
    picked = picked[~np.isnan(picked)]
    return float(picked.mean()) if picked.size else math.nan


def binary_ranking_metrics(
    scores: ArrayLike, labels: ArrayLike, positive: int
) -> tuple[float, float]:
    """AUROC and AUPRC (average precision) of class `positive` from (N, 2) probabilities.

    NaN for both when the labels hold only one class (the curves are undefined).
    """
    scores, labels = _numpy(scores), _numpy(labels).ravel()
    if scores.ndim != 2 or scores.shape[1] != 2 or scores.shape[0] != labels.size:
        raise ValueError(f"scores must be (N, 2) with N = {labels.size}, got {scores.shape}")
    is_pos = labels == positive
    if is_pos.all() or not is_pos.any():
        return math.nan, math.nan
    from sklearn.metrics import average_precision_score, roc_auc_score  # lazy: binary only

    s = scores[:, positive]
    return float(roc_auc_score(is_pos, s)), float(average_precision_score(is_pos, s))


def split_metrics(
    confusion: ArrayLike,
    train_counts: Sequence[int],
    split: str,
    scores: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    loss: float | None = None,
) -> dict[str, float]:
    """All metrics of one split as `{split}_{name}` -> Python float (the metric names every
    run reports; docs/methods.md, "2. Metrics").

    acc = trace C / sum C; bal_acc = mean recall over classes present in the split;
    macro_f1 = mean F1 over the same classes; minority/majority/few/med/many_acc = mean recall
    over the group's present classes (NaN if none); class_acc_k = recall of class k (NaN if
    absent); auroc/auprc of the minority class when K == 2 and `scores`, `labels` are given.
    """
    conf = _numpy(confusion).astype(np.int64)
    k = conf.shape[0]
    if conf.shape != (k, k) or len(train_counts) != k:
        raise ValueError(f"confusion {conf.shape} does not match {len(train_counts)} classes")
    recall, f1 = per_class_accuracy(conf), per_class_f1(conf)
    total = conf.sum()
    everyone = range(k)
    out = {
        "acc": float(np.trace(conf) / total) if total else math.nan,
        "bal_acc": _mean_over(recall, everyone),
        "macro_f1": _mean_over(f1, everyone),
        "minority_acc": _mean_over(recall, minority_classes(train_counts)),
        "majority_acc": _mean_over(recall, majority_classes(train_counts)),
    }
    for name, classes in group_classes(train_counts).items():
        out[f"{name}_acc"] = _mean_over(recall, classes)
    if loss is not None:
        out["loss"] = float(loss)
    for c in everyone:
        out[f"class_acc_{c}"] = float(recall[c])
    if k == 2 and scores is not None and labels is not None:
        minority = minority_classes(train_counts)[0]
        out["auroc"], out["auprc"] = binary_ranking_metrics(scores, labels, minority)
    return {f"{split}_{name}": value for name, value in out.items()}


SPLITS = ("train", "val", "test")


def epoch_metric_names(num_classes: int) -> list[str]:
    """The split metrics a run of `num_classes` classes reports every epoch: `split_metrics`
    of each split as the training loops call it (with the loss; AUROC and AUPRC on the val
    and test splits of binary data, where they pass the scores).

        >>> [n for n in epoch_metric_names(2) if n.startswith("val_")][-4:]
        ['val_class_acc_0', 'val_class_acc_1', 'val_auroc', 'val_auprc']
    """
    k = int(num_classes)
    names: list[str] = []
    for split in SPLITS:
        scored = k == 2 and split != "train"
        scores, labels = (np.full((2, 2), 0.5), np.array([0, 1])) if scored else (None, None)
        names += split_metrics(np.eye(k, dtype=np.int64), [1] * k, split, scores=scores,
                               labels=labels, loss=0.0)
    return names
