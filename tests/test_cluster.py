"""`cluster.yaml` and its offline check against the schema inside Ray."""

from importlib.metadata import version
from pathlib import Path

import yaml

from imbtrain.tune.cluster import check_cluster, key_path

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster.yaml"


def copy_with(tmp_path, change) -> Path:
    doc = yaml.safe_load(CLUSTER.read_text())
    change(doc)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_shipped_cluster_file_is_valid():
    assert check_cluster(CLUSTER) == []


def test_cluster_file_choices():
    doc = yaml.safe_load(CLUSTER.read_text())
    # The current rayproject/ray image of the installed Ray, Python 3.11, CUDA (not ray-ml).
    assert doc["docker"]["image"] == f"rayproject/ray:{version('ray')}-py311-gpu"
    assert doc["docker"]["worker_run_options"] == ["--gpus all"]
    assert doc["provider"]["type"] == "aws"
    head = doc["available_node_types"][doc["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # trials go to the GPU workers
    gpu = doc["available_node_types"]["gpu_worker"]
    assert (gpu["min_workers"], gpu["max_workers"]) == (0, doc["max_workers"])
    assert gpu["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert gpu["node_config"]["InstanceType"].startswith(("g5.", "g6."))
    assert any("pip install" in c and "/home/ray/imbtrain" in c for c in doc["setup_commands"])
    text = CLUSTER.read_text()
    for secret in ("aws_access_key_id", "aws_secret_access_key", "AKIA", "ssh_private_key:"):
        assert secret not in text
    assert "0.0.0.0" not in text  # dashboard and MLflow stay on 127.0.0.1


def test_wrong_type_fails_with_the_schema_message(tmp_path):
    path = copy_with(tmp_path, lambda d: d.update(max_workers="many"))
    assert check_cluster(path) == [f"{path}: max_workers: 'many' is not of type 'integer'"]


def test_unknown_keys_fail_with_the_schema_message(tmp_path):
    def change(doc):
        doc["gpus"] = 1
        doc["available_node_types"]["gpu_worker"]["resources"] = {"GPU": 0.5}

    path = copy_with(tmp_path, change)
    assert check_cluster(path) == [
        f"{path}: (top level): Additional properties are not allowed ('gpus' was unexpected)",
        f"{path}: available_node_types.gpu_worker.resources.GPU: 0.5 is not of type 'integer'",
    ]
    path = copy_with(tmp_path, lambda d: d["docker"].update(gpus="all"))
    assert check_cluster(path) == [
        f"{path}: docker: Additional properties are not allowed ('gpus' was unexpected)"]


def test_yaml_errors_and_cross_field_rules(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster_name: x\nprovider:\n  type: aws\n   region: a: b\n")
    [problem] = check_cluster(bad)
    assert problem.startswith(f"{bad}: line 4, column ")
    path = copy_with(tmp_path, lambda d: d.update(head_node_type="cpu_head"))
    assert check_cluster(path) == [f"{path}: head_node_type: 'cpu_head' is not one of "
                                   "available_node_types (head, gpu_worker)"]
    path = copy_with(tmp_path, lambda d: d["available_node_types"]["gpu_worker"].update(
        min_workers=5))
    assert check_cluster(path) == [f"{path}: max_workers: 4 is smaller than the sum of the "
                                   "node types' min_workers (5)"]
    assert check_cluster(tmp_path / "none.yaml") == [f"{tmp_path / 'none.yaml'}: no such file"]
    assert key_path(["setup_commands", 0]) == "setup_commands[0]"


def test_check_cluster_command(tmp_path, capsys):
    from imbtrain.cli import main

    assert main(["check-cluster", str(CLUSTER)]) == 0
    assert capsys.readouterr().out.strip() == f"{CLUSTER}: ok"
    path = copy_with(tmp_path, lambda d: d.update(max_workers="many"))
    assert main(["check-cluster", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {path}: max_workers: 'many' is not of type 'integer'")


def test_cluster_docs_bind_servers_to_localhost():
    text = (ROOT / "docs" / "cluster.md").read_text()
    assert "0.0.0.0" not in text and "mlflow server --host 127.0.0.1" in text
