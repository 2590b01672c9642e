"""Prerequisites of a study: weights trained before its trials (the pre-training study's
supervised and self-supervised sources, paper Fig. 4).

A `Job` is a function and its arguments writing one file, at a path or a URI (a study in
object storage keeps its weights there too; the trials read them through
`imbtrain.study.storage.local_file`). `run_locally` runs the missing ones in this process;
on a cluster the Ray side runs them as Ray tasks with a trial's resources, where the trials
run (`imbtrain.tune.jobs.run_prerequisites`). A file already there is kept, so a resumed
study does not train it again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbtrain.study.storage import file_exists, is_uri, put_file, split_query


@dataclass
class Job:
    """One prerequisite: `fn(*args, cpus=...)` (train_weights or pretrain_weights) writing
    `path` (a path or a URI)."""

    path: Path | str
    fn: Callable[..., str]
    args: tuple

    @property
    def file_name(self) -> str:
        return split_query(str(self.path))[0].rsplit("/", 1)[-1]


def missing(jobs: list[Job], log: Callable[[str], None] = print) -> list[Job]:
    """The jobs whose file is not there yet (saying which are kept)."""
    there = {id(j): file_exists(str(j.path)) for j in jobs}
    for j in jobs:
        if there[id(j)]:
            log(f"prerequisite {split_query(str(j.path))[0]} exists; kept")
    todo = [j for j in jobs if not there[id(j)]]
    if todo:
        log(f"prerequisites: {len(todo)} job(s) ({', '.join(j.file_name for j in todo)})")
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
    with tempfile.TemporaryDirectory() as tmp:  # written whole, then put in its place
        local = Path(tmp) / "weights.pt"
        torch.save({k: v.detach().cpu() for k, v in result.model.state_dict().items()},
                   local)
        put_file(local, path)
    return path


def pretrain_weights(config: dict[str, Any], path: str, objective: str,
                     cpus: float = 1.0) -> str:
    """Self-supervised pre-training (`imbtrain.pretrain.pretrain`, no labels) of `config`'s
    model on its training images; the weights end up at `path`."""
    import torch

    from imbtrain.config import TrainConfig
    from imbtrain.pretrain import pretrain

    torch.set_num_threads(max(1, int(round(cpus))))
    with tempfile.TemporaryDirectory() as tmp:
        # beside the weights in a local folder (pretrain's folder: its config and weights)
        out = Path(tmp) / "out" if is_uri(path) else Path(path).with_suffix("")
        written = pretrain(TrainConfig(**config), out, objective=objective,
                           log=lambda line: None)
        put_file(written, path)
    return path
