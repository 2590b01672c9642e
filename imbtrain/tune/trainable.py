"""The Ray Tune trainable: `train()` wrapped in a function that reports every epoch.

    trainable = make_trainable(spec)       # what run_study hands to tune.Tuner
    # inside a trial: config = {"batch_size": 32, "train_ratio": 0.1, "seed": 1}
    #   -> TrainConfig(**spec.base, **config) -> train(cfg, report=...) -> tune.report(...)

Every epoch the trial reports its metrics, so ASHA can stop it between epochs; every
`checkpoint_every` epochs (the space's key), at ASHA's rungs and at the last epoch the report
carries a checkpoint (the loop's `state`, saved with torch.save), so `Tuner.restore`
continues a trial from its last checkpoint (`checkpoint_due`). The last epoch is reported
once the loop has returned, with the final metrics (neural collapse, a method's final stage)
merged in, so every trial's last result is its final result; its checkpoint also holds the
trial's model folder (`MODEL_DIR`, `imbtrain.saved`: the final weights, the class names, the
fitted tabular transform), from which the driver logs the best model of each train ratio.

Data, once per worker, not once per trial: a per-process cache of `build_data`, keyed by the
config fields that decide the data (`DATA_FIELDS`). Not `tune.with_parameters`: the study's
trials differ in their train ratio, so each needs its own subsample, and shipping every
ratio's tensors through the object store (and to every node) would cost more than cutting
them locally. The expensive part, decoding the raw pool, happens once per worker process
(`imbtrain.data.load_raw` keeps it), and with `reuse_actors=True` one worker serves many
trials; the cache then also spares the subsampling for trials that share a ratio (seeds).

Faults (RELIABILITY.md). A trial whose loss turns NaN or infinite (`DivergedError`) is a
result, not a crash: it reports `diverged = 1` for that epoch and ends, and results.parquet
records it with status DIVERGED. A `UserError` in a trial (data missing on the node, a
malformed file found there) is deterministic: retrying cannot help, so the trial reports
`user_error = 1` with the error's one line and ends at once, without Tune's retries and
without a traceback; results.parquet records it with status ERROR and that line.
Checkpoints are read with `torch.load(weights_only=True)`.
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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from imbtrain.data import cached_data
from imbtrain.errors import DivergedError, UserError
from imbtrain.files import read_torch
from imbtrain.metrics.trial import compute_trial_metrics
from imbtrain.study.checkpoints import MODEL_DIR, STATE_FILE, STATE_KIND  # a checkpoint's

if TYPE_CHECKING:  # pyarrow (the study's storage) only where a trial touches it
    from imbtrain.study.storage import StudyDir

INFO_FILE = "trial.json"  # train counts and where the trial ran, read by the results writer
FAULT_ENV = "IMBTRAIN_FAULT"  # test-only fault injection, see the module docstring
USER_ERROR = "user_error"  # 1.0 in the last result of a trial a UserError ended
ERROR_KEY = "error"  # ... with the error's one line (a string: never a metric)


def where() -> dict[str, Any]:
    """Where this trial runs: Ray node id, hostname and process id."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id(),
            "hostname": socket.gethostname(), "pid": os.getpid()}


def _load_resume_state() -> tuple[dict[str, Any] | None, list[dict[str, float]]]:
    """(the loop's state, the results reported so far) of the trial's last checkpoint;
    (None, []) for a trial that starts afresh."""
    from ray import tune

    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return None, []
    with ckpt.as_directory() as d:
        try:
            with open(os.path.join(d, INFO_FILE)) as f:
                reported = list(json.load(f).get("history") or [])
        except (OSError, ValueError):
            reported = []
        path = os.path.join(d, STATE_FILE)
        if not os.path.isfile(path):  # the checkpoint of a diverged epoch: nothing to resume
            return None, reported
        # A damaged file is one line (a UserError: the same checkpoint would fail each retry)
        state = read_torch(path, STATE_KIND)
    return _numpy_rng_back(state), reported


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


