"""`imbtrain autotune` on a real table as a user would try it: scikit-learn's breast-cancer
table subsampled to a 10:1 imbalance (300 benign, 30 malignant rows, seeded). The final
model's balanced accuracy on the held-out test split is at least its best baseline's
(class-weighted logistic regression, default XGBoost, ERM with the default MLP routine)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from imbtrain.study.report import AUTOTUNE_FILE


def breast_cancer_10_to_1(path, n_benign=300, n_malignant=30, seed=0):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    df = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    rng = np.random.default_rng(seed)
    benign = rng.choice(np.flatnonzero(df["target"] == 1), n_benign, replace=False)
    malignant = rng.choice(np.flatnonzero(df["target"] == 0), n_malignant, replace=False)
    out = df.iloc[np.sort(np.concatenate([benign, malignant]))].copy()
    out["diagnosis"] = np.where(out.pop("target") == 1, "benign", "malignant")
    out.to_csv(path, index=False)
    return out


def test_final_model_not_below_its_best_baseline(ray_session, tmp_path, capsys):
    from imbtrain.cli import main

    df = breast_cancer_10_to_1(tmp_path / "breast_cancer.csv")
    assert df["diagnosis"].value_counts().to_dict() == {"benign": 300, "malignant": 30}
    code = main(["autotune", str(tmp_path / "breast_cancer.csv"), "--label-column",
                 "diagnosis", "--budget-trials", "4", "--epochs", "10", "--storage",
                 str(tmp_path / "runs"), "--name", "bc", "--mlflow-uri", "none"])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = yaml.safe_load((tmp_path / "runs" / "bc" / AUTOTUNE_FILE).read_text())
    test = {name: m["test"]["test_bal_acc"] for name, m in summary["models"].items()}
    print("test balanced accuracy:", {k: round(v, 4) for k, v in test.items()},
          "chosen:", summary["chosen"], "validation:", summary["validation"])
    with capsys.disabled():
        print(f"\nbreast cancer 10:1, test_bal_acc: {pd.Series(test).round(4).to_dict()}; "
              f"chosen on validation: {summary['chosen']}")
    baselines = {k: v for k, v in test.items() if k in ("logreg", "xgboost", "erm")}
    assert set(baselines) == {"logreg", "xgboost", "erm"}
    assert test["final"] >= max(baselines.values())
