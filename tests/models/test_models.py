"""Model registry: every model builds, has the ImbModel shape, and the published size.

Parametrised over the registry (MODELS plus one example per family), so a new model is tested
as soon as it is registered. Parameter counts are worked out by hand from the architectures.
A model with a trainer of its own (XGBoost) builds no untrained network: it is trained in
tests/test_xgb.py.
"""

from __future__ import annotations

import copy
import functools
import pickle

import pytest
import torch
from torch import nn

from imbtrain.errors import UserError
from imbtrain.models import (
    MODEL_FAMILIES,
    MODELS,
    VECTOR_MODELS,
    VECTOR_ONLY_MODELS,
    ImbModel,
    check_model_name,
    count_parameters,
    create_model,
    model_trainer,
    register_model,
)
from imbtrain.registry import TRAINERS

torch.set_num_threads(1)

# One member of each family; a new family must add one here (test_every_family_has_an_example).
FAMILY_EXAMPLES = {"wrn_<depth>_<width>": "wrn_16_2", "timm/<name>": "timm/resnet18"}
BIG = {"wrn_28_10"}  # 36.5M parameters: built once, one input shape only
IMAGE_SHAPES = [(3, 32, 32), (1, 28, 28), (1, 8, 8)]
VECTOR_SHAPES = [(16,), (5,)]  # for the vector-only (tabular) models
NETWORKS = sorted(n for n in MODELS if model_trainer(n) == "loop")  # what the loop trains
NAMES = NETWORKS + sorted(FAMILY_EXAMPLES.values())


@functools.cache
def built(name: str, input_shape: tuple[int, ...], num_classes: int) -> ImbModel:
    torch.manual_seed(0)
    return create_model(name, input_shape, num_classes).eval()


def test_every_family_has_an_example():
    assert set(FAMILY_EXAMPLES) == set(MODEL_FAMILIES)


def _cases():
    for name in NAMES:
        shapes = VECTOR_SHAPES if name in VECTOR_ONLY_MODELS else IMAGE_SHAPES
        for shape in shapes[:1] if name in BIG else shapes:
            yield pytest.param(name, shape, id=f"{name}-{'x'.join(map(str, shape))}")


@pytest.mark.parametrize("name,shape", list(_cases()))
@torch.no_grad()
def test_builds_and_gives_logits_and_features(name, shape):
    model = built(name, shape, 5)
    assert isinstance(model, ImbModel) and isinstance(model.head, nn.Linear)
    assert model.head.in_features == model.feature_dim and model.head.out_features == 5
    x = torch.randn(1 if name in BIG else 2, *shape)
    logits, feats = model(x), model.forward_features(x)
    assert logits.shape == (len(x), 5) and feats.shape == (len(x), model.feature_dim)
    torch.testing.assert_close(model.head(feats), logits)
    if len(shape) != 3:
        return
    # channels_last (a config knob) must give the same numbers.
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    cl_logits = cl_model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl_logits, logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in BIG])
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    shape = (16,) if name in VECTOR_ONLY_MODELS else (3, 16, 16)
    model = create_model(name, shape, 3).train()
    model(torch.randn(2, *shape)).logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_vector_input_only_for_vector_models(name):
    if name in VECTOR_MODELS:
        model = create_model(name, (16,), 3)
        assert model(torch.randn(4, 16)).shape == (4, 3)
    else:
        takers = ", ".join(sorted(VECTOR_MODELS))
        with pytest.raises(UserError, match=rf"takes images .*models that take vectors: {takers}$"):
            create_model(name, (16,), 3)


@pytest.mark.parametrize("name", sorted(VECTOR_ONLY_MODELS))
def test_vector_only_models_refuse_images(name):
    with pytest.raises(UserError, match=r"takes tabular vectors \(D,\), not images"):
        create_model(name, (3, 8, 8), 3)


# --- parameter counts, by hand ---------------------------------------------------------------


