"""The rehearsal cluster end to end (docs/cluster.md, "Rehearse"): `imbtrain cluster-local
start` brings up cluster-local.yaml on this machine (Ray's fake multi-node provider, 127.0.0.1
only) with no worker; the smoke batch-size study goes in through `ray job submit`, the line
`start` prints, with `--gpus-per-trial 1`; then `imbtrain cluster-local stop`.

Shown: the autoscaler adds worker nodes (at least two, of the type that declares a GPU) while
the trials wait and removes them once idle; every trial ran on an added node, none on the
head; MLflow (an sqlite file on this machine's disk, which every node shares) has one parent
run and one nested run a trial; every node's address is 127.0.0.1; `stop` leaves no process
of the cluster. One cluster for the module (about two to three minutes here).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from imbtrain.study.results import RESULTS_FILE
from imbtrain.tune.local_cluster import _cluster_processes, read_state
from imbtrain.tune.loopback import LOOPBACK_ENV

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
IMBTRAIN = [sys.executable, "-m", "imbtrain.cli"]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
       "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **LOOPBACK_ENV}
STUDY = "batch_size_smoke"
HEAD_ID = "f" * 51 + "00000"  # the fake provider's head; its workers count up from 00001

# Prints every node of the cluster (ray.nodes(): alive and dead) as one JSON line a second.
POLL = textwrap.dedent("""
    import json, sys, time, ray
    ray.init(address=sys.argv[1], log_to_driver=False)
    while True:
        print(json.dumps([{"id": n["NodeID"], "alive": n["Alive"],
                           "address": n["NodeManagerAddress"],
                           "cpu": n["Resources"].get("CPU", 0),
                           "gpu": n["Resources"].get("GPU", 0),
                           "death": n.get("DeathReasonMessage", "")} for n in ray.nodes()]),
              flush=True)
        time.sleep(1.0)
""")


def snapshots(path: Path) -> list[list[dict]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("[")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster-local")
    start = subprocess.run([*IMBTRAIN, "cluster-local", "start", "--dir", str(folder)],
                           cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert start.returncode == 0, start.stdout[-2000:] + start.stderr[-3000:]
    state = read_state(folder)
    try:
        yield folder, state, start.stdout
    finally:
        stop = subprocess.run([*IMBTRAIN, "cluster-local", "stop", "--dir", str(folder)],
                              cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr[-2000:]
        assert not _cluster_processes(state)  # nothing of the cluster is left running
        assert not Path(state.temp_dir).exists()


@pytest.fixture(scope="module")
def study(cluster):
    """The smoke study submitted as `start` says, with every node polled meanwhile, then
    polled on until the idle workers are gone."""
    folder, state, printed = cluster
    [line] = [x for x in printed.splitlines() if " job submit " in x]
    # --verbose: Ray's own lines too, among them the autoscaler's "Adding N node(s)"
    submit = [*shlex.split(line), "--gpus-per-trial", "1", "--verbose"]
    polled = folder / "nodes.jsonl"
    with open(polled, "w") as out:
        poller = subprocess.Popen([sys.executable, "-c", POLL, state.gcs_address], stdout=out,
                                  stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    try:
        end = time.monotonic() + 60
        while not snapshots(polled) and time.monotonic() < end:
            time.sleep(0.5)
        before = snapshots(polled)[-1]
        job = subprocess.run(submit, cwd=ROOT, env=ENV, capture_output=True, text=True,
                             timeout=900)
        end = time.monotonic() + 180  # idle_timeout_minutes 0.2, then the autoscaler acts
        while time.monotonic() < end:
            nodes = snapshots(polled)[-1]
            if len(nodes) > 1 and not any(n["alive"] for n in nodes if n["id"] != HEAD_ID):
                break
            time.sleep(1.0)
    finally:
        os.killpg(poller.pid, signal.SIGKILL)
        poller.wait(timeout=30)
    monitor = Path(state.temp_dir) / "session_latest" / "logs" / "monitor.log"
    return {"before": before, "job": job, "polled": snapshots(polled),
            "study": folder / "runs" / STUDY, "db": folder / "mlflow.db",
            "monitor": monitor.read_text()}


def test_start_prints_how_to_submit_a_study(cluster):
    folder, state, printed = cluster
    assert state.gcs_address.startswith("127.0.0.1:")
    assert state.dashboard_url.startswith("http://127.0.0.1:")
    [line] = [x for x in printed.splitlines() if " job submit " in x]
    assert shlex.split(line)[1:] == [
        "job", "submit", "--address", state.dashboard_url, "--", "python",
        "studies/batch_size.py", "--smoke", "--address", "auto", "--storage",
        str(folder / "runs"), "--mlflow-uri", f"sqlite:///{folder / 'mlflow.db'}"]


def test_the_study_ran_on_workers_the_autoscaler_added(study):
    job = study["job"]
    assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-2000:]
    assert "Adding 1 node(s) of type gpu_worker" in job.stdout or \
        "Adding 2 node(s) of type gpu_worker" in job.stdout
    # Before the study: the head alone, on 127.0.0.1, with no CPU for trials.
    [head] = study["before"]
    assert (head["id"], head["alive"], head["address"], head["cpu"]) == (HEAD_ID, True,
                                                                       "127.0.0.1", 0)
    # While it ran: at least two workers at once, each a gpu_worker (1 CPU, 1 GPU): a trial
    # asking for a GPU goes to the type that declares one, never to cpu_worker.
    workers = {}
    most = 0
    for nodes in study["polled"]:
        assert {n["address"] for n in nodes} == {"127.0.0.1"}
        alive = [n for n in nodes if n["alive"] and n["id"] != HEAD_ID]
        most = max(most, len(alive))
        workers.update({n["id"]: (n["cpu"], n["gpu"]) for n in alive})
    assert most >= 2 and set(workers.values()) == {(1, 1)}
    # Every trial ran on an added node; a process belongs to one node.
    res = pd.read_parquet(study["study"] / RESULTS_FILE)
    assert len(res) == 8 and (res["status"] == "TERMINATED").all()
    assert set(res["node_id"]) <= set(workers) and HEAD_ID not in set(res["node_id"])
    assert (res["hostname"] == socket.gethostname()).all()
    assert (res.groupby("pid")["node_id"].nunique() == 1).all()


def test_mlflow_has_one_parent_and_one_nested_run_a_trial(study):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{study['db']}")
    runs = client.search_runs([client.get_experiment_by_name(STUDY).experiment_id])
    [parent] = [r for r in runs if r.data.tags["imbtrain.run_kind"] == "study"]
    trials = [r for r in runs if r.data.tags["imbtrain.run_kind"] == "trial"]
    res = pd.read_parquet(study["study"] / RESULTS_FILE)
    assert sorted(r.data.tags["imbtrain.trial_id"] for r in trials) == sorted(res["trial_id"])
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parent.info.run_id}
    assert parent.info.status == "FINISHED"


def test_idle_workers_are_removed(study):
    last = study["polled"][-1]
    workers = [n["id"] for n in last if n["id"] != HEAD_ID]
    assert len(workers) >= 2
    assert not any(n["alive"] for n in last if n["id"] != HEAD_ID)
    assert [n["alive"] for n in last if n["id"] == HEAD_ID] == [True]
    for node in workers:  # the autoscaler's own reason (its log, monitor.log)
        assert f"Terminating the node with id {node} and ip {node}. (idle)" in study["monitor"]
