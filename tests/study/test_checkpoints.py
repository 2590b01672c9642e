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
