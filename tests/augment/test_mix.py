"""CutMix and Mixup: the mixed images and targets by hand, and every registered mixer."""

from __future__ import annotations

import pytest
import torch

from imbtrain.augment import MIXES, build_augmentation
from imbtrain.augment.mix import cutmix_with
from tests.augment.helpers import make_cfg, make_data


def _recover_pairs(t_mixed):
    """From one-hot rows mixed with lam: (lam, partner of each row, rows with a partner)."""
    k = t_mixed.shape[0]
    mixed = [i for i in range(k) if t_mixed[i, i] < 1]
    lam = t_mixed[mixed[0], mixed[0]]
    partner = torch.tensor([int((t_mixed[i] - torch.eye(k)[i] * t_mixed[i, i]).argmax())
                            if i in mixed else i for i in range(k)])
    return lam, partner, mixed


@pytest.mark.parametrize("shape", [(3, 4, 4), (5,)], ids=["images", "vectors"])
def test_mixup_is_lam_x_plus_one_minus_lam_partner(shape):
    aug = build_augmentation(make_cfg(mix="mixup", mix_alpha=0.4), make_data(shape), "cpu")
    x, t = torch.randn(8, *shape), torch.eye(8)
    torch.manual_seed(3)
    xm, tm = aug.mix(x, t)
    assert torch.allclose(tm.sum(1), torch.ones(8))
    lam, partner, mixed = _recover_pairs(tm)
    assert 0 < lam < 1 and len(mixed) > 0
    assert torch.allclose(xm, lam * x + (1 - lam) * x[partner], atol=1e-6)


def test_cutmix_lambda_is_one_minus_box_area():
    aug = build_augmentation(make_cfg(mix="cutmix"), make_data((1, 8, 8)), "cpu")
    x = torch.arange(1.0, 9.0).view(8, 1, 1, 1).expand(8, 1, 8, 8)  # image i is constant i+1
    torch.manual_seed(1)
    xm, tm = aug.mix(x, torch.eye(8))
    assert torch.allclose(tm.sum(1), torch.ones(8))
    lam, partner, mixed = _recover_pairs(tm)
    changed = xm != x
    area = int(changed[mixed[0]].sum())
    assert 0 < area < 64
    assert lam.item() == pytest.approx(1 - area / 64)
    for i in mixed:  # the same box everywhere, filled from the partner
        assert changed[i].equal(changed[mixed[0]])
        assert (xm[i][changed[i]] == partner[i] + 1).all()


def test_cutmix_with_box_by_hand():
    x, t = torch.zeros(2, 1, 4, 4), torch.eye(2)
    x[1] = 1.0
    box = torch.tensor([[1.0, 2.0, 3.0, 2.0]])  # rows 1..3, cols 2..3: 6 of 16 pixels
    xm, tm = cutmix_with(x, t, box, torch.tensor([1, 0]))
    assert xm[0, 0].tolist() == [[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]
    assert tm[0].tolist() == pytest.approx([10 / 16, 6 / 16])
    assert tm[1].tolist() == pytest.approx([6 / 16, 10 / 16])


def test_mix_none_is_identity():
    aug = build_augmentation(make_cfg(), make_data((1, 8, 8)), "cpu")
    x, t = torch.randn(4, 1, 8, 8), torch.eye(4)
    assert aug.mix(x, t) == (x, t)
    assert set(MIXES) == {"none", "cutmix", "mixup"}


@pytest.mark.parametrize("mix", MIXES.names())
def test_every_mix_keeps_shapes_and_gives_distributions(mix):
    torch.manual_seed(0)
    x, t = torch.randn(6, 3, 8, 8), torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]
    mixed_x, mixed_t = MIXES[mix](x, t, 1.0)
    assert mixed_x.shape == x.shape and mixed_t.shape == t.shape
    assert (mixed_t >= 0).all() and torch.allclose(mixed_t.sum(1), torch.ones(6))
