"""Prerequisites of a study: weights trained before its trials (the pre-training study's
supervised and self-supervised sources, paper Fig. 4).

A `Job` is a function and its arguments writing one file. `run_locally` runs the missing
ones in this process; on a cluster the Ray side runs them as Ray tasks with a trial's
resources, where the trials run (`imbtrain.tune.jobs.run_prerequisites`). A file already
there is kept, so a resumed study does not train it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Job:
    """One prerequisite: `fn(*args, cpus=...)` (train_weights or pretrain_weights) writing
    `path`."""

    path: Path
    fn: Callable[..., str]
    args: tuple


def missing(jobs: list[Job], log: Callable[[str], None] = print) -> list[Job]:
    """The jobs whose file is not there yet (saying which are kept)."""
    for j in jobs:
        if j.path.is_file():
            log(f"prerequisite {j.path} exists; kept")
    todo = [j for j in jobs if not j.path.is_file()]
    if todo:
        log(f"prerequisites: {len(todo)} job(s) ({', '.join(j.path.name for j in todo)})")
    return todo


def run_locally(jobs: list[Job], log: Callable[[str], None] = print) -> None:
    """The missing jobs one after another in this process, with this machine's threads (a
    Ray worker would first spend seconds importing torch)."""
    import torch

    for j in missing(jobs, log):
        j.fn(*j.args, cpus=torch.get_num_threads())


def train_weights(config: dict[str, Any], path: str, cpus: float = 1.0) -> str:
    """Train `config` (imbtrain's loop, as `imbtrain train` does) and save the final model's
    state dict to `path` (the supervised pre-training of the paper's Fig. 4)."""
    import torch

    from imbtrain.config import TrainConfig
    from imbtrain.train import train

    torch.set_num_threads(max(1, int(round(cpus))))
    result = train(TrainConfig(**config), log=lambda line: None)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in result.model.state_dict().items()}, path)
    return path


def pretrain_weights(config: dict[str, Any], path: str, objective: str,
                     cpus: float = 1.0) -> str:
    """Self-supervised pre-training (`imbtrain.pretrain.pretrain`, no labels) of `config`'s
    model on its training images; the weights end up at `path`."""
    import shutil

    import torch

    from imbtrain.config import TrainConfig
    from imbtrain.pretrain import pretrain

    torch.set_num_threads(max(1, int(round(cpus))))
    out = Path(path).with_suffix("")
    written = pretrain(TrainConfig(**config), out, objective=objective, log=lambda line: None)
    shutil.copyfile(written, path)
    return path
