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


# ---------------------------------------------------------------------------------------
# Interrupted (SIGINT) and resumed: the same trials once each, the same final model
# ---------------------------------------------------------------------------------------

def autotune_cmd(tmp_path, name, *extra):
    import sys

    return [sys.executable, "-m", "imbtrain.cli", "autotune", str(tmp_path / "fraud.csv"),
            "--label-column", "label", "--budget-trials", "6", "--epochs", "4",
            "--max-concurrent", "1", "--seed", "0", "--storage", str(tmp_path / "runs"),
            "--name", name, "--mlflow-uri", "none", *extra]


def trials_of(study):
    """Each trial's config (less its data folder, which is the study's own), the epochs it
    ran and its metrics (Optuna's trial ids are random: rows in the order of their
    configs)."""
    res = pd.read_parquet(study / "results.parquet")
    keep = [c for c in res.columns if c.startswith("config/") and c != "config/data_dir"]
    res = res[[*keep, "epochs_run", "status", "val_bal_acc", "best/val_bal_acc"]]
    return res.sort_values(keep, kind="stable").reset_index(drop=True)


def test_autotune_interrupted_and_resumed_ends_as_an_uninterrupted_one(tmp_path):
    import os
    import signal
    import subprocess

    from imbtrain.saved import load_model
    from tests.reliability.test_interrupt import ENV as env
    from tests.reliability.test_interrupt import kill_group
    from tests.tune.test_autotune import fraud_csv

    fraud_csv(tmp_path / "fraud.csv")
    whole = subprocess.run(autotune_cmd(tmp_path, "whole"), capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=900)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]

    # Ctrl-C to the whole process group once the first trial has finished and the second
    # started: the trials to come are judged against the first's rung records.
    proc = subprocess.Popen(autotune_cmd(tmp_path, "cut"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
                            start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[2/6] started "):
                break
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=300)
        seen.append(rest)
    finally:
        kill_group(proc)
    out = "".join(seen)
    assert proc.returncode == 130, out[-3000:]
    last = [x for x in out.splitlines() if x.startswith("interrupted: ")]
    assert len(last) == 1 and "Traceback" not in out, out[-3000:]
    assert last[0].endswith(f" --resume` finishes it (the study is in "
                            f"{tmp_path / 'runs' / 'cut'})")
    assert "/6 trials finished; `imbtrain autotune " in last[0]
    cut = tmp_path / "runs" / "cut"
    assert not (cut / AUTOTUNE_FILE).exists() and not (cut / "model").exists()

    resumed = subprocess.run(autotune_cmd(tmp_path, "cut", "--resume"), capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    a, b = trials_of(tmp_path / "runs" / "whole"), trials_of(cut)
    assert len(b) == 6 and pd.read_parquet(cut / "results.parquet")["trial_id"].is_unique
    # With seed 0 ASHA stops four of the six trials after their first epoch, judged against
    # the rung records of the trials before them, the first one (finished before Ctrl-C)
    # among them: a resumed ASHA that had lost its records would judge differently.
    assert sorted(a["epochs_run"]) == [1, 1, 1, 1, 4, 4]
    pd.testing.assert_frame_equal(a, b)  # the same configs, stopped at the same epochs
    sa = yaml.safe_load((tmp_path / "runs" / "whole" / AUTOTUNE_FILE).read_text())
    sb = yaml.safe_load((cut / AUTOTUNE_FILE).read_text())
    assert (sb["chosen"], sb["chosen_config"]) == (sa["chosen"], sa["chosen_config"])
    assert sb["validation"] == sa["validation"]
    for name in sa["models"]:
        assert sb["models"][name]["test"] == sa["models"][name]["test"], name
        assert sb["models"][name]["confusion"] == sa["models"][name]["confusion"], name
    # The same final model: the same probabilities on the same test rows.
    test_rows = sa["test_input"]
    pa = load_model(sa["model_folder"]).predictions(test_rows)
    pb = load_model(sb["model_folder"]).predictions(sb["test_input"])
    pd.testing.assert_frame_equal(pa, pb)
    assert pd.read_csv(test_rows).equals(pd.read_csv(sb["test_input"]))
