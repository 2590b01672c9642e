"""`imbtrain train` then `imbtrain predict`: a model leaves every run and applies to new
inputs as the in-process model does (a CSV with an unseen category, an image folder,
XGBoost); bad input to predict is one line, exit status 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from imbtrain.cli import main
from imbtrain.config import TrainConfig
from imbtrain.data import build_data, load_raw
from imbtrain.data.tabular import split_pools
from imbtrain.train import train

TAB = ["dataset=tabular", "label_column=y", "epochs=2", "batch_size=16"]


def table(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """Numbers (with missing values), counts, a colour and a flag; y from amount and colour."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.normal(size=n).round(3), "count": rng.integers(0, 6, n),
                       "colour": rng.choice(["red", "green", "blue"], n),
                       "flag": rng.choice([True, False], n)})
    df.loc[::11, "amount"] = np.nan
    score = df["amount"].fillna(0) + (df["colour"] == "red") * 1.5
    df["y"] = np.where(score > 0.8, "fraud", "ok")
    return df


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tab") / "tx.csv"
    table().to_csv(path, index=False)
    return path


def predict(tmp: Path, model: Path, inputs: Path | str, capsys, name="p.parquet"):
    out = tmp / name
    assert main(["predict", str(model), str(inputs), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    return pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)


def softmax(model, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).float().softmax(1).double().numpy()


# ================================================================ tables


@pytest.mark.parametrize("model", ["mlp", "xgboost"])
def test_csv_rows_predict_as_the_in_process_model(tmp_path, csv_file, capsys, model):
    extra = ["model=xgboost", "xgb_rounds=6"] if model == "xgboost" else ["model=mlp"]
    out = tmp_path / "run"
    assert main(["train", *TAB, f"data_dir={csv_file}", *extra, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"predict with: imbtrain predict {out} INPUT" in printed
    assert {"model.yaml", "model.pt", "config.yaml"} <= {p.name for p in out.iterdir()}

    # The in-process model: the same config trained here, its fitted transform and network.
    cfg = TrainConfig(**{k: v for k, v in (a.split("=") for a in TAB + extra)},
                      data_dir=str(csv_file))
    data = build_data(cfg)
    result = train(cfg, data=data, log=lambda line: None)

    # New rows of that CSV: the held-out pool's rows (without their label), one of them
    # with a colour the model never saw and one with a missing amount.
    df = pd.read_csv(csv_file)
    y = (df["y"] == "ok").to_numpy().astype(np.int64)  # class names sorted: fraud, ok
    _, held_out = split_pools(y, 2)
    rows = df.iloc[held_out].drop(columns=["y"]).reset_index(drop=True)
    rows.loc[0, "colour"] = "purple"
    rows.loc[1, "amount"] = np.nan
    new = tmp_path / "new.csv"
    rows.to_csv(new, index=False)

    got = predict(tmp_path, out, new, capsys)
    assert list(got.columns) == ["id", "fraud", "ok", "predicted"]
    assert got["id"].tolist() == list(range(len(rows)))

    transform = data.tabular_transform
    x = torch.from_numpy(transform.encode(pa_table(rows), "rows"))
    # The transform is the training pipeline's: held-out rows encode as the pool did ...
    pool = load_raw(cfg).test_x
    same = np.arange(2, len(rows))
    assert torch.equal(x[same], pool[same])
    # ... and the unseen colour is the all-zero block of the colour columns (the unknown
    # category), the missing amount the train median with its missing indicator set.
    colour = [i for i, c in enumerate(transform.info.columns) if c.startswith("colour=")]
    assert len(colour) == 3 and x[0, colour].tolist() == [0.0, 0.0, 0.0]
    assert x[1, transform.info.columns.index("amount_missing")] == 1.0

    expected = softmax(result.model, x)
    np.testing.assert_allclose(got[["fraud", "ok"]].to_numpy(), expected, atol=1e-5)
    names = np.array(["fraud", "ok"])
    assert got["predicted"].tolist() == names[expected.argmax(1)].tolist()

    # From Python: the same model folder, the same predictions; a DataFrame works too.
    import imbtrain

    loaded = imbtrain.load_model(out)
    assert loaded.class_names == ["fraud", "ok"] and loaded.config == cfg
    np.testing.assert_allclose(loaded.predict_proba(rows), expected, atol=1e-5)
    assert loaded.predict(new) == got["predicted"].tolist()


def pa_table(df: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(df, preserve_index=False)


def test_the_label_and_the_columns_left_out_may_come_along(tmp_path, csv_file, capsys):
    out = tmp_path / "run"
    assert main(["train", *TAB, f"data_dir={csv_file}", "model=mlp", "tabular_drop=count",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    got = predict(tmp_path, out, csv_file, capsys, name="p.csv")  # the training file itself
    assert len(got) == 90 and set(got["predicted"]) <= {"fraud", "ok"}
    np.testing.assert_allclose(got[["fraud", "ok"]].sum(axis=1), 1.0, atol=1e-6)


# ================================================================ images


def write_tree(root: Path, per_class: int = 10, size: int = 20) -> Path:
    """A class-per-folder tree of small PNGs: each class its own colour, plus noise."""
    from PIL import Image

    rng = np.random.default_rng(1)
    colours = {"cat": (200, 40, 40), "dog": (40, 200, 40), "fox": (40, 40, 200)}
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 30, (size, size, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_an_image_folder_predicts_as_the_in_process_model(tmp_path, capsys):
    from PIL import Image

    from imbtrain.data.vision import decode_images

    tree = write_tree(tmp_path / "tree")
    args = ["dataset=imagefolder", f"data_dir={tree}", "image_size=16", "model=cnn",
            "epochs=2", "batch_size=8"]
    out = tmp_path / "run"
    assert main(["train", *args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "data imagefolder: 24 train images in 3 classes (counts 8, 8, 8), 3 val, 3 test" \
        in printed
    cfg = TrainConfig(**dict(a.split("=") for a in args))
    result = train(cfg, log=lambda line: None)
    data = build_data(cfg)

    # New images: a larger one, a grayscale one (imagefolder decodes every file to RGB
    # and squashes it to 16x16, as training did) and the whole tree, searched recursively.
    new = tmp_path / "new"
    new.mkdir()
    Image.fromarray(np.full((24, 30, 3), (190, 50, 60), np.uint8)).save(new / "big.png")
    Image.fromarray(np.full((16, 16), 90, np.uint8), mode="L").save(new / "gray.png")
    (new / "notes.txt").write_text("not an image: skipped")
    got = predict(tmp_path, out, new, capsys)
    assert got["id"].tolist() == [str(new / "big.png"), str(new / "gray.png")]
    x = decode_images([new / "big.png", new / "gray.png"], 16, "test")
    expected = softmax(result.model, (x.float() / 255 - mean(data)) / std(data))
    np.testing.assert_allclose(got[["cat", "dog", "fox"]].to_numpy(), expected, atol=1e-5)

    whole = predict(tmp_path, out, tree, capsys)
    assert len(whole) == 30 and whole["id"].iloc[0] == str(tree / "cat" / "0.png")
    one = predict(tmp_path, out, tree / "dog" / "3.png", capsys)
    same = whole[whole["id"] == str(tree / "dog" / "3.png")]
    assert one["predicted"].tolist() == same["predicted"].tolist()
    np.testing.assert_allclose(one[["cat", "dog", "fox"]], same[["cat", "dog", "fox"]],
                               atol=1e-6)


def mean(data) -> torch.Tensor:
    return torch.tensor(data.mean).view(1, -1, 1, 1)


def std(data) -> torch.Tensor:
    return torch.tensor(data.std).view(1, -1, 1, 1)


def test_an_embedded_image_model_takes_its_own_size_and_channels(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "digits"
    assert main(["train", "dataset=digits", "model=mlp", "epochs=1", "train_ratio=0.1",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    raw = load_raw(TrainConfig(dataset="digits"))
    folder = tmp_path / "eights"
    folder.mkdir()
    for i in range(3):  # digits' own 8x8 grayscale images, written as PNG
        Image.fromarray(raw.test_x[i, 0].numpy(), mode="L").save(folder / f"{i}.png")
    got = predict(tmp_path, out, folder, capsys)
    import imbtrain

    model = imbtrain.load_model(out)
    expected = model.predict_proba(raw.test_x[:3])  # the arrays themselves
    np.testing.assert_allclose(got[model.class_names].to_numpy(), expected, atol=1e-6)


# ================================================================ bad input: one line, exit 2


@pytest.fixture(scope="module")
def models(tmp_path_factory, csv_file):
    from PIL import Image

    tmp = tmp_path_factory.mktemp("models")
    tab, digits = tmp / "tab", tmp / "digits"
    assert main(["train", *TAB, f"data_dir={csv_file}", "model=mlp", "--out", str(tab)]) == 0
    assert main(["train", "dataset=digits", "model=mlp", "epochs=1", "--out",
                 str(digits)]) == 0
    files = tmp / "files"
    files.mkdir()
    df = table(6, seed=2)
    df.drop(columns=["colour"]).to_csv(files / "no_colour.csv", index=False)
    df.assign(zip_code=1).to_csv(files / "extra.csv", index=False)
    df.astype({"amount": str}).assign(amount="lots").to_csv(files / "words.csv", index=False)
    (files / "empty.csv").write_text("")
    df.iloc[:0].to_csv(files / "header_only.csv", index=False)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(files / "rgb.png")
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(files / "big.png")
    texts = files / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("hello")
    (files / "broken.png").write_bytes(b"not a png")
    (tmp / "plain").mkdir()
    return {"tab": tab, "digits": digits, "files": files, "tmp": tmp}


BAD = [
    ("tab", "no_colour.csv", "lacks the feature column(s) 'colour' the model was trained on"),
    ("tab", "extra.csv", "has column(s) 'zip_code' the model was not trained on"),
    ("tab", "words.csv", "column 'amount' of {files}/words.csv holds 'lots' in data row 1; "
                         "the model was trained on numbers"),
    ("tab", "empty.csv", "input {files}/empty.csv is empty"),
    ("tab", "header_only.csv", "{files}/header_only.csv holds no rows"),
    ("tab", "texts", "input {files}/texts is a folder; the model takes rows of a CSV"),
    ("digits", "rgb.png", "image {files}/rgb.png has 3 channel(s) (mode RGB); the model takes "
                          "1-channel (grayscale) images"),
    ("digits", "big.png", "image {files}/big.png is 10x10; the model takes 8x8 images"),
    ("digits", "texts", "input {files}/texts holds no image files"),
    ("digits", "broken.png", "cannot read image {files}/broken.png"),
    ("digits", "header_only.csv", "is a table; the model takes grayscale 8x8 images"),
    ("digits", "missing.png", "input {files}/missing.png does not exist"),
    ("plain", "rgb.png", "model {tmp}/plain has no model.yaml; expected a model folder"),
    ("files/rgb.png", "rgb.png", "model {tmp}/files/rgb.png is a file; expected a model folder"),
    ("nowhere", "rgb.png", "model {tmp}/nowhere does not exist"),
]


@pytest.mark.parametrize("model,inputs,message", BAD, ids=[f"{m}-{i}" for m, i, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(models, tmp_path, capsys, model, inputs,
                                                  message):
    files, tmp = models["files"], models["tmp"]
    where = models.get(model, tmp / model)
    out = tmp_path / "p.parquet"
    assert main(["predict", str(where), str(files / inputs), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message.format(files=files, tmp=tmp) in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_predictions_file_must_be_parquet_or_csv(models, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["predict", str(models["tab"]), str(models["files"] / "extra.csv"),
                 "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: --out {out}: the predictions file ends in "
                                       ".parquet or .csv\n")
    assert not out.exists()
