"""Studies logged to a real MLflow server (`mlflow server` on 127.0.0.1, a free port, its own
sqlite store and artifact folder, stopped by its process id), as on a cluster's head.

Two studies with the same name (in two storage folders) each keep their own artifacts: a
study's tables go to its own parent run, found by the study's uid (study.yaml's
`mlflow_study_uid`, the parent's `imbtrain.study_uid` tag), never by its name, also when the
first one is resumed after the second has logged. The closing hint names the server's URL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

SPACE = """
base: {dataset: digits, model: mlp, epochs: 1}
knobs:
  batch_size: {grid: [64]}
seeds: [0]
resources: {cpus: 1}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    proc = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}",
         "--artifacts-destination", str(tmp / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2).close()
                break
            except OSError:
                if time.time() > end or proc.poll() is not None:
                    raise RuntimeError("mlflow server did not start") from None
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def study(space: Path, storage: Path, uri: str, *extra: str) -> int:
    from imbtrain.cli import main

    return main(["study", str(space), "--name", "same", "--storage", str(storage),
                 "--mlflow-uri", uri, *extra])


def test_two_studies_of_one_name_keep_their_own_artifacts(ray_session, server, tmp_path,
                                                          capsys):
    from mlflow import MlflowClient

    space = tmp_path / "same.yaml"
    space.write_text(textwrap.dedent(SPACE))
    first, second = tmp_path / "first", tmp_path / "second"
    assert study(space, first, server) == 0
    assert study(space, second, server) == 0
    out = capsys.readouterr().out
    # A server's UI is its own URL; `mlflow ui --backend-store-uri http://...` is no command.
    assert f"on {server}; open {server} in a browser" in out
    assert "mlflow ui --backend-store-uri http" not in out
    # The first study again in a new driver run: it finds its uid in its own study.yaml.
    assert study(space, first, server, "--resume") == 0

    client = MlflowClient(server)
    exp = client.get_experiment_by_name("same").experiment_id
    parents = client.search_runs([exp], "tags.`imbtrain.run_kind` = 'study'")
    assert len(parents) == 2
    for storage in (first, second):
        meta = yaml.safe_load((storage / "same" / "study.yaml").read_text())
        [parent] = [p for p in parents
                    if p.data.tags["imbtrain.study_uid"] == meta["mlflow_study_uid"]]
        names = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert {"results.parquet", "history.parquet", "best.yaml", "study.yaml"} <= names
        got = Path(client.download_artifacts(parent.info.run_id, "results.parquet",
                                             str(tmp_path / parent.info.run_id)))
        mine = pd.read_parquet(storage / "same" / "results.parquet")
        assert list(pd.read_parquet(got)["trial_id"]) == list(mine["trial_id"])
    ids = [set(pd.read_parquet(s / "same" / "results.parquet")["trial_id"])
           for s in (first, second)]
    assert not ids[0] & ids[1]  # two different studies, so the check above tells them apart
