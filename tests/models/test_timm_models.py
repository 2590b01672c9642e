"""Any timm model as an ImbModel (imbtrain/models/timm_models.py): sizes worked out by hand,
fixed-size models built for the image size, the pre-logits width, no download, options."""

from __future__ import annotations

import pytest
import torch

from imbtrain.errors import UserError
from imbtrain.models import count_parameters, create_model
from tests.models.test_models import built


def test_timm_resnet18_one_channel_seven_classes():
    model = built("timm/resnet18", (1, 28, 28), 7)
    assert model.feature_dim == 512 and model.backbone.conv1.weight.shape == (64, 1, 7, 7)
    # timm's resnet18: 11,689,512 with a 3-channel stem and 1000 classes; drop the fc
    # (512,000 + 1,000), two of the three stem channels (2 * 64 * 7 * 7), add our head.
    assert count_parameters(model) == 11_689_512 - 513_000 - 2 * 64 * 49 + 512 * 7 + 7
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 7)


@torch.no_grad()
def test_timm_fixed_size_model_is_built_for_the_image_size():
    model = create_model("timm/vit_tiny_patch16_224", (3, 32, 32), 4).eval()
    # 32 / 16 = a 2x2 patch grid plus the class token.
    assert model.backbone.pos_embed.shape == (1, 5, 192) and model.feature_dim == 192
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_timm_feature_dim_is_the_pre_logits_width():
    # MobileNetV3 puts a 1x1 conv_head (1024 wide here) after its last stage (num_features).
    model = create_model("timm/mobilenetv3_small_050", (3, 32, 32), 3).eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, model.feature_dim)


def test_timm_never_downloads():
    with pytest.raises(UserError, match="pretrained"):
        create_model("timm/resnet18", (3, 32, 32), 10, pretrained=True)


def test_timm_options_pass_through_and_bad_ones_are_user_errors():
    assert create_model("timm/resnet18", (3, 32, 32), 10, drop_rate=0.2).backbone.drop_rate == 0.2
    with pytest.raises(UserError, match=r"timm/resnet18 rejected option\(s\) \['foo'\]"):
        create_model("timm/resnet18", (3, 32, 32), 10, foo=1)
