"""The registered augmentation policies (`augment=...`), one small factory each.

A factory takes the image height and width and returns a callable on uint8 batches
(B, C, H, W) -> uint8 (B, C, H, W), or None for no augmentation. With `batched=False` the
AutoAugment family runs torchvision's own v2 transform once per image (the reference path,
slower; used by the benchmark). As in the AutoAugment, RandAugment and TrivialAugment papers'
CIFAR setups, those policies come after the standard random crop and flip.
"""

from __future__ import annotations

from imbtrain.augment.auto import (
    AugMix,
    AutoAugmentCIFAR10,
    PerImage,
    RandAugment,
    torchvision_v2,
)
from imbtrain.augment.auto import TrivialAugmentWide as BatchedTrivialAugmentWide
from imbtrain.augment.core import Policy
from imbtrain.augment.flip_crop import FlipCrop
from imbtrain.registry import AUGMENTATIONS


def _after_flip_crop(height: int, width: int, policy: Policy) -> Policy:
    return torchvision_v2().Compose([FlipCrop(height, width), policy])


@AUGMENTATIONS.register("none")
def no_augmentation(height: int, width: int, *, batched: bool = True) -> None:
    """The raw images."""
    return None


@AUGMENTATIONS.register("flip_crop")
def flip_crop(height: int, width: int, *, batched: bool = True) -> Policy:
    """Random crop of the zero-padded image and horizontal flip with p 0.5."""
    return FlipCrop(height, width)


@AUGMENTATIONS.register("autoaugment")
def autoaugment(height: int, width: int, *, batched: bool = True) -> Policy:
    """Flip/crop, then AutoAugment's CIFAR-10 policy."""
    if batched:
        policy = AutoAugmentCIFAR10(height, width)
    else:
        v2 = torchvision_v2()
        policy = PerImage(v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
    return _after_flip_crop(height, width, policy)


@AUGMENTATIONS.register("trivialaugment")
def trivialaugment(height: int, width: int, *, batched: bool = True) -> Policy:
    """Flip/crop, then TrivialAugmentWide."""
    policy = (BatchedTrivialAugmentWide(height, width) if batched
              else PerImage(torchvision_v2().TrivialAugmentWide()))
    return _after_flip_crop(height, width, policy)


@AUGMENTATIONS.register("randaugment")
def randaugment(height: int, width: int, *, batched: bool = True) -> Policy:
    """Flip/crop, then RandAugment (2 operations, magnitude 9 of 31)."""
    policy = RandAugment(height, width) if batched else PerImage(torchvision_v2().RandAugment())
    return _after_flip_crop(height, width, policy)


@AUGMENTATIONS.register("augmix")
def augmix(height: int, width: int, *, batched: bool = True) -> Policy:
    """Flip/crop, then AugMix (severity 3, 3 chains of depth 1-3, alpha 1)."""
    policy = AugMix(height, width) if batched else PerImage(torchvision_v2().AugMix())
    return _after_flip_crop(height, width, policy)
