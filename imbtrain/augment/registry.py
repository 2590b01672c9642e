"""The two registries of the augmentation package: image policies and batch mixers.

A policy factory takes the image size and returns a callable on uint8 batches (B, C, H, W)
(or None for no augmentation); a mixer takes a float batch, soft targets (B, K) and the Beta
parameter alpha and returns the mixed pair. Adding one is one decorated function.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

Policy = Callable[[Tensor], Tensor]
PolicyFactory = Callable[..., Policy | None]
Mixer = Callable[[Tensor, Tensor, float], tuple[Tensor, Tensor]]

AUGMENTATIONS: dict[str, PolicyFactory] = {}
MIXES: dict[str, Mixer] = {}


def register_augmentation(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Register `factory(height, width, *, batched=True) -> policy | None` as `augment=name`."""

    def decorator(factory: PolicyFactory) -> PolicyFactory:
        if name in AUGMENTATIONS:
            raise ValueError(f"augmentation {name!r} is registered twice")
        AUGMENTATIONS[name] = factory
        return factory

    return decorator


def register_mix(name: str) -> Callable[[Mixer], Mixer]:
    """Register `mixer(x, t, alpha) -> (x, t)` as `mix=name`."""

    def decorator(mixer: Mixer) -> Mixer:
        if name in MIXES:
            raise ValueError(f"mix {name!r} is registered twice")
        MIXES[name] = mixer
        return mixer

    return decorator
