"""MiSLAS: label-aware smoothing by hand, the scaled head, stage 2 end to end on a tiny
frozen backbone with BatchNorm, and the head's learning-rate factor per dataset."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from imbtrain.methods.mislas import (
    MiSLASMethod,
    ScaledLinear,
    head_lr_factor,
    label_aware_eps,
    reestimate_bn,
)
from imbtrain.models.base import ImbModel


def cfg(**overrides) -> SimpleNamespace:
    base = dict(method="mislas", epochs=10, batch_size=16, seed=0, mislas_epochs=10,
                mislas_eps_head=0.4, mislas_eps_tail=0.1, mislas_lr=0.1, mislas_bn_shift=True,
                momentum=0.9, weight_decay=2e-4, mislas_head_lr_factor=0.0, dataset="synthetic",
                train_ratio=0.1)
    return SimpleNamespace(**{**base, **overrides})


def test_label_aware_eps_by_hand():
    # counts [100, 55, 10]: n_max 100 -> eps_head 0.4, n_min 10 -> eps_tail 0.1; the middle
    # class has phase pi (55 - 10) / (2 * 90) = pi / 4, sin = 0.707107:
    # 0.1 + 0.3 * 0.707107 = 0.312132.
    eps = label_aware_eps([100, 55, 10], 0.4, 0.1)
    assert eps.tolist() == pytest.approx([0.4, 0.1 + 0.3 * math.sqrt(0.5), 0.1], abs=1e-6)
    assert label_aware_eps([7, 7], 0.4, 0.1).tolist() == pytest.approx([0.4, 0.4])


def test_mixup_stage_one_is_requested_from_the_loop():
    assert MiSLASMethod.stage1_mix == "mixup" and MiSLASMethod.stage1_mix_alpha == 1.0


def test_scaled_linear_starts_as_the_old_head_and_scales_per_class():
    old = nn.Linear(3, 2)
    new = ScaledLinear.from_linear(old)
    x = torch.randn(4, 3)
    assert isinstance(new, nn.Linear) and torch.allclose(new(x), old(x))
    with torch.no_grad():
        new.scale.copy_(torch.tensor([2.0, 0.5]))
    assert torch.allclose(new(x), old(x) * torch.tensor([2.0, 0.5]))


def test_reestimate_bn_averages_the_batch_statistics():
    bn = nn.BatchNorm1d(1)
    bn.running_mean.fill_(100.0)
    batches = [torch.tensor([[0.0], [2.0]]), torch.tensor([[4.0], [6.0]])]
    # batch means 1 and 5 -> 3; unbiased batch variances 2 and 2 -> 2; momentum restored
    assert reestimate_bn(nn.Sequential(bn), batches) == 2
    assert bn.running_mean.item() == pytest.approx(3.0)
    assert bn.running_var.item() == pytest.approx(2.0) and bn.momentum == 0.1


def two_blobs(counts: list[int]) -> SimpleNamespace:
    # class 0 at x0 = +3, class 1 at x0 = -3 (unit noise): linearly separable along x0.
    torch.manual_seed(0)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    x = torch.randn(len(y), 2) + torch.tensor([[3.0, 0.0]]) * (1 - 2 * y[:, None])
    return SimpleNamespace(num_classes=2, train_counts=counts, train_x=x, train_y=y,
                           input_shape=(2,), is_image=False)


def balanced_accuracy(model: nn.Module, data: SimpleNamespace) -> float:
    with torch.no_grad():
        pred = model(data.train_x).argmax(1)
    return sum((pred[data.train_y == c] == c).float().mean().item() for c in (0, 1)) / 2


def biased_model() -> ImbModel:
    """Identity features into BatchNorm, and a stage-1 head that separates the blobs along x0
    but leans to the majority class 0 (bias +1 / -1)."""
    linear = nn.Linear(2, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(2))
        linear.bias.zero_()
    model = ImbModel(nn.Sequential(linear, nn.BatchNorm1d(2)), feature_dim=2, num_classes=2)
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[0.5, 0.0], [-0.5, 0.0]]))
        model.head.bias.copy_(torch.tensor([1.0, -1.0]))
    return model


def run_stage_two(model: ImbModel, data: SimpleNamespace, **overrides) -> tuple[MiSLASMethod,
                                                                                 list[str]]:
    method = MiSLASMethod(cfg(**overrides), data)
    lines: list[str] = []
    torch.manual_seed(0)
    model.train()
    method.finish(model, data, {"device": torch.device("cpu"), "train_view": lambda x: x,
                                "batch_size": 16, "log": lines.append})
    return method, lines


def test_stage_two_rebalances_a_majority_biased_head_on_a_frozen_backbone():
    data = two_blobs([90, 10])
    model = biased_model()
    model.train()
    with torch.no_grad():  # stage-1 BN statistics: the imbalanced data's
        for _ in range(20):
            model.backbone(data.train_x)
    frozen = {k: v.clone() for k, v in model.backbone.named_parameters()}
    before = balanced_accuracy(model.eval(), data)
    assert before < 0.95  # some of the 10 minority samples go to class 0
    method, lines = run_stage_two(model, data)
    assert isinstance(model.head, ScaledLinear) and model.training
    for name, value in model.backbone.named_parameters():
        assert torch.equal(value, frozen[name]), f"backbone {name} changed"
    # BN shift: balanced batches average the class means +3 and -3 to about 0, where the
    # imbalanced data's mean is 0.9 * 3 - 0.1 * 3 = 2.4 (sampling noise: 100 draws per
    # epoch, class-0 share 0.5 +- 0.05, so the mean is 0 +- 0.3)
    assert abs(model.backbone[1].running_mean[0].item()) < 1.0
    # the majority lean of the logits, (b0 - b1) * scale, shrinks from 2 towards 0
    lean = (model.head.bias[0] - model.head.bias[1]) * model.head.scale.mean()
    assert abs(lean.item()) < 1.0
    assert balanced_accuracy(model.eval(), data) == 1.0
    # 100 samples, batch 16 -> 7 batches: 7 for BN, 10 epochs * 7 head steps
    assert method.passes == 7 + 70
    assert len(lines) == 10 and lines[-1].startswith("mislas stage 2 epoch 10/10")


def test_stage_two_without_bn_shift_keeps_the_bn_statistics():
    data = two_blobs([90, 10])
    model = biased_model()
    stats = model.backbone[1].running_mean.clone()
    method, _ = run_stage_two(model, data, mislas_bn_shift=False, mislas_epochs=2)
    assert torch.equal(model.backbone[1].running_mean, stats)
    assert method.passes == 2 * 7


@pytest.mark.parametrize("dataset,ratio,factor", [
    # MiSLAS's stage-2 configs: CIFAR-10 0.5 (r 0.01), 0.2 (0.02, 0.1); CIFAR-100 0.2 (0.01),
    # 0.1 (0.02, 0.1). Nearest of their ratios on a log scale: r 0.05 is ln 2.5 = 0.92 from
    # 0.02 and ln 2 = 0.69 from 0.1, so 0.1's; r 0.014 is 0.34 from 0.01, 0.36 from 0.02.
    ("cifar10", 0.01, 0.5), ("cifar10", 0.02, 0.2), ("cifar10", 0.1, 0.2),
    ("cifar10", 0.005, 0.5), ("cifar10", 0.014, 0.5), ("cifar10", 1.0, 0.2),
    ("cifar100", 0.01, 0.2), ("cifar100", 0.02, 0.1), ("cifar100", 0.05, 0.1),
    ("mnist5k", 0.01, 0.2), ("tiny_imagenet", 0.01, 0.2),
])
def test_head_lr_factor_is_mislas_value_for_the_dataset(dataset, ratio, factor):
    assert head_lr_factor(cfg(dataset=dataset, train_ratio=ratio)) == factor
    assert head_lr_factor(cfg(dataset=dataset, train_ratio=ratio,
                              mislas_head_lr_factor=0.3)) == 0.3


@pytest.mark.parametrize("overrides,head_lr", [
    ({"dataset": "cifar10", "train_ratio": 0.01}, 0.05),  # 0.1 * 0.5
    ({"dataset": "cifar100", "train_ratio": 0.02}, 0.01),  # 0.1 * 0.1
    ({"dataset": "digits", "mislas_head_lr_factor": 0.25, "mislas_lr": 0.2}, 0.05),
])
def test_stage_two_optimizer_gives_the_head_its_factor_and_the_scale_the_full_lr(overrides,
                                                                                  head_lr):
    method = MiSLASMethod(cfg(**overrides), two_blobs([90, 10]))
    head = ScaledLinear.from_linear(nn.Linear(2, 2))
    optimizer, _ = method._head_optimizer(head)
    weights, scale = optimizer.param_groups
    assert weights["lr"] == pytest.approx(head_lr)
    assert scale["lr"] == pytest.approx(overrides.get("mislas_lr", 0.1))
    assert scale["params"] == [head.scale] and len(weights["params"]) == 2


def test_head_lr_factor_config_key_defaults_to_the_peer_value():
    from imbtrain.config import ConfigError, TrainConfig, describe

    assert TrainConfig().mislas_head_lr_factor == 0.0
    assert "CIFAR-10: 0.5 at r = 0.01" in describe("mislas_head_lr_factor")
    with pytest.raises(ConfigError, match="mislas_head_lr_factor"):
        TrainConfig(mislas_head_lr_factor=-1)
