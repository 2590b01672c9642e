"""A study's MLflow runs, curated for comparison, and the best model of each train ratio:
real Ray (in-process), a real MLflow sqlite store, a smoke study of 8 trials.

- a trial run has at most 30 params (its knob, train ratio, seed, dataset, model, method and
  the non-default keys), the full config as config.yaml, the per-class accuracies as a
  table with the class names;
- the parent run holds the space as params and the best validation metric of each train
  ratio (the mean over seeds of the best configuration) as metrics;
- both carry imbtrain's version and git commit;
- each ratio's best model is in `<study>/models/r<ratio>/`, logged to the parent and, with
  `register`, a version of the registered model with its ratio as tag and alias; loaded with
  `mlflow.pyfunc`, it predicts what `imbtrain predict` predicts.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from imbtrain.version import __version__, git_commit

SPACE = """
base: {dataset: digits, model: mlp, epochs: 3}
knobs:
  batch_size: {grid: [32, 128]}
train_ratios: [1.0, 0.1]
seeds: [0, 1]
resources: {cpus: 1}
smoke:
  base: {epochs: 2}
"""


@pytest.fixture(scope="module")
def study(ray_session, tmp_path_factory):
    from imbtrain.tune.runner import run_study

    tmp = tmp_path_factory.mktemp("study")
    (tmp / "tiny.yaml").write_text(textwrap.dedent(SPACE))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    result = run_study(str(tmp / "tiny.yaml"), storage=str(tmp / "runs"), smoke=True,
                       mlflow_uri=uri, register="digits_mlp")
    return tmp, uri, result


def runs(uri: str):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tiny_smoke")
    found = client.search_runs([exp.experiment_id])
    parents = [r for r in found if r.data.tags["imbtrain.run_kind"] == "study"]
    trials = [r for r in found if r.data.tags["imbtrain.run_kind"] == "trial"]
    return client, parents, trials


def test_trial_runs_hold_few_params_the_config_and_a_per_class_table(study, tmp_path):
    from imbtrain.config import TrainConfig

    tmp, uri, result = study
    client, _, trials = runs(uri)
    assert len(trials) == 8
    for run in trials:
        params = run.data.params
        assert len(params) <= 30
        assert set(params) == {"batch_size", "train_ratio", "seed", "dataset", "model",
                               "method", "epochs"}
        assert not [k for k in run.data.metrics if "_class_acc_" in k]
    run = trials[0]
    config = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path)))
    import yaml

    full = TrainConfig(**yaml.safe_load(config.read_text()))
    assert str(full.batch_size) == run.data.params["batch_size"]
    assert len(full.to_dict()) == len(TrainConfig().to_dict())
    table = json.loads(Path(client.download_artifacts(run.info.run_id, "per_class.json",
                                                      str(tmp_path))).read_text())
    frame = pd.DataFrame(table["data"], columns=table["columns"])
    assert frame["name"].tolist() == [str(k) for k in range(10)]
    row = result.results.set_index("trial_id").loc[run.data.tags["imbtrain.trial_id"]]
    assert frame["train_count"].tolist() == list(row["train_counts"])
    assert frame["val_acc"].tolist() == pytest.approx(
        [row[f"val_class_acc_{k}"] for k in range(10)])


def test_the_parent_holds_the_space_and_the_best_metric_of_each_ratio(study):
    tmp, uri, result = study
    _, [parent], trials = runs(uri)
    params = parent.data.params
    assert params["knob.batch_size"] == "grid [32, 128]"
    assert (params["train_ratios"], params["seeds"]) == ("[1.0, 0.1]", "[0, 1]")
    assert (params["searcher"], params["scheduler"], params["metric"]) == \
        ("grid", "none", "val_bal_acc")
    assert params["base.model"] == "mlp" and params["base.epochs"] == "2"
    # The best configuration of each ratio by the mean of val_bal_acc over the two seeds.
    res = result.results
    means = res.groupby(["config/train_ratio", "config/batch_size"])["val_bal_acc"].mean()
    metrics = parent.data.metrics
    for ratio in (1.0, 0.1):
        assert metrics[f"best_val_bal_acc_r{ratio:g}"] == pytest.approx(means[ratio].max())
    assert (metrics["trials_finished"], metrics["trials_failed"]) == (8, 0)
    commit = git_commit()[0]
    for run in [parent, *trials]:
        assert run.data.tags["imbtrain.version"] == __version__
        assert run.data.tags["imbtrain.git_commit"] == commit


def test_the_best_model_of_each_ratio_is_saved_logged_and_registered(study, tmp_path, capsys):
    import mlflow

    from imbtrain.cli import main
    from imbtrain.data import load_raw
    from imbtrain.saved import load_model
    from imbtrain.study.export import best_trial_per_ratio

    tmp, uri, result = study
    best = best_trial_per_ratio(result.results, "val_bal_acc").set_index("train_ratio")
    client = MlflowClient(uri)
    raw = load_raw(load_model(result.path / "models" / "r1").config)
    images = raw.test_x[:20].numpy()
    np.save(tmp_path / "x.npy", images)
    for ratio, alias in ((1.0, "r1"), (0.1, "r0_1")):
        folder = result.path / "models" / f"r{ratio:g}"
        model = load_model(folder)
        trial = result.results.set_index("trial_id").loc[best.loc[ratio, "trial_id"]]
        assert model.config.train_ratio == ratio
        assert model.config.batch_size == trial["config/batch_size"]
        assert model.config.seed == 0  # the configuration's first seed, as export writes it
        version = client.get_model_version_by_alias("digits_mlp", alias)
        assert version.tags["imbtrain.train_ratio"] == f"{ratio:g}"
        assert version.tags["imbtrain.trial_id"] == best.loc[ratio, "trial_id"]
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        try:
            loaded = mlflow.pyfunc.load_model(f"models:/digits_mlp@{alias}")
        finally:
            mlflow.set_tracking_uri(previous)
        theirs = loaded.predict(images)
        assert theirs["predicted"].tolist() == model.predict(images)
        # the same model through `imbtrain predict`: digits' own 8x8 images as PNG files
        from PIL import Image

        folder_in = tmp_path / f"in_{alias}"
        folder_in.mkdir()
        for i in range(5):
            Image.fromarray(images[i, 0], mode="L").save(folder_in / f"{i:02d}.png")
        out = tmp_path / f"{alias}.parquet"
        assert main(["predict", str(folder), str(folder_in), "--out", str(out)]) == 0
        assert pd.read_parquet(out)["predicted"].tolist() == theirs["predicted"].tolist()[:5]
    capsys.readouterr()
    assert sorted(int(v.version) for v in client.search_model_versions(
        "name='digits_mlp'")) == [1, 2]


def test_mlflow_failing_at_the_end_costs_one_warning_line(study, capsys):
    from imbtrain.tune.runner import log_best_models

    tmp, uri, result = study
    folder = result.path / "models" / "r1"
    log_best_models(uri, "no_such_study", "0" * 32, "no-run", [({"train_ratio": 1.0,
                    "mean": 0.5, "trial_id": "t", "trial_name": "n"}, folder)], "val_bal_acc")
    err = capsys.readouterr().err
    assert err.startswith("warning: MLflow: the best models were not logged to ")
    assert err.count("\n") == 1 and "they are in the study folder" in err


def test_register_needs_mlflow(tmp_path):
    from imbtrain.errors import UserError
    from imbtrain.tune.runner import run_study

    with pytest.raises(UserError, match="--register needs MLflow"):
        run_study("batch_size", storage=str(tmp_path), smoke=True, mlflow_uri=None,
                  register="x")
    assert list(tmp_path.iterdir()) == []
