"""Data augmentation on the device, per image, reproducible from torch's RNG state.

    >>> from imbtrain.augment import build_augmentation, AUGMENTATIONS
    >>> sorted(AUGMENTATIONS)
    ['augmix', 'autoaugment', 'flip_crop', 'none', 'randaugment', 'trivialaugment']

`build_augmentation(cfg, data, device)` reads `cfg.augment`, `cfg.mix`, `cfg.mix_alpha` and
`cfg.random_erasing`; the returned `Augmentation` has `train_views(x)`, `eval_view(x)` and
`mix(x, t)`. Every random choice is drawn per image with torch's global RNG on the batch's
device (never numpy or `random`), so restoring torch's CPU and CUDA RNG states from a checkpoint
replays augmentation exactly. A new policy is one `@AUGMENTATIONS.register("name")` factory
`(height, width, *, batched=True) -> policy | None` (like those of `policies.py`); a new mixer
one `@MIXES.register("name")` function `(x, t, alpha) -> (x, t)` (like those of `mix.py`), each
in a module imported here. The registries live in `imbtrain.registry`.
"""

# Importing these modules fills the registries.
from imbtrain.augment import mix, ops, policies  # noqa: F401
from imbtrain.augment.core import Augmentation, build_augmentation
from imbtrain.registry import AUGMENT_OPS, AUGMENTATIONS, MIXES

register_augmentation = AUGMENTATIONS.register
"""`@register_augmentation("name")`: `AUGMENTATIONS.register`."""
register_mix = MIXES.register
"""`@register_mix("name")`: `MIXES.register`."""

__all__ = [
    "AUGMENT_OPS",
    "AUGMENTATIONS",
    "MIXES",
    "Augmentation",
    "build_augmentation",
    "register_augmentation",
    "register_mix",
]
