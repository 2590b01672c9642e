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

from imbtrain.tune.jobs import run_prerequisites
from imbtrain.tune.runner import StudyResult, log_artifacts, run_study

__all__ = ["StudyResult", "log_artifacts", "run_prerequisites", "run_study"]
