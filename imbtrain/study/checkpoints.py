"""A finished trial's model, rebuilt from its last checkpoint, for the analyses that need the
models themselves (the decision-boundary pictures).

A trial's checkpoint folder (`<study>/<trial>_<id>/checkpoint_<n>/`) holds the training
loop's state as `STATE_FILE` (written by the trainable, `imbtrain.tune.trainable`, with
`torch.save`): the config, the weights, the EMA weights when the trial kept an average, the
optimiser and the RNG states. Reading it needs no Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imbtrain.errors import UserError

if TYPE_CHECKING:  # the tables (pandas) are not needed to name the state file
    from imbtrain.study.results import StudyResult

STATE_FILE = "state.pt"  # the loop's state in a trial's checkpoint (what `train(resume=)` takes)


def trial_model(result: StudyResult, trial_id: str):
    """(model, data) of a finished trial: its config rebuilt from its checkpoint, the weights
    of its last checkpoint (the EMA weights when it kept an average), in eval mode. The model
    is `create_model`'s: a method that changes it (LDAM's normalised head) is not rebuilt."""
    import torch

    from imbtrain.config import TrainConfig
    from imbtrain.data import build_data
    from imbtrain.models import create_model, model_kwargs

    found = sorted(result.path.glob(f"*_{trial_id}/checkpoint_*/{STATE_FILE}"))
    if not found:
        raise UserError(f"no checkpoint of trial {trial_id} in {result.path}")
    # weights_only: the trainable stores numpy's RNG state as a tensor (RELIABILITY.md)
    state = torch.load(found[-1], map_location="cpu", weights_only=True)
    cfg = TrainConfig(**state["config"])
    data = build_data(cfg)
    model = create_model(cfg.model, data.input_shape, data.num_classes,
                         **model_kwargs(cfg, data))
    weights = state["model"]
    if state.get("ema"):  # timm's ModelEmaV3 keeps the averaged model under `module.`
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items()}
    model.load_state_dict(weights)
    return model.eval(), data
