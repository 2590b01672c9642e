"""Every distribution of the registry has its Ray Tune domain."""

from __future__ import annotations

import pytest
from ray.tune.search.sample import Categorical, Float, Integer

from imbtrain.errors import UserError
from imbtrain.registry import DISTRIBUTIONS
from imbtrain.study.space import Knob
from imbtrain.tune.translate import TUNE_DOMAINS, domain, untranslated

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
