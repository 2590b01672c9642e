"""Data augmentation on the device, per image, reproducible from torch's RNG state.

    >>> from imbtrain.augment import build_augmentation, AUGMENTATIONS
    >>> sorted(AUGMENTATIONS)
    ['augmix', 'autoaugment', 'flip_crop', 'none', 'randaugment', 'trivialaugment']

`build_augmentation(cfg, data, device)` reads `cfg.augment`, `cfg.mix`, `cfg.mix_alpha` and
`cfg.random_erasing`; the returned `Augmentation` has `train_views(x)`, `eval_view(x)` and
`mix(x, t)`. Every random choice is drawn per image with torch's global RNG on the batch's
device (never numpy or `random`), so restoring torch's CPU and CUDA RNG states from a checkpoint
replays augmentation exactly. A new policy is one `@register_augmentation("name")` factory in
`policies.py`; a new mixer one `@register_mix("name")` function in `mix.py`.
"""

from imbtrain.augment.registry import (  # isort: split
    AUGMENTATIONS,
    MIXES,
    register_augmentation,
    register_mix,
)

# Importing these modules fills the registries.
from imbtrain.augment import mix, policies  # noqa: F401  # isort: split
from imbtrain.augment.core import Augmentation, build_augmentation

__all__ = [
    "AUGMENTATIONS",
    "MIXES",
    "Augmentation",
    "build_augmentation",
    "register_augmentation",
    "register_mix",
]
