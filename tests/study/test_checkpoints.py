"""A trial's model from its checkpoint: the file the trainable writes is the one read."""

from __future__ import annotations

import pandas as pd
import pytest

from imbtrain.errors import UserError
from imbtrain.study.checkpoints import STATE_FILE, trial_model
from imbtrain.study.results import StudyResult


def test_the_trainable_writes_the_file_trial_model_reads():
    from imbtrain.tune import trainable

    assert trainable.STATE_FILE == STATE_FILE == "state.pt"


def test_a_trial_without_a_checkpoint_is_a_clear_error(tmp_path):
    result = StudyResult(tmp_path, pd.DataFrame(), pd.DataFrame(), None, "val_bal_acc", "max",
                         None, None)
    with pytest.raises(UserError, match=f"no checkpoint of trial abc in {tmp_path}"):
        trial_model(result, "abc")


@pytest.mark.parametrize("damage", ["cut", "text", "empty", "not_a_state"])
def test_a_damaged_checkpoint_is_one_line(tmp_path, damage):
    import torch

    path = tmp_path / "t_abc" / "checkpoint_000001" / STATE_FILE
    path.parent.mkdir(parents=True)
    torch.save({"config": {"dataset": "digits"}, "model": {"w": torch.zeros(64, 64)}}, path)
    if damage == "cut":
        path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    elif damage == "text":
        path.write_text("no tensors here\n")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save([1, 2, 3], path)
    result = StudyResult(tmp_path, pd.DataFrame(), pd.DataFrame(), None, "val_bal_acc", "max",
                         None, None)
    with pytest.raises(UserError) as e:
        trial_model(result, "abc")
    line = str(e.value)
    assert "\n" not in line and line.startswith(f"{path}: ")
    assert line.endswith("expected a trial's checkpoint (the training loop's state, "
                         "torch.save'd by the trainable); run the trial again, or draw the "
                         "analysis without it")
