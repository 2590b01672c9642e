"""Per-class loss weights shared by reweighting, DRW and LDAM-DRW (docs/methods.md,
"8. Baselines: Reweighting").

Both forms are normalised so that sum_c w_c = K: on balanced data every weight is 1 and the
loss keeps the scale of plain cross-entropy (Cui et al. 2019, class-balanced loss; LDAM-DRW's
`per_cls_weights / sum * K`).
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
