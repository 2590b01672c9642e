"""Collect a study's result tables from its Ray experiment directory.

Read from the directory alone (`tune.ExperimentAnalysis`, on the study's storage: a local
folder, S3, ...), so the tables can be written again for any finished or resumed study, on
any machine. The tables' names and schema, and how
they are written and read, are `imbtrain.study.results`'s; this module turns Ray's trials
(their configs, last results, reported histories, checkpoints and error files) into their
rows.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from imbtrain.config import TrainConfig
from imbtrain.study.results import (
    StudyTables,
    best_epoch,
    history_table,
    is_metric,
    order_columns,
)
from imbtrain.study.space import trial_label, trial_params, variant_of
from imbtrain.study.storage import StudyDir, as_study_dir
from imbtrain.tune.trainable import ERROR_KEY, INFO_FILE, USER_ERROR


def _error_line(trial) -> str | None:
    """The last non-empty line of a trial's error file (the exception and its message)."""
    path = trial.error_file
    if not path:
        return None
    try:
        fs, fs_path = trial.storage.storage_filesystem, trial.storage.trial_fs_path
        with fs.open_input_stream(f"{fs_path}/{path.rsplit('/', 1)[-1]}") as f:
            text = f.readall().decode("utf-8", "replace")
    except OSError:
        return "error (no error file)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "error"


def _trial_info(trial) -> dict[str, Any]:
    """train_counts, where the trial ran and every result it reported (`history`), from its
    latest checkpoint (see trainable)."""
    ckpt = trial.checkpoint
    if ckpt is None:
        return {}
    try:
        with ckpt.as_directory() as d, open(f"{d}/{INFO_FILE}") as f:
            return json.load(f)
    except OSError:
        return {}


def trial_history(trial, info: dict[str, Any], frame: pd.DataFrame | None) -> pd.DataFrame:
    """One trial's rows of history.parquet: every epoch it reported, from the `history` its
    latest checkpoint carries, completed by Tune's result file (`frame`) for any epoch the
    checkpoint lacks (a study from before checkpoints carried it).

    Not from Tune's result file alone: when a failed trial is restarted from its checkpoint,
    Tune copies the trial's result.json back from the storage, where the experiment's last
    sync may have left an older copy (the sync runs every few seconds, in the background),
    over the driver's own, so the epochs reported since that sync are lost from it."""
    rows = pd.DataFrame(info["history"]) if info.get("history") else None
    frames = [f for f in (frame, rows) if f is not None and not f.empty]
    both = pd.concat(frames, ignore_index=True) if frames else None
    if both is not None and USER_ERROR in both:  # the result of a UserError is no epoch
        both = both[both[USER_ERROR] != 1.0]
    return history_table(trial.trial_id, "", both)  # an epoch's latest row: the checkpoint's


def trial_row(trial, hist: pd.DataFrame, metric: str, mode: str,
              info: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row of results.parquet (schema: imbtrain.study.results)."""
    cfg = TrainConfig(**trial_params(trial.config))  # the param space holds the full config
    last = trial.last_result or {}
    info = _trial_info(trial) if info is None else info
    error = _error_line(trial) if trial.status == "ERROR" else None
    status = trial.status
    if status == "TERMINATED" and last.get("diverged"):  # a result, not a crash (trainable)
        status, error = "DIVERGED", info.get("error", "training diverged")
    if status == "TERMINATED" and last.get(USER_ERROR):  # failed once, not retried
        status, error = "ERROR", str(last.get(ERROR_KEY) or info.get("error", "error"))
    row: dict[str, Any] = {
        "trial_id": trial.trial_id, "trial_name": trial_label(trial.config),
        "status": status, "error": error,
    }
    if variant_of(trial.config) is not None:
        row["variant"] = variant_of(trial.config)
    row.update({f"config/{k}": v for k, v in cfg.to_dict().items()})
    row.update({k: float(v) for k, v in last.items() if is_metric(k, v)})
    row.update(best_epoch(hist, metric, mode))
    row["train_counts"] = info.get("train_counts")
    row["epochs_run"] = int(hist["epoch"].max()) if not hist.empty else 0
    row["time_total_s"] = float(last.get("time_total_s", math.nan))
    row["node_id"] = info.get("node_id")
    row["hostname"] = info.get("hostname", last.get("hostname"))
    row["pid"] = info.get("pid", last.get("pid"))
    return row


def _analysis(study: StudyDir):
    from ray.tune import ExperimentAnalysis

    if study.is_local:
        return ExperimentAnalysis(str(study.local))
    return ExperimentAnalysis(study.path, storage_filesystem=study.fs)


def experiment_started(study: StudyDir) -> bool:
    """Whether Tune wrote the experiment state of the study (it ran, however briefly)."""
    return any(n.startswith("experiment_state") and n.endswith(".json")
               for n in study.names())


def finished_trials(study: StudyDir) -> tuple[list[str], int]:
    """(ids of the trials that finished, number that failed) as Tune last saved them."""
    trials = _analysis(study).trials
    return ([t.trial_id for t in trials if t.status == "TERMINATED"],
            sum(t.status == "ERROR" for t in trials))


def creation_order(trial) -> tuple[int, str]:
    """A trial's place in the order its searcher made the trials: the number that starts
    Tune's experiment tag ("3_batch_size=32,..."), kept across a resume (Tune restores the
    trials in another order, and an Optuna trial's id is random), then its id. Results
    keep this order, so ties between configurations go the same way in every run."""
    head = str(getattr(trial, "experiment_tag", "") or "").split("_", 1)[0]
    return (int(head) if head.isdigit() else 1 << 62, str(trial.trial_id))


def collect(exp_dir: str | StudyDir, metric: str, mode: str) -> StudyTables:
    """Both tables of the study in `exp_dir` (a Ray Tune experiment directory: a path, a
    URI or a `StudyDir`)."""
    analysis = _analysis(as_study_dir(exp_dir))
    frames = analysis.trial_dataframes
    rows, hists = [], []
    for trial in sorted(analysis.trials, key=creation_order):
        info = _trial_info(trial)
        hist = trial_history(trial, info, frames.get(trial.trial_id))
        row = trial_row(trial, hist, metric, mode, info)
        if not hist.empty:
            hist["trial_name"] = row["trial_name"]
            hists.append(hist)
        rows.append(row)
    results = order_columns(pd.DataFrame(rows))
    history = pd.concat(hists, ignore_index=True) if hists else pd.DataFrame(
        columns=["trial_id", "trial_name", "epoch"])
    return StudyTables(results, history)
