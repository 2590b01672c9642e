"""The study driver under faults of its own (RELIABILITY.md, "Faults"), through the real CLI
in subprocesses, with real Ray (in each driver's process) and real MLflow sqlite stores:

- SIGINT to the driver's whole process group mid-study (Ctrl-C in a terminal): exit 130,
  the finished trials kept, the MLflow parent and the unfinished trial runs KILLED, no
  best.yaml; a second driver of the same study while the first runs is refused in one line
  naming the first; `--resume` then finishes the study with every trial exactly once in
  results.parquet and in MLflow;
- SIGTERM to the whole group (a batch system stopping a job), which also ends the local Ray's
  processes: exit 143, the same record, the same line;
- an MLflow store that cannot be written: refused in one line before Ray starts, nothing
  written.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from imbtrain.cli import main
from imbtrain.study.results import BEST_FILE, HISTORY_FILE, RESULTS_FILE
from imbtrain.tune.loopback import LOOPBACK_ENV

PY = sys.executable
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
       "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **LOOPBACK_ENV}

# Eight trials, two at a time: when the first finishes, others are running or waiting.
SPACE = """
base: {dataset: digits, model: mlp, epochs: 4}
knobs:
  batch_size: {grid: [32, 128]}
seeds: [0, 1, 2, 3]
resources: {cpus: 1}
max_concurrent: 2
"""
GRID = {(b, s) for b in (32, 128) for s in (0, 1, 2, 3)}


def study_cmd(tmp: Path, *extra: str) -> list[str]:
    space = tmp / "ctrlc.yaml"
    if not space.exists():
        space.write_text(textwrap.dedent(SPACE))
    return [PY, "-m", "imbtrain.cli", "study", str(space), "--storage", str(tmp / "runs"),
            "--mlflow-uri", f"sqlite:///{tmp / 'mlflow.db'}", *extra]


def runs_of(db: Path, study: str) -> tuple[list, list]:
    """(parent runs, trial runs) of a study in an MLflow sqlite store."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, filter_string=f"tags.`imbtrain.study` = '{study}'")
    return ([r for r in runs if r.data.tags.get("imbtrain.run_kind") == "study"],
            [r for r in runs if r.data.tags.get("imbtrain.run_kind") == "trial"])


