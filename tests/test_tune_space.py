"""Search-space files: each distribution, the crossing with train ratios and seeds, the smoke
section, and bad files failing with one line that names the file and the key, before Ray."""

from __future__ import annotations

import textwrap

import pytest
from ray.tune.search.sample import Categorical, Float, Integer
from ray.tune.search.variant_generator import generate_variants

from imbtrain.config import TrainConfig
from imbtrain.errors import UserError
from imbtrain.study.space import load_space
from imbtrain.tune.translate import param_space

GOOD = """
description: every distribution
base: {dataset: digits, model: mlp, epochs: 3}
knobs:
  batch_size: {grid: [16, 32]}
  sam_rho: {choice: [0.05, 0.1, 0.2]}
  smoothing_eps: {uniform: [0.0, 0.2]}
  lr: {loguniform: [0.01, 0.3]}
  warmup_epochs: {randint: [0, 2]}
train_ratios: [1.0, 0.1, 0.02]
seeds: [0, 1]
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
resources: {cpus: 2, gpus: 0.5}
max_concurrent: 3
smoke:
  base: {epochs: 1}
  knobs: {batch_size: {grid: [64]}}
  train_ratios: [0.1]
  seeds: [5]
"""


def write(tmp_path, text: str, name: str = "space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


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


def test_options_and_smoke_section(tmp_path):
    spec = load_space(write(tmp_path, GOOD))
    assert (spec.scheduler, spec.grace_period, spec.reduction_factor) == ("asha", 1, 3)
    assert (spec.cpus_per_trial, spec.gpus_per_trial, spec.max_concurrent) == (2.0, 0.5, 3)
    assert (spec.metric, spec.mode, spec.searcher, spec.epochs) == ("val_bal_acc", "max",
                                                                    "grid", 3)
    smoke = spec.with_smoke()
    assert smoke.is_smoke and smoke.epochs == 1
    assert smoke.base["model"] == "mlp"  # base merged key by key, not replaced
    assert smoke.knobs["batch_size"].values == (64,)
    assert smoke.knobs["lr"].dist == "loguniform"  # knobs merged key by key
    assert (smoke.train_ratios, smoke.seeds, smoke.num_trials()) == ([0.1], [5], 1)


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


def test_the_batch_size_space_loads():
    spec = load_space("search_spaces/batch_size.yaml")
    # fixed epochs: the four batch sizes at the base's epochs; fixed steps: epochs x bs / 128
    sizes = {name: over["batch_size"] for name, over in spec.variants.items()}
    assert [sizes[f"bs{b}"] for b in (16, 32, 64, 128)] == [16, 32, 64, 128]
    assert {k: v.get("epochs", spec.epochs) for k, v in spec.variants.items()
            if k.endswith("_steps")} == {f"bs{b}_steps": spec.epochs * b // 128
                                         for b in (16, 32, 64)}
    assert spec.knobs == {} and spec.epochs == 8
    assert spec.train_ratios == [1.0, 0.1, 0.02] and len(spec.seeds) == 3
    assert spec.num_trials() == 63 and spec.with_smoke().num_trials() == 8
    long = spec.variant("long")
    assert long.epochs == 24 and long.variants["bs16_steps"]["epochs"] == 3
    full = spec.variant("full", base={"data_dir": "/data/cifar10"})
    assert (full.base["dataset"], full.base["model"]) == ("cifar10", "wrn_28_10")


BAD = [
    # (file text, the exact message after "<file>: ")
    ("knobs: {batch_sizes: {grid: [16]}}",
     "knobs.batch_sizes: unknown config key; did you mean batch_size or eval_batch_size? "
     "known: dataset, "),
    ("knobs: {lr: {gaussian: [0.1, 0.01]}}",
     "knobs.lr: unknown distribution 'gaussian'; allowed: grid, choice, uniform, loguniform, "
     "randint"),
    ("knobs: {batch_size: {grid: [16, -4]}}",
     "knobs.batch_size.grid: batch_size=-4 is out of range; allowed: [1, 1048576]"),
    ("knobs: {lr: {loguniform: [0.0, 0.1]}}",
     "knobs.lr.loguniform: lr=0.0 is out of range; allowed: (0.0, 100.0]"),
    ("knobs: {smoothing_eps: {uniform: [0.2, 0.1]}}",
     "knobs.smoothing_eps.uniform: lo must be below hi, got [0.2, 0.1]"),
    ("knobs: {lr: {grid: [0.1], choice: [0.2]}}",
     "knobs.lr: expected one distribution, e.g. {grid: [..]}; allowed: grid, choice, "
     "uniform, loguniform, randint"),
    ("knobs: {seed: {grid: [0, 1]}}",
     "knobs.seed: list seed values under the top-level key 'seeds'"),
    ("knobs: {lr: {grid: [0.1]}}\nbudget: 3",
     "budget: unknown key; allowed: description, base, knobs, "),
    ("base: {optimiser: sgd}\nknobs: {lr: {grid: [0.1]}}",
     "base.optimiser: unknown config key; did you mean optimizer? known: "),
    ("knobs: {lr: {grid: [0.1]}}\ntrain_ratios: [1.0, 0]",
     "train_ratios: train_ratio=0 is out of range; allowed: (0.0, 1.0]"),
    ("knobs: {lr: {grid: [0.1]}}\nsearcher: {type: optuna}",
     "knobs.lr: optuna samples distributions; use choice, not grid"),
    ("knobs: {lr: {grid: [0.1]}}\nsearcher: bayes",
     "searcher.type: unknown searcher 'bayes'; allowed: grid, optuna"),
    ("knobs: {lr: {grid: [0.1]}}\nmetric: test_acc",
     "metric: expected a val_ (or train_) metric such as val_bal_acc, got 'test_acc'; "
     "tuning on the test split would leak it"),
    ("knobs: {lr: {grid: [0.1]}}\nscheduler: {type: asha, grace: 2}",
     "scheduler.grace: unknown option; allowed: grace_period, reduction_factor"),
    ("knobs: {lr: {grid: [0.1]}}\nsmoke: {base: {epochs: 0}}",
     "smoke.base.epochs: epochs=0 is out of range; allowed: [1, 100000]"),
    ("knobs: {drw_epoch: {grid: [5]}}\nbase: {epochs: 3}",
     "base: drw_epoch=5 must be below epochs=3"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_files_fail_with_one_line_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text + "\n", "bad.yaml")
    with pytest.raises(UserError) as e:
        load_space(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {message}"), msg


def test_bad_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "knobs:\n  lr: {grid: [0.1]\nseeds: [0]\n", "broken.yaml")
    with pytest.raises(UserError) as e:
        load_space(path)
    # The flow mapping opened on line 2 is cut by line 3's key.
    assert str(e.value).startswith(f"{path}: line 3: invalid YAML: ")
    assert "\n" not in str(e.value)


def test_cli_rejects_a_bad_space_before_ray_starts(tmp_path, capsys):
    import ray

    from imbtrain.cli import main

    path = write(tmp_path, "knobs: {batch_sizes: {grid: [16]}}\n", "bad.yaml")
    assert main(["study", str(path), "--storage", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: knobs.batch_sizes: unknown config key")
    assert err.count("\n") == 1
    assert not ray.is_initialized() and not (tmp_path / "runs").exists()
