"""A `StudySpec` (imbtrain.study.space) as Ray Tune's param space.

Each distribution of `imbtrain.registry.DISTRIBUTIONS` has its Tune domain here, one small
function each; `param_space(spec)` is what `tune.Tuner` gets:

    >>> from imbtrain.study import load_space
    >>> space = param_space(load_space("label_smoothing"))
    >>> space["smoothing_eps"], space["seed"]
    ({'grid_search': [0.05, 0.1, 0.3]}, {'grid_search': [0, 1, 2, 3]})
    >>> param_space(load_space("batch_size"))["train_ratio"]
    {'grid_search': [1.0, 0.1, 0.02]}
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ray import tune

from imbtrain.errors import UserError
from imbtrain.registry import DISTRIBUTIONS, Registry
from imbtrain.study.space import VARIANT_KEY, Knob, StudySpec, variant_keys

TUNE_DOMAINS: Registry = Registry("Tune domain")
"""Distribution name -> `fn(values) -> Tune domain` (one for every DISTRIBUTIONS name)."""


@TUNE_DOMAINS.register("grid")
def _grid(values: tuple) -> dict:
    return tune.grid_search(list(values))


@TUNE_DOMAINS.register("choice")
def _choice(values: tuple):
    return tune.choice(list(values))


@TUNE_DOMAINS.register("uniform")
def _uniform(bounds: tuple):
    return tune.uniform(bounds[0], bounds[1])


@TUNE_DOMAINS.register("loguniform")
def _loguniform(bounds: tuple):
    return tune.loguniform(bounds[0], bounds[1])


@TUNE_DOMAINS.register("randint")
def _randint(bounds: tuple):
    # Tune's randint excludes its upper bound; the file's [lo, hi] includes both.
    return tune.randint(bounds[0], bounds[1] + 1)


def domain(knob: Knob) -> Any:
    """The Tune domain of one knob."""
    if knob.dist not in TUNE_DOMAINS:
        raise UserError(f"knobs.{knob.key}: distribution {knob.dist!r} has no Ray Tune "
                        f"domain; those with one: {', '.join(TUNE_DOMAINS.names())}")
    to_tune: Callable[[tuple], Any] = TUNE_DOMAINS.get(knob.dist)
    return to_tune(knob.values)


def param_space(spec: StudySpec) -> dict[str, Any]:
    """The Tune param space: the FULL TrainConfig of the base, its knobs replaced by their
    domains, `train_ratio` and `seed` as grid axes, and the variants as one more axis.

    Constants ride along in the space so that a trial's config is its complete TrainConfig:
    MLflow's params, results.parquet's config columns and the trainable all read it from
    `trial.config`, with no separate base to keep in step.
    """
    plain = {**spec.base_config().to_dict(), "train_ratio": spec.train_ratios[0]}
    space: dict[str, Any] = dict(plain)
    space.update({k.key: domain(k) for k in spec.knobs.values()})
    if spec.searcher == "grid":
        space["train_ratio"] = tune.grid_search(list(spec.train_ratios))
        space["seed"] = tune.grid_search(list(spec.seeds))
    else:  # optuna: one ratio and one seed (checked), passed as constants
        space["train_ratio"] = spec.train_ratios[0]
        space["seed"] = spec.seeds[0]
    if spec.variants:
        space[VARIANT_KEY] = tune.grid_search(list(spec.variants))
        for key in variant_keys(spec.variants):
            table = {name: over.get(key, plain[key]) for name, over in spec.variants.items()}
            space[key] = tune.sample_from(functools.partial(_variant_value, table))
    return space


def _variant_value(table: dict[str, Any], config: dict[str, Any]) -> Any:
    """A `sample_from` of a key that variants set: its value in the trial's variant."""
    return table[config[VARIANT_KEY]]


def untranslated() -> list[str]:
    """Distributions without a Tune domain (empty: every one has its domain)."""
    return [name for name in DISTRIBUTIONS.names() if name not in TUNE_DOMAINS]
