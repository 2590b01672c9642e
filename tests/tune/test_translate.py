"""Every distribution of the registry has its Ray Tune domain, and a search-space file becomes
Tune's param_space: each distribution its domain, the whole TrainConfig, the crossing with train
ratios and seeds."""

from __future__ import annotations

import pytest
from ray.tune.search.sample import Categorical, Float, Integer
from ray.tune.search.variant_generator import generate_variants

from imbtrain.config import TrainConfig
from imbtrain.errors import UserError
from imbtrain.registry import DISTRIBUTIONS
from imbtrain.study.space import Knob, load_space
from imbtrain.tune.translate import TUNE_DOMAINS, domain, param_space, untranslated
from tests.study.test_space import GOOD, write

EXAMPLES = {"grid": (16, 32), "choice": (16, 32), "uniform": (0.0, 0.2),
            "loguniform": (0.01, 0.3), "randint": (0, 2)}


@pytest.mark.parametrize("name", DISTRIBUTIONS.names())
def test_every_distribution_has_a_tune_domain(name):
    assert name in TUNE_DOMAINS and name in EXAMPLES
    got = domain(Knob("batch_size" if name in ("grid", "choice") else "lr", name,
                      EXAMPLES[name]))
    kind = {"grid": dict, "choice": Categorical, "uniform": Float, "loguniform": Float,
            "randint": Integer}[name]
    assert isinstance(got, kind)


def test_no_distribution_is_left_untranslated():
    assert untranslated() == []


def test_a_distribution_without_a_domain_is_a_clear_error():
    with pytest.raises(UserError, match=r"knobs.lr: distribution 'constant' has no Ray Tune "
                                        "domain; those with one: grid, choice, "):
        domain(Knob("lr", "constant", (0.1,)))


# ================================================================ a space file's param_space


def test_each_distribution_becomes_its_tune_domain(tmp_path):
    spec = load_space(write(tmp_path, GOOD))
    assert {k: v.dist for k, v in spec.knobs.items()} == {
        "batch_size": "grid", "sam_rho": "choice", "smoothing_eps": "uniform",
        "lr": "loguniform", "warmup_epochs": "randint"}
    space = param_space(spec)
    assert space["batch_size"] == {"grid_search": [16, 32]}
    assert isinstance(space["sam_rho"], Categorical)
    assert space["sam_rho"].categories == [0.05, 0.1, 0.2]
    assert isinstance(space["smoothing_eps"], Float)
    assert (space["smoothing_eps"].lower, space["smoothing_eps"].upper) == (0.0, 0.2)
    assert (space["lr"].lower, space["lr"].upper) == (0.01, 0.3)
    # The file's randint [0, 2] includes 2; Tune's randint excludes its upper bound.
    assert isinstance(space["warmup_epochs"], Integer)
    assert (space["warmup_epochs"].lower, space["warmup_epochs"].upper) == (0, 3)
    # Grid and choice values are coerced to the field's type (batch_size is an int field).
    assert spec.knobs["batch_size"].values == (16, 32)


def test_space_holds_the_full_config_and_crosses_ratios_and_seeds(tmp_path):
    spec = load_space(write(tmp_path, GOOD))
    space = param_space(spec)
    # Constants: the whole TrainConfig of the base, so a trial's config is complete.
    assert set(TrainConfig().to_dict()) <= set(space)
    assert (space["dataset"], space["model"], space["epochs"]) == ("digits", "mlp", 3)
    assert space["train_ratio"] == {"grid_search": [1.0, 0.1, 0.02]}
    assert space["seed"] == {"grid_search": [0, 1]}
    # 2 batch sizes x 3 ratios x 2 seeds, each point drawing the other distributions once.
    variants = [cfg for _, cfg in generate_variants(space)]
    assert spec.num_trials() == len(variants) == 12
    combos = {(c["batch_size"], c["train_ratio"], c["seed"]) for c in variants}
    assert len(combos) == 12
    for c in variants:
        assert c["sam_rho"] in (0.05, 0.1, 0.2)
        assert 0.0 <= c["smoothing_eps"] < 0.2 and 0.01 <= c["lr"] < 0.3
        assert c["warmup_epochs"] in (0, 1, 2)
        TrainConfig(**c)  # every variant is a valid config


def test_optuna_searcher_defaults(tmp_path):
    spec = load_space(write(tmp_path, """
        base: {dataset: digits}
        knobs: {lr: {loguniform: [0.01, 0.3]}}
        searcher: {type: optuna, num_samples: 7, seed: 3}
    """))
    assert (spec.searcher, spec.num_samples, spec.searcher_seed) == ("optuna", 7, 3)
    assert spec.num_trials() == 7
    space = param_space(spec)
    assert (space["train_ratio"], space["seed"]) == (1.0, 0)  # constants, not grids
