"""ASHA's rung records survive a resume: `asha_record`'s state, saved with Tune's experiment
state and set back on the scheduler restored from tuner.pkl, makes the restored ASHA stop
the trials still to come as the uninterrupted one does (real Ray schedulers and trials)."""

from __future__ import annotations

import ray.cloudpickle as pickle
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler

from imbtrain.tune.runner import asha_record


def asha():
    return ASHAScheduler(time_attr="epoch", max_t=4, grace_period=1, reduction_factor=2,
                         metric="m", mode="max")


def trials(n):
    return [Trial("__fake", trial_id=f"t{i}", stub=True) for i in range(n)]


def added(scheduler, t):
    """The scheduler with the trials `t` added, as Tune adds them (also on a restore)."""
    for trial in t:
        scheduler.on_trial_add(None, trial)
    return scheduler


def test_a_restored_asha_judges_the_next_trial_against_the_saved_rungs():
    t = trials(3)
    first = added(asha(), t)
    record = asha_record(first)
    # Rung at epoch 1, reduction factor 2: the cutoff is the median of the recorded values.
    assert first.on_trial_result(None, t[0], {"epoch": 1, "m": 0.5}) == "CONTINUE"
    assert first.on_trial_result(None, t[1], {"epoch": 1, "m": 0.7}) == "CONTINUE"
    state = pickle.loads(pickle.dumps(record.get_state()))  # Tune's callback-state file
    assert state == {"rungs": [[(4, {}), (2, {}), (1, {"t0": 0.5, "t1": 0.7})]]}

    # tuner.pkl holds the scheduler and the callback in one pickle: a fresh pair, as Tune
    # restores it, with no records of its own.
    fresh = asha()
    restored, restored_record = pickle.loads(pickle.dumps((fresh, asha_record(fresh))))
    assert restored_record.asha is restored
    added(restored, t)
    restored_record.set_state(state)
    # 0.55 is below the median of (0.5, 0.7) = 0.6: stopped, as the uninterrupted ASHA does;
    # an empty rung (no state set) would have let it continue.
    assert first.on_trial_result(None, t[2], {"epoch": 1, "m": 0.55}) == "STOP"
    assert restored.on_trial_result(None, t[2], {"epoch": 1, "m": 0.55}) == "STOP"
    empty = added(asha(), t)
    assert empty.on_trial_result(None, t[2], {"epoch": 1, "m": 0.55}) == "CONTINUE"


def test_a_trial_recorded_before_the_interruption_is_not_judged_again():
    t = trials(2)
    a = added(asha(), t)
    record = asha_record(a)
    # t1 reaches the rung first (nothing to compare with: it continues), then t0.
    assert a.on_trial_result(None, t[1], {"epoch": 1, "m": 0.1}) == "CONTINUE"
    assert a.on_trial_result(None, t[0], {"epoch": 1, "m": 0.9}) == "CONTINUE"
    state = record.get_state()
    b = added(asha(), t)
    asha_record(b).set_state(state)
    # t1 resumes from its epoch-1 checkpoint and reports epoch 1 again: already decided (judged
    # again, against t0's 0.9, it would be stopped).
    assert b.on_trial_result(None, t[1], {"epoch": 1, "m": 0.1}) == "CONTINUE"


def test_no_scheduler_no_record():
    assert asha_record(None) is None
