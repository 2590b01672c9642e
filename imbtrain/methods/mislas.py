"""MiSLAS (Zhong et al. 2021, "Improving Calibration for Long-Tailed Recognition";
docs/methods.md, "8. Baselines: MiSLAS").

Stage 1 is the ordinary training loop with mixup (alpha 1): the loop reads `stage1_mix` /
`stage1_mix_alpha` from the method in place of `cfg.mix` / `cfg.mix_alpha`.

Stage 2 (`finish`, `mislas_epochs` = 10 epochs), as MiSLAS's `train_stage2.py`:
- the backbone is frozen (eval mode, no gradient);
- with `mislas_bn_shift` ("shift learning" on BatchNorm), the backbone's BN running statistics
  are first re-estimated on one epoch of class-balanced batches (a cumulative average over the
  epoch, so the stage-1 statistics are fully replaced);
- batches are class-balanced (`epoch_indices(y, "balanced")`), augmented by the loop's
  `train_view`;
- the head is re-trained from its stage-1 weights, times a learnable per-class logit scale
  (learnable weight scaling, `ScaledLinear`, initialised to 1);
- label-aware smoothing: eps_c = eps_tail + (eps_head - eps_tail)
  * sin(pi (n_c - n_min) / (2 (n_max - n_min))), the most on the head classes; targets
  q = (1 - eps_y) onehot(y) + eps_y / K and cross-entropy against q (MiSLAS's
  `LabelAwareSmoothing`, shape "sine"). Defaults eps_head 0.4, eps_tail 0.1: MiSLAS's
  CIFAR-100 (imbalance 0.01) config; its CIFAR-10 config uses 0.3 and 0.0.
- SGD, momentum `cfg.momentum`, weight decay `cfg.weight_decay` (MiSLAS CIFAR: 0.9, 2e-4),
  lr `mislas_lr` (MiSLAS CIFAR: 0.1) for the scale and `head_lr_factor(cfg)` * lr for the
  head's weights (MiSLAS's `lr_factor`, per dataset and ratio: `HEAD_LR_FACTORS`), cosine over
  the stage-2 epochs, per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData
from imbtrain.methods.base import Method, register_method, soft_cross_entropy
from imbtrain.methods.sampling import epoch_indices
from imbtrain.methods.smoothing import smooth_targets

# MiSLAS's `lr_factor` (config/<dataset>/<dataset>_imb<ratio>_stage2_mislas.yaml), by train
# ratio. Its large-scale configs (ImageNet-LT, iNaturalist 2018, Places-LT) use 0.05.
HEAD_LR_FACTORS: dict[str, dict[float, float]] = {
    "cifar10": {0.01: 0.5, 0.02: 0.2, 0.1: 0.2},
    "cifar100": {0.01: 0.2, 0.02: 0.1, 0.1: 0.1},
}
OTHER_HEAD_LR_FACTOR = 0.2  # datasets MiSLAS has no config for


def head_lr_factor(cfg: TrainConfig) -> float:
    """The head's stage-2 lr factor: `mislas_head_lr_factor`, or with 0 MiSLAS's value for
    the dataset at the nearest (log scale) of its train ratios, 0.2 for other datasets.

    Example:
        >>> from types import SimpleNamespace as C
        >>> [head_lr_factor(C(mislas_head_lr_factor=0.0, dataset="cifar10", train_ratio=r))
        ...  for r in (0.01, 0.05, 1.0)]
        [0.5, 0.2, 0.2]
        >>> head_lr_factor(C(mislas_head_lr_factor=0.0, dataset="digits", train_ratio=0.01))
        0.2
    """
    if cfg.mislas_head_lr_factor > 0:
        return float(cfg.mislas_head_lr_factor)
    table = HEAD_LR_FACTORS.get(cfg.dataset)
    if table is None:
        return OTHER_HEAD_LR_FACTOR
    nearest = min(table, key=lambda r: abs(math.log(r) - math.log(cfg.train_ratio)))
    return table[nearest]


def label_aware_eps(counts: Sequence[int] | Tensor, eps_head: float, eps_tail: float) -> Tensor:
    """eps_c = eps_tail + (eps_head - eps_tail) sin(pi (n_c - n_min) / (2 (n_max - n_min))).

    float32 (K,); on balanced counts (n_max = n_min) every class gets eps_head.

    Example (middle class: (55 - 10) / (2 * 90) * pi = pi / 4, sin = 0.7071):
        >>> label_aware_eps([100, 55, 10], 0.4, 0.1)
        tensor([0.4000, 0.3121, 0.1000])
    """
    n = torch.as_tensor(counts, dtype=torch.float64)
    span = n.max() - n.min()
    if span == 0:
        return torch.full(n.shape, float(eps_head))
    phase = math.pi * (n - n.min()) / (2 * span)
    return (eps_tail + (eps_head - eps_tail) * torch.sin(phase)).float()


class ScaledLinear(nn.Linear):
    """A linear layer times a learnable per-output scale: (x W^T + b) * scale.

    MiSLAS's learnable weight scaling; a subclass of nn.Linear so the ImbModel contract holds.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.scale = nn.Parameter(torch.ones(out_features, device=device, dtype=dtype))

    @classmethod
    def from_linear(cls, head: nn.Linear) -> ScaledLinear:
        """A ScaledLinear with `head`'s weights (scale 1: the same outputs at first)."""
        new = cls(head.in_features, head.out_features, bias=head.bias is not None,
                  device=head.weight.device, dtype=head.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(head.weight)
            if head.bias is not None:
                new.bias.copy_(head.bias)
        return new

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias) * self.scale


