"""A study's result tables: their names, their schema, and reading and writing them with
pyarrow. Ray-free: the tables are collected from a Ray experiment directory by
`imbtrain.tune.collect`, and read back here by analyses and export on any machine, with or
without Ray. Files under `<storage>/<name>/` (a folder or a URI, `imbtrain.study.storage`):

`results.parquet`, one row a trial, in the order the searcher made the trials:

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

`best.yaml`: the full TrainConfig of the best configuration when the study ran one train
ratio; with several, `best_r<ratio>.yaml` holds each ratio's best and `best.yaml` is their
index (`imbtrain.study.export`: the train ratio is a condition of the data, not a knob).
`study.yaml`: what the study was asked (the spec, the metric, the options) and what ran it
(imbtrain's version and git commit), read again on `--resume`.

    >>> import pandas as pd
    >>> hist = pd.DataFrame({"trial_id": ["a"] * 3, "trial_name": ["x"] * 3,
    ...                      "epoch": [1, 2, 3], "val_bal_acc": [0.5, 0.7, 0.6],
    ...                      "test_acc": [0.4, 0.65, 0.62]})
    >>> best_epoch(hist, "val_bal_acc", "max")
    {'best/epoch': 2.0, 'best/val_bal_acc': 0.7, 'best/test_acc': 0.65}
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imbtrain.study.storage import StudyDir, as_study_dir, is_uri

RESULTS_FILE = "results.parquet"
HISTORY_FILE = "history.parquet"
BEST_FILE = "best.yaml"
STUDY_FILE = "study.yaml"  # what was asked: the spec, the metric, the options
OPTUNA_FILE = "optuna.db"  # an Optuna searcher's study (sqlite), read by the importance analysis
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


def history_table(trial_id: str, name: str, df: pd.DataFrame) -> pd.DataFrame:
    """One trial's rows of history.parquet from its reported results (one row a report):
    the numeric metrics by epoch, the latest report of an epoch reported twice."""
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


def best_epoch(hist: pd.DataFrame, metric: str, mode: str) -> dict[str, float]:
    """Every metric at the epoch with the best `metric` (first such epoch on ties)."""
    if hist.empty or metric not in hist or hist[metric].isna().all():
        return {}
    i = hist[metric].idxmax() if mode == "max" else hist[metric].idxmin()
    row = hist.loc[i].drop(["trial_id", "trial_name"])
    return {f"best/{k}": float(v) for k, v in row.items()}


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """results.parquet's columns in their order: ids and status, config, metrics, best/
    metrics, then the trial's counts, timings and where it ran."""
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


def write_tables(tables: StudyTables, exp_dir: str | Path | StudyDir) -> None:
    """results.parquet and history.parquet into the study folder `exp_dir` (a path, a URI
    or a `StudyDir`; pyarrow, schema above): written in its working copy, then pushed."""
    study = as_study_dir(exp_dir)
    study.local.mkdir(parents=True, exist_ok=True)
    res = pa.Table.from_pandas(tables.results, schema=results_schema(tables.results),
                               preserve_index=False)
    pq.write_table(res, study.local / RESULTS_FILE)
    hist = tables.history
    schema = pa.schema([(c, pa.string() if c in ("trial_id", "trial_name") else
                         pa.int64() if c == "epoch" else pa.float64()) for c in hist.columns])
    pq.write_table(pa.Table.from_pandas(hist, schema=schema, preserve_index=False),
                   study.local / HISTORY_FILE)
    study.push(RESULTS_FILE, HISTORY_FILE)


# What each table is, for the one line a damaged file gets (imbtrain.files.read_parquet).
RESULTS_KIND = ("a study's results table, one row a trial (`imbtrain study ... --resume` "
                "writes it again from the study's Tune files)")
HISTORY_KIND = ("a study's history table, one row a trial-epoch (`imbtrain study ... "
                "--resume` writes it again from the study's Tune files)")


