"""Models by name: CIFAR ResNets, WideResNets, a small CNN, an MLP, tabular networks, any
timm model, and XGBoost.

Every network is an `ImbModel` (backbone -> features, linear head), built by name:

    >>> from imbtrain.models import create_model
    >>> model = create_model("resnet32", (3, 32, 32), num_classes=10)
    >>> model.feature_dim
    64

Names: the registered ones (`MODELS`; the tabular `tab_resnet` and `ft_transformer` take
vectors only; `xgboost` is boosted trees with a trainer of its own, `model_trainer`),
`wrn_<depth>_<width>` and `timm/<name>`. `model_kwargs(cfg, data)` gives the builder options a
run's config and data imply (widths, numerical embeddings, the train features for
piecewise-linear bins, the tabular column layout). A new architecture is one decorated
builder `@register_model("name")` in a module of its own, imported below.
"""

# Importing a family's module registers its builders.
from imbtrain.models import cnn, linear, mlp, resnet_cifar, tabular, trees, wide_resnet  # noqa: F401

# isort: split
# timm's family last, so that messages list our own names first.
from imbtrain.models import timm_models  # noqa: F401
from imbtrain.models.base import ImbModel, count_parameters
from imbtrain.models.registry import (
    MODEL_FAMILIES,
    MODELS,
    VECTOR_MODELS,
    VECTOR_ONLY_MODELS,
    check_model_name,
    create_model,
    known_model_names,
    model_trainer,
    register_model,
    register_model_family,
)
from imbtrain.models.tabular import create_model_for, model_kwargs

__all__ = [
    "MODELS",
    "MODEL_FAMILIES",
    "VECTOR_MODELS",
    "VECTOR_ONLY_MODELS",
    "ImbModel",
    "check_model_name",
    "count_parameters",
    "create_model",
    "known_model_names",
    "model_kwargs",
    "model_trainer",
    "create_model_for",
    "register_model",
    "register_model_family",
]
