"""Zagoruyko & Komodakis (2016), "Wide Residual Networks": WRN-d-k for CIFAR-sized images.

A 3x3 conv to 16 channels, three groups of n = (d - 4) / 6 pre-activation blocks
(BN-ReLU-conv3x3, BN-ReLU-[dropout]-conv3x3) with 16k, 32k and 64k channels (stride 1, 2, 2),
a final BN-ReLU, global average pooling and the linear head. A 1x1 conv shortcut wherever the
width or resolution changes (the paper's and the official code's choice). `wrn_28_10` is
registered; any `wrn_<depth>_<width>` name resolves through the family below.
Parameter counts (3 channels, 10 classes): WRN-16-2 691,674; WRN-28-10 36,479,194 (36.5M).
"""

from __future__ import annotations

import re

import torch.nn.functional as F
from torch import Tensor, nn

from imbtrain.errors import UserError
from imbtrain.models.base import ImbModel
from imbtrain.models.registry import Builder, register_model, register_model_family


class WideBlock(nn.Module):
    """Pre-activation basic block; the shortcut taps the activated input when it is a conv."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        identity = stride == 1 and c_in == c_out
        self.shortcut = None if identity else nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv1(act)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        # As in the official code: a projection shortcut sees BN-ReLU(x), an identity sees x.
        return out + (x if self.shortcut is None else self.shortcut(act))


def blocks_per_group(depth: int) -> int:
    """n = (depth - 4) / 6; UserError unless depth = 6n + 4 with n >= 1."""
    if depth < 10 or (depth - 4) % 6 != 0:
        raise UserError(
            f"WideResNet depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}"
        )
    return (depth - 4) // 6


def wide_resnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    depth: int = 28,
    width: int = 10,
    dropout: float = 0.0,
) -> ImbModel:
    """WRN-`depth`-`width`, kaiming-initialised as in the official code."""
    n = blocks_per_group(depth)
    if width < 1:
        raise UserError(f"WideResNet width must be >= 1, got {width}")
    widths = (16 * width, 32 * width, 64 * width)
    layers: list[nn.Module] = [nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)]
    c_in = 16
    for group, c_out in enumerate(widths):
        for block in range(n):
            stride = 2 if group > 0 and block == 0 else 1
            layers.append(WideBlock(c_in, c_out, stride, dropout))
            c_in = c_out
    layers += [nn.BatchNorm2d(c_in), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    model = ImbModel(nn.Sequential(*layers), feature_dim=c_in, num_classes=num_classes)
    _init_weights(model)
    return model


def _init_weights(model: nn.Module) -> None:
    # Official code / xternalz's port: He init (fan_out) for convs, zero linear bias.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)


@register_model("wrn_28_10")
def wrn_28_10(input_shape: tuple[int, ...], num_classes: int, dropout: float = 0.0) -> ImbModel:
    """WRN-28-10 (36.5M parameters), the paper's CIFAR WideResNet."""
    return wide_resnet(input_shape, num_classes, depth=28, width=10, dropout=dropout)


@register_model_family("wrn_<depth>_<width>")
def resolve_wrn(name: str) -> Builder | None:
    """`wrn_16_2` -> WRN-16-2; None for names of other families, UserError for a bad depth."""
    match = re.fullmatch(r"wrn_(\d+)_(\d+)", name)
    if match is None:
        return None
    depth, width = int(match[1]), int(match[2])
    blocks_per_group(depth)  # fail at name-check time, before anything is built
    if width < 1:
        raise UserError(f"WideResNet width must be >= 1, got {width} in {name!r}")

    def builder(input_shape: tuple[int, ...], num_classes: int, dropout: float = 0.0) -> ImbModel:
        return wide_resnet(input_shape, num_classes, depth=depth, width=width, dropout=dropout)

    return builder
