"""Random erasing: none at p = 0, one rectangle an image at p = 1."""

from __future__ import annotations

import pytest
import torch

from imbtrain.augment import build_augmentation
from imbtrain.augment.erasing import random_erasing
from tests.augment.helpers import make_cfg, make_data, random_images


def test_random_erasing_p0_is_identity():
    aug = build_augmentation(make_cfg(random_erasing=0.0), make_data((3, 32, 32)), "cpu")
    x = random_images(8, (3, 32, 32))
    assert torch.equal(aug.train_views(x), aug.eval_view(x))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 8, 8)], ids=str)
def test_random_erasing_p1_erases_one_rectangle_per_image(shape):
    torch.manual_seed(0)
    out = random_erasing(torch.ones(32, *shape), 1.0)
    boxes = set()
    for image in out:
        zero = image[0] == 0
        assert (image == 0).equal(zero.expand_as(image))  # all channels alike
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert rows.numel() > 0
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert zero[r0:r1, c0:c1].all() and zero.sum() == (r1 - r0) * (c1 - c0)
        assert r1 - r0 < shape[1] and c1 - c0 < shape[2]
        boxes.add((int(r0), int(r1), int(c0), int(c1)))
    assert len(boxes) > 16  # its own box for each image
