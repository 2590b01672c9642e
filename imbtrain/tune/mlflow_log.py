"""MLflow logging of a study: one parent run per study, one nested run per trial.

ONE WRITER: the study driver logs everything through this
Tune callback, on trial start / result / complete / error. Trials never open the tracking
store, so a local sqlite file never sees two writers at once, and a cluster's workers need no
route to the tracking server (only the head node, where the driver runs, talks to it).

IN THE BACKGROUND: a hook only queues its writes (with a snapshot of the trial as it is
then), and one thread of the driver makes them in order. Tune's function trainables wait at
every report until the driver has handled the result, so a write in the hook would hold every
trial still for it: about 20 ms a result on a sqlite store, a round trip on a server
(benchmarks/RESULTS.md). `flush()` waits for the queue; the end of the experiment flushes,
and so does the driver's exit.

Runs are found by their tags, never remembered only in memory, so a new driver process
(`imbtrain study --resume` after a crash) continues the same runs instead of duplicating them:

- the study's parent run: the run tagged `imbtrain.study_uid=<uid>`, the id the logger drew
  when the study started (the runner keeps it in the study's study.yaml, and Tune in the
  pickled logger), so two studies of one name on one server never mix; without a uid, the
  latest run tagged `imbtrain.study=<name>` and `imbtrain.run_kind=study`;
- a trial's run: the run under that parent tagged `imbtrain.trial_id=<Ray trial id>` (Ray
  keeps trial ids across `Tuner.restore`); the tag `imbtrain.last_step` records the last
  epoch logged, so epochs re-reported after resuming from an older checkpoint are not logged
  twice.

Example (what `imbtrain study` does)::

    logger = StudyMLflowLogger("sqlite:///mlflow.db", "batch_size")
    tuner = tune.Tuner(trainable, run_config=tune.RunConfig(callbacks=[logger]), ...)
    tuner.fit()
    log_study_artifacts("sqlite:///mlflow.db", "batch_size", ["runs/batch_size/results.parquet"],
                        uid=logger.uid)

WHAT THE RUNS HOLD (curated for comparison, `imbtrain.tune.mlflow_curate`): a trial's params
are the study's knobs, its train ratio and seed, dataset, model and method, and the config
keys that differ from their defaults (30 at most); its full config is the artifact
config.yaml; its metrics are every epoch's but the per-class accuracies, which go to the
table per_class.json (one row a class, named from the trial's saved model) when it ends. The
parent run holds the space as params (`space_params`) and, once the study is collected, the
best validation metric of each train ratio and the trial counts as metrics
(`log_study_summary`) and the best model of each train ratio (`imbtrain.tune.runner`). Every
run carries the tags `imbtrain.version` and `imbtrain.git_commit` (from a checkout).

FAILURES: an unreachable store fails the study before any trial starts (`check`, one line);
a store that fails later stops the logging with one warning line, and the study goes on
(`_never_fails`): results.parquet, not MLflow, is the study's record.

Only `mlflow.MlflowClient` is used (no fluent `mlflow.start_run` global state): a run is
addressed by its id, and params / metrics go in with `log_batch`, one call per result.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import queue
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from ray import tune

from imbtrain.errors import UserError
from imbtrain.study.space import VARIANT_KEY, trial_params
from imbtrain.tune.mlflow_curate import (
    PER_CLASS_FILE,
    non_default_params,
    per_class_table,
    split_class_metrics,
)

# ---------------------------------------------------------------- tag names (the contract)
TAG_STUDY = "imbtrain.study"            # on the parent and on every trial run
TAG_RUN_KIND = "imbtrain.run_kind"      # "study" (the parent) | "trial"
TAG_STUDY_UID = "imbtrain.study_uid"    # on the parent: the logger instance that opened it
TAG_TRIAL_ID = "imbtrain.trial_id"      # Ray's trial id, stable across Tuner.restore
TAG_TRIAL_NAME = "imbtrain.trial_name"  # str(trial), also the run's name
TAG_LAST_STEP = "imbtrain.last_step"    # last epoch logged, so a resume never re-logs one
TAG_TRIALS_FINISHED = "imbtrain.trials_finished"  # on the parent, at the end of the study
TAG_TRIALS_FAILED = "imbtrain.trials_failed"
TAG_VARIANT = "imbtrain.variant"        # a trial's variant, in studies with `variants`
TAG_CHECKED_AT = "imbtrain.checked_at"  # on the experiment: when a study last wrote to it
PARENT_TAG = "mlflow.parentRunId"       # MLflow's own nesting tag (the UI's tree)
# Config keys copied to tags `imbtrain.<key>` so runs can be filtered without params.
CONFIG_TAG_KEYS = ("dataset", "train_ratio", "seed", "method")

# Result keys that are Ray's bookkeeping, not the trial's metrics.
RAY_RESULT_KEYS = frozenset({
    "training_iteration", "time_this_iter_s", "time_total_s", "time_since_restore",
    "iterations_since_restore", "timestamp", "pid", "date", "hostname", "node_ip", "done",
    "trial_id", "experiment_id", "experiment_tag", "checkpoint_dir_name", "should_checkpoint",
    "config",
})
HTTP_TIMEOUT_S = 5.0
MAX_PARAM_LEN = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
PARAMS_PER_BATCH = 100  # MAX_PARAMS_TAGS_PER_BATCH
METRICS_PER_BATCH = 900  # under MAX_ENTITIES_PER_BATCH (1000) with the step tag


FLUSH_AT_EXIT_S = 60.0  # the longest the driver's exit waits for queued writes


@dataclass(frozen=True)
class TrialView:
    """What the logger reads of a Tune trial, taken when a hook runs: the writer thread
    works later, when the trial has moved on."""

    trial_id: str
    name: str
    config: dict
    status: str
    last_result: dict
    checkpoint: Any

    @classmethod
    def of(cls, trial) -> TrialView:
        return cls(trial.trial_id, str(trial), dict(trial.config), trial.status,
                   dict(getattr(trial, "last_result", None) or {}),
                   getattr(trial, "checkpoint", None))

    def __str__(self) -> str:
        return self.name


_WRITERS: list[_Writer] = []  # every writer thread of this process (`flush_all`)


def flush_all(timeout: float = FLUSH_AT_EXIT_S) -> bool:
    """Wait for the queued writes of every study logger of this process (at most `timeout`
    seconds in all): what a driver that ends with `os._exit` calls first. True when made."""
    deadline = time.monotonic() + timeout
    return all([w.flush(max(0.0, deadline - time.monotonic())) for w in list(_WRITERS)])


atexit.register(flush_all)  # the driver's exit waits for the queued writes too


class _Writer:
    """One daemon thread that runs queued calls in order (`StudyMLflowLogger`)."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="imbtrain-mlflow-writer")
        self._thread.start()
        _WRITERS.append(self)

    def submit(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every call queued so far has run (at most `timeout` seconds); True
        when they have."""
        done = threading.Event()
        self._queue.put(done.set)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            fn = self._queue.get()
            try:
                fn()
            except Exception:  # the calls are `_never_fails` hooks: nothing gets here
                pass


def _never_fails(hook):
    """A Tune hook that cannot end the study: when the store fails mid-study (a server gone
    down, after MLflow's own retries), one warning line, then the logger stops and the study
    goes on; results.parquet still gets every trial (RELIABILITY.md). A resumed study (a new
    logger, unpickled) tries MLflow again."""

    @functools.wraps(hook)
    def guarded(self, *args, **kwargs):
        if self._failed is not None:
            return None
        try:
            return hook(self, *args, **kwargs)
        except Exception as e:  # any client or connection error: MLflow is not the record
            text = str(e).strip()
            self._failed = text.splitlines()[0][:300] if text else type(e).__name__
            print(f"warning: MLflow logging to {self.tracking_uri} stopped ({self._failed}); "
                  "the study goes on and results.parquet will hold every trial",
                  file=sys.stderr, flush=True)
            return None

    return guarded


class StudyMLflowLogger(tune.Callback):
    """Tune callback that logs a study to MLflow from the driver.

    Args:
        tracking_uri: `sqlite:///path.db` (local) or `http(s)://host:port` (a server); a
            relative sqlite path is made absolute now, so a resumed driver writes to the
            same file. File stores (`./mlruns`) are refused, as MLflow 3 does.
        study_name: the study (`imbtrain study --name`); the parent run's name and tag.
        experiment_name: MLflow experiment (created when missing); default `study_name`.
        tags: extra tags set on the parent run and on every trial run.
        resume: True (default) continues the study's latest parent run when one exists;
            False opens a new parent run, which becomes the study's current one.
        knobs: the study's knob keys: always params of a trial run, default or not.
        params: the parent run's params (the search space, `mlflow_curate.space_params`).

    Raises `UserError` (one line) at construction when the store cannot be reached, so a
    study fails before any trial starts.
    """

    def __init__(self, tracking_uri: str, study_name: str, experiment_name: str | None = None,
                 tags: Mapping[str, Any] | None = None, *, resume: bool = True,
                 knobs: Iterable[str] = (), params: Mapping[str, str] | None = None):
        _check_name(study_name)
        self.tracking_uri = normalize_tracking_uri(tracking_uri)
        self.study_name = study_name
        self.experiment_name = experiment_name or study_name
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.resume = resume
        self.knobs = (*tuple(knobs), "train_ratio", "seed")
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        # Names this logger's parent run: a copy of the logger (Tune unpickles the callbacks
        # from tuner.pkl on Tuner.restore) finds the same parent, even with resume=False.
        self.uid = uuid.uuid4().hex
        self._reset()
        self.check()

    # ------------------------------------------------------------ state that is not pickled
    # Tune pickles the RunConfig (callbacks included) into tuner.pkl and unpickles it on
    # Tuner.restore: the client and the run-id cache are rebuilt from tags in the new process.
    def _reset(self) -> None:
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._parent_is_new = False
        self._runs: dict[str, list] = {}  # trial_id -> [run_id, last_step or None]
        self._failed: str | None = None  # why MLflow logging stopped (see `_never_fails`)
        self._writer: _Writer | None = None  # started by the first queued hook

    def _submit(self, write: Callable, *args) -> None:
        """Queue `write(*args)` for the writer thread (module docstring, IN THE BACKGROUND)."""
        if self._writer is None:
            self._writer = _Writer()
        self._writer.submit(functools.partial(write, self, *args))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued so far is made; True when they are (within
        `timeout` seconds)."""
        return self._writer.flush(timeout) if self._writer is not None else True

    def __getstate__(self) -> dict:
        keep = ("tracking_uri", "study_name", "experiment_name", "tags", "resume", "uid",
                "knobs", "params")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"knobs": ("train_ratio", "seed"), "params": {}, **state})
        self._reset()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def check(self) -> None:
        """Fail with one line when the tracking store cannot be reached or opened."""
        check_tracking_uri(self.tracking_uri)

    # ------------------------------------------------------------ the parent run
    @property
    def parent_run_id(self) -> str:
        """The study's parent run id (opened on first use), once the queued writes are made."""
        self.flush()
        return self.open_parent()

    def open_parent(self) -> str:
        """Find the study's parent run by its tags or create it; RUNNING either way."""
        if self._parent_id is None:
            self._experiment_id = _ensure_experiment(self.client, self.experiment_name,
                                                     self.tracking_uri)
            exp = [self._experiment_id]
            found = _find_parent(self.client, self.study_name, exp, uid=self.uid)
            if found is None and self.resume:
                found = _find_parent(self.client, self.study_name, exp)
            if found is None:
                run = self.client.create_run(self._experiment_id, run_name=self.study_name,
                                             tags={TAG_STUDY: self.study_name,
                                                   TAG_RUN_KIND: "study",
                                                   TAG_STUDY_UID: self.uid, **self.tags})
                self._parent_id, self._parent_is_new = run.info.run_id, True
                self._log_params(run.info.run_id, self.params)
            else:
                self._parent_id = found.info.run_id
                if found.info.status != "RUNNING":
                    self.client.update_run(self._parent_id, status="RUNNING")
        return self._parent_id

    # ------------------------------------------------------------ a trial's run
    def _trial_run(self, trial) -> list:
        """[run_id, last_step] of the trial's run: cached, found by tag, or created."""
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        parent = self.open_parent()
        # A parent created by this process has no trial runs yet: skip the search.
        run = None if self._parent_is_new else _find_trial(
            self.client, self._experiment_id, parent, trial.trial_id)
        if run is None:
            run = self._create_trial_run(trial, parent)
            entry = [run.info.run_id, None]
        else:
            last = run.data.tags.get(TAG_LAST_STEP)
            entry = [run.info.run_id, int(last) if last is not None else None]
            if run.info.status != "RUNNING":
                self.client.update_run(run.info.run_id, status="RUNNING")
            # Params are immutable in MLflow: log only those a crash may have left out.
            missing = {k: v for k, v in self.trial_params(trial.config).items()
                       if k not in run.data.params}
            self._log_params(run.info.run_id, missing)
        self._runs[trial.trial_id] = entry
        return entry

    def _create_trial_run(self, trial, parent: str):
        flat = flatten_params(trial.config)
        tags = {TAG_STUDY: self.study_name, TAG_RUN_KIND: "trial", PARENT_TAG: parent,
                TAG_TRIAL_ID: trial.trial_id, TAG_TRIAL_NAME: str(trial), **self.tags}
        for key in CONFIG_TAG_KEYS:
            if key in flat:
                tags[f"imbtrain.{key}"] = flat[key]
        if VARIANT_KEY in trial.config:  # a named combination of keys (imbtrain.study.space)
            tags[TAG_VARIANT] = str(trial.config[VARIANT_KEY])
        run = self.client.create_run(self._experiment_id, run_name=str(trial), tags=tags)
        self._log_params(run.info.run_id, self.trial_params(trial.config))
        self.client.log_text(run.info.run_id, trial_config_yaml(trial.config), "config.yaml")
        return run

    def trial_params(self, config: Mapping[str, Any]) -> dict[str, str]:
        """A trial run's params: knobs, train ratio, seed, the non-default keys (30 at most)."""
        return non_default_params(config, self.knobs)

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=items[i:i + PARAMS_PER_BATCH])

    # ------------------------------------------------------------ Tune hooks
    # Each hook queues its write for the writer thread, with a snapshot of the trial; each
    # write is wrapped by `_never_fails`: MLflow is a copy, results.parquet the record.
    def setup(self, **info) -> None:
        self._submit(StudyMLflowLogger._setup)
        self.flush()  # the parent run is there before the first trial starts

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._submit(StudyMLflowLogger._start, TrialView.of(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._submit(StudyMLflowLogger._result, TrialView.of(trial), dict(result))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        view = TrialView.of(trial)
        self._submit(StudyMLflowLogger._finish, view,
                     "FAILED" if _user_error(view) else "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._submit(StudyMLflowLogger._finish, TrialView.of(trial), "FAILED")

    def on_experiment_end(self, trials, **info) -> None:
        """Close the parent (`_end`), then wait for every queued write."""
        self._submit(StudyMLflowLogger._end, [TrialView.of(t) for t in trials])
        self.flush()

    # ------------------------------------------------------------ the writes
    @_never_fails
    def _setup(self) -> None:
        self.open_parent()

    @_never_fails
    def _start(self, trial: TrialView) -> None:
        self._trial_run(trial)

    @_never_fails
    def _result(self, trial: TrialView, result: dict) -> None:
        entry = self._trial_run(trial)
        step = result_step(result)
        if entry[1] is not None and step <= entry[1]:
            return  # logged before a crash; the trial re-reports it after its checkpoint
        metrics, _ = split_class_metrics(result_metrics(result))  # per class: a table, at the end
        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in metrics.items()]
        for i in range(0, max(len(items), 1), METRICS_PER_BATCH):
            last_chunk = i + METRICS_PER_BATCH >= len(items)
            # The step tag goes in with the last chunk: a step counts as logged only when
            # all its metrics are in.
            tags = [RunTag(TAG_LAST_STEP, str(step))] if last_chunk else []
            self.client.log_batch(entry[0], metrics=items[i:i + METRICS_PER_BATCH], tags=tags)
        entry[1] = step

    @_never_fails
    def _finish(self, trial: TrialView, status: str) -> None:
        run_id = self._trial_run(trial)[0]
        last = trial.last_result
        if split_class_metrics(last)[1]:
            names, counts = trial_classes(trial)
            self.client.log_table(run_id, per_class_table(last, names, counts), PER_CLASS_FILE)
        self.client.set_terminated(run_id, status=status)

    @_never_fails
    def _end(self, trials: list[TrialView]) -> None:
        """The parent: FINISHED when every trial finished, FAILED when one errored,
        KILLED when the study was interrupted (trials left to run; `--resume` goes on)."""
        statuses = [t.status for t in trials]
        failed = statuses.count("ERROR") + sum(map(_user_error, trials))
        done = statuses.count("TERMINATED") - sum(map(_user_error, trials))
        for trial in trials:  # runs of interrupted trials would otherwise stay RUNNING
            if trial.status not in ("TERMINATED", "ERROR") and trial.trial_id in self._runs:
                self.client.set_terminated(self._runs[trial.trial_id][0], status="KILLED")
        status = "FAILED" if failed else "FINISHED" if done == len(trials) else "KILLED"
        parent = self.open_parent()
        now = int(time.time() * 1000)
        self.client.log_batch(parent, tags=[RunTag(TAG_TRIALS_FINISHED, str(done)),
                                            RunTag(TAG_TRIALS_FAILED, str(failed))],
                              metrics=[Metric("trials_finished", done, now, 0),
                                       Metric("trials_failed", failed, now, 0)])
        self.client.set_terminated(parent, status=status)


def _user_error(trial) -> bool:
    """A trial a UserError ended (imbtrain.tune.trainable): it ends cleanly for Tune (not
    ERROR, so not retried), but failed."""
    return bool((trial.last_result or {}).get("user_error"))


# ================================================================ study-level helpers


def parent_run_id(tracking_uri: str, study_name: str, uid: str | None = None) -> str:
    """Id of the study's parent run, in any experiment; `UserError` when none. With `uid`
    (the study's `imbtrain.study_uid` tag, kept in its study.yaml): the run of that study
    alone; without, the latest parent of that name (for looking a study up by hand)."""
    client = MlflowClient(tracking_uri=normalize_tracking_uri(tracking_uri))
    run = _find_parent(client, study_name, _all_experiment_ids(client), uid=uid)
    if run is None:
        which = f" with {TAG_STUDY_UID}={uid}" if uid else ""
        raise UserError(f"no MLflow run of study '{study_name}'{which} in {tracking_uri}; "
                        "run the study first (imbtrain study ... --mlflow-uri URI)")
    return run.info.run_id


def log_study_artifacts(tracking_uri: str, study_name: str, paths: Iterable[str | Path],
                        *, uid: str) -> str:
    """Attach the study's plots and tables (files, or folders kept as folders) to its own
    parent run, the one tagged with its `uid` (never the latest of its name: another study
    of that name may have logged to the same server since); returns the parent run id."""
    _check_name(uid)
    uri = normalize_tracking_uri(tracking_uri)
    run_id = parent_run_id(uri, study_name, uid=uid)
    client = MlflowClient(tracking_uri=uri)
    for path in map(Path, paths):
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=path.name)
        elif path.is_file():
            client.log_artifact(run_id, str(path))
        else:
            raise UserError(f"study artifact {path} does not exist")
    return run_id


def log_study_summary(tracking_uri: str, study_name: str, metrics: Mapping[str, float], *,
                      uid: str) -> str:
    """The study's summary metrics (the best validation metric of each train ratio, e.g.
    `best_val_bal_acc_r0.02`) on its own parent run; returns the parent run id."""
    _check_name(uid)
    uri = normalize_tracking_uri(tracking_uri)
    run_id = parent_run_id(uri, study_name, uid=uid)
    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, 0) for k, v in metrics.items() if math.isfinite(v)]
    MlflowClient(tracking_uri=uri).log_batch(run_id, metrics=items)
    return run_id


