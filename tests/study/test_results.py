"""The result tables' format, Ray-free: written and read back with their schema."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow.parquet as pq
import pytest

from imbtrain.config import TrainConfig
from imbtrain.errors import UserError
from imbtrain.study.results import (
    HISTORY_FILE,
    RESULTS_FILE,
    StudyTables,
    best_epoch,
    history_table,
    order_columns,
    read_tables,
    write_tables,
)


def tables() -> StudyTables:
    cfg = {f"config/{k}": v for k, v in TrainConfig(dataset="digits").to_dict().items()}
    results = order_columns(pd.DataFrame([{
        "trial_id": "a1", "trial_name": "digits_r1_bs64_s0", "status": "TERMINATED",
        "error": None, **cfg, "val_bal_acc": 0.75, "best/val_bal_acc": 0.8,
        "train_counts": [10, 5], "epochs_run": 2, "time_total_s": 1.5, "node_id": "n",
        "hostname": "h", "pid": 7}]))
    history = pd.DataFrame({"trial_id": ["a1", "a1"], "trial_name": ["x", "x"],
                            "epoch": [1, 2], "val_bal_acc": [0.8, 0.75]})
    return StudyTables(results, history)


def test_tables_round_trip_with_their_schema(tmp_path):
    write_tables(tables(), str(tmp_path))
    schema = pq.read_schema(tmp_path / RESULTS_FILE)
    assert str(schema.field("train_counts").type) == "list<element: int64>"
    assert str(schema.field("config/batch_size").type) == "int64"
    assert str(schema.field("config/lr").type) == "double"
    assert str(schema.field("config/channels_last").type) == "bool"
    assert str(pq.read_schema(tmp_path / HISTORY_FILE).field("epoch").type) == "int64"
    back = read_tables(tmp_path)
    assert back.results["val_bal_acc"].tolist() == [0.75]
    assert list(back.results["train_counts"][0]) == [10, 5]
    assert back.history["val_bal_acc"].tolist() == [0.8, 0.75]
    assert list(back.results.columns[:4]) == ["trial_id", "trial_name", "status", "error"]


def test_history_keeps_an_epochs_latest_report_and_best_epoch_picks_by_the_metric():
    reported = pd.DataFrame({"epoch": [1, 2, 2, 3], "val_bal_acc": [0.5, 0.6, 0.7, 0.65],
                             "done": [False] * 4, "config/lr": [0.1] * 4})
    hist = history_table("t", "name", reported)
    assert hist["epoch"].tolist() == [1, 2, 3]
    assert hist["val_bal_acc"].tolist() == [0.5, 0.7, 0.65]  # epoch 2's later report
    assert "config/lr" not in hist and "done" not in hist
    assert best_epoch(hist, "val_bal_acc", "max") == {"best/epoch": 2.0,
                                                      "best/val_bal_acc": 0.7}
    assert best_epoch(hist, "val_bal_acc", "min")["best/epoch"] == 1.0
    assert best_epoch(hist.assign(val_bal_acc=math.nan), "val_bal_acc", "max") == {}


def test_a_folder_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no results.parquet; expected the folder of a "
                                        "finished study"):
        read_tables(tmp_path)
