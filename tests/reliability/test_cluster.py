"""A worker node lost mid-study (RELIABILITY.md, "Faults"): a real two-node Ray cluster on this
machine (`ray start` head + a second node, 127.0.0.1 only), a study through `--address`; once
a trial runs on each node, the second node's whole process group (raylet and its workers) is
killed with SIGKILL, as a spot instance vanishes. Its trial is restarted from its last
checkpoint on the head (`--max-failures`) and the study completes.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pandas as pd

from imbtrain.study.results import HISTORY_FILE, RESULTS_FILE
from tests.e2e.test_study import (
    ENV,
    start_node,
    start_worker_node,
    stop_group,
    study_cmd,
    wait_for_nodes,
    write_space,
)

# Trials of a few seconds an epoch, so the second node dies in the middle of one.
SPACE = """
base: {dataset: mnist5k, model: cnn, epochs: 3}
knobs:
  batch_size: {grid: [64]}
seeds: [0, 1]
resources: {cpus: 1}
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_lost_worker_node_is_survived(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_head = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    temp_node = tempfile.mkdtemp(prefix="rn", dir="/tmp")
    head = start_node(["--head", f"--port={port}", "--num-cpus=1", "--num-gpus=0",
                       "--include-dashboard=false", "--node-ip-address=127.0.0.1"], temp_head)
    node = driver = None
    lines: list[str] = []
    try:
        time.sleep(2.0)
        node = start_worker_node(address, temp_node)
        node_ids = wait_for_nodes(address, 2)
        space = write_space(tmp_path / "lost.yaml", SPACE)
        driver = subprocess.Popen(
            study_cmd(space, tmp_path, "--address", address, "--max-failures", "3"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
            cwd=tmp_path, start_new_session=True)
        started: set[str] = set()
        for line in driver.stdout:  # both trials running: one on each node
            lines.append(line)
            m = re.search(r"done\] (\S+)  epoch 1/", line)
            if m:
                started.add(m.group(1))
            if len(started) == 2:
                break
        assert len(started) == 2, "".join(lines[-30:])
        stop_group(node, signal.SIGKILL)  # the raylet and its workers, at once
        reader = threading.Thread(target=lambda: lines.extend(driver.stdout), daemon=True)
        reader.start()
        driver.wait(timeout=300)
        reader.join(timeout=10)
    finally:
        for proc in (driver, node, head):
            if proc is not None:
                stop_group(proc)
        for d in (temp_head, temp_node):
            shutil.rmtree(d, ignore_errors=True)
    out = "".join(lines)
    assert driver.returncode == 0, out[-4000:]
    assert re.search(r"RETRY \S+ \(failure 1\): it restarts from its last checkpoint", out)
    res = pd.read_parquet(tmp_path / "runs" / "lost" / RESULTS_FILE)
    assert len(res) == 2 and (res["status"] == "TERMINATED").all()
    assert (res["epochs_run"] == 3).all()
    # Both trials ran at once, one a node, when the second node died; both ended on the
    # node that is left: the lost node's trial was rescheduled there.
    assert res["node_id"].nunique() == 1 and res["node_id"].iloc[0] in node_ids
    hist = pd.read_parquet(tmp_path / "runs" / "lost" / HISTORY_FILE)
    assert sorted(hist.groupby("trial_id")["epoch"].apply(tuple)) == [(1, 2, 3)] * 2