def _basic_block(ci: int, co: int) -> int:
    """Two 3x3 convs (no bias) and two BNs (weight + bias per channel); option A adds none."""
    return 9 * ci * co + 9 * co * co + 4 * co


def cifar_resnet_params(n: int, c: int = 3, k: int = 10) -> int:
    """He et al. (2016) 6n+2 ResNet: stem conv + BN, three stages of n blocks, linear head."""
    stages = [(16, 16), (16, 32), (32, 64)]
    blocks = sum(_basic_block(ci, co) + (n - 1) * _basic_block(co, co) for ci, co in stages)
    return 9 * c * 16 + 2 * 16 + blocks + 64 * k + k


def _wide_block(ci: int, co: int) -> int:
    """BN(ci), conv3x3 ci->co, BN(co), conv3x3 co->co, plus a 1x1 conv where widths differ."""
    return 2 * ci + 9 * ci * co + 2 * co + 9 * co * co + (ci * co if ci != co else 0)


def wrn_params(depth: int, width: int, c: int = 3, k: int = 10) -> int:
    """Zagoruyko & Komodakis WRN: stem conv, 3 groups of n blocks, final BN, linear head."""
    n = (depth - 4) // 6
    groups = [(16, 16 * width), (16 * width, 32 * width), (32 * width, 64 * width)]
    blocks = sum(_wide_block(ci, co) + (n - 1) * _wide_block(co, co) for ci, co in groups)
    return 9 * c * 16 + blocks + 2 * 64 * width + 64 * width * k + k


@pytest.mark.parametrize(
    "name,n,published",
    [("resnet8", 1, None), ("resnet20", 3, 0.27), ("resnet32", 5, 0.46), ("resnet56", 9, 0.85)],
)
def test_cifar_resnet_parameter_counts(name, n, published):
    count = count_parameters(built(name, (3, 32, 32), 10))
    # 97216 n - 21926: resnet20 269,722, resnet32 464,154, resnet56 853,018.
    assert count == cifar_resnet_params(n) == 97216 * n - 21926
    if published is not None:  # He et al. (2016), table 6
        assert count / 1e6 == pytest.approx(published, rel=0.02)
    # Input channels and classes only touch the stem conv and the head.
    assert count_parameters(built(name, (1, 28, 28), 5)) == cifar_resnet_params(n, c=1, k=5)


def test_wide_resnet_parameter_counts():
    assert wrn_params(16, 2) == 691_674
    assert count_parameters(built("wrn_16_2", (3, 32, 32), 10)) == 691_674
    assert count_parameters(built("wrn_16_2", (1, 28, 28), 5)) == wrn_params(16, 2, c=1, k=5)
    big = count_parameters(built("wrn_28_10", (3, 32, 32), 5))
    assert big == wrn_params(28, 10, k=5) == 36_479_194 - 5 * 641
    assert big / 1e6 == pytest.approx(36.5, abs=0.05)  # the paper's table 2


def test_cnn_and_mlp_parameter_counts():
    # conv weights (no bias) + BN (2 per channel) + head 128 K + K
    cnn = 9 * 3 * 32 + 64 + 9 * 32 * 64 + 128 + 9 * 64 * 128 + 256 + 128 * 10 + 10
    assert count_parameters(built("cnn", (3, 32, 32), 10)) == cnn == 94_762
    assert count_parameters(create_model("mlp", (16,), 3)) == 16 * 256 + 256 + 257 * 256 + 257 * 3
    # BatchNorm1d replaces each hidden Linear's bias (2 per unit instead of 1).
    bn = create_model("mlp", (1, 4, 4), 3, width=8, depth=3, batch_norm=True)
    assert count_parameters(bn) == 16 * 8 + 16 + 2 * (8 * 8 + 16) + 9 * 3
    assert bn.feature_dim == 8 and bn(torch.randn(2, 1, 4, 4)).shape == (2, 3)


def test_mlp_depth_zero_is_a_linear_model_on_the_flattened_input():
    model = create_model("mlp", (2, 3, 3), 4, depth=0)
    assert model.feature_dim == 18 and count_parameters(model) == 18 * 4 + 4


