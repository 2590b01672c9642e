"""StudyMLflowLogger on a real MLflow sqlite store, driven through Tune's callback hooks.

The hooks get real (stub) `ray.tune.experiment.Trial` objects: the logger reads only
`trial_id`, `config`, `str(trial)` and `status`, so no Ray cluster is needed. What a real
Tune run adds, pickling the callback into tuner.pkl and back, is tested with pickle.
"""

import pickle
import socket

import pytest
from mlflow import MlflowClient
from ray.tune.experiment import Trial

from imbtrain.errors import UserError
from imbtrain.tune.mlflow_log import (
    PARENT_TAG,
    StudyMLflowLogger,
    log_study_artifacts,
    parent_run_id,
)

CFG_A = {"dataset": "digits", "train_ratio": 0.1, "seed": 1, "method": "erm", "batch_size": 16}
CFG_B = {"dataset": "digits", "train_ratio": 1.0, "seed": 2, "method": "focal", "batch_size": 64}


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    # One database for the module (creating MLflow's tables takes seconds); each test
    # uses its own study name.
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def trial(trial_id: str, config: dict) -> Trial:
    name = f"{config['dataset']}_r{config['train_ratio']}_bs{config['batch_size']}"
    return Trial("train", config=dict(config), trial_id=trial_id, stub=True,
                 trial_name_creator=lambda t: name)


def result(epoch: int, **extra) -> dict:
    # val_bal_acc = 0.5 + 0.1 * epoch: the history checked below. Ray's bookkeeping keys
    # (training_iteration, time_total_s, config, done) must not become metrics.
    return {"epoch": epoch, "val_bal_acc": 0.5 + 0.1 * epoch, "lr": 0.1 / (epoch + 1),
            "training_iteration": epoch + 1, "time_total_s": 1.5, "done": False,
            "config": {"x": 1}, "trial_id": "ignored", **extra}


def run_epochs(logger, t, epochs):
    for e in epochs:
        logger.on_trial_result(0, [t], t, result(e))


def study_runs(uri, study):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(study)
    runs = client.search_runs([exp.experiment_id], f"tags.`imbtrain.study` = '{study}'")
    parents = [r for r in runs if r.data.tags["imbtrain.run_kind"] == "study"]
    trials = {r.data.tags["imbtrain.trial_id"]: r for r in runs
              if r.data.tags["imbtrain.run_kind"] == "trial"}
    return client, parents, trials


def steps(client, run, key="val_bal_acc"):
    return [(m.step, round(m.value, 6)) for m in client.get_metric_history(run.info.run_id, key)]


def test_one_parent_and_one_nested_run_per_trial(uri):
    logger = StudyMLflowLogger(uri, "s1", tags={"git": "abc123"})
    # Tune's own keys (__trial_index__) are not params.
    a, b = trial("s1_00000", {**CFG_A, "__trial_index__": 0}), trial("s1_00001", CFG_B)
    logger.setup()
    for t in (a, b):
        logger.on_trial_start(0, [a, b], t)
    run_epochs(logger, a, range(3))
    run_epochs(logger, b, range(2))
    a.status, b.status = "TERMINATED", "ERROR"
    logger.on_trial_complete(0, [a, b], a)
    logger.on_trial_error(0, [a, b], b)
    logger.on_experiment_end([a, b])

    client, parents, trials = study_runs(uri, "s1")
    assert len(parents) == 1 and sorted(trials) == ["s1_00000", "s1_00001"]
    parent = parents[0]
    assert parent.info.run_id == parent_run_id(uri, "s1") == logger.parent_run_id
    # One trial errored: the study's parent is FAILED, with the counts as tags.
    assert parent.info.status == "FAILED"
    assert parent.data.tags["imbtrain.trials_finished"] == "1"
    assert parent.data.tags["imbtrain.trials_failed"] == "1"

    ra, rb = trials["s1_00000"], trials["s1_00001"]
    assert ra.data.params == {"dataset": "digits", "train_ratio": "0.1", "seed": "1",
                              "method": "erm", "batch_size": "16"}
    tags = ra.data.tags
    assert tags[PARENT_TAG] == parent.info.run_id
    assert (tags["imbtrain.dataset"], tags["imbtrain.train_ratio"], tags["imbtrain.seed"],
            tags["imbtrain.method"]) == ("digits", "0.1", "1", "erm")
    assert tags["imbtrain.trial_name"] == tags["mlflow.runName"] == "digits_r0.1_bs16"
    assert tags["git"] == "abc123" and parent.data.tags["git"] == "abc123"
    assert (ra.info.status, rb.info.status) == ("FINISHED", "FAILED")

    # Every epoch at step = epoch: 0.5, 0.6, 0.7 for trial a; lr = 0.1 / (epoch + 1).
    assert steps(client, ra) == [(0, 0.5), (1, 0.6), (2, 0.7)]
    assert steps(client, ra, "lr") == [(0, 0.1), (1, 0.05), (2, round(0.1 / 3, 6))]
    assert steps(client, rb) == [(0, 0.5), (1, 0.6)]
    assert set(ra.data.metrics) == {"epoch", "val_bal_acc", "lr"}


