"""LDAM-DRW: margins and loss by hand; the method's weights, margins and normed head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imbtrain.methods.ldam import LDAMDRWMethod, NormedLinear, ldam_loss, ldam_margins
from imbtrain.models.base import ImbModel
from tests.methods.helpers import cfg, fake_data


def test_ldam_margins_by_hand():
    # n^(-1/4): 10000 -> 0.1, 16 -> 0.5; max is already 0.5, so C = 1.
    assert ldam_margins([10000, 16], 0.5).tolist() == pytest.approx([0.1, 0.5])
    # 625 -> 0.2, 81 -> 1/3, 1 -> 1; C = 0.5 / 1: [0.1, 0.16667, 0.5]
    assert ldam_margins([625, 81, 1], 0.5).tolist() == pytest.approx([0.1, 1 / 6, 0.5])


def test_ldam_loss_by_hand():
    margins = torch.tensor([0.1, 0.5])
    zero = torch.zeros(2, 2)
    # One-hot class 1: z - m_1 e_1 = [0, -0.5], times s = 30: [0, -15];
    # CE = log(1 + e^15) = 15 + log(1 + e^-15) = 15.0000003.
    # Soft q = [0.5, 0.5]: z - q m = [-0.05, -0.25], * 30 = [-1.5, -7.5] ~ [6, 0]:
    # log p = [-log(1 + e^-6), -6 - log(1 + e^-6)] = [-0.0024726, -6.0024726];
    # CE = 0.5 * (0.0024726 + 6.0024726) = 3.0024726.
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert ldam_loss(zero, q, margins, 30.0).tolist() == pytest.approx([15.0000003, 3.0024726],
                                                                       abs=1e-4)


def test_ldam_drw_method_weights_margins_and_normed_head():
    data = fake_data([10000, 16])
    method = LDAMDRWMethod(cfg(ldam_normed=True, drw_epoch=5), data)
    assert method.margins.tolist() == pytest.approx([0.1, 0.5])
    assert method.class_weights(4) is None and method.class_weights(5)[1] > 1.9
    model = method.configure_model(ImbModel(nn.Identity(), feature_dim=2, num_classes=2))
    assert isinstance(model.head, NormedLinear) and isinstance(model.head, nn.Linear)
    assert model.head.bias is None and model.head.in_features == 2
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
    # cosines of x = (2, 0) with (3, 4) and (0, 2): 3/5 = 0.6 and 0
    assert model(torch.tensor([[2.0, 0.0]]))[0].tolist() == pytest.approx([0.6, 0.0])
    plain = LDAMDRWMethod(cfg(ldam_normed=False), data)
    assert type(plain.configure_model(ImbModel(nn.Identity(), 2, 2)).head) is nn.Linear
