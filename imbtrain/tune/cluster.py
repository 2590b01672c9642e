"""Offline check of a Ray cluster launcher file (`imbtrain check-cluster cluster.yaml`).

`ray up` validates its file against the JSON schema that ships inside Ray
(`ray/autoscaler/ray-schema.json`, draft 7) only after it has contacted the cloud. This
runs the same schema with jsonschema, plus the two cross-field rules `ray up` adds
(`ray.autoscaler._private.util.validate_config`), without a network or an account, so a
typo is found before anything is launched. Each problem is one line naming the file and
the key path:

    cluster.yaml: max_workers: 'many' is not of type 'integer'
    cluster.yaml: docker: Additional properties are not allowed ('gpus' was unexpected)
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml


@functools.cache
def ray_schema() -> dict:
    """The cluster-file schema of the installed Ray (found without importing Ray: seconds)."""
    ray_dir = Path(importlib.util.find_spec("ray").submodule_search_locations[0])
    path = ray_dir / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text())


def check_cluster(path: str | Path) -> list[str]:
    """Problems of the cluster file at `path`, one line each; empty when it is valid."""
    path = Path(path)
    if not path.is_file():
        return [f"{path}: no such file"]
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        return [f"{path}: {where}{problem}"]
    if not isinstance(doc, dict):
        return [f"{path}: the file must be a YAML mapping of cluster settings"]
    validator = jsonschema.Draft7Validator(ray_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [f"{path}: {key_path(e.absolute_path)}: {e.message}" for e in errors]
    return problems or [f"{path}: {p}" for p in cross_field_problems(doc)]


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
