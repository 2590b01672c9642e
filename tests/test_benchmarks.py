"""Every benchmark runs: each script's smallest mode (`--quick`, or the tiny configuration its
docstring shows), as its docstring runs it, so none can rot unseen. Nothing here asserts on
a timing: the figures themselves are in benchmarks/RESULTS.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imbtrain.tune.loopback import LOOPBACK_ENV

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
       "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **LOOPBACK_ENV}

# script and arguments -> a line its output must hold
RUNS = {
    "trainer_vs_minimal": (["--quick"], "ratio trainer / minimal"),
    "train_ab": (["imbtrain/train.py", "--quick"], "A / B time"),
    "step_cost": (["--quick"], "sam_a"),
    "augment_throughput": (["--quick"], "trivialaugment"),
    "gpu_loop": (["--device", "cpu", "--samples", "8", "--models", "resnet8", "--epochs", "1",
                  "--reps", "1", "--batch-size", "16", "--epoch-model", "wrn_10_1",
                  "--sections", "loop", "pipeline", "epoch"], "## epoch: wrn_10_1"),
    "study_overhead": (["--quick", "--no-mlflow"], "reports a trial cost"),
    "asha_vs_grid": (["--quick"], "ASHA spent"),
    "packing": (["--device", "cpu", "--samples", "8", "--epochs", "1", "--trials", "2",
                 "--cpus-per-trial", "1"], "packing gain"),
    "study_ab": (["--quick"], "this: wall median"),
    "study_vs_script": (["--quick", "--no-mlflow"], "median ratio study / script"),
}


def run(cmd: list[str], timeout: int = 900) -> str:
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    return out


# Those that start Ray and run studies take minutes: end-to-end runs (`make test-e2e`).
WITH_RAY = ("study_overhead", "asha_vs_grid", "packing", "study_ab", "study_vs_script")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.e2e) if n in WITH_RAY
                                  else n for n in RUNS])
def test_the_benchmark_runs(name):
    args, expect = RUNS[name]
    out = run([PY, str(ROOT / "benchmarks" / f"{name}.py"), *args])
    assert expect in out, out[-3000:]


@pytest.mark.e2e  # every section of the GPU script, on the CPU: minutes
def test_gpu_sh_runs_on_cpu():
    env = {**ENV, "SMOKE": "1", "PY": PY}
    done = subprocess.run(["bash", "benchmarks/gpu.sh"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, start_new_session=True)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "all sections passed" in out and "## epoch: wrn_10_1" in out


def test_every_benchmark_is_run_here():
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"common"}
    assert scripts == set(RUNS), scripts ^ set(RUNS)
