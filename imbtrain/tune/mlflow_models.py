"""imbtrain's models in MLflow: a model folder as an MLflow pyfunc model, the run of
`imbtrain train --mlflow-uri`, and registration in the model registry.

A model folder (`imbtrain.saved`) is logged with `mlflow.pyfunc.log_model`: the folder is
the model's artifact `model` (`artifacts/model/` inside the MLflow model), and
`ImbtrainPyfunc` (a `PythonModel`) loads it with `imbtrain.load_model`, so an MLflow
model and `imbtrain predict` give the same predictions:

    import mlflow
    model = mlflow.pyfunc.load_model("models:/fraud/1")
    model.predict(new_rows)   # a DataFrame: one probability column a class, `predicted`

Its signature: tables take their feature columns (numbers of any numeric type, categories
as string, booleans as boolean; each optional to MLflow, the model itself names a missing
one; the label and the training file's other columns may come along), image models a uint8
tensor (-1, C, H, W) at the model's size, vector models a float32 tensor (-1, D); the output
is one double column a class (named by the class) and `predicted`, the class name. Its input
example is made from the model itself (train medians and first categories, a mean-colour
image): no training row leaves the machine. Its requirements pin imbtrain's own
dependencies; loading it needs imbtrain installed.

`imbtrain train --mlflow-uri URI` logs one run in the experiment `--experiment` (default
`train`): params are the config keys that differ from their defaults plus dataset, model,
method, train_ratio and seed; metrics are every epoch's (per-class accuracies left out: they
go to the table `per_class.json`); the full config is the artifact `config.yaml` (with
run.yaml, metrics.json and history.parquet); the model folder is the run's MLflow model
`model`, and `--register NAME` registers it as a new version of NAME. Tags:
`imbtrain.run_kind=train`, `imbtrain.version`, `imbtrain.git_commit` (from a checkout),
and the dataset, model, method, train ratio and seed.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from imbtrain.tune.mlflow_curate import (
    ALWAYS_PARAMS,
    PER_CLASS_FILE,
    non_default_params,
    per_class_table,
    split_class_metrics,
)

MODEL_ARTIFACT = "model"  # the model folder inside the MLflow model
TRAIN_EXPERIMENT = "train"
RUN_ARTIFACTS = ("config.yaml", "run.yaml", "metrics.json", "history.parquet")
REQUIREMENTS = ("torch", "torchvision", "numpy", "pandas", "pyarrow", "pyyaml", "pillow",
                "scikit-learn", "timm", "xgboost-cpu", "rtdl_num_embeddings",
                "rtdl_revisiting_models")


# ================================================================ the pyfunc model


class ImbtrainPyfunc(mlflow.pyfunc.PythonModel):
    """An imbtrain model folder as an MLflow pyfunc model (`imbtrain.load_model` inside)."""

    # The signature checks the inputs; MLflow's type-hint checks would not fit a model that
    # takes a DataFrame or an image tensor by its kind.
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        from imbtrain.saved import load_model

        self.model = load_model(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        """A DataFrame: one probability column a class (label order), `predicted`."""
        from imbtrain.saved import ID_COLUMN

        if isinstance(model_input, dict):  # a tensor input may come as {name: array}
            model_input = next(iter(model_input.values()))
        return self.model.predictions(model_input).drop(columns=[ID_COLUMN])


# The model's code, logged with it ("models from code": nothing is pickled); loading the
# model runs it, and it needs imbtrain installed.
MODEL_CODE = """\
from mlflow.models import set_model

from imbtrain.tune.mlflow_models import ImbtrainPyfunc

