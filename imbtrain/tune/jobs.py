"""A study's prerequisite jobs (`imbtrain.study.prerequisites`) on a Ray cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imbtrain.study.prerequisites import Job, missing, run_locally
from imbtrain.study.space import StudySpec
from imbtrain.tune.runner import init_ray


def run_prerequisites(jobs: list[Job], spec: StudySpec, address: str | None,
                      log: Callable[[str], None] = print) -> None:
    """Run the jobs whose file is missing. On a cluster (`address`): as Ray tasks at once,
    each with a trial's resources, so they run where trials run (the GPU workers) and write
    to the shared storage. Locally: one after another in this process."""
    if not address:
        run_locally(jobs, log)
        return
    todo = missing(jobs, log)
    if not todo:
        return
    import ray

    init_ray(address)
    task = ray.remote(num_cpus=spec.cpus_per_trial, num_gpus=spec.gpus_per_trial)(_call)
    ray.get([task.remote(j.fn, *j.args, cpus=spec.cpus_per_trial) for j in todo])


def _call(fn: Callable[..., str], *args: Any, cpus: float = 1.0) -> str:
    return fn(*args, cpus=cpus)
