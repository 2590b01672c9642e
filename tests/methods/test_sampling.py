"""The epoch's sample order (imbtrain/methods/sampling.py): shuffle, the balanced sampler and
the resample method that asks for it."""

from __future__ import annotations

import pytest
import torch

from imbtrain.methods.resample import ResampleMethod
from imbtrain.methods.sampling import epoch_indices
from tests.methods.helpers import cfg, fake_data


def test_balanced_sampler_draws_classes_near_uniformly():
    # 30 epochs of N = 1000 draws = 30,000 draws. Each draw picks class c with probability
    # 1/3, so a class share has binomial sd sqrt(1/3 * 2/3 / 30000) = 0.0027; the tolerance
    # 0.02 is over 7 sd (never fails by chance), yet an unbalanced sampler gives 0.9 / 0.09 /
    # 0.01 and a sampler that ignores one class's weight misses by > 0.1.
    torch.manual_seed(0)
    data = fake_data([900, 90, 10])
    draws = torch.cat([epoch_indices(data.train_y, "balanced") for _ in range(30)])
    assert draws.numel() == 30_000 and draws.dtype == torch.int64
    shares = torch.bincount(data.train_y[draws], minlength=3).double() / draws.numel()
    assert shares.tolist() == pytest.approx([1 / 3] * 3, abs=0.02)


def test_shuffle_is_a_permutation_and_reproducible_from_the_global_rng():
    y = fake_data([5, 3]).train_y
    torch.manual_seed(3)
    first = epoch_indices(y, "shuffle")
    assert sorted(first.tolist()) == list(range(8))
    torch.manual_seed(3)
    assert torch.equal(first, epoch_indices(y, "shuffle"))
    with pytest.raises(ValueError, match="shuffle, balanced"):
        epoch_indices(y, "stratified")


def test_resample_method_is_balanced_every_epoch():
    method = ResampleMethod(cfg(), fake_data([9, 1]))
    assert [method.sampling(e) for e in (0, 5, 9)] == ["balanced"] * 3
    assert method.class_weights(0) is None
