"""The data side of `imbtrain autotune`: the held-out splits (every class in every split,
the counts worked out by hand), the layouts the trials and final models read, the space
built from the data, and the prescriptions read off a results table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imbtrain.errors import UserError
from imbtrain.study.autotune import (
    autotune_space,
    batch_sizes,
    hold_out,
    prescriptions,
    read_source,
    write_splits,
)


def test_hold_out_counts_by_hand():
    # 50 / 10 / 4 samples: test = round(0.2 n) >= 1 -> 10, 2, 1; val = round(0.2 n) >= 2
    # -> 10, 2, 2; train the rest -> 30, 6, 1.
    y = np.array([0] * 50 + [1] * 10 + [2] * 4)
    s = hold_out(y, ["a", "b", "c"], seed=3)
    assert s.counts(y, 3) == {"train": [30, 6, 1], "val": [10, 2, 2], "test": [10, 2, 1]}
    together = np.concatenate([s.train, s.val, s.test])
    assert sorted(together.tolist()) == list(range(64))  # a partition
    again = hold_out(y, ["a", "b", "c"], seed=3)
    assert again.test.tolist() == s.test.tolist()  # seeded
    assert hold_out(y, ["a", "b", "c"], seed=4).test.tolist() != s.test.tolist()


def test_hold_out_refuses_a_class_of_three():
    with pytest.raises(UserError, match="class 'c' has 3 sample"):
        hold_out(np.array([0] * 10 + [1] * 3), ["a", "c"])


def test_batch_sizes_fit_the_train_split():
    assert batch_sizes(1000) == [16, 32, 64, 128]  # 1000 // 256 = 3 steps < 4
    assert batch_sizes(2048) == [16, 32, 64, 128, 256, 512]
    assert batch_sizes(40) == [16, 32]  # two at least


def table(tmp_path, n_major=40, n_minor=8):
    rng = np.random.default_rng(0)
    n = n_major + n_minor
    df = pd.DataFrame({"amount": rng.normal(size=n).round(3),
                       "region": rng.choice(["north", "south"], size=n),
                       "fraud": ["no"] * n_major + ["yes"] * n_minor})
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    return path, df


def test_table_layouts_and_test_rows(tmp_path):
    from imbtrain.config import TrainConfig
    from imbtrain.data import build_data

    path, df = table(tmp_path)
    source = read_source(path, "fraud")
    assert source.kind == "table" and source.class_names == ["no", "yes"]
    s = hold_out(source.labels, source.class_names)
    paths = write_splits(source, s, tmp_path / "d")
    test = pd.read_csv(paths["test"])
    assert test["fraud"].tolist() == df["fraud"].iloc[s.test].tolist()
    assert test["region"].tolist() == df["region"].iloc[s.test].tolist()
    # The search trains on the train rows only; the final models on train + validation.
    for layout, n_train in (("search", len(s.train)), ("final", len(s.train) + len(s.val))):
        cfg = TrainConfig(dataset="tabular_pools", data_dir=str(paths[layout]),
                          label_column="fraud", val_fraction=0.9)
        assert sum(build_data(cfg).train_counts) == n_train


def test_read_source_refusals(tmp_path):
    path, _ = table(tmp_path)
    with pytest.raises(UserError, match="give --label-column"):
        read_source(path)
    with pytest.raises(UserError, match="'nope' is not a column"):
        read_source(path, "nope")
    with pytest.raises(UserError, match="does not exist"):
        read_source(tmp_path / "missing.csv", "fraud")


def test_space_of_a_table_and_of_images(tmp_path):
    path, _ = table(tmp_path)
    source = read_source(path, "fraud")
    s = hold_out(source.labels, source.class_names)
    space = autotune_space(source, s, tmp_path / "d", epochs=3, trials=5)
    assert space["base"]["model"] == "mlp" and space["base"]["dataset"] == "tabular_pools"
    assert "augment" not in space["knobs"] and "ssl" not in space["knobs"]
    assert space["knobs"]["batch_size"] == {"choice": [16, 32]}
    assert space["searcher"] == {"type": "optuna", "num_samples": 5, "seed": 0}
    assert space["scheduler"]["type"] == "asha"
    source.kind, source.image_side = "image", 28
    img = autotune_space(source, s, tmp_path / "d", epochs=3, trials=5)
    assert img["knobs"]["augment"] == {"choice": ["none", "flip_crop", "trivialaugment"]}
    assert img["knobs"]["ssl"] == {"choice": ["none", "vicreg"]}


def test_space_loads_as_a_study(tmp_path):
    from imbtrain.study.autotune import write_space
    from imbtrain.study.space import load_space

    path, _ = table(tmp_path)
    source = read_source(path, "fraud")
    s = hold_out(source.labels, source.class_names)
    write_splits(source, s, tmp_path / "d")
    spec = load_space(write_space(autotune_space(source, s, tmp_path / "d", 2, 4),
                                  tmp_path / "d"))
    assert spec.searcher == "optuna" and spec.num_trials() == 4
    # --budget-hours 0.5 alone: trials until 30 min of search; with --budget-trials 8 as
    # well, whichever ends first; --max-concurrent 1: one trial at a time.
    hours = load_space(write_space(autotune_space(source, s, tmp_path / "d", 2, None,
                                                  hours=0.5, max_concurrent=1),
                                   tmp_path / "d"))
    assert (hours.num_trials(), hours.time_budget_s, hours.max_concurrent) == (-1, 1800.0, 1)
    both = load_space(write_space(autotune_space(source, s, tmp_path / "d", 2, 8,
                                                 hours=0.5), tmp_path / "d"))
    assert (both.num_trials(), both.time_budget_s, both.max_concurrent) == (8, 1800.0, None)


def test_prescriptions_by_hand():
    res = pd.DataFrame({"status": ["TERMINATED"] * 4,
                        "config/sam": ["sam_a", "sam_a", "none", "none"],
                        "config/method": ["erm", "drw", "erm", "erm"],
                        "config/batch_size": [16, 32, 64, 128],
                        "best/val_bal_acc": [0.9, 0.8, 0.7, 0.6]})
    rows = {r["knob"]: r for r in prescriptions(res)}
    assert rows["sam"]["mean val_bal_acc on"] == pytest.approx(0.85)
    assert rows["sam"]["mean val_bal_acc off"] == pytest.approx(0.65)
    assert rows["sam"]["held"] == "yes"
    # drw 0.8 against ERM's mean (0.9 + 0.7 + 0.6) / 3 = 0.7333: the specialised one wins.
    assert rows["method"]["mean val_bal_acc off"] == pytest.approx(0.7333333)
    assert rows["method"]["held"] == "no"
    assert rows["batch_size"]["mean val_bal_acc on"] == pytest.approx(-1.0)
    assert rows["batch_size"]["held"] == "yes"