def read_results(results_dir: str | Path | StudyDir) -> pd.DataFrame:
    """results.parquet of a finished study (a folder, a URI or a `StudyDir`)."""
    from imbtrain.errors import UserError

    study = as_study_dir(results_dir)
    path = study.pull(RESULTS_FILE)[0]
    if path is None or not path.exists():  # a folder of that name: one line (_read_table)
        shown = study.uri if isinstance(results_dir, StudyDir) or is_uri(results_dir) \
            else results_dir
        raise UserError(f"{shown}: no {RESULTS_FILE}; expected the folder of a finished "
                        "study, <storage>/<name> (e.g. runs/batch_size)")
    return _read_table(path, RESULTS_KIND, ("trial_id", "status"))


def read_history(results_dir: str | Path | StudyDir) -> pd.DataFrame:
    """history.parquet of a study folder (an empty table when it has none)."""
    path = as_study_dir(results_dir).pull(HISTORY_FILE)[0]
    if path is not None and path.is_file():
        return _read_table(path, HISTORY_KIND, ("trial_id", "epoch"))
    return pd.DataFrame(columns=["trial_id", "trial_name", "epoch"])


STUDY_KIND = "the record of a study that imbtrain study writes (a mapping with its metric)"


def read_study_file(results_dir: str | Path | StudyDir) -> dict[str, Any]:
    """study.yaml of a study folder (a folder, a URI or a `StudyDir`): a mapping with at
    least the study's `metric` and `mode` (`imbtrain.tune.runner` writes it); one line when
    it is damaged or of another kind."""
    from imbtrain.errors import UserError
    from imbtrain.files import read_yaml

    study = as_study_dir(results_dir)
    path = study.pull(STUDY_FILE)[0] or study.local / STUDY_FILE
    meta = read_yaml(path, STUDY_KIND)
    if not isinstance(meta, dict) or not isinstance(meta.get("metric"), str) \
            or meta.get("mode", "max") not in ("max", "min"):
        raise UserError(f"{path}: not a study record (no metric and mode); expected {STUDY_KIND}")
    return meta


def _read_table(path: Path, kind: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """A study table; one line when it is damaged, not Parquet, or a table of another kind."""
    from imbtrain.errors import UserError
    from imbtrain.files import read_parquet

    table = read_parquet(path, kind)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise UserError(f"{path}: a Parquet table without the column(s) "
                        f"{', '.join(missing)}; expected {kind}")
    return table.to_pandas()


def read_tables(results_dir: str | Path | StudyDir) -> StudyTables:
    """Both tables of a finished study folder."""
    return StudyTables(read_results(results_dir), read_history(results_dir))


@dataclass
class StudyResult:
    """What a finished study left: its folder, tables, the best config (per train ratio:
    `best_per_ratio`) and the MLflow run."""

    path: Path
    results: pd.DataFrame
    history: pd.DataFrame
    # TrainConfig of the best configuration (mean over seeds) of a study of one train ratio;
    # None with several (see best_per_ratio) or when no trial finished
    best: Any
    metric: str
    mode: str
    mlflow_uri: str | None
    mlflow_parent_run_id: str | None
    mlflow_study_uid: str | None = None  # the parent run's imbtrain.study_uid tag
    storage: StudyDir | None = None  # where the study lives (`path` is its working copy)

    @property
    def location(self) -> str:
        """Where the study's files are: its folder or its URI."""
        return self.storage.uri if self.storage is not None else str(self.path)

    @property
    def best_per_ratio(self) -> dict:
        """{train ratio: `imbtrain.study.export.Best(config, mean, n, trial_ids)`}, by the
        mean of the study's metric over seeds; empty when no trial finished."""
        from imbtrain.errors import UserError
        from imbtrain.study.export import best_per_ratio

        if not len(self.results) or "status" not in self.results:
            return {}
        try:
            return best_per_ratio(self.results, self.metric, self.mode)
        except UserError:
            return {}
