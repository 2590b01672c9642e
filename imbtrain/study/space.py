"""Search spaces: `search_spaces/*.yaml` loaded and validated into a `StudySpec`.

A search space is data, not code. Every key is checked before anything runs; a problem
raises `UserError` with one line that names the file and the key:

    search_spaces/x.yaml: knobs.batch_sizes: unknown config key 'batch_sizes'; known: ...

The file (every key optional but `knobs` or `variants`, at least one of them):

```yaml
description: one line shown by the study
routine: tuned                 # optional: a named set of TrainConfig values under `base`
base:                          # TrainConfig overrides shared by every trial
  dataset: mnist5k
  epochs: 4
knobs:                         # each key a TrainConfig field, each value one distribution
  batch_size: {grid: [16, 32, 64, 128]}     # every value, crossed with the other grids
  sam_rho: {choice: [0.05, 0.1]}            # one drawn per sample
  lr: {loguniform: [0.01, 0.3]}             # [lo, hi), log scale
  smoothing_eps: {uniform: [0.0, 0.2]}      # [lo, hi)
  warmup_epochs: {randint: [0, 3]}          # lo..hi, both inclusive (like Optuna)
train_ratios: [1.0, 0.1, 0.02] # grid axis `train_ratio`
seeds: [0, 1, 2]               # grid axis `seed` (the training seed, not data_seed)
searcher: grid                 # or {type: optuna, num_samples: 20, seed: 0}; optional
                               # time_budget_s: 3600 (Tune stops the search then; with it,
                               # optuna's num_samples: -1 means until the time is up)
scheduler: none                # or {type: asha, grace_period: 1, reduction_factor: 2}
metric: val_bal_acc            # never a test_ metric: tuning must not see the test split
mode: max
resources: {cpus: 1, gpus: 0}  # per trial; gpus may be a fraction
max_concurrent: 2              # optional cap on trials at once
checkpoint_every: 5            # a trial's checkpoint every N epochs (and at its last epoch)
variants:                      # optional named grid points, each a set of config overrides,
  erm: {}                      # crossed with the grid knobs, ratios and seeds; the name is
  sam_a: {sam: sam_a}          # results.parquet's `variant` column (a combination of keys,
  ssl_sam_a: {ssl: vicreg, sam: sam_a}   # e.g. a method of Table 1, is one variant)
trial_metrics: [param_count]   # optional extra final metrics a trial computes from its model
analyses:                      # optional: what the study draws when it ends (and what
  sensitivity:                 # `imbtrain analyze` draws again): each an analysis kind of
    knob: batch_size           # imbtrain.analysis (`imbtrain analyze --list`) with the
    baseline: 128              # options of its function
    metric: test_acc
smoke:                         # what --smoke changes: base/knobs/analyses merged, the rest replaced
  base: {epochs: 1}
  train_ratios: [1.0, 0.1]
  seeds: [0]
  variants: [erm, sam_a]       # a list of names picks some of the file's variants
full:                          # what a study's --full changes (the paper's settings);
  routine: tuned               # Table 1's routine over the file's base, then:
  base: {dataset: cifar10}     # checked whole once data_dir is given
sections:                      # named sections, each applied as full is by --section NAME
  mnist5k:                     # (e.g. the same study on other data, longer)
    base: {dataset: mnist5k, epochs: 15}
```

Analyses. `analyses` names the analyses a study draws from its result tables when it ends
(figures and tables in the study folder, recorded in analyses.yaml), so that `imbtrain study
SPACE`, a study script and `imbtrain analyze` draw the same ones. Each kind is a name of
`imbtrain.registry.ANALYSES`; its options are the keyword arguments of that analysis
(every required one given; `results_dir` is the study's own, never set here); a `knob` must be
one of the space's knobs (or `variant`), a `baseline` one of that knob's values and a sweep's
`reference` one of its variants. An analysis that a finished study cannot feed (too few
trials finished) is not drawn, with one line that says why.

Distributions are plug-ins of `imbtrain.registry.DISTRIBUTIONS`, registered below, each a
function that checks a knob's values and returns them (`imbtrain.tune.translate` turns
them into Ray Tune's domains).

Routines. A training routine shared by several studies (Table 1's tuned routine: paper
Section 4, Table 1; docs/methods.md) lives once, in `routines/<name>.yaml` beside the space
files: a mapping of TrainConfig keys to values. `routine: <name>` in a section (or at the
top level) puts those values under the section's `base`: the file's base, then the routine,
then the section's base. `routine: {name: tuned, without: [augment, mix]}` leaves out the
keys a study varies itself. A routine is looked up beside the space file first, then among
imbtrain's own (`imbtrain.study.catalog`).

Variants. Where the values of several keys go together (a method of Table 1 is `ssl`,
`sam` and `method` at once; a pre-training source is a `pretrained` path), `variants` names
each combination; a trial gets one variant's overrides on top of the base. A key a variant
sets is not a knob as well; a variant may set `train_ratio` only when the file lists a single
train ratio (data curation: the majority count and the ratio move together). Tune sees one
grid axis, `__variant__` (the name), and each key a variant sets as a `sample_from` of it, so
a trial's config stays the complete, flat TrainConfig.

Searchers. `grid` (Tune's BasicVariantGenerator) crosses every `grid` knob with the train
ratios and the seeds, and draws the other distributions `num_samples` times per grid point.
`optuna` (Tune's OptunaSearch, TPE, seeded) draws `num_samples` configs from the knobs;
TPE needs distributions, so `grid` knobs are refused there (use `choice`), and it tunes at
one train ratio and one seed (the paper tunes on a validation split at one setting, then
re-runs the chosen config over seeds: export it and run a grid study of seeds).

    >>> load_space("label_smoothing").knobs["smoothing_eps"]
    Knob(key='smoothing_eps', dist='grid', values=(0.05, 0.1, 0.3))
    >>> spec = load_space("batch_size")
    >>> spec.variants["bs16_steps"]
    {'batch_size': 16, 'epochs': 1}
    >>> spec.num_trials(), spec.with_smoke().num_trials(), spec.variant("long").num_trials()
    (63, 8, 63)
    >>> full = spec.variant("full", base={"data_dir": "/data/cifar10"})
    >>> full.base["model"], full.base["augment"], full.base["epochs"]
    ('wrn_28_10', 'trivialaugment', 200)
"""

