"""The progress lines' epoch counts: a trial's own epochs (a variant or a knob may set them,
e.g. the batch-size study's fixed-step variants), else the study's."""

from __future__ import annotations

from ray.tune.experiment import Trial

from imbtrain.tune.runner import _epochs_of


def test_a_trial_counts_its_own_epochs():
    # bs128_steps trains batch 16's steps at batch 128: 2 epochs where the base says 1.
    assert _epochs_of(Trial("__fake", config={"epochs": 2, "batch_size": 128}, stub=True),
                      1) == 2
    assert _epochs_of(Trial("__fake", config={"batch_size": 32}, stub=True), 3) == 3
    assert _epochs_of(Trial("__fake", config={"epochs": True}, stub=True), 3) == 3
