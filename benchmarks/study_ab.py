"""Wall time of a study command in this tree against the same command in another tree, in turn.

Two commands, each run as a user runs it, in a fresh working folder (its runs/ and mlflow.db),
with the tree on PYTHONPATH (Ray's workers inherit it) and this interpreter's packages:

- `make-study`: `python studies/batch_size.py`, what `make study` runs (36 trials, 3 epochs);
- `smoke`: `imbtrain study search_spaces/batch_size.yaml --smoke` (8 one-epoch trials).

Run A B A B ... (this tree first), so a neighbour's load falls on both; per run: the wall
time, the seconds from Ray being up (the study's `Ray up in N s` line; in a tree without
one, its `study NAME: N trials` line) to the first trial's first line, and the load average;
per pair the ratio other / this; medians at the end.

    python benchmarks/study_ab.py OTHER_TREE                      # make-study, 2 pairs
    python benchmarks/study_ab.py OTHER_TREE --command smoke --pairs 3
    python benchmarks/study_ab.py --quick                         # this tree alone, tiny
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Ray is up: the `Ray up in N s` line, or in a tree that prints none, its `study NAME: N
# trials` line (which such a tree printed once Ray was up).
RAY_UP = re.compile(r"^(Ray|cluster) up in ")
STUDY_LINE = re.compile(r"^study \S+: \d+ trials")
TRIAL_LINE = re.compile(r"epoch \d+/\d+")  # a trial's first line (its first epoch)
QUICK = """base: {dataset: digits, model: mlp, epochs: 1}
knobs: {batch_size: {grid: [64]}}
seeds: [0, 1]
"""


def command(tree: Path, which: str, work: str) -> list[str]:
    if which == "make-study":
        return [sys.executable, str(tree / "studies" / "batch_size.py")]
    if which == "smoke":
        return [sys.executable, "-m", "imbtrain.cli", "study",
                str(tree / "search_spaces" / "batch_size.yaml"), "--smoke"]
    space = Path(work) / "quick.yaml"
    space.write_text(QUICK)
    return [sys.executable, "-m", "imbtrain.cli", "study", str(space)]


def run(tree: Path, which: str, log) -> tuple[float, float]:
    """(wall seconds, seconds from Ray up to the first trial line) of one run."""
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1",
               "PYTHONUNBUFFERED": "1"}
        start = time.perf_counter()
        proc = subprocess.Popen(command(tree, which, work), cwd=work, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        up = first = None
        for line in proc.stdout:
            now = time.perf_counter() - start
            log.write(f"{now:8.2f} {line}")
            if first is None and (RAY_UP.search(line) or up is None and STUDY_LINE.search(line)):
                up = now
            if first is None and up is not None and TRIAL_LINE.search(line):
                first = now
        proc.wait()
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"exit {proc.returncode} in {tree} (log: {log.name})")
    return wall, (first - up) if up is not None and first is not None else float("nan")


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", nargs="?", help="the other tree (e.g. a checkout of main)")
    p.add_argument("--command", choices=("make-study", "smoke"), default="make-study")
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--log", default=None, help="the runs' output (default: a temp file)")
    p.add_argument("--quick", action="store_true",
                   help="a check of the script: a 2-trial digits study, this tree once")
    args = p.parse_args()
    trees = {"this": ROOT}
    if args.other and not args.quick:
        trees["other"] = Path(args.other).resolve()
    which = "quick" if args.quick else args.command
    pairs = 1 if args.quick else args.pairs
    print(f"# {which}: {', '.join(f'{k} = {v}' for k, v in trees.items())}; {pairs} round(s); "
          f"load average {load()}", flush=True)
    walls: dict[str, list[float]] = {k: [] for k in trees}
    gaps: dict[str, list[float]] = {k: [] for k in trees}
    log_path = args.log or tempfile.mkstemp(prefix="study_ab_", suffix=".log")[1]
    with open(log_path, "a") as log:
        for i in range(pairs):
            for name, tree in trees.items():
                wall, gap = run(tree, which, log)
                walls[name].append(wall)
                gaps[name].append(gap)
                print(f"  round {i + 1}: {name:<5} {wall:7.1f} s wall, first trial line "
                      f"{gap:5.1f} s after Ray is up (load {load()})", flush=True)
            if "other" in trees:
                print(f"  round {i + 1}: other / this {walls['other'][-1] / walls['this'][-1]:.3f}",
                      flush=True)
    for name in trees:
        print(f"{name}: wall median {statistics.median(walls[name]):.1f} s (min "
              f"{min(walls[name]):.1f}), Ray up -> first trial line median "
              f"{statistics.median(gaps[name]):.1f} s")
    if "other" in trees:
        ratios = [o / t for o, t in zip(walls["other"], walls["this"], strict=True)]
        print(f"other / this: median {statistics.median(ratios):.3f} over {pairs} pair(s)")
    print(f"# load average {load()} at the end; output of the runs in {log_path}", flush=True)


if __name__ == "__main__":
    main()
