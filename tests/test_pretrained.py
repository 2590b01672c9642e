"""Loading pre-trained weights onto an ImbModel's backbone (imbtrain/pretrained.py)."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from imbtrain.errors import UserError
from imbtrain.models import create_model
from imbtrain.models.base import ImbModel
from imbtrain.pretrained import load_pretrained

SHAPE = (3, 8, 8)


def cnn(seed, shape=SHAPE, classes=3):
    torch.manual_seed(seed)
    return create_model("cnn", shape, classes)


def assert_same_backbone(a, b):
    for (ka, va), (kb, vb) in zip(a.backbone.state_dict().items(),
                                  b.backbone.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka


@pytest.mark.parametrize("layout", ["imbtrain", "backbone_only", "wrapped_ddp"])
def test_own_weights_load_into_a_fresh_model(tmp_path, layout):
    src = cnn(0)
    with torch.no_grad():  # make the BN buffers differ from a fresh model's too
        src.train()(torch.rand(4, *SHAPE))
    state = {"imbtrain": src.state_dict(),
             "backbone_only": src.backbone.state_dict(),
             "wrapped_ddp": {"epoch": 3, "state_dict": {"module." + k: v for k, v
                                                        in src.state_dict().items()}},
             }[layout]
    torch.save(state, tmp_path / "w.pt")
    dst = cnn(1, classes=5)  # another task: 5 classes
    head_before = dst.head.weight.detach().clone()
    report = load_pretrained(dst, tmp_path / "w.pt")
    assert_same_backbone(src, dst)
    assert torch.equal(dst.head.weight, head_before)  # the head keeps its fresh init
    assert report["loaded"] == ["backbone." + k for k in src.backbone.state_dict()]
    assert len(report["loaded"]) == 18
    assert report["reinitialised"] == ["head.weight", "head.bias"]
    assert report["ignored"] == (["head.weight", "head.bias"] if layout != "backbone_only"
                                 else [])


def test_timm_resnet18_state_dict_loads_into_timm_model(tmp_path):
    import timm

    torch.manual_seed(0)
    ref = timm.create_model("resnet18", num_classes=10)  # random init, no download
    torch.save({"model": ref.state_dict()}, tmp_path / "resnet18.pth")
    model = create_model("timm/resnet18", (3, 32, 32), 10)
    report = load_pretrained(model, tmp_path / "resnet18.pth")
    backbone_keys = list(model.backbone.state_dict())
    assert len(report["loaded"]) == len(backbone_keys) == len(ref.state_dict()) - 2
    assert report["ignored"] == ["fc.weight", "fc.bias"]  # timm's classifier: not loaded
    assert report["reinitialised"] == ["head.weight", "head.bias"]
    assert torch.equal(model.backbone.conv1.weight, ref.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, ref.layer4[1].bn2.running_var)


def test_backbone_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    torch.save(cnn(0, shape=(1, 8, 8)).state_dict(), tmp_path / "gray.pt")
    with pytest.raises(UserError, match=r"'0.weight' has shape \(32, 1, 3, 3\) in the file but "
                                        r"\(32, 3, 3, 3\) in model"):
        load_pretrained(cnn(1), tmp_path / "gray.pt")


def test_weights_of_another_model_are_refused(tmp_path):
    import timm

    torch.save(timm.create_model("resnet18", num_classes=10).state_dict(), tmp_path / "r18.pt")
    with pytest.raises(UserError, match="only 0 of the backbone's 18 tensors"):
        load_pretrained(cnn(1), tmp_path / "r18.pt")


def test_classifier_inside_the_backbone_with_another_shape_is_reinitialised(tmp_path):
    def model(k):
        torch.manual_seed(k)
        backbone = nn.Sequential(OrderedDict(features=nn.Linear(4, 6),
                                             classifier=nn.Linear(6, 3 + k)))
        return ImbModel(backbone, feature_dim=3 + k, num_classes=2)

    torch.save(model(0).state_dict(), tmp_path / "w.pt")
    dst = model(1)
    report = load_pretrained(dst, tmp_path / "w.pt")
    assert report["loaded"] == ["backbone.features.weight", "backbone.features.bias"]
    assert report["reinitialised"] == ["head.weight", "head.bias",
                                       "backbone.classifier.weight", "backbone.classifier.bias"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(UserError, match="pretrained weights not found: .*nowhere.pt"):
        load_pretrained(cnn(0), tmp_path / "nowhere.pt")


def test_a_file_without_tensors_is_refused(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "empty.pt")
    with pytest.raises(UserError, match="no state dict found"):
        load_pretrained(cnn(0), tmp_path / "empty.pt")


# ---------------------------------------------------------------- pretrain


def tiny_cfg(**kw):
    from imbtrain.config import TrainConfig

    base = dict(dataset="synthetic", synthetic_classes=3, synthetic_shape="3x8x8",
                synthetic_samples=12, train_ratio=0.5, model="cnn", epochs=2, batch_size=8,
                lr=0.05, device="cpu")
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("objective", ["vicreg", "simclr"])
def test_pretrain_writes_weights_that_load(tmp_path, objective):
    from imbtrain.config import load_config
    from imbtrain.pretrain import pretrain

    cfg = tiny_cfg()
    lines = []
    path = pretrain(cfg, tmp_path / "ssl", objective=objective, log=lines.append)
    assert path == tmp_path / "ssl" / "pretrained.pt"
    assert "using augment=flip_crop" in "\n".join(lines)
    assert sum(line.startswith("pretrain epoch") for line in lines) == 2
    assert load_config(tmp_path / "ssl" / "config.yaml") == cfg
    torch.manual_seed(0)
    fresh = create_model("cnn", (3, 8, 8), 3)  # the same init pretrain started from (seed 0)
    model = copy_of(fresh)
    report = load_pretrained(model, path)
    assert len(report["loaded"]) == 18
    assert not torch.equal(model.backbone[0].weight, fresh.backbone[0].weight)  # it trained


def test_pretrain_on_vectors_uses_scarf_views(tmp_path):
    from imbtrain.pretrain import pretrain, scarf_view

    lines = []
    cfg = tiny_cfg(synthetic_shape="6", model="mlp", epochs=1)
    path = pretrain(cfg, tmp_path, log=lines.append)
    assert "SCARF" in lines[0]
    mlp = create_model("mlp", (6,), 3)
    assert len(load_pretrained(mlp, path)["loaded"]) == len(mlp.backbone.state_dict()) == 4
    x = torch.arange(12.0).view(4, 3)
    v = scarf_view(x, rate=1.0)
    assert all(set(v[:, j].tolist()) <= set(x[:, j].tolist()) for j in range(3))
    assert torch.equal(scarf_view(x, rate=0.0), x)


def copy_of(model):
    import copy

    return copy.deepcopy(model)