# --- names and errors ---------------------------------------------------------------------------


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UserError) as err:
        check_model_name("resnet33")
    assert str(err.value) == (
        "model 'resnet33' is unknown; known: cnn, ft_transformer, logreg, mlp, resnet8, resnet20, "
        "resnet32, resnet56, tab_resnet, wrn_28_10, xgboost, wrn_<depth>_<width>, timm/<name>; "
        "did you mean 'resnet32'?"
    )
    with pytest.raises(UserError, match="is unknown; known: cnn, ft_transformer, logreg, mlp"):
        create_model("transformer", (3, 32, 32), 10)


@pytest.mark.parametrize("name", ["wrn_27_10", "wrn_4_2", "wrn_28_0"])
def test_bad_wide_resnet_names(name):
    with pytest.raises(UserError, match=r"6n\+4|width must be >= 1"):
        check_model_name(name)


def test_bad_wide_resnet_depth_message():
    with pytest.raises(UserError, match=r"^WideResNet depth must be 6n\+4 .* got 27$"):
        create_model("wrn_27_10", (3, 32, 32), 10)


def test_unknown_timm_model():
    with pytest.raises(
        UserError, match=r"timm .* has no model 'resnet_18'.*did you mean.*resnet18"
    ):
        check_model_name("timm/resnet_18")


@pytest.mark.parametrize(
    "name", sorted(MODELS) + ["wrn_16_2", "timm/resnet18", "timm/vit_base_patch16_224"]
)
def test_check_model_name_accepts_known_names(name):
    assert check_model_name(name) is None


def test_bad_options_and_shapes():
    with pytest.raises(UserError, match="'resnet20' does not take option.* width; it takes: none"):
        create_model("resnet20", (3, 32, 32), 10, width=2)
    with pytest.raises(UserError, match="num_embeddings='fourier' is unknown"):
        create_model("mlp", (8,), 2, num_embeddings="fourier")
    with pytest.raises(UserError, match=r"expected \(C, H, W\) for images or \(D,\)"):
        create_model("cnn", (28, 28), 10)
    with pytest.raises(UserError, match="num_classes >= 2"):
        create_model("cnn", (1, 8, 8), 1)


def test_wrn_dropout_option():
    model = create_model("wrn_10_1", (3, 8, 8), 2, dropout=0.3)
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 3  # one per block, n = 1


# --- registry behaviour -------------------------------------------------------------------------


def test_registering_a_model_makes_it_buildable():
    def linear(input_shape, num_classes):
        return ImbModel(nn.Flatten(), feature_dim=input_shape[0] * 4, num_classes=num_classes)

    try:
        assert register_model("linear")(linear) is linear and MODELS["linear"] is linear
        assert create_model("linear", (2, 2, 2), 3)(torch.zeros(1, 2, 2, 2)).shape == (1, 3)
        with pytest.raises(ValueError, match="registered twice"):
            register_model("linear")(linear)
    finally:
        MODELS.unregister("linear")
    assert "linear" not in MODELS


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_names_a_registered_trainer(name):
    assert model_trainer(name) in TRAINERS and callable(TRAINERS[model_trainer(name)])


# model=logreg is fitted by its own trainer into a network of its own (a linear head, so the
# model folder loads it as any network; tests/test_linear.py).
@pytest.mark.parametrize("name", sorted(n for n in MODELS if model_trainer(n) != "loop"
                                        and n != "logreg"))
def test_a_model_with_its_own_trainer_builds_no_network(name):
    with pytest.raises(UserError, match="no untrained network to build"):
        create_model(name, (16,), 3)


def test_models_pickle_and_build_deterministically():
    # Ray ships models between processes: no lambdas inside.
    model = built("resnet8", (3, 32, 32), 10)
    clone = pickle.loads(pickle.dumps(model))
    torch.manual_seed(0)
    again = create_model("resnet8", (3, 32, 32), 10)
    for a, b, c in zip(model.parameters(), clone.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
