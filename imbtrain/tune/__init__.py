"""The Ray side of imbtrain: everything that talks to Ray, and nothing else.

- `trainable`: `train()` as a Ray Tune trainable that reports and checkpoints every epoch;
- `runner`: `run_study`, a `StudySpec` through `tune.Tuner` into MLflow and result tables;
- `translate`: a `StudySpec`'s distributions as Tune's param space;
- `collect`: the result tables from a Ray experiment directory;
- `mlflow_log`: the Tune callback that logs a study to MLflow from the driver;
- `jobs`: a study's prerequisite jobs as Ray tasks;
- `cluster`: the offline check of a Ray cluster file.

The module itself is what a study (`imbtrain.study.script`) is handed as its backend:
`run_study`, `log_artifacts` and `run_prerequisites`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["StudyResult", "log_artifacts", "run_prerequisites", "run_study", "stop_ray"]

# Loaded on first use: a Ray worker imports `imbtrain.tune.trainable`, which must not pull
# in the runner's imports (pandas, the study tables) with it.
_LAZY = {"StudyResult": "imbtrain.tune.runner", "log_artifacts": "imbtrain.tune.runner",
         "run_study": "imbtrain.tune.runner", "stop_ray": "imbtrain.tune.runner",
         "run_prerequisites": "imbtrain.tune.jobs"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imbtrain.tune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from imbtrain.tune.jobs import run_prerequisites
    from imbtrain.tune.runner import StudyResult, log_artifacts, run_study, stop_ray
