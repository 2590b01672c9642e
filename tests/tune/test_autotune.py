"""`imbtrain autotune` end to end on tiny budgets (Ray in-process, Optuna + ASHA, MLflow
sqlite): a CSV with a categorical column and a long-tailed PNG folder cut from mnist5k. Each
ends with a saved model whose `imbtrain predict` output gives its recorded test metrics, the
baselines beside it, a registered MLflow model and report.html."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from imbtrain.study.report import AUTOTUNE_FILE, REPORT_FILE


def fraud_csv(path, n_major=150, n_minor=20, seed=0):
    """Two numeric columns and a categorical one; the minority class shifted in both."""
    rng = np.random.default_rng(seed)
    y = np.array([0] * n_major + [1] * n_minor)
    amount = rng.normal(loc=1.5 * y, size=len(y)).round(4)
    hour = rng.normal(loc=-1.0 * y, size=len(y)).round(4)
    channel = np.where(rng.random(len(y)) < 0.3 + 0.5 * y, "web", "shop")
    df = pd.DataFrame({"amount": amount, "channel": channel, "hour": hour,
                       "label": np.where(y == 1, "fraud", "ok")})
    df.to_csv(path, index=False)
    return df


def bal_acc(truth, predicted) -> float:
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    return float(np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]))


def run_cli(*argv) -> int:
    from imbtrain.cli import main

    return main(list(argv))


def check_predict(tmp_path, summary, truth_of):
    """`imbtrain predict` on the test split gives the final model's test metrics."""
    out = tmp_path / "predictions.csv"
    assert run_cli("predict", summary["model_folder"], summary["test_input"], "--out",
                   str(out)) == 0
    pred = pd.read_csv(out)
    truth = truth_of(pred)
    final = summary["models"]["final"]["test"]
    assert bal_acc(truth, pred["predicted"]) == pytest.approx(final["test_bal_acc"])
    assert float(np.mean(np.asarray(truth) == pred["predicted"].to_numpy())) == \
        pytest.approx(final["test_acc"])


@pytest.mark.e2e  # a whole study (minutes): make test-e2e
def test_autotune_csv(ray_session, tmp_path, capsys):
    from mlflow import MlflowClient

    df = fraud_csv(tmp_path / "fraud.csv")
    db = tmp_path / "mlflow.db"
    code = run_cli("autotune", str(tmp_path / "fraud.csv"), "--label-column", "label",
                   "--budget-trials", "3", "--epochs", "2", "--storage",
                   str(tmp_path / "runs"), "--name", "fraud", "--mlflow-uri",
                   f"sqlite:///{db}", "--register", "fraud_model")
    out = capsys.readouterr().out
    assert code == 0, out
    study = tmp_path / "runs" / "fraud"
    summary = yaml.safe_load((study / AUTOTUNE_FILE).read_text())
    # Every class in every split: of 150 / 20, test 30 / 4, validation 30 / 4.
    assert summary["class_names"] == ["fraud", "ok"]
    assert summary["class_counts"] == {"train": [12, 90], "val": [4, 30], "test": [4, 30]}
    assert set(summary["models"]) >= {"final", "erm", "logreg", "xgboost"}
    assert summary["compute"]["trials"] == 3
    res = pd.read_parquet(study / "results.parquet")
    assert len(res) == 3 and (res["status"] == "TERMINATED").all()
    # The final model is the best on validation among the tuned config and the baselines.
    val = summary["validation"]
    assert val[summary["chosen"]] == max(val.values())
    assert (study / "model" / "model.yaml").is_file()
    assert (study / "baselines" / "logreg" / "model.yaml").is_file()
    truth = df["label"].to_numpy()
    test_rows = pd.read_csv(summary["test_input"])
    check_predict(tmp_path, summary, lambda pred: test_rows["label"].to_numpy())
    assert len(test_rows) == 34 and set(test_rows["label"]) <= set(truth)
    page = (study / REPORT_FILE).read_text()
    for section in ("baselines", "prescriptions", "data", "sensitivity", "per-class"):
        assert f'<section id="{section}">' in page
    assert summary["verdict"] in page
    client = MlflowClient(f"sqlite:///{db}")
    versions = client.search_model_versions("name='fraud_model'")
    assert len(versions) == 1
    assert "registered as models:/fraud_model/1" in out


def mnist_pngs(root, counts=(40, 20, 10, 6)):
    """A long tail of mnist5k digits 0..3 as PNG files, one folder a class."""
    from PIL import Image

    from imbtrain.config import TrainConfig
    from imbtrain.registry import DATASETS

    raw = DATASETS.get("mnist5k")(TrainConfig())
    for c, n in enumerate(counts):
        folder = root / f"digit{c}"
        folder.mkdir(parents=True)
        idx = np.flatnonzero(raw.train_y.numpy() == c)[:n]
        for i in idx:
            Image.fromarray(raw.train_x[i, 0].numpy()).save(folder / f"{i}.png")


