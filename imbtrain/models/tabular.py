"""Tabular models as ImbModels: ResNet and FT-Transformer from `rtdl_revisiting_models`
(Gorishniy et al. 2021, "Revisiting deep learning models for tabular data"), and the numerical
feature embeddings of `rtdl_num_embeddings` (Gorishniy et al. 2022, "On embeddings for
numerical features in tabular deep learning") that the `mlp` puts in front of its layers.

Tabular vectors are laid out [numeric | missing indicators | one-hot blocks]
(`imbtrain.data.tabular.TabularInfo`). Models that care about the layout take it as the
`feature_info` option; the loop passes it, with the other data-dependent options, through
`model_kwargs(cfg, data)`:

    model = create_model(cfg.model, data.input_shape, data.num_classes,
                         **model_kwargs(cfg, data))

Without `feature_info` every column counts as numeric.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from imbtrain.errors import UserError
from imbtrain.models.base import ImbModel
from imbtrain.models.registry import create_model, register_model, resolve_model

PERIODIC_FREQUENCIES = 48  # k of the periodic embeddings (rtdl_num_embeddings' default)


# ================================================================ options from config and data


def create_model_for(cfg, data) -> ImbModel:
    """The model `cfg.model` for this data, with every option the config and data imply.

    The one way the loop, pre-training and M2m's teacher build a model, so a teacher or a
    pre-trained backbone always has the shapes of the model it serves.
    """
    return create_model(cfg.model, data.input_shape, data.num_classes,
                        **model_kwargs(cfg, data))


def model_kwargs(cfg, data) -> dict[str, Any]:
    """The options of `cfg.model`'s builder that the config and the data imply.

    Config knobs: `model_width` -> width, `model_depth` -> depth, `model_dropout` -> dropout
    (each only when set, non-zero: 0 keeps the model's default), and `num_embeddings` with
    `num_embeddings_dim`, `num_embeddings_sigma`, `num_embeddings_bins` when it is not none.
    A model that does not take a knob that is set fails naming it (create_model checks).
    Data: `feature_info` (the tabular column layout) and `train_x` (the train features, for
    piecewise-linear bins) go only to builders that take them.
    """
    opts: dict[str, Any] = {}
    for key, value in (("width", cfg.model_width), ("depth", cfg.model_depth),
                       ("dropout", cfg.model_dropout)):
        if value:
            opts[key] = value
    if cfg.num_embeddings != "none":
        opts.update(num_embeddings=cfg.num_embeddings, d_embedding=cfg.num_embeddings_dim,
                    frequency_init_scale=cfg.num_embeddings_sigma,
                    n_bins=cfg.num_embeddings_bins)
    params = inspect.signature(resolve_model(cfg.model)).parameters
    if "feature_info" in params:
        opts["feature_info"] = getattr(data, "feature_info", None)
    if "train_x" in params and cfg.num_embeddings == "pwl":
        opts["train_x"] = data.train_x
    return opts


def _layout(num_features: int, feature_info) -> tuple[int, int, tuple[int, ...]]:
    """(numeric, indicator, one-hot block widths) columns; all numeric without feature_info."""
    if feature_info is None:
        return num_features, 0, ()
    cards = tuple(int(c) for c in feature_info.cat_cardinalities)
    n_num, n_ind = int(feature_info.n_numeric), int(feature_info.n_indicators)
    if n_num + n_ind + sum(cards) != num_features:
        raise UserError(f"feature_info describes {n_num + n_ind + sum(cards)} columns but the "
                        f"inputs have {num_features}; build the model from the same data")
    return n_num, n_ind, cards


# ================================================================ numerical embeddings


def pwl_bins(x: Tensor, n_bins: int) -> list[Tensor]:
    """Quantile bin edges of each column of the train features (`compute_bins`).

    At most len(x) - 1 bins (compute_bins' limit); a column with a single value gets the one
    bin [v - 1, v + 1], which encodes it as a constant.
    """
    from rtdl_num_embeddings import compute_bins

    x = x.detach().float().cpu()
    if len(x) < 3:
        raise UserError(f"num_embeddings=pwl needs at least 3 train rows, got {len(x)}")
    n_bins = min(n_bins, len(x) - 1)
    bins: list[Tensor] = []
    for col in x.T:
        if bool((col == col[0]).all()):
            bins.append(torch.stack([col[0] - 1, col[0] + 1]))
        else:
            bins.extend(compute_bins(col[:, None], n_bins=n_bins))
    return bins


class NumericalEmbeddings(nn.Module):
    """x (B, D) -> [embed(x[:, :n]) flattened | x[:, n:]]: (B, n * d_embedding + D - n).

    The first n columns (the numeric ones) are embedded, the rest (missing indicators, one-hot
    blocks) pass through, as in Gorishniy et al. 2022's MLPs.
    - periodic: PLR embeddings, Linear(ReLU(...)) of [sin, cos](2 pi c x) with k = 48 learned
      frequencies c ~ N(0, sigma^2) a feature (`PeriodicEmbeddings(lite=False)`);
    - pwl: piecewise-linear encoding on quantile bins of the train features, then a linear
      layer a feature (`PiecewiseLinearEmbeddings(version="B", activation=False)`, the form
      TabM recommends: it starts as a linear embedding).
    """

    def __init__(self, kind: str, num_features: int, n_embedded: int, d_embedding: int,
                 frequency_init_scale: float, n_bins: int, train_x: Tensor | None,
                 bins: list[Tensor] | None = None) -> None:
        from rtdl_num_embeddings import PeriodicEmbeddings, PiecewiseLinearEmbeddings

        super().__init__()
        if n_embedded < 1:
            raise UserError(f"num_embeddings={kind} needs numeric features; the data has none")
        self.n = n_embedded
        if kind == "periodic":
            self.embed = PeriodicEmbeddings(n_embedded, d_embedding,
                                            n_frequencies=PERIODIC_FREQUENCIES,
                                            frequency_init_scale=frequency_init_scale,
                                            lite=False)
        elif kind == "pwl":
            if bins is None and train_x is None:
                raise UserError("num_embeddings=pwl needs the train features (train_x) for "
                                "its bins; build the model with model_kwargs(cfg, data)")
            if bins is None:
                bins = pwl_bins(train_x.reshape(len(train_x), -1)[:, :n_embedded], n_bins)
            # Kept: a saved model rebuilds the layer from them (imbtrain.saved), since the
            # encoding's buffers take their shapes from the bins.
            self.bins = [b.detach().cpu() for b in bins]
            with warnings.catch_warnings():  # a 0/1 column has one bin; that is fine here
                warnings.filterwarnings("ignore", message=".*just two bin edges.*")
                self.embed = PiecewiseLinearEmbeddings(bins, d_embedding, activation=False,
                                                       version="B")
        else:
            raise UserError(f"num_embeddings={kind!r} is unknown; allowed: none, periodic, pwl")
        self.out_dim = n_embedded * d_embedding + num_features - n_embedded

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.embed(x[:, :self.n]).flatten(1), x[:, self.n:]], dim=1)


def numerical_embeddings(kind: str, input_shape: tuple[int, ...], feature_info,
                         d_embedding: int, frequency_init_scale: float, n_bins: int,
                         train_x: Tensor | None,
                         bins: list[Tensor] | None = None) -> NumericalEmbeddings:
    """The mlp's embedding input layer for vectors of `input_shape` (D,); pwl's `bins`, when
    given, are used as they are (a saved model's), else computed from `train_x`."""
    if len(input_shape) != 1:
        raise UserError(f"num_embeddings={kind} applies to vectors (tabular data), not to "
                        f"inputs of shape {tuple(input_shape)}")
    n_num, _, _ = _layout(input_shape[0], feature_info)
    return NumericalEmbeddings(kind, input_shape[0], n_num, d_embedding, frequency_init_scale,
                               n_bins, train_x, bins)


# ================================================================ ResNet


@register_model("tab_resnet", images=False)
def tab_resnet(input_shape: tuple[int, ...], num_classes: int, width: int = 128,
               depth: int = 2, dropout: float = 0.0, hidden_factor: float = 2.0) -> ImbModel:
    """ResNet for tabular data (Gorishniy et al. 2021, Section 3.2; `rtdl_revisiting_models`).

    Linear(D, width), then `depth` blocks x + Dropout2(Linear(Dropout1(ReLU(Linear(BN(x)))))),
    hidden width hidden_factor * width, `dropout` the hidden dropout (the residual one is 0),
    then BN and ReLU: the features (width). The head is Linear(width, K), the paper's
    prediction layer split off as an ImbModel head.
    """
    from rtdl_revisiting_models import ResNet

    if width < 1 or depth < 1:
        raise UserError(f"tab_resnet needs width >= 1 and depth >= 1, got width={width}, "
                        f"depth={depth}")
    body = ResNet(d_in=input_shape[0], d_out=None, n_blocks=depth, d_block=width,
                  d_hidden_multiplier=hidden_factor, dropout1=dropout, dropout2=0.0)
    backbone = nn.Sequential(body, nn.BatchNorm1d(width), nn.ReLU())
    return ImbModel(backbone, feature_dim=width, num_classes=num_classes)


# ================================================================ FT-Transformer


class FTBackbone(nn.Module):
    """Feature tokenizer + Transformer of FT-Transformer (Gorishniy et al. 2021, Section 3.3).

    Tokens: [CLS], one linear embedding per continuous column (numeric values and missing
    indicators: w_j x_j + b_j) and one per categorical column. A categorical token is
    onehot_j @ W_j + b_j: for a hard one-hot that is exactly `CategoricalEmbeddings`'
    W_j[code] + b_j, an unknown value (all-zero block) gets b_j alone, and mixed or SMOTE
    inputs stay differentiable. The [CLS] output after the blocks, LayerNorm and ReLU is the
    feature vector (the paper's prediction head without its last Linear).
    """

    def __init__(self, n_cont: int, cards: tuple[int, ...], **kwargs: Any) -> None:
        from rtdl_revisiting_models import FTTransformer

        super().__init__()
        ft = FTTransformer(n_cont_features=n_cont, cat_cardinalities=list(cards), d_out=None,
                           **kwargs)
        self.cls_embedding, self.cont_embeddings = ft.cls_embedding, ft.cont_embeddings
        self.cat_embeddings, self.blocks = ft.cat_embeddings, ft.backbone
        self.norm, self.act = nn.LayerNorm(kwargs["d_block"]), nn.ReLU()
        self.n_cont, self.cards = n_cont, tuple(cards)

    def tokens(self, x: Tensor) -> Tensor:
        """(B, 1 + n_cont + n_cat, d_block)."""
        parts = [self.cls_embedding(x.shape[:-1])]
        if self.cont_embeddings is not None:
            parts.append(self.cont_embeddings(x[:, :self.n_cont]))
        if self.cat_embeddings is not None:
            blocks = x[:, self.n_cont:].split(list(self.cards), dim=1)
            embeddings, bias = self.cat_embeddings.embeddings, self.cat_embeddings.bias
            parts.append(torch.stack([b @ e.weight for b, e in zip(blocks, embeddings,
                                                                    strict=True)], 1) + bias)
        return torch.cat(parts, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.blocks(self.tokens(x))))


@register_model("ft_transformer", images=False)
def ft_transformer(input_shape: tuple[int, ...], num_classes: int, width: int = 0,
                   depth: int = 3, dropout: float = 0.0, heads: int = 8,
                   feature_info=None) -> ImbModel:
    """FT-Transformer (Gorishniy et al. 2021, `rtdl_revisiting_models`) as an ImbModel.

    Defaults are the paper's default configuration for `depth` blocks
    (`FTTransformer.get_default_kwargs`: 3 blocks of width 192, ReGLU FFN of 4/3 the width,
    attention dropout 0.2, FFN dropout 0.1); `width` (d_block, a multiple of `heads`) and
    `dropout` (attention and FFN) replace theirs when non-zero. Columns follow
    `feature_info` (continuous first, then one-hot blocks); without it all are continuous.
    """
    from rtdl_revisiting_models import FTTransformer

    if not 1 <= depth <= 6:
        raise UserError(f"ft_transformer depth must be 1..6 (the paper's defaults), got {depth}")
    kwargs = FTTransformer.get_default_kwargs(n_blocks=depth)
    kwargs.pop("_is_default")
    if width:
        if width % heads:
            raise UserError(f"ft_transformer width must be a multiple of its {heads} attention "
                            f"heads, got {width}")
        kwargs["d_block"] = width
    if dropout:
        kwargs["attention_dropout"] = kwargs["ffn_dropout"] = dropout
    kwargs["attention_n_heads"] = heads
    n_num, n_ind, cards = _layout(input_shape[0], feature_info)
    backbone = FTBackbone(n_num + n_ind, cards, **kwargs)
    return ImbModel(backbone, feature_dim=kwargs["d_block"], num_classes=num_classes)
