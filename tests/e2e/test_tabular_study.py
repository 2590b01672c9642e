"""`python studies/tabular.py --smoke`: real Ray, real Optuna, the five rows of Table 6.

About a minute and a half on 2 cores: ten Tune runs (tuning and evaluation of five models),
each starting its trial workers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import yaml

STUDY = Path(__file__).resolve().parents[2] / "studies" / "tabular.py"


def test_the_module_ray_is_on_loopback(ray_session):
    import ray

    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}


@pytest.fixture(scope="module")
def tabular():
    """The study's module in the package: its rows, Table 6 and its Markdown."""
    from imbtrain.study.paper import tabular

    return tabular


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("tabular_study", STUDY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_study_prints_table6(ray_session, tmp_path, monkeypatch, capsys, study,
                                   tabular):
    monkeypatch.chdir(tmp_path)
    assert study.main(["--smoke", "--storage", str(tmp_path), "--mlflow-uri", "none"]) == 0
    out = tmp_path / "tabular_smoke"
    table = pd.read_parquet(out / "table6.parquet")
    assert list(table["model"]) == list(tabular.ROWS.values())
    assert (table["seeds"] == tabular.SMOKE_SEEDS).all()
    assert table[["acc", "bal_acc", "auroc", "auprc"]].notna().all().all()  # binary data
    # Stage 2 re-runs the tuned configuration over the seeds, nothing else varies.
    evaluated = pd.read_parquet(out / "tabular_smoke_eval_xgboost" / "results.parquet")
    tuned = yaml.safe_load((out / "tabular_smoke_tune_xgboost" / "best.yaml").read_text())
    assert sorted(evaluated["config/seed"]) == [0, 1]
    assert (evaluated["config/xgb_max_depth"] == tuned["xgb_max_depth"]).all()
    printed = capsys.readouterr().out
    assert "| XGBoost | 2 |" in printed and "Tuned configurations" in printed


def test_table6_mean_and_standard_error_by_hand(tabular):
    results = pd.DataFrame({"status": ["TERMINATED"] * 3 + ["ERROR"],
                            "best/test_acc": [0.8, 0.9, 1.0, 0.1],
                            "test_acc": [0.0, 0.0, 0.0, 0.0],
                            "best/test_bal_acc": [0.5, 0.7, 0.9, 0.1]})
    row = tabular.table6({"m": results}).iloc[0]
    # mean 0.9; sample std 0.1, / sqrt(3): 0.057735
    assert row["seeds"] == 3 and row["acc"] == pytest.approx(0.9)
    assert row["acc_se"] == pytest.approx(0.1 / 3 ** 0.5)
    assert row["bal_acc_se"] == pytest.approx(0.2 / 3 ** 0.5)
    assert "0.9000 ± 0.0577" in tabular.table6_markdown(tabular.table6({"m": results}))


def test_bad_model_row_is_a_clear_error(study, capsys):
    assert study.main(["--smoke", "--models", "catboost", "--mlflow-uri", "none"]) == 2
    assert "--models: unknown row(s) catboost" in capsys.readouterr().err
