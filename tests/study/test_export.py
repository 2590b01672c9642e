"""Export per train ratio: the best configuration at each train ratio (a condition of the
data, not a knob), ranked by the mean of a validation metric over seeds; the test split is
never used for selection. Results tables written by hand, so every number is known."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from imbtrain.cli import main
from imbtrain.config import load_config
from imbtrain.errors import ConfigError, UserError
from imbtrain.study.export import best_per_ratio, export, is_test_metric, write_best
from imbtrain.study.results import RESULTS_FILE, STUDY_FILE

# Two batch sizes x three train ratios x two seeds. val_bal_acc by (ratio, batch size):
#   r = 1:    bs 128: 0.96, 0.94 (mean 0.95)   bs 16: 0.93, 0.95 (0.94)  -> 128 wins
#   r = 0.1:  bs 128: 0.60, 0.64 (0.62)        bs 16: 0.70, 0.74 (0.72)  -> 16 wins
#   r = 0.02: bs 128: 0.30, 0.34 (0.32)        bs 16: 0.52, 0.48 (0.50)  -> 16 wins
# Over all ratios the balanced r = 1 trials win whatever the knob: why ratios rank apart.
# test_bal_acc is set so that it would pick the other batch size at r = 0.02.
VAL = {(1.0, 128): (0.96, 0.94), (1.0, 16): (0.93, 0.95), (0.1, 128): (0.60, 0.64),
       (0.1, 16): (0.70, 0.74), (0.02, 128): (0.30, 0.34), (0.02, 16): (0.52, 0.48)}


def results_table() -> pd.DataFrame:
    rows = []
    for (r, bs), values in VAL.items():
        for seed, v in enumerate(values):
            rows.append({"trial_id": f"t_{r:g}_{bs}_{seed}", "status": "TERMINATED",
                         "config/dataset": "digits", "config/model": "mlp",
                         "config/train_ratio": r, "config/batch_size": bs, "config/seed": seed,
                         "val_bal_acc": v, "train_acc": 1.0 - v / 10,
                         "test_bal_acc": 1.0 - v})
    return pd.DataFrame(rows)


@pytest.fixture
def study_dir(tmp_path):
    d = tmp_path / "bs"
    d.mkdir()
    results_table().to_parquet(d / RESULTS_FILE, index=False)
    (d / STUDY_FILE).write_text(yaml.safe_dump({"metric": "val_bal_acc", "mode": "max"}))
    return d


def test_best_per_ratio_ranks_each_ratio_by_its_mean_over_seeds():
    best = best_per_ratio(results_table(), "val_bal_acc")
    assert list(best) == [1.0, 0.1, 0.02]  # balanced first
    got = {r: (b.config.batch_size, round(b.mean, 4), b.n) for r, b in best.items()}
    assert got == {1.0: (128, 0.95, 2), 0.1: (16, 0.72, 2), 0.02: (16, 0.5, 2)}
    b = best[0.02]
    assert b.config.train_ratio == 0.02 and b.config.seed == 0  # the first seed
    assert b.trial_ids == ["t_0.02_16_0", "t_0.02_16_1"]  # best first: 0.52, then 0.48
    config, mean, n, ids = best[1.0]  # a plain tuple too
    assert (config.batch_size, n, ids) == (128, 2, ["t_1_128_0", "t_1_128_1"])
    # min mode: the lowest mean at each ratio
    low = best_per_ratio(results_table(), "val_bal_acc", "min")
    assert {r: b.config.batch_size for r, b in low.items()} == {1.0: 16, 0.1: 128, 0.02: 128}


def test_a_ratio_without_a_finished_trial_is_left_out():
    res = results_table()
    res.loc[res["config/train_ratio"] == 0.1, "status"] = "ERROR"
    assert list(best_per_ratio(res, "val_bal_acc")) == [1.0, 0.02]


@pytest.mark.parametrize("metric", ["test_bal_acc", "best/test_acc", "ncc_acc_test",
                                    "test_minority_acc"])
def test_a_test_split_metric_is_refused_for_selection(metric):
    assert is_test_metric(metric)
    with pytest.raises(UserError, match=f"metric {metric} is of the test split: model "
                                        "selection never uses the test split"):
        best_per_ratio(results_table(), metric)


def test_validation_and_train_metrics_are_allowed():
    assert not any(map(is_test_metric, ["val_bal_acc", "best/val_acc", "train_acc", "cdnv"]))
    best = best_per_ratio(results_table(), "train_acc")  # 1 - val / 10: the lower val wins
    assert best[0.02].config.batch_size == 128


def test_one_file_a_ratio_and_an_index(study_dir):
    paths = export(str(study_dir))
    assert [p.name for p in paths] == ["best_r1.yaml", "best_r0.1.yaml", "best_r0.02.yaml",
                                       "best.yaml"]
    assert load_config(study_dir / "best_r0.02.yaml").batch_size == 16
    assert load_config(study_dir / "best_r1.yaml").batch_size == 128
    index = yaml.safe_load((study_dir / "best.yaml").read_text())
    entry = index["per_train_ratio"][2]
    assert entry == {"train_ratio": 0.02, "config": "best_r0.02.yaml", "val_bal_acc": 0.5,
                     "seeds": 2, "knobs": {"batch_size": 16},
                     "trials": ["t_0.02_16_0", "t_0.02_16_1"]}
    assert (index["metric"], index["mode"]) == ("val_bal_acc", "max")
    # the index is no config: `imbtrain train --config` names the files to train instead
    with pytest.raises(ConfigError, match=r"lists a study's best configuration at each train "
                                          r"ratio, not one config; train one of them: .*best_r1"):
        load_config(study_dir / "best.yaml")


def test_one_ratio_to_the_file_asked(study_dir, tmp_path):
    out = tmp_path / "best.yaml"
    assert export(str(study_dir), train_ratio=0.02, out=str(out)) == [out]
    cfg = load_config(out)
    assert (cfg.batch_size, cfg.train_ratio, cfg.seed) == (16, 0.02, 0)
    assert [p.name for p in export(str(study_dir), train_ratio=0.1)] == ["best_r0.1.yaml"]
    paths = export(str(study_dir), train_ratio=0.1, top=2, out=str(out))
    assert [p.name for p in paths] == ["best_1.yaml", "best_2.yaml"]
    assert [load_config(p).batch_size for p in paths] == [16, 128]


def test_top_k_with_several_ratios(tmp_path):
    paths = write_best(results_table(), "val_bal_acc", "max", tmp_path / "best.yaml", top=2)[1]
    assert [p.name for p in paths][:2] == ["best_r1_1.yaml", "best_r1_2.yaml"]
    assert len(paths) == 7 and paths[-1].name == "best.yaml"
    index = yaml.safe_load(paths[-1].read_text())["per_train_ratio"]
    assert [(e["train_ratio"], e["rank"]) for e in index][:2] == [(1.0, 1), (1.0, 2)]


def test_a_study_of_one_ratio_writes_best_yaml(tmp_path):
    res = results_table()
    res = res[res["config/train_ratio"] == 0.1]
    paths = write_best(res, "val_bal_acc", "max", tmp_path / "best.yaml")[1]
    assert paths == [tmp_path / "best.yaml"]
    assert load_config(paths[0]).batch_size == 16


def test_cli_export_per_ratio_and_its_refusals(study_dir, tmp_path, capsys):
    out = tmp_path / "final.yaml"
    assert main(["export", str(study_dir), "--train-ratio", "0.02", "--out", str(out)]) == 0
    assert load_config(out).batch_size == 16
    assert f"train it with: imbtrain train --config {out}" in capsys.readouterr().out
    # every ratio: the hint names the most imbalanced ratio's file
    assert main(["export", str(study_dir)]) == 0
    assert f"--config {study_dir / 'best_r0.02.yaml'}" in capsys.readouterr().out
    # a test metric: one line, exit 2, nothing written
    assert main(["export", str(study_dir), "--metric", "test_bal_acc",
                 "--out", str(tmp_path / "no.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test_bal_acc is of the test split" in err
    assert not (tmp_path / "no.yaml").exists()
    # a ratio the study did not run: the study's ratios
    assert main(["export", str(study_dir), "--train-ratio", "0.05",
                 "--out", str(tmp_path / "no.yaml")]) == 2
    assert ("error: --train-ratio 0.05: the study ran train ratio(s) 1, 0.1, 0.02"
            in capsys.readouterr().err)
    assert not (tmp_path / "no.yaml").exists()
    # a train metric: allowed, with a note that it ranks fit
    assert main(["export", str(study_dir), "--metric", "train_acc", "--train-ratio", "1",
                 "--out", str(out)]) == 0
    assert "note: train_acc is of the training split" in capsys.readouterr().err
