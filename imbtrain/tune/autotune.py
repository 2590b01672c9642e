"""`imbtrain autotune DATA`: the paper's prescription as one command on a user's own data.

    result = run_autotune("fraud.csv", label_column="is_fraud", budget_trials=30)

Steps (the data side is `imbtrain.study.autotune`):

1. Read the data (an image folder or a CSV/Parquet table) and hold out stratified validation
   and test splits with every class; write them under `<storage>/<name>_data/`.
2. Search the space built from the data (batch size, augmentation, label smoothing, SAM-A,
   SSL, the learning rate, the specialised methods beside ERM) with Optuna, stopped early
   by ASHA, `budget_trials` trials, as a study of `run_study` in `<storage>/<name>/` (every
   trial in MLflow, resumable with `resume`).
3. The baselines on the same splits: ERM with the data's default routine and, for tables, a
   standardised class-weighted logistic regression (`model=logreg`) and XGBoost with its
   default settings; each fitted on train and scored on validation like the trials.
4. The final model: the best on validation of the tuned configuration and the baselines
   (a baseline that beats every tuned trial on validation is the honest answer), trained on
   train + validation at that configuration and saved to `<study>/model/`; the baselines
   and the best specialised method of the search are trained the same way into
   `<study>/baselines/<name>/`.
5. Test metrics: every model folder applied to the test split (what `imbtrain predict`
   does), so the final model's test metrics sit beside the baselines', with the margin.
6. `autotune.yaml` and `report.html` (`imbtrain.study.report`) in the study folder; with
   MLflow the final model is logged to the study's parent run as the MLflow model `model`
   (registered with `register`), with its test metrics and both files.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from imbtrain.config import TrainConfig
from imbtrain.errors import StudyInterrupted, UserError
from imbtrain.study.autotune import (
    FINAL,
    TEST,
    Source,
    Splits,
    autotune_space,
    hold_out,
    prescriptions,
    read_source,
    write_space,
    write_splits,
)
from imbtrain.study.options import DEFAULT_MLFLOW_URI, DEFAULT_STORAGE
from imbtrain.study.report import AUTOTUNE_FILE, write_report

DEFAULT_TRIALS = 20
MODEL_DIR = "model"
BASELINES_DIR = "baselines"
SPLITS_FILE = "splits.yaml"


def data_folder(storage: str, name: str) -> Path:
    return Path(storage).expanduser().resolve() / f"{name}_data"


def baseline_configs(source: Source, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The simple baselines: ERM at the default routine, and for tables a standardised
    class-weighted logistic regression and XGBoost with its default settings."""
    out = {"erm": dict(base)}
    if source.kind == "table":
        plain = {k: v for k, v in base.items() if k in (
            "dataset", "data_dir", "label_column", "epochs", "seed", "data_seed",
            "val_fraction", "train_ratio")}
        out["logreg"] = {**plain, "model": "logreg", "tabular_transform": "standard"}
        out["xgboost"] = {**plain, "model": "xgboost"}
    return out


WHAT = {"final": "the final model", "erm": "ERM, the default routine",
        "logreg": "class-weighted logistic regression (standardised)",
        "xgboost": "XGBoost, default settings", "specialised": "best specialised method"}


def _train(cfg: TrainConfig):
    from imbtrain.data import build_data
    from imbtrain.train import train

    data = build_data(cfg)
    return train(cfg, data=data, log=lambda line: None), data


def _save(result, cfg: TrainConfig, data, out: Path) -> Path:
    from imbtrain.saved import write_model_folder

    shutil.rmtree(out, ignore_errors=True)
    write_model_folder(out, result.model, cfg, data)
    (out / "metrics.json").write_text(json.dumps(
        {k: (None if isinstance(v, float) and math.isnan(v) else v)
         for k, v in result.metrics.items()}, indent=2))
    return out


def score_on_test(folder: Path, test_input: Path, source: Source, splits: Splits,
                 train_counts: list[int]) -> dict[str, Any]:
    """The model folder applied to the test split (`imbtrain predict`'s path): the split
    metrics, per-class accuracy and the confusion matrix."""
    from imbtrain.metrics import confusion_matrix, split_metrics
    from imbtrain.saved import ID_COLUMN, load_model

    model = load_model(folder)
    table = model.predictions(str(test_input))
    index = {name: i for i, name in enumerate(model.class_names)}
    if source.kind == "table":
        truth = [source.class_names[c] for c in source.labels[splits.test]]
    else:
        truth = [Path(p).parent.name for p in table[ID_COLUMN]]
    y = np.array([index[t] for t in truth])
    proba = table[model.probability_columns()].to_numpy()
    k = len(model.class_names)
    conf = confusion_matrix(y, proba.argmax(1), k)
    binary = k == 2
    metrics = split_metrics(conf, train_counts, "test", scores=proba if binary else None,
                            labels=y if binary else None)
    return {"test": {m: float(v) for m, v in metrics.items()
                     if not m.startswith("test_class_acc_")},
            "per_class_acc": [float(metrics[f"test_class_acc_{c}"]) for c in range(k)],
            "confusion": conf.tolist()}