from __future__ import annotations

import copy
import difflib
import inspect
import itertools
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from imbtrain.config import FIELDS, TrainConfig, check_value
from imbtrain.errors import UserError
from imbtrain.files import load_yaml, read_text
from imbtrain.registry import ANALYSES, DATASETS, DISTRIBUTIONS, TRIAL_METRICS
from imbtrain.study.catalog import ROUTINES, find_space, routine_names, routines_dir

TOP_KEYS = (
    "description", "base", "knobs", "train_ratios", "seeds", "searcher", "scheduler",
    "metric", "mode", "resources", "max_concurrent", "variants", "trial_metrics", "routine",
    "checkpoint_every", "analyses", "smoke", "full", "sections",
)
SECTIONS = ("smoke", "full")  # sections of the space: --smoke, and a study script's --full
NAMED = "sections"  # the top-level key of the named sections (a study script's --section)
SEARCHERS = ("grid", "optuna")
SCHEDULERS = ("none", "asha")
# Grid axes handled by their own top-level lists, so they are not knobs.
AXES = {"train_ratio": "train_ratios", "seed": "seeds"}
# A trial checkpoints every N epochs, at its last epoch and at ASHA's rungs (checkpoint +
# report cost 0.1-0.3 s here: every epoch, they would be a fifth of a short trial's time;
# benchmarks/RESULTS.md). A trial resumed after a crash repeats at most N - 1 epochs.
CHECKPOINT_EVERY = 5
VARIANT_KEY = "__variant__"  # the Tune grid axis of the variants (dropped by trial_params)
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # it ends up in folder names
SPACE_FILE = "a search-space YAML file (search_spaces/*.yaml)"
ROUTINE_FILE = "a routine YAML file (a mapping of TrainConfig keys to values)"
# Every trial config of a finite study is built (and so checked) before Ray starts, up to
# this many; beyond it, every pair of knob values with the other knobs at their first value.
MAX_COMBINATIONS = 256
# The types of the keys a distribution of ranges may draw (randint's integers are floats too).
RANGE_TYPES = {"uniform": ("float",), "loguniform": ("float",), "randint": ("int", "float")}


class SpaceError(UserError):
    """A search-space file is wrong; the message names the file and the key."""


# ---------------------------------------------------------------------------------------
# Distributions: plug-ins of imbtrain.registry.DISTRIBUTIONS, one check function each
# ---------------------------------------------------------------------------------------
# `fn(key, values) -> tuple` checks a knob's list (values, or bounds with `bounds=True`)
# and returns what the knob keeps; a problem raises UserError with the message alone (the
# parser puts the file and `knobs.<key>.<dist>` in front).


def _listed(key: str, values: list) -> tuple:
    """Values of the field `key`, each coerced to its type and checked; none repeated."""
    checked = [check_value(key, v) for v in values]
    if len(set(map(repr, checked))) != len(checked):
        raise UserError(f"values repeat: {values}")
    return tuple(checked)


def _bounds(key: str, b: list, dist: str) -> tuple:
    """[lo, hi], each a valid value of `key`, kept as written: randint's bounds must stay
    integers even for a float field such as warmup_epochs."""
    for v in b:
        check_value(key, v)
    if len(b) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in b):
        raise UserError(f"expected two numbers [lo, hi], got {b}")
    lo, hi = b
    if dist == "randint" and not all(isinstance(x, int) for x in b):
        raise UserError(f"randint needs integers [lo, hi], got {b}")
    if (dist == "randint" and lo > hi) or (dist != "randint" and not lo < hi):
        raise UserError(f"lo must be below hi, got {b}")
    if dist == "loguniform" and lo <= 0:
        raise UserError(f"loguniform needs 0 < lo, got {b}")
    return tuple(b)


@DISTRIBUTIONS.register("grid", bounds=False)
def grid(key: str, values: list) -> tuple:
    """Every value, crossed with the other grid knobs, the train ratios and the seeds."""
    return _listed(key, values)


@DISTRIBUTIONS.register("choice", bounds=False)
def choice(key: str, values: list) -> tuple:
    """One of the values, drawn per sample."""
    return _listed(key, values)


@DISTRIBUTIONS.register("uniform", bounds=True)
def uniform(key: str, bounds: list) -> tuple:
    """A number drawn uniformly from [lo, hi)."""
    return _bounds(key, bounds, "uniform")


@DISTRIBUTIONS.register("loguniform", bounds=True)
def loguniform(key: str, bounds: list) -> tuple:
    """A number drawn uniformly on a log scale from [lo, hi), 0 < lo."""
    return _bounds(key, bounds, "loguniform")


@DISTRIBUTIONS.register("randint", bounds=True)
def randint(key: str, bounds: list) -> tuple:
    """An integer drawn from lo..hi, both inclusive (as Optuna's)."""
    return _bounds(key, bounds, "randint")


@dataclass(frozen=True)
class Knob:
    """One knob: a TrainConfig field, a distribution name and its values or bounds."""

    key: str
    dist: str
    values: tuple


# ---------------------------------------------------------------------------------------
# The study spec
# ---------------------------------------------------------------------------------------