def trial_config_yaml(config: Mapping[str, Any]) -> str:
    """A trial's full TrainConfig as YAML (the trial run's config.yaml)."""
    import yaml

    return yaml.safe_dump(dict(trial_params(dict(config))), sort_keys=False)


def trial_classes(trial) -> tuple[list[str] | None, list[int] | None]:
    """(class names, train counts) from the model folder of a trial's latest checkpoint
    (written when the trial ends; `imbtrain.study.checkpoints.MODEL_DIR`); Nones without."""
    import yaml

    from imbtrain.saved.folder import MANIFEST_FILE
    from imbtrain.study.checkpoints import MODEL_DIR

    try:
        ckpt = trial.checkpoint
        if ckpt is None:
            return None, None
        with ckpt.filesystem.open_input_stream(f"{ckpt.path}/{MODEL_DIR}/{MANIFEST_FILE}") as f:
            meta = yaml.safe_load(f.read())
        return list(meta["class_names"]), list(meta["train_counts"])
    except Exception:  # no model folder (a stopped trial), a stub: indices for names
        return None, None


def mark_interrupted(tracking_uri: str, study_name: str, uid: str | None,
                     finished: Iterable[str], failed: int = 0) -> None:
    """After an interrupted study (SIGINT/SIGTERM): its parent run and every trial run but
    those of the `finished` trial ids KILLED, `trials_finished` the finished ones; nothing
    may look finished that is not. `--resume` sets them RUNNING again."""
    client = MlflowClient(tracking_uri=normalize_tracking_uri(tracking_uri))
    parent = _find_parent(client, study_name, _all_experiment_ids(client), uid=uid)
    if parent is None:
        return
    finished = set(finished)
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
                              run_view_type=ViewType.ACTIVE_ONLY)
    for run in runs:
        if run.data.tags.get(TAG_TRIAL_ID) not in finished and run.info.status != "KILLED":
            client.set_terminated(run.info.run_id, status="KILLED")
    client.log_batch(parent.info.run_id, tags=[RunTag(TAG_TRIALS_FINISHED, str(len(finished))),
                                               RunTag(TAG_TRIALS_FAILED, str(failed))])
    client.set_terminated(parent.info.run_id, status="KILLED")


