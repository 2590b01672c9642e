"""Studies end to end: real Ray, real MLflow sqlite, the real CLI, tiny budgets.

- a study killed with SIGKILL mid-way, then `--resume`: every trial exactly once in
  results.parquet and in MLflow;
- a real two-node Ray cluster on this machine (`ray start` head + a second node, both on
  127.0.0.1), a study through `--address`: trials ran on both nodes;
- in-process (one shared `ray.init` for this module): the smoke study's tables, best.yaml and
  MLflow runs; export then train the exported config; Optuna + ASHA with its Optuna storage.

The subprocess tests come first, so the module's own Ray instance (started by the fixture of
the later tests) is not running beside theirs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imbtrain.study.results import HISTORY_FILE, RESULTS_FILE
from imbtrain.tune.loopback import LOOPBACK_ENV

PY = sys.executable
RAY = str(Path(PY).with_name("ray"))
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
       "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **LOOPBACK_ENV}

SPACE = """
base: {dataset: digits, model: mlp, epochs: 3}
knobs:
  batch_size: {grid: [32, 128]}
train_ratios: [1.0, 0.1]
seeds: [0, 1]
resources: {cpus: 1}
smoke:
  base: {epochs: 2}
"""


def write_space(path: Path, text: str = SPACE) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def study_cmd(space: Path, tmp: Path, *extra: str) -> list[str]:
    return [PY, "-m", "imbtrain.cli", "study", str(space), "--storage", str(tmp / "runs"),
            "--mlflow-uri", f"sqlite:///{tmp / 'mlflow.db'}", *extra]


def mlflow_trial_runs(db: Path, study: str) -> tuple[list, list]:
    """(parent runs, trial runs) of a study in an MLflow sqlite store."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, filter_string=f"tags.`imbtrain.study` = '{study}'")
    parents = [r for r in runs if r.data.tags.get("imbtrain.run_kind") == "study"]
    trials = [r for r in runs if r.data.tags.get("imbtrain.run_kind") == "trial"]
    return parents, trials


def metric_steps(db: Path, run_id: str, key: str = "val_bal_acc") -> list[int]:
    from mlflow import MlflowClient

    history = MlflowClient(f"sqlite:///{db}").get_metric_history(run_id, key)
    return sorted(m.step for m in history)


