"""A small, fast convolutional net for the embedded image sets (8x8 digits, 28x28 MNIST).

Three conv3x3-BN-ReLU blocks (32, 64, 128 channels), 2x2 max-pools after the first two, global
average pooling: about 93k parameters, trains to high accuracy on digits / mnist5k on a CPU in
seconds. Any channel count and image size (ceil-mode pooling keeps tiny images alive).
"""

from __future__ import annotations

from torch import nn

from imbtrain.models.base import ImbModel
from imbtrain.models.registry import register_model


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


@register_model("cnn")
def cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    widths: tuple[int, ...] = (32, 64, 128),
) -> ImbModel:
    """Conv-BN-ReLU blocks of `widths` channels, max-pool between them, global average pool."""
    layers: list[nn.Module] = []
    c_in = input_shape[0]
    for i, c_out in enumerate(widths):
        if i > 0:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        layers += _conv_bn_relu(c_in, c_out)
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return ImbModel(nn.Sequential(*layers), feature_dim=c_in, num_classes=num_classes)
