"""Preflight: before any trial starts, every node of the cluster shows that it can write the
study's storage and read the files the trials read.

    preflight(study, files, address)   # run_study calls it once Ray is up

On a cluster (`address`) a small Ray task is pinned to each alive node
(`NodeAffinitySchedulingStrategy`, no CPU asked, so it runs next to busy trials and on a
head that runs none); each writes a probe beside the study folder and deletes it again,
and opens each file (`data_dir`, `pretrained=`, `m2m_teacher=`: a folder is listed, a file
read, a URI looked up in its storage). The first problem stops the study with one line
naming the node (its id and address) and the path; nothing of the study is written yet.
Locally (Ray in this process) the driver is the only node and checks itself.

Nodes the autoscaler adds later are checked by the trials themselves: `check_trial_access`
runs at the start of every trial and raises `UserError`, which no retry can cure.
"""

from __future__ import annotations

import os
import socket
import uuid

import pyarrow.fs as pafs

from imbtrain.errors import UserError
from imbtrain.study.storage import StudyDir, is_uri, split_query

TIMEOUT_S = 120.0  # a node that cannot run a tiny task in this long is reported as such


def access_problem(study: StudyDir, files: dict[str, list[str]]) -> str | None:
    """What this process cannot do that a trial must: write (and delete) a probe beside the
    study folder, read each file of `files` ({config key: paths}). None when all is well,
    else the problem in a few words with the path."""
    root = study.parent
    probe = f".imbtrain-probe-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        if root.is_local:
            os.makedirs(root.local, exist_ok=True)
        root.write_bytes(probe, b"imbtrain preflight\n")
        root.delete(probe)
    except OSError as e:
        return f"cannot write the study storage {root.uri} ({_reason(e)})"
    for key, paths in files.items():
        for path in paths:
            problem = _read_problem(path)
            if problem:
                return f"cannot read {key}={_shown(path)} ({problem})"
    return None


def _read_problem(path: str) -> str | None:
    if is_uri(path):
        try:
            fs, inner = pafs.FileSystem.from_uri(path)
            if fs.get_file_info(inner).type == pafs.FileType.NotFound:
                return "not found"
        except Exception as e:  # credentials, endpoint, scheme
            return _reason(e)
        return None
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(1)
    except OSError as e:
        return _reason(e)
    return None


def _shown(path: str) -> str:
    return split_query(path)[0] if is_uri(path) else path


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _node_check(study: StudyDir, files: dict[str, list[str]]) -> str | None:
    return access_problem(study, files)


def preflight(study: StudyDir, files: dict[str, list[str]], address: str | None) -> None:
    """Raise `UserError` (one line: the node, the path) when a node cannot write the
    storage or read a file; see the module docstring. Locally, the driver checks itself."""
    if not address:
        problem = access_problem(study, files)
        if problem:
            raise UserError(f"this machine {problem}")
        return
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    task = ray.remote(num_cpus=0, max_retries=0)(_node_check)
    refs = {task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote(study, files): n for n in nodes}
    done, pending = ray.wait(list(refs), num_returns=len(refs), timeout=TIMEOUT_S)
    for ref in done:
        node = refs[ref]
        try:
            problem = ray.get(ref)
        except Exception as e:  # the task itself failed on that node (a dying node)
            problem = f"could not run the check ({_reason(e)})"
        if problem:
            raise UserError(f"node {node['NodeID'][:12]} ({node['NodeManagerAddress']}) "
                            f"{problem}; every node must reach the study storage and the "
                            "trials' files: fix its permissions or mounts (docs/cluster.md)")
    if pending:
        node = refs[pending[0]]
        raise UserError(f"node {node['NodeID'][:12]} ({node['NodeManagerAddress']}) did not "
                        f"answer the storage check within {TIMEOUT_S:.0f} s; is it alive?")


def check_trial_access(study: StudyDir | None, files: dict[str, list[str]]) -> None:
    """The same check at the start of a trial, on its node: `UserError` (a trial that must
    not be retried: the node's permissions do not change by trying again)."""
    if study is None:
        return
    problem = access_problem(study, files)
    if problem:
        raise UserError(f"node {socket.gethostname()} {problem}")
