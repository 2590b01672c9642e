"""Tabular models: MLP with numerical embeddings, tab_resnet and ft_transformer as ImbModels.

Sizes are worked out by hand from the architectures; every model trains one step on
tabular vectors through the registry.
"""

from __future__ import annotations

import pytest
import torch
from rtdl_revisiting_models import CategoricalEmbeddings
from torch import nn

from imbtrain.config import TrainConfig
from imbtrain.data.tabular import TabularInfo
from imbtrain.errors import UserError
from imbtrain.models import ImbModel, count_parameters, create_model, model_kwargs
from imbtrain.models.tabular import NumericalEmbeddings, pwl_bins

torch.set_num_threads(1)
# 3 numeric, 1 missing indicator, one-hot blocks of 2 and 3 categories: D = 9.
INFO = TabularInfo(3, 1, (2, 3), tuple("abcdefghi"))


def tabular_batch(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    num = torch.randn(n, 3, generator=g)
    ind = (torch.rand(n, 1, generator=g) < 0.2).float()
    a = nn.functional.one_hot(torch.randint(0, 2, (n,), generator=g), 2).float()
    b = nn.functional.one_hot(torch.randint(0, 3, (n,), generator=g), 3).float()
    return torch.cat([num, ind, a, b], 1), (num[:, 0] > 0).long()


CASES = {
    "mlp_periodic": ("mlp", {"num_embeddings": "periodic", "feature_info": INFO}),
    "mlp_pwl": ("mlp", {"num_embeddings": "pwl", "feature_info": INFO, "n_bins": 8}),
    "tab_resnet": ("tab_resnet", {"width": 16, "depth": 2}),
    "ft_transformer": ("ft_transformer", {"width": 16, "depth": 1, "feature_info": INFO}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_tabular_model_builds_and_trains_one_step(case):
    name, kwargs = CASES[case]
    x, y = tabular_batch()
    if kwargs.get("num_embeddings") == "pwl":
        kwargs = {**kwargs, "train_x": x}
    torch.manual_seed(0)
    model = create_model(name, (9,), 2, **kwargs)
    assert isinstance(model, ImbModel) and isinstance(model.head, nn.Linear)
    assert model.forward_features(x).shape == (32, model.feature_dim)
    head_before = model.head.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    opt.step()
    assert not torch.equal(model.head.weight, head_before)


def test_tab_resnet_size_by_hand():
    # D = 4, width 8, one block of hidden width 16, K = 2: input projection 4*8+8 = 40;
    # block BN 2*8 + Linear 8*16+16 + Linear 16*8+8 = 296; final BN 16; head 8*2+2 = 18.
    model = create_model("tab_resnet", (4,), 2, width=8, depth=1)
    assert count_parameters(model) == 40 + 296 + 16 + 18 == 370
    assert model.feature_dim == 8


def test_numerical_embeddings_embed_only_the_numeric_columns():
    x, _ = tabular_batch()
    emb = NumericalEmbeddings("periodic", 9, 3, d_embedding=4, frequency_init_scale=0.1,
                              n_bins=8, train_x=None)
    out = emb(x)
    assert emb.out_dim == 3 * 4 + 6 == out.shape[1]
    torch.testing.assert_close(out[:, 12:], x[:, 3:])  # indicators and one-hots pass through
    model = create_model("mlp", (9,), 2, num_embeddings="periodic", d_embedding=4, width=5,
                         depth=1, feature_info=INFO)
    # PLR embedding of 3 features: frequencies 3*48, per-feature linear 3*(96*4+4);
    # then Linear(18, 5) and the head Linear(5, 2).
    assert count_parameters(model) == 3 * 48 + 3 * (96 * 4 + 4) + (18 * 5 + 5) + (5 * 2 + 2)


def test_pwl_bins_are_quantiles_of_the_train_features():
    x = torch.tensor([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]])
    bins = pwl_bins(x, n_bins=100)  # capped at len(x) - 1 = 4 bins
    assert bins[0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert bins[1].tolist() == [4.0, 6.0]  # a constant column: the single bin [v - 1, v + 1]
    with pytest.raises(UserError, match="needs the train features"):
        create_model("mlp", (9,), 2, num_embeddings="pwl", feature_info=INFO)


def test_ft_transformer_categorical_tokens_equal_rtdl_embeddings():
    x, _ = tabular_batch(8)
    torch.manual_seed(0)
    model = create_model("ft_transformer", (9,), 2, width=16, depth=1, feature_info=INFO)
    tokens = model.backbone.tokens(x)
    assert tokens.shape == (8, 1 + 4 + 2, 16)  # CLS, 3 numeric + 1 indicator, 2 categorical
    cat: CategoricalEmbeddings = model.backbone.cat_embeddings
    codes = torch.stack([x[:, 4:6].argmax(1), x[:, 6:9].argmax(1)], 1)
    torch.testing.assert_close(tokens[:, 5:], cat(codes))
    unknown = x.clone()
    unknown[:, 4:6] = 0.0  # an unseen category: the all-zero block gets the bias alone
    torch.testing.assert_close(model.backbone.tokens(unknown)[:, 5], cat.bias[0].expand(8, 16))


def test_ft_transformer_defaults_and_errors():
    model = create_model("ft_transformer", (5,), 3)  # the paper's default: 3 blocks of 192
    assert model.feature_dim == 192 and len(model.backbone.blocks.blocks) == 3
    with pytest.raises(UserError, match="multiple of its 8 attention heads, got 20"):
        create_model("ft_transformer", (5,), 3, width=20)
    with pytest.raises(UserError, match="feature_info describes 9 columns but the inputs have 5"):
        create_model("ft_transformer", (5,), 3, feature_info=INFO)


def test_model_kwargs_passes_what_the_builder_takes():
    x, y = tabular_batch()
    data = type("D", (), {"feature_info": INFO, "train_x": x})()
    cfg = TrainConfig(dataset="toy2d", model="mlp", num_embeddings="pwl", model_width=32)
    kw = model_kwargs(cfg, data)
    assert kw["width"] == 32 and kw["num_embeddings"] == "pwl" and kw["n_bins"] == 48
    assert kw["feature_info"] is INFO and kw["train_x"] is x and "depth" not in kw
    assert set(model_kwargs(cfg.replace(model="ft_transformer", num_embeddings="none"),
                            data)) == {"width", "feature_info"}
    bad = cfg.replace(model="tab_resnet", num_embeddings="periodic")
    with pytest.raises(UserError, match="'tab_resnet' does not take option.*num_embeddings"):
        create_model("tab_resnet", (9,), 2, **model_kwargs(bad, data))
