"""Model registry front: builders by name, name families by pattern, and `create_model`.

A builder is `(input_shape, num_classes, **kwargs) -> ImbModel`, registered with
`@register_model("name")` in the module of its family (timm's `@register_model` style) into
`imbtrain.registry.MODELS`. Names that stand for a whole family (`wrn_<depth>_<width>`,
`timm/<name>`) are resolved by a function registered with `@register_model_family("pattern")`
(`MODEL_FAMILIES`), which returns a builder for the name, None when the name is not of its
family, or raises UserError for a malformed member (e.g. a WideResNet depth that is not
6n+4). A model trained by something other than the loop names its trainer
(`trainer="xgboost"`, `imbtrain.registry.TRAINERS`) and may add a `check_config` rule.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Set
from typing import Any

from imbtrain.errors import UserError
from imbtrain.models.base import ImbModel
from imbtrain.registry import MODEL_FAMILIES, MODELS, natural_key

Builder = Callable[..., ImbModel]
Resolver = Callable[[str], Builder | None]


def register_model(name: str, *, vectors: bool = False, images: bool = True,
                   **meta: Any) -> Callable[[Builder], Builder]:
    """Register a builder under `name`; `vectors=True` if it also takes (D,) inputs,
    `images=False` if it takes nothing but (D,) inputs (tabular models). Other keywords are
    the entry's metadata (`trainer`, `check_config`)."""
    return MODELS.register(name, vectors=vectors or not images, images=images, **meta)


def register_model_family(pattern: str, **meta: Any) -> Callable[[Resolver], Resolver]:
    """Register a resolver for the family of names that `pattern` describes to users."""
    return MODEL_FAMILIES.register(pattern, **meta)


class _Takers(Set):
    """The registered model names whose metadata `key` is `value`, read live (a set view)."""

    def __init__(self, key: str, value: bool) -> None:
        self.key, self.value = key, value

    def __contains__(self, name: object) -> bool:
        return name in MODELS and MODELS.meta(name).get(self.key, False) == self.value

    def __iter__(self) -> Iterator[str]:
        return (n for n in MODELS.names() if n in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


VECTOR_MODELS: Set[str] = _Takers("vectors", True)
"""Names of the models that take vector input (D,) besides images (the others need C, H, W)."""

VECTOR_ONLY_MODELS: Set[str] = _Takers("images", False)
"""Names of the models that take vectors (D,) only (tabular models: one token per feature)."""


def known_model_names() -> list[str]:
    """Every registered name (natural order), then the family patterns."""
    return MODELS.known()


def resolve_model(name: str) -> Builder:
    """The builder for `name`; UserError listing the known names if there is none."""
    return MODELS.get(name)


def check_model_name(name: str) -> None:
    """Validate a model name without building it; raises UserError."""
    resolve_model(name)


def model_trainer(name: str) -> str:
    """The TRAINERS name that trains model `name`: "loop" unless its entry names another."""
    return MODELS.meta(name).get("trainer", "loop")


def _check_input_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise UserError(
            f"model {name!r} got input shape {shape}; expected (C, H, W) for images "
            "or (D,) for vectors, all positive"
        )
    if len(shape) == 1 and name not in VECTOR_MODELS:
        takers = ", ".join(sorted(VECTOR_MODELS, key=natural_key))
        raise UserError(
            f"model {name!r} takes images (C, H, W), not vectors of shape {shape}; "
            f"models that take vectors: {takers}"
        )
    if len(shape) == 3 and name in VECTOR_ONLY_MODELS:
        raise UserError(
            f"model {name!r} takes tabular vectors (D,), not images of shape {shape}; "
            "use an image model (cnn, resnet20, ...) or mlp"
        )
    return shape


def _check_kwargs(name: str, builder: Builder, kwargs: dict) -> None:
    # Builders that pass options on (timm) accept **kwargs and check them themselves.
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    options = list(params)[2:]  # skip input_shape, num_classes
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise UserError(
            f"model {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(options) or 'none'}"
        )


def create_model(name: str, input_shape: tuple[int, ...], num_classes: int, **kwargs) -> ImbModel:
    """Build model `name` for inputs of `input_shape` ((C, H, W) or (D,)) and K classes.

    Example:
        >>> model = create_model("resnet20", (3, 32, 32), 10)
        >>> model.feature_dim, model.head.out_features
        (64, 10)
    """
    builder = resolve_model(name)
    shape = _check_input_shape(name, input_shape)
    if int(num_classes) < 2:
        raise UserError(f"model {name!r} needs num_classes >= 2, got {num_classes}")
    _check_kwargs(name, builder, kwargs)
    return builder(shape, int(num_classes), **kwargs)