def _check_options(data: str, storage: str, name: str | None, budget_trials: int | None,
                   epochs: int, resume: bool, register: str | None,
                   mlflow_uri: str | None, budget_hours: float | None = None,
                   max_concurrent: int | None = None) -> str:
    if budget_trials is not None and budget_trials < 2:
        raise UserError(f"--budget-trials {budget_trials}: give 2 or more (the search "
                        "compares configurations)")
    if budget_hours is not None and not (0 < budget_hours < math.inf):
        raise UserError(f"--budget-hours {budget_hours:g}: give a positive number of hours "
                        "(e.g. 0.5)")
    if max_concurrent is not None and max_concurrent < 1:
        raise UserError(f"--max-concurrent {max_concurrent}: give 1 or more")
    if epochs < 1:
        raise UserError(f"--epochs {epochs}: give 1 or more")
    if register and not mlflow_uri:
        raise UserError("--register needs MLflow: give --mlflow-uri (not none)")
    if "://" in str(storage):
        raise UserError(f"--storage {storage}: autotune writes its data splits beside the "
                        "study, where every trial reads them as files; give a folder (on a "
                        "cluster, one that every node mounts), not a URI")
    name = name or f"autotune_{Path(data).stem}"
    if not name or "/" in name or name in (".", ".."):
        raise UserError(f"--name {name!r}: one folder name (no '/')")
    study = Path(storage).expanduser().resolve() / name
    if not resume and study.exists() and any(study.iterdir()):
        raise UserError(f"{study} already holds a study; add --resume to continue it, or "
                        "choose another --name or --storage")
    if resume and not (study / "tuner.pkl").is_file():
        raise UserError(f"--resume: no autotune to resume in {study}; run it without "
                        "--resume first")
    return name


def run_autotune(data: str, label_column: str = "", budget_trials: int | None = None,
                 epochs: int = 10, storage: str = DEFAULT_STORAGE, name: str | None = None,
                 address: str | None = None, mlflow_uri: str | None = DEFAULT_MLFLOW_URI,
                 register: str | None = None, resume: bool = False, seed: int = 0,
                 gpus_per_trial: float = 0.0, verbose: int = 0,
                 budget_hours: float | None = None,
                 max_concurrent: int | None = None) -> dict[str, Any]:
    """Run the whole autotune (module docstring); returns the summary (autotune.yaml).

    The search's budget: `budget_trials` trials (default DEFAULT_TRIALS when no budget is
    given), or with `budget_hours` as many as Tune starts in that time (the trials running
    then are stopped where they are and count as finished at their last epoch; both:
    whichever ends first). `max_concurrent` caps the trials at once (default: as many as
    the CPUs allow); with 1 the whole autotune is repeatable: on CPU the same seed gives the
    same trials, stopped at the same epochs, and the same final model, interrupted and
    resumed or not (ASHA's decisions otherwise depend on the order in which concurrent
    trials report). A resumed autotune keeps the settings it started with; a time budget
    counts again from the resume."""
    from imbtrain.tune.runner import run_study

    if budget_trials is None and budget_hours is None:
        budget_trials = DEFAULT_TRIALS
    name = _check_options(data, storage, name, budget_trials, epochs, resume, register,
                          mlflow_uri, budget_hours, max_concurrent)
    if mlflow_uri:
        from imbtrain.tune.mlflow_models import check_store

        mlflow_uri = check_store(mlflow_uri)
    source = read_source(data, label_column)
    splits = hold_out(source.labels, source.class_names, seed)
    data_dir = data_folder(storage, name)
    if resume and (data_dir / SPLITS_FILE).is_file():
        _same_splits(data_dir, splits)
    elif data_dir.exists():
        shutil.rmtree(data_dir)
    paths = write_splits(source, splits, data_dir)
    (data_dir / SPLITS_FILE).write_text(yaml.safe_dump(
        {k: getattr(splits, k).tolist() for k in ("train", "val", "test")}))
    space = autotune_space(source, splits, data_dir, epochs, budget_trials, seed,
                           gpus=gpus_per_trial, hours=budget_hours,
                           max_concurrent=max_concurrent)
    space_file = write_space(space, data_dir)
    print(f"autotune {name}: {source.kind} data {source.path}, {len(source.class_names)} "
          f"classes; held out (stratified, every class): train {len(splits.train)}, "
          f"validation {len(splits.val)}, test {len(splits.test)} in {data_dir}", flush=True)
    start = time.perf_counter()
    result = run_study(str(space_file), name=name, storage=storage, address=address,
                       mlflow_uri=mlflow_uri, resume=resume, verbose=verbose)
    search_s = time.perf_counter() - start
    if result.best is None:
        raise UserError(f"autotune {name}: no trial finished; see {result.path}/"
                        "results.parquet")
    try:
        summary = finish_autotune(result, source, splits, paths, space, search_s)
    except KeyboardInterrupt:  # Ctrl-C after the search: the search is kept
        n = int(len(result.results))
        raise StudyInterrupted(signal.SIGINT, n, n, str(result.location)) from None
    summary_path = result.path / AUTOTUNE_FILE
    summary_path.write_text(yaml.safe_dump(summary, sort_keys=False))
    report = write_report(result.path)
    print(f"wrote {summary_path} and {report}", flush=True)
    if result.mlflow_parent_run_id:
        _log_mlflow(result, summary, [summary_path, report], register)
    return summary


