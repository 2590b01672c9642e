"""`cluster.yaml`, `cluster-local.yaml`, `docker/Dockerfile` and their offline check
(`imbtrain check-cluster`): the schema inside Ray, then the placeholders left, the study
storage, the MLflow server and what the workers install when they boot."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

from imbtrain.tune.cluster import (
    PLACEHOLDER_WORD,
    STORAGE_SCHEMES,
    check_cluster,
    check_cluster_file,
    key_path,
)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster.yaml"
LOCAL = ROOT / "cluster-local.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
# What a user puts in for the placeholders of cluster.yaml (its only ones).
FILLED = {"REPLACE_IMAGE": "123456789012.dkr.ecr.us-west-2.amazonaws.com/imbtrain:0.1.0",
          "REPLACE_BUCKET": "my-bucket", "ami-REPLACE": "ami-0123456789abcdef0"}


def filled_in(tmp_path, text: str | None = None) -> Path:
    """cluster.yaml with its placeholders filled in, comments and all."""
    path = tmp_path / "filled.yaml"
    path.write_text(PLACEHOLDER_WORD.sub(lambda m: FILLED.get(m.group(0), m.group(0)),
                                         CLUSTER.read_text() if text is None else text))
    return path


def copy_with(tmp_path, change) -> Path:
    doc = yaml.safe_load(filled_in(tmp_path).read_text())
    change(doc)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_shipped_cluster_file_is_valid_but_for_its_placeholders(tmp_path):
    lines = CLUSTER.read_text().splitlines()
    where = {word: i + 1 for i, line in enumerate(lines) for word in FILLED
             if word in line and "#" not in line.split(word)[0]}  # not in a comment
    assert check_cluster(CLUSTER) == [
        f"{CLUSTER}: line {where['REPLACE_IMAGE']}: docker.image: replace the placeholder "
        "REPLACE_IMAGE",
        f"{CLUSTER}: line {where['REPLACE_BUCKET']}: docker.run_options[1]: replace the "
        "placeholder REPLACE_BUCKET",
        f"{CLUSTER}: line {where['ami-REPLACE']}: available_node_types.head.node_config."
        "ImageId: replace the placeholder ami-REPLACE"]
    report = check_cluster_file(filled_in(tmp_path))
    assert (report.errors, report.warnings) == ([], [])


def test_cluster_file_choices():
    doc = yaml.safe_load(CLUSTER.read_text())
    # The image built from docker/Dockerfile, on the rayproject/ray image of the installed
    # Ray (Python 3.11, CUDA; not ray-ml): nothing is installed when a node boots.
    assert doc["docker"]["image"] == "REPLACE_IMAGE"
    assert dockerfile_base() == f"rayproject/ray:{version('ray')}-py311-gpu"
    assert doc["setup_commands"] == doc["worker_setup_commands"] == []
    assert doc["docker"]["worker_run_options"] == ["--gpus all"]
    assert doc["provider"]["type"] == "aws"
    head = doc["available_node_types"][doc["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # trials go to the GPU workers
    gpu = doc["available_node_types"]["gpu_worker"]
    assert (gpu["min_workers"], gpu["max_workers"]) == (0, doc["max_workers"])
    assert gpu["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert gpu["node_config"]["InstanceType"].startswith(("g5.", "g6."))
    # S3 storage by default, the bucket named once; MLflow on the head, artifacts to S3.
    assert "--env IMBTRAIN_STORAGE=s3://REPLACE_BUCKET/imbtrain/runs" in doc["docker"][
        "run_options"]
    assert CLUSTER.read_text().count("REPLACE_BUCKET") == 1
    [server] = [c for c in doc["head_start_ray_commands"] if "mlflow server" in c]
    assert "--host 127.0.0.1" in server
    assert '--artifacts-destination "${IMBTRAIN_STORAGE%/*}/mlflow"' in server
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

    assert main(["check-cluster", str(CLUSTER)]) == 2  # its placeholders, each with its line
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"error: {e}" for e in check_cluster(CLUSTER)]
    assert len(captured.err.splitlines()) == 3
    assert all(re.match(rf"error: {CLUSTER}: line \d+: \S+: replace the placeholder ", line)
               for line in captured.err.splitlines())
    filled = filled_in(tmp_path)
    assert main(["check-cluster", str(filled)]) == 0
    assert capsys.readouterr().out.strip() == f"{filled}: ok"
    path = copy_with(tmp_path, lambda d: d.update(max_workers="many"))
    assert main(["check-cluster", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {path}: max_workers: 'many' is not of type 'integer'")


def test_cluster_docs_bind_servers_to_localhost():
    text = (ROOT / "docs" / "cluster.md").read_text()
    assert "0.0.0.0" not in text and "mlflow server --host 127.0.0.1" in text


def dockerfile_base() -> str:
    [base] = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.M)
    return base


def test_dockerfile_installs_the_pinned_dependencies():
    text = DOCKERFILE.read_text()
    pins = dict(re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s\"']*)", text))
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {re.split(r"[\[=]", d)[0]: d.split("==")[1] for d in deps if "==" in d}
    # torch and torchvision from the CUDA index, at pyproject.toml's versions; ray is the
    # base image's own; the rest comes in with `pip install` of the repository.
    assert pins == {"torch": pinned["torch"], "torchvision": pinned["torchvision"]}
    assert dockerfile_base() == f"rayproject/ray:{pinned['ray']}-py311-gpu"
    assert "--index-url" in text and "download.pytorch.org/whl/cu" in text
    assert "pip install --no-cache-dir /home/ray/imbtrain" in text
    assert '"boto3' in text  # the MLflow server's S3 artifacts
    ignored = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git", "runs", "mlflow.db"} <= set(ignored)


def test_the_local_cluster_file_passes():
    report = check_cluster_file(LOCAL)
    assert (report.errors, report.warnings) == ([], [])
    doc = yaml.safe_load(LOCAL.read_text())
    assert doc["provider"]["type"] == "fake_multinode"
    types = doc["available_node_types"]
    assert types[doc["head_node_type"]]["resources"]["CPU"] == 0  # no trials on the head
    assert types["gpu_worker"]["resources"]["GPU"] == 1
    assert "GPU" not in types["cpu_worker"]["resources"]
    assert all(t.get("min_workers", 0) == 0 for t in types.values())  # no worker at first


def test_a_study_storage_the_runner_refuses_is_an_error(tmp_path):
    def storage(uri):
        return lambda d: d["docker"]["run_options"].__setitem__(
            1, f"--env IMBTRAIN_STORAGE={uri}")

    for uri in ("ftp://host/runs", "http://host/runs"):
        path = copy_with(tmp_path, storage(uri))
        scheme = uri.split("://")[0]
        assert check_cluster(path) == [
            f"{path}: docker.run_options[1]: IMBTRAIN_STORAGE={uri}: a study storage is a "
            "local path or a URI of pyarrow.fs (s3://, gs://, gcs://, abfs://, abfss://, "
            f"hdfs://, viewfs://, file://, local://), not {scheme}://"]
    for uri in ("gs://bucket/runs", "abfs://c@acct.dfs.core.windows.net/runs"):
        report = check_cluster_file(copy_with(tmp_path, storage(uri)))
        assert (report.errors, report.warnings) == ([], [])
    path = copy_with(tmp_path, storage("/home/ray/runs"))  # a node's own disk: a warning
    report = check_cluster_file(path)
    assert report.errors == [] and report.warnings == [
        f"{path}: docker.run_options[1]: IMBTRAIN_STORAGE=/home/ray/runs is a path on each "
        "node's own disk; the trials on other nodes cannot write there unless a shared "
        "filesystem is mounted at that path on every node (or use s3://<bucket>/<prefix>)"]


def test_the_storage_schemes_are_those_pyarrow_accepts():
    import pyarrow.fs

    for scheme in ("ftp", "http", "az"):
        assert scheme not in STORAGE_SCHEMES
        try:
            pyarrow.fs.FileSystem.from_uri(f"{scheme}://host/x")
        except Exception as e:
            assert "Unrecognized filesystem type" in str(e)
    for uri in ("gs://b/x", "gcs://b/x", "abfs://c@a.dfs.core.windows.net/x",
                "file:///tmp/x", "local:///tmp/x", "s3://b/x?region=us-east-1"):
        assert uri.split("://")[0] in STORAGE_SCHEMES
        pyarrow.fs.FileSystem.from_uri(uri)  # offline: no bucket is contacted


def test_warnings_leave_the_exit_status_at_zero(tmp_path, capsys):
    from imbtrain.cli import main

    def change(doc):
        doc["head_start_ray_commands"] = doc["head_start_ray_commands"][:2]  # no MLflow
        doc["setup_commands"] = ["pip install --no-cache-dir /home/ray/imbtrain"]
        doc["docker"]["run_options"] = doc["docker"]["run_options"][:1]  # no storage

    path = copy_with(tmp_path, change)
    assert main(["check-cluster", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{path}: ok"
    assert captured.err.splitlines() == [
        f"warning: {path}: docker.run_options: no IMBTRAIN_STORAGE; every study then needs "
        "--storage of a place every node reaches (s3://<bucket>/<prefix>)",
        f"warning: {path}: head_start_ray_commands: the head starts no MLflow server; the "
        "studies then need --mlflow-uri of a server they reach (docs/cluster.md)",
        f"warning: {path}: setup_commands[0]: every worker pip-installs torch when it boots "
        "(minutes and gigabytes a node); put the image of docker/Dockerfile in docker.image "
        "instead"]


def test_placeholders_in_comments_are_not_counted(tmp_path):
    path = filled_in(tmp_path, "# REPLACE the values below\ncluster_name: x  # REPLACE me\n"
                               "provider: {type: aws, region: REPLACE_REGION}\n"
                               "setup_commands:\n  - >-\n    echo one\n    echo REPLACE_X\n")
    assert check_cluster(path)[-2:] == [
        f"{path}: line 3: provider.region: replace the placeholder REPLACE_REGION",
        f"{path}: line 7: setup_commands[0]: replace the placeholder REPLACE_X"]


def test_the_cluster_sets_the_default_storage_and_mlflow_uri(monkeypatch):
    from imbtrain.study.script import parse_args

    space = ROOT / "search_spaces" / "batch_size.yaml"
    args = parse_args("x", space, [])
    assert (args.storage, args.mlflow_uri) == ("runs", "sqlite:///mlflow.db")
    monkeypatch.setenv("IMBTRAIN_STORAGE", "s3://my-bucket/imbtrain/runs")
    monkeypatch.setenv("IMBTRAIN_MLFLOW_URI", "http://127.0.0.1:5000")
    args = parse_args("x", space, [])
    assert (args.storage, args.mlflow_uri) == ("s3://my-bucket/imbtrain/runs",
                                               "http://127.0.0.1:5000")
    assert parse_args("x", space, ["--storage", "elsewhere"]).storage == "elsewhere"


def test_cluster_local_refuses_bad_input_before_writing(tmp_path, capsys):
    from imbtrain.cli import main

    folder = tmp_path / "cl"
    assert main(["cluster-local", "stop", "--dir", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"error: no local cluster in {folder} (no readable cluster.json); start one with: "
        "imbtrain cluster-local start\n")
    missing = tmp_path / "none.yaml"
    assert main(["cluster-local", "start", "--config", str(missing), "--dir",
                 str(folder)]) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file\n"
    aws = filled_in(tmp_path)
    assert main(["cluster-local", "start", "--config", str(aws), "--dir", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"error: {aws}: provider.type must be fake_multinode for a local cluster "
        "(cluster.yaml is for `ray up`)\n")
    assert not folder.exists()
