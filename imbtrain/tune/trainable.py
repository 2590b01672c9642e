"""The Ray Tune trainable: `train()` wrapped in a function that reports every epoch.

    trainable = make_trainable(spec)       # what run_study hands to tune.Tuner
    # inside a trial: config = {"batch_size": 32, "train_ratio": 0.1, "seed": 1}
    #   -> TrainConfig(**spec.base, **config) -> train(cfg, report=...) -> tune.report(...)

Every epoch the trial reports its metrics with a checkpoint (the loop's `state`, saved with
torch.save), so `Tuner.restore` continues a trial at its last epoch and ASHA can stop it
between epochs. The last epoch is reported once the loop has returned, with the final metrics
(neural collapse, a method's final stage) merged in, so every trial's last result is its
final result; its checkpoint also holds the trial's model folder (`MODEL_DIR`,
`imbtrain.saved`: the final weights, the class names, the fitted tabular transform), from
which the driver logs the best model of each train ratio.

Data, once per worker, not once per trial: a per-process cache of `build_data`, keyed by the
config fields that decide the data (`DATA_FIELDS`). Not `tune.with_parameters`: the study's
trials differ in their train ratio, so each needs its own subsample, and shipping every
ratio's tensors through the object store (and to every node) would cost more than cutting
them locally. The expensive part, decoding the raw pool, happens once per worker process
(`imbtrain.data.load_raw` keeps it), and with `reuse_actors=True` one worker serves many
trials; the cache then also spares the subsampling for trials that share a ratio (seeds).

Faults (RELIABILITY.md). A trial whose loss turns NaN or infinite (`DivergedError`) is a
result, not a crash: it reports `diverged = 1` for that epoch and ends, and results.parquet
records it with status DIVERGED. Checkpoints are read with `torch.load(weights_only=True)`.
`IMBTRAIN_FAULT` (test-only, read by the driver, never a config key) injects a failure:
`raise@K` raises at the end of epoch K of every trial, `raise@K:seed=1,train_ratio=0.1` of
the trials with those config values; only in an attempt that did not resume from a
checkpoint, so a retry from epoch K-1 (K >= 2) runs through, as after a transient failure.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from imbtrain.data import cached_data
from imbtrain.errors import DivergedError, UserError
from imbtrain.metrics.trial import compute_trial_metrics
from imbtrain.study.checkpoints import MODEL_DIR, STATE_FILE  # what a checkpoint holds

INFO_FILE = "trial.json"  # train counts and where the trial ran, read by the results writer
FAULT_ENV = "IMBTRAIN_FAULT"  # test-only fault injection, see the module docstring


def where() -> dict[str, Any]:
    """Where this trial runs: Ray node id, hostname and process id."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id(),
            "hostname": socket.gethostname(), "pid": os.getpid()}


def _load_resume_state() -> dict[str, Any] | None:
    from ray import tune

    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        path = os.path.join(d, STATE_FILE)
        if not os.path.isfile(path):  # the checkpoint of a diverged epoch: nothing to resume
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)
    return _numpy_rng_back(state)


def _numpy_rng_safe(state: dict[str, Any]) -> dict[str, Any]:
    """The loop's state with numpy's RNG keys as a tensor: `weights_only=True` loading
    refuses numpy arrays, the one non-tensor, non-builtin object in the state."""
    rng = state.get("rng", {})
    if isinstance(rng.get("numpy"), tuple) and isinstance(rng["numpy"][1], np.ndarray):
        kind, keys, *rest = rng["numpy"]
        rng = {**rng, "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), *rest)}
        state = {**state, "rng": rng}
    return state


def _numpy_rng_back(state: dict[str, Any]) -> dict[str, Any]:
    rng = state.get("rng", {})
    if isinstance(rng.get("numpy"), tuple) and isinstance(rng["numpy"][1], torch.Tensor):
        kind, keys, *rest = rng["numpy"]
        state["rng"] = {**rng, "numpy": (kind, keys.numpy().astype(np.uint32), *rest)}
    return state


def _report(metrics: dict[str, float], state: dict[str, Any] | None,
            info: dict[str, Any], model: tuple | None = None) -> None:
    """One `tune.report` with the state (none for a diverged epoch) as a checkpoint, and
    with `model` = (network, cfg, data) the trial's model folder in it."""
    from ray import tune

    with tempfile.TemporaryDirectory() as d:
        if state is not None:
            torch.save(_numpy_rng_safe(state), os.path.join(d, STATE_FILE))
        if model is not None:
            from imbtrain.saved import write_model_folder

            write_model_folder(os.path.join(d, MODEL_DIR), *model)
        with open(os.path.join(d, INFO_FILE), "w") as f:
            json.dump(info, f)
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(d))


