"""Knob importance: the variance decomposition by hand, and Optuna's fANOVA on a stored
Optuna study like the one a `searcher: optuna` study leaves in its folder."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest

from imbtrain.analysis.importance import (
    eta_squared,
    importance_analysis,
    knob_importance,
    optuna_importance,
    variance_importance,
)
from imbtrain.errors import UserError


def test_eta_squared_by_hand():
    y = pd.Series([1.0, 2.0, 3.0, 6.0])
    # mean 3; total SS = 4 + 1 + 0 + 9 = 14
    # a = (x, x, y, y): group means 1.5, 4.5 -> between = 2 * 1.5^2 + 2 * 1.5^2 = 9
    # b = (u, v, u, v): group means 2, 4 -> between = 2 * 1 + 2 * 1 = 4
    assert eta_squared(pd.Series(list("xxyy")), y) == pytest.approx(9 / 14)
    assert eta_squared(pd.Series(list("uvuv")), y) == pytest.approx(4 / 14)
    assert eta_squared(pd.Series(list("uvuv")), pd.Series([1.0] * 4)) == 0.0


def test_variance_importance_per_train_ratio():
    df = pd.DataFrame({"config/lr": [0.1, 0.1, 0.2, 0.2] * 2,
                       "config/batch_size": [16, 32, 16, 32] * 2,
                       "config/seed": [0] * 8, "config/train_ratio": [1.0] * 4 + [0.01] * 4,
                       "test_acc": [1.0, 2.0, 3.0, 6.0] + [1.0, 3.0, 1.0, 3.0]})
    t = knob_importance(df, metric="test_acc")  # by train_ratio: it varies
    at_1 = t[t.train_ratio == 1.0].set_index("knob")
    # normalised: 9/13 and 4/13
    assert at_1["importance"].to_dict() == pytest.approx({"lr": 9 / 13, "batch_size": 4 / 13})
    at_01 = t[t.train_ratio == 0.01].set_index("knob")
    assert at_01["eta2"].to_dict() == pytest.approx({"lr": 0.0, "batch_size": 1.0})
    assert t["knob"].tolist()[:2] == ["batch_size", "lr"]  # r = 0.01 first, largest first
    with pytest.raises(UserError, match="no knob varies"):
        variance_importance(df[df["config/lr"] == 0.1].drop(columns="config/batch_size"))


def _optuna_study(folder) -> None:
    """An Optuna study stored like imbtrain.tune.runner.make_searcher stores it: lr decides
    the objective, batch_size barely touches it."""
    storage = f"sqlite:///{folder / 'optuna.db'}"
    study = optuna.create_study(study_name=folder.name, storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: -(t.suggest_float("lr", 0.0, 1.0) - 0.5) ** 2
                   + 1e-4 * t.suggest_int("batch_size", 16, 128), n_trials=20)


def test_optuna_fanova_from_the_study_folder(tmp_path):
    folder = tmp_path / "mystudy"
    folder.mkdir()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _optuna_study(folder)
    t = knob_importance(pd.DataFrame({"test_acc": [0.5]}), results_dir=folder)
    assert t["knob"].tolist() == ["lr", "batch_size"]
    assert t["importance"].sum() == pytest.approx(1.0) and t["importance"].iloc[0] > 0.9
    assert t["n_trials"].iloc[0] == 20
    again = optuna_importance(folder / "optuna.db", seed=0)  # seeded: the same numbers
    assert again["importance"].tolist() == pytest.approx(t["importance"].tolist())
    ped = optuna_importance(folder / "optuna.db", evaluator="ped_anova")
    assert ped["knob"].iloc[0] == "lr"
    with pytest.raises(UserError, match="no Optuna study 'other'"):
        optuna_importance(folder / "optuna.db", study_name="other")


def test_writes_figure_and_table(tmp_path):
    df = pd.DataFrame({"config/lr": [0.1, 0.2], "test_acc": [0.5, 0.7],
                       "status": ["TERMINATED"] * 2})
    paths = importance_analysis(df, pd.DataFrame(), tmp_path, results_dir=str(tmp_path))
    assert [p.name for p in paths] == ["importance.png", "importance.parquet", "importance.md"]
    assert "| lr | 1 | 1 | 2 | 2 |" in (tmp_path / "importance.md").read_text()
