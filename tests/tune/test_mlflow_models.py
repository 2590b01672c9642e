"""`imbtrain train --mlflow-uri URI --register NAME` on a real MLflow sqlite store: the run
holds curated params, every epoch's metrics, config.yaml and the per-class table, and is
tagged with imbtrain's version and commit; the registered model loads back with
`mlflow.pyfunc.load_model("models:/NAME/1")` and predicts what `imbtrain predict` predicts
(a CSV with an unseen category, an image folder, XGBoost)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from imbtrain import load_model
from imbtrain.cli import main
from imbtrain.version import __version__, git_commit


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (creating MLflow's tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.normal(size=n).round(3), "count": rng.integers(0, 6, n),
                       "colour": rng.choice(["red", "green", "blue"], n)})
    df["y"] = np.where(df["amount"] + (df["colour"] == "red") > 0.8, "fraud", "ok")
    return df


def tracked(store: str, call):
    """`call(mlflow)` with `store` as MLflow's tracking and registry URI for a moment."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store)
    try:
        return call(mlflow)
    finally:
        mlflow.set_tracking_uri(previous)


def pyfunc(store: str, uri: str):
    return tracked(store, lambda mlflow: mlflow.pyfunc.load_model(uri))


def cli_predict(model: Path, inputs: Path, out: Path, capsys) -> pd.DataFrame:
    assert main(["predict", str(model), str(inputs), "--out", str(out)]) == 0
    capsys.readouterr()
    return pd.read_parquet(out)


@pytest.mark.parametrize("model", ["mlp", "xgboost"])
def test_a_registered_table_model_predicts_as_imbtrain_predict(store, tmp_path, capsys, model):
    csv = tmp_path / "train.csv"
    rows(80, 0).to_csv(csv, index=False)
    name = f"fraud_{model}"
    extra = ["model=xgboost", "xgb_rounds=5"] if model == "xgboost" else ["model=mlp"]
    out = tmp_path / "run"
    assert main(["train", "dataset=tabular", f"data_dir={csv}", "label_column=y", "epochs=2",
                 *extra, "--out", str(out), "--mlflow-uri", store, "--register", name]) == 0
    printed = capsys.readouterr().out
    assert f"registered as models:/{name}/1" in printed

    new = rows(12, 1).drop(columns="y")
    new.loc[0, "colour"] = "purple"  # a colour the model never saw: the unknown category
    new.to_csv(tmp_path / "new.csv", index=False)
    mine = cli_predict(out, tmp_path / "new.csv", tmp_path / "p.parquet", capsys)
    theirs = pyfunc(store, f"models:/{name}/1").predict(new)
    assert list(theirs.columns) == ["fraud", "ok", "predicted"]
    assert theirs["predicted"].tolist() == mine["predicted"].tolist()
    np.testing.assert_allclose(theirs[["fraud", "ok"]], mine[["fraud", "ok"]], atol=1e-6)
    # The registered model's `model` artifact is the model folder: imbtrain.load_model reads
    # it as it reads `--out`, with the same numbers.
    local = tracked(store, lambda mlflow: mlflow.artifacts.download_artifacts(
        f"models:/{name}/1", dst_path=str(tmp_path / "dl")))
    [manifest] = Path(local).rglob("model.yaml")
    assert manifest.relative_to(local).as_posix() == "artifacts/model/model.yaml"
    again = load_model(manifest.parent).predictions(new)
    assert again["predicted"].tolist() == theirs["predicted"].tolist()
    np.testing.assert_allclose(again[["fraud", "ok"]], theirs[["fraud", "ok"]], atol=1e-6)


def test_the_train_run_is_curated_and_tagged(store, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dataset=digits", "model=mlp", "epochs=2", "train_ratio=0.1",
                 "--out", str(out), "--mlflow-uri", store, "--experiment", "digits"]) == 0
    capsys.readouterr()
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("digits")
    [run] = client.search_runs([exp.experiment_id])
    # The keys that differ from their defaults (dataset, model, epochs, train_ratio) and
    # method and seed, which say what a run is even at their defaults.
    assert run.data.params == {"dataset": "digits", "model": "mlp", "method": "erm",
                               "train_ratio": "0.1", "seed": "0", "epochs": "2"}
    tags = run.data.tags
    assert tags["imbtrain.run_kind"] == "train" and tags["imbtrain.version"] == __version__
    assert tags["imbtrain.git_commit"] == git_commit()[0]  # the tests run from a checkout
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    history = client.get_metric_history(run.info.run_id, "val_bal_acc")
    assert sorted(m.step for m in history) == [1, 2]
    assert not [k for k in run.data.metrics if "_class_acc_" in k]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "run.yaml", "metrics.json", "history.parquet",
            "per_class.json"} <= names
    table = json.loads(Path(client.download_artifacts(run.info.run_id, "per_class.json",
                                                      str(tmp_path))).read_text())
    assert table["columns"] == ["class", "name", "train_count", "train_acc", "val_acc",
                                "test_acc"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r[2] for r in table["data"]] == metrics["train_counts"]
    assert [r[5] for r in table["data"]] == pytest.approx(
        [metrics[f"test_class_acc_{k}"] for k in range(10)])


def test_a_registered_image_model_predicts_as_imbtrain_predict(store, tmp_path, capsys):
    from PIL import Image

    from imbtrain.data.vision import decode_images

    rng = np.random.default_rng(0)
    tree = tmp_path / "tree"
    for name, colour in {"sea": (20, 60, 200), "sand": (220, 200, 120)}.items():
        (tree / name).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (12, 12, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(tree / name / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "dataset=imagefolder", f"data_dir={tree}", "image_size=12",
                 "model=cnn", "epochs=1", "batch_size=4", "--out", str(out),
                 "--mlflow-uri", store, "--register", "beach"]) == 0
    capsys.readouterr()
    mine = cli_predict(out, tree, tmp_path / "p.parquet", capsys)
    images = decode_images([Path(p) for p in mine["id"]], 12, "test").numpy()
    model = pyfunc(store, "models:/beach/1")
    assert model.metadata.signature.inputs.inputs[0].shape == (-1, 3, 12, 12)
    theirs = model.predict(images)  # decoded images, as the signature says
    assert theirs["predicted"].tolist() == mine["predicted"].tolist()


def test_mlflow_problems_fail_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "epochs=1", "--out", str(out), "--register", "x"]) == 2
    assert capsys.readouterr().err == ("error: --register needs --mlflow-uri, the MLflow "
                                       "store that holds the model registry\n")
    assert main(["train", "epochs=1", "--out", str(out), "--mlflow-uri", "./mlruns"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MLflow tracking URI './mlruns' is not supported")
    assert err.count("\n") == 1 and not out.exists()
