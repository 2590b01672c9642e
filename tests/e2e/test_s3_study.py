"""A study in object storage end to end, on real stand-ins (fixtures_s3.py): a moto S3 server
on 127.0.0.1 and an MLflow server whose artifacts go to the same bucket.

The smoke batch-size study (`studies/batch_size.py --smoke`, 8 trials) runs with `--storage
s3://<bucket>/<prefix>`; its driver is killed with SIGKILL once a trial has finished; the same
command with `--resume`, on an empty cache (as a new head would), finishes it. Shown: every
table, plot and best.yaml is in the bucket; every trial is exactly once in results.parquet
(read back from S3) and in MLflow; the parent run's artifacts are in the bucket; `imbtrain
export` and `imbtrain analyze` work on the S3 folder from a third empty cache.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import yaml

from imbtrain.cli import main
from imbtrain.tune.loopback import LOOPBACK_ENV

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
       "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **LOOPBACK_ENV}
NAME = "batch_size_smoke"
TABLES = {"results.parquet", "history.parquet", "best.yaml", "study.yaml", "analyses.yaml",
          "sensitivity.png", "sensitivity.md", "sensitivity.parquet"}


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_batch_size_smoke_study_in_s3_resumes_after_sigkill(s3, mlflow_s3, tmp_path,
                                                            monkeypatch, capsys):
    from mlflow import MlflowClient

    storage = s3.uri("e2e/runs")
    prefix = f"e2e/runs/{NAME}/"
    cmd = [sys.executable, str(ROOT / "studies" / "batch_size.py"), "--smoke",
           "--storage", storage, "--mlflow-uri", mlflow_s3, "--max-concurrent", "1"]
    env = {**ENV, **s3.env}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, start_new_session=True,
                            env={**env, "IMBTRAIN_CACHE_DIR": str(tmp_path / "cache1")})
    seen = []
    try:
        for line in proc.stdout:  # the driver dies once the first trial has finished
            seen.append(line)
            if " finished " in line:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_group(proc)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-30:])
    assert f"writing to {storage}/{NAME}" in "".join(seen)
    keys = {k.removeprefix(prefix) for k in s3.keys(prefix)}
    assert "tuner.pkl" in keys and "results.parquet" not in keys

    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=900, start_new_session=True,
                          env={**env, "IMBTRAIN_CACHE_DIR": str(tmp_path / "cache2")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"resuming study {NAME} in {storage}/{NAME}" in done.stdout
    assert f"files in {storage}/{NAME}" in done.stdout

    # Every table, plot and best.yaml in the bucket; no lock left beside the study.
    keys = {k.removeprefix(prefix) for k in s3.keys(prefix)}
    assert TABLES <= keys, sorted(keys)
    assert f"e2e/runs/.{NAME}.lock" not in s3.keys("e2e/runs/")
    res = pq.read_table(io.BytesIO(s3.read(prefix + "results.parquet"))).to_pandas()
    assert len(res) == 8 and res["trial_id"].is_unique
    assert (res["status"] == "TERMINATED").all()
    # The smoke section: four variants (batch size, epochs) at two train ratios, one seed.
    got = set(zip(res["config/batch_size"], res["config/epochs"], res["config/train_ratio"],
                  strict=True))
    variants = ((32, 1), (128, 1), (64, 1), (128, 2))
    assert got == {(b, e, r) for b, e in variants for r in (1.0, 0.1)}
    assert (res["config/seed"] == 0).all()
    hist = pq.read_table(io.BytesIO(s3.read(prefix + "history.parquet"))).to_pandas()
    assert sorted(hist.groupby("trial_id")["epoch"].apply(tuple)) == [(1,)] * 6 + [(1, 2)] * 2

    # MLflow: one parent, one run a trial, none twice; the parent's artifacts in the bucket.
    client = MlflowClient(mlflow_s3)
    exp = client.get_experiment_by_name(NAME)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags["imbtrain.run_kind"] == "study"]
    trials = [r for r in runs if r.data.tags["imbtrain.run_kind"] == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["imbtrain.trial_id"] for r in trials) == sorted(res["trial_id"])
    assert {r.info.status for r in trials} == {"FINISHED"}
    parent = parents[0].info.run_id
    names = {a.path for a in client.list_artifacts(parent)}
    assert {"results.parquet", "history.parquet", "best.yaml", "study.yaml",
            "sensitivity.png", "sensitivity.md", "sensitivity.parquet"} <= names
    in_bucket = {k.rsplit("/", 1)[-1] for k in s3.keys("mlflow/") if f"/{parent}/" in k}
    assert {"results.parquet", "best.yaml", "sensitivity.png"} <= in_bucket
    uid = yaml.safe_load(s3.read(prefix + "study.yaml"))["mlflow_study_uid"]
    assert parents[0].data.tags["imbtrain.study_uid"] == uid

    # export and analyze on the S3 folder, from a cache that holds nothing of it.
    monkeypatch.setenv("IMBTRAIN_CACHE_DIR", str(tmp_path / "cache3"))
    out = tmp_path / "best.yaml"
    assert main(["export", f"{storage}/{NAME}", "--out", str(out)]) == 0
    for ratio in ("r1", "r0.1"):  # each ratio's best config, as the study wrote it
        assert (tmp_path / f"best_{ratio}.yaml").read_bytes() == \
            s3.read(prefix + f"best_{ratio}.yaml")
    index = yaml.safe_load(out.read_text())  # best.yaml: the index of the ratios' files
    assert [e["config"] for e in index["per_train_ratio"]] == [
        e["config"] for e in yaml.safe_load(s3.read(prefix + "best.yaml"))["per_train_ratio"]]
    before = s3.client().head_object(Bucket=s3.bucket, Key=prefix + "sensitivity.png")
    assert main(["analyze", f"{storage}/{NAME}"]) == 0  # what analyses.yaml recorded
    printed = capsys.readouterr().out
    assert f"sensitivity: wrote sensitivity.png, sensitivity.md, sensitivity.parquet in " \
           f"{storage}/{NAME}" in printed
    after = s3.client().head_object(Bucket=s3.bucket, Key=prefix + "sensitivity.png")
    assert after["LastModified"] >= before["LastModified"]
    table = pd.read_parquet(io.BytesIO(s3.read(prefix + "sensitivity.parquet")))
    assert set(table["batch_size"]) == {32, 64, 128}  # fixed epochs: 32, 128; steps: 64, 128
