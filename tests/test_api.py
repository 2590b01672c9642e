"""The public Python API (`imbtrain.__all__`): every name resolves, `import imbtrain` stays
light, and the README's two examples (a run and a study from Python) run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import imbtrain

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("ray", "mlflow", "torchvision", "timm", "matplotlib", "torch", "imbtrain.tune")


def test_every_public_name_resolves():
    assert {"TrainConfig", "train", "load_space", "run_study", "__version__"} <= set(
        imbtrain.__all__)
    for name in imbtrain.__all__:
        assert getattr(imbtrain, name) is not None, name
    from imbtrain.config import TrainConfig
    from imbtrain.study.space import load_space
    from imbtrain.tune.runner import run_study

    assert imbtrain.TrainConfig is TrainConfig and imbtrain.load_space is load_space
    assert imbtrain.run_study is run_study
    assert set(imbtrain.__all__) <= set(dir(imbtrain))
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        imbtrain.trian  # noqa: B018


def test_import_imbtrain_is_light():
    probe = ("import json, sys, imbtrain\n"
             "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)] == []


def test_version_is_the_packages():
    from importlib.metadata import version

    assert imbtrain.__version__ == version("imbtrain")


def test_train_from_python():
    """README, "From Python": one run."""
    from imbtrain import TrainConfig, train

    result = train(TrainConfig(dataset="digits", model="mlp", epochs=1, train_ratio=0.1),
                   log=lambda line: None)
    assert 0.0 <= result.metrics["test_bal_acc"] <= 1.0
    assert len(result.train_counts) == 10


def test_run_study_takes_a_space_file(ray_session, tmp_path):
    """README, "From Python": a study (a StudySpec, a file, or a name of search_spaces/),
    here a one-trial space file."""
    from imbtrain import run_study

    space = tmp_path / "tiny.yaml"
    space.write_text("base: {dataset: digits, model: mlp, epochs: 1}\n"
                     "knobs: {batch_size: {grid: [64]}}\n")
    result = run_study(str(space), storage=str(tmp_path / "runs"), mlflow_uri=None)
    assert result.path.name == "tiny" and len(result.results) == 1
    assert result.best.batch_size == 64 and result.mlflow_parent_run_id is None
