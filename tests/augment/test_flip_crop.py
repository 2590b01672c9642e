"""Flip / crop by hand: the padded crop, its padding per image size, crops of the padded
image."""

from __future__ import annotations

import torch

from imbtrain.augment.flip_crop import FlipCrop, crop_flip, crop_padding
from tests.augment.helpers import random_images


def test_crop_flip_by_hand():
    x = torch.arange(1, 17, dtype=torch.uint8).view(1, 1, 4, 4).expand(3, 1, 4, 4)
    out = crop_flip(x, top=torch.tensor([0, 0, 2]), left=torch.tensor([2, 2, 1]),
                    flip=torch.tensor([False, True, True]), padding=1)
    # padded rows 0..3, cols 2..5: a zero row on top, columns 1..3 and a zero column
    assert out[0, 0].tolist() == [[0, 0, 0, 0], [2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0]]
    assert out[1, 0].tolist() == [[0, 0, 0, 0], [0, 4, 3, 2], [0, 8, 7, 6], [0, 12, 11, 10]]
    # padded rows 2..5, cols 1..4: image rows 1..3 and a zero row, mirrored
    assert out[2, 0].tolist() == [[8, 7, 6, 5], [12, 11, 10, 9], [16, 15, 14, 13], [0, 0, 0, 0]]


def test_crop_padding_scales_with_the_image():
    assert [crop_padding(s, s) for s in (8, 28, 32, 64)] == [1, 3, 4, 4]


def test_flip_crop_outputs_are_crops_of_the_padded_image():
    x = random_images(1, (1, 8, 8)).expand(40, 1, 8, 8)
    torch.manual_seed(0)
    out = FlipCrop(8, 8)(x)
    offsets = torch.arange(3)
    top, left, flip = torch.meshgrid(offsets, offsets, torch.tensor([0, 1]), indexing="ij")
    candidates = crop_flip(x[:18], top.flatten(), left.flatten(), flip.flatten().bool(), 1)
    matches = (out[:, None] == candidates[None]).flatten(2).all(-1)  # (40, 18)
    assert matches.any(1).all()
    assert matches.any(0).sum() > 9  # most of the 18 crops drawn