def stop_group(proc: subprocess.Popen, sig=signal.SIGTERM, wait: float = 20.0) -> None:
    """Signal the process group this test started (its own session), then make sure it is
    gone. Never `ray stop`: that would stop every Ray instance of this user."""
    for s in (sig, signal.SIGKILL):
        try:
            os.killpg(proc.pid, s)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if s == sig and sig != signal.SIGKILL:
            time.sleep(1.0)  # children of a node exit after its `ray start --block` parent
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (Ray's agents)
    except ProcessLookupError:
        pass


# ================================================================ SIGKILL, then --resume


def test_resume_after_sigkill_runs_every_trial_exactly_once(tmp_path):
    space = write_space(tmp_path / "kill.yaml", SPACE + "max_concurrent: 1\n")
    proc = subprocess.Popen(study_cmd(space, tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV, cwd=tmp_path,
                            start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:  # kill the driver once the first trial has finished
            seen.append(line)
            if " finished " in line:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_group(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    study = tmp_path / "runs" / "kill"
    assert (study / "tuner.pkl").is_file() and not (study / RESULTS_FILE).exists()

    done = subprocess.run(study_cmd(space, tmp_path, "--resume"), capture_output=True,
                          text=True, env=ENV, cwd=tmp_path, timeout=300,
                          start_new_session=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    res = pd.read_parquet(study / RESULTS_FILE)
    assert len(res) == 8 and res["trial_id"].is_unique
    assert (res["status"] == "TERMINATED").all() and (res["epochs_run"] == 3).all()
    grid = {(b, r, s) for b in (32, 128) for r in (1.0, 0.1) for s in (0, 1)}
    got = set(zip(res["config/batch_size"], res["config/train_ratio"], res["config/seed"],
                  strict=True))
    assert got == grid
    hist = pd.read_parquet(study / HISTORY_FILE)
    assert sorted(hist.groupby("trial_id")["epoch"].apply(tuple).unique()) == [(1, 2, 3)]

    parents, trials = mlflow_trial_runs(tmp_path / "mlflow.db", "kill")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    ids = [r.data.tags["imbtrain.trial_id"] for r in trials]
    assert sorted(ids) == sorted(res["trial_id"])  # one run a trial, none twice
    for run in trials:
        assert run.info.status == "FINISHED"
        assert metric_steps(tmp_path / "mlflow.db", run.info.run_id) == [1, 2, 3]


# ================================================================ two nodes, --address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(args: list[str], temp_dir: str) -> subprocess.Popen:
    # --block keeps `ray start` in the foreground: stopping its process group stops exactly
    # this node. A short temp dir of its own keeps the socket paths short and keeps the
    # cluster's address out of /tmp/ray, where another `ray.init()` would find it. A head's
    # Ray client server and dashboard agent get free ports (not 10001 and 52365).
    ports = ([f"--ray-client-server-port={free_port()}",
              f"--dashboard-agent-listen-port={free_port()}"] if "--head" in args else [])
    return subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats",
                             f"--temp-dir={temp_dir}", "--object-store-memory=100000000",
                             *ports, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)


# A second node, started as `ray start --block` starts one (Ray's `Node`, then waiting):
# `ray start --address` itself refuses to run with Ray bound to 127.0.0.1
# (imbtrain/tune/loopback.py). Its own temp dir, as for `start_node`.
WORKER_NODE = textwrap.dedent("""
    import json, signal, sys, time
    from ray._private.node import Node
    from ray._private.parameter import RayParams
    node = Node(RayParams(**json.loads(sys.argv[1])), head=False, shutdown_at_exit=True,
                spawn_reaper=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while not node.dead_processes():
        time.sleep(1)
""")


def start_worker_node(address: str, temp_dir: str, resources: dict | None = None,
                      num_cpus: int = 1, read_only: Path | None = None) -> subprocess.Popen:
    """A second node; with `read_only`, in a mount namespace of its own in which that folder
    is mounted read-only (a node whose mount of the shared storage is read-only)."""
    params = {"gcs_address": address, "node_ip_address": "127.0.0.1", "num_cpus": num_cpus,
              "num_gpus": 0, "resources": resources or {}, "temp_dir": temp_dir,
              "object_store_memory": 100_000_000, "min_worker_port": 0,
              "max_worker_port": 0, "dashboard_agent_listen_port": 0}
    cmd = [PY, "-c", WORKER_NODE, json.dumps(params)]
    if read_only is not None:
        cmd = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"',
               str(read_only), *cmd]
    return subprocess.Popen(cmd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                            start_new_session=True)


def wait_for_nodes(address: str, n: int, timeout: float = 90.0) -> list[str]:
    """Ids of the cluster's alive nodes once there are `n`; every node's address is
    127.0.0.1 (ray.nodes())."""
    code = textwrap.dedent(f"""
        import json, time, ray
        ray.init(address="{address}", log_to_driver=False)
        end = time.time() + {timeout}
        while time.time() < end:
            alive = [x for x in ray.nodes() if x["Alive"]]
            if len(alive) >= {n}:
                print(json.dumps({{x["NodeID"]: x["NodeManagerAddress"] for x in alive}}))
                break
            time.sleep(0.5)
    """)
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=ENV,
                         timeout=timeout + 30)
    nodes = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
    assert len(nodes) >= n, out.stderr[-2000:]
    assert set(nodes.values()) == {"127.0.0.1"}, nodes  # never the interface address
    return list(nodes)


# Trials of several seconds each: a node's first worker takes seconds to start, and with
# reuse_actors a warm actor on one node would take over trials of a few milliseconds.
CLUSTER_SPACE = """
base: {dataset: mnist5k, model: cnn, epochs: 2}
knobs:
  batch_size: {grid: [64]}
seeds: [0, 1, 2, 3]
resources: {cpus: 1}
"""


def test_study_on_a_two_node_cluster_uses_both_nodes(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_head = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    temp_node = tempfile.mkdtemp(prefix="rn", dir="/tmp")
    head = start_node(["--head", f"--port={port}", "--num-cpus=1", "--num-gpus=0",
                       "--include-dashboard=false", "--node-ip-address=127.0.0.1",
                       '--resources={"head_node": 1}'], temp_head)
    node = None
    try:
        time.sleep(2.0)
        node = start_worker_node(address, temp_node, {"second_node": 1})
        node_ids = wait_for_nodes(address, 2)
        space = write_space(tmp_path / "cluster.yaml", CLUSTER_SPACE)
        run = subprocess.run(study_cmd(space, tmp_path, "--address", address),
                             capture_output=True, text=True, env=ENV, cwd=tmp_path,
                             timeout=300)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        for proc in (node, head):
            if proc is not None:
                stop_group(proc)
        for d in (temp_head, temp_node):
            shutil.rmtree(d, ignore_errors=True)
    res = pd.read_parquet(tmp_path / "runs" / "cluster" / RESULTS_FILE)
    assert len(res) == 4 and (res["status"] == "TERMINATED").all()
    assert set(res["node_id"]) == set(node_ids)  # trials ran on both nodes
    assert res["node_id"].nunique() == 2


def _can_mount_read_only(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.mkdir()
    return subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{probe}" '
                           f'"{probe}" && ! touch "{probe}/x" 2>/dev/null'],
                          capture_output=True).returncode == 0


def test_a_node_that_cannot_write_the_storage_stops_the_study_before_any_trial(tmp_path):
    """One node of two sees the study storage read-only (its own mount of it): the study
    stops before any trial, with one line naming that node and the storage, exit 2, and
    leaves no study folder behind."""
    if not _can_mount_read_only(tmp_path):
        pytest.skip("no mount namespace may be made here (root and unshare -m needed)")
    storage = tmp_path / "runs"
    storage.mkdir()
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_head = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    temp_node = tempfile.mkdtemp(prefix="rn", dir="/tmp")
    head = start_node(["--head", f"--port={port}", "--num-cpus=1", "--num-gpus=0",
                       "--include-dashboard=false", "--node-ip-address=127.0.0.1"], temp_head)
    node = None
    try:
        time.sleep(2.0)
        node = start_worker_node(address, temp_node, {"second_node": 1}, read_only=storage)
        node_ids = wait_for_nodes(address, 2)
        space = write_space(tmp_path / "ro.yaml", CLUSTER_SPACE)
        run = subprocess.run(study_cmd(space, tmp_path, "--address", address),
                             capture_output=True, text=True, env=ENV, cwd=tmp_path,
                             timeout=300)
    finally:
        for proc in (node, head):
            if proc is not None:
                stop_group(proc)
        for d in (temp_head, temp_node):
            shutil.rmtree(d, ignore_errors=True)
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    line = errors[0]
    assert "cannot write the study storage" in line and str(storage) in line, line
    assert any(f"node {n[:12]} (127.0.0.1)" in line for n in node_ids), line
    assert "started" not in run.stdout  # no trial started
    assert not (storage / "ro").exists()  # nothing of the study is left
    assert not list(storage.iterdir())  # not even the probe


# ================================================================ in-process studies


def test_the_module_ray_is_on_loopback(ray_session):
    import ray

    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}


@pytest.fixture(scope="module")
def smoke_study(ray_session, tmp_path_factory):
    from imbtrain.study.space import load_space
    from imbtrain.tune.runner import run_study

    tmp = tmp_path_factory.mktemp("smoke")
    path = write_space(tmp / "tiny.yaml")
    load_space(path)  # a valid space; run_study takes its file as well as its spec
    result = run_study(str(path), storage=str(tmp / "runs"), smoke=True,
                       mlflow_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    return tmp, result


def test_smoke_study_writes_its_tables(smoke_study):
    from imbtrain.config import TrainConfig, load_config
    from imbtrain.data import build_data

    tmp, result = smoke_study
    study = tmp / "runs" / "tiny_smoke"
    assert result.path == study
    res = pd.read_parquet(study / RESULTS_FILE)
    hist = pd.read_parquet(study / HISTORY_FILE)
    assert len(res) == 8 and res["trial_id"].is_unique
    assert (res["status"] == "TERMINATED").all() and res["error"].isna().all()
    assert (res["epochs_run"] == 2).all() and (res["time_total_s"] > 0).all()
    assert set(res["config/batch_size"]) == {32, 128}
    assert (res["config/epochs"] == 2).all() and (res["config/model"] == "mlp").all()
    assert {f"config/{k}" for k in TrainConfig().to_dict()} <= set(res.columns)
    assert res["trial_name"].str.match(r"digits_r(1|0\.1)_bs(32|128)_mlp_s[01]$").all()
    # train counts: those of the trial's data
    for _, row in res.iterrows():
        cfg = TrainConfig(dataset="digits", train_ratio=row["config/train_ratio"])
        assert list(row["train_counts"]) == build_data(cfg).train_counts
    # history: one row a trial-epoch; final metrics are the last epoch's, best/ the best's
    assert len(hist) == 16 and set(hist["epoch"]) == {1, 2}
    for tid, h in hist.groupby("trial_id"):
        row = res.set_index("trial_id").loc[tid]
        assert row["val_bal_acc"] == h.loc[h["epoch"] == 2, "val_bal_acc"].item()
        best = h.loc[h["val_bal_acc"].idxmax()]
        assert row["best/val_bal_acc"] == best["val_bal_acc"]
        assert row["best/epoch"] == best["epoch"]
        assert row["best/test_acc"] == best["test_acc"]
    assert {"cdnv", "ncc_acc_test"} <= set(res.columns)  # final-only metrics, last result
    # best_r<ratio>.yaml: at each train ratio (a condition of the data, not a knob), the
    # configuration with the best mean val_bal_acc over its two seeds; best.yaml their index
    means = res.groupby(["config/train_ratio", "config/batch_size"])["val_bal_acc"].mean()
    for ratio in (1.0, 0.1):
        bs = means.loc[ratio].idxmax()
        best = load_config(study / f"best_r{ratio:g}.yaml")
        assert (best.batch_size, best.train_ratio, best.seed, best.epochs) == (bs, ratio, 0, 2)
    index = yaml.safe_load((study / "best.yaml").read_text())
    assert [e["config"] for e in index["per_train_ratio"]] == ["best_r1.yaml", "best_r0.1.yaml"]
    assert yaml.safe_load((study / "study.yaml").read_text())["num_trials"] == 8


def test_smoke_study_is_in_mlflow(smoke_study):
    from mlflow import MlflowClient

    from imbtrain.config import TrainConfig

    tmp, result = smoke_study
    db = tmp / "mlflow.db"
    parents, trials = mlflow_trial_runs(db, "tiny_smoke")
    assert len(parents) == 1 and len(trials) == 8
    parent = parents[0]
    assert result.mlflow_parent_run_id == parent.info.run_id
    res = pd.read_parquet(result.path / RESULTS_FILE).set_index("trial_id")
    for run in trials:
        tags, params = run.data.tags, run.data.params
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        row = res.loc[tags["imbtrain.trial_id"]]
        assert params["batch_size"] == str(row["config/batch_size"])
        # The knob, train ratio, seed, dataset, model, method and the non-default keys only
        # (the full config is the run's config.yaml).
        assert params["model"] == "mlp" and len(params) <= 30
        assert set(params) == {"dataset", "model", "method", "train_ratio", "seed",
                               "batch_size", "epochs"}
        assert tags["imbtrain.train_ratio"] == str(row["config/train_ratio"])
        assert metric_steps(db, run.info.run_id) == [1, 2]
        text = MlflowClient(f"sqlite:///{db}").download_artifacts(
            run.info.run_id, "config.yaml", str(tmp / run.info.run_id))
        full = TrainConfig(**yaml.safe_load(Path(text).read_text()))
        assert full.to_dict() == {k.removeprefix("config/"): v.item() if hasattr(v, "item")
                                  else v for k, v in row.items() if k.startswith("config/")}
    names = {a.path for a in MlflowClient(f"sqlite:///{db}").list_artifacts(
        parent.info.run_id)}
    assert {"results.parquet", "history.parquet", "best.yaml"} <= names


def test_export_then_train_the_exported_config(smoke_study, tmp_path, capsys):
    from imbtrain.cli import main
    from imbtrain.config import load_config

    _, result = smoke_study
    out = tmp_path / "best.yaml"
    assert main(["export", str(result.path), "--train-ratio", "0.1", "--out", str(out)]) == 0
    assert load_config(out) == load_config(result.path / "best_r0.1.yaml")
    assert main(["export", str(result.path), "--train-ratio", "0.1", "--top", "2",
                 "--out", str(out)]) == 0
    first, second = load_config(tmp_path / "best_1.yaml"), load_config(tmp_path / "best_2.yaml")
    assert first == load_config(out) and second != first
    assert main(["train", "--config", str(out), "--out", str(tmp_path / "final")]) == 0
    metrics = json.loads((tmp_path / "final" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert load_config(tmp_path / "final" / "config.yaml") == load_config(out)
    assert load_config(out).train_ratio == 0.1  # trained at the ratio asked for
    # every ratio: one file each, the same as the study's, and the index
    every = tmp_path / "every" / "best.yaml"
    assert main(["export", str(result.path), "--out", str(every)]) == 0
    for name in ("best_r1.yaml", "best_r0.1.yaml"):
        assert load_config(every.parent / name) == load_config(result.path / name)
    capsys.readouterr()


def test_runs_and_studies_record_what_ran_them(smoke_study, tmp_path, capsys):
    """study.yaml and `imbtrain train`'s run.yaml hold imbtrain's version and, run from this
    checkout, its git commit; every MLflow run of the study carries them as tags."""
    from imbtrain.cli import main
    from imbtrain.config import TrainConfig, load_config
    from imbtrain.version import __version__, git_commit

    tmp, result = smoke_study
    commit = git_commit()
    assert commit is not None  # the tests run from a checkout
    meta = yaml.safe_load((result.path / "study.yaml").read_text())
    assert meta["imbtrain_version"] == __version__ and meta["git_commit"] == commit[0]
    assert meta["config"] == TrainConfig(**meta["base"]).to_dict()  # the resolved base
    parents, trials = mlflow_trial_runs(tmp / "mlflow.db", "tiny_smoke")
    for run in parents + trials:
        assert run.data.tags["imbtrain.version"] == __version__
        assert run.data.tags["imbtrain.git_commit"] == commit[0]
    out = tmp_path / "run"
    assert main(["train", "dataset=digits", "model=mlp", "epochs=1", "--out", str(out)]) == 0
    run = yaml.safe_load((out / "run.yaml").read_text())
    assert run["imbtrain_version"] == __version__ and run["git_commit"] == commit[0]
    assert run["config"] == "config.yaml"
    # config.yaml stays a plain TrainConfig: it trains again as it is
    assert load_config(out / "config.yaml") == TrainConfig(dataset="digits", model="mlp",
                                                            epochs=1)
    capsys.readouterr()


def test_optuna_with_asha_keeps_its_optuna_study(ray_session, tmp_path):
    import optuna

    from imbtrain.study.space import load_space
    from imbtrain.tune.runner import run_study

    spec = load_space(write_space(tmp_path / "opt.yaml", """
        base: {dataset: digits, model: mlp, epochs: 4, train_ratio: 0.1}
        knobs:
          lr: {loguniform: [0.001, 0.5]}
          batch_size: {choice: [32, 64]}
        searcher: {type: optuna, num_samples: 4, seed: 0}
        scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
        max_concurrent: 2
    """))
    result = run_study(spec, storage=str(tmp_path / "runs"), mlflow_uri=None)
    res = result.results
    assert len(res) == 4 and (res["status"] == "TERMINATED").all()
    assert (res["config/train_ratio"] == 0.1).all()
    assert res["epochs_run"].between(1, 4).all()
    assert (res["epochs_run"] < 4).any()  # ASHA stopped a trial at a rung (1 or 2 epochs)
    assert res["config/lr"].between(0.001, 0.5).all() and res["config/lr"].nunique() == 4
    study = optuna.load_study(study_name="opt",
                              storage=f"sqlite:///{result.path / 'optuna.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4
    assert sorted(t.params["lr"] for t in done) == pytest.approx(sorted(res["config/lr"]))
    importance = optuna.importance.get_param_importances(study)
    assert set(importance) == {"lr", "batch_size"}