set_model(ImbtrainPyfunc())
"""


def model_signature(model):
    """The signature of a SavedModel: its inputs and its output columns."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    spec = model.input_spec
    if model.kind == "table":
        t = model.transform
        # Numbers of any numeric type (MLflow refuses int64 for double), missing allowed;
        # the model converts them as training did.
        cols = [ColSpec(AnyType(), n, required=False) for n in t.numeric]
        cols += [ColSpec("boolean" if n in t.booleans else "string", n, required=False)
                 for n in t.categorical]
        inputs = Schema(cols)
    elif model.kind == "image":
        inputs = Schema([TensorSpec(np.dtype(np.uint8), (-1, *spec["shape"]))])
    else:
        inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, *spec["shape"]))])
    outputs = Schema([ColSpec("double", c) for c in model.probability_columns()]
                     + [ColSpec("string", "predicted")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(model):
    """A made-up input of the model's kind (no training data): see the module docstring."""
    spec = model.input_spec
    if model.kind == "table":
        return pd.DataFrame([model.transform.example_row()])
    if model.kind == "image":
        c, h, w = spec["shape"]
        mean = np.round(np.array(spec["mean"]) * 255).clip(0, 255).astype(np.uint8)
        return np.broadcast_to(mean.reshape(1, c, 1, 1), (1, c, h, w)).copy()
    return np.zeros((1, *spec["shape"]), dtype=np.float32)


def requirements() -> list[str]:
    """pip requirements of a logged model: imbtrain's dependencies at their versions here."""
    from importlib import metadata

    out = []
    for name in REQUIREMENTS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{name}=={metadata.version(name)}")
    return out


@contextlib.contextmanager
def _fluent(tracking_uri: str) -> Iterator[None]:
    """MLflow's fluent API on `tracking_uri` for a moment (`log_model` has no client form),
    the process's own tracking URI (and its environment variable) put back afterwards."""
    import mlflow.tracking._tracking_service.utils as tracking

    before, env = tracking._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


def log_model_folder(tracking_uri: str, run_id: str, folder: str | Path, name: str = "model",
                     register: str | None = None, tags: Mapping[str, str] | None = None,
                     alias: str | None = None):
    """Log a model folder as the MLflow model `name` of run `run_id` (its status kept), and
    with `register` as a new version of that registered model (with `tags` and `alias`).
    Returns the ModelInfo (its `registered_model_version` when registered)."""
    import logging

    from imbtrain.saved import load_model

    saved = load_model(folder)
    client = MlflowClient(tracking_uri=tracking_uri)
    status = client.get_run(run_id).info.status
    # MLflow prints a line for every model it registers and a bar for every download while it
    # validates the input example; the command says what happened once, in its own line.
    quiet = logging.getLogger("mlflow")
    level, quiet.level = quiet.level, logging.WARNING
    chatter = io.StringIO()
    try:
        with tempfile.TemporaryDirectory() as d, _fluent(tracking_uri), \
                contextlib.redirect_stderr(chatter), contextlib.redirect_stdout(chatter), \
                mlflow.start_run(run_id=run_id):
            code = Path(d) / "imbtrain_model.py"
            code.write_text(MODEL_CODE)
            # MLflow keeps an artifact folder under its own name: a copy named `model` puts
            # the model folder at `artifacts/model` whatever the folder was called.
            copy = shutil.copytree(folder, Path(d) / MODEL_ARTIFACT)
            info = mlflow.pyfunc.log_model(
                name=name, python_model=str(code),
                artifacts={MODEL_ARTIFACT: str(copy)}, signature=model_signature(saved),
                input_example=input_example(saved), pip_requirements=requirements(),
                registered_model_name=register, tags=dict(tags or {}))
            mlflow.end_run(status=status if status != "RUNNING" else "FINISHED")
    finally:
        quiet.level = level
    if register:
        version = str(info.registered_model_version)
        for key, value in (tags or {}).items():
            client.set_model_version_tag(register, version, key, str(value))
        if alias:
            client.set_registered_model_alias(register, alias, version)
    return info


# ================================================================ imbtrain train


def check_store(tracking_uri: str) -> str:
    """The store's normalised URI, or a UserError (before any training)."""
    from imbtrain.tune.mlflow_log import check_tracking_uri, normalize_tracking_uri

    uri = normalize_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    return uri


def log_train_run(tracking_uri: str, out: Path, cfg, result, class_names: list[str],
                  experiment: str = TRAIN_EXPERIMENT, register: str | None = None):
    """One MLflow run of `imbtrain train` (module docstring) from its finished folder `out`;
    returns (run id, the logged model's ModelInfo)."""
    import math
    import time

    from imbtrain.tune.mlflow_log import _ensure_experiment
    from imbtrain.tune.mlflow_log import result_metrics as numeric
    from imbtrain.version import provenance_tags

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = _ensure_experiment(client, experiment, tracking_uri)
    config = cfg.to_dict()
    tags = {"imbtrain.run_kind": "train", **provenance_tags(),
            **{f"imbtrain.{k}": str(config[k]) for k in ALWAYS_PARAMS}}
    run = client.create_run(exp, run_name=out.name, tags=tags)
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in non_default_params(config).items()]
    client.log_batch(run_id, params=params)
    now = int(time.time() * 1000)
    items = []
    for row in result.history:
        plain, _ = split_class_metrics(numeric(row))
        step = int(row.get("epoch", 0))
        items += [Metric(k, v, now, step) for k, v in plain.items() if not math.isnan(v)]
    final, _ = split_class_metrics(numeric(result.metrics))
    last = int(result.metrics.get("epoch", len(result.history)))
    seen = {(m.key, m.step) for m in items}
    items += [Metric(k, v, now, last) for k, v in final.items()
              if (k, last) not in seen and not math.isnan(v)]
    for i in range(0, len(items), 900):
        client.log_batch(run_id, metrics=items[i:i + 900])
    client.log_table(run_id, per_class_table(result.metrics, class_names, result.train_counts),
                     PER_CLASS_FILE)
    for name in RUN_ARTIFACTS:  # the weights travel in the model, not twice
        if (out / name).is_file():
            client.log_artifact(run_id, str(out / name))
    client.set_terminated(run_id, "FINISHED")
    return run_id, log_model_folder(tracking_uri, run_id, out, name="model", register=register)
