"""The one `Registry` class, every registry of imbtrain filled by its home package, and
plug-ins: a new dataset, method and augmentation are one decorated object each in one new
module.

The plug-in module is written by the test, outside the package. Importing it is the only
step: `TrainConfig` accepts its names, `imbtrain keys` lists them, training uses them, and the
registry-parametrised tests of tests/data/test_data.py, tests/methods/test_methods.py and
tests/augment/test_core.py run on them (a pytest run with the module loaded as a plugin).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imbtrain.cli import main
from imbtrain.config import ConfigError, TrainConfig
from imbtrain.errors import UserError
from imbtrain.registry import AUGMENTATIONS, DATASETS, METHODS, MODELS, REGISTRIES, Registry
from imbtrain.train import train


def colours() -> Registry:
    reg = Registry("colour")
    reg.register("teal", hex="#008080")(lambda: "teal")
    reg.register("tan")(lambda: "tan")
    return reg


def test_register_get_names_meta():
    reg = colours()
    assert reg.names() == ["teal", "tan"] and list(reg) == ["teal", "tan"] and len(reg) == 2
    assert reg.get("teal")() == "teal" and reg["tan"]() == "tan"
    assert reg.meta("teal") == {"hex": "#008080"} and reg.meta("tan") == {}
    assert "teal" in reg and "navy" not in reg
    assert reg.items()[0][0] == "teal"


def test_a_name_registered_twice_is_refused():
    reg = colours()
    with pytest.raises(ValueError, match="colour 'teal' is registered twice"):
        reg.register("teal")(lambda: "again")


def test_an_unknown_name_is_one_line_with_the_nearest_and_all_names():
    reg = colours()
    with pytest.raises(UserError) as err:
        reg.get("tael")
    assert str(err.value) == "unknown colour 'tael' (did you mean 'teal'?); known: tan, teal"
    assert reg.unknown("purple") == "unknown colour 'purple'; known: tan, teal"


def test_temporary_registers_inside_the_block_only():
    reg = colours()
    with reg.temporary("navy", lambda: "navy", hex="#000080") as navy:
        assert reg.get("navy") is navy and reg.meta("navy") == {"hex": "#000080"}
    assert "navy" not in reg and reg.names() == ["teal", "tan"]


def test_the_first_lookup_imports_the_home_module(tmp_path, monkeypatch):
    (tmp_path / "shapes_home.py").write_text(
        "from test_registry_shapes import SHAPES\n"
        "SHAPES.register('circle', sides=0)(lambda: 'circle')\n")
    (tmp_path / "test_registry_shapes.py").write_text(
        "from imbtrain.registry import Registry\n"
        "SHAPES = Registry('shape', home='shapes_home')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from test_registry_shapes import SHAPES

    assert SHAPES._items == {}  # nothing imported yet
    assert SHAPES.names() == ["circle"] and SHAPES.meta("circle") == {"sides": 0}


def test_a_home_that_fails_to_import_is_tried_again():
    reg = Registry("thing", home="imbtrain_no_such_module")
    for _ in range(2):
        with pytest.raises(ModuleNotFoundError):
            reg.names()


def test_families_resolve_names_by_pattern():
    families = Registry("size family")

    @families.register("px<n>", unit="pixel")
    def pixels(name):
        if not name.startswith("px"):
            return None
        if not name[2:].isdigit():
            raise UserError(f"size {name!r}: px needs a number")
        return int(name[2:])

    sizes = Registry("size", families=families)
    sizes.register("small")(8)
    assert sizes.get("small") == 8 and sizes.get("px32") == 32
    assert sizes.meta("px32") == {"unit": "pixel"} and sizes.meta("small") == {}
    assert sizes.known() == ["small", "px<n>"] and "px32" not in sizes  # `in`: plain names
    with pytest.raises(UserError, match="px needs a number"):
        sizes.get("pxL")
    with pytest.raises(UserError, match=r"^unknown size 'large'; known: small, px<n>$"):
        sizes.get("large")


def test_the_model_registry_speaks_as_the_models_always_did():
    assert MODELS.unknown("resnet33").startswith("model 'resnet33' is unknown; known: cnn, ")
    assert MODELS.unknown("resnet33").endswith("timm/<name>; did you mean 'resnet32'?")


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_is_filled_by_its_home(kind):
    reg = REGISTRIES[kind]
    if any(importlib.util.find_spec(m.rsplit(".", 1)[0]) is None for m in reg.home):
        pytest.skip(f"{reg.home} is not part of this package")
    assert reg.home and len(reg) > 0
    for name in reg:
        assert callable(reg.get(name)), (kind, name)


# ================================================================ plug-ins

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
         "tests/methods/test_methods.py", "tests/augment/test_core.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    passed = [line for line in run.stdout.splitlines() if line.startswith("PASSED")]
    expected = [
        "data/test_data.py::test_every_embedded_dataset_builds[demo_blobs]",
        "methods/test_methods.py::test_every_method_is_registered_under_its_name[demo_half_loss]",
        "methods/test_methods.py::test_every_method_trains_an_epoch_through_the_loop[demo_half_"
        "loss]",
        "augment/test_core.py::test_every_policy_returns_float_images[demo_dim-(1, 28, 28)]",
        "augment/test_core.py::test_each_image_gets_its_own_draw[demo_dim-(3, 32, 32)]"]
    for test in expected:
        assert any(test in line for line in passed), (test, passed)