def test_resume_in_a_new_logger_continues_the_same_runs(uri):
    first = StudyMLflowLogger(uri, "s2")
    a, b = trial("s2_00000", CFG_A), trial("s2_00001", CFG_B)
    first.setup()
    first.on_trial_start(0, [a, b], a)
    first.on_trial_start(0, [a, b], b)
    run_epochs(first, b, range(2))
    b.status = "TERMINATED"
    first.on_trial_complete(0, [a, b], b)
    run_epochs(first, a, range(2))  # epochs 0 and 1 logged, then the driver is killed
    assert first.flush()

    # A new driver process: Tune restores trial a from its epoch-0 checkpoint, so it
    # re-reports epoch 1 (skipped: logged already), then goes on with epochs 2 and 3.
    second = StudyMLflowLogger(uri, "s2")
    a2 = trial("s2_00000", CFG_A)
    b.status = "TERMINATED"
    second.setup()
    second.on_trial_start(0, [a2, b], a2)
    second.on_trial_result(0, [a2, b], a2, result(1, val_bal_acc=0.99))
    run_epochs(second, a2, range(2, 4))
    a2.status = "TERMINATED"
    second.on_trial_complete(0, [a2, b], a2)
    second.on_experiment_end([a2, b])

    client, parents, trials = study_runs(uri, "s2")
    assert len(parents) == 1 and len(trials) == 2
    assert second.parent_run_id == first.parent_run_id == parents[0].info.run_id
    ra = trials["s2_00000"]
    assert steps(client, ra) == [(0, 0.5), (1, 0.6), (2, 0.7), (3, 0.8)]
    assert ra.data.tags["imbtrain.last_step"] == "3"
    assert ra.data.params["batch_size"] == "16"
    assert ra.info.status == "FINISHED" and parents[0].info.status == "FINISHED"


def test_pickled_logger_keeps_its_parent_and_resume_false_opens_a_new_one(uri):
    # Tune pickles the callbacks into tuner.pkl and unpickles them on Tuner.restore.
    fresh = StudyMLflowLogger(uri, "s3", resume=False)
    a = trial("s3_00000", CFG_A)
    fresh.setup()
    fresh.on_trial_start(0, [a], a)
    run_epochs(fresh, a, [0])
    fresh.flush()
    restored = pickle.loads(pickle.dumps(fresh))
    restored.setup()
    restored.on_trial_start(0, [a], a)
    run_epochs(restored, a, [0, 1])
    restored.flush()
    assert restored.parent_run_id == fresh.parent_run_id
    _, parents, trials = study_runs(uri, "s3")
    assert len(parents) == 1 and len(trials) == 1

    # A new study under the same name without --resume: a second parent, now the current.
    again = StudyMLflowLogger(uri, "s3", resume=False)
    again.setup()
    assert again.parent_run_id != fresh.parent_run_id
    assert parent_run_id(uri, "s3") == again.parent_run_id


