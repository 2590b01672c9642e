"""The Ray Tune trainable: `train()` wrapped in a function that reports every epoch.

    trainable = make_trainable(spec)       # what run_study hands to tune.Tuner
    # inside a trial: config = {"batch_size": 32, "train_ratio": 0.1, "seed": 1}
    #   -> TrainConfig(**spec.base, **config) -> train(cfg, report=...) -> tune.report(...)

Every epoch the trial reports its metrics with a checkpoint (the loop's `state`, saved with
torch.save), so `Tuner.restore` continues a trial at its last epoch and ASHA can stop it
between epochs. The last epoch is reported once the loop has returned, with the final metrics
(neural collapse, a method's final stage) merged in, so every trial's last result is its
final result.

Data, once per worker, not once per trial: a per-process cache of `build_data`, keyed by the
config fields that decide the data (`DATA_FIELDS`). Not `tune.with_parameters`: the study's
trials differ in their train ratio, so each needs its own subsample, and shipping every
ratio's tensors through the object store (and to every node) would cost more than cutting
them locally. The expensive part, decoding the raw pool, happens once per worker process
(`imbtrain.data.load_raw` keeps it), and with `reuse_actors=True` one worker serves many
trials; the cache then also spares the subsampling for trials that share a ratio (seeds).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

STATE_FILE = "state.pt"  # the loop's state (torch.save), what `train(resume=...)` accepts
INFO_FILE = "trial.json"  # train counts and where the trial ran, read by the results writer
# TrainConfig fields that decide `build_data(cfg)` (see imbtrain.data.build_data).
DATA_FIELDS = (
    "dataset", "data_dir", "label_column", "train_ratio", "imbalance_profile", "test_ratio",
    "val_fraction", "data_seed", "image_size", "synthetic_classes", "synthetic_shape",
    "synthetic_samples",
)
_DATA_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_DATA_CACHE_SIZE = 4  # a few train ratios of one dataset; small data, bounded memory


def cached_data(cfg):
    """`build_data(cfg)`, kept per process for the latest few data-deciding settings."""
    from imbtrain.data import build_data

    key = tuple(getattr(cfg, f, None) for f in DATA_FIELDS)
    if key in _DATA_CACHE:
        _DATA_CACHE.move_to_end(key)
        return _DATA_CACHE[key]
    data = build_data(cfg)
    _DATA_CACHE[key] = data
    while len(_DATA_CACHE) > _DATA_CACHE_SIZE:
        _DATA_CACHE.popitem(last=False)
    return data


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
        return torch.load(os.path.join(d, STATE_FILE), map_location="cpu", weights_only=False)


def _report(metrics: dict[str, float], state: dict[str, Any], info: dict[str, Any]) -> None:
    """One `tune.report` with the state as a checkpoint directory."""
    from ray import tune

    with tempfile.TemporaryDirectory() as d:
        torch.save(state, os.path.join(d, STATE_FILE))
        with open(os.path.join(d, INFO_FILE), "w") as f:
            json.dump(info, f)
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(d))


def run_trial(config: dict[str, Any], cpus: float = 1.0) -> None:
    """Body of one trial: the trial's config (a full TrainConfig), trained and reported.

    Reports every epoch but the last as it ends; the last after `train` returns, merged with
    the final metrics, so a trial's last result is its final result.
    """
    from imbtrain.config import TrainConfig
    from imbtrain.train import train

    # A trial's torch threads equal its CPUs, so concurrent trials share the cores fairly.
    torch.set_num_threads(max(1, int(round(cpus))))
    # Ray logs a line a checkpoint; the driver's progress lines already say each epoch.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    cfg = TrainConfig(**{k: v for k, v in config.items() if not k.startswith("__")})
    name = cfg.trial_name()
    data = cached_data(cfg)
    info = {**where(), "train_counts": list(data.train_counts), "trial_name": name}
    resume = _load_resume_state()
    last: dict[str, Any] = {}

    def report(metrics: dict[str, float], state: dict[str, Any]) -> None:
        if metrics["epoch"] >= cfg.epochs:  # held back until the final metrics are known
            last.update(metrics=metrics, state=state)
            return
        _report(metrics, state, info)

    def log(line: str) -> None:
        # Epoch summaries are the driver's to print (one line a result, in order); other
        # lines (warnings) go to the worker's log and on to the driver's console.
        if not line.startswith("epoch "):
            print(f"[{name}] {line}", flush=True)

    result = train(cfg, data=data, report=report, resume=resume, log=log)
    # Resumed after its last epoch: no epoch ran, the state to keep is the one resumed from.
    state = last.get("state", resume)
    _report({**last.get("metrics", {}), **result.metrics}, state, info)


def make_trainable(cpus: float, gpus: float) -> Callable:
    """The trainable for `tune.Tuner`: `run_trial` asking for `cpus` and `gpus` a trial.

    The config travels in the param space (`StudySpec.param_space`: the full TrainConfig),
    the data through the per-process cache above; nothing large is captured here.
    """
    from ray import tune

    def imbtrain_trial(config: dict[str, Any]) -> None:
        run_trial(config, cpus=cpus)

    return tune.with_resources(imbtrain_trial, {"cpu": cpus, "gpu": gpus})