def _plain_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """A result's numbers as JSON floats (numpy scalars, NaN included)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, int | float | np.number) and not isinstance(v, bool)}


def _report(metrics: dict[str, float], state: dict[str, Any] | None,
            info: dict[str, Any], reported: list[dict[str, float]] | None = None,
            model: tuple | None = None, checkpoint: bool = True) -> None:
    """One `tune.report`; with `checkpoint`, the state (none for a diverged epoch) and the
    trial's info as a checkpoint, and with `model` = (network, cfg, data) the trial's model
    folder in it. The checkpoint's INFO_FILE also carries every result reported so far
    (`reported`, this one appended): the trial's history, whole whatever Tune's result files
    lose (collect)."""
    from ray import tune

    if reported is not None:
        reported.append(_plain_metrics(metrics))
        info = {**info, "history": reported}
    if not checkpoint:
        tune.report(dict(metrics))
        return
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


def user_error_result(error: UserError, metric: str | None, epoch: float) -> dict[str, Any]:
    """The result a trial ends with when a `UserError` stops it: the last epoch it reported
    (0 before the first), `user_error` = 1, the error's line, and the study's metric as NaN
    (as `diverged_result`)."""
    out = {metric: math.nan} if metric else {}
    line = " ".join(str(error).split()) or type(error).__name__
    return {**out, "epoch": float(epoch), USER_ERROR: 1.0, ERROR_KEY: line}


def diverged_result(error: DivergedError, metric: str | None) -> dict[str, float]:
    """The result a diverged trial ends with: its epoch, `diverged` = 1, the train loss, and
    the study's metric as NaN (Tune requires it in every result; Optuna records NaN as a
    failed trial, ASHA ignores it)."""
    out = {metric: math.nan} if metric else {}
    return {**out, "epoch": float(error.epoch), "diverged": 1.0, "train_loss": error.loss}


def trial_config(config: dict[str, Any]):
    """The TrainConfig of a trial's config, which must be complete (the param space holds
    every field): a config without them is not a trial of the study (an experiment Tune
    started again without its search space), and must fail, not train the defaults."""
    from imbtrain.config import FIELDS, TrainConfig
    from imbtrain.study.space import trial_params

    params = trial_params(config)
    missing = [k for k in FIELDS if k not in params]
    if missing:
        raise UserError(f"this trial's config lacks {len(missing)} of the study's keys "
                        f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}): "
                        "it is not a trial of the study; start the study again (remove its "
                        "folder) instead of resuming it")
    from imbtrain.study.paths import PATH_KEYS
    from imbtrain.study.storage import local_file

    params = {k: local_file(v) if k in PATH_KEYS and isinstance(v, str) else v
              for k, v in params.items()}  # pretrained=s3://...: a copy on this node
    return TrainConfig(**params)


def checkpoint_due(epoch: int, epochs: int, every: int, rungs: tuple[int, ...] = ()) -> bool:
    """Whether the report of `epoch` carries a checkpoint: every `every` epochs, the last
    epoch, and ASHA's rungs (where it may stop the trial: a stopped trial's last result then
    has its checkpoint, with its weights and info, like a finished trial's).

        >>> [e for e in range(1, 9) if checkpoint_due(e, 8, 3, rungs=(1, 2, 4))]
        [1, 2, 3, 4, 6, 8]
    """
    return epoch >= epochs or epoch % max(1, every) == 0 or epoch in rungs


def warm_worker() -> None:
    """Ray's worker_process_setup_hook of a local study (`runner.init_ray`): a worker imports
    the training loop while it waits for its first trial, not after the trial has started.
    An import that fails here fails again, with its message, in the trial."""
    try:
        import imbtrain.train  # noqa: F401
    except Exception:  # the trial reports it
        pass


def run_trial(config: dict[str, Any], cpus: float = 1.0,
              trial_metrics: tuple[str, ...] = (), metric: str | None = None,
              fault: Fault | None = None, storage: StudyDir | None = None,
              checkpoint_every: int = 1, rungs: tuple[int, ...] = ()) -> None:
    """One trial (`_run_trial`); a `UserError` ends it with `user_error_result`, once: no
    retry, no traceback (the module docstring)."""
    done: dict[str, Any] = {"epoch": 0.0}  # the last epoch reported, for a UserError's result
    try:
        _run_trial(config, cpus, trial_metrics, metric, fault, storage, done,
                   checkpoint_every, rungs)
    except UserError as e:
        info = {**where(), "trial_name": _label(config), "error": str(e)}
        _report(user_error_result(e, metric, done["epoch"]), None, info, done.get("reported"))


def _label(config: dict[str, Any]) -> str:
    from imbtrain.study.space import trial_label

    try:
        return trial_label(config)
    except UserError:  # a config TrainConfig refuses
        return "trial"


def _run_trial(config: dict[str, Any], cpus: float, trial_metrics: tuple[str, ...],
               metric: str | None, fault: Fault | None, storage: StudyDir | None,
               done: dict[str, Any], checkpoint_every: int = 1,
               rungs: tuple[int, ...] = ()) -> None:
    """Body of one trial: the trial's config (a full TrainConfig), trained and reported.

    Checks first that this node can write the study's `storage` and read the trial's files
    (`imbtrain.tune.preflight`; a node the autoscaler added after the driver's preflight).
    Reports every epoch but the last as it ends, with a checkpoint where `checkpoint_due`
    (every `checkpoint_every` epochs and at ASHA's `rungs`); the last after `train` returns,
    merged with the final metrics and the space's `trial_metrics` (imbtrain.metrics.trial),
    with a checkpoint, so a trial's last result is its final result. A diverged trial ends
    with `diverged_result` (no state: nothing worth resuming); `metric` is the study's,
    `fault` an injected one.
    """
    from imbtrain.study.paths import NOT_A_PATH, PATH_KEYS
    from imbtrain.study.space import trial_label
    from imbtrain.train import train
    from imbtrain.tune.preflight import check_trial_access

    # A trial's torch threads equal its CPUs, so concurrent trials share the cores fairly.
    torch.set_num_threads(max(1, int(round(cpus))))
    # Ray logs a line a checkpoint; the driver's progress lines already say each epoch.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    cfg = trial_config(config)
    check_trial_access(storage, {k: [v] for k in PATH_KEYS
                                 if (v := str(config.get(k, ""))) not in NOT_A_PATH})
    name = trial_label(config)
    data = cached_data(cfg)
    info = {**where(), "train_counts": list(data.train_counts), "trial_name": name}
    resume, reported = _load_resume_state()
    done["reported"] = reported
    last: dict[str, Any] = {}

    def report(metrics: dict[str, float], state: dict[str, Any]) -> None:
        if fault is not None:
            fault.check(cfg, int(metrics["epoch"]), resumed=resume is not None)
        epoch = int(metrics["epoch"])
        if epoch >= cfg.epochs:  # held back until the final metrics are known
            last.update(metrics=metrics, state=state)
            return
        _report(metrics, state, info, reported,
                checkpoint=checkpoint_due(epoch, cfg.epochs, checkpoint_every, rungs))
        done["epoch"] = float(metrics["epoch"])

    def log(line: str) -> None:
        # Epoch summaries are the driver's to print (one line a result, in order); other
        # lines (warnings) go to the worker's log and on to the driver's console.
        if not line.startswith("epoch "):
            print(f"[{name}] {line}", flush=True)

    try:
        result = train(cfg, data=data, report=report, resume=resume, log=log)
    except DivergedError as e:
        _report(diverged_result(e, metric), None, {**info, "error": str(e)}, reported)
        return
    # Resumed after its last epoch: no epoch ran, the state to keep is the one resumed from.
    state = last.get("state", resume)
    extra = compute_trial_metrics(trial_metrics, result, data)
    if reported and "metrics" not in last:  # that last epoch's report is in already
        reported.pop()
    _report({**last.get("metrics", {}), **result.metrics, **extra}, state, info, reported,
            model=(result.model, cfg, data))


def make_trainable(cpus: float, gpus: float, trial_metrics: tuple[str, ...] = (),
                   metric: str | None = None, storage: StudyDir | None = None,
                   checkpoint_every: int = 1, rungs: tuple[int, ...] = ()) -> Callable:
    """The trainable for `tune.Tuner`: `run_trial` asking for `cpus` and `gpus` a trial, and
    computing the space's `trial_metrics` at its end; `metric` is the study's (reported as
    NaN by a diverged trial), `storage` the study's folder (each trial checks it can write
    there); a checkpoint every `checkpoint_every` epochs, at the last and at ASHA's `rungs`.
    `IMBTRAIN_FAULT` is read here, in the driver.

    The config travels in the param space (`StudySpec.param_space`: the full TrainConfig),
    the data through the per-process cache above; nothing large is captured here.
    """
    from ray import tune

    trial_metrics, rungs = tuple(trial_metrics), tuple(rungs)
    fault = parse_fault(os.environ.get(FAULT_ENV))

    def imbtrain_trial(config: dict[str, Any]) -> None:
        run_trial(config, cpus=cpus, trial_metrics=trial_metrics, metric=metric, fault=fault,
                  storage=storage, checkpoint_every=checkpoint_every, rungs=rungs)

    return tune.with_resources(imbtrain_trial, {"cpu": cpus, "gpu": gpus})
