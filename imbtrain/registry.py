"""One `Registry` class for every plug-in kind of imbtrain, and the registries themselves.

A plug-in is one decorated function or class in a module of its own:

    >>> from imbtrain.registry import Registry
    >>> COLOURS = Registry("colour")
    >>> @COLOURS.register("teal", hex="#008080")
    ... def teal():
    ...     return "teal"
    >>> COLOURS.names(), COLOURS.meta("teal")
    (['teal'], {'hex': '#008080'})
    >>> COLOURS.get("tael")
    Traceback (most recent call last):
    ...
    imbtrain.errors.UserError: unknown colour 'tael' (did you mean 'teal'?); known: teal

The registries below are created here, at the bottom of the layers, so that `TrainConfig`
can read the allowed names (`DATASETS.names()`) without importing the packages that fill
them. Each registry knows its `home`, the package (or packages) whose import registers its
plug-ins; the first lookup imports it by name (as an entry-point group would), so a registry
is never read half-filled.

A registry may also hold `families`: names that stand for many (`wrn_<depth>_<width>`,
`timm/<name>`), each resolved by a function registered in a second registry under the
pattern users write. `get` tries the plain names first, then each family:

    >>> SIZES = Registry("size", families=Registry("size family"))
    >>> @SIZES.families.register("px<n>", unit="pixel")
    ... def pixels(name):
    ...     return int(name[2:]) if name.startswith("px") else None
    >>> SIZES.get("px32"), SIZES.meta("px32"), SIZES.known()
    (32, {'unit': 'pixel'}, ['px<n>'])
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from imbtrain.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> plug-ins (functions or classes), each with keyword metadata.

    `register(name, **meta)` is a decorator that refuses a name registered twice;
    `get(name)` returns the plug-in or raises `UserError` with the nearest names;
    `names()` lists them in registration order; `meta(name)` gives the metadata.
    `home`: the module (or tuple of modules) whose import registers the plug-ins.
    `families`: a registry of resolvers `fn(name) -> plug-in | None` for names by pattern.
    """

    def __init__(self, kind: str, home: str | tuple[str, ...] | None = None,
                 families: Registry | None = None) -> None:
        self.kind = kind
        self.home = (home,) if isinstance(home, str) else tuple(home or ())
        self.families = families
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._loaded = not self.home

    # ---------------------------------------------------------------- filling
    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: add the decorated object under `name` (a duplicate is a bug: raises
        ValueError at import time)."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return add

    def unregister(self, name: str) -> None:
        """Remove `name` (tests that register a throw-away plug-in)."""
        self._items.pop(name, None)
        self._meta.pop(name, None)

    @contextlib.contextmanager
    def temporary(self, name: str, obj: T, **meta: Any) -> Iterator[T]:
        """`obj` registered as `name` inside the `with` block only."""
        self._load()
        self.register(name, **meta)(obj)
        try:
            yield obj
        finally:
            self.unregister(name)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # before the import: the plug-ins register while it runs
            try:
                for module in self.home:
                    importlib.import_module(module)
            except BaseException:
                self._loaded = False
                raise

    # ---------------------------------------------------------------- reading
    def get(self, name: str) -> T:
        """The plug-in registered as `name`, or resolved by a family; `UserError` naming the
        nearest names if none."""
        return self._entry(name)[0]

    def meta(self, name: str) -> dict[str, Any]:
        """The keyword metadata `name` (or the family it belongs to) was registered with."""
        return dict(self._entry(name)[1])

    def _entry(self, name: str) -> tuple[T, dict[str, Any]]:
        self._load()
        if name in self._items:
            return self._items[name], self._meta[name]
        if self.families is not None:
            for pattern, resolve in self.families.items():
                obj = resolve(name)  # may raise UserError for a malformed member
                if obj is not None:
                    return obj, self.families._meta[pattern]
        raise UserError(self.unknown(name))

    def known(self) -> list[str]:
        """The names a message lists: registered names in natural order (resnet8 before
        resnet20), then the family patterns."""
        families = self.families.names() if self.families is not None else []
        return sorted(self.names(), key=natural_key) + families

    def unknown(self, name: str) -> str:
        """The one-line message for a name that is not registered."""
        close = difflib.get_close_matches(str(name), self.names(), n=2, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; known: {', '.join(self.known())}"

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        self._load()
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} registered)"


def natural_key(name: str) -> list[int | str]:
    """Sort key whose digit runs compare as numbers: resnet8 before resnet20."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class ModelRegistry(Registry):
    """The model registry: plain names and families, and its own wording of an unknown name.

        >>> MODELS.unknown("resnet33").split("; known: ")[0]
        "model 'resnet33' is unknown"
    """

    def unknown(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{self.kind} {name!r} is unknown; known: {', '.join(self.known())}{hint}"


# ------------------------------------------------------------------- imbtrain's registries
DATASETS: Registry = Registry("dataset", home="imbtrain.data")
MODEL_FAMILIES: Registry = Registry("model family", home="imbtrain.models")
MODELS: Registry = ModelRegistry("model", home="imbtrain.models", families=MODEL_FAMILIES)
AUGMENTATIONS: Registry = Registry("augmentation", home="imbtrain.augment")
MIXES: Registry = Registry("mix", home="imbtrain.augment")
AUGMENT_OPS: Registry = Registry("augmentation op", home="imbtrain.augment")
METHODS: Registry = Registry("method", home="imbtrain.methods")
STEPPERS: Registry = Registry("SAM stepper", home="imbtrain.methods")
# The training loop and the trainers of models it does not train (XGBoost's boosting rounds,
# scikit-learn's logistic regression).
TRAINERS: Registry = Registry("trainer", home=("imbtrain.train", "imbtrain.xgb",
                                                "imbtrain.linear"))
TRIAL_METRICS: Registry = Registry("trial metric", home="imbtrain.metrics")
ANALYSES: Registry = Registry("analysis", home="imbtrain.analysis")
DISTRIBUTIONS: Registry = Registry("distribution", home="imbtrain.study.space")

REGISTRIES: dict[str, Registry] = {r.kind: r for r in (
    DATASETS, MODELS, MODEL_FAMILIES, AUGMENTATIONS, MIXES, AUGMENT_OPS, METHODS, STEPPERS,
    TRAINERS, TRIAL_METRICS, ANALYSES, DISTRIBUTIONS)}
"""Every registry by kind (the tests parametrise over their contents)."""
