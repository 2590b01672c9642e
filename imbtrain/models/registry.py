"""Model registry: names -> builder functions, plus name families resolved by pattern.

A builder is `(input_shape, num_classes, **kwargs) -> ImbModel`, registered with
`@register_model("name")` in the module of its family (timm's `@register_model` style). Names
that stand for a whole family (`wrn_<depth>_<width>`, `timm/<name>`) are resolved by a
function registered with `@register_model_family("pattern")`, which returns a builder for
the name, None when the name is not of its family, or raises UserError for a malformed member
(e.g. a WideResNet depth that is not 6n+4).
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable

from imbtrain.errors import UserError
from imbtrain.models.base import ImbModel

Builder = Callable[..., ImbModel]
Resolver = Callable[[str], Builder | None]

MODELS: dict[str, Builder] = {}
"""Plain model names -> builders."""

VECTOR_MODELS: set[str] = set()
"""Names of the models that take vector input (D,) besides images (the others need C, H, W)."""

VECTOR_ONLY_MODELS: set[str] = set()
"""Names of the models that take vectors (D,) only (tabular models: one token per feature)."""

MODEL_FAMILIES: dict[str, Resolver] = {}
"""Family patterns as users write them (e.g. "wrn_<depth>_<width>") -> resolvers."""


def register_model(name: str, *, vectors: bool = False,
                   images: bool = True) -> Callable[[Builder], Builder]:
    """Register a builder under `name`; `vectors=True` if it also takes (D,) inputs,
    `images=False` if it takes nothing but (D,) inputs (tabular models)."""

    def decorator(builder: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = builder
        if vectors or not images:
            VECTOR_MODELS.add(name)
        if not images:
            VECTOR_ONLY_MODELS.add(name)
        return builder

    return decorator


def register_model_family(pattern: str) -> Callable[[Resolver], Resolver]:
    """Register a resolver for the family of names that `pattern` describes to users."""

    def decorator(resolver: Resolver) -> Resolver:
        MODEL_FAMILIES[pattern] = resolver
        return resolver

    return decorator


def _natural_key(name: str) -> list[int | str]:
    # resnet8 before resnet20: compare digit runs as numbers.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def known_model_names() -> list[str]:
    """Every registered name (natural order), then the family patterns."""
    return sorted(MODELS, key=_natural_key) + list(MODEL_FAMILIES)


def resolve_model(name: str) -> Builder:
    """The builder for `name`; UserError listing the known names if there is none."""
    if name in MODELS:
        return MODELS[name]
    for resolver in MODEL_FAMILIES.values():
        builder = resolver(name)
        if builder is not None:
            return builder
    close = difflib.get_close_matches(name, list(MODELS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UserError(f"model {name!r} is unknown; known: {', '.join(known_model_names())}{hint}")


def check_model_name(name: str) -> None:
    """Validate a model name without building it (for config validation); raises UserError."""
    resolve_model(name)


def _check_input_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise UserError(
            f"model {name!r} got input shape {shape}; expected (C, H, W) for images "
            "or (D,) for vectors, all positive"
        )
    if len(shape) == 1 and name not in VECTOR_MODELS:
        takers = ", ".join(sorted(VECTOR_MODELS, key=_natural_key))
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