def _batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reestimate_bn(backbone: nn.Module, batches: Iterable[Tensor]) -> int:
    """Replace the BN running statistics by their average over `batches`; returns the count.

    momentum None makes BatchNorm keep a cumulative (equal-weight) average of the batch
    statistics, so the result does not depend on the stage-1 statistics or on the momentum.
    """
    norms = _batch_norms(backbone)
    if not norms:
        return 0
    saved = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    backbone.train()
    count = 0
    for x in batches:
        backbone(x)
        count += 1
    for bn, momentum in zip(norms, saved, strict=True):
        bn.momentum = momentum
    return count


@register_method("mislas")
class MiSLASMethod(Method):
    """Stage 1: the loop with mixup (alpha 1). Stage 2 (`finish`): see the module docstring."""

    stage1_mix = "mixup"
    stage1_mix_alpha = 1.0

    def __init__(self, cfg: TrainConfig, data: ImbalancedData):
        super().__init__(cfg, data)
        self.eps = label_aware_eps(self.counts, cfg.mislas_eps_head, cfg.mislas_eps_tail)

    def finish(self, model: nn.Module, data: ImbalancedData, ctx: dict) -> None:
        """Stage 2 on `model` in place: BN shift, then a ScaledLinear head re-trained.

        ctx: "device", "train_view" (batch on device -> normalised float batch, augmented),
        "batch_size", "log". Counts every stage-2 batch (BN re-estimation included) in
        `self.passes`; each is one backbone forward without gradient and at most one head
        forward/backward, so about a third of a training step.
        """
        device, view = ctx["device"], ctx["train_view"]

        def balanced_epoch() -> Iterator[tuple[Tensor, Tensor]]:
            for idx in epoch_indices(data.train_y, "balanced").split(ctx["batch_size"]):
                yield view(data.train_x[idx].to(device)), data.train_y[idx].to(device)

        was_training = model.training
        if self.cfg.mislas_bn_shift:
            self.passes += reestimate_bn(model.backbone, (x for x, _ in balanced_epoch()))
        model.eval()  # frozen backbone: BN statistics fixed from here on
        model.head = ScaledLinear.from_linear(model.head)
        optimizer, scheduler = self._head_optimizer(model.head)
        for epoch in range(self.cfg.mislas_epochs):
            loss = self._train_head_epoch(model, balanced_epoch(), optimizer)
            scheduler.step()
            ctx["log"](f"mislas stage 2 epoch {epoch + 1}/{self.cfg.mislas_epochs}: "
                       f"loss {loss:.4f}")
        model.train(was_training)

    def _head_optimizer(self, head: ScaledLinear) -> tuple[torch.optim.Optimizer,
                                                          torch.optim.lr_scheduler.LRScheduler]:
        """SGD on the head's weights (lr * head_lr_factor) and scale (lr), cosine per epoch."""
        lr = self.cfg.mislas_lr
        weights = [p for name, p in head.named_parameters() if name != "scale"]
        factor = head_lr_factor(self.cfg)
        optimizer = torch.optim.SGD(
            [{"params": weights, "lr": lr * factor}, {"params": [head.scale], "lr": lr}],
            lr=lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, self.cfg.mislas_epochs))
        return optimizer, scheduler

    def _train_head_epoch(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]],
                          optimizer: torch.optim.Optimizer) -> float:
        """One epoch of head steps on frozen features; the mean label-aware-smoothed loss."""
        total, seen = 0.0, 0
        for x, y in batches:
            with torch.no_grad():
                features = model.backbone(x)
            q = smooth_targets(F.one_hot(y, model.head.out_features).float(), self.eps)
            loss = soft_cross_entropy(model.head(features), q).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total = total + loss.detach() * len(y)  # a tensor: no device sync per step
            seen += len(y)
            self.passes += 1
        return float(total) / max(seen, 1)