@dataclass
class StudySpec:
    """A validated search space: everything `run_study` needs, nothing Ray-specific."""

    path: str
    name: str
    description: str = ""
    base: dict[str, Any] = field(default_factory=dict)
    knobs: dict[str, Knob] = field(default_factory=dict)
    train_ratios: list[float] = field(default_factory=lambda: [1.0])
    seeds: list[int] = field(default_factory=lambda: [0])
    searcher: str = "grid"
    num_samples: int = 1  # -1: until time_budget_s (optuna)
    searcher_seed: int = 0
    time_budget_s: float | None = None  # Tune's time budget of the whole search
    scheduler: str = "none"
    grace_period: int = 1
    reduction_factor: int = 2
    metric: str = "val_bal_acc"
    mode: str = "max"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    checkpoint_every: int = CHECKPOINT_EVERY
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> overrides
    trial_metrics: tuple[str, ...] = ()  # names of imbtrain.registry.TRIAL_METRICS
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> options
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)  # smoke, full, named
    is_smoke: bool = False
    _raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the file, for variants
    _file: dict[str, Any] = field(default_factory=dict, repr=False)  # as loaded, no section

    @property
    def epochs(self) -> int:
        """Epochs of every trial (ASHA's max_t): the base's, else TrainConfig's default."""
        return int(self.base.get("epochs", TrainConfig().epochs))

    def variant_table(self) -> dict[str, dict[str, Any]]:
        """Each variant's value of every key that some variant sets (the base's value where
        it sets none): what a trial's config holds for them (Tune's `sample_from`s of
        `imbtrain.tune.translate.param_space` resolve to these)."""
        plain = {**self.base_config().to_dict(), "train_ratio": self.train_ratios[0]}
        keys = variant_keys(self.variants)
        return {name: {k: over.get(k, plain[k]) for k in keys}
                for name, over in self.variants.items()}

    def base_config(self) -> TrainConfig:
        """The base as a TrainConfig; when the base alone is none (a knob completes it, e.g.
        a data_dir grid of an on-disk dataset), the first trial's."""
        try:
            return TrainConfig(**self.base)
        except UserError:
            return self.trial_config(next(trial_points(self)))

    def num_trials(self) -> int:
        """How many trials the study runs (grid: grid points x num_samples); -1: as many as
        its time budget allows."""
        if self.searcher == "optuna":
            return self.num_samples
        grid = math.prod(len(k.values) for k in self.knobs.values() if k.dist == "grid")
        grid *= max(1, len(self.variants))
        return grid * len(self.train_ratios) * len(self.seeds) * self.num_samples

    def budget_text(self) -> str:
        """How much the study runs, in words: "12 trials", "12 trials or 1.5 h of search,
        whichever comes first", "trials until 20 s of search"."""
        return budget_text(self.num_trials(), self.time_budget_s)

    def trial_config(self, config: dict[str, Any]) -> TrainConfig:
        """The full TrainConfig of one trial: the base, then the trial's sampled values."""
        return TrainConfig(**{**self.base, **trial_params(config)})

    def with_smoke(self) -> StudySpec:
        """The spec with its `smoke` section applied (what `--smoke` runs); a space without
        one is refused (it would run whole)."""
        if self.is_smoke:
            return self
        if "smoke" not in self.sections:
            raise SpaceError(f"{self.path}: --smoke: the space has no smoke section, so it "
                             "would run whole; add one (e.g. smoke: {base: {epochs: 1}, "
                             "seeds: [0]}) or leave out --smoke")
        smoke = self.sections["smoke"]
        smoke_base = smoke.get("base") if isinstance(smoke, dict) else None
        if isinstance(smoke_base, dict) and self._data_chosen():
            # The smoke section's data stand in for the space's own; data a section or the
            # command line chose (--full, --dataset, --data-dir) are what the smoke run checks.
            smoke = {**smoke, "base": {k: v for k, v in smoke_base.items()
                                       if k not in ("dataset", "data_dir")}}
        return self.variant("smoke", keys=smoke)

    def _data_chosen(self) -> bool:
        """Whether this spec's data differ from the file's own base (a section's or an
        override's dataset, or a data_dir)."""
        own = (self._file or self._raw).get("base") or {}
        own = own if isinstance(own, dict) else {}
        return any(self.base.get(key, own.get(key)) != own.get(key)
                   for key in ("dataset", "data_dir"))

    def variant(self, section: str | None = None, base: dict[str, Any] | None = None,
                changes: dict[str, Any] | None = None,
                keys: dict[str, Any] | None = None) -> StudySpec:
        """The spec with a section (`smoke`, `full` or a named one) applied, then `changes`
        (keys of the file, merged as a section is: e.g. the `variants` a study script made),
        then `base` overrides (e.g. a study script's --dataset and --data-dir), validated
        again. `keys`: the section's keys to merge instead of the file's (`with_smoke`)."""
        where = section_label(section)
        if keys is None:
            keys = self.sections.get(section, {}) if section else {}
        raw = merge_section(self._raw, keys, self.path, where=where)
        if changes:
            raw = merge_section(raw, changes, self.path)
        if base:
            raw["base"] = {**(raw.get("base") or {}), **base}
        spec = _parse(raw, self.path, self.name, where=where)
        spec.sections, spec._file = self.sections, self._file or self._raw
        spec.is_smoke = self.is_smoke or section == "smoke"
        return spec


def section_label(section: str | None) -> str:
    """How messages name a section's keys: "full.", "sections.mnist5k.", "" for none."""
    if not section:
        return ""
    return f"{section}." if section in SECTIONS else f"{NAMED}.{section}."


