"""`imbtrain cluster-local start|stop`: the local autoscaling cluster of `cluster-local.yaml`.

A rehearsal of the GPU cluster on this machine (docs/cluster.md): Ray's fake multi-node
provider adds worker nodes (raylets on this machine) while trials wait and removes them when
idle, exactly as the autoscaler of `cluster.yaml` launches and terminates instances.

    imbtrain cluster-local start      # prints the `ray job submit` line of a study
    imbtrain cluster-local stop       # stops the processes `start` started, nothing else

`start` picks free ports, writes a copy of the cluster file with the head's GCS address (the
fake provider's nodes join `provider.gcs_address`, 6379 by default) and runs

    RAY_FAKE_CLUSTER=1 ray start --head --block --autoscaling-config=<copy> --temp-dir=<own> ...

in a session of its own, bound to 127.0.0.1 (imbtrain.tune.loopback), in the directory it is
called from: a job's entrypoint runs there (start it from the repository root). Its folder
(`--dir`, default runs/cluster-local) keeps the state file (the process id and Ray temp
dir), the head's log and the copy of the cluster file; the printed study writes under
`<dir>/runs` and logs to `<dir>/mlflow.db`. `stop` ends that process group and any process
whose command line names the cluster's own Ray temp dir (never `ray stop`, which stops every
Ray instance of the user), then removes the temp dir.

Temp dirs: Ray 2.60 lets each node of `ray start` have its own `--temp-dir`, but the fake
provider starts its nodes with Ray's `Node` class and no temp dir, and a node without one
takes the head's (`Node._init_temp`): all nodes of this cluster share its one temp dir, which
no other cluster uses. So they share its `runtime_resources` folder too, and a job's
`--working-dir` breaks here: each node's runtime-env agent, on its first task of the job,
removes the job's unpacked package and unpacks it again in that shared folder, under the
driver and the trials already running in it (their `os.getcwd()` fails). Jobs on this cluster
are submitted without `--working-dir`; every node reads this machine's checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from imbtrain.errors import UserError
from imbtrain.files import check_writable, load_yaml
from imbtrain.tune.loopback import LOOPBACK, LOOPBACK_ENV

DEFAULT_CONFIG = "cluster-local.yaml"
DEFAULT_DIR = "runs/cluster-local"
STATE_FILE = "cluster.json"
CONFIG_COPY = "autoscaling.yaml"
HEAD_LOG = "head.log"
HEAD_TYPE = "ray.head.default"  # the fake provider's name of the head's node type
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0  # the autoscaler outlives its GCS on SIGTERM; SIGKILL then


@dataclass
class LocalCluster:
    """A running local cluster, as its state file records it."""

    dir: str
    pid: int  # `ray start --block`, leader of the cluster's process group
    temp_dir: str  # the cluster's own Ray temp dir
    gcs_address: str
    dashboard_url: str  # also the job server of `ray job submit`
    cwd: str  # where the cluster was started: a job's entrypoint runs there

    def submit_command(self, script: str = "studies/batch_size.py",
                       *extra: str) -> list[str]:
        """`ray job submit` of a smoke study (`script` relative to `cwd`). No
        `--working-dir`: the nodes share this machine's disk (module docstring)."""
        root = Path(self.dir)
        return [ray_command(), "job", "submit", "--address", self.dashboard_url, "--",
                "python", script, "--smoke", "--address", "auto", "--storage",
                str(root / "runs"), "--mlflow-uri", f"sqlite:///{root / 'mlflow.db'}", *extra]


