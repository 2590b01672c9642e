"""A study against a minimal hand-written script of the same trainings, pair by pair.

- study: `imbtrain study SPACE --storage TMP --mlflow-uri sqlite:///TMP/mlflow.db`, a new
  process, as a user runs it: Ray's start, Tune, the MLflow store, every trial, the tables
  (and the analysis of a study of the paper) included.
- script: the same trainings written by hand (`--script SPACE`, also a new process): every
  trial's TrainConfig (same CNN, data, SGD with momentum, epochs, per-step cosine schedule,
  channels_last) trained by `trainer_vs_minimal.minimal_loop`, val and test evaluated every
  epoch, in a pool of 2 processes of 1 torch thread each, as the study's 2 concurrent trials
  of 1 CPU. What one would write without the platform: the floor of the study's wall time.

Run in turn (study, script, study, script, ...) so that a neighbour's load falls on both;
each pair's ratio (study / script wall) and the median ratio are printed, with the load
average after every run. Two studies: `batch_size` (search_spaces/batch_size.yaml: 36 trials
of mnist5k, 3 epochs) and `digits100` (100 one-epoch trials of the cnn on digits, where the
fixed costs of a trial weigh most).

    python benchmarks/study_vs_script.py                    # both studies, 3 pairs each
    python benchmarks/study_vs_script.py --studies digits100 --pairs 5
    python benchmarks/study_vs_script.py --quick            # 4 one-epoch digits trials, 1 pair
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONCURRENCY = 2  # the study's trials at once (1 CPU each on this 2-core machine)

DIGITS = {"description": "one-epoch trials of the cnn on digits, one a seed",
          "base": {"dataset": "digits", "model": "cnn", "epochs": 1, "optimizer": "sgd",
                   "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0005, "schedule": "cosine"},
          "knobs": {"batch_size": {"grid": [32]}}, "train_ratios": [1.0],
          "resources": {"cpus": 1, "gpus": 0}}


def space_file(name: str, folder: str, quick: bool) -> Path:
    """The space of a named benchmark study (batch_size is the repository's own file)."""
    import yaml

    if name == "batch_size":
        return ROOT / "search_spaces" / "batch_size.yaml"
    raw = {**DIGITS, "seeds": list(range(4 if quick else 100))}
    # A file name that is no study of the paper's: no analysis runs after these trials
    # (batch_size.yaml runs its analysis, as a user gets it).
    path = Path(folder) / f"bench_{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ============================================================================ the script


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _train_one(cfg_dict: dict) -> float:
    """One trial by hand: its data and the minimal loop; returns its last test accuracy."""
    sys.path.insert(0, str(HERE))
    from common import Clock
    from trainer_vs_minimal import minimal_loop

    from imbtrain.config import TrainConfig
    from imbtrain.data import cached_data

    cfg = TrainConfig(**{**cfg_dict, "device": "cpu"})
    return minimal_loop(cfg, cached_data(cfg), Clock())["test_acc"]


def run_script(space: str) -> None:
    """The minimal script: every trial of `space` through a pool of 2 one-thread processes."""
    import multiprocessing as mp

    from imbtrain.study.space import load_space

    spec = load_space(space)
    grids = [(k.key, k.values) for k in spec.knobs.values()]
    configs = [{}]
    for key, values in grids:
        configs = [{**c, key: v} for c in configs for v in values]
    variants = list(spec.variants.values()) or [{}]  # the batch sizes are variants there
    configs = [{**c, **over, "train_ratio": r, "seed": s} for c in configs for over in variants
               for r in spec.train_ratios for s in spec.seeds]
    trials = [spec.trial_config(c).to_dict() for c in configs]
    if len(trials) != spec.num_trials():
        raise SystemExit(f"script: {len(trials)} trainings for a study of {spec.num_trials()}")
    with mp.get_context("spawn").Pool(CONCURRENCY, initializer=_worker_init) as pool:
        accs = list(pool.imap_unordered(_train_one, trials))
    print(f"script: {len(accs)} trainings, mean test_acc {statistics.mean(accs):.4f}")


# ============================================================================ the benchmark


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def timed(cmd: list[str], cwd: str, log) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"exit {done.returncode}: {' '.join(cmd)} (log: {log.name})")
    return wall


def compare(name: str, pairs: int, tmp: str, mlflow: bool, quick: bool) -> float:
    space = space_file(name, tmp, quick)
    exe = str(Path(sys.executable).with_name("imbtrain"))
    ratios = []
    with open(os.path.join(tmp, f"{name}.log"), "w") as log:
        for i in range(pairs):
            work = tempfile.mkdtemp(dir=tmp)
            study = [exe, "study", str(space), "--storage", os.path.join(work, "runs"),
                     "--name", name, "--max-concurrent", str(CONCURRENCY),
                     "--mlflow-uri", f"sqlite:///{work}/mlflow.db" if mlflow else "none"]
            s = timed(study, work, log)
            s_load = load()
            m = timed([sys.executable, __file__, "--script", str(space)], work, log)
            ratios.append(s / m)
            print(f"  {name} pair {i + 1}/{pairs}: study {s:7.1f} s (load {s_load})  script "
                  f"{m:7.1f} s (load {load()})  ratio {s / m:.3f}", flush=True)
    med = statistics.median(ratios)
    print(f"{name}: median ratio study / script {med:.3f} over {pairs} pair(s) "
          f"(range {min(ratios):.3f}-{max(ratios):.3f})", flush=True)
    return med


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", nargs="+", default=["batch_size", "digits100"],
                   choices=["batch_size", "digits100"])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--no-mlflow", action="store_true", help="the study without MLflow")
    p.add_argument("--quick", action="store_true",
                   help="a check of the benchmark itself: 4 one-epoch trials, 1 pair")
    p.add_argument("--script", metavar="SPACE", help=argparse.SUPPRESS)  # the script's run
    args = p.parse_args()
    if args.script:
        run_script(args.script)
        return
    sys.path.insert(0, str(HERE))
    from common import header

    pairs = 1 if args.quick else args.pairs
    studies = ["digits100"] if args.quick else args.studies
    header(f"study vs script: {', '.join(studies)}, {pairs} pair(s), {CONCURRENCY} trials "
           f"at once, MLflow {'off' if args.no_mlflow else 'sqlite'}", threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        for name in studies:
            compare(name, pairs, tmp, not args.no_mlflow, args.quick)
    print(f"# load average {load()} at the end", flush=True)


if __name__ == "__main__":
    main()
