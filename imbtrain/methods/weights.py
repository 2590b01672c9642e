"""Per-class loss weights shared by reweighting, DRW and LDAM-DRW (docs/methods.md,
"8. Baselines: Reweighting"), and the batch loss they enter.

Both forms are normalised so that sum_c w_c = K (Cui et al. 2019, class-balanced loss;
LDAM-DRW's `per_cls_weights / sum * K`): on balanced data every weight is 1.

A weighted batch loss is normalised by the batch's sum of sample weights,

    L = sum_i s_i l_i / sum_i s_i,   s_i = w_{y_i} (soft targets t_i: s_i = t_i @ w),

which is what LDAM-DRW's `F.cross_entropy(logits, y, weight=w)` computes (PyTorch's
reduction="mean" with `weight` divides by the sum of the targets' weights), for its CE, LDAM
and DRW losses alike. The sample weights thus sum to one over every batch, as the plain mean's
1 / B do: the loss keeps the scale of cross-entropy whatever the batch holds, and the weights
only shift the mass between its samples. Dividing by the batch size instead, mean(s_i l_i),
scales the loss by the batch's mean weight; with effective-number weights on CIFAR-10 at
r = 0.01 that mean is about 0.17 (rare classes are rare in a batch, too), so the weighted
stage would train with a learning rate 5-6 times smaller, and varying from batch to batch.
The two agree where the batch's mean weight is 1, e.g. on a batch of one sample a class.
Unweighted losses keep the plain mean (`class_weighted_mean` with `sample_w=None`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

WEIGHT_FORMS = ("effective", "inverse")


def _normalise(raw: Tensor) -> Tensor:
    return (raw / raw.sum() * raw.numel()).float()


def effective_number_weights(counts: Sequence[int] | Tensor, beta: float = 0.9999) -> Tensor:
    """w_c ∝ (1 - beta) / (1 - beta ** n_c), the inverse effective number of samples
    (Cui et al. 2019, eq. 3), normalised to sum K. float32 (K,) on the CPU.

    beta -> 0 gives uniform weights, beta -> 1 inverse frequency.

    Example:
        >>> effective_number_weights([100, 100])
        tensor([1., 1.])
    """
    n = torch.as_tensor(counts, dtype=torch.float64)
    return _normalise((1.0 - beta) / (1.0 - beta**n))


def inverse_frequency_weights(counts: Sequence[int] | Tensor) -> Tensor:
    """w_c ∝ 1 / n_c, normalised to sum K. float32 (K,) on the CPU.

    Example:
        >>> inverse_frequency_weights([300, 100])
        tensor([0.5000, 1.5000])
    """
    return _normalise(1.0 / torch.as_tensor(counts, dtype=torch.float64))


def class_weights(counts: Sequence[int] | Tensor, form: str, beta: float = 0.9999) -> Tensor:
    """Weights of `form` ("effective" with `beta`, or "inverse") for these class counts."""
    if form == "effective":
        return effective_number_weights(counts, beta)
    if form == "inverse":
        return inverse_frequency_weights(counts)
    raise ValueError(f"weight form {form!r} is unknown; allowed: {', '.join(WEIGHT_FORMS)}")


def class_weighted_mean(per: Tensor, sample_w: Tensor | None,
                        extra_w: Tensor | None = None) -> Tensor:
    """The batch loss of per-sample losses `per` (B,).

    sample_w (B,): the class weights of the samples (t_i @ w), or None for unweighted;
    extra_w (B,) or (B, G): further sample weights (SAM-A's), not normalised; a (B, G) matrix
    gives one loss per column, (G,).

    - unweighted: mean_i(e_i l_i), the plain mean;
    - class-weighted: sum_i s_i e_i l_i / sum_i s_i (LDAM-DRW's `cross_entropy(weight=)`).

    Example (weights 3 and 1: (3 * 1 + 1 * 2) / 4 = 1.25; the plain mean would be 1.5):
        >>> class_weighted_mean(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 1.0]))
        tensor(1.2500)
    """
    if extra_w is not None:
        per = per[:, None] * extra_w if extra_w.dim() == 2 else per * extra_w
    if sample_w is None:
        return per.mean(0) if per.dim() == 2 else per.mean()
    s = sample_w[:, None] if per.dim() == 2 else sample_w
    return (per * s).sum(0) / sample_w.sum()
