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


def test_run_study_takes_a_name_or_a_file_and_checks_it_before_ray():
    """README, "From Python": `run_study` takes a StudySpec, a search-space file or a name
    of search_spaces/ (tests/e2e/test_study.py runs one from a file); a wrong one fails before
    Ray starts."""
    import ray

    from imbtrain import UserError, run_study

    with pytest.raises(UserError, match=r"unknown search space 'batch_sise' \(did you mean "
                                        r"'batch_size'\?\)"):
        run_study("batch_sise", mlflow_uri=None)
    with pytest.raises(UserError, match="nowhere/x.yaml: no such search-space file"):
        run_study("nowhere/x.yaml", mlflow_uri=None)
    assert not ray.is_initialized()
