"""No network but loopback: what `.ci/run` gives `make test` where the machine allows a network
namespace (`unshare -n` as root, `unshare -rn` in a user namespace). Here a study runs end to
end inside one (Ray, the trials, the results files, a sqlite MLflow store), and nothing off the
machine can be reached from it. Skipped where no namespace may be made."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.reliability.test_inputs import ENV


def _netns() -> list[str] | None:
    """The unshare command that makes a network namespace here, or None."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    for cmd in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    return None


NETNS = _netns()
pytestmark = pytest.mark.skipif(NETNS is None, reason="no network namespace may be made here")


def in_netns(*argv: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """argv run in a fresh network namespace that has only `lo`, brought up."""
    script = 'ip link set lo up && exec "$@"'
    return subprocess.run([*NETNS, "sh", "-c", script, "sh", *argv], capture_output=True,
                          text=True, env={**ENV, "RAY_USAGE_STATS_ENABLED": "0"}, cwd=cwd,
                          timeout=timeout)


def test_only_loopback_is_reachable(tmp_path):
    probe = textwrap.dedent("""
        import socket
        with socket.socket() as s:  # loopback: a listening socket takes a connection
            s.bind(("127.0.0.1", 0)); s.listen()
            socket.create_connection(s.getsockname(), timeout=2).close()
        try:  # anything else: no route (a documentation address, RFC 5737)
            socket.create_connection(("192.0.2.1", 80), timeout=2)
        except OSError as e:
            print("unreachable", e.errno)
        else:
            print("reachable")
    """)
    run = in_netns(sys.executable, "-c", probe, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("unreachable"), run.stdout


@pytest.mark.e2e  # a whole study (minutes): make test-e2e
def test_a_study_runs_with_only_loopback(tmp_path):
    space = tmp_path / "offline.yaml"
    space.write_text("base: {dataset: digits, model: mlp, epochs: 1}\n"
                     "knobs: {lr: {grid: [0.05, 0.1]}}\nresources: {cpus: 1}\n")
    run = in_netns(sys.executable, "-m", "imbtrain.cli", "study", str(space), "--storage",
                   str(tmp_path / "runs"), "--mlflow-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                   cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    res = pd.read_parquet(tmp_path / "runs" / "offline" / "results.parquet")
    assert sorted(res["config/lr"]) == [0.05, 0.1]
    assert list(res["status"]) == ["TERMINATED", "TERMINATED"]
    assert (tmp_path / "runs" / "offline" / "best.yaml").is_file()
