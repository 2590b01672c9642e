"""Security defaults, checked on the source and the docs (RELIABILITY.md, "Security"):

- every documented `mlflow ui` / `mlflow server` command binds to 127.0.0.1;
- every `torch.load` passes `weights_only=True`, and the study's checkpoints load that way;
- YAML only through safe loading; no pickle of a user's file but Ray's own tuner.pkl on
  `--resume` (and CIFAR's pickled batches, through an unpickler that refuses every global
  but numpy's array constructors: tests/reliability/test_inputs.py::cifar_crafted_pickle);
- `Tuner.restore` only on the user's own study folder, and the --resume help says so;
- Ray's token authentication is never turned off outside tests/.
No credentials in cluster.yaml: tests/tune/test_cluster.py::test_cluster_file_choices.
"""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted([*ROOT.glob("imbtrain/**/*.py"), *ROOT.glob("studies/*.py"),
               *ROOT.glob("benchmarks/*.py")])
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), ROOT / "cluster.yaml",
               ROOT / "Makefile", *ROOT.glob("studies/*.py"), *ROOT.glob("imbtrain/**/*.py")])


def calls(path: Path):
    """(dotted name, ast.Call) of every call in a Python file, e.g. ("torch.load", node)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


# ================================================================ MLflow bound to 127.0.0.1


def mlflow_commands(text: str) -> list[str]:
    """`mlflow ui|server` and its options (continuation lines joined), per occurrence;
    a bare name in prose ("run `mlflow server` on ...") has no options and is skipped."""
    text = text.replace("\\\n", " ")
    found = re.findall(r"mlflow (?:ui|server)([^\n`\"')]*)", text)
    return [opts for opts in found if opts.strip().startswith("-")]


def test_every_documented_mlflow_command_binds_to_localhost():
    commands = {path: mlflow_commands(path.read_text()) for path in DOCS if path.is_file()}
    assert sum(map(len, commands.values())) >= 5  # README, docs/cluster.md, cluster.yaml, ...
    for path, found in commands.items():
        for opts in found:
            assert re.search(r"(^|\s)--host[ =]127\.0\.0\.1(\s|$)", opts), (path, opts)
        assert "0.0.0.0" not in path.read_text(), path


# ================================================================ weights, YAML, pickle


def test_every_torch_load_is_weights_only():
    """Every `torch.load` passes weights_only=True; the loaders of pretrained weights, the M2m
    teacher and trial checkpoints call it directly or through `imbtrain.files.read_torch`
    (one such torch.load, checked here with the others)."""
    seen = 0
    for path in CODE:
        for name, node in calls(path):
            if name in ("torch.load", "read_torch"):
                seen += path.name != "files.py"
            if name == "torch.load":
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("weights_only"), ast.Constant) and \
                    kw["weights_only"].value is True, f"{path}:{node.lineno}"
    assert seen >= 3  # pretrained weights, the M2m teacher, trial checkpoints


def test_study_checkpoints_load_with_weights_only():
    from imbtrain.config import TrainConfig
    from imbtrain.train import train
    from imbtrain.tune.trainable import _numpy_rng_back, _numpy_rng_safe

    torch.set_num_threads(1)
    cfg = TrainConfig(dataset="synthetic", synthetic_shape="1x8x8", synthetic_classes=3,
                      synthetic_samples=20, model="cnn", epochs=2, batch_size=16)
    states = []
    full = train(cfg, report=lambda m, s: states.append(s), log=lambda s: None)
    buf = io.BytesIO()
    torch.save(_numpy_rng_safe(states[0]), buf)  # what the trainable's checkpoint holds
    buf.seek(0)
    state = _numpy_rng_back(torch.load(buf, map_location="cpu", weights_only=True))
    resumed = train(cfg, resume=state, log=lambda s: None)
    assert resumed.metrics["test_acc"] == full.metrics["test_acc"]
    assert resumed.metrics["train_loss"] == full.metrics["train_loss"]


UNSAFE_YAML = {"yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all",
               "yaml.full_load_all"}


def test_yaml_is_loaded_safely_and_nothing_user_given_is_unpickled():
    for path in CODE:
        text = path.read_text()
        for bad in ("yaml.Loader", "yaml.UnsafeLoader", "yaml.FullLoader"):
            assert bad not in text, f"{path}: {bad}"
        for name, node in calls(path):
            where = f"{path}:{node.lineno}"
            assert name not in UNSAFE_YAML, where
            if name == "yaml.load":
                loader = {k.arg: ast.unparse(k.value) for k in node.keywords}.get("Loader")
                assert loader in ("yaml.SafeLoader", "yaml.CSafeLoader"), where
            # pickle: only CIFAR's restricted unpickler (imbtrain/data/vision.py)
            if name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load",
                        "cloudpickle.load", "cloudpickle.loads", "joblib.load"):
                raise AssertionError(f"{where}: {name} of a file")
            if name.endswith("Tuner.restore"):
                assert path.name == "runner.py", where


def test_restored_studies_are_the_users_own():
    from imbtrain.cli import build_parser

    study = build_parser()._subparsers._group_actions[0].choices["study"]
    resume = next(a for a in study._actions if "--resume" in a.option_strings)
    assert "resume only studies in storage you own" in resume.help
    text = (ROOT / "RELIABILITY.md").read_text()
    assert "Tuner.restore" in text and "tuner.pkl" in text


# ================================================================ Ray token authentication


def test_ray_auth_is_only_disabled_in_tests():
    # Tests set RAY_AUTH_MODE=disabled for their local clusters, and only they; nothing a user
    # runs (the package, study scripts, benchmarks, make, the cluster file, the docs) may.
    for path in [*CODE, ROOT / "Makefile", ROOT / "cluster.yaml", *DOCS]:
        assert "RAY_AUTH_MODE" not in path.read_text(), path
