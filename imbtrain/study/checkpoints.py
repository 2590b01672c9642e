"""A finished trial's model, rebuilt from its last checkpoint, for the analyses that need the
models themselves (the decision-boundary pictures).

A trial's checkpoint folder (`<study>/<trial>_<id>/checkpoint_<n>/`) holds the training
loop's state as `STATE_FILE` (written by the trainable, `imbtrain.tune.trainable`, with
`torch.save`): the config, the weights, the EMA weights when the trial kept an average, the
optimiser and the RNG states. The checkpoint of a trial's last result also holds its model
folder, `MODEL_DIR` (`imbtrain.saved`: the final weights, after a method's final stage,
the class names, the fitted tabular transform, the input normalisation), which
`trial_model_folder` finds and `save_trial_model` copies out. Reading them needs no Ray (a
study in object storage: the checkpoint is downloaded into the study's working copy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from imbtrain.errors import UserError
from imbtrain.files import read_torch

if TYPE_CHECKING:  # the tables and the storage (pandas, pyarrow) are not needed to name
    from imbtrain.study.results import StudyResult  # the files of a checkpoint

STATE_FILE = "state.pt"  # the loop's state in a trial's checkpoint (what `train(resume=)` takes)
MODEL_DIR = "model"  # the model folder in the checkpoint of a trial's last result
STATE_KIND = ("a trial's checkpoint (the training loop's state, torch.save'd by the trainable); "
              "run the trial again, or draw the analysis without it")


def trial_model(result: StudyResult, trial_id: str):
    """(model, data) of a finished trial: its config rebuilt from its checkpoint, the weights
    of its last checkpoint (the EMA weights when it kept an average), in eval mode. The model
    is `create_model`'s: a method that changes it (LDAM's normalised head) is not rebuilt."""
    from imbtrain.config import TrainConfig
    from imbtrain.data import build_data
    from imbtrain.models import create_model, model_kwargs

    study = _study_dir(result)
    found = study.files(f"*_{trial_id}/checkpoint_*/{STATE_FILE}")
    if not found:
        raise UserError(f"no checkpoint of trial {trial_id} in {study.uri}")
    # weights_only: the trainable stores numpy's RNG state as a tensor (RELIABILITY.md)
    local = study.pull(found[-1])[0]
    state = read_torch(local, STATE_KIND)  # a damaged file: one line
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise UserError(f"{study.file(found[-1])}: holds no training state (no config); "
                        f"expected {STATE_KIND}")
    cfg = TrainConfig(**state["config"])
    data = build_data(cfg)
    model = create_model(cfg.model, data.input_shape, data.num_classes,
                         **model_kwargs(cfg, data))
    weights = state["model"]
    if state.get("ema"):  # timm's ModelEmaV3 keeps the averaged model under `module.`
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items()}
    model.load_state_dict(weights)
    return model.eval(), data


def trial_model_folder(result: StudyResult | Path, trial_id: str) -> Path | None:
    """The model folder of a finished trial (its last checkpoint's `MODEL_DIR`); None when
    the trial has none (stopped early by a scheduler, or a study of an older imbtrain)."""
    from imbtrain.saved.folder import MANIFEST_FILE

    study = _study_dir(result)
    found = study.files(f"*_{trial_id}/checkpoint_*/{MODEL_DIR}/{MANIFEST_FILE}")
    if not found:
        return None
    # a study in object storage: the folder is downloaded into the study's working copy
    return study.pull(found[-1].rsplit("/", 1)[0])[0]


def _study_dir(result: StudyResult | Path):
    from imbtrain.study.results import StudyResult
    from imbtrain.study.storage import as_study_dir

    if isinstance(result, StudyResult):
        return result.storage or as_study_dir(result.path)
    return as_study_dir(result)


def save_trial_model(result: StudyResult | Path, trial_id: str, out: Path) -> Path:
    """Copy a finished trial's model folder to `out` (replaced whole); a trial without one
    gets it rebuilt from its last checkpoint's state and its data (`trial_model`)."""
    import shutil

    from imbtrain.saved.folder import MODEL_FILES

    src = trial_model_folder(result, trial_id)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if src is not None:
            for name in MODEL_FILES:
                if (src / name).is_file():
                    shutil.copy2(src / name, tmp / name)
        else:
            _rebuild_model_folder(result, trial_id, tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _rebuild_model_folder(root: StudyResult | Path, trial_id: str, out: Path) -> None:
    import torch

    from imbtrain.config import TrainConfig
    from imbtrain.saved import write_model_folder
    from imbtrain.study.results import StudyResult

    study = _study_dir(root)
    result = StudyResult(study.local, None, None, None, "", "", None, None, storage=study)
    model, data = trial_model(result, trial_id)
    found = study.files(f"*_{trial_id}/checkpoint_*/{STATE_FILE}")
    state = torch.load(study.pull(found[-1])[0], map_location="cpu", weights_only=True)
    write_model_folder(out, model, TrainConfig(**state["config"]), data)
