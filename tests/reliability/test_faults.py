"""Faults during a study, with real Ray (one in-process session for the module) and real
MLflow (RELIABILITY.md, "Faults"):

- a trial that raises at epoch 2 is recorded as ERROR with its error, the others finish; with
  --max-failures 1 it restarts from its epoch-1 checkpoint and ends with exactly the metrics
  of an uninterrupted run;
- a diverging trial (lr=100: NaN loss in epoch 1) is recorded as DIVERGED, not a crash;
- the MLflow server lost mid-study: one warning, the study goes on, results.parquet is written;
- reproducibility: the same study twice gives the same tables (timings aside); a seeded
  Optuna searcher proposes the same configs twice;
- a trial asking for a GPU this machine lacks: exit 2 before anything is written.

The failure is injected with IMBTRAIN_FAULT (test-only, read by the study driver; see
imbtrain.tune.trainable), never with a config key. The driver killed with SIGKILL then
--resume, and the two-node cluster, are in tests/e2e/test_study.py and
tests/reliability/test_cluster.py.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from imbtrain.cli import main
from imbtrain.study.results import HISTORY_FILE, RESULTS_FILE

# Columns that differ between two runs of the same study: timings, trial ids, processes.
VOLATILE = ("trial_id", "time_total_s", "epoch_time_s", "samples_per_s", "pid", "hostname",
            "node_id", "best/epoch_time_s", "best/samples_per_s")

FAULTS = """
base: {dataset: digits, model: mlp, epochs: 3}
knobs:
  lr: {grid: [0.05, 100.0]}
seeds: [0, 1]
"""
# A `uniform` knob: the grid searcher's draws must be seeded too.
# A checkpoint every epoch (the default is every 5th and the last): a retried trial
# restarts from its last epoch.
RETRY = """
base: {dataset: digits, model: mlp, epochs: 3}
knobs:
  lr: {uniform: [0.01, 0.1]}
seeds: [0, 1]
checkpoint_every: 1
"""

LOST = """
base: {dataset: digits, model: mlp, epochs: 3}
knobs:
  lr: {grid: [0.05, 0.1]}