@pytest.mark.e2e  # a whole study (minutes): make test-e2e
def test_autotune_image_folder(ray_session, tmp_path, capsys):
    from pathlib import Path

    mnist_pngs(tmp_path / "digits")
    code = run_cli("autotune", str(tmp_path / "digits"), "--budget-trials", "2",
                   "--epochs", "1", "--storage", str(tmp_path / "runs"), "--name", "digits",
                   "--mlflow-uri", "none")
    out = capsys.readouterr().out
    assert code == 0, out
    study = tmp_path / "runs" / "digits"
    summary = yaml.safe_load((study / AUTOTUNE_FILE).read_text())
    assert summary["kind"] == "image"
    # 40 / 20 / 10 / 6: test 8, 4, 2, 1; validation 8, 4, 2, 2.
    assert summary["class_counts"]["test"] == [8, 4, 2, 1]
    assert summary["class_counts"]["val"] == [8, 4, 2, 2]
    assert set(summary["models"]) >= {"final", "erm"}
    space = yaml.safe_load((tmp_path / "runs" / "digits_data" / "space.yaml").read_text())
    assert {"augment", "ssl", "ssl_lambda", "sam_rho", "smoothing_eps"} <= set(space["knobs"])
    check_predict(tmp_path, summary, lambda pred: [Path(p).parent.name for p in pred["id"]])
    assert (study / REPORT_FILE).is_file()


def test_autotune_bad_inputs(tmp_path, capsys):
    fraud_csv(tmp_path / "f.csv")
    assert run_cli("autotune", str(tmp_path / "f.csv"), "--storage",
                   str(tmp_path / "runs"), "--mlflow-uri", "none") == 2
    assert "give --label-column" in capsys.readouterr().err
    assert run_cli("autotune", str(tmp_path / "f.csv"), "--label-column", "label",
                   "--budget-trials", "1", "--storage", str(tmp_path / "runs")) == 2
    assert "--budget-trials 1" in capsys.readouterr().err
    assert run_cli("autotune", str(tmp_path / "f.csv"), "--label-column", "label",
                   "--budget-hours", "0", "--storage", str(tmp_path / "runs")) == 2
    assert capsys.readouterr().err == ("error: --budget-hours 0: give a positive number of "
                                       "hours (e.g. 0.5)\n")
    assert run_cli("autotune", str(tmp_path / "f.csv"), "--label-column", "label",
                   "--max-concurrent", "0", "--storage", str(tmp_path / "runs")) == 2
    assert capsys.readouterr().err == "error: --max-concurrent 0: give 1 or more\n"
    assert run_cli("autotune", str(tmp_path / "f.csv"), "--label-column", "label",
                   "--storage", "s3://bucket/runs", "--mlflow-uri", "none") == 2
    assert capsys.readouterr().err == (
        "error: --storage s3://bucket/runs: autotune writes its data splits beside the study, "
        "where every trial reads them as files; give a folder (on a cluster, one that every "
        "node mounts), not a URI\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.e2e  # a whole study (minutes): make test-e2e
def test_autotune_within_an_hour_budget(ray_session, tmp_path, capsys):
    """`--budget-hours` alone: Optuna draws trials until the time is up (Tune's time budget;
    the trial running then is stopped where it is), and the autotune ends as usual."""
    fraud_csv(tmp_path / "fraud.csv")
    budget_h = 20 / 3600  # 20 s of search
    code = run_cli("autotune", str(tmp_path / "fraud.csv"), "--label-column", "label",
                   "--budget-hours", f"{budget_h}", "--epochs", "2", "--storage",
                   str(tmp_path / "runs"), "--name", "timed", "--mlflow-uri", "none")
    out = capsys.readouterr().out
    assert code == 0, out
    study = tmp_path / "runs" / "timed"
    meta = yaml.safe_load((study / "study.yaml").read_text())
    assert meta["num_trials"] == -1 and meta["time_budget_s"] == pytest.approx(20.0)
    assert "study timed: trials until 20 s of search" in out
    summary = yaml.safe_load((study / AUTOTUNE_FILE).read_text())
    res = pd.read_parquet(study / "results.parquet")
    assert summary["compute"]["trials"] == len(res) >= 1
    assert (study / "model" / "model.yaml").is_file()
    assert "trials until 20 s of search" in (study / REPORT_FILE).read_text()
