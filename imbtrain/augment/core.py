"""`Augmentation`: what the training loop calls on each batch, already on the device.

train_views: uint8 images -> policy (uint8) -> float, (x / 255 - mean) / std -> random erasing.
eval_view:   the same conversion, nothing random.
mix:         CutMix / Mixup of the float batch and its soft targets.
Vectors (B, D) are already standardised floats: only `augment=none`, no erasing, and Mixup.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from imbtrain.augment.erasing import random_erasing
from imbtrain.augment.ops import check_channels
from imbtrain.errors import UserError
from imbtrain.registry import AUGMENTATIONS, MIXES

# A policy (`AUGMENTATIONS` holds factories `(height, width, *, batched=True) -> policy | None`)
# maps uint8 batches (B, C, H, W) to uint8 batches; a mixer (`MIXES`) takes a float batch,
# soft targets (B, K) and the Beta parameter alpha and returns the mixed pair.
Policy = Callable[[Tensor], Tensor]
PolicyFactory = Callable[..., Policy | None]
Mixer = Callable[[Tensor, Tensor, float], tuple[Tensor, Tensor]]


class Augmentation:
    """Per-batch augmentation on the device; all randomness from torch's global RNG.

    Example:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> cfg = SimpleNamespace(augment="flip_crop", mix="none", mix_alpha=1.0,
        ...                       random_erasing=0.0)
        >>> data = SimpleNamespace(name="demo", is_image=True, input_shape=(1, 8, 8),
        ...                        mean=(0.5,), std=(0.25,), num_classes=10)
        >>> aug = build_augmentation(cfg, data, "cpu")
        >>> x = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
        >>> round(aug.eval_view(x)[0, 0, 0, 0].item(), 4)  # (1 - 0.5) / 0.25
        2.0
        >>> aug.train_views(x).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, policy: Policy | None, mixer: Mixer, mix_alpha: float,
                 erasing_p: float, mean: tuple[float, ...] | None,
                 std: tuple[float, ...] | None, device: torch.device) -> None:
        self.policy = policy
        self.mixer, self.mix_alpha = mixer, mix_alpha
        self.erasing_p = erasing_p
        self.is_image = mean is not None  # vectors come without mean and std
        if self.is_image:
            mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
            std_t = torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
            # (x / 255 - mean) / std = x * scale + shift, one fused addcmul on the device
            self._scale = 1.0 / (255.0 * std_t)
            self._shift = -mean_t / std_t

    def eval_view(self, x: Tensor) -> Tensor:
        """float32 input of the model: normalised images, vectors unchanged."""
        if not self.is_image:
            return x.to(torch.float32)
        _check_uint8(x)
        return torch.addcmul(self._shift, x.to(torch.float32), self._scale)

    def train_views(self, x: Tensor) -> Tensor:
        """One random training view of each image: policy, conversion, random erasing."""
        if not self.is_image:
            return x.to(torch.float32)
        _check_uint8(x)
        if self.policy is not None:
            x = self.policy(x)
        return random_erasing(self.eval_view(x), self.erasing_p)

    def mix(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """CutMix / Mixup of float x and soft targets t (B, K); identity for mix=none."""
        return self.mixer(x, t, self.mix_alpha)


def _check_uint8(x: Tensor) -> None:
    if x.dtype != torch.uint8:  # the data contract: images stay uint8 until here
        raise TypeError(f"image batches must be uint8 (N, C, H, W), got {x.dtype}")


def _allowed(registry: dict) -> str:
    return "|".join(registry)


def _check_vectors(cfg, name: str) -> None:
    """Vectors admit no image policy, no erasing, no CutMix."""
    given = f"dataset '{name}' gives vectors"
    if cfg.augment != "none":
        raise UserError(f"augment={cfg.augment} needs image data; {given}; use augment=none")
    if cfg.mix == "cutmix":
        raise UserError(f"mix=cutmix needs image data; {given}; use mix=mixup or mix=none")
    if cfg.random_erasing > 0:
        raise UserError(f"random_erasing={cfg.random_erasing} needs image data; {given}; "
                        f"use random_erasing=0")


def build_augmentation(cfg, data, device: torch.device | str) -> Augmentation:
    """The Augmentation of `cfg.augment`, `cfg.mix`, `cfg.mix_alpha`, `cfg.random_erasing`
    for `data` (an ImbalancedData, or anything with is_image, input_shape, mean, std)."""
    if cfg.augment not in AUGMENTATIONS:
        raise UserError(f"augment={cfg.augment} is unknown; allowed: {_allowed(AUGMENTATIONS)}")
    if cfg.mix not in MIXES:
        raise UserError(f"mix={cfg.mix} is unknown; allowed: {_allowed(MIXES)}")
    device = torch.device(device)
    mixer = MIXES.get(cfg.mix)
    name = getattr(data, "name", "?")
    if not data.is_image:
        _check_vectors(cfg, name)
        return Augmentation(None, mixer, cfg.mix_alpha, 0.0, None, None, device)
    channels, height, width = data.input_shape
    if cfg.augment not in ("none", "flip_crop") and not check_channels(channels):
        raise UserError(f"augment={cfg.augment} needs 1- or 3-channel images; dataset '{name}' "
                        f"has {channels}; use augment=flip_crop or augment=none")
    mean = data.mean if data.mean is not None else (0.0,) * channels
    std = data.std if data.std is not None else (1.0,) * channels
    policy = AUGMENTATIONS.get(cfg.augment)(height, width)
    return Augmentation(policy, mixer, cfg.mix_alpha, cfg.random_erasing, mean, std, device)
