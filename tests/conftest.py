"""Fixtures shared by test modules."""

from __future__ import annotations

import os

import pytest

from imbtrain.tune.loopback import bind_to_loopback

# Every Ray the tests start on 127.0.0.1 only, never this machine's interface address: the
# in-process sessions, the `ray start` heads, the local autoscaling cluster and the study
# subprocesses (which inherit this environment). imbtrain/tune/loopback.py says why.
bind_to_loopback()


@pytest.fixture(scope="module")
def ray_session():
    """One in-process Ray for a test module (a study's `init_ray` finds it running), two
    CPUs, without the dashboard; RAY_AUTH_MODE=disabled for the tests only (never in what
    users run). The one definition: every module that runs Ray in-process takes it."""
    import ray

    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = old


# A moto S3 server (`s3`) and an MLflow server with its artifacts in it (`mlflow_s3`).
from tests.fixtures_s3 import mlflow_s3, s3  # noqa: E402,F401
