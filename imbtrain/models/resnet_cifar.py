"""He et al. (2016), "Deep Residual Learning for Image Recognition", section 4.2: CIFAR ResNets.

6n+2 layers: a 3x3 conv to 16 channels, three stages of n BasicBlocks with 16, 32 and 64
channels (stride 1, 2, 2), global average pooling, linear head. Shortcuts are option A
(parameter-free identity, zero-padded channels, subsampled by 2), as in the paper and in
LDAM-DRW's resnet32 (Cao et al. 2019) and akamaster's pytorch_resnet_cifar10. Parameter counts
for 3 input channels, 10 classes: 97216 n - 21926, i.e. resnet8 75,290, resnet20 269,722,
resnet32 464,154, resnet56 853,018 (the paper's 0.27M / 0.46M / 0.85M).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from imbtrain.models.base import ImbModel, kaiming_init
from imbtrain.models.registry import register_model

STAGE_WIDTHS = (16, 32, 64)


class PadShortcut(nn.Module):
    """Option-A shortcut: take every other pixel and zero-pad the new channels (no weights).

    A module rather than a lambda so that models pickle (Ray ships them between processes).
    """

    def __init__(self, extra_channels: int, stride: int) -> None:
        super().__init__()
        self.extra_channels = extra_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        front = self.extra_channels // 2
        return F.pad(x, (0, 0, 0, 0, front, self.extra_channels - front))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU (He et al. 2016, fig. 2)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        needs_shortcut = stride != 1 or c_in != c_out
        self.shortcut = PadShortcut(c_out - c_in, stride) if needs_shortcut else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def cifar_resnet_backbone(in_channels: int, blocks_per_stage: int) -> nn.Sequential:
    """The 6n+2-layer feature extractor; output (B, 64) after global average pooling."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, STAGE_WIDTHS[0], 3, padding=1, bias=False),
        nn.BatchNorm2d(STAGE_WIDTHS[0]),
        nn.ReLU(inplace=True),
    ]
    c_in = STAGE_WIDTHS[0]
    for stage, c_out in enumerate(STAGE_WIDTHS):
        for block in range(blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(BasicBlock(c_in, c_out, stride))
            c_in = c_out
    # Adaptive pooling: any image size works (the paper's 8x8 map at 32x32 input).
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def cifar_resnet(input_shape: tuple[int, ...], num_classes: int, depth: int) -> ImbModel:
    """A CIFAR ResNet of `depth` = 6n+2 layers, kaiming-initialised (akamaster, LDAM-DRW)."""
    backbone = cifar_resnet_backbone(input_shape[0], (depth - 2) // 6)
    model = ImbModel(backbone, feature_dim=STAGE_WIDTHS[-1], num_classes=num_classes)
    kaiming_init(model)
    return model


@register_model("resnet8")
def resnet8(input_shape: tuple[int, ...], num_classes: int) -> ImbModel:
    """ResNet-8: 1 block a stage."""
    return cifar_resnet(input_shape, num_classes, depth=8)


@register_model("resnet20")
def resnet20(input_shape: tuple[int, ...], num_classes: int) -> ImbModel:
    """ResNet-20: 3 blocks a stage."""
    return cifar_resnet(input_shape, num_classes, depth=20)


@register_model("resnet32")
def resnet32(input_shape: tuple[int, ...], num_classes: int) -> ImbModel:
    """ResNet-32: 5 blocks a stage."""
    return cifar_resnet(input_shape, num_classes, depth=32)


@register_model("resnet56")
def resnet56(input_shape: tuple[int, ...], num_classes: int) -> ImbModel:
    """ResNet-56: 9 blocks a stage."""
    return cifar_resnet(input_shape, num_classes, depth=56)
