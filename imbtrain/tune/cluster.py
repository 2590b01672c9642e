"""Offline check of a Ray cluster launcher file (`imbtrain check-cluster cluster.yaml`).

`ray up` validates its file against the JSON schema that ships inside Ray
(`ray/autoscaler/ray-schema.json`, draft 7) only after it has contacted the cloud. This
runs the same schema with jsonschema, plus the two cross-field rules `ray up` adds
(`ray.autoscaler._private.util.validate_config`), without a network or an account, so a
typo is found before anything is launched. Each problem is one line naming the file and
the key path:

    cluster.yaml: max_workers: 'many' is not of type 'integer'
    cluster.yaml: docker: Additional properties are not allowed ('gpus' was unexpected)

Beyond the schema, what `ray up` would only show once the nodes run (`check_cluster_file`):

- errors: every `REPLACE` placeholder left in a value, with its line; a study storage
  (`IMBTRAIN_STORAGE` in the docker run options, the studies' default `--storage`) of a
  scheme the runner refuses (it takes local paths and the URIs of `pyarrow.fs`);
- warnings (printed; the file still passes): a head that starts no MLflow server, or one
  bound beyond 127.0.0.1; workers that pip-install torch whenever they boot; no study
  storage every node reaches. A `fake_multinode` file (cluster-local.yaml) runs no commands
  and shares this machine's disk, so those do not apply to it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from imbtrain.errors import UserError
from imbtrain.files import load_yaml, read_text
from imbtrain.study.options import STORAGE_ENV  # the studies' default --storage

CLUSTER_KIND = "a Ray cluster YAML file (`ray up`'s format)"


@functools.cache
def ray_schema() -> dict:
    """The cluster-file schema of the installed Ray (found without importing Ray: seconds)."""
    ray_dir = Path(importlib.util.find_spec("ray").submodule_search_locations[0])
    path = ray_dir / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text())


@dataclass
class ClusterReport:
    """What `check_cluster_file` found: errors (exit status 2) and warnings, one line each."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_cluster(path: str | Path) -> list[str]:
    """Errors of the cluster file at `path`, one line each; empty when it is valid."""
    return check_cluster_file(path).errors


