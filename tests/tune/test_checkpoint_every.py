"""Checkpoints every N epochs (`checkpoint_every`), at the last epoch and at ASHA's rungs:

- which epochs checkpoint, and ASHA's rungs as Ray's own scheduler has them;
- the space key and the option refuse what is not a whole number of epochs >= 1;
- a study with checkpoint_every 2 over 4 epochs, its driver killed after epoch 3: --resume
  continues from epoch 2 and ends with the metrics of an uninterrupted run;
- ASHA still stops trials at its rungs, and a stopped trial's last checkpoint is its last
  epoch's (with the trial's train counts).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from imbtrain.errors import UserError
from imbtrain.study.checkpoints import STATE_FILE
from imbtrain.study.results import RESULTS_FILE
from imbtrain.study.space import CHECKPOINT_EVERY, load_space
from imbtrain.tune.loopback import LOOPBACK_ENV
from imbtrain.tune.runner import asha_rungs
from imbtrain.tune.trainable import checkpoint_due

PY = sys.executable
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
       "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **LOOPBACK_ENV}
VOLATILE = ("trial_id", "time_total_s", "epoch_time_s", "samples_per_s", "pid", "hostname",
            "node_id", "best/epoch_time_s", "best/samples_per_s")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# ================================================================ which epochs


def test_checkpoint_epochs():
    due = [e for e in range(1, 11) if checkpoint_due(e, 10, 4)]
    assert due == [4, 8, 10]  # every 4, and the last
    assert [e for e in range(1, 4) if checkpoint_due(e, 3, CHECKPOINT_EVERY)] == [3]
    assert [e for e in range(1, 5) if checkpoint_due(e, 4, 1)] == [1, 2, 3, 4]
    assert [e for e in range(1, 9) if checkpoint_due(e, 8, 5, (1, 2, 4, 8))] == [1, 2, 4, 5, 8]


@pytest.mark.parametrize("epochs, grace, rf", [(4, 1, 2), (9, 1, 3), (10, 2, 2), (3, 1, 4),
                                               (1, 1, 2), (20, 3, 2)])
def test_asha_rungs_are_rays_milestones(epochs, grace, rf, tmp_path):
    from ray.tune.schedulers import ASHAScheduler

    space = write(tmp_path / "s.yaml", f"""
        base: {{dataset: digits, model: mlp, epochs: {epochs}}}
        knobs: {{lr: {{grid: [0.1]}}}}
        scheduler: {{type: asha, grace_period: {grace}, reduction_factor: {rf}}}
    """)
    spec = load_space(space)
    ray_rungs = ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=grace,
                              reduction_factor=rf)._brackets[0]._rungs
    assert asha_rungs(spec) == tuple(sorted(m for m, _ in ray_rungs))
    assert asha_rungs(load_space(write(tmp_path / "f.yaml", """
        knobs: {lr: {grid: [0.1]}}
    """))) == ()


def test_the_key_and_the_option_refuse_other_values(tmp_path):
    for bad in ("0", "-1", "1.5", "two", "true"):
        space = write(tmp_path / "s.yaml", f"""
            knobs: {{lr: {{grid: [0.1]}}}}
            checkpoint_every: {bad}
        """)
        with pytest.raises(UserError, match="checkpoint_every: expected a positive integer"):
            load_space(space)
    ok = write(tmp_path / "ok.yaml", "knobs: {lr: {grid: [0.1]}}\ncheckpoint_every: 3\n")
    assert load_space(ok).checkpoint_every == 3
    assert load_space(write(tmp_path / "d.yaml", "knobs: {lr: {grid: [0.1]}}\n")) \
        .checkpoint_every == CHECKPOINT_EVERY
    done = subprocess.run([PY, "-m", "imbtrain.cli", "study", str(ok), "--checkpoint-every",
                           "0", "--storage", str(tmp_path / "runs")], capture_output=True,
                          text=True, env=ENV, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert "--checkpoint-every must be at least 1, got 0" in done.stderr
    assert not (tmp_path / "runs").exists()


# ================================================================ killed, then --resume

# Epochs of a second or more (mnist5k's 1,630 images at r = 0.1), so the driver is killed
# while epoch 4 still trains.
# Epochs of seconds (the whole mnist5k pool): the kill after epoch 3's line lands in epoch 4.
SPACE = """
base: {dataset: mnist5k, model: cnn, epochs: 4}
knobs: {lr: {grid: [0.05]}}
seeds: [0]
checkpoint_every: 2
"""


def study(space: Path, tmp: Path, name: str, *extra: str) -> list[str]:
    return [PY, "-m", "imbtrain.cli", "study", str(space), "--name", name, "--storage",
            str(tmp / "runs"), "--mlflow-uri", "none", *extra]


def since_restore(study_dir: Path) -> dict[int, int]:
    """epoch -> Tune's `iterations_since_restore` of its latest result: the epochs the
    trial's last attempt ran since it started from a checkpoint (or from scratch)."""
    (result,) = study_dir.glob("*/result.json")
    rows = [json.loads(line) for line in result.read_text().splitlines() if line]
    return {int(r["epoch"]): int(r["iterations_since_restore"]) for r in rows}