def test_artifacts_land_on_the_parent_run(uri, tmp_path):
    logger = StudyMLflowLogger(uri, "s4")
    logger.setup()
    (tmp_path / "results.csv").write_text("trial,acc\n0,0.5\n")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "sensitivity.png").write_bytes(b"\x89PNG fake")
    run_id = log_study_artifacts(uri, "s4", [tmp_path / "results.csv", plots], uid=logger.uid)
    assert run_id == logger.parent_run_id
    client = MlflowClient(uri)
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["plots", "results.csv"]
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/sensitivity.png"]
    with pytest.raises(UserError, match="does not exist"):
        log_study_artifacts(uri, "s4", [tmp_path / "missing.png"], uid=logger.uid)
    with pytest.raises(UserError, match="no MLflow run of study 'nope'"):
        parent_run_id(uri, "nope")
    # Found by its uid, never by its name: another logger of study s4 opens its own parent,
    # and each study's files go to its own.
    other = StudyMLflowLogger(uri, "s4", resume=False)
    other.setup()
    assert other.parent_run_id != logger.parent_run_id
    assert parent_run_id(uri, "s4") == other.parent_run_id  # the latest of the name
    assert log_study_artifacts(uri, "s4", [tmp_path / "results.csv"],
                               uid=logger.uid) == logger.parent_run_id
    assert client.list_artifacts(other.parent_run_id) == []
    with pytest.raises(UserError, match="with imbtrain.study_uid=0123 in"):
        log_study_artifacts(uri, "s4", [tmp_path / "results.csv"], uid="0123")


def test_unreachable_server_and_file_store_fail_with_one_line():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match=f"http://127.0.0.1:{port} is unreachable") as e:
        StudyMLflowLogger(f"http://127.0.0.1:{port}", "s5")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="file stores such as ./mlruns are refused"):
        StudyMLflowLogger("./mlruns", "s5")


def test_hooks_return_at_once_and_log_the_trial_as_it_was(uri):
    # Tune's trials wait at each report until the driver's hooks return: the hooks only
    # queue. With the writer thread held, they still return; what they queued is the trial
    # as it was then, whatever it became before the writes were made.
    import threading

    logger = StudyMLflowLogger(uri, "s6")
    a = trial("s6_00000", CFG_A)
    logger.setup()
    gate = threading.Event()
    logger._writer.submit(gate.wait)  # holds the writer thread until the gate opens
    logger.on_trial_start(0, [a], a)
    run_epochs(logger, a, range(2))
    a.status = "TERMINATED"
    logger.on_trial_complete(0, [a], a)
    a.status = "ERROR"  # later changes to the trial are not what was logged
    gate.set()
    assert logger.flush(timeout=60)
    client, parents, trials = study_runs(uri, "s6")
    assert steps(client, trials["s6_00000"]) == [(0, 0.5), (1, 0.6)]
    assert trials["s6_00000"].info.status == "FINISHED"  # as it was when it completed
    assert logger.flush(timeout=5)


def test_flush_all_waits_for_every_logger_of_the_process(uri):
    # What a driver that ends with os._exit (a SIGTERM that also ended Ray) calls first.
    import threading

    from imbtrain.tune.mlflow_log import flush_all

    logger = StudyMLflowLogger(uri, "s7")
    a = trial("s7_00000", CFG_A)
    logger.setup()
    gate = threading.Event()
    logger._writer.submit(gate.wait)
    logger.on_trial_start(0, [a], a)
    run_epochs(logger, a, range(2))
    assert flush_all(timeout=0.2) is False  # held: not made within the time
    gate.set()
    assert flush_all(timeout=60) is True
    client, _, trials = study_runs(uri, "s7")
    assert steps(client, trials["s7_00000"]) == [(0, 0.5), (1, 0.6)]