def check_cluster_file(path: str | Path) -> ClusterReport:
    """Errors and warnings of the cluster file at `path` (the module docstring lists them)."""
    path = Path(path)
    if not path.exists():
        return ClusterReport([f"{path}: no such file"])
    try:  # a folder, an empty, binary or non-UTF-8 file; a key twice: one line
        text = read_text(path, CLUSTER_KIND)
        doc = load_yaml(text, path)
    except UserError as e:
        return ClusterReport([str(e)])
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        return ClusterReport([f"{path}: {where}{problem}"])
    if not isinstance(doc, dict):
        return ClusterReport([f"{path}: the file must be a YAML mapping of cluster settings"])
    validator = jsonschema.Draft7Validator(ray_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [f"{path}: {key_path(e.absolute_path)}: {e.message}" for e in errors]
    problems = problems or [f"{path}: {p}" for p in cross_field_problems(doc)]
    problems += [f"{path}: {p}" for p in placeholder_problems(text)]
    local = (doc.get("provider") or {}).get("type") == "fake_multinode"
    storage_errors, storage_warnings = storage_problems(doc, local)
    problems += [f"{path}: {p}" for p in storage_errors]
    warnings = [] if local else [*mlflow_warnings(doc), *boot_install_warnings(doc)]
    return ClusterReport(problems, [f"{path}: {w}" for w in storage_warnings + warnings])


def key_path(parts) -> str:
    """`available_node_types.gpu_worker.resources.GPU`, `setup_commands[0]`; the top
    level when empty."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(top level)"


def cross_field_problems(doc: dict[str, Any]) -> list[str]:
    """The checks `ray up` makes beyond the schema (validate_config in Ray 2.60)."""
    types = doc.get("available_node_types")
    if types is None:
        return []
    if "head_node_type" not in doc:
        return ["head_node_type: required when available_node_types is set"]
    if doc["head_node_type"] not in types:
        return [f"head_node_type: {doc['head_node_type']!r} is not one of "
                f"available_node_types ({', '.join(types)})"]
    min_sum = sum(t.get("min_workers", 0) for t in types.values())
    if "max_workers" in doc and min_sum > doc["max_workers"]:
        return [f"max_workers: {doc['max_workers']} is smaller than the sum of the node "
                f"types' min_workers ({min_sum})"]
    return []


# ---------------------------------------------------------------------------------------
# Beyond the schema
# ---------------------------------------------------------------------------------------

PLACEHOLDER = "REPLACE"
PLACEHOLDER_WORD = re.compile(r"[\w.-]*" + PLACEHOLDER + r"[\w.-]*")
# URI schemes of pyarrow.fs.FileSystem.from_uri (pyarrow 25): the study storages the runner
# accepts besides local paths. Not ftp://, http:// or any other.
STORAGE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs", "file", "local")
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b")


def placeholder_problems(text: str) -> list[str]:
    """One line for each `REPLACE` placeholder left in a key or value of the YAML `text`
    (comments may mention the word), with its line number and key path."""
    found: dict[tuple[int, str], str] = {}  # (line, word) -> key path where first seen
    lines = text.splitlines()

    def visit(node, parts):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                visit(key, parts)
                visit(value, [*parts, key.value])
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                visit(item, [*parts, i])
        elif isinstance(node, yaml.ScalarNode) and PLACEHOLDER in str(node.value):
            block = node.style in ("|", ">")
            for n in range(node.start_mark.line, node.end_mark.line + 1):
                line = lines[n] if n < len(lines) else ""
                if not block:  # a plain or quoted scalar may be followed by a comment
                    line = line.split(" #", 1)[0]
                for word in PLACEHOLDER_WORD.findall(line):  # an alias: its anchor's line
                    found.setdefault((n + 1, word), key_path(parts))

    for doc in yaml.compose_all(text):
        visit(doc, [])
    return [f"line {n}: {found[n, word]}: replace the placeholder {word}"
            for n, word in sorted(found)]


def docker_env(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Environment variables the docker run options set: name -> (value, key path)."""
    out = {}
    docker = doc.get("docker") or {}
    for key in ("run_options", "head_run_options", "worker_run_options"):
        for i, option in enumerate(docker.get(key) or []):
            try:
                words = shlex.split(str(option))
            except ValueError:
                continue
            for j, word in enumerate(words):
                if word in ("-e", "--env") and j + 1 < len(words):
                    value = words[j + 1]
                elif word.startswith("--env="):
                    value = word[len("--env="):]
                else:
                    continue
                name, eq, val = value.partition("=")
                if eq:
                    out.setdefault(name, (val, f"docker.{key}[{i}]"))
    return out


def storage_problems(doc: dict[str, Any], local: bool) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the study storage the cluster gives its studies."""
    env = docker_env(doc)
    if STORAGE_ENV not in env:
        if local:
            return [], []
        return [], [f"docker.run_options: no {STORAGE_ENV}; every study then needs "
                    "--storage of a place every node reaches (s3://<bucket>/<prefix>)"]
    value, where = env[STORAGE_ENV]
    if "://" in value:
        scheme = value.split("://", 1)[0].lower()
        if scheme not in STORAGE_SCHEMES:
            return [f"{where}: {STORAGE_ENV}={value}: a study storage is a local path or "
                    f"a URI of pyarrow.fs ({', '.join(s + '://' for s in STORAGE_SCHEMES)}), "
                    f"not {scheme}://"], []
        return [], []
    if local:
        return [], []
    return [], [f"{where}: {STORAGE_ENV}={value} is a path on each node's own disk; the "
                "trials on other nodes cannot write there unless a shared filesystem is "
                "mounted at that path on every node (or use s3://<bucket>/<prefix>)"]


def mlflow_warnings(doc: dict[str, Any]) -> list[str]:
    """A head that starts no MLflow server, or one that listens beyond 127.0.0.1."""
    commands = [str(c) for c in (doc.get("head_start_ray_commands") or [])]
    servers = [c for c in commands if re.search(r"\bmlflow server\b", c)]
    if not servers:
        return ["head_start_ray_commands: the head starts no MLflow server; the studies "
                "then need --mlflow-uri of a server they reach (docs/cluster.md)"]
    out = []
    for command in servers:
        host = re.search(r"--host[ =](\S+)", command)
        if host is None or host.group(1) != "127.0.0.1":
            out.append("head_start_ray_commands: the MLflow server should listen on "
                       "127.0.0.1 only (--host 127.0.0.1; reach it through ssh forwarding)")
    return out


def boot_install_warnings(doc: dict[str, Any]) -> list[str]:
    """Setup commands that pip-install torch (or imbtrain, which pulls it in) on every boot."""
    lists = [("setup_commands", doc.get("setup_commands")),
             ("worker_setup_commands", doc.get("worker_setup_commands"))]
    for name, node_type in (doc.get("available_node_types") or {}).items():
        if name != doc.get("head_node_type"):
            lists.append((f"available_node_types.{name}.worker_setup_commands",
                          node_type.get("worker_setup_commands")))
    out = []
    for key, commands in lists:
        for i, command in enumerate(commands or []):
            if PIP_INSTALL.search(str(command)) and re.search(r"torch|imbtrain", str(command)):
                out.append(f"{key}[{i}]: every worker pip-installs torch when it boots "
                           "(minutes and gigabytes a node); put the image of "
                           "docker/Dockerfile in docker.image instead")
    return out
