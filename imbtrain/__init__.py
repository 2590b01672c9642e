"""imbtrain: neural-network training under class imbalance, and Ray Tune studies of it.

Implements "Simplifying Neural Network Training Under Class Imbalance" (NeurIPS 2023):
the tuned training routine, its imbalance-aware knobs (SAM-A, class-conditional label
smoothing, Joint-SSL) and the specialised baselines it compares with.

The public API, importable from here (each name is loaded on first use, so `import imbtrain`
stays light: no torch, Ray or MLflow until a name needs them):

    from imbtrain import TrainConfig, train
    result = train(TrainConfig(dataset="digits", model="mlp", epochs=2, train_ratio=0.1))
    result.metrics["test_bal_acc"]

    from imbtrain import load_space, run_study
    study = run_study(load_space("batch_size").with_smoke(), mlflow_uri=None)
    study.results, study.best          # results.parquet as a DataFrame, the best TrainConfig

    from imbtrain import load_model
    model = load_model("runs/one")     # the folder `imbtrain train --out runs/one` wrote
    model.predict("digits/")           # class names of the images in a folder (or rows)
    model.predictions(df)              # a DataFrame: id, a probability a class, predicted

    >>> import imbtrain
    >>> imbtrain.__version__
    '0.1.0'
    >>> imbtrain.load_space("batch_size").num_trials()
    63
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from imbtrain.version import __version__

# name -> the module it lives in (and `train`, a property of the package: `_Package`)
_LAZY = {
    "TrainConfig": "imbtrain.config",
    "load_config": "imbtrain.config",
    "TrainResult": "imbtrain.train",
    "UserError": "imbtrain.errors",
    "load_space": "imbtrain.study.space",
    "StudySpec": "imbtrain.study.space",
    "read_results": "imbtrain.study.results",
    "StudyResult": "imbtrain.study.results",
    "export": "imbtrain.study.export",
    "run_study": "imbtrain.tune.runner",
    "load_model": "imbtrain.saved",
    "SavedModel": "imbtrain.saved",
    "write_model_folder": "imbtrain.saved",
}

__all__ = [
    "SavedModel", "StudyResult", "StudySpec", "TrainConfig", "TrainResult", "UserError",
    "__version__", "export", "load_config", "load_model", "load_space", "read_results",
    "run_study", "train", "write_model_folder",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imbtrain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"train"})


class _Package(types.ModuleType):
    """imbtrain itself. `imbtrain.train` is the training function even once the module of
    the same name is imported (the import system then sets the submodule as an attribute
    of the package; the module stays `sys.modules["imbtrain.train"]`, where pickle and
    `importlib.import_module` find it)."""

    @property
    def train(self):
        return self.__dict__.get("_train") or importlib.import_module("imbtrain.train").train

    @train.setter
    def train(self, value) -> None:
        if not isinstance(value, types.ModuleType):  # a replacement, e.g. in a test
            self.__dict__["_train"] = value


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from imbtrain.config import TrainConfig, load_config
    from imbtrain.errors import UserError
    from imbtrain.saved import SavedModel, load_model, write_model_folder
    from imbtrain.study.export import export
    from imbtrain.study.results import StudyResult, read_results
    from imbtrain.study.space import StudySpec, load_space
    from imbtrain.train import TrainResult, train
    from imbtrain.tune.runner import run_study
