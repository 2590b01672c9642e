"""Ray's, Tune's and MLflow's own console output, off unless `--verbose`, by their switches.

A study prints its own lines (one a trial start, an epoch, a finished trial; the heartbeat of
`imbtrain.study.console`). What Ray 2.60, Tune and MLflow print besides is silenced with the
switch each offers, never by filtering text:

- the token-authentication warning ("Token authentication is enabled for this Ray
  cluster. ..."), "Started a local Ray instance." and Ray's other
  INFO lines of the driver: `ray.init(logging_level=ERROR)`, which sets the `ray` logger
  before `ray.init` warns (the token mode itself stays Ray's default);
- INFO and WARNING lines of the `ray.tune` and `ray.train` loggers ("Wrote the latest
  version of all result files ..."): their level is ERROR during the study;
- the 7-line "Configuration for experiment" box, "View detailed results here" and the
  status tables: Tune's new output engine (`ray.tune.experimental.output`) prints the box
  whatever `verbose` says, so `RAY_AIR_NEW_OUTPUT=0` selects the classic reporter, which
  `verbose=0` keeps silent;
- "To visualize your results with TensorBoard, run: ...": `TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`
  drops Tune's automatic loggers, TensorBoard's among them, and the study passes Tune's CSV
  and JSON loggers itself (`loggers`; `ExperimentAnalysis`, hence `imbtrain.tune.collect`,
  reads their files);
- the workers' and the raylet's lines forwarded to the driver ("(raylet)
  file_system_monitor.cc ... is over 95% full", a trial's own prints):
  `ray.init(log_to_driver=False)`; a failed trial's error still reaches its error.txt and
  the study's FAILED line;
- MLflow's INFO lines ("Creating initial MLflow database tables..."):
  `MLFLOW_LOGGING_LEVEL=WARNING` and the `mlflow` logger's level.

`verbose` >= 1 (`--verbose`) leaves every one of them as Ray and MLflow have it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

QUIET_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "MLFLOW_LOGGING_LEVEL": "WARNING"}
NO_AUTO_LOGGERS = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}  # new studies only (below)
QUIET_LOGGERS = {"ray.tune": logging.ERROR, "ray.train": logging.ERROR,
                 "mlflow": logging.WARNING}


def init_options(verbose: int) -> dict:
    """`ray.init` keyword arguments: Ray's logging and the workers' output."""
    return {"logging_level": logging.INFO if verbose else logging.ERROR,
            "log_to_driver": bool(verbose)}


@contextlib.contextmanager
def quiet(verbose: int, new_study: bool = True) -> Iterator[None]:
    """Inside the block, Ray's, Tune's and MLflow's output is off (module doc) unless
    `verbose`; the environment and the loggers' levels are restored after it.

    `new_study`: Tune's automatic loggers are turned off only for a study started now, whose
    CSV and JSON loggers `loggers()` passes; a study resumed from an older tuner.pkl may hold
    no such callbacks, and then keeps Tune's own."""
    if verbose:
        yield
        return
    env = {**QUIET_ENV, **(NO_AUTO_LOGGERS if new_study else {})}
    saved_env = {k: os.environ.get(k) for k in env}
    saved_levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    os.environ.update(env)
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def loggers() -> list:
    """Tune's CSV and JSON result loggers, which `ExperimentAnalysis` reads (the TensorBoard
    one is left out)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [CSVLoggerCallback(), JsonLoggerCallback()]
