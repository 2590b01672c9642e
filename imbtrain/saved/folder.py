"""The model folder: what a trained model leaves on disk, and reading it back.

A model folder holds everything needed to apply the model to new inputs, and nothing that
runs code when read (no pickle):

    model.yaml    the manifest: format, class names in label order, the input the model
                  takes (images: channels, size, the mean and std of the normalisation, how
                  a file is decoded; tables: the feature columns, the categories of each
                  categorical column and the one-hot layout, the numeric transform), the
                  network's build details (head, pwl bins), the train counts, what ran it
    config.yaml   the resolved TrainConfig of the run
    model.pt      the weights: the network's state_dict (XGBoost: the booster's bytes)
    tensors.pt    the arrays model.yaml refers to (the numeric transform's quantiles or
                  mean and scale, the medians, pwl bins); only when there are any

`imbtrain train` writes these files into its output folder, next to metrics.json,
history.parquet and run.yaml, so a run's folder is its model folder; a study writes the
model of each train ratio's best trial to `<study>/models/r<ratio>/`. Tensors are written
with `torch.save` and read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from imbtrain.errors import UserError
from imbtrain.methods.ldam import NormedLinear
from imbtrain.models import create_model, model_kwargs, model_trainer
from imbtrain.models.trees import XGBoostModel, load_booster
from imbtrain.version import provenance

MANIFEST_FILE = "model.yaml"
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.pt"
TENSORS_FILE = "tensors.pt"
FORMAT = "imbtrain-model/1"
MODEL_FILES = (MANIFEST_FILE, CONFIG_FILE, WEIGHTS_FILE, TENSORS_FILE)


# ================================================================ writing


def input_spec(data) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """What the model takes, from its data (an ImbalancedData): (manifest part, arrays)."""
    shape = [int(d) for d in data.input_shape]
    if data.tabular_transform is not None:
        meta, arrays = data.tabular_transform.to_params()
        return {"kind": "table", "shape": shape, "tabular": meta}, arrays
    if len(shape) == 3:
        c = shape[0]
        mean = list(data.mean) if data.mean is not None else [0.0] * c
        std = list(data.std) if data.std is not None else [1.0] * c
        return {"kind": "image", "shape": shape, "mean": [float(v) for v in mean],
                "std": [float(v) for v in std], "decode": data.image_decode}, {}
    return {"kind": "vector", "shape": shape}, {}


def network_spec(model: nn.Module) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """How to rebuild the network beyond its config: a normalised head (LDAM), pwl bins."""
    head = getattr(model, "head", None)
    meta: dict[str, Any] = {"head": "normed" if isinstance(head, NormedLinear) else "linear"}
    arrays: dict[str, np.ndarray] = {}
    bins = next((m.bins for m in model.modules() if hasattr(m, "bins")), None)
    if bins is not None:
        meta["pwl_bins"] = len(bins)
        arrays.update({f"pwl_bins.{i}": b.numpy() for i, b in enumerate(bins)})
    return meta, arrays


def write_model_folder(folder: str | Path, model: nn.Module, cfg, data) -> list[str]:
    """Write the model files of a trained `model` (cfg: its TrainConfig, data: the
    ImbalancedData it trained on) into `folder`; returns the names written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inputs, in_arrays = input_spec(data)
    network, net_arrays = network_spec(model)
    meta = {"format": FORMAT, "dataset": cfg.dataset, "model": cfg.model,
            "trainer": model_trainer(cfg.model), "class_names": list(data.class_names),
            "train_counts": [int(n) for n in data.train_counts], "input": inputs,
            "network": network, "weights": WEIGHTS_FILE, "config": CONFIG_FILE}
    arrays = {**in_arrays, **net_arrays}
    written = [MANIFEST_FILE, CONFIG_FILE, WEIGHTS_FILE]
    if arrays:
        meta["tensors"] = TENSORS_FILE
        torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()},
                   folder / TENSORS_FILE)
        written.append(TENSORS_FILE)
    meta.update(provenance())
    cfg.save(folder / CONFIG_FILE)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()},
               folder / WEIGHTS_FILE)
    (folder / MANIFEST_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    return written


# ================================================================ reading


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """model.yaml of a model folder, or a UserError that says what a model folder is."""
    path = Path(folder)
    what = ("a model folder (model.yaml, config.yaml, model.pt), as `imbtrain train` writes "
            "to its --out folder")
    if not path.exists():
        raise UserError(f"model {path} does not exist; expected {what}")
    if not path.is_dir():
        raise UserError(f"model {path} is a file; expected {what}")
    manifest = path / MANIFEST_FILE
    if not manifest.is_file():
        old = " (a run of an imbtrain without saved models: train it again)" if \
            (path / WEIGHTS_FILE).is_file() else ""
        raise UserError(f"model {path} has no {MANIFEST_FILE}{old}; expected {what}")
    try:
        meta = yaml.safe_load(manifest.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{manifest} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise UserError(f"{manifest} is not an imbtrain model manifest (format {found!r}; "
                        f"expected {FORMAT})")
    for name in (meta.get("weights", WEIGHTS_FILE), meta.get("config", CONFIG_FILE),
                 meta.get("tensors")):
        if name and not (path / name).is_file():
            raise UserError(f"model {path} lacks {name}, which {MANIFEST_FILE} names")
    return meta


def load_tensors(folder: Path, name: str | None) -> dict[str, np.ndarray]:
    if not name:
        return {}
    tensors = _load(folder / name)
    return {k: v.numpy() for k, v in tensors.items()}


def _load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged or foreign file: one line, not a traceback
        raise UserError(f"{path} cannot be read as saved tensors ({str(e).splitlines()[0]})") \
            from None


def build_network(meta: dict[str, Any], cfg, transform, arrays: dict[str, np.ndarray],
                  state: dict[str, torch.Tensor]) -> nn.Module:
    """The trained network from the manifest, the config and the weights, in eval mode."""
    from types import SimpleNamespace

    k = len(meta["class_names"])
    if meta.get("trainer") == "xgboost":
        raw = bytes(state["booster_ubj"].numpy().tobytes())
        return XGBoostModel(load_booster(raw), k).eval()
    network = meta.get("network", {})
    info = transform.info if transform is not None else None
    kwargs = model_kwargs(cfg, SimpleNamespace(feature_info=info, train_x=None))
    if network.get("pwl_bins"):
        kwargs["bins"] = [torch.from_numpy(arrays[f"pwl_bins.{i}"])
                          for i in range(network["pwl_bins"])]
    model = create_model(cfg.model, tuple(meta["input"]["shape"]), k, **kwargs)
    if network.get("head") == "normed":
        old = model.head
        model.head = NormedLinear(old.in_features, old.out_features)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"the weights do not fit model {cfg.model} "
                        f"({str(e).splitlines()[0]})") from None
    return model.eval()