def _same_splits(data_dir: Path, splits: Splits) -> None:
    old = yaml.safe_load((data_dir / SPLITS_FILE).read_text())
    if any(old.get(k) != getattr(splits, k).tolist() for k in ("train", "val", "test")):
        raise UserError(f"--resume: the data's splits differ from those in {data_dir} (the "
                        "data or --seed changed); run a new autotune instead")


def _val_score(result, cfg: TrainConfig, metric: str) -> float:
    res = result.results
    same = res["status"] == "TERMINATED"
    for key, value in cfg.to_dict().items():
        if f"config/{key}" in res.columns:
            same &= res[f"config/{key}"] == value
    return float(res.loc[same, metric].mean()) if same.any() else float("nan")


def finish_autotune(result, source: Source, splits: Splits, paths: dict[str, Path],
                    space: dict[str, Any], search_s: float) -> dict[str, Any]:
    """Baselines, selection on validation, final models on train + validation, test."""
    metric = result.metric
    study = result.path
    tuned = result.best
    candidates: dict[str, TrainConfig] = {"tuned": tuned}
    base = space["base"]
    for bname, over in baseline_configs(source, base).items():
        candidates[bname] = TrainConfig(**over)
    res = result.results
    spec_rows = res[(res["status"] == "TERMINATED") & (res["config/method"] != "erm")]
    specialised = None
    if len(spec_rows):
        row = spec_rows.sort_values(metric, ascending=False, kind="stable").iloc[0]
        specialised = TrainConfig(**{k.removeprefix("config/"): _plain(v) for k, v in
                                     row.items() if k.startswith("config/")})
        candidates["specialised"] = specialised
    start = time.perf_counter()
    val: dict[str, float] = {"tuned": _val_score(result, tuned, metric)}
    if specialised is not None:
        val["specialised"] = _val_score(result, specialised, metric)
    for bname in candidates:
        if bname not in val:  # a baseline: fitted on train, scored on validation
            fit, _ = _train(candidates[bname])
            val[bname] = float(fit.metrics[metric])
            print(f"baseline {bname}: {metric} {val[bname]:.4f} (validation)", flush=True)
    chosen = max(val, key=lambda k: (val[k], k == "tuned"))  # ties go to the tuned config
    final_dir, test_input = paths[FINAL], paths[TEST]
    models: dict[str, dict[str, Any]] = {}
    folders: dict[str, Path] = {}
    for cname, cfg in [("final", candidates[chosen])] + [
            (c, candidates[c]) for c in candidates if c != "tuned"]:
        if cname != "final" and cname == chosen:
            models[cname] = dict(models["final"], what=WHAT[cname])
            folders[cname] = folders["final"]
            continue
        cfg = replace_data_dir(cfg, final_dir)
        fit, data = _train(cfg)
        out = study / (MODEL_DIR if cname == "final" else Path(BASELINES_DIR) / cname)
        folders[cname] = _save(fit, cfg, data, out)
        scored = score_on_test(out, test_input, source, splits, list(data.train_counts))
        models[cname] = {"what": WHAT[cname], "val": val.get(
            "tuned" if cname == "final" and chosen == "tuned" else
            chosen if cname == "final" else cname), "folder": str(out.relative_to(study)),
            **scored}
    final_s = time.perf_counter() - start
    models["final"]["what"] = (f"the final model: {WHAT.get(chosen, 'the tuned config')}"
                               if chosen != "tuned" else "the final model: the tuned config")
    verdict = _verdict(models, chosen, metric, val)
    print(verdict, flush=True)
    knobs = list(space["knobs"])
    best_cfg = candidates[chosen].to_dict()
    return {
        "name": study.name, "data": f"{source.kind} data {source.path}",
        "kind": source.kind, "class_names": list(source.class_names),
        "class_counts": splits.counts(source.labels, len(source.class_names)),
        "split_note": (f"Held out by imbtrain autotune, stratified with every class in every "
                       f"split: of each class 20% test (at least 1), 20% validation (at "
                       f"least 2), the rest train. The search trained on train and was "
                       f"scored on validation; the final models trained on train + "
                       f"validation and were scored on test (the files in "
                       f"{test_input})."),
        "chosen": chosen, "chosen_config": {k: _plain(best_cfg[k]) for k in
                                            ["model", "method", *knobs] if k in best_cfg},
        "validation": {k: float(v) for k, v in val.items()},
        "compute": {"search seconds (wall)": round(search_s, 1),
                    "baselines and final models seconds (wall)": round(final_s, 1),
                    "trials": int(len(res))},
        "models": models, "verdict": verdict,
        "prescriptions": prescriptions(res, metric),
        "test_input": str(test_input), "model_folder": str(study / MODEL_DIR),
    }