def ray_command() -> str:
    """`ray` when it is the one of this Python's environment, else that one's path
    (`.venv/bin/ray` from the repository root)."""
    mine = Path(sys.executable).with_name("ray")
    found = shutil.which("ray")
    if found and Path(found).resolve() == mine.resolve():
        return "ray"
    try:
        return str(mine.relative_to(Path.cwd()))
    except ValueError:
        return str(mine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# The cluster file
# ---------------------------------------------------------------------------------------

def read_config(path: str | Path) -> dict:
    """The cluster file, checked for what the fake provider needs (one line a problem)."""
    from imbtrain.tune.cluster import check_cluster_file

    path = Path(path)
    report = check_cluster_file(path)
    if report.errors:
        raise UserError("; ".join(report.errors))
    doc = load_yaml(path.read_text(), path)  # checked whole above
    if doc.get("provider", {}).get("type") != "fake_multinode":
        raise UserError(f"{path}: provider.type must be fake_multinode for a local cluster "
                        "(cluster.yaml is for `ray up`)")
    if doc.get("head_node_type") != HEAD_TYPE:
        raise UserError(f"{path}: head_node_type must be {HEAD_TYPE} (the fake provider's "
                        "name of the head)")
    return doc


def head_options(doc: dict) -> list[str]:
    """`ray start` options for the head's resources: the autoscaler cannot set the head's,
    so they must be those of its node type."""
    res = dict(doc["available_node_types"][HEAD_TYPE].get("resources", {}))
    opts = [f"--num-cpus={int(res.pop('CPU', 0))}", f"--num-gpus={int(res.pop('GPU', 0))}"]
    if "object_store_memory" in res:
        opts.append(f"--object-store-memory={int(res.pop('object_store_memory'))}")
    if res:
        opts.append(f"--resources={json.dumps(res)}")
    return opts


# ---------------------------------------------------------------------------------------
# start / stop
# ---------------------------------------------------------------------------------------

def start(config: str | Path = DEFAULT_CONFIG, directory: str | Path = DEFAULT_DIR,
          env: dict | None = None, timeout: float = START_TIMEOUT_S) -> LocalCluster:
    """Start the cluster of `config` (no worker yet) and wait until its job server answers.
    `env`: extra environment variables of the cluster's processes."""
    doc = read_config(config)
    root = Path(directory).expanduser().resolve()
    if (root / STATE_FILE).is_file():
        raise UserError(f"{root} already has a local cluster ({root / STATE_FILE}); stop it "
                        f"first: imbtrain cluster-local stop --dir {directory}")
    if root.exists() and not root.is_dir():
        raise UserError(f"--dir {directory} is a file; give the cluster's folder")
    check_writable(root / STATE_FILE, "--dir")
    root.mkdir(parents=True, exist_ok=True)
    port, dashboard = free_port(), free_port()
    gcs = f"{LOOPBACK}:{port}"
    doc["provider"]["gcs_address"] = gcs  # where the fake provider's nodes join
    (root / CONFIG_COPY).write_text(yaml.safe_dump(doc, sort_keys=False))
    # A short path: Ray's socket paths under it must stay below the 107-byte limit.
    temp_dir = tempfile.mkdtemp(prefix="imbtrain-ray-")
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
           f"--port={port}", f"--temp-dir={temp_dir}",
           f"--autoscaling-config={root / CONFIG_COPY}", *head_options(doc),
           "--include-dashboard=true", f"--dashboard-host={LOOPBACK}",
           f"--dashboard-port={dashboard}", f"--ray-client-server-port={free_port()}",
           f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats"]
    # `python` in a job's entrypoint: this environment's (the one with imbtrain and Ray).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    proc_env = {**os.environ, **LOOPBACK_ENV, "RAY_FAKE_CLUSTER": "1", "PATH": path,
                **(env or {})}
    proc_env.setdefault("AUTOSCALER_UPDATE_INTERVAL_S", "1")  # default 5: a slower rehearsal
    with open(root / HEAD_LOG, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=proc_env,
                                start_new_session=True, cwd=os.getcwd())
    cluster = LocalCluster(str(root), proc.pid, temp_dir, gcs, f"http://{LOOPBACK}:{dashboard}",
                           os.getcwd())
    (root / STATE_FILE).write_text(json.dumps(asdict(cluster), indent=2))
    try:
        _wait_for_job_server(cluster, proc, timeout)
    except BaseException:
        stop(root)
        raise
    return cluster


