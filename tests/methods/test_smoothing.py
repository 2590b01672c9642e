"""Uniform and class-conditional label smoothing (imbtrain/methods/smoothing.py), by hand."""

import math

import pytest
import torch

from imbtrain.config import TrainConfig
from imbtrain.methods.base import soft_cross_entropy
from imbtrain.methods.smoothing import class_eps, smooth_targets, smoothing_eps


@pytest.mark.parametrize("eps,form,power,expected", [
    # counts [900, 100]: p = (0.9, 0.1), K p = (1.8, 0.2); clip at (K - 1) / K = 0.5.
    (0.1, "inverse", 1.0, [0.1 / 1.8, 0.5]),            # 0.1 / 0.2 = 0.5, exactly the clip
    (0.1, "inverse", 0.5, [0.0745356, 0.2236068]),      # 0.1 / sqrt(1.8), 0.1 / sqrt(0.2)
    (0.1, "paper_eq", 1.0, [0.5, 0.1111111]),           # 0.1 / 0.1 = 1 -> clipped, 0.1 / 0.9
    (0.2, "inverse", 1.0, [0.2 / 1.8, 0.5]),            # 0.2 / 0.2 = 1 -> clipped
])
def test_class_eps_by_hand(eps, form, power, expected):
    assert class_eps([900, 100], eps, form, power).tolist() == pytest.approx(expected, abs=1e-6)


def test_class_eps_clip_for_ten_classes():
    # K = 10, counts [910, 10 x 9]: K p_min = 10 * 10 / 1000 = 0.1; eps (K p)^-1 = 0.3 / 0.1 = 3
    # -> clipped to 9 / 10; the largest class: 0.3 / 9.1.
    counts = [910] + [10] * 9
    e = class_eps(counts, 0.3, "inverse", 1.0)
    assert e[0].item() == pytest.approx(0.3 / 9.1, abs=1e-6)
    assert e[1:].tolist() == pytest.approx([0.9] * 9)


def test_smoothing_eps_from_config():
    counts = [900, 100]
    assert smoothing_eps(TrainConfig(smoothing="none"), counts) is None
    uni = smoothing_eps(TrainConfig(smoothing="uniform", smoothing_eps=0.1), counts)
    assert uni.tolist() == pytest.approx([0.1, 0.1])
    cls = smoothing_eps(TrainConfig(smoothing="class", smoothing_eps=0.1,
                                    smoothing_form="inverse", smoothing_power=0.5), counts)
    assert cls.tolist() == pytest.approx([0.0745356, 0.2236068], abs=1e-6)


def test_smoothed_one_hot_targets_by_hand():
    # K = 3, eps = (0.3, 0.6, 0.0): class 0 -> (1 - 0.3 + 0.1, 0.1, 0.1) = (0.8, 0.1, 0.1);
    # class 1 -> (0.2, 0.4 + 0.2, 0.2) = (0.2, 0.6, 0.2); class 2 unsmoothed.
    eps = torch.tensor([0.3, 0.6, 0.0])
    t = torch.eye(3)
    q = smooth_targets(t, eps)
    expected = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.6, 0.2], [0.0, 0.0, 1.0]])
    assert torch.allclose(q, expected, atol=1e-6)
    assert torch.allclose(q.sum(1), torch.ones(3))
    assert smooth_targets(t, None) is t


def test_cutmix_targets_smooth_each_source_with_its_own_eps():
    eps = class_eps([900, 100], 0.1, "inverse", 0.5)  # (0.0745356, 0.2236068)
    e0, e1 = torch.eye(2)
    t = torch.tensor([[0.7, 0.3]])
    q = smooth_targets(t, eps)
    per_source = 0.7 * smooth_targets(e0[None], eps) + 0.3 * smooth_targets(e1[None], eps)
    assert torch.allclose(q, per_source, atol=1e-7)
    # by hand: shared mass (0.7 * 0.0745356 + 0.3 * 0.2236068) / 2 = 0.0596285
    # q0 = 0.7 * (1 - 0.0745356) + 0.0596285 = 0.7074536, q1 = 1 - q0 = 0.2925464
    assert q[0].tolist() == pytest.approx([0.7074536, 0.2925464], abs=1e-6)


def test_soft_cross_entropy_on_smoothed_cutmix_targets():
    q = smooth_targets(torch.tensor([[0.7, 0.3]]), class_eps([900, 100], 0.1, "inverse", 0.5))
    logits = torch.tensor([[2.0, 0.0]])
    # log softmax: log p0 = -log(1 + e^-2) = -0.1269280, log p1 = -2 - log(1 + e^-2) = -2.1269280
    lp0 = -math.log1p(math.exp(-2.0))
    lp1 = -2.0 + lp0
    expected = -(0.7074536 * lp0 + 0.2925464 * lp1)  # = 0.7120208
    assert soft_cross_entropy(logits, q).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.7120208, abs=1e-6)
