"""The first-order margins of `imbtrain.metrics.probes.input_margins` and the trial metric
`minority_input_margin`, checked on linear models whose distances are worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from imbtrain.metrics.probes import boundary_distances, input_margins
from imbtrain.metrics.trial import compute_trial_metrics


def linear(weight, bias) -> nn.Linear:
    head = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return head


def test_a_linear_model_gives_the_exact_signed_distance():
    # logits (x1 + x2, 0, -5): class 0 against its rival class 1 has margin x1 + x2, gradient
    # (1, 1), so the distance to the boundary x1 + x2 = 0 is (x1 + x2) / sqrt(2).
    head = linear([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]], [0.0, 0.0, -5.0])
    x = torch.tensor([[3.0, 1.0], [-1.0, 0.0]])
    m, d = input_margins(head, x, torch.tensor([0, 0]))
    assert m.tolist() == pytest.approx([4.0, -1.0])
    assert d.tolist() == pytest.approx([4.0 / np.sqrt(2), -1.0 / np.sqrt(2)])
    # Scaling the logits scales the margin, not the distance.
    m10, d10 = input_margins(linear([[10.0, 10.0], [0, 0], [0, 0]], [0, 0, -50.0]), x,
                             torch.tensor([0, 0]))
    assert m10.tolist() == pytest.approx([40.0, -10.0]) and d10 == pytest.approx(d)


def test_it_agrees_with_the_ray_probe_on_a_straight_boundary():
    head = linear([[0.0, 0.0], [2.0, 1.0]], [0.0, -1.0])  # class 1 where 2 x1 + x2 > 1
    points = torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.5, 2.0]])
    _, d = input_margins(head, points, torch.tensor([1, 1, 1]))
    exact = (2 * points[:, 0] + points[:, 1] - 1) / np.sqrt(5)
    assert d.tolist() == pytest.approx(exact.tolist())
    rays = boundary_distances(head, points)
    assert rays == pytest.approx(d, rel=2e-3)  # within the rays' 0.12% (module doc)


def test_images_are_measured_in_pixel_units():
    # 1x1x2 images, mean 0.5 and std 0.25: the model sees x = (p - 0.5) / 0.25 and gives
    # logits (0, x1 - x2). For pixels p = (0.9, 0.1): x = (1.6, -1.6), margin of class 1 is
    # 3.2; its gradient in pixels is (1, -1) / 0.25, norm 4 sqrt(2), so the distance is
    # 3.2 / (4 sqrt(2)) = 0.5657: the pixel pair must move (0.4, -0.4) to tie.
    model = nn.Sequential(nn.Flatten(), linear([[0.0, 0.0], [1.0, -1.0]], [0.0, 0.0]))
    images = torch.tensor([[[[230, 26]]]], dtype=torch.uint8)  # 0.902, 0.102
    m, d = input_margins(model, images, torch.tensor([1]), mean=(0.5,), std=(0.25,))
    p1, p2 = 230 / 255, 26 / 255
    assert m[0] == pytest.approx(((p1 - 0.5) - (p2 - 0.5)) / 0.25, rel=1e-6)
    assert d[0] == pytest.approx((p1 - p2) / 2 * np.sqrt(2), rel=1e-6)


def test_eval_mode_keeps_each_sample_to_itself():
    """BatchNorm in eval mode: one sample's margin does not depend on its batch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    model(torch.randn(64, 3))  # running statistics away from their start
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    _, whole = input_margins(model, x, y)
    _, alone = input_margins(model, x[2:3], y[2:3])
    _, batched = input_margins(model, x, y, batch=2)
    assert alone[0] == pytest.approx(whole[2], rel=1e-5) and batched == pytest.approx(whole)
    assert not model.training


def test_the_trial_metric_averages_over_the_minority_classes():
    # 5 classes, train counts 50, 40, 30, 20, 10: the minority class (20% of 5) is class 4.
    # logits (0, 0, 0, 0, x1): class 4's margin is x1, gradient (1, 0): distance x1.
    head = linear([[0.0, 0.0]] * 4 + [[1.0, 0.0]], [0.0] * 5)
    data = SimpleNamespace(
        train_x=torch.tensor([[2.0, 5.0], [4.0, 1.0], [7.0, 0.0]]),
        train_y=torch.tensor([4, 4, 0]),
        test_x=torch.tensor([[-1.0, 0.0], [3.0, 3.0]]), test_y=torch.tensor([4, 1]),
        mean=None, std=None, input_shape=(2,))
    result = SimpleNamespace(model=head, train_counts=[50, 40, 30, 20, 10])
    got = compute_trial_metrics(["minority_input_margin"], result, data)
    assert got == pytest.approx({"minority_input_margin": 3.0, "minority_logit_margin": 3.0,
                                 "minority_input_margin_test": -1.0,
                                 "minority_logit_margin_test": -1.0})
