"""Ray on 127.0.0.1 only (imbtrain/tune/loopback.py): the tests' shared in-process session,
and a local study's own Ray (`runner.init_ray`) started in a process without the switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from imbtrain.tune.loopback import LOOPBACK_ENV, is_loopback_address


def test_the_shared_session_is_on_loopback(ray_session):
    import ray

    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}


def test_a_local_study_starts_its_ray_on_loopback():
    # A fresh process whose environment lacks the switch, as `imbtrain study` from a shell:
    # Ray is imported first, as the runner imports it, then init_ray(None) starts it.
    code = ("import json, ray\n"
            "from imbtrain.tune.runner import init_ray\n"
            "init_ray(None)\n"
            "print(json.dumps([n['NodeManagerAddress'] for n in ray.nodes()]))\n")
    env = {k: v for k, v in os.environ.items() if k not in LOOPBACK_ENV}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["127.0.0.1"]


def test_loopback_addresses():
    for address in ("127.0.0.1:6379", "localhost:6379", "[::1]:6379", "ray://127.0.0.1:10001"):
        assert is_loopback_address(address), address
    for address in (None, "", "auto", "local", "10.0.0.5:6379", "head:6379"):
        assert not is_loopback_address(address), address