@dataclass(frozen=True)
class Fault:
    """An injected failure (`IMBTRAIN_FAULT`, test-only): a RuntimeError at the end of
    `epoch` in the trials whose config values match `match`, unless the attempt resumed."""

    epoch: int
    match: tuple[tuple[str, str], ...] = ()

    def check(self, cfg, epoch: int, resumed: bool) -> None:
        if epoch == self.epoch and not resumed and all(
                str(getattr(cfg, key)) == value for key, value in self.match):
            raise RuntimeError(f"{FAULT_ENV}: injected failure at the end of epoch {epoch}")


def parse_fault(text: str | None) -> Fault | None:
    """`raise@K[:key=value,...]` -> Fault; None when unset; a UserError when malformed."""
    if not text:
        return None
    from imbtrain.config import FIELDS

    kind, _, rest = text.partition("@")
    epoch, _, selector = rest.partition(":")
    pairs = [item.partition("=") for item in selector.split(",") if item]
    if kind != "raise" or not epoch.isdigit() or int(epoch) < 1 or any(
            not eq or key not in FIELDS for key, eq, _ in pairs):
        raise UserError(f"{FAULT_ENV}={text!r} is not a fault; expected "
                        "raise@<epoch>[:<config key>=<value>,...] (test-only)")
    return Fault(int(epoch), tuple((key, value) for key, _, value in pairs))


def diverged_result(error: DivergedError, metric: str | None) -> dict[str, float]:
    """The result a diverged trial ends with: its epoch, `diverged` = 1, the train loss, and
    the study's metric as NaN (Tune requires it in every result; Optuna records NaN as a
    failed trial, ASHA ignores it)."""
    out = {metric: math.nan} if metric else {}
    return {**out, "epoch": float(error.epoch), "diverged": 1.0, "train_loss": error.loss}


def run_trial(config: dict[str, Any], cpus: float = 1.0,
              trial_metrics: tuple[str, ...] = (), metric: str | None = None,
              fault: Fault | None = None) -> None:
    """Body of one trial: the trial's config (a full TrainConfig), trained and reported.

    Reports every epoch but the last as it ends; the last after `train` returns, merged with
    the final metrics and the space's `trial_metrics` (imbtrain.metrics.trial), so a
    trial's last result is its final result. A diverged trial ends with `diverged_result`
    (no checkpoint: nothing worth resuming); `metric` is the study's, `fault` an injected one.
    """
    from imbtrain.config import TrainConfig
    from imbtrain.study.space import trial_label, trial_params
    from imbtrain.train import train

    # A trial's torch threads equal its CPUs, so concurrent trials share the cores fairly.
    torch.set_num_threads(max(1, int(round(cpus))))
    # Ray logs a line a checkpoint; the driver's progress lines already say each epoch.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    cfg = TrainConfig(**trial_params(config))
    name = trial_label(config)
    data = cached_data(cfg)
    info = {**where(), "train_counts": list(data.train_counts), "trial_name": name}
    resume = _load_resume_state()
    last: dict[str, Any] = {}

    def report(metrics: dict[str, float], state: dict[str, Any]) -> None:
        if fault is not None:
            fault.check(cfg, int(metrics["epoch"]), resumed=resume is not None)
        if metrics["epoch"] >= cfg.epochs:  # held back until the final metrics are known
            last.update(metrics=metrics, state=state)
            return
        _report(metrics, state, info)

    def log(line: str) -> None:
        # Epoch summaries are the driver's to print (one line a result, in order); other
        # lines (warnings) go to the worker's log and on to the driver's console.
        if not line.startswith("epoch "):
            print(f"[{name}] {line}", flush=True)

    try:
        result = train(cfg, data=data, report=report, resume=resume, log=log)
    except DivergedError as e:
        _report(diverged_result(e, metric), None, {**info, "error": str(e)})
        return
    # Resumed after its last epoch: no epoch ran, the state to keep is the one resumed from.
    state = last.get("state", resume)
    extra = compute_trial_metrics(trial_metrics, result, data)
    _report({**last.get("metrics", {}), **result.metrics, **extra}, state, info,
            model=(result.model, cfg, data))


def make_trainable(cpus: float, gpus: float, trial_metrics: tuple[str, ...] = (),
                   metric: str | None = None) -> Callable:
    """The trainable for `tune.Tuner`: `run_trial` asking for `cpus` and `gpus` a trial, and
    computing the space's `trial_metrics` at its end; `metric` is the study's (reported as
    NaN by a diverged trial). `IMBTRAIN_FAULT` is read here, in the driver.

    The config travels in the param space (`StudySpec.param_space`: the full TrainConfig),
    the data through the per-process cache above; nothing large is captured here.
    """
    from ray import tune

    trial_metrics = tuple(trial_metrics)
    fault = parse_fault(os.environ.get(FAULT_ENV))

    def imbtrain_trial(config: dict[str, Any]) -> None:
        run_trial(config, cpus=cpus, trial_metrics=trial_metrics, metric=metric, fault=fault)

    return tune.with_resources(imbtrain_trial, {"cpu": cpus, "gpu": gpus})
