"""What of a run goes to MLflow, curated for comparing runs (imbtrain train and studies).

- Params: the keys that tell runs apart, not every default. A study's trial: its knobs,
  train ratio and seed, dataset, model and method, and every config key whose value differs
  from TrainConfig's default (`non_default_params`); `imbtrain train`'s run the same without
  knobs. The full config is the run's artifact `config.yaml`.
- Metrics: every epoch's, but the per-class accuracies (`{split}_class_acc_{k}`, K of them
  a split), which would crowd the charts: they go to the table artifact `per_class.json`
  (`per_class_table`: one row a class, its name, train count and final accuracy a split).
- A study's parent run: the search space as params (`space_params`) and, at the end, the
  best validation metric of each train ratio and the trial counts as metrics.

    >>> split_class_metrics({"val_acc": 0.5, "val_class_acc_0": 1.0, "test_class_acc_1": 0.25})
    ({'val_acc': 0.5}, {'val': {0: 1.0}, 'test': {1: 0.25}})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

PER_CLASS_FILE = "per_class.json"
CLASS_ACC = re.compile(r"^(train|val|test)_class_acc_(\d+)$")
ALWAYS_PARAMS = ("dataset", "model", "method", "train_ratio", "seed")
MAX_PARAM_LEN = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
MAX_RUN_PARAMS = 30  # a run's params at most; the imbtrain spaces need 21 (tabular_mlp_sam_a)


def non_default_params(config: Mapping[str, Any], keep: tuple[str, ...] = (),
                       limit: int = MAX_RUN_PARAMS) -> dict[str, str]:
    """MLflow params of a config: the keys in `keep` (and ALWAYS_PARAMS) that it holds, then
    the keys whose value differs from TrainConfig's default, `limit` at most (the rest are
    in the run's config.yaml); Tune's own keys (`__trial_index__`) left out.

        >>> non_default_params({"dataset": "mnist5k", "lr": 0.1, "batch_size": 16,
        ...                     "epochs": 10, "__trial_index__": 3}, keep=("lr",))
        {'dataset': 'mnist5k', 'lr': '0.1', 'batch_size': '16'}
    """
    from imbtrain.config import FIELDS

    first, rest = {}, {}
    for key, value in config.items():
        key = str(key)
        if key.startswith("__"):
            continue
        field = FIELDS.get(key)
        default = field.default if field is not None else object()
        if key in keep or key in ALWAYS_PARAMS:
            first[key] = str(value)[:MAX_PARAM_LEN]
        elif value != default:
            rest[key] = str(value)[:MAX_PARAM_LEN]
    out = {**first, **rest}
    return dict(list(out.items())[:max(limit, len(first))])


def split_class_metrics(metrics: Mapping[str, float]) -> tuple[dict[str, float], dict]:
    """(metrics without per-class accuracies, {split: {class index: accuracy}})."""
    plain, per_class = {}, {}
    for key, value in metrics.items():
        m = CLASS_ACC.match(key)
        if m:
            per_class.setdefault(m.group(1), {})[int(m.group(2))] = value
        else:
            plain[key] = value
    return plain, per_class


def per_class_table(metrics: Mapping[str, float], class_names: list[str] | None = None,
                    train_counts: list[int] | None = None) -> pd.DataFrame:
    """One row a class: index, name, train count and the final accuracy of each split."""
    _, per_class = split_class_metrics(metrics)
    k = max([len(class_names or []), len(train_counts or [])]
            + [max(v) + 1 for v in per_class.values()] + [0])
    table = pd.DataFrame({"class": range(k)})
    table["name"] = list(class_names) if class_names and len(class_names) == k else \
        [str(c) for c in range(k)]
    if train_counts and len(train_counts) == k:
        table["train_count"] = list(train_counts)
    for split in ("train", "val", "test"):
        if split in per_class:
            table[f"{split}_acc"] = [per_class[split].get(c, float("nan")) for c in range(k)]
    return table


def space_params(spec) -> dict[str, str]:
    """The parent run's params: a study's search space (its file, the knobs and their
    values, train ratios, seeds, searcher, scheduler, metric, variants) and the base config's
    keys that differ from their defaults (`base.<key>`)."""
    out = {"space": str(getattr(spec.path, "name", spec.path)), "searcher": spec.searcher,
           "scheduler": spec.scheduler, "metric": spec.metric, "mode": spec.mode,
           "train_ratios": str(list(spec.train_ratios)), "seeds": str(list(spec.seeds)),
           "num_trials": str(spec.num_trials()), "smoke": str(spec.is_smoke)}
    for knob in spec.knobs.values():
        out[f"knob.{knob.key}"] = f"{knob.dist} {list(knob.values)}"[:MAX_PARAM_LEN]
    if spec.variants:
        out["variants"] = str(list(spec.variants))[:MAX_PARAM_LEN]
    base = {k: v for k, v in non_default_params(spec.base).items()
            if k in spec.base and k not in spec.knobs}
    out.update({f"base.{k}": v for k, v in base.items()})
    return out
