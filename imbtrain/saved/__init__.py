"""Saved models: the model folder every run leaves, and `load_model` to apply it.

    from imbtrain import load_model
    model = load_model("runs/one")               # the --out folder of `imbtrain train`
    model.class_names                            # ['0', '1', ...] in label order
    model.predict("digits/")                     # class names: an image folder, one image,
    model.predict_proba(df)                      # (N, K) probabilities: rows of a DataFrame
    model.predictions("new.csv")                 # a DataFrame: id, one column a class, predicted

`imbtrain predict MODEL INPUT --out predictions.parquet` is `predictions(INPUT)` written to
a file. The folder's layout is in `imbtrain.saved.folder`; how new inputs are read (and
refused) in `imbtrain.saved.inputs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from imbtrain.augment.core import Augmentation
from imbtrain.config import TrainConfig, load_config
from imbtrain.data.tabular import TabularTransform
from imbtrain.errors import UserError
from imbtrain.saved.folder import (
    MODEL_FILES,
    build_network,
    load_tensors,
    read_manifest,
    write_model_folder,
)
from imbtrain.saved.inputs import (
    describe_input,
    image_array,
    image_files,
    is_table_file,
    read_images,
    table_file,
    vector_rows,
)

__all__ = ["MODEL_FILES", "ID_COLUMN", "PREDICTED_COLUMN", "SavedModel", "load_model",
           "write_model_folder"]

ID_COLUMN = "id"  # the input's file path (images) or row index from 0 (tables)
PREDICTED_COLUMN = "predicted"  # the predicted class name
EVAL_BATCH = 256


class SavedModel:
    """A trained model read from its folder: `predict`, `predict_proba`, `predictions`.

    `class_names` are in label order (the columns of `predict_proba`), `config` is the run's
    TrainConfig, `kind` what the model takes ("image", "table" or "vector"), `network` the
    torch module (XGBoost: a module around the booster), `manifest` model.yaml as a dict.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], config, network: torch.nn.Module,
                 transform, device: torch.device) -> None:
        self.path, self.manifest, self.config = path, manifest, config
        self.network, self.transform, self.device = network.to(device), transform, device
        self.class_names: list[str] = [str(c) for c in manifest["class_names"]]
        self.input_spec: dict[str, Any] = manifest["input"]
        self.kind: str = self.input_spec["kind"]
        self._eval_view = None
        if self.kind == "image" and manifest.get("trainer") != "xgboost":
            # The loop's own evaluation view: (x / 255 - mean) / std on the device.
            self._eval_view = Augmentation(None, None, 0.0, 0.0, self.input_spec["mean"],
                                           self.input_spec["std"], device).eval_view

    def __repr__(self) -> str:
        return (f"SavedModel({str(self.path)!r}: {self.config.model} on {self.config.dataset}, "
                f"{len(self.class_names)} classes, takes {describe_input(self.input_spec)})")

    # ------------------------------------------------------------ inputs
    def inputs(self, x: Any) -> tuple[list, torch.Tensor]:
        """(ids, batch) of `x`: a path (an image, a folder of images, a CSV or Parquet
        file), a list of image paths, a PIL image, an array of images or vectors, a
        DataFrame or an arrow table of rows. The batch is what the training data held."""
        import pyarrow as pa

        if isinstance(x, str | Path):
            return self._from_path(Path(x))
        if isinstance(x, list | tuple) and x and all(isinstance(p, str | Path) for p in x):
            self._need("image", "a list of image files")
            paths = [Path(p) for p in x]
            for p in paths:
                image_files(p)
            return [str(p) for p in paths], read_images(paths, self.input_spec)
        if isinstance(x, pd.DataFrame):
            return self._rows(pa.Table.from_pandas(x, preserve_index=False), "the DataFrame",
                              ids=list(range(len(x))))
        if isinstance(x, pa.Table):
            return self._rows(x, "the table", ids=list(range(x.num_rows)))
        if type(x).__module__.startswith("PIL."):
            return self._pil(x)
        if isinstance(x, np.ndarray | torch.Tensor):
            return self._array(x)
        raise UserError(f"cannot predict from a {type(x).__name__}; the model takes "
                        f"{describe_input(self.input_spec)}")

    def _need(self, kind: str, what: str) -> None:
        if self.kind != kind:
            raise UserError(f"the model takes {describe_input(self.input_spec)}, not "
                            f"{what}")

    def _from_path(self, path: Path) -> tuple[list, torch.Tensor]:
        if self.kind == "image":
            if is_table_file(path):
                raise UserError(f"input {path} is a table; the model takes "
                                f"{describe_input(self.input_spec)} (a file or a folder)")
            paths = image_files(path)
            return [str(p) for p in paths], read_images(paths, self.input_spec)
        table = table_file(path, self.input_spec, self.transform)
        return self._rows(table, str(path), ids=list(range(table.num_rows)))

    def _rows(self, table, source: str, ids: list) -> tuple[list, torch.Tensor]:
        if self.kind == "image":
            raise UserError(f"{source} is a table; the model takes "
                            f"{describe_input(self.input_spec)}")
        if self.kind == "table":
            x = self.transform.encode(table, source)
        else:
            x = vector_rows(table, self.input_spec, source)
        return ids, torch.from_numpy(x)

    def _pil(self, image) -> tuple[list, torch.Tensor]:
        import tempfile

        self._need("image", "an image")
        with tempfile.TemporaryDirectory() as d:  # decoded exactly as a file would be
            path = Path(d) / "image.png"
            image.save(path)
            return ["image"], read_images([path], self.input_spec)

    def _array(self, x) -> tuple[list, torch.Tensor]:
        if self.kind == "image":
            batch = image_array(x, self.input_spec)
        elif self.kind == "vector":
            t = torch.as_tensor(np.asarray(x, dtype=np.float32))
            d = self.input_spec["shape"][0]
            t = t[None] if t.dim() == 1 else t
            if t.dim() != 2 or t.shape[1] != d or len(t) == 0:
                raise UserError(f"the model takes vectors (N, {d}); got {tuple(t.shape)}")
            batch = t
        else:
            raise UserError("the model takes table rows (a DataFrame, or a CSV or Parquet "
                            f"file with the columns {', '.join(self.transform.features)}), "
                            "not an array")
        return list(range(len(batch))), batch

    # ------------------------------------------------------------ predictions
    @torch.no_grad()
    def _proba(self, batch: torch.Tensor) -> np.ndarray:
        out = []
        for i in range(0, len(batch), EVAL_BATCH):
            x = batch[i:i + EVAL_BATCH].to(self.device)
            if self._eval_view is not None:
                x = self._eval_view(x)
            elif self.manifest.get("trainer") == "xgboost":
                x = x.reshape(len(x), -1).float()  # trees read the raw values (imbtrain.xgb)
            else:
                x = x.to(torch.float32)
            out.append(self.network(x).float().softmax(1).cpu())
        return torch.cat(out).double().numpy()

    def predict_proba(self, x: Any) -> np.ndarray:
        """(N, K) class probabilities of the inputs `x` (see `inputs`), columns in label
        order (`class_names`)."""
        return self._proba(self.inputs(x)[1])

    def predict(self, x: Any) -> list[str]:
        """The predicted class name of each input."""
        return [self.class_names[i] for i in self.predict_proba(x).argmax(1)]

    def predictions(self, x: Any) -> pd.DataFrame:
        """One row an input: `id` (its file path, or its row index from 0), one probability
        column a class (named by the class; `prob_<name>` when a name is `id` or
        `predicted`), and `predicted`, the class name."""
        ids, batch = self.inputs(x)
        return self.frame(ids, self._proba(batch))

    def frame(self, ids: list, proba: np.ndarray) -> pd.DataFrame:
        columns = self.probability_columns()
        df = pd.DataFrame(proba, columns=columns)
        df.insert(0, ID_COLUMN, ids)
        df[PREDICTED_COLUMN] = [self.class_names[i] for i in proba.argmax(1)]
        return df

    def probability_columns(self) -> list[str]:
        """The names of the probability columns of `predictions`, in label order."""
        clash = {ID_COLUMN, PREDICTED_COLUMN} & set(self.class_names)
        if clash or len(set(self.class_names)) < len(self.class_names):
            return [f"prob_{c}" for c in self.class_names]
        return list(self.class_names)


def load_model(path: str | Path, device: str = "cpu") -> SavedModel:
    """The model in a model folder (what `imbtrain train --out DIR` wrote, a study's
    `<study>/models/r<ratio>/`, or an MLflow model's `model` artifact). `device`: cpu, cuda
    or auto. Nothing in the folder is unpickled (tensors load with weights_only=True)."""
    from imbtrain.saved.folder import _load

    folder = Path(path)
    manifest = read_manifest(folder)
    cfg: TrainConfig = load_config(folder / manifest.get("config", "config.yaml"))
    arrays = load_tensors(folder, manifest.get("tensors"))
    spec = manifest["input"]
    transform = (TabularTransform.from_params(spec["tabular"], arrays)
                 if spec["kind"] == "table" else None)
    state = _load(folder / manifest.get("weights", "model.pt"))
    network = build_network(manifest, cfg, transform, arrays, state)
    return SavedModel(folder, manifest, cfg, network, transform, _device(device))


def _device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise UserError(f"device={name!r} is not allowed; use cpu, cuda or auto")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)
