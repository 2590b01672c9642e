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
them. Each registry knows its `home`, the package whose import registers its plug-ins; the
first lookup imports it by name (as an entry-point group would), so a registry is never
read half-filled.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from imbtrain.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> plug-ins (functions or classes), each with keyword metadata.

    `register(name, **meta)` is a decorator that refuses a name registered twice;
    `get(name)` returns the plug-in or raises `UserError` with the nearest names;
    `names()` lists them in registration order; `meta(name)` gives the metadata.
    """

    def __init__(self, kind: str, home: str | None = None) -> None:
        self.kind = kind
        self.home = home
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._loaded = home is None

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
                importlib.import_module(self.home)
            except BaseException:
                self._loaded = False
                raise

    # ---------------------------------------------------------------- reading
    def get(self, name: str) -> T:
        """The plug-in registered as `name`; `UserError` naming the nearest ones if none."""
        self._load()
        if name in self._items:
            return self._items[name]
        raise UserError(self.unknown(name))

    def unknown(self, name: str) -> str:
        """The one-line message for a name that is not registered."""
        close = difflib.get_close_matches(str(name), self.names(), n=2, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; known: {', '.join(self.names())}"

    def meta(self, name: str) -> dict[str, Any]:
        """The keyword metadata `name` was registered with."""
        self.get(name)
        return dict(self._meta[name])

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


# ------------------------------------------------------------------- imbtrain's registries
DATASETS: Registry = Registry("dataset", home="imbtrain.data")
MODELS: Registry = Registry("model", home="imbtrain.models")
MODEL_FAMILIES: Registry = Registry("model family", home="imbtrain.models")
AUGMENTATIONS: Registry = Registry("augmentation", home="imbtrain.augment")
MIXES: Registry = Registry("mix", home="imbtrain.augment")
AUGMENT_OPS: Registry = Registry("augmentation op", home="imbtrain.augment")
METHODS: Registry = Registry("method", home="imbtrain.methods")
STEPPERS: Registry = Registry("SAM stepper", home="imbtrain.methods")
TRAINERS: Registry = Registry("trainer", home="imbtrain.train")
TRIAL_METRICS: Registry = Registry("trial metric", home="imbtrain.metrics")
ANALYSES: Registry = Registry("analysis", home="imbtrain.analysis")
DISTRIBUTIONS: Registry = Registry("distribution", home="imbtrain.study.space")

REGISTRIES: dict[str, Registry] = {r.kind: r for r in (
    DATASETS, MODELS, MODEL_FAMILIES, AUGMENTATIONS, MIXES, AUGMENT_OPS, METHODS, STEPPERS,
    TRAINERS, TRIAL_METRICS, ANALYSES, DISTRIBUTIONS)}
"""Every registry by kind (the tests parametrise over their contents)."""