def _wait_for_job_server(cluster: LocalCluster, proc: subprocess.Popen,
                         timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise UserError(f"the local cluster's head exited ({proc.returncode}): "
                            f"{_tail(Path(cluster.dir) / HEAD_LOG)}")
        try:
            urllib.request.urlopen(f"{cluster.dashboard_url}/api/version", timeout=2).close()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(1.0)
    raise UserError(f"the local cluster's job server did not answer within {timeout:g} s "
                    f"(log: {Path(cluster.dir) / HEAD_LOG})")


def _tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.is_file() else []
    return " | ".join(text[-lines:]) or "no output"


def read_state(directory: str | Path = DEFAULT_DIR) -> LocalCluster:
    path = Path(directory).expanduser().resolve() / STATE_FILE
    try:
        return LocalCluster(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        raise UserError(f"no local cluster in {path.parent} (no readable {STATE_FILE}); "
                        "start one with: imbtrain cluster-local start") from None


def stop(directory: str | Path = DEFAULT_DIR, timeout: float = STOP_TIMEOUT_S) -> int:
    """Stop the cluster started in `directory`: its process group, then any process whose
    command line names its Ray temp dir. Returns how many processes were signalled."""
    cluster = read_state(directory)
    pids = _cluster_processes(cluster)
    _signal(pids, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end and _cluster_processes(cluster):
        time.sleep(0.5)
    _signal(_cluster_processes(cluster), signal.SIGKILL)
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)
    (Path(cluster.dir) / STATE_FILE).unlink(missing_ok=True)
    return len(pids)


def _cluster_processes(cluster: LocalCluster) -> set[int]:
    """Live processes of the cluster: its process group (the head, the autoscaler and the
    nodes it started) and any process naming the cluster's own temp dir."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        state, pgid = fields[0], int(fields[2])
        if state != "Z" and (pgid == cluster.pid or cluster.temp_dir in cmdline):
            found.add(pid)
    return found


def _signal(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


# ---------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------

def add_cluster_local_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster-local", help="a local autoscaling Ray cluster to rehearse on",
                       description="Start or stop the local autoscaling cluster of "
                                   "cluster-local.yaml (Ray's fake multi-node provider, "
                                   "127.0.0.1 only): workers are added while trials wait "
                                   "and removed when idle.")
    p.add_argument("action", choices=("start", "stop"))
    p.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"the cluster file (default {DEFAULT_CONFIG})")
    p.add_argument("--dir", default=DEFAULT_DIR,
                   help=f"the cluster's folder: its state, log, and the printed study's "
                        f"storage and MLflow store (default {DEFAULT_DIR})")
    p.set_defaults(handler=run_cluster_local_command)


def run_cluster_local_command(args: argparse.Namespace) -> int:
    if args.action == "stop":
        n = stop(args.dir)
        print(f"stopped the local cluster of {Path(args.dir).resolve()} ({n} processes)")
        return 0
    cluster = start(args.config, args.dir)
    doc = load_yaml((Path(cluster.dir) / CONFIG_COPY).read_text(), CONFIG_COPY)
    workers = ", ".join(f"{name} up to {t.get('max_workers', 0)}"
                        for name, t in doc["available_node_types"].items() if name != HEAD_TYPE)
    print(f"local cluster up: head {cluster.gcs_address} (no trials on it), workers added "
          f"while trials wait ({workers}), removed after {doc['idle_timeout_minutes']:g} "
          f"min idle\ndashboard and job server: {cluster.dashboard_url}\n"
          f"submit a study (its job runs in {cluster.cwd}):\n"
          f"  {shlex.join(cluster.submit_command())}\n"
          f"  (add --gpus-per-trial 1 to schedule the trials on gpu_worker nodes)\n"
          f"stop it: imbtrain cluster-local stop"
          + ("" if args.dir == DEFAULT_DIR else f" --dir {args.dir}"), flush=True)
    return 0
