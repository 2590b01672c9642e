"""A real S3 stand-in for the tests: `moto_server` on 127.0.0.1 on a free port, stopped by
the process id this fixture started, with one bucket (made with boto3), and an MLflow server
whose artifacts go to that bucket (`--artifacts-destination s3://...`, boto3 through
MLFLOW_S3_ENDPOINT_URL), as on a cluster's head.

    def test_x(s3):                    # module-scoped: one server a test module
        s3.env                         # AWS_* for pyarrow.fs, boto3 and subprocesses
        s3.uri("runs")                 # 's3://<bucket>/runs'
        s3.keys("runs/")               # the objects under a prefix
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKET = "imbtrain-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 300.0) -> None:
    end = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.time() > end or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.3)


def stop(proc: subprocess.Popen) -> None:
    """The process group this fixture started (its own session), by its id."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class S3:
    endpoint: str
    bucket: str
    env: dict[str, str]

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def keys(self, prefix: str = "") -> list[str]:
        out, token = [], None
        while True:
            kw = {"Bucket": self.bucket, "Prefix": prefix, **(
                {"ContinuationToken": token} if token else {})}
            page = self.client().list_objects_v2(**kw)
            out += [o["Key"] for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(out)

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server with the bucket BUCKET; its AWS environment is set in this process
    for the module (pyarrow, boto3 and MLflow read it) and handed to subprocesses."""
    port = free_port()
    moto = str(Path(sys.executable).with_name("moto_server"))
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "AWS_EC2_METADATA_DISABLED": "true", "MLFLOW_S3_ENDPOINT_URL": endpoint}
    old = {k: os.environ.get(k) for k in env}
    try:
        wait_http(endpoint, proc, "moto_server")
        os.environ.update(env)
        server = S3(endpoint, BUCKET, env)
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        stop(proc)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def mlflow_s3(s3, tmp_path_factory):
    """An MLflow server on 127.0.0.1 whose artifacts go to s3://<bucket>/mlflow; its URI."""
    tmp = tmp_path_factory.mktemp("mlflow-s3")
    port = free_port()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    proc = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}",
         "--artifacts-destination", s3.uri("mlflow")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, **s3.env})
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", proc, "mlflow server")
        yield uri
    finally:
        stop(proc)
