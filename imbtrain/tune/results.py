"""A study's result tables, written with pyarrow from its Ray experiment directory.

Read from the directory alone (`tune.ExperimentAnalysis`), so the tables can be written again
for any finished or resumed study, on any machine. Files under `<storage>/<name>/`:

`results.parquet`, one row a trial:

| column               | type          | meaning                                                  |
|----------------------|---------------|----------------------------------------------------------|
| trial_id             | string        | Ray Tune's trial id (the MLflow nested run's tag)        |
| trial_name           | string        | `TrainConfig.trial_name()`, e.g. mnist5k_r0.1_bs32_s1    |
| status               | string        | TERMINATED (finished or stopped by ASHA), ERROR, or      |
|                      |               | DIVERGED (NaN/inf train loss; its `diverged` metric = 1) |
| error                | string, null  | last line of the trial's error (ERROR), the divergence   |
|                      |               | (DIVERGED), null when none                               |
| variant              | string        | the trial's variant (only in studies with `variants`)    |
| config/<key>         | per field     | every TrainConfig field of the trial (base + sampled)    |
| <metric>             | double        | final metrics: the trial's last result (val_*, test_*,   |
|                      |               | train_*, epoch, lr, cdnv, ...), NaN where not reported   |
| best/<metric>        | double        | every metric at the trial's best epoch by the study's    |
|                      |               | metric and mode (model selection on validation)          |
| train_counts         | list<int64>   | per-class train counts after the imbalance profile       |
| epochs_run           | int64         | epochs the trial trained (fewer when ASHA stopped it)    |
| time_total_s         | double        | the trial's training time in seconds, over restarts      |
| node_id, hostname,   | string,       | where the trial's last epoch ran (Ray node id, host,     |
| pid                  | int64         | worker process)                                          |

`history.parquet`, one row a trial-epoch: `trial_id`, `trial_name`, `epoch` and every metric
the trial reported that epoch (double). An epoch reported twice (a trial resumed from an older
checkpoint) keeps its latest report.

`best.yaml`: the full TrainConfig of the best configuration (see `imbtrain.tune.export`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imbtrain.tune.trainable import INFO_FILE

RESULTS_FILE = "results.parquet"
HISTORY_FILE = "history.parquet"
BEST_FILE = "best.yaml"
# Keys Tune adds to every result: bookkeeping, not metrics.
TUNE_KEYS = {
    "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore",
    "iterations_since_restore", "timesteps_since_restore", "timesteps_total",
    "episodes_total", "timestamp", "date", "done", "trial_id", "experiment_tag",
    "node_ip", "hostname", "pid", "checkpoint_dir_name", "should_checkpoint", "config",
}


@dataclass
class StudyTables:
    """The two tables of a study (pandas views of the parquet files)."""

    results: pd.DataFrame
    history: pd.DataFrame


def is_metric(key: str, value: Any) -> bool:
    """A reported number that is not Tune's bookkeeping."""
    return (key not in TUNE_KEYS and not key.startswith("config/")
            and isinstance(value, int | float | np.number) and not isinstance(value, bool))


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
    """train_counts and where the trial ran, from its latest checkpoint (see trainable)."""
    ckpt = trial.checkpoint
    if ckpt is None:
        return {}
    try:
        with ckpt.as_directory() as d, open(f"{d}/{INFO_FILE}") as f:
            return json.load(f)
    except OSError:
        return {}


def _history(trial_id: str, name: str, df: pd.DataFrame) -> pd.DataFrame:
    if df is None or df.empty or "epoch" not in df:
        return pd.DataFrame()
    keep = [c for c in df.columns if c != "epoch" and c not in TUNE_KEYS
            and not c.startswith("config/") and pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_bool_dtype(df[c])]
    out = df[["epoch", *keep]].astype(float)
    out = out.drop_duplicates("epoch", keep="last").sort_values("epoch")
    out["epoch"] = out["epoch"].astype("int64")
    out.insert(0, "trial_name", name)
    out.insert(0, "trial_id", trial_id)
    return out.reset_index(drop=True)


def _best_epoch(hist: pd.DataFrame, metric: str, mode: str) -> dict[str, float]:
    """Every metric at the epoch with the best `metric` (first such epoch on ties)."""
    if hist.empty or metric not in hist or hist[metric].isna().all():
        return {}
    i = hist[metric].idxmax() if mode == "max" else hist[metric].idxmin()
    row = hist.loc[i].drop(["trial_id", "trial_name"])
    return {f"best/{k}": float(v) for k, v in row.items()}