# ================================================================ URIs and connectivity


def normalize_tracking_uri(uri: str) -> str:
    """Refuse file stores; make a relative sqlite path absolute (and its folder exist)."""
    uri = str(uri)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in ("http", "https") or scheme.startswith(("postgresql", "mysql", "mssql")):
        return uri
    if scheme != "sqlite" or not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        raise UserError(f"MLflow tracking URI '{uri}' is not supported; use "
                        "sqlite:///mlflow.db locally or an http://host:port MLflow server "
                        "(file stores such as ./mlruns are refused by MLflow 3)")
    path = Path(uri[len("sqlite:///"):]).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def check_tracking_uri(uri: str) -> None:
    """One-line `UserError` unless the store answers: an http server's `/health` within
    HTTP_TIMEOUT_S (MLflow's own client would retry for minutes), a database a query."""
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S).close()
        except urllib.error.HTTPError:
            return  # something answers: auth or proxy problems surface on the first call
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise UserError(f"MLflow tracking server {uri} is unreachable ({reason}); start "
                            "it (mlflow server --host 127.0.0.1 --port 5000) or forward its "
                            "port, or pass another --mlflow-uri") from None
        return
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as e:  # sqlalchemy / sqlite errors: one line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot open MLflow store {uri}: {first}") from None


