"""Tabular data: CSV and Parquet files written here, the rules of imbtrain.data.tabular.

The files are laid out from the fixed split (`split_pools`, which depends on the labels only),
so the train pool's values are known and every expected number is worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from imbtrain.config import ConfigError, TrainConfig
from imbtrain.data import build_data, clear_cache, load_raw
from imbtrain.data.tabular import TabularInfo, split_pools
from imbtrain.errors import UserError

torch.set_num_threads(1)
Y = ["no"] * 10 + ["yes"] * 10  # 20 rows; codes: no = 0, yes = 1 (sorted)
CODES = np.array([0] * 10 + [1] * 10)
TRAIN, TEST = split_pools(CODES, 2)  # 6 + 6 train-pool rows, 4 + 4 test-pool rows
TRAIN_X = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, None]  # median 6 -> imputed 6
TEST_X = [100, 6, None, 3, 20, 8, 9, 10]  # 100: far outside the train range
TRAIN_C = ["red", "blue", None] + ["red", "blue"] * 4 + ["red"]
TEST_C = ["green", "red", "blue", "red", "blue", "red", "blue", None]  # green: unseen


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def columns() -> dict[str, list]:
    x, c = [None] * 20, [None] * 20
    for rows, xs, cs in ((TRAIN, TRAIN_X, TRAIN_C), (TEST, TEST_X, TEST_C)):
        for row, xv, cv in zip(rows, xs, cs, strict=True):
            x[row], c[row] = xv, cv
    return {"x": x, "c": c, "y": list(Y)}


def write(tmp_path, fmt: str, cols: dict[str, list] | None = None):
    cols = cols or columns()
    if fmt == "parquet":
        path = tmp_path / "t.parquet"
        pq.write_table(pa.table(cols), path)
        return path
    path = tmp_path / "t.csv"
    names = list(cols)
    lines = [",".join(names)]
    for i in range(len(cols[names[0]])):
        lines.append(",".join("" if cols[n][i] is None else str(cols[n][i]) for n in names))
    path.write_text("\n".join(lines) + "\n")
    return path


def cfg(path, **kw) -> TrainConfig:
    return TrainConfig(**{"dataset": "tabular", "data_dir": str(path), "label_column": "y",
                          "val_fraction": 0.5, "model": "mlp", **kw})


# ---------------------------------------------------------------- reading and encoding


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_file_is_read_encoded_and_standardised_on_the_train_pool(tmp_path, fmt):
    data = build_data(cfg(write(tmp_path, fmt), tabular_transform="standard"))
    info = data.feature_info
    assert info == TabularInfo(1, 1, (3,), ("x", "x_missing", "c=<missing>", "c=blue", "c=red"),
                               "standard")
    assert data.class_names == ["no", "yes"] and data.input_shape == (5,)
    assert data.train_counts == [6, 6] and data.train_x.dtype == torch.float32
    # Train rows (in file order) hold TRAIN_X; with the missing value imputed by the median 6,
    # the column {1..11, 6} has mean 6 and population variance 2 (1+4+9+16+25) / 12 = 110 / 12.
    mean, std = 6.0, math.sqrt(110 / 12)
    expected = [((6.0 if v is None else v) - mean) / std for v in TRAIN_X]
    assert data.train_x[:, 0].tolist() == pytest.approx(expected, abs=1e-5)
    # The full file's mean is not the train pool's: the test pool holds 100 and 20.
    everything = [v for v in TRAIN_X + TEST_X if v is not None]
    assert sum(everything) / len(everything) > 9
    held_out = torch.cat([data.val_x, data.test_x])
    expected = sorted((v - mean) / std if v is not None else 0.0 for v in TEST_X)
    assert sorted(held_out[:, 0].tolist()) == pytest.approx(expected, abs=1e-5)
    # Indicator: the missing train value (the last train row) and one held-out value.
    assert data.train_x[:, 1].tolist() == [0.0] * 11 + [1.0] and held_out[:, 1].sum() == 1
    # One-hot: missing is a category of its own; the unseen "green" is the all-zero block.
    assert data.train_x[2, 2:].tolist() == [1.0, 0.0, 0.0]  # TRAIN_C[2] is missing
    assert data.train_x[:, 2:].sum(0).tolist() == [1.0, 5.0, 6.0]  # missing, blue, red
    assert sorted(held_out[:, 2:].sum(1).tolist()) == [0.0] + [1.0] * 7


def test_quantile_transform_is_fitted_on_the_train_pool(tmp_path):
    data = build_data(cfg(write(tmp_path, "csv")))  # tabular_transform=quantile (default)
    assert data.feature_info.transform == "quantile"
    raw = [6.0 if v is None else v for v in TRAIN_X]
    z = data.train_x[:, 0].tolist()
    for i in range(12):  # monotone: the order of the raw train values is kept
        for j in range(12):
            if raw[i] < raw[j]:
                assert z[i] < z[j]
    assert z[5] == z[11]  # the raw 6 and the imputed 6
    # 100 lies above every train value: clipped to the transform's upper bound
    # (scikit-learn clips at norm.ppf(1 - 1e-7)); fitted on the whole file it would map to
    # the top of a range that the train values span.
    held_out = torch.cat([data.val_x, data.test_x])[:, 0]
    assert held_out.max().item() == pytest.approx(5.199337582605575, abs=1e-5)
    assert z[10] > 3.0  # the train maximum 11 is at the top of the train distribution


def test_labels_of_any_type_are_sorted_codes(tmp_path):
    cols = columns()
    cols["y"] = [3] * 10 + [10] * 10  # ints: sorted numerically (3 < 10), not as text
    data = build_data(cfg(write(tmp_path, "parquet", cols)))
    assert data.class_names == ["3", "10"] and data.train_counts == [6, 6]


def test_drop_and_constant_columns_are_left_out(tmp_path):
    cols = {**columns(), "id": list(range(20)), "const": [7] * 20}
    data = build_data(cfg(write(tmp_path, "csv", cols), tabular_drop="id"))
    assert data.feature_info.columns == ("x", "x_missing", "c=<missing>", "c=blue", "c=red")


def test_train_ratio_profile_applies_to_the_train_pool(tmp_path):
    data = build_data(cfg(write(tmp_path, "csv"), train_ratio=0.5))
    assert data.train_counts == [6, 3]  # exp profile, n_max 6: floor(6 * 0.5) = 3


# ---------------------------------------------------------------- refused with one clear line


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(y=["a"] * 20), r"label column 'y' of t.csv holds a single value \('a'\); "
                                       "a classifier needs at least two classes"),
    (lambda c: c.update(y=["a"] * 17 + ["b"] * 3), r"class 'b' of label column 'y' has 3 row"),
    (lambda c: c["y"].__setitem__(4, None), r"label column 'y' of t.csv has 1 missing value\(s\) "
                                            r"\(data rows 5\)"),
    (lambda c: c.update(x=list(range(19)) + ["abc"]),
     r"column 'x' holds numbers but also 1 value\(s\) that are not \('abc' in data row 20\)"),
])
def test_bad_files_fail_with_a_clear_message(tmp_path, change, message):
    cols = columns()
    change(cols)
    with pytest.raises(UserError, match=message):
        load_raw(cfg(write(tmp_path, "csv", cols)))


def test_garbage_after_the_first_block_of_a_large_csv(tmp_path):
    # pyarrow types a CSV column from its first block (1 MB): 'abc' in row 150,000 fails its
    # conversion; the file is then read as text and the same rule names the value.
    rows = [f"{i},{'ab'[i % 2]}" for i in range(150_000)]
    rows[-1] = "abc,b"
    path = tmp_path / "big.csv"
    path.write_text("x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match=r"column 'x' holds numbers but also 1 value\(s\) that "
                                        r"are not \('abc' in data row 150000\)"):
        load_raw(cfg(path))


def test_missing_label_column_and_missing_file(tmp_path):
    path = write(tmp_path, "csv")
    with pytest.raises(UserError, match=r"label_column 'z' is not a column of t.csv; columns: "
                                        r"x, c, y$"):
        load_raw(cfg(path, label_column="z"))
    with pytest.raises(UserError, match=r"data_dir .*nope.csv does not exist; expected a CSV or "
                                        "Parquet file"):
        load_raw(cfg(tmp_path / "nope.csv"))
    with pytest.raises(UserError, match="tabular_drop: 'id' not a column of t.csv"):
        load_raw(cfg(path, tabular_drop="id"))
    with pytest.raises(ConfigError, match="dataset=tabular needs label_column"):
        TrainConfig(dataset="tabular", data_dir=str(path))


# ---------------------------------------------------------------- presets and embedded data


def test_adult_preset_reads_the_headerless_uci_file(tmp_path):
    row = "{age}, {wc}, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, " \
          "White, Male, 2174, 0, 40, United-States, {label}"
    lines = [row.format(age=20 + i, wc="?" if i == 0 else "Private",
                        label=" >50K" if i % 2 else " <=50K") for i in range(20)]
    path = tmp_path / "adult.data"
    path.write_text("\n".join(lines) + "\n\n")
    data = build_data(TrainConfig(dataset="tabular", data_dir=str(path),
                                  tabular_preset="adult", model="mlp"))
    assert data.class_names == ["<=50K", ">50K"]  # stripped of the file's spaces
    # Constant columns (fnlwgt, education, ...) are left out; '?' is a missing workclass.
    assert data.feature_info.columns[0] == "age"
    assert set(data.feature_info.columns) <= {"age", "workclass=<missing>", "workclass=Private"}


def test_otto_preset_drops_the_id_column(tmp_path):
    cols = {"id": list(range(20)), "feat_1": list(range(20)), "feat_2": [i % 3 for i in range(20)],
            "target": ["Class_1"] * 10 + ["Class_2"] * 10}
    path = write(tmp_path, "csv", cols)
    data = build_data(TrainConfig(dataset="tabular", data_dir=str(path), tabular_preset="otto",
                                  model="mlp"))
    assert data.feature_info.columns == ("feat_1", "feat_2")
    assert data.class_names == ["Class_1", "Class_2"]


def test_tabular_synth_is_embedded_and_fixed():
    c = TrainConfig(dataset="tabular_synth", train_ratio=0.05, test_ratio=0.05,
                    val_fraction=0.4444, model="mlp")
    data = build_data(c)
    assert data.input_shape == (19,) and data.class_names == ["0", "1"]
    assert data.feature_info.n_numeric == 9 and data.feature_info.n_indicators == 1
    assert data.feature_info.cat_cardinalities == (6, 3)
    # Pools: 1,920 train rows a class (64%), test pool 1,080 a class, val 0.4444 of it (480).
    assert data.train_counts == [1920, 96]  # floor(1920 * 0.05) = 96
    assert torch.bincount(data.val_y).tolist() == [480, 24]
    assert torch.bincount(data.test_y).tolist() == [600, 30]
    clear_cache()
    again = build_data(c)
    assert torch.equal(again.train_x, data.train_x) and torch.equal(again.test_y, data.test_y)