def trial_row(trial, hist: pd.DataFrame, metric: str, mode: str) -> dict[str, Any]:
    """One row of results.parquet (schema in the module docstring)."""
    from imbtrain.config import TrainConfig
    from imbtrain.tune.space import trial_label, trial_params, variant_of

    cfg = TrainConfig(**trial_params(trial.config))  # the param space holds the full config
    last = trial.last_result or {}
    info = _trial_info(trial)
    error = _error_line(trial) if trial.status == "ERROR" else None
    status = trial.status
    if status == "TERMINATED" and last.get("diverged"):  # a result, not a crash (trainable)
        status, error = "DIVERGED", info.get("error", "training diverged")
    row: dict[str, Any] = {
        "trial_id": trial.trial_id, "trial_name": trial_label(trial.config),
        "status": status, "error": error,
    }
    if variant_of(trial.config) is not None:
        row["variant"] = variant_of(trial.config)
    row.update({f"config/{k}": v for k, v in cfg.to_dict().items()})
    row.update({k: float(v) for k, v in last.items() if is_metric(k, v)})
    row.update(_best_epoch(hist, metric, mode))
    row["train_counts"] = info.get("train_counts")
    row["epochs_run"] = int(hist["epoch"].max()) if not hist.empty else 0
    row["time_total_s"] = float(last.get("time_total_s", math.nan))
    row["node_id"] = info.get("node_id")
    row["hostname"] = info.get("hostname", last.get("hostname"))
    row["pid"] = info.get("pid", last.get("pid"))
    return row


def collect(exp_dir: str, metric: str, mode: str) -> StudyTables:
    """Both tables of the study in `exp_dir` (a Ray Tune experiment directory)."""
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(exp_dir)
    frames = analysis.trial_dataframes
    rows, hists = [], []
    for trial in sorted(analysis.trials, key=lambda t: t.trial_id):
        hist = _history(trial.trial_id, "", frames.get(trial.trial_id))
        row = trial_row(trial, hist, metric, mode)
        if not hist.empty:
            hist["trial_name"] = row["trial_name"]
            hists.append(hist)
        rows.append(row)
    results = _order_columns(pd.DataFrame(rows))
    history = pd.concat(hists, ignore_index=True) if hists else pd.DataFrame(
        columns=["trial_id", "trial_name", "epoch"])
    return StudyTables(results, history)


def _order_columns(df: pd.DataFrame) -> pd.DataFrame:
    head = [c for c in ("trial_id", "trial_name", "status", "error", "variant")
            if c in df.columns]
    cfg = [c for c in df.columns if c.startswith("config/")]
    best = sorted(c for c in df.columns if c.startswith("best/"))
    tail = ["train_counts", "epochs_run", "time_total_s", "node_id", "hostname", "pid"]
    metrics = sorted(c for c in df.columns if c not in {*head, *cfg, *best, *tail})
    return df[[*head, *cfg, *metrics, *best, *tail]]


def results_schema(df: pd.DataFrame) -> pa.Schema:
    """The arrow schema of results.parquet: fixed types for the fixed columns."""
    from imbtrain.config import TrainConfig

    types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    cfg_types = {f"config/{f.name}": types.get(f.type if isinstance(f.type, str)
                                               else f.type.__name__, pa.string())
                 for f in fields(TrainConfig)}
    fixed = {"trial_id": pa.string(), "trial_name": pa.string(), "status": pa.string(),
             "error": pa.string(), "variant": pa.string(), "train_counts": pa.list_(pa.int64()),
             "epochs_run": pa.int64(), "node_id": pa.string(), "hostname": pa.string(),
             "pid": pa.int64(), **cfg_types}
    return pa.schema([(c, fixed.get(c, pa.float64())) for c in df.columns])


def write_tables(tables: StudyTables, exp_dir: str) -> None:
    """results.parquet and history.parquet into `exp_dir` (pyarrow, schema above)."""
    res = pa.Table.from_pandas(tables.results, schema=results_schema(tables.results),
                               preserve_index=False)
    pq.write_table(res, f"{exp_dir}/{RESULTS_FILE}")
    hist = tables.history
    schema = pa.schema([(c, pa.string() if c in ("trial_id", "trial_name") else
                         pa.int64() if c == "epoch" else pa.float64()) for c in hist.columns])
    pq.write_table(pa.Table.from_pandas(hist, schema=schema, preserve_index=False),
                   f"{exp_dir}/{HISTORY_FILE}")


def read_results(results_dir: str) -> pd.DataFrame:
    """results.parquet of a finished study as a DataFrame."""
    from pathlib import Path

    from imbtrain.errors import UserError

    path = Path(results_dir) / RESULTS_FILE
    if not path.is_file():
        raise UserError(f"{results_dir}: no {RESULTS_FILE}; expected the folder of a finished "
                        "study, <storage>/<name> (e.g. runs/batch_size)")
    return pq.read_table(path).to_pandas()