def check_writable(uri: str, experiment_name: str) -> None:
    """One-line `UserError` unless the store takes a write, before Ray starts (a read-only
    sqlite file or folder answers every read and fails every write, and the logger, which
    never stops a study, would then log nothing): the study's experiment is created or
    found, and its `imbtrain.checked_at` tag set to now."""
    client = MlflowClient(tracking_uri=uri)
    # MLflow's database layer logs each failed statement with its traceback before raising.
    db_log = logging.getLogger("mlflow.store.db.utils")
    level = db_log.level
    db_log.setLevel(logging.CRITICAL)
    try:
        exp_id = _ensure_experiment(client, experiment_name, uri)
        client.set_experiment_tag(exp_id, TAG_CHECKED_AT, time.strftime("%Y-%m-%dT%H:%M:%S"))
    except Exception as e:  # sqlite "readonly database", a server's permission error
        text = re.sub(r"^\([\w.]+\) ", "", str(e).strip())  # "(sqlite3.Error) " off
        first = text.splitlines()[0][:300] if text else type(e).__name__
        raise UserError(f"MLflow store {uri} cannot be written ({first}); make it writable "
                        "or pass another --mlflow-uri") from None
    finally:
        db_log.setLevel(level)


# ================================================================ config and results


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A trial's config as MLflow params: nested dicts flattened with '.', values as text
    (cut to MLflow's 6000-character limit), Tune's own keys (`__trial_index__`) left out."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if str(key).startswith("__"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, prefix=f"{name}."))
        else:
            out[name] = str(value)[:MAX_PARAM_LEN]
    return out


def result_step(result: Mapping[str, Any]) -> int:
    """The MLflow step of a result: its `epoch`, else Ray's `training_iteration`."""
    return int(result["epoch"] if "epoch" in result else result["training_iteration"])


def result_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The trial's numeric metrics of one result (Ray's bookkeeping keys left out)."""
    return {k: float(v) for k, v in result.items()
            if k not in RAY_RESULT_KEYS and isinstance(v, int | float)
            and not (isinstance(v, float) and math.isinf(v))}


# ================================================================ lookups


def _check_name(study_name: str) -> None:
    # The name goes into an MLflow filter string, quoted with '.
    if not study_name or "'" in study_name or '"' in study_name:
        raise UserError(f"study name {study_name!r} must be non-empty and free of quotes")


def _ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    # A local store keeps its artifacts next to its database, not in the cwd's ./mlruns
    # (MLflow's default); a server decides for itself (--artifacts-destination).
    location = None
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        location = (db.parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def _all_experiment_ids(client: MlflowClient) -> list[str]:
    ids, token = [], None
    while True:
        page = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, page_token=token)
        ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            return ids


def _find_parent(client: MlflowClient, study_name: str, experiment_ids: list[str],
                 uid: str | None = None):
    """The latest parent run of the study (of one logger instance when `uid` is given)."""
    if not experiment_ids:
        return None
    where = f"tags.`{TAG_STUDY}` = '{study_name}' and tags.`{TAG_RUN_KIND}` = 'study'"
    if uid is not None:
        where += f" and tags.`{TAG_STUDY_UID}` = '{uid}'"
    runs = client.search_runs(
        experiment_ids, filter_string=where,
        run_view_type=ViewType.ACTIVE_ONLY, max_results=1,
        order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


def _find_trial(client: MlflowClient, experiment_id: str, parent_id: str, trial_id: str):
    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`{PARENT_TAG}` = '{parent_id}' and "
                       f"tags.`{TAG_TRIAL_ID}` = '{trial_id}'"),
        run_view_type=ViewType.ACTIVE_ONLY, max_results=1,
        order_by=["attributes.start_time ASC"])
    return runs[0] if runs else None


__all__ = [
    "CONFIG_TAG_KEYS", "PARENT_TAG", "TAG_LAST_STEP", "TAG_RUN_KIND", "TAG_STUDY",
    "TAG_STUDY_UID",
    "TAG_TRIAL_ID", "TAG_TRIAL_NAME", "TAG_TRIALS_FAILED", "TAG_TRIALS_FINISHED",
    "StudyMLflowLogger", "check_tracking_uri", "check_writable", "flatten_params",
    "log_study_artifacts", "log_study_summary", "mark_interrupted", "normalize_tracking_uri",
    "parent_run_id",
]
