"""A new dataset, method and augmentation are one decorated object each in one new module.

The module below is written by the test, outside the package. Importing it is the only step:
`TrainConfig` accepts its names, `imbtrain keys` lists them, training uses them, and the
registry-parametrised tests of tests/data/test_data.py, tests/methods/test_weights.py and
tests/augment/test_core.py run on them (a pytest run with the module loaded as a plugin).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imbtrain.cli import main
from imbtrain.config import ConfigError, TrainConfig
from imbtrain.registry import AUGMENTATIONS, DATASETS, METHODS
from imbtrain.train import train

ROOT = Path(__file__).resolve().parent.parent
MODULE = "imbtrain_demo_plugins"
PLUGINS = '''"""Three throw-away plug-ins: a dataset, a method, an augmentation."""

import torch
from torchvision.transforms import v2

from imbtrain.augment.flip_crop import FlipCrop
from imbtrain.data import RawData
from imbtrain.methods import Method, register_method
from imbtrain.registry import AUGMENTATIONS, DATASETS


@DATASETS.register("demo_blobs")
def demo_blobs(cfg) -> RawData:
    """Two Gaussian blobs in 3-D, 30 train and 10 test points a class."""
    g = torch.Generator().manual_seed(0)

    def pool(n):
        y = torch.arange(2).repeat_interleave(n)
        return torch.randn(2 * n, 3, generator=g) + 3.0 * y[:, None], y

    (train_x, train_y), (test_x, test_y) = pool(30), pool(10)
    return RawData(train_x, train_y, test_x, test_y, 2, ["left", "right"])


@register_method("demo_half_loss")
class HalfLoss(Method):
    """Cross-entropy, halved."""

    def loss(self, logits, q):
        return 0.5 * super().loss(logits, q)


def dim(x):
    """Each image times its own random factor in [0.5, 1]."""
    factor = torch.empty(len(x), 1, 1, 1, device=x.device).uniform_(0.5, 1.0)
    return (x * factor).to(torch.uint8)


@AUGMENTATIONS.register("demo_dim")
def demo_dim(height, width, *, batched=True):
    """Flip/crop, then each image dimmed by a random factor."""
    return v2.Compose([FlipCrop(height, width), dim])
'''
NAMES = {"dataset": "demo_blobs", "method": "demo_half_loss", "augment": "demo_dim"}


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    (tmp_path / f"{MODULE}.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(MODULE)
    yield tmp_path
    for registry, name in ((DATASETS, "demo_blobs"), (METHODS, "demo_half_loss"),
                           (AUGMENTATIONS, "demo_dim")):
        registry.unregister(name)
    sys.modules.pop(module.__name__)


def test_the_config_accepts_the_new_names_and_training_uses_them(plugins):
    with pytest.raises(ConfigError, match="demo_blobs"):  # the error lists the new name...
        TrainConfig(dataset="demo_blob")
    cfg = TrainConfig(dataset="demo_blobs", method="demo_half_loss", model="mlp", epochs=1,
                      batch_size=8, val_fraction=0.5)  # ...and the config takes it
    TrainConfig(dataset="digits", augment="demo_dim")
    torch.manual_seed(0)
    result = train(cfg, log=lambda line: None)
    assert result.train_counts == [30, 30] and result.history[0]["epoch"] == 1


def test_imbtrain_keys_lists_the_new_names(plugins, capsys):
    assert main(["keys"]) == 0
    lines = {line.split("=")[0]: line for line in capsys.readouterr().out.splitlines()
             if "=" in line and not line.startswith(" ")}
    for key, name in NAMES.items():
        assert f"|{name})" in lines[key], lines[key]


def test_the_registry_parametrised_tests_run_on_the_new_plug_ins(plugins):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", MODULE, "-p", "no:cacheprovider",
         "-k", "demo", "-o", "addopts=", "-rA", "tests/data/test_data.py",
         "tests/methods/test_weights.py", "tests/augment/test_core.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    passed = [line for line in run.stdout.splitlines() if line.startswith("PASSED")]
    expected = [
        "data/test_data.py::test_every_embedded_dataset_builds[demo_blobs]",
        "methods/test_weights.py::test_every_method_is_registered_under_its_name[demo_half_loss]",
        "methods/test_weights.py::test_every_method_trains_an_epoch_through_the_loop[demo_half_"
        "loss]",
        "augment/test_core.py::test_every_policy_returns_float_images[demo_dim-(1, 28, 28)]",
        "augment/test_core.py::test_each_image_gets_its_own_draw[demo_dim-(3, 32, 32)]"]
    for test in expected:
        assert any(test in line for line in passed), (test, passed)
