"""Multi-layer perceptron for vectors (tabular data, toy2d) and flattened images.

The paper's tabular experiments (Adult, Covertype, Otto) use MLPs with numerical feature
embeddings (Gorishniy et al. 2022, `rtdl_num_embeddings`): `num_embeddings=periodic` (PLR) or
`pwl` (piecewise-linear on quantile bins of the train features) embeds each numeric column
before the first layer (`imbtrain.models.tabular.NumericalEmbeddings`).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from imbtrain.errors import UserError
from imbtrain.models.base import ImbModel
from imbtrain.models.registry import register_model
from imbtrain.models.tabular import numerical_embeddings

NUM_EMBEDDINGS = ("none", "periodic", "pwl")


@register_model("mlp", vectors=True)
def mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 256,
    depth: int = 2,
    batch_norm: bool = False,
    dropout: float = 0.0,
    num_embeddings: str = "none",
    d_embedding: int = 24,
    frequency_init_scale: float = 0.01,
    n_bins: int = 48,
    feature_info=None,
    train_x: Tensor | None = None,
    bins: list[Tensor] | None = None,
) -> ImbModel:
    """MLP: flatten, (embeddings), then `depth` x [Linear(width), (BatchNorm1d), ReLU,
    (Dropout)], head.

    The features are the last hidden layer (width), or the (embedded) input when depth is 0;
    the head is the final Linear. Images are flattened in C, H, W order. With
    `num_embeddings` periodic or pwl, the numeric columns of vector inputs (all of them, or
    `feature_info.n_numeric` of tabular data) get `d_embedding`-wide embeddings; pwl computes
    its `n_bins` bins from `train_x` (or takes `bins` as they are: a saved model's).
    """
    if num_embeddings not in NUM_EMBEDDINGS:
        raise UserError(
            f"mlp option num_embeddings={num_embeddings!r} is unknown; "
            f"allowed: {', '.join(NUM_EMBEDDINGS)}"
        )
    if width < 1 or depth < 0:
        raise UserError(f"mlp needs width >= 1 and depth >= 0, got width={width}, depth={depth}")
    layers: list[nn.Module] = [nn.Flatten()]
    dim = math.prod(input_shape)
    if num_embeddings != "none":
        embed = numerical_embeddings(num_embeddings, input_shape, feature_info, d_embedding,
                                     frequency_init_scale, n_bins, train_x, bins)
        layers.append(embed)
        dim = embed.out_dim
    for _ in range(depth):
        # No Linear bias before BN: BN's shift makes it redundant.
        layers.append(nn.Linear(dim, width, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU(inplace=True))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        dim = width
    return ImbModel(nn.Sequential(*layers), feature_dim=dim, num_classes=num_classes)
