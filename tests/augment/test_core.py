"""The augmentation pipeline (`build_augmentation`) with every registered policy: conversion
and shapes, one draw per image, reproducible from torch's RNG alone, and its errors."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from imbtrain.augment import AUGMENTATIONS, build_augmentation
from imbtrain.errors import UserError
from tests.augment.helpers import make_cfg, make_data, random_images

SHAPES = [(1, 28, 28), (1, 8, 8), (3, 32, 32)]
POLICIES = sorted(AUGMENTATIONS)


# ----------------------------------------------------------------- conversion and shapes


def test_policy_none_normalises_grayscale_pixel_by_hand():
    data = SimpleNamespace(name="mnist5k", is_image=True, input_shape=(1, 28, 28),
                           mean=(0.1307,), std=(0.3081,), num_classes=10)
    aug = build_augmentation(make_cfg(), data, "cpu")
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    x[1, 0, 3, 4] = 51  # 51 / 255 = 0.2
    out = aug.train_views(x)
    assert out.dtype == torch.float32 and out.shape == (2, 1, 28, 28)
    assert out[1, 0, 3, 4].item() == pytest.approx((0.2 - 0.1307) / 0.3081, abs=1e-6)  # 0.22493
    assert out[0, 0, 0, 0].item() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    assert torch.equal(out, aug.eval_view(x))


def test_eval_view_rgb_channels_by_hand():
    data = SimpleNamespace(name="rgb", is_image=True, input_shape=(3, 2, 2),
                           mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.1), num_classes=2)
    aug = build_augmentation(make_cfg(), data, "cpu")
    x = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    x[0, 1], x[0, 2] = 102, 255
    out = aug.eval_view(x)
    # (0 - 0.5) / 0.25 = -2, (0.4 - 0.4) / 0.2 = 0, (1 - 0.3) / 0.1 = 7
    assert out[0, :, 0, 0].tolist() == pytest.approx([-2.0, 0.0, 7.0], abs=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_returns_float_images(policy, shape):
    aug = build_augmentation(make_cfg(policy, random_erasing=0.5), make_data(shape), "cpu")
    out = aug.train_views(random_images(8, shape))
    assert out.dtype == torch.float32 and out.shape == (8, *shape)
    # values stay within the normalised range of 0..255: [-2, 2] for mean 0.5, std 0.25
    assert out.min() >= -2.0 - 1e-6 and out.max() <= 2.0 + 1e-6


@pytest.mark.parametrize("policy", ["autoaugment", "trivialaugment", "randaugment", "augmix"])
def test_torchvision_per_image_reference_runs(policy):
    x = random_images(3, (1, 8, 8))
    out = AUGMENTATIONS[policy](8, 8, batched=False)(x)
    assert out.shape == x.shape and out.dtype == torch.uint8


# ----------------------------------------------------------------- one draw per image


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)], ids=str)
@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "none"])
def test_each_image_gets_its_own_draw(policy, shape):
    """32 copies of one image come out in many different versions, also without flip/crop."""
    x = random_images(1, shape).expand(32, *shape).contiguous()
    full = AUGMENTATIONS[policy](shape[1], shape[2])
    parts = [full] if policy == "flip_crop" else [full, full.transforms[1]]  # [1]: the policy
    for part in parts:
        torch.manual_seed(0)
        out = part(x)
        distinct = torch.unique(out.flatten(1), dim=0).shape[0]
        assert distinct > 8, (policy, distinct)


def test_same_seed_same_output_whatever_numpy_and_random_do():
    cfg = make_cfg("trivialaugment", "cutmix", random_erasing=0.5)
    aug = build_augmentation(cfg, make_data((3, 32, 32)), "cpu")
    x, t = random_images(16, (3, 32, 32)), torch.eye(10)[torch.arange(16) % 10]

    def run(py_seed):
        random.seed(py_seed)
        np.random.seed(py_seed)
        return aug.mix(aug.train_views(x), t)

    torch.manual_seed(5)
    a = run(1)
    torch.manual_seed(5)
    b = run(2)
    state = torch.get_rng_state()  # what a checkpoint saves
    c = run(3)
    torch.set_rng_state(state)
    d = run(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(c[0], d[0]) and torch.equal(c[1], d[1])
    assert not torch.equal(a[0], c[0])


# ----------------------------------------------------------------- errors


def test_vector_data_refuses_image_augmentation():
    data = make_data((2,), name="toy2d")
    with pytest.raises(UserError) as err:
        build_augmentation(make_cfg("flip_crop"), data, "cpu")
    assert str(err.value) == ("augment=flip_crop needs image data; dataset 'toy2d' gives "
                              "vectors; use augment=none")
    with pytest.raises(UserError, match="mix=cutmix needs image data"):
        build_augmentation(make_cfg(mix="cutmix"), data, "cpu")
    with pytest.raises(UserError, match="random_erasing=0.1 needs image data"):
        build_augmentation(make_cfg(random_erasing=0.1), data, "cpu")
    aug = build_augmentation(make_cfg(), data, "cpu")
    x = torch.randn(4, 2)
    assert torch.equal(aug.train_views(x), x) and torch.equal(aug.eval_view(x), x)


def test_unknown_names_and_channel_counts_are_user_errors():
    with pytest.raises(UserError, match="augment=cutout is unknown; allowed: "):
        build_augmentation(make_cfg("cutout"), make_data((3, 8, 8)), "cpu")
    four = make_data((4, 8, 8))
    with pytest.raises(UserError, match="needs 1- or 3-channel images"):
        build_augmentation(make_cfg("trivialaugment"), four, "cpu")
    out = build_augmentation(make_cfg("flip_crop"), four, "cpu").train_views(
        random_images(2, (4, 8, 8)))
    assert out.shape == (2, 4, 8, 8)
