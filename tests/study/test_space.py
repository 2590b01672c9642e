"""Search-space files: distributions as registered plug-ins; routines, one shared set of
TrainConfig values that the `full:` sections of the studies put under their base; the options
and the smoke section; bad files failing with one line that names the file and the key, before
Ray."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from imbtrain.config import TrainConfig
from imbtrain.errors import UserError
from imbtrain.registry import DATASETS, DISTRIBUTIONS
from imbtrain.study.catalog import routines_dir, space_names
from imbtrain.study.space import SpaceError, load_space

TUNED = yaml.safe_load((routines_dir() / "tuned.yaml").read_text())


def write(folder: Path, text: str, name: str = "space.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


# ================================================================ distributions


def test_the_distributions_are_registered_with_their_checks():
    assert DISTRIBUTIONS.names() == ["grid", "choice", "uniform", "loguniform", "randint"]
    assert {n: DISTRIBUTIONS.meta(n)["bounds"] for n in DISTRIBUTIONS} == {
        "grid": False, "choice": False, "uniform": True, "loguniform": True, "randint": True}
    # a check coerces listed values to the field's type and keeps bounds as written
    assert DISTRIBUTIONS.get("grid")("batch_size", [16, 32.0]) == (16, 32)
    assert DISTRIBUTIONS.get("randint")("warmup_epochs", [0, 3]) == (0, 3)
    with pytest.raises(UserError, match=r"^values repeat: \[16, 16\]$"):
        DISTRIBUTIONS.get("choice")("batch_size", [16, 16])
    with pytest.raises(UserError, match=r"^randint needs integers \[lo, hi\], got"):
        DISTRIBUTIONS.get("randint")("warmup_epochs", [0, 2.5])


def test_a_registered_distribution_is_usable_in_a_space(tmp_path):
    def constant(key, values):
        """One value, the same in every trial (a throw-away distribution)."""
        if len(values) != 1:
            raise UserError(f"expected one value, got {values}")
        return tuple(values)

    path = write(tmp_path, "base: {dataset: digits}\nknobs: {lr: {constant: [0.2]}}\n")
    with DISTRIBUTIONS.temporary("constant", constant, bounds=False):
        spec = load_space(path)
        assert (spec.knobs["lr"].dist, spec.knobs["lr"].values) == ("constant", (0.2,))
        bad = write(tmp_path, "knobs: {lr: {constant: [0.1, 0.2]}}\n", "bad.yaml")
        with pytest.raises(SpaceError, match=r"knobs\.lr\.constant: expected one value"):
            load_space(bad)
    with pytest.raises(SpaceError, match="unknown distribution 'constant'; allowed: grid, "):
        load_space(path)


# ================================================================ routines


def test_the_tuned_routine_is_table_1s():
    assert TUNED == {
        "model": "wrn_28_10", "epochs": 300, "batch_size": 64, "optimizer": "sgd",
        "momentum": 0.9, "schedule": "cosine", "warmup_epochs": 5, "lr": 0.1,
        "weight_decay": 0.0002, "augment": "trivialaugment", "mix": "cutmix",
        "smoothing": "uniform", "smoothing_eps": 0.1, "ema_decay": 0.999,
        "precision": "bf16", "channels_last": True, "eval_batch_size": 1024}
    TrainConfig(**TUNED)  # a valid config


FULL_STUDIES = [n for n in space_names() if not n.startswith("tabular_")
                and n != "decision_boundary"]


@pytest.mark.parametrize("name", FULL_STUDIES)
def test_every_full_section_runs_the_tuned_routine(name):
    """The routine lives in one file; each study's --full takes it, but for the keys it
    leaves out (what the study varies itself) and those its own base sets."""
    raw = yaml.safe_load((routines_dir().parent / f"{name}.yaml").read_text())
    routine = raw["full"]["routine"]
    without = set(routine.get("without", [])) if isinstance(routine, dict) else set()
    own = raw["full"].get("base", {})
    dataset = own.get("dataset", raw["base"].get("dataset"))  # embedded data takes no data_dir
    on_disk = DATASETS.meta(dataset).get("on_disk")
    full = load_space(name).variant("full", base={"data_dir": "/data/x"} if on_disk else None)
    for key, value in TUNED.items():
        if key in own:
            assert full.base[key] == own[key], (name, key)
        elif key in without:  # the file's own value, if any, never the routine's
            assert full.base.get(key) == raw["base"].get(key), (name, key)
        else:
            assert full.base[key] == value, (name, key)


def test_routine_goes_between_the_files_base_and_the_sections(tmp_path):
    path = write(tmp_path, """
        base: {dataset: digits, model: mlp, epochs: 4, lr: 0.05, momentum: 0.5}
        knobs: {batch_size: {grid: [16]}}
        full:
          routine: {name: tuned, without: [model, precision]}
          base: {epochs: 2}
    """)
    full = load_space(path).variant("full")
    assert full.base["lr"] == 0.1 and full.base["momentum"] == 0.9  # the routine's
    assert full.base["epochs"] == 2                                   # the section's
    assert full.base["model"] == "mlp" and "precision" not in full.base  # left out
    assert load_space(path).base["lr"] == 0.05  # without --full, the file's own


def test_a_routine_beside_the_space_file_and_at_the_top_level(tmp_path):
    write(tmp_path / "routines", "lr: 0.02\nweight_decay: 0.001\n", "mine.yaml")
    path = write(tmp_path, """
        routine: mine
        base: {dataset: digits, weight_decay: 0.0}
        knobs: {batch_size: {grid: [16]}}
        smoke: {routine: tuned, base: {epochs: 1}}
    """)
    spec = load_space(path)
    assert (spec.base["lr"], spec.base["weight_decay"]) == (0.02, 0.0)  # base over routine
    smoke = spec.with_smoke()
    assert (smoke.base["lr"], smoke.base["model"], smoke.epochs) == (0.1, "wrn_28_10", 1)


ROUTINE_ERRORS = [
    ("full: {routine: tunned}",
     "full.routine: unknown routine 'tunned' (did you mean 'tuned'?); known: tuned"),
    ("full: {routine: [tuned]}",
     "full.routine: expected a routine name (e.g. tuned) or {name: tuned, without: [keys]}"),
    ("full: {routine: {name: tuned, except: [mix]}}",
     "full.routine.except: unknown key; allowed: name, without"),
    ("full: {routine: {name: tuned, without: [mixx]}}",
     "full.routine.without: 'mixx' is not a key of routine tuned; its keys: model, epochs,"),
    ("routine: nope",
     "routine: unknown routine 'nope'; known: tuned"),
]


@pytest.mark.parametrize("text, message", ROUTINE_ERRORS,
                         ids=[m.split(":")[0] + str(i) for i, (_, m) in
                              enumerate(ROUTINE_ERRORS)])
def test_bad_routines_name_file_key_and_what_is_allowed(tmp_path, text, message):
    path = write(tmp_path, f"base: {{dataset: digits}}\nknobs: {{lr: {{grid: [0.1]}}}}\n{text}\n")
    with pytest.raises(SpaceError) as e:
        load_space(path)
    assert str(e.value).startswith(f"{path}: {message}"), str(e.value)
    assert "\n" not in str(e.value)


def test_a_bad_routine_file_names_itself(tmp_path):
    routine = write(tmp_path / "routines", "momentm: 0.9\n", "bad.yaml")
    path = write(tmp_path, "base: {dataset: digits}\nknobs: {lr: {grid: [0.1]}}\n"
                           "routine: bad\n")
    with pytest.raises(SpaceError) as e:
        load_space(path)
    assert str(e.value).startswith(f"{routine}: momentm: unknown config key; did you mean "
                                   "momentum?")


# ================================================================ options, smoke, bad files

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


DATA_SMOKE = """
base: {dataset: mnist5k, model: cnn, epochs: 3}
knobs: {batch_size: {grid: [64]}}
smoke: {base: {dataset: digits, epochs: 1}}
full: {base: {dataset: cifar10}}
"""


def test_a_smoke_dataset_stands_in_for_the_spaces_own_data_only(tmp_path):
    spec = load_space(write(tmp_path, DATA_SMOKE))
    assert spec.with_smoke().base["dataset"] == "digits"  # the file's own data: replaced
    # Data a section or the command line chose stay the smoke run's data (1 epoch of them).
    full = spec.variant("full", base={"data_dir": "/data/cifar10"}).with_smoke()
    assert (full.base["dataset"], full.base["data_dir"], full.epochs) == (
        "cifar10", "/data/cifar10", 1)
    folder = spec.variant(None, base={"dataset": "imagefolder", "data_dir": "/d"}).with_smoke()
    assert (folder.base["dataset"], folder.base["data_dir"]) == ("imagefolder", "/d")
    same = spec.variant(None, base={"dataset": "mnist5k"}).with_smoke()
    assert same.base["dataset"] == "digits"  # naming the space's own dataset chooses nothing


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
    ("knobs: {lr: {choice: [0.1]}}\nsearcher: {type: optuna, time_budget_s: 0}",
     "searcher.time_budget_s: expected a positive number of seconds, got 0"),
    ("knobs: {lr: {choice: [0.1]}}\nsearcher: {type: optuna, num_samples: -1}",
     "searcher.num_samples: -1 (trials until the time is up) needs type optuna and a "
     "time_budget_s; else a positive integer"),
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


def test_a_time_budget_bounds_the_search(tmp_path):
    """`time_budget_s` is Tune's time budget of the whole search; with it, optuna's
    `num_samples: -1` searches until the time is up (num_trials -1)."""
    both = load_space(write(tmp_path, "knobs: {lr: {choice: [0.1, 0.2]}}\nsearcher: "
                            "{type: optuna, num_samples: 8, time_budget_s: 5400}\n", "a.yaml"))
    assert (both.num_trials(), both.time_budget_s) == (8, 5400.0)
    until = load_space(write(tmp_path, "knobs: {lr: {choice: [0.1, 0.2]}}\nsearcher: "
                             "{type: optuna, num_samples: -1, time_budget_s: 60}\n", "b.yaml"))
    assert (until.num_trials(), until.time_budget_s) == (-1, 60.0)
    plain = load_space(write(tmp_path, "knobs: {lr: {grid: [0.1, 0.2]}}\n", "c.yaml"))
    assert (plain.num_trials(), plain.time_budget_s) == (2, None)
