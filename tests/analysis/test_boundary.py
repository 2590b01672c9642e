"""The minority margin on linear boundaries whose distances are known by hand, and the
decision-boundary pictures (Fig. 18)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from imbtrain.analysis.boundary import (
    boundary_analysis,
    boundary_distances,
    minority_margin,
    minority_points,
    plot_decision_boundaries,
)
from imbtrain.models import ImbModel


def linear_model(normal: tuple[float, float], offset: float) -> ImbModel:
    """An ImbModel on inputs (2,) whose logits are (0, n . x - offset): class 1 beyond the
    line n . x = offset. With |n| = 1, a point x lies |n . x - offset| from the boundary."""
    model = ImbModel(nn.Identity(), feature_dim=2, num_classes=2)
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[0.0, 0.0], list(normal)]))
        model.head.bias.copy_(torch.tensor([0.0, -offset]))
    return model


def test_distances_to_a_vertical_line():
    model = linear_model((1.0, 0.0), 1.0)  # boundary x1 = 1, along the 0-degree ray
    points = torch.tensor([[0.0, 0.0], [-1.0, 0.5], [1.5, -3.0]])
    # |0 - 1| = 1, |-1 - 1| = 2, |1.5 - 1| = 0.5 (on the other side: distance all the same)
    assert boundary_distances(model, points).tolist() == pytest.approx([1.0, 2.0, 0.5],
                                                                       abs=1e-6)
    assert minority_margin(model, points[:2]) == pytest.approx(1.5, abs=1e-6)


def test_an_oblique_line_is_within_the_ray_bound():
    # boundary 3 x1 + 4 x2 = 5, normal (0.6, 0.8): the origin is 1 away. The nearest of
    # 64 rays is at most pi / 64 off the normal: estimate in [1, 1 / cos(pi / 64)].
    model = linear_model((0.6, 0.8), 1.0)
    d = minority_margin(model, torch.zeros(1, 2))
    assert 1.0 - 1e-6 <= d <= 1.0 / math.cos(math.pi / 64) + 1e-6


def test_the_ray_geometry_with_8_directions():
    # Normal at 22.5 degrees, halfway between the rays at 0 and 45 degrees: along either
    # ray the line n . x = 1 is met at 1 / cos(22.5 deg) = 1.082392.
    a = math.radians(22.5)
    model = linear_model((math.cos(a), math.sin(a)), 1.0)
    d = minority_margin(model, torch.zeros(1, 2), directions=8)
    assert d == pytest.approx(1.0 / math.cos(a), abs=1e-6)


def test_no_boundary_within_the_radius_counts_as_the_radius():
    model = linear_model((1.0, 0.0), 100.0)
    assert minority_margin(model, torch.zeros(3, 2), max_radius=2.0) == pytest.approx(2.0)
    assert math.isnan(minority_margin(model, torch.zeros(0, 2)))


def test_minority_points_are_those_of_the_fewest_train_samples():
    x = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    y = torch.tensor([0, 1, 2, 2, 0])
    # counts 50, 10, 2 -> the minority class (20% of 3 classes, at least 1) is 2
    assert minority_points(x, y, [50, 10, 2]).tolist() == [[4.0, 5.0], [6.0, 7.0]]


def nearest_centre_model(centres: torch.Tensor) -> ImbModel:
    """Logits c_k . x - |c_k|^2 / 2: the class of the nearest centre, so the boundaries are
    the perpendicular bisectors between centres."""
    model = ImbModel(nn.Identity(), feature_dim=2, num_classes=len(centres))
    with torch.no_grad():
        model.head.weight.copy_(centres)
        model.head.bias.copy_(-(centres ** 2).sum(dim=1) / 2)
    return model


CENTRES = torch.tensor([[0.0, 2.0], [-1.7, -1.0], [1.7, -1.0]])


def test_three_classes_nearest_bisector():
    # From the centre of class 2, (1.7, -1): the bisector with class 1 is x1 = 0, 1.7 away
    # (along the 180-degree ray); the one with class 0 is |c2 - c0| / 2 = sqrt(1.7^2 + 3^2)
    # / 2 = 1.724 away. The margin is the nearer, 1.7.
    model = nearest_centre_model(CENTRES)
    assert minority_margin(model, CENTRES[2:]) == pytest.approx(1.7, abs=1e-6)


def test_pictures_and_margin_table(tmp_path):
    g = torch.Generator().manual_seed(0)
    counts = [40, 20, 4]
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    x = CENTRES[y] + 0.6 * torch.randn(len(y), 2, generator=g)
    # a second model to draw beside the first: the minority centre moved
    wider = CENTRES.clone()
    wider[2] = torch.tensor([1.2, -0.7])
    models = {"ERM": nearest_centre_model(CENTRES), "SAM-A": nearest_centre_model(wider)}
    margins = {k: minority_margin(m, minority_points(x, y, counts)) for k, m in models.items()}
    assert all(0.0 < v < 5.0 for v in margins.values())
    png = plot_decision_boundaries(models, x, y, tmp_path, train_counts=counts,
                                   margins=margins, resolution=60)
    assert png.name == "decision_boundary.png" and png.stat().st_size > 0

    results = pd.DataFrame({"config/method": ["erm"] * 4, "config/sam": ["none", "none",
                            "sam_a", "sam_a"], "config/seed": [0, 1, 0, 1],
                            "minority_margin": [0.2, 0.4, 0.5, 0.9]})
    paths = boundary_analysis(results, pd.DataFrame(), tmp_path)
    assert [p.name for p in paths] == ["minority_margin.png", "minority_margin.parquet",
                                       "minority_margin.md"]
    table = pd.read_parquet(paths[1]).set_index("method")
    # erm 0.2, 0.4 -> 0.3 ± 0.1; sam_a 0.5, 0.9 -> 0.7 ± 0.2
    assert table.loc["sam_a", ["minority_margin", "minority_margin_se"]].tolist() == \
        pytest.approx([0.7, 0.2])
    assert "| erm | 2 | 0.3000 ± 0.1000 |" in paths[2].read_text()
