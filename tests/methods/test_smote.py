"""SMOTE: synthetic samples lie between two real samples of their class; only the train
split changes; images come back as uint8 of the original shape."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from imbtrain.methods.smote import SMOTEMethod


def fake_data(x: torch.Tensor, counts: list[int]) -> SimpleNamespace:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return SimpleNamespace(num_classes=len(counts), train_counts=list(counts), train_x=x,
                           train_y=y, val_x=x[:2], val_y=y[:2], input_shape=tuple(x.shape[1:]),
                           is_image=x.dim() == 4)


def on_a_segment(s: torch.Tensor, points: torch.Tensor, tol: float = 1e-4,
                 lam_tol: float = 1e-4) -> bool:
    """Whether s = a + lam (b - a) with lam in [0, 1] for two rows a, b of `points`.

    For each pair: lam = (s - a).(b - a) / |b - a|^2 (the projection), then collinearity is
    |s - a - lam (b - a)| < tol and betweenness is -lam_tol <= lam <= 1 + lam_tol. A pair of equal
    points counts when s equals them.
    """
    for a in points:
        for b in points:
            d = b - a
            norm2 = float(d @ d)
            if norm2 < 1e-12:
                if float((s - a).norm()) < tol:
                    return True
                continue
            lam = float((s - a) @ d) / norm2
            if -lam_tol <= lam <= 1 + lam_tol and float((s - a - lam * d).norm()) < tol:
                return True
    return False


def test_every_synthetic_vector_lies_between_two_train_samples_of_its_class():
    torch.manual_seed(0)
    counts = [12, 5, 3]
    x = torch.randn(sum(counts), 4)
    data = fake_data(x, counts)
    out = SMOTEMethod(SimpleNamespace(seed=0), data).prepare_data(data)
    assert out.train_counts == [12, 12, 12]
    assert torch.bincount(out.train_y).tolist() == [12, 12, 12]
    # originals first, unchanged; then 7 + 9 = 16 synthetic samples
    assert torch.equal(out.train_x[:20], x) and out.train_x.shape == (36, 4)
    for s, c in zip(out.train_x[20:], out.train_y[20:], strict=True):
        assert c in (1, 2)
        assert on_a_segment(s, x[data.train_y == c]), f"class {int(c)} sample {s} off segment"
    # the input and the other splits are untouched
    assert data.train_counts == counts and data.train_x.shape == (20, 4)
    assert out.val_x is data.val_x


def test_smote_images_come_back_as_uint8_and_singletons_are_copied():
    torch.manual_seed(1)
    counts = [6, 3, 1]  # class 2 has one sample: duplicated, so k_neighbors = min(5, 2-1) = 1
    x = torch.randint(0, 256, (sum(counts), 1, 2, 3), dtype=torch.uint8)
    data = fake_data(x, counts)
    out = SMOTEMethod(SimpleNamespace(seed=0), data).prepare_data(data)
    assert out.train_x.dtype == torch.uint8 and out.train_x.shape == (18, 1, 2, 3)
    assert out.train_counts == [6, 6, 6]
    singles = out.train_x[out.train_y == 2]
    assert (singles == x[9]).all()  # the segment from a point to itself is that point
    flat = x.flatten(1).float()
    for s, c in zip(out.train_x[10:], out.train_y[10:], strict=True):
        # rounding to integers moves a point by at most 0.5 per pixel: sqrt(6) * 0.5 = 1.22
        # off the segment, and lam by 1.22 / |b - a| (pixels 0..255 apart: a few percent)
        assert on_a_segment(s.flatten().float(), flat[data.train_y == c], tol=1.23,
                            lam_tol=0.05)


def test_smote_leaves_balanced_data_alone():
    x = torch.randn(6, 2)
    data = fake_data(x, [3, 3])
    out = SMOTEMethod(SimpleNamespace(seed=0), data).prepare_data(data)
    assert torch.equal(out.train_x, x) and out.train_counts == [3, 3]
    assert out.train_y.tolist() == pytest.approx(data.train_y.tolist())
