"""Stand-ins for the augmentation tests: a config and data with the fields
`build_augmentation` reads, and random uint8 images."""

from __future__ import annotations

from types import SimpleNamespace

import torch


def make_cfg(augment="none", mix="none", mix_alpha=1.0, random_erasing=0.0):
    return SimpleNamespace(augment=augment, mix=mix, mix_alpha=mix_alpha,
                           random_erasing=random_erasing)


def make_data(shape, name="images"):
    c = shape[0]
    if len(shape) == 1:
        return SimpleNamespace(name=name, is_image=False, input_shape=shape, mean=None,
                               std=None, num_classes=3)
    return SimpleNamespace(name=name, is_image=True, input_shape=shape, mean=(0.5,) * c,
                           std=(0.25,) * c, num_classes=10)


def random_images(n, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
