"""Neural-collapse measures of penultimate features (paper Table 4; docs/methods.md,
"2. Metrics").

Papyan et al. 2020; the class-distance normalised variance (CDNV) of Galanti et al. 2022.
Computed on the TRAIN features with train-set class means; classes absent from the features
are skipped. Computed in torch float64 on the features' device (numpy inputs become CPU
tensors without a copy); array-valued results come back as numpy when the features were
numpy.

    >>> import torch
    >>> feats = torch.tensor([[0.0], [2.0], [10.0], [12.0]])
    >>> cdnv(feats, torch.tensor([0, 0, 1, 1]), 2)  # (1 + 1) / (2 * 10 ** 2)
    0.01
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from imbtrain.metrics.split import ArrayLike, minority_classes


def _features(x: ArrayLike) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _labels(y: ArrayLike, device: torch.device) -> torch.Tensor:
    if isinstance(y, torch.Tensor):
        return y.detach().to(device=device, dtype=torch.long).reshape(-1)
    return torch.as_tensor(np.asarray(y), dtype=torch.long, device=device).reshape(-1)


def _like(result: torch.Tensor, reference: ArrayLike):
    """Return a tensor result as numpy unless the reference input was a tensor."""
    return result if isinstance(reference, torch.Tensor) else result.cpu().numpy()


def _class_stats(feats: torch.Tensor, y: torch.Tensor, num_classes: int):
    """Per-class counts (K,) and means (K, D); the mean of an absent class is NaN."""
    counts = torch.bincount(y, minlength=num_classes)[:num_classes]
    sums = torch.zeros(num_classes, feats.shape[1], dtype=feats.dtype, device=feats.device)
    sums.index_add_(0, y, feats)
    return counts, sums / counts[:, None]  # 0 / 0 = NaN marks absent classes


def _variances(feats: torch.Tensor, y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """sigma_c^2 = E_{x in c} ||f(x) - mu_c||^2 (population mean, 1/n_c); NaN if c absent."""
    k = means.shape[0]
    sq = ((feats - means[y]) ** 2).sum(dim=1)
    counts = torch.bincount(y, minlength=k)[:k]
    return torch.zeros(k, dtype=feats.dtype, device=feats.device).index_add_(0, y, sq) / counts


def class_means(features: ArrayLike, labels: ArrayLike, num_classes: int):
    """mu_c = mean of f(x) over the samples of class c, (K, D); NaN rows for absent classes."""
    feats = _features(features)
    _, means = _class_stats(feats, _labels(labels, feats.device), num_classes)
    return _like(means, features)


def within_class_variance(features: ArrayLike, labels: ArrayLike, means: ArrayLike):
    """sigma_c^2 = E ||f(x) - mu_c||^2 over class c, (K,); NaN for absent classes."""
    feats = _features(features)
    mu = _features(means).to(feats.device)
    return _like(_variances(feats, _labels(labels, feats.device), mu), features)


def cdnv(
    features: ArrayLike,
    labels: ArrayLike,
    num_classes: int,
    pairs_with: Iterable[int] | None = None,
) -> float:
    """Class-distance normalised variance, averaged over unordered pairs i < j.

    CDNV(i, j) = (sigma_i^2 + sigma_j^2) / (2 ||mu_i - mu_j||^2) (Galanti et al. 2022).
    Classes absent from `features` are skipped. With `pairs_with`, only pairs that
    involve at least one of those classes count (the minority pairs). NaN when no pair is left;
    inf when two class means coincide.
    """
    feats = _features(features)
    y = _labels(labels, feats.device)
    counts, means = _class_stats(feats, y, num_classes)
    var = _variances(feats, y, means)
    present = counts > 0
    pair = present[:, None] & present[None, :]
    pair &= torch.ones_like(pair).triu(diagonal=1)
    if pairs_with is not None:
        chosen = torch.zeros(num_classes, dtype=torch.bool, device=feats.device)
        chosen[torch.as_tensor(list(pairs_with), dtype=torch.long, device=feats.device)] = True
        pair &= chosen[:, None] | chosen[None, :]
    if not pair.any():
        return math.nan
    i, j = pair.nonzero(as_tuple=True)
    dist2 = ((means[i] - means[j]) ** 2).sum(dim=1)
    return float(((var[i] + var[j]) / (2 * dist2)).mean())


def ncc_predict(features: ArrayLike, means: ArrayLike):
    """Nearest class centre: argmin_c ||f(x) - mu_c|| (ties to the lower label).

    Classes whose mean is NaN (absent when the means were taken) are never predicted.
    """
    feats = _features(features)
    mu = _features(means).to(feats.device)
    valid = ~mu.isnan().any(dim=1)
    dist = torch.cdist(feats, torch.nan_to_num(mu))
    dist[:, ~valid] = math.inf
    return _like(dist.argmin(dim=1), features)


def ncc_accuracy(
    features: ArrayLike,
    labels: ArrayLike,
    means: ArrayLike,
    classes: Iterable[int] | None = None,
) -> float:
    """Accuracy of `ncc_predict`, on the samples of `classes` only when given; NaN if none."""
    feats = _features(features)
    y = _labels(labels, feats.device)
    if classes is not None:
        keep = torch.isin(y, torch.as_tensor(list(classes), dtype=torch.long, device=y.device))
        feats, y = feats[keep], y[keep]
    if y.numel() == 0:
        return math.nan
    return float((ncc_predict(feats, means) == y).double().mean())


def neural_collapse(
    train_feats: ArrayLike,
    train_y: ArrayLike,
    test_feats: ArrayLike,
    test_y: ArrayLike,
    train_counts: Sequence[int],
) -> dict[str, float]:
    """Neural-collapse measures of paper Table 4, all with TRAIN-set class means.

    cdnv: over all pairs of train classes; cdnv_minority: over pairs involving a minority
    class; ncc_acc_minority_train: NCC accuracy on the minority-class train samples;
    ncc_acc_test: NCC accuracy on the whole test set.
    """
    k = len(train_counts)
    minority = minority_classes(train_counts)
    means = class_means(_features(train_feats), train_y, k)
    return {
        "cdnv": cdnv(train_feats, train_y, k),
        "cdnv_minority": cdnv(train_feats, train_y, k, pairs_with=minority),
        "ncc_acc_minority_train": ncc_accuracy(train_feats, train_y, means, classes=minority),
        "ncc_acc_test": ncc_accuracy(test_feats, test_y, means),
    }