def kill_group(proc: subprocess.Popen) -> None:
    """What is left of the process group this test started (Ray's processes), by its id."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def interrupt(tmp: Path, sig: int, second_driver=None) -> tuple[int, str, str, int]:
    """Start the study, signal its whole process group once the first trial has finished;
    (exit status, the driver's output, what `second_driver()` printed, run in this process
    while the first driver holds the study, or '', the driver's pid)."""
    proc = subprocess.Popen(study_cmd(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=ENV, cwd=tmp, start_new_session=True)
    seen, second = [], ""
    try:
        for line in proc.stdout:
            seen.append(line)
            # Once Ray is up the first driver holds the study's lock (taken before Ray
            # starts; its MLflow store is set up before that).
            if second_driver is not None and not second and line.startswith("Ray up in "):
                second = second_driver()  # the same study while the first driver holds it
            if " finished " in line:
                break
        os.killpg(proc.pid, sig)
        rest, _ = proc.communicate(timeout=240)
        seen.append(rest)
    finally:
        kill_group(proc)
    return proc.returncode, "".join(seen), second, proc.pid


def assert_interrupted(tmp: Path, rc: int, out: str, status: int, least: int = 1) -> int:
    """The study stopped truthfully (at least `least` trials finished); the number of trials
    it finished."""
    assert rc == status, out[-4000:]
    study = tmp / "runs" / "ctrlc"
    last = [x for x in out.splitlines() if x.startswith("interrupted: ")]
    assert len(last) == 1, out[-4000:]
    done = int(last[0].split()[1].split("/")[0])
    assert last[0].startswith(f"interrupted: {done}/8 trials finished; `imbtrain study ")
    assert last[0].endswith(f" --resume` finishes it (the study is in {study})")
    assert least <= done < 8 and "Traceback" not in out
    assert not (study / BEST_FILE).exists() and not (study / RESULTS_FILE).exists()
    parents, trials = runs_of(tmp / "mlflow.db", "ctrlc")
    assert [p.info.status for p in parents] == ["KILLED"]
    assert parents[0].data.tags["imbtrain.trials_finished"] == str(done)
    statuses = [r.info.status for r in trials]
    assert "RUNNING" not in statuses and statuses.count("FINISHED") == done, statuses
    return done


@pytest.mark.e2e  # a whole study (minutes): make test-e2e
def test_sigint_to_the_group_stops_truthfully_and_resume_finishes(tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)

    def second_driver() -> str:
        capsys.readouterr()
        assert main(study_cmd(tmp_path)[3:]) == 2
        return capsys.readouterr().err

    rc, out, second, pid = interrupt(tmp_path, signal.SIGINT, second_driver)
    # The second driver, refused before it touched anything, names the first one.
    lines = second.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: study folder {tmp_path / 'runs' / 'ctrlc'} is in use by pid {pid} on host "
        f"{socket.gethostname()}, started "), second
    assert lines[0].endswith("; wait for it to finish or stop it, then run again")
    assert_interrupted(tmp_path, rc, out, 130)

    done = subprocess.run(study_cmd(tmp_path, "--resume"), capture_output=True, text=True,
                          env=ENV, cwd=tmp_path, timeout=600, start_new_session=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    study = tmp_path / "runs" / "ctrlc"
    res = pd.read_parquet(study / RESULTS_FILE)
    assert len(res) == 8 and res["trial_id"].is_unique
    assert (res["status"] == "TERMINATED").all() and (res["epochs_run"] == 4).all()
    assert set(zip(res["config/batch_size"], res["config/seed"], strict=True)) == GRID
    hist = pd.read_parquet(study / HISTORY_FILE)
    assert sorted(hist.groupby("trial_id")["epoch"].apply(tuple)) == [(1, 2, 3, 4)] * 8
    assert (study / BEST_FILE).is_file()
    parents, trials = runs_of(tmp_path / "mlflow.db", "ctrlc")
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert parents[0].data.tags["imbtrain.trials_finished"] == "8"
    assert sorted(r.data.tags["imbtrain.trial_id"] for r in trials) == sorted(res["trial_id"])
    assert {r.info.status for r in trials} == {"FINISHED"}


@pytest.mark.e2e  # a whole study (minutes): make test-e2e
def test_sigterm_to_the_group_stops_truthfully_with_143(tmp_path):
    rc, out, _, _ = interrupt(tmp_path, signal.SIGTERM)
    # Ray's processes die with the signal, so the record is the experiment state Tune saved
    # last (every few seconds): the trial that had just finished may not be in it yet, and
    # then it counts as unfinished everywhere (MLflow too) and `--resume` resumes it from its
    # last checkpoint.
    assert_interrupted(tmp_path, rc, out, 143, least=0)
    assert (tmp_path / "runs" / "ctrlc" / "tuner.pkl").is_file()  # what --resume reads


def can_drop_root() -> bool:
    """Whether `unshare -U` works here: a user namespace, in which root's override of file
    permissions does not apply (the process meets files as any other user would)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-U", "true"], capture_output=True)
    return probe.returncode == 0


def test_a_read_only_mlflow_store_is_refused_before_anything_is_written(tmp_path):
    from mlflow import MlflowClient

    store = tmp_path / "store"
    store.mkdir()
    db = store / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # a store with MLflow's tables
    db.chmod(0o444)
    store.chmod(0o555)
    cmd = study_cmd(tmp_path)
    cmd[-1] = f"sqlite:///{db}"
    if os.geteuid() == 0:
        if not can_drop_root():
            pytest.skip("as root without user namespaces, no file is read-only")
        cmd = ["unshare", "-U", *cmd]
    try:
        got = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=tmp_path,
                             timeout=300)
    finally:
        store.chmod(0o755)
    assert got.returncode == 2, got.stdout[-2000:] + got.stderr[-2000:]
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1, got.stderr
    assert lines[0] == (f"error: MLflow store sqlite:///{db} cannot be written (attempt to "
                        "write a readonly database); make it writable or pass another "
                        "--mlflow-uri")
    assert not (tmp_path / "runs").exists()
