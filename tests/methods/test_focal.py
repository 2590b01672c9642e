"""Focal loss by hand, and cross-entropy at gamma 0."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from imbtrain.methods.focal import FocalMethod, focal_loss
from tests.methods.helpers import cfg, fake_data


def test_focal_loss_is_cross_entropy_at_gamma_zero():
    torch.manual_seed(1)
    logits = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    onehot = F.one_hot(y, 4).float()
    expected = F.cross_entropy(logits, y, reduction="none")
    assert torch.allclose(focal_loss(logits, onehot, 0.0), expected, atol=1e-6)
    soft = torch.softmax(torch.randn(6, 4), dim=1)
    ce_soft = -(soft * F.log_softmax(logits, dim=1)).sum(1)
    assert torch.allclose(focal_loss(logits, soft, 0.0), ce_soft, atol=1e-6)


def test_focal_loss_by_hand_at_gamma_two():
    # logits [0, ln 3] -> p = [1/4, 3/4]. Target 0: (1 - 1/4)^2 * ln 4 = 0.5625 * 1.386294
    # = 0.779791. Target 1: (1/4)^2 * ln(4/3) = 0.0625 * 0.287682 = 0.017980.
    # Soft q = [0.5, 0.5]: the mean of the two, 0.398886.
    logits = torch.tensor([[0.0, math.log(3)]] * 3)
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    method = FocalMethod(cfg(focal_gamma=2.0), fake_data([3, 1]))
    assert method.loss(logits, q).tolist() == pytest.approx([0.779791, 0.017980, 0.398886],
                                                             abs=1e-5)