def replace_data_dir(cfg: TrainConfig, folder: Path) -> TrainConfig:
    return replace(cfg, data_dir=str(folder))


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _verdict(models: dict[str, dict[str, Any]], chosen: str, metric: str,
             val: dict[str, float]) -> str:
    key = "test_bal_acc"
    final = models["final"]["test"][key]
    others = {k: m["test"][key] for k, m in models.items() if k != "final" and k != chosen}
    if not others:
        return f"final model: {key} {final:.4f} on the test split"
    best = max(others, key=others.get)
    margin = final - others[best]
    how = (f"chosen on validation ({metric} {val[chosen]:.4f}) among the tuned "
           f"configuration and the baselines: {chosen}")
    if margin >= 0:
        return (f"The final model ({how}) reaches {key} {final:.4f} on the test split, "
                f"{margin:+.4f} over the best other model ({best}, {others[best]:.4f}).")
    return (f"The final model ({how}) reaches {key} {final:.4f} on the test split, "
            f"{margin:+.4f} below {best} ({others[best]:.4f}): {best} scored "
            f"{val.get(best, float('nan')):.4f} on validation against {val[chosen]:.4f}, so "
            "the validation split did not rank them as the test split does (a small split "
            "is a noisy judge; a larger budget or more validation data would tell).")


def _log_mlflow(result, summary: dict[str, Any], files: list[Path],
                register: str | None) -> None:
    """The final model, its test metrics and the files on the study's parent run; MLflow
    failing costs a warning line, the folder is complete."""
    from imbtrain.tune.mlflow_log import log_study_summary
    from imbtrain.tune.mlflow_models import log_model_folder
    from imbtrain.tune.runner import log_artifacts

    uri, uid, parent = result.mlflow_uri, result.mlflow_study_uid, result.mlflow_parent_run_id
    try:
        log_artifacts(uri, result.path.name, files, uid)
        metrics = {f"final_{k}": v for k, v in summary["models"]["final"]["test"].items()
                   if isinstance(v, float) and not math.isnan(v)}
        for bname, m in summary["models"].items():
            if bname != "final":
                metrics[f"{bname}_test_bal_acc"] = m["test"]["test_bal_acc"]
        log_study_summary(uri, result.path.name, metrics, uid=uid)
        info = log_model_folder(uri, parent, result.path / MODEL_DIR, name="model",
                                register=register,
                                tags={"imbtrain.study": result.path.name,
                                      "imbtrain.autotune": summary["chosen"]})
        reg = (f"; registered as models:/{register}/{info.registered_model_version}"
               if register else "")
        print(f"MLflow: the final model is {info.model_uri} on parent run {parent}{reg}",
              flush=True)
    except Exception as e:  # MlflowException, connection errors: the folder is complete
        text = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        print(f"warning: MLflow: the final model was not logged to {uri} ({text}); it is in "
              f"{result.path / MODEL_DIR}", file=sys.stderr, flush=True)