"""


def test_the_module_ray_is_on_loopback(ray_session):
    import ray

    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}


def study(tmp: Path, name: str, text: str, *extra: str) -> tuple[int, Path]:
    """`imbtrain study` in this process; (exit status, study folder)."""
    space = tmp / f"{name}.yaml"
    space.write_text(textwrap.dedent(text))
    rc = main(["study", str(space), "--storage", str(tmp / "runs"), *extra])
    return rc, tmp / "runs" / name


def by_name(res: pd.DataFrame) -> pd.DataFrame:
    """The results table keyed by config (lr, seed), its volatile columns dropped."""
    keep = [c for c in res.columns if c not in VOLATILE]
    return res[keep].sort_values(["config/seed", "config/lr"]).reset_index(drop=True)


# ================================================================ errors and divergence


def test_errored_and_diverged_trials_are_recorded_and_the_others_finish(
        ray_session, tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    monkeypatch.setenv("IMBTRAIN_FAULT", "raise@2:seed=1,lr=0.05")
    db = tmp_path / "mlflow.db"
    rc, path = study(tmp_path, "faults", FAULTS, "--max-failures", "0",
                     "--mlflow-uri", f"sqlite:///{db}")
    out = capsys.readouterr().out
    assert rc == 1  # a trial failed
    res = pd.read_parquet(path / RESULTS_FILE).set_index(["config/lr", "config/seed"])
    assert len(res) == 4
    ok, failed = res.loc[(0.05, 0)], res.loc[(0.05, 1)]
    assert (ok["status"], ok["epochs_run"]) == ("TERMINATED", 3) and pd.isna(ok["error"])
    error = "RuntimeError: IMBTRAIN_FAULT: injected failure at the end of epoch 2"
    assert (failed["status"], failed["error"], failed["epochs_run"]) == ("ERROR", error, 1)
    for seed in (0, 1):  # lr=100: NaN loss in epoch 1, a result of the setting, not a crash
        row = res.loc[(100.0, seed)]
        assert (row["status"], row["diverged"], row["epochs_run"]) == ("DIVERGED", 1.0, 1)
        assert row["error"] == "training diverged at epoch 1: train loss nan"
        assert pd.isna(row["val_bal_acc"]) and list(row["train_counts"]) == list(
            ok["train_counts"])
    assert f"FAILED digits_r1_bs64_mlp_s1 ({failed['trial_id']}): {error}" in out
    assert out.count("DIVERGED digits_r1_bs64_mlp_s") == 2 + 2  # progress line + summary
    assert (path / "best.yaml").is_file()  # from the trial that finished

    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
    status = {r.data.tags.get("imbtrain.trial_id"): r.info.status for r in runs}
    assert status.pop(None) == "FAILED"  # the parent: a trial failed
    assert status == {failed["trial_id"]: "FAILED",
                      **{res.loc[k, "trial_id"]: "FINISHED"
                         for k in [(0.05, 0), (100.0, 0), (100.0, 1)]}}


# ================================================================ retry and reproducibility


@pytest.fixture(scope="module")
def clean_study(ray_session, tmp_path_factory):
    """The RETRY study without faults: the reference table."""
    tmp = tmp_path_factory.mktemp("clean")
    rc, path = study(tmp, "retry", RETRY, "--mlflow-uri", "none")
    assert rc == 0
    return pd.read_parquet(path / RESULTS_FILE), pd.read_parquet(path / HISTORY_FILE)


def test_failed_trial_resumes_from_its_checkpoint_with_the_same_metrics(
        clean_study, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMBTRAIN_FAULT", "raise@2:seed=1")
    rc, path = study(tmp_path, "retry", RETRY, "--max-failures", "1", "--mlflow-uri", "none")
    out = capsys.readouterr().out
    assert rc == 0
    assert "RETRY digits_r1_bs64_mlp_s1 (failure 1): it restarts from its last checkpoint" in out
    res = pd.read_parquet(path / RESULTS_FILE)
    assert (res["status"] == "TERMINATED").all() and (res["epochs_run"] == 3).all()
    # The restarted trial ran epoch 2 twice (killed once); it ends exactly where the
    # uninterrupted run ends: every metric and config equal, timings aside.
    pd.testing.assert_frame_equal(by_name(res), by_name(clean_study[0]))
    hist = pd.read_parquet(path / HISTORY_FILE)
    assert sorted(hist.groupby("trial_id")["epoch"].apply(tuple)) == [(1, 2, 3)] * 2


def test_the_same_study_twice_gives_the_same_tables(clean_study, tmp_path, capsys):
    rc, path = study(tmp_path, "retry", RETRY, "--mlflow-uri", "none")
    capsys.readouterr()
    assert rc == 0
    res = pd.read_parquet(path / RESULTS_FILE)
    pd.testing.assert_frame_equal(by_name(res), by_name(clean_study[0]))
    assert res["config/lr"].nunique() == 2  # two draws of the uniform knob, the same twice
    hist = pd.read_parquet(path / HISTORY_FILE)
    cols = [c for c in hist.columns if c not in VOLATILE]
    ref = clean_study[1]
    pd.testing.assert_frame_equal(hist[cols].sort_values(["trial_name", "epoch"],
                                                         ignore_index=True),
                                  ref[cols].sort_values(["trial_name", "epoch"],
                                                        ignore_index=True))


def test_seeded_optuna_proposes_the_same_configs(tmp_path):
    from imbtrain.study.space import load_space
    from imbtrain.tune.runner import make_searcher
    from imbtrain.tune.translate import param_space

    space = tmp_path / "opt.yaml"
    space.write_text(textwrap.dedent("""
        base: {dataset: digits, model: mlp}
        knobs:
          lr: {loguniform: [0.001, 0.5]}
          batch_size: {choice: [16, 32, 64]}
        searcher: {type: optuna, num_samples: 14, seed: 3}
    """))
    spec = load_space(space)

    def proposals(folder: Path) -> list[tuple]:
        folder.mkdir()
        searcher = make_searcher(spec, folder)
        searcher.set_search_properties(spec.metric, spec.mode, param_space(spec))
        out = []
        for i in range(14):  # past Optuna's 10 random start-up trials: TPE proposes too
            config = searcher.suggest(f"t{i}")
            out.append((config["lr"], config["batch_size"]))
            score = 1.0 - abs(config["lr"] - 0.05) - config["batch_size"] / 1000
            searcher.on_trial_complete(f"t{i}", {spec.metric: score})
        return out

    first, second = proposals(tmp_path / "a"), proposals(tmp_path / "b")
    assert first == second and len(set(first)) == 14


# ================================================================ MLflow lost mid-study


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(tmp: Path, port: int) -> subprocess.Popen:
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    proc = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}",
         "--artifacts-destination", str(tmp / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import urllib.request

    end = time.time() + 120
    while time.time() < end:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("mlflow server did not start")


def kill_when_logged(proc: subprocess.Popen, db: Path, done: threading.Event) -> None:
    """Kill the server's process group once its store holds a trial's first metric."""
    while not done.is_set():
        try:
            with sqlite3.connect(db) as con:
                if con.execute("select count(*) from metrics").fetchone()[0]:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_mlflow_server_lost_mid_study(ray_session, tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    port = free_port()
    server = start_mlflow_server(tmp_path, port)
    done = threading.Event()
    killer = threading.Thread(target=kill_when_logged,
                              args=(server, tmp_path / "server.db", done), daemon=True)
    # MLflow's client retries a lost server for minutes by default; the test wants the
    # failure now (the behaviour after the retries is the same).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    killer.start()
    try:
        rc, path = study(tmp_path, "lost", LOST, "--max-concurrent", "1",
                         "--mlflow-uri", f"http://127.0.0.1:{port}")
    finally:
        done.set()
        killer.join(timeout=60)
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    captured = capsys.readouterr()
    assert rc == 0
    res = pd.read_parquet(path / RESULTS_FILE)
    assert len(res) == 2 and (res["status"] == "TERMINATED").all()
    warnings = [ln for ln in captured.err.splitlines() if ln.startswith("warning: MLflow")]
    assert len(warnings) == 2, captured.err[-3000:]
    assert warnings[0].startswith(f"warning: MLflow logging to http://127.0.0.1:{port} "
                                  "stopped (")
    assert warnings[0].endswith("); the study goes on and results.parquet will hold every "
                                "trial")
    assert warnings[1].startswith("warning: MLflow: could not log 4 file(s) to ")
    # What reached the server before it went away is there: the parent and a trial's run.
    client = MlflowClient(f"sqlite:///{tmp_path / 'server.db'}")
    runs = client.search_runs([client.get_experiment_by_name("lost").experiment_id])
    kinds = sorted(r.data.tags["imbtrain.run_kind"] for r in runs)
    assert kinds[-1] == "trial" and "study" in kinds and len(runs) < 3


# ================================================================ resources


def test_a_gpu_trial_on_a_machine_without_gpus(ray_session, tmp_path, capsys):
    import ray

    if ray.cluster_resources().get("GPU"):
        pytest.skip("this Ray session has GPUs")
    rc, path = study(tmp_path, "gpu", FAULTS + "resources: {cpus: 1, gpus: 1}\n",
                     "--mlflow-uri", "none")
    assert rc == 2
    assert capsys.readouterr().err == (
        "error: a trial asks for 1 GPUs but this machine has 0; lower resources.gpus (or "
        "--gpus-per-trial), or pass --address of a cluster\n")
    assert not (tmp_path / "runs").exists()


def test_a_malformed_fault_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMBTRAIN_FAULT", "explode@two")
    rc, _ = study(tmp_path, "f", FAULTS, "--mlflow-uri", "none")
    assert rc == 2
    assert capsys.readouterr().err == (
        "error: IMBTRAIN_FAULT='explode@two' is not a fault; expected "
        "raise@<epoch>[:<config key>=<value>,...] (test-only)\n")
    assert not (tmp_path / "runs").exists()
