"""Label smoothing, uniform or class-conditional (paper A.7, eqs. 6-7; docs/methods.md,
"5. Label smoothing").

Targets: q = (1 - eps_y) onehot(y) + eps_y / K (the paper's eq. 7). With mixed (CutMix /
Mixup) targets t (B, K), each source label is smoothed with its own eps:

    q = t * (1 - eps)[None] + (t @ eps)[:, None] / K,

which is sum_c t_c * smooth(onehot(c), eps_c) and keeps every row a distribution. The loss is
the cross-entropy against q (`imbtrain.methods.base.soft_cross_entropy`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from imbtrain.config import TrainConfig
from imbtrain.methods.sam import class_factors


def class_eps(counts: Sequence[int] | Tensor, eps: float, form: str = "inverse",
              power: float = 0.5) -> Tensor:
    """Class-conditional smoothing eps_c (K,) float32, clipped to at most (K - 1) / K.

    Forms as for SAM-A's radii (see `imbtrain.methods.sam.class_radii` for the paper's
    contradiction, resolved in favour of the text):
    "inverse" (default) eps_c = eps (K p_c)^(-power), more smoothing on minority classes;
    "paper_eq" eps_c = eps / (1 - p_c), the printed eq. (6).

    The clip at (K - 1) / K is that of docs/methods.md. Under eq. (7)'s convention (eps / K on
    every class) the true class keeps the most mass for any eps <= 1, so the clip is
    conservative: at the clip the true class gets (2K - 1) / K^2 against (K - 1) / K^2 for each
    other one.

    Example:
        >>> class_eps([900, 100], 0.1, "inverse", 1.0)
        tensor([0.0556, 0.5000])
    """
    factors = class_factors(counts, form, power)
    k = factors.numel()
    return (eps * factors).clamp(max=(k - 1) / k).float()


def smoothing_eps(cfg: TrainConfig, counts: Sequence[int] | Tensor) -> Tensor | None:
    """Per-class eps (K,) for `cfg.smoothing`: none -> None, uniform -> eps for every class,
    class -> `class_eps(counts, cfg.smoothing_eps, cfg.smoothing_form, cfg.smoothing_power)`.
    """
    if cfg.smoothing == "none":
        return None
    if cfg.smoothing == "uniform":
        return torch.full((len(counts),), float(cfg.smoothing_eps))
    if cfg.smoothing == "class":
        return class_eps(counts, cfg.smoothing_eps, cfg.smoothing_form, cfg.smoothing_power)
    raise ValueError(f"smoothing={cfg.smoothing!r} is not allowed; choose none, uniform, class")


def smooth_targets(t: Tensor, eps: Tensor | None) -> Tensor:
    """Smoothed targets q (B, K) from soft targets t (B, K) and per-class eps (K,).

    q = t * (1 - eps)[None] + (t @ eps)[:, None] / K; eps None returns t unchanged.

    Example:
        >>> smooth_targets(torch.tensor([[1.0, 0.0]]), torch.tensor([0.2, 0.4]))
        tensor([[0.9000, 0.1000]])
    """
    if eps is None:
        return t
    eps = eps.to(device=t.device, dtype=t.dtype)
    return t * (1 - eps)[None] + (t @ eps)[:, None] / t.shape[1]