def trial_params(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's config without Tune's own keys (e.g. `__trial_index__`, `__variant__`)."""
    return {k: v for k, v in config.items() if not k.startswith("__")}


def variant_of(config: dict[str, Any]) -> str | None:
    """The name of a trial's variant, None when the study has no variants."""
    value = config.get(VARIANT_KEY)
    return None if value is None else str(value)


def variant_keys(variants: dict[str, dict[str, Any]]) -> list[str]:
    """The config keys that any variant sets, in first-seen order."""
    return list(dict.fromkeys(k for over in variants.values() for k in over))


def trial_label(config: dict[str, Any],
                variant_table: dict[str, dict[str, Any]] | None = None) -> str:
    """A trial's name: `TrainConfig.trial_name()`, with its variant before the seed when it
    has one and the name does not already say it (digits_r0.1_bs32_supervised_s0).

    `variant_table` (`StudySpec.variant_table`) fills in the keys its variant sets, for a
    config whose `sample_from`s Tune has not resolved yet (a new trial's name)."""
    variant = variant_of(config)
    params = trial_params(config)
    if variant is not None and variant_table:
        params.update(variant_table[variant])
    name = TrainConfig(**params).trial_name()
    if variant is None:
        return name
    head, _, seed = name.rpartition("_")
    return name if f"_{variant}" in f"_{head}" else f"{head}_{variant}_{seed}"


def merge_section(raw: dict[str, Any], section: dict[str, Any], path: str = "",
                  where: str = "") -> dict[str, Any]:
    """`raw` with a section applied: `base`, `knobs` and `analyses` merged key by key (an
    analysis's options replaced whole), a `routine` put
    under the section's base, `variants` given as a list of names picking some of raw's
    variants, the rest replaced (`smoke`: what --smoke changes; `full`: the paper's
    settings). `where` (e.g. "full.") prefixes the keys in messages."""
    out = copy.deepcopy(raw)
    for key in (*SECTIONS, NAMED):
        out.pop(key, None)
    if "routine" in section:  # the file's base, then the routine, then the section's base
        values = resolve_routine(section["routine"], path, f"{where}routine")
        out["base"] = {**_mapping(out.get("base")), **values}
    for key, value in section.items():
        if key == "routine":
            continue
        if key in ("base", "knobs", "analyses") and isinstance(value, dict):
            out[key] = {**_mapping(out.get(key)), **value}
        elif key == "variants" and isinstance(value, list):
            have = out.get("variants") or {}
            unknown = [str(v) for v in value if not isinstance(have, dict) or v not in have]
            if unknown:
                raise SpaceError(f"{path}: variants: unknown variant(s) {', '.join(unknown)}; "
                                 f"the file's: {', '.join(map(str, have)) or 'none'}")
            out[key] = {name: have[name] for name in value}
        else:
            out[key] = value
    return out


def _mapping(value: Any) -> dict:
    """A section's `base` or `knobs` as a dict to merge into (its checks come later)."""
    return value if isinstance(value, dict) else {}


def load_space(path: str | Path, name: str | None = None) -> StudySpec:
    """Read and validate a search space into a `StudySpec`: a file, or the name of one of
    imbtrain's own (`batch_size`: search_spaces/batch_size.yaml, shipped inside the
    package). Its smoke section is checked whole, its full section key by key."""
    p = find_space(path)
    path = str(p)
    text = read_text(p, SPACE_FILE)  # a binary, empty or non-UTF-8 file: one line
    try:
        raw = load_yaml(text, p)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpaceError(f"{path}: {line}invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise SpaceError(f"{path}: expected a mapping of keys ({', '.join(TOP_KEYS)})")
    spec = _parse(raw, path, name or p.stem)
    if "smoke" in spec.sections:
        spec.with_smoke()  # a broken smoke section fails now, not when --smoke is used
    for section in spec.sections:  # keys and values now; combinations once data_dir is known
        if section != "smoke":
            where = section_label(section)
            _parse(merge_section(raw, spec.sections[section], path, where=where), path,
                   spec.name, where=where, combinations=False)
    return spec


# ---------------------------------------------------------------------------------------
# Routines: named sets of TrainConfig values, one YAML file each (module doc, "Routines")
# ---------------------------------------------------------------------------------------

def resolve_routine(value: Any, path: str, label: str) -> dict[str, Any]:
    """The values a `routine:` entry puts under a base: `name` or `{name: .., without:
    [keys]}`, looked up beside the space file `path`, then among imbtrain's."""

    def fail(key: str, msg: str) -> SpaceError:
        return SpaceError(f"{path}: {key}: {msg}")

    form = "expected a routine name (e.g. tuned) or {name: tuned, without: [keys]}"
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise fail(label, form)
    extra = sorted(set(value) - {"name", "without"})
    if extra:
        raise fail(f"{label}.{extra[0]}", "unknown key; allowed: name, without")
    name, without = value["name"], value.get("without", [])
    values = load_routine(routine_file(name, path, label))
    if not isinstance(without, list) or not all(isinstance(k, str) for k in without):
        raise fail(f"{label}.without", "expected a list of the routine's keys to leave out")
    stray = [k for k in without if k not in values]
    if stray:
        raise fail(f"{label}.without", f"{stray[0]!r} is not a key of routine {name}; its "
                                       f"keys: {', '.join(values)}")
    return {k: v for k, v in values.items() if k not in without}


def routine_file(name: str, path: str, label: str = "routine") -> Path:
    """`routines/<name>.yaml` beside the space file `path`, else imbtrain's own."""
    local = Path(path).parent / ROUTINES / f"{name}.yaml"
    if local.is_file():
        return local
    if name in routine_names():
        return routines_dir() / f"{name}.yaml"
    close = difflib.get_close_matches(name, routine_names(), n=2)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    raise SpaceError(f"{path}: {label}: unknown routine {name!r}{hint}; known: "
                     f"{', '.join(routine_names()) or 'none'} (routines/<name>.yaml beside "
                     "the space file adds one)")


def load_routine(path: Path) -> dict[str, Any]:
    """A routine file: a mapping of TrainConfig keys to values, each checked."""

    def fail(key: str, msg: str) -> SpaceError:
        return SpaceError(f"{path}: {key}: {msg}")

    text = read_text(path, ROUTINE_FILE)
    try:
        raw = load_yaml(text, path)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpaceError(f"{path}: invalid YAML: {problem}") from None
    if not isinstance(raw, dict) or not raw:
        raise SpaceError(f"{path}: expected a mapping of TrainConfig keys to values")
    return _parse_base(raw, fail, label="")


# ---------------------------------------------------------------------------------------
# Parsing: one function per section; each raises SpaceError naming file and key
# ---------------------------------------------------------------------------------------

def _parse(raw: dict[str, Any], path: str, name: str, where: str = "",
           combinations: bool = True) -> StudySpec:
    def fail(key: str, msg: str) -> SpaceError:
        return SpaceError(f"{path}: {where}{key}: {msg}")

    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key; allowed: {', '.join(TOP_KEYS)}")
    spec = StudySpec(path=path, name=name, description=str(raw.get("description") or ""))
    spec._raw = raw
    base = raw.get("base") or {}
    if raw.get("routine") is not None and isinstance(base, dict):  # a routine under the base
        base = {**resolve_routine(raw["routine"], path, f"{where}routine"), **base}
    spec.base = _parse_base(base, fail)
    spec.knobs = _parse_knobs(raw.get("knobs"), fail, optional=bool(raw.get("variants")))
    spec.train_ratios = _parse_axis(raw, "train_ratios", "train_ratio", spec.base, fail)
    spec.seeds = _parse_axis(raw, "seeds", "seed", spec.base, fail)
    _parse_searcher(raw.get("searcher", "grid"), spec, fail)
    _parse_scheduler(raw.get("scheduler", "none"), spec, fail)
    _parse_metric(raw, spec, fail)
    _parse_resources(raw.get("resources") or {}, spec, fail)
    spec.max_concurrent = _positive_int_or_none(raw.get("max_concurrent"), "max_concurrent", fail)
    spec.checkpoint_every = _positive_int_or_none(raw.get("checkpoint_every"),
                                                  "checkpoint_every", fail) or CHECKPOINT_EVERY
    spec.variants = _parse_variants(raw.get("variants"), spec, fail)
    spec.trial_metrics = _parse_trial_metrics(raw.get("trial_metrics"), fail)
    spec.analyses = _parse_analyses(raw.get("analyses"), spec, fail)
    for key in SECTIONS:
        section = raw.get(key) or {}
        if not isinstance(section, dict):
            raise fail(key, f"expected a mapping of the top-level keys {key} changes")
        inner = sorted(set(section) & set(SECTIONS))
        if inner:
            raise fail(f"{key}.{inner[0]}", "a section cannot hold another")
        if section:
            spec.sections[key] = section
    spec.sections.update(_parse_named_sections(raw.get(NAMED), fail))
    _check_scheduler_budget(spec, fail)
    if combinations:
        _check_trial_configs(spec, fail)
    return spec


def _check(key: str, value: Any, label: str, fail) -> Any:
    """`check_value`, with the file and the key in front of its message."""
    try:
        return check_value(key, value)
    except UserError as e:
        raise fail(label, str(e)) from None


def _known_key(key: str, label: str, fail) -> None:
    """Reject a key TrainConfig does not have, with the nearest known ones."""
    known = [f.name for f in fields(TrainConfig)]
    if key not in known:
        near = difflib.get_close_matches(str(key), known, n=2)
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        raise fail(label, f"unknown config key; {hint}known: {', '.join(known)}")


def _parse_base(base: Any, fail, label: str = "base") -> dict[str, Any]:
    if not isinstance(base, dict):
        raise fail(label, "expected a mapping of TrainConfig keys to values")
    out = {}
    for key, value in base.items():
        where = f"{label}.{key}" if label else str(key)
        _known_key(key, where, fail)
        out[key] = _check(key, value, where, fail)
    return out


def _parse_knobs(knobs: Any, fail, optional: bool = False) -> dict[str, Knob]:
    if optional and not knobs:  # a study of variants alone
        return {}
    if not isinstance(knobs, dict) or not knobs:
        raise fail("knobs", "expected a mapping of TrainConfig keys to distributions, "
                            "e.g. batch_size: {grid: [16, 32]}")
    return {key: _parse_knob(key, spec, fail) for key, spec in knobs.items()}


def _parse_knob(key: str, spec: Any, fail) -> Knob:
    label = f"knobs.{key}"
    if key in AXES:
        raise fail(label, f"list {key} values under the top-level key {AXES[key]!r}")
    _known_key(key, label, fail)
    allowed = ", ".join(DISTRIBUTIONS.names())
    if not isinstance(spec, dict) or len(spec) != 1:
        raise fail(label, f"expected one distribution, e.g. {{grid: [..]}}; allowed: {allowed}")
    (dist, values), = spec.items()
    if dist not in DISTRIBUTIONS:
        raise fail(label, f"unknown distribution {dist!r}; allowed: {allowed}")
    if not isinstance(values, list) or not values:
        raise fail(f"{label}.{dist}", "expected a non-empty list")
    _check_distribution_type(key, dist, f"{label}.{dist}", fail)
    try:
        checked = DISTRIBUTIONS.get(dist)(key, values)
    except UserError as e:
        raise fail(f"{label}.{dist}", str(e)) from None
    return Knob(key, dist, tuple(checked))


def _check_distribution_type(key: str, dist: str, label: str, fail) -> None:
    """A distribution of ranges only on a key of its type: `uniform` and `loguniform` draw
    floats, `randint` integers; a string or boolean key takes `grid` or `choice` only."""
    if not DISTRIBUTIONS.meta(dist).get("bounds"):
        return
    kind = _type_name(key)
    allowed = RANGE_TYPES.get(dist)
    if allowed is None or kind in allowed:
        return
    if kind == "int":
        hint = "use randint (integers, both bounds included), grid or choice"
    elif kind == "float":
        hint = "use uniform or loguniform, grid or choice"
    else:
        hint = "use grid or choice with its values"
    raise fail(label, f"{dist} draws {'integers' if dist == 'randint' else 'numbers'} but "
                      f"{key} is {_TYPE_WORDS[kind]} key; {hint}")


_TYPE_WORDS = {"int": "an integer", "float": "a float", "str": "a string", "bool": "a boolean"}


def _type_name(key: str) -> str:
    t = FIELDS[key].type
    return t if isinstance(t, str) else t.__name__


def _parse_axis(raw: dict, key: str, field_name: str, base: dict, fail) -> list:
    if key not in raw:
        return [base.get(field_name, getattr(TrainConfig(), field_name))]
    values = raw[key]
    if not isinstance(values, list) or not values:
        raise fail(key, f"expected a non-empty list of {field_name} values")
    checked = [_check(field_name, v, key, fail) for v in values]
    if len(set(checked)) != len(checked):
        raise fail(key, f"values repeat: {values}")
    return checked


def _section(value: Any, key: str, allowed: tuple[str, ...], fail) -> tuple[str, dict]:
    """`name` or `{type: name, ...}` -> (name, options)."""
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict) or "type" not in value:
        raise fail(key, f"expected one of {', '.join(allowed)} or {{type: ..., ...}}")
    opts = dict(value)
    kind = opts.pop("type")
    if kind not in allowed:
        raise fail(f"{key}.type", f"unknown {key} {kind!r}; allowed: {', '.join(allowed)}")
    return kind, opts


def _options(opts: dict, allowed: dict[str, type], key: str, fail) -> dict:
    for k, v in opts.items():
        if k not in allowed:
            raise fail(f"{key}.{k}", f"unknown option; allowed: {', '.join(allowed) or 'none'}")
        if not isinstance(v, allowed[k]) or isinstance(v, bool) or v < 1 - (k == "seed"):
            raise fail(f"{key}.{k}", f"expected a positive integer, got {v!r}")
    return opts


def budget_text(trials: int, seconds: float | None) -> str:
    """`StudySpec.budget_text` from a trial count (-1: until the time budget) and a time
    budget in seconds (None: none).

        >>> budget_text(12, None), budget_text(-1, 20.0)
        ('12 trials', 'trials until 20 s of search')
        >>> budget_text(8, 5400)
        '8 trials or 1.5 h of search, whichever comes first'
    """
    if not seconds:
        return f"{trials} trials"
    t = float(seconds)
    limit = f"{t / 3600:g} h" if t >= 3600 else f"{t / 60:g} min" if t >= 60 else f"{t:g} s"
    if trials < 0:
        return f"trials until {limit} of search"
    return f"{trials} trials or {limit} of search, whichever comes first"


def _parse_searcher(value: Any, spec: StudySpec, fail) -> None:
    kind, opts = _section(value, "searcher", SEARCHERS, fail)
    opts = dict(opts)
    budget = opts.pop("time_budget_s", None)
    if budget is not None and (isinstance(budget, bool) or not isinstance(
            budget, int | float) or not budget > 0 or math.isinf(budget)):
        raise fail("searcher.time_budget_s", f"expected a positive number of seconds, got "
                                             f"{budget!r}")
    unbounded = opts.get("num_samples") == -1 and kind == "optuna" and budget is not None
    if unbounded:
        opts.pop("num_samples")
    elif opts.get("num_samples") == -1:
        raise fail("searcher.num_samples", "-1 (trials until the time is up) needs type "
                                           "optuna and a time_budget_s; else a positive "
                                           "integer")
    opts = _options(opts, {"num_samples": int, "seed": int}, "searcher", fail)
    spec.searcher = kind
    spec.num_samples = -1 if unbounded else opts.get("num_samples",
                                                      1 if kind == "grid" else 20)
    spec.searcher_seed = opts.get("seed", 0)
    spec.time_budget_s = None if budget is None else float(budget)
    if kind == "optuna":
        grids = [k.key for k in spec.knobs.values() if k.dist == "grid"]
        if grids:
            raise fail(f"knobs.{grids[0]}", "optuna samples distributions; use choice, not grid")
        for key in ("train_ratios", "seeds"):
            if len(getattr(spec, key)) != 1:
                raise fail(key, "optuna tunes at one value; use searcher grid to cross several")


def _parse_scheduler(value: Any, spec: StudySpec, fail) -> None:
    kind, opts = _section(value, "scheduler", SCHEDULERS, fail)
    allowed = {"grace_period": int, "reduction_factor": int} if kind == "asha" else {}
    opts = _options(opts, allowed, "scheduler", fail)
    spec.scheduler = kind
    spec.grace_period = opts.get("grace_period", 1)
    spec.reduction_factor = opts.get("reduction_factor", 2)
    if kind == "asha" and spec.reduction_factor < 2:
        raise fail("scheduler.reduction_factor", "ASHA needs a reduction factor of 2 or more")


def _parse_metric(raw: dict, spec: StudySpec, fail) -> None:
    metric = raw.get("metric", spec.metric)
    if not isinstance(metric, str) or not metric.startswith(("val_", "train_")):
        raise fail("metric", f"expected a val_ (or train_) metric such as val_bal_acc, got "
                             f"{metric!r}; tuning on the test split would leak it")
    mode = raw.get("mode", "max")
    if mode not in ("max", "min"):
        raise fail("mode", f"expected max or min, got {mode!r}")
    spec.metric, spec.mode = metric, mode


def _parse_resources(res: Any, spec: StudySpec, fail) -> None:
    if not isinstance(res, dict):
        raise fail("resources", "expected {cpus: N, gpus: F}")
    for key in res:
        if key not in ("cpus", "gpus"):
            raise fail(f"resources.{key}", "unknown key; allowed: cpus, gpus")
    cpus, gpus = res.get("cpus", 1), res.get("gpus", 0)
    for key, v, lo in (("cpus", cpus, 0.0), ("gpus", gpus, 0.0)):
        if isinstance(v, bool) or not isinstance(v, int | float) or v < lo or (
                key == "cpus" and v == 0):
            raise fail(f"resources.{key}", f"expected a number >= 0 (cpus > 0), got {v!r}")
    spec.cpus_per_trial, spec.gpus_per_trial = float(cpus), float(gpus)


def _positive_int_or_none(v: Any, key: str, fail) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise fail(key, f"expected a positive integer, got {v!r}")
    return v


def _parse_variants(value: Any, spec: StudySpec, fail) -> dict[str, dict[str, Any]]:
    """`variants`: a mapping name -> TrainConfig overrides (module doc, "Variants")."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise fail("variants", "expected a mapping of names to config overrides, e.g. "
                               "{erm: {}, sam_a: {sam: sam_a}}")
    out: dict[str, dict[str, Any]] = {}
    for name, over in value.items():
        label = f"variants.{name}"
        if not isinstance(name, str) or not VARIANT_NAME.match(name):
            raise fail(label, "a variant name is letters, digits and _ . + - (it names "
                              "folders and plot labels)")
        if not isinstance(over, dict):
            raise fail(label, "expected a mapping of TrainConfig keys to values ({} for none)")
        for key in over:
            _known_key(key, f"{label}.{key}", fail)
            if key == "seed":
                raise fail(f"{label}.seed", "seeds are the top-level key seeds, not a variant")
            if key in spec.knobs:
                raise fail(f"{label}.{key}", f"{key} is also a knob; set it in one place")
            if key == "train_ratio" and len(spec.train_ratios) > 1:
                raise fail(f"{label}.train_ratio", "a variant sets train_ratio only when the "
                                                   "file lists a single train ratio")
        out[name] = {k: _check(k, v, f"{label}.{k}", fail) for k, v in over.items()}
    if spec.searcher != "grid":
        raise fail("variants", "variants are grid points; use searcher grid")
    return out


def _parse_named_sections(value: Any, fail) -> dict[str, dict[str, Any]]:
    """`sections`: a mapping of names to sections, each applied as `full` is (`--section`)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise fail(NAMED, "expected a mapping of section names to sections, e.g. {mnist5k: "
                          "{base: {dataset: mnist5k}}}")
    for name, section in value.items():
        label = f"{NAMED}.{name}"
        if not isinstance(name, str) or not VARIANT_NAME.match(name) or name in SECTIONS:
            raise fail(label, "a section name is letters, digits and _ . + - (it names the "
                              f"study's folder), not {' or '.join(SECTIONS)}")
        if not isinstance(section, dict) or not section:
            raise fail(label, "expected a mapping of the top-level keys the section changes")
        inner = sorted(set(section) & {*SECTIONS, NAMED})
        if inner:
            raise fail(f"{label}.{inner[0]}", "a section cannot hold another")
    return dict(value)


def _parse_trial_metrics(value: Any, fail) -> tuple[str, ...]:
    """`trial_metrics`: names of `imbtrain.registry.TRIAL_METRICS`."""
    if value is None:
        return ()
    known = ", ".join(TRIAL_METRICS.names())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail("trial_metrics", f"expected a list of names: {known}")
    unknown = [v for v in value if v not in TRIAL_METRICS]
    if unknown:
        raise fail("trial_metrics", f"unknown trial metric {unknown[0]!r}; known: {known}")
    return tuple(value)


def _check_scheduler_budget(spec: StudySpec, fail) -> None:
    """ASHA's settings against the trials' budget (its max_t is the base's epochs): Ray
    asserts grace_period <= max_t, and a knob or variant of epochs would make max_t wrong."""
    if spec.scheduler != "asha":
        return
    epochs_set = ["knobs.epochs"] if "epochs" in spec.knobs else []
    epochs_set += [f"variants.{n}.epochs" for n, over in spec.variants.items() if "epochs" in over]
    if epochs_set:
        raise fail(epochs_set[0], "ASHA stops trials by epoch up to the base's epochs; "
                                  "set epochs in base, not per trial, or use scheduler none")
    if spec.grace_period > spec.epochs:
        raise fail("scheduler.grace_period", f"{spec.grace_period} is more than the trials' "
                                             f"epochs ({spec.epochs}); allowed: 1 to "
                                             f"{spec.epochs}")


# An analysis's options that the study fills in itself (importance reads its optuna.db).
STUDY_OPTIONS = ("results_dir",)


def analysis_signature(kind: str) -> dict[str, Any]:
    """The options of analysis `kind` (its keyword arguments after results, history and
    out_dir) and their defaults, `inspect.Parameter.empty` for a required one."""
    params = list(inspect.signature(ANALYSES.get(kind)).parameters.values())[3:]
    return {p.name: p.default for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in STUDY_OPTIONS}


def _parse_analyses(value: Any, spec: StudySpec, fail) -> dict[str, dict[str, Any]]:
    """`analyses`: {kind: {option: value}} (module doc, "Analyses")."""
    if value is None:
        return {}
    form = "e.g. {sensitivity: {knob: batch_size, baseline: 128}}"
    if not isinstance(value, dict) or not value:
        raise fail("analyses", f"expected a mapping of analysis kinds to their options, {form}")
    out: dict[str, dict[str, Any]] = {}
    for kind, opts in value.items():
        label = f"analyses.{kind}"
        if not isinstance(kind, str) or kind not in ANALYSES:
            raise fail(label, ANALYSES.unknown(str(kind)))
        opts = {} if opts is None else opts
        if not isinstance(opts, dict):
            raise fail(label, f"expected a mapping of the analysis's options ({{}} for none), "
                              f"{form}")
        takes = analysis_signature(kind)
        for key in opts:
            if key not in takes:
                near = difflib.get_close_matches(str(key), list(takes), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise fail(f"{label}.{key}", f"analysis {kind} has no option {key!r}{hint}; "
                                             f"options: {', '.join(takes) or 'none'}")
        missing = [k for k, v in takes.items() if v is inspect.Parameter.empty and k not in opts]
        if missing:
            raise fail(label, f"analysis {kind} needs option(s) {', '.join(missing)}")
        _check_analysis_refs(kind, opts, spec, lambda k, m, lb=label: fail(f"{lb}.{k}", m))
        out[kind] = dict(opts)
    return out


def _check_analysis_refs(kind: str, opts: dict[str, Any], spec: StudySpec, fail) -> None:
    """An analysis's `knob`, `baseline` and `reference` name what this space runs."""
    names = list(spec.variants)
    knob = opts.get("knob")
    if knob is not None:
        known = [*spec.knobs, *(["variant", *variant_keys(spec.variants)] if names else [])]
        if knob not in known:
            near = difflib.get_close_matches(str(knob), known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise fail("knob", f"{knob!r} is not a knob of this space{hint}; knobs: "
                               f"{', '.join(known) or 'none'}")
        values = (names if knob == "variant" else list(spec.knobs[knob].values)
                  if knob in spec.knobs and spec.knobs[knob].dist in ("grid", "choice") else None)
        base = opts.get("baseline")
        if base is not None and values is not None and base not in values:
            raise fail("baseline", f"{base!r} is not a value of {knob} in this space; its "
                                   f"values: {', '.join(map(str, values))}")
    ref = opts.get("reference")
    if ref is not None and opts.get("group", "variant") == "variant" and ref not in names:
        raise fail("reference", f"{ref!r} is not a variant of this space; variants: "
                                f"{', '.join(names) or 'none'}")
    groups = opts.get("groups")
    if groups is not None:  # sensitivity's comparisons: each a list of the space's variants
        form = "expected a mapping of comparison names to lists of variants"
        if not isinstance(groups, dict) or not groups:
            raise fail("groups", f"{form}, e.g. {{fixed_epochs: [bs16, bs128]}}")
        for name, members in groups.items():
            if not isinstance(members, list) or not members or not all(
                    isinstance(m, str) for m in members):
                raise fail(f"groups.{name}", f"{form} (a non-empty list of names)")
            unknown = [m for m in members if m not in names]
            if unknown:
                raise fail(f"groups.{name}", f"{unknown[0]!r} is not a variant of this space; "
                                             f"variants: {', '.join(names) or 'none'}")


def _check_trial_configs(spec: StudySpec, fail) -> None:
    """Build the TrainConfig of each train ratio (and variant) with the first value of every
    knob, then of every value of each knob, then of every combination of knob values (the
    bounds of a range: its corners), variants and train ratios, so that a value or a
    combination TrainConfig rejects fails before Ray starts; then check the metric against
    the names those trials report."""
    first = {k.key: k.values[0] for k in spec.knobs.values()}
    for name, over in (spec.variants or {None: {}}).items():
        for r in spec.train_ratios:
            try:
                spec.trial_config({**first, "train_ratio": r, "seed": spec.seeds[0], **over})
            except UserError as e:
                raise fail(f"variants.{name}" if name else "base", str(e)) from None
    plain = {**first, "train_ratio": spec.train_ratios[0], "seed": spec.seeds[0],
             **next(iter(spec.variants.values()), {})}
    for knob in spec.knobs.values():  # each value alone: the knob's own key in the message
        for value in knob.values[1:]:
            try:
                spec.trial_config({**plain, knob.key: value})
            except UserError as e:
                raise fail(f"knobs.{knob.key}.{knob.dist}", str(e)) from None
    configs = []
    for point in trial_points(spec):
        try:
            configs.append(spec.trial_config(point))
        except UserError as e:
            raise fail("knobs", f"the trials with {_describe(point, first, spec)}: "
                                f"{e}") from None
    _check_metric(spec, configs, fail)


def trial_points(spec: StudySpec):
    """The trial configs (as dicts) the checks build: every combination of the knobs'
    values (grid and choice values, the bounds of a range), the variants and the train
    ratios, at the first seed; beyond MAX_COMBINATIONS, every pair of knob values with the
    other knobs at their first value (rules across keys relate two keys at a time)."""
    knobs = list(spec.knobs.values())
    first = {k.key: k.values[0] for k in knobs}
    variants = list((spec.variants or {None: {}}).items())
    total = math.prod(len(k.values) for k in knobs) * len(variants) * len(spec.train_ratios)
    if total <= MAX_COMBINATIONS:
        combos = [dict(zip([k.key for k in knobs], values, strict=True))
                  for values in itertools.product(*(k.values for k in knobs))]
    else:
        combos = [{**first, a.key: va, b.key: vb}
                  for a, b in itertools.combinations(knobs, 2)
                  for va in a.values for vb in b.values]
    for combo in combos:
        for name, over in variants:
            for r in spec.train_ratios:
                point = {**combo, "train_ratio": r, "seed": spec.seeds[0], **over}
                if name is not None:
                    point[VARIANT_KEY] = name
                yield point


def _describe(point: dict[str, Any], first: dict[str, Any], spec: StudySpec) -> str:
    """The values that make a trial config: knob values other than their first, its
    variant, its train ratio."""
    parts = [f"{k}={v}" for k, v in point.items() if k in first and v != first[k]]
    if VARIANT_KEY in point:
        parts.append(f"variant {point[VARIANT_KEY]}")
    if len(spec.train_ratios) > 1:
        parts.append(f"train_ratio={point['train_ratio']}")
    return ", ".join(parts)


def _check_metric(spec: StudySpec, configs: list[TrainConfig], fail) -> None:
    """The study's metric must be one every trial reports at every epoch (Tune compares
    trials on it after each): a split metric of the train or val split, for the trials'
    number of classes (`imbtrain.metrics.split.epoch_metric_names`)."""
    from imbtrain.metrics.split import epoch_metric_names

    metric = spec.metric
    counts = {_num_classes(c) for c in configs} or {None}
    missing = [k for k in counts if metric not in epoch_metric_names(k or 2)
               and not (k is None and PER_CLASS.fullmatch(metric))]
    if not missing:
        return
    k = min((c for c in counts if c), default=None)
    names = [n for n in epoch_metric_names(k or 2) if n.startswith(("val_", "train_"))]
    near = difflib.get_close_matches(metric, names, n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]}?)" if near else ""
    plain = [n for n in names if n.startswith("val_") and not PER_CLASS.fullmatch(n)]
    per_class = f"val_class_acc_0..{k - 1}" if k else "val_class_acc_<class index>"
    raise fail("metric", f"{metric!r} is not a metric the trials report{hint}; allowed: "
                         f"{', '.join(plain)}, {per_class}, and the same of train_")


PER_CLASS = re.compile(r"(train|val)_class_acc_\d+")


def _num_classes(cfg: TrainConfig) -> int | None:
    """The classes of a config's dataset when its registration says (None: read from the
    files, e.g. imagefolder, tabular)."""
    n = DATASETS.meta(cfg.dataset).get("num_classes")
    return n(cfg) if callable(n) else n
