"""Any timm model as `timm/<name>`: timm's network as the backbone, our own linear head.

`timm.create_model(name, pretrained=False, num_classes=0, in_chans=C)` returns the pooled
features (timm's `num_classes=0` removes the classifier); the head is an nn.Linear like every
other ImbModel's, so LDAM, MiSLAS and Joint-SSL work on timm models too. Nothing is ever
downloaded: `pretrained` is always False (pre-trained weights come from a local file, loaded
elsewhere).

Fixed-size models (ViT, DeiT, BEiT, Swin, ...) are built for the data's image size: we pass
`img_size=(H, W)` and fall back to building without it when the model's constructor does not
take it (CNNs raise TypeError). A ViT with 16x16 patches thus sees a 2x2 grid at 32x32; pass
`patch_size=4` for a finer one. Swin (timm 1.0) shrinks its windows to fit the patch grid, so
`timm/swin_tiny_patch4_window7_224` runs at 32x32. An image smaller than a model's total
stride or patch (e.g. 8x8 digits through a ViT-16 or ConvNeXt) fails at the first forward.
"""

from __future__ import annotations

import difflib
import functools

from torch import nn

from imbtrain.errors import UserError
from imbtrain.models.base import ImbModel
from imbtrain.models.registry import Builder, register_model_family

PREFIX = "timm/"
RESERVED = ("pretrained", "num_classes", "in_chans")


@register_model_family("timm/<name>")
def resolve_timm(name: str) -> Builder | None:
    """`timm/resnet18` -> a builder; UserError if timm has no such architecture."""
    if not name.startswith(PREFIX):
        return None
    import timm  # lazy: importing timm takes a second; most runs never need it

    timm_name = name.removeprefix(PREFIX)
    if not timm.is_model(timm_name):
        close = difflib.get_close_matches(timm_name, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(
            f"model {name!r}: timm {timm.__version__} has no model {timm_name!r} "
            f"(see timm.list_models('*pattern*')){hint}"
        )
    return functools.partial(timm_model, timm_name=timm_name)


def timm_backbone(timm_name: str, input_shape: tuple[int, ...], **kwargs) -> nn.Module:
    """timm's network without its classifier, for `input_shape` (C, H, W), random init."""
    import timm

    clash = sorted(set(RESERVED) & set(kwargs))
    if clash:
        raise UserError(
            f"timm/{timm_name}: option(s) {', '.join(clash)} are set by imbtrain "
            "(weights are never downloaded; pre-trained weights come from a local file)"
        )
    channels, height, width = input_shape
    build = functools.partial(
        timm.create_model, timm_name, pretrained=False, num_classes=0, in_chans=channels
    )
    if "img_size" not in kwargs:
        try:
            return build(img_size=(height, width), **kwargs)
        except TypeError:
            pass  # the constructor does not take img_size: a size-agnostic model (a CNN)
    try:
        return build(**kwargs)
    except TypeError as err:  # an option the model does not take
        raise UserError(f"timm/{timm_name} rejected option(s) {sorted(kwargs)}: {err}") from err


def timm_model(
    input_shape: tuple[int, ...], num_classes: int, timm_name: str, **kwargs
) -> ImbModel:
    """ImbModel around timm's `timm_name`; extra kwargs go to `timm.create_model`."""
    backbone = timm_backbone(timm_name, input_shape, **kwargs)
    # timm >= 1.0: models with a pre-logits layer (MobileNetV3's conv_head, ...) output
    # head_hidden_size features, not num_features, once the classifier is removed.
    feature_dim = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    return ImbModel(backbone, feature_dim=feature_dim, num_classes=num_classes)