def comparable(path: Path) -> pd.DataFrame:
    res = pd.read_parquet(path / RESULTS_FILE)
    return res.drop(columns=[c for c in VOLATILE if c in res]).reset_index(drop=True)


def test_killed_after_epoch_3_resumes_from_epoch_2_with_the_same_metrics(tmp_path):
    space = write(tmp_path / "every2.yaml", SPACE)
    clean = subprocess.run(study(space, tmp_path, "clean"), capture_output=True, text=True,
                           env=ENV, cwd=tmp_path, timeout=300, start_new_session=True)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
    assert since_restore(tmp_path / "runs" / "clean") == {1: 1, 2: 2, 3: 3, 4: 4}

    # Tune saves the experiment's state (which checkpoints exist) at most every 10 s by
    # default, so a driver killed sooner resumes from the checkpoint that state names; here
    # it is saved as often as the driver loops, so the kill finds epoch 2's checkpoint.
    every_loop = {**ENV, "TUNE_GLOBAL_CHECKPOINT_S": "0"}
    proc = subprocess.Popen(study(space, tmp_path, "killed"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=every_loop, cwd=tmp_path,
                            start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "epoch 3/4" in line:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group it started (Ray's processes)
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    killed = tmp_path / "runs" / "killed"
    assert not (killed / RESULTS_FILE).exists()

    done = subprocess.run(study(space, tmp_path, "killed", "--resume"), capture_output=True,
                          text=True, env=ENV, cwd=tmp_path, timeout=300,
                          start_new_session=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Epochs 1-3 before the kill; then, restored from epoch 2's checkpoint, epochs 3 and 4
    # as the first and second of the new attempt (from scratch they would be its 3rd, 4th).
    assert since_restore(killed) == {1: 1, 2: 2, 3: 1, 4: 2}, "".join(seen) + done.stdout
    pd.testing.assert_frame_equal(comparable(killed), comparable(tmp_path / "runs" / "clean"))


# ================================================================ ASHA


def test_asha_stops_trials_at_its_rungs_and_they_keep_their_last_checkpoint(tmp_path):
    space = write(tmp_path / "asha.yaml", """
        base: {dataset: digits, model: mlp, epochs: 4, train_ratio: 0.1}
        knobs: {lr: {grid: [0.1, 0.000001, 0.000002, 0.000003]}}
        seeds: [0]
        scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
        max_concurrent: 1
        checkpoint_every: 3
    """)
    done = subprocess.run(study(space, tmp_path, "asha"), capture_output=True, text=True,
                          env=ENV, cwd=tmp_path, timeout=300, start_new_session=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    path = tmp_path / "runs" / "asha"
    res = pd.read_parquet(path / RESULTS_FILE)
    assert (res["status"] == "TERMINATED").all()
    assert set(res["epochs_run"]) <= {1, 2, 4}  # the rungs, and max_t
    assert (res["epochs_run"] < 4).any()  # some trial was stopped early
    for _, row in res.iterrows():
        checkpoints = sorted(path.glob(f"*_{row['trial_id']}/checkpoint_*/{STATE_FILE}"))
        state = torch.load(checkpoints[-1], map_location="cpu", weights_only=True)
        assert state["epoch"] == row["epochs_run"]
        assert row["train_counts"] is not None and len(row["train_counts"]) == 10
