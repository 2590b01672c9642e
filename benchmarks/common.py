"""What every benchmark here shares: the header line, interleaved timing, the figures' format.

The machine is shared (2 cores here, several people), so a benchmark never compares numbers
taken at different times: the variants run interleaved, A B A B ..., in one process, and each
is summarised by its median and its best round, in wall and in CPU seconds (`Clock`); the
load average is printed at the start and the end. Also: a search space written from data and
a timed `run_study` for the study benchmarks. Imported by the scripts here as `common` (run
them as `python benchmarks/<name>.py`).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average n/a"


def machine(device: torch.device | str = "cpu") -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"{cpu_name()}, {os.cpu_count()} logical cores"


def header(title: str, device: torch.device | str = "cpu", threads: int | None = None) -> None:
    """One line: what, where, with which versions, when, under which load."""
    from importlib.metadata import version  # not `import torchvision`: seconds, unused

    threads = threads if threads is not None else torch.get_num_threads()
    print(f"# {title}\n# {machine(device)}, {threads} torch threads, torch {torch.__version__}, "
          f"torchvision {version('torchvision')}, python {platform.python_version()}, "
          f"{datetime.datetime.now().isoformat(timespec='seconds')}, {load_average()}",
          flush=True)


def footer() -> None:
    print(f"# {load_average()} at the end", flush=True)


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Clock:
    """Wall and CPU seconds (this process, all threads) since `start()`.

    With one torch thread, CPU seconds barely move when a neighbour takes the other core,
    so on this shared machine they are the steadier measure of the work done; wall seconds
    are what a user waits. Benchmarks print both.
    """

    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


@dataclass
class Timings:
    """Seconds per variant and round: wall and CPU (see `Clock`)."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall.setdefault(name, []).append(wall)
        self.cpu.setdefault(name, []).append(cpu)


def interleaved(variants: dict[str, Callable[[], object]], rounds: int,
                device: torch.device | str = "cpu", warmup: bool = True,
                verbose: bool = True) -> Timings:
    """Seconds of each variant over `rounds` rounds, run A B C A B C ... (one warm-up round
    first, not counted). Interleaving spreads a neighbour's burst of load over all variants."""
    if warmup:
        for fn in variants.values():
            fn()
            synchronize(device)
    out, clock = Timings(), Clock()
    for r in range(rounds):
        for name, fn in variants.items():
            synchronize(device)
            clock.start()
            fn()
            synchronize(device)
            out.add(name, *clock.read())
        if verbose:
            print(f"  round {r + 1}/{rounds}: " + "  ".join(
                f"{n} {t[-1]:.3f}s" for n, t in out.wall.items()) + f"  ({load_average()})",
                flush=True)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------------------- studies


def write_space(folder: str, name: str, space: dict) -> str:
    """A search-space YAML file in `folder` (benchmarks build theirs from data)."""
    import yaml

    path = os.path.join(folder, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(space, f, sort_keys=False)
    return path


def timed_study(space_path: str, storage: str, mlflow_uri: str | None, log_path: str,
                **options) -> tuple[object, float]:
    """`run_study` (what `imbtrain study` runs) on a space file; (StudyResult, wall seconds).

    The study's own progress lines go to `log_path`, so the benchmark prints only figures.
    """
    import contextlib

    from imbtrain.study.space import load_space
    from imbtrain.tune.runner import run_study

    spec = load_space(space_path)
    with open(log_path, "a") as log, contextlib.redirect_stdout(log):
        start = time.perf_counter()
        result = run_study(spec, storage=storage, mlflow_uri=mlflow_uri, **options)
        return result, time.perf_counter() - start
