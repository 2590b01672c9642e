"""Run a study: a search space through Ray Tune, into MLflow, out as tables and best.yaml.

    result = run_study("batch_size", smoke=True)     # what `imbtrain study NAME --smoke` does
    result.results                                   # results.parquet as a DataFrame

Steps: validate (the spec is already checked; here the study folder, a local study's data,
the MLflow store and the resources: a bad input fails before anything is written) ->
`ray.init` (in-process with this machine's CPUs, or `address`) -> a `tune.Tuner` (or
`Tuner.restore` with `resume`: finished trials are kept, unfinished ones continue from their
last checkpoint, errored ones are retried from theirs) -> `fit` with the MLflow callback
(`imbtrain.tune.mlflow_log`, one writer: this driver) -> results.parquet, history.parquet
(`imbtrain.tune.collect`, in the format of `imbtrain.study.results`) and best.yaml
(`imbtrain.study.export`) under `<storage>/<name>/`, logged as artifacts of the study's
MLflow parent run, and the model of each train ratio's best trial under `models/r<ratio>/`,
logged to the parent run as the MLflow model `model_r<ratio>` (MLflow names take no dots:
`model_r0_02` for 0.02; with `register`, one new
version of that registered model a ratio, tagged with its train ratio and given the alias
`r<ratio>`, dots as underscores: `models:/NAME@r0_02`). study.yaml records what the study
was asked and what ran it (the resolved base config, imbtrain's version and git commit); the
MLflow runs carry the same as tags. A failed trial is restarted from its
last checkpoint up to `max_failures` times (RELIABILITY.md has every fault and its handling).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import yaml

from imbtrain.errors import StudyInterrupted, UserError
from imbtrain.files import check_pickle
from imbtrain.study.console import CONSOLE
from imbtrain.study.export import best_trial_per_ratio, write_best
from imbtrain.study.lock import StudyLock
from imbtrain.study.options import DEFAULT_MLFLOW_URI, DEFAULT_STORAGE, MAX_FAILURES
from imbtrain.study.paths import absolute_paths, study_files
from imbtrain.study.results import (
    BEST_FILE,
    HISTORY_FILE,
    OPTUNA_FILE,
    RESULTS_FILE,
    STUDY_FILE,
    StudyResult,
    read_study_file,
    write_tables,
)
from imbtrain.study.space import StudySpec, load_space, trial_label, trial_points
from imbtrain.study.storage import StudyDir, as_study_dir
from imbtrain.tune import quiet
from imbtrain.tune.collect import collect, experiment_started, finished_trials
from imbtrain.tune.translate import param_space
from imbtrain.version import provenance, provenance_tags

__all__ = ["DEFAULT_MLFLOW_URI", "DEFAULT_STORAGE", "MAX_FAILURES", "StudyResult",
           "log_artifacts", "run_study"]

STUDY_UID_KEY = "mlflow_study_uid"  # in study.yaml: the tag that finds the MLflow parent run
TUNER_FILE = "tuner.pkl"  # Tune's pickled Tuner: a study folder was set up
ADDRESS_TIMEOUT_S = 5.0  # a cluster address that does not answer in this long is refused
KEEP_CHECKPOINTS = 2  # the latest two: one may be half-written when a driver dies
TUNER_KIND = ("the Tune state of a started study (Ray's tuner.pkl); this folder cannot be "
              "resumed: run the study again under another --name")
WARM_HOOK = "imbtrain.tune.trainable.warm_worker"  # a local study's workers import the loop


# ---------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------

def init_ray(address: str | None, dashboard: bool = False, verbose: int = 1) -> None:
    """Start Ray in-process with this machine's CPUs, or connect to `address`; `verbose` 0
    turns Ray's own lines off (`imbtrain.tune.quiet`).

    In-process, Ray starts with what a local study needs: no dashboard (`dashboard` asks for
    one), no usage-stats reporting, and workers that import the training loop as they start
    (`trainable.warm_worker`), while the driver sets up Tune and MLflow: a worker's first
    trial starts training at once."""
    import ray

    if ray.is_initialized():
        return
    from imbtrain.tune.loopback import bind_to_loopback, is_loopback_address
    from imbtrain.tune.quiet import init_options

    if not address or is_loopback_address(address):
        bind_to_loopback()  # nothing off this machine needs to reach it (loopback.py)
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        # Worker lines reach a log file or a pipe: no raw colour codes around their prefix.
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    if address:
        check_address(address)
        try:
            ray.init(address=address, **init_options(verbose))
        except ConnectionError as e:  # "auto" with no cluster on this machine
            raise UserError(f"--address {address}: no Ray cluster to join ({_first_line(e)}); "
                            "start one (ray start --head, imbtrain cluster-local start) or "
                            "leave --address out to run on this machine") from None
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # "local", not None: None would join any cluster `ray start` left on this machine.
        # The job's workers run the hook, so the generic workers Ray would start for the
        # first driver could never serve a trial: they are not started.
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=dashboard,
                 runtime_env={"worker_process_setup_hook": WARM_HOOK},
                 _system_config={"prestart_worker_first_driver": False},
                 **init_options(verbose))
    _RAY_STARTED_HERE.append(True)


_RAY_STARTED_HERE: list[bool] = []  # init_ray started (or joined) Ray in this process


def stop_ray() -> None:
    """Shut down the Ray session `init_ray` started, if any (a session someone else started,
    a test's, is left running). A study script calls it before it exits, inside the console's
    heartbeat: stopping Ray's workers takes seconds on a busy machine."""
    import ray

    if _RAY_STARTED_HERE and ray.is_initialized():
        ray.shutdown()
    _RAY_STARTED_HERE.clear()


def check_address(address: str | None) -> None:
    """Fail within seconds, not after Ray's minutes of retries, when `host:port` (or
    `ray://host:port`) of `--address` does not answer; `auto` is Ray's to find."""
    import socket

    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"--address {address}: expected host:port of a Ray cluster's head "
                        "(e.g. 127.0.0.1:6379), ray://host:port, or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), ADDRESS_TIMEOUT_S).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UserError(f"--address {address}: no Ray cluster answers there ({reason}); "
                        "start one (ray start --head) or check the address") from None


def check_resources(spec: StudySpec, address: str | None) -> None:
    """Fail now, not hang forever, when no node can hold one trial (local runs only: a
    cluster's autoscaler may add the GPU nodes a trial asks for)."""
    import ray

    if address:
        return
    have = ray.cluster_resources()
    for key, need in (("CPU", spec.cpus_per_trial), ("GPU", spec.gpus_per_trial)):
        if need > have.get(key, 0.0):
            raise UserError(f"a trial asks for {need:g} {key}s but this machine has "
                            f"{have.get(key, 0.0):g}; lower resources.{key.lower()}s "
                            f"(or --gpus-per-trial), or pass --address of a cluster")


# ---------------------------------------------------------------------------------------
# Tune objects
# ---------------------------------------------------------------------------------------

class TrialNamer:
    """Trial names carry the key settings (TrainConfig.trial_name); folders add the id.

    Tune names a trial before it resolves the `sample_from`s of its config, so the values
    that variants set come from the spec's `variant_table`."""

    def __init__(self, with_id: bool, variant_table: dict | None = None) -> None:
        self.with_id = with_id
        self.variant_table = variant_table or {}

    def __call__(self, trial) -> str:
        name = trial_label(trial.config, self.variant_table)
        return f"{name}_{trial.trial_id}" if self.with_id else name


# The callback below is pickled into tuner.pkl by value (a class made in a function): it
# reaches the console through these module functions (pickled by reference), never the
# console object itself (its lock cannot be pickled).
def _say(line: str) -> None:
    CONSOLE.say(line)


def _status(fn) -> None:
    CONSOLE.status(fn)


def _epochs_of(trial, default: int) -> int:
    """The epochs a trial trains: its config's (a knob or a variant may set them, e.g. the
    fixed-step variants of the batch-size study), else the study's."""
    value = (getattr(trial, "config", None) or {}).get("epochs", default)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default


def _progress_callback(total: int, metric: str, mode: str, epochs: int):
    """A Tune callback that prints one line a trial start, an epoch and a finished trial (the
    driver's view of the study; Ray's own tables list every metric and are set quiet), and
    gives the console's heartbeat the trials running (`imbtrain.study.console`)."""
    import time

    from ray import tune

    from imbtrain.tune.trainable import ERROR_KEY, USER_ERROR

    width = len(str(total))

    class StudyProgress(tune.Callback):
        def __init__(self) -> None:
            self.started: dict[str, float] = {}  # trial id -> when it started (this process)
            self.epoch: dict[str, int] = {}

        def _done(self, trials, trial=None) -> str:
            done = sum(t.status in ("TERMINATED", "ERROR") for t in trials if t is not trial)
            done += trial is not None
            return f"[{done:>{width}}/{max(total, len(trials))} done]"

        def _say(self, line: str) -> None:
            _say(line)

        def status(self, trials) -> str:
            """The heartbeat: the trials running (their epoch and time), how many are done."""
            now = time.monotonic()
            running = [t for t in trials if t.status == "RUNNING" and t.trial_id in self.started]
            done = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
            if not running:
                return (f"{done}/{max(total, len(trials))} done; waiting for a trial to start "
                        "(Ray is starting a worker process)")
            parts = [f"{t} (epoch {self.epoch.get(t.trial_id, 0)}/{_epochs_of(t, epochs)} done, "
                     f"{now - self.started[t.trial_id]:.0f} s)" for t in running]
            return f"{done}/{max(total, len(trials))} done; running: {', '.join(parts)}"

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            first = trial.trial_id not in self.started
            self.started[trial.trial_id] = time.monotonic()
            _status(lambda: self.status(trials))
            if first:
                self._say(f"[{len(self.started):>{width}}/{max(total, len(trials))}] started "
                          f"{trial}")

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            if result.get("diverged") or result.get(USER_ERROR):  # said by on_trial_complete
                return
            self.epoch[trial.trial_id] = int(result.get("epoch", 0))
            value = result.get(metric, float("nan"))
            test = result.get("test_acc", float("nan"))
            self._say(f"{self._done(trials)} {trial}  epoch {int(result.get('epoch', 0))}/"
                      f"{_epochs_of(trial, epochs)}  {metric} {value:.4f}  test_acc {test:.4f}")

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            last = trial.last_result or {}
            if last.get(USER_ERROR):  # the trial's one line; it is not retried
                print(f"{self._done(trials, trial)} FAILED {trial}: {last.get(ERROR_KEY)}",
                      flush=True)
                return
            if last.get("diverged"):
                self._say(f"{self._done(trials, trial)} DIVERGED {trial} at epoch "
                          f"{int(last['epoch'])} (train loss {last.get('train_loss')}); "
                          "recorded, the study goes on")
                return
            value = last.get(metric, float("nan"))
            self._say(f"{self._done(trials, trial)} finished {trial}: {metric} {value:.4f}"
                      f"{_best_so_far(trials, trial)}")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._say(f"{self._done(trials, trial)} FAILED {trial}: see {trial.path}/error.txt")

        def on_trial_recover(self, iteration, trials, trial, **info) -> None:
            # A trial raised or lost its worker (a dead node); Tune restarts it.
            failures = trial.num_failures
            self._say(f"{self._done(trials)} RETRY {trial} (failure {failures}): it restarts "
                      "from its last checkpoint")

    def _best_so_far(trials, current) -> str:
        """The best finished trial at the current trial's train ratio (a condition of the
        data: trials at other ratios are not its rivals)."""
        ratio = current.config.get("train_ratio")
        scored = [(t.last_result[metric], str(t)) for t in trials
                  if (t is current or t.status == "TERMINATED")
                  and t.config.get("train_ratio") == ratio
                  and isinstance((t.last_result or {}).get(metric), float)
                  and not math.isnan(t.last_result[metric])]
        if not scored:
            return ""
        value, name = (max if mode == "max" else min)(scored)
        at = f" at r = {ratio:g}" if isinstance(ratio, int | float) else ""
        return f"; best so far{at} {name} {value:.4f}"

    return StudyProgress()


def make_searcher(spec: StudySpec, exp_dir: Path):
    """Grid: Tune's BasicVariantGenerator, seeded, so `choice` and `uniform` knobs draw the
    same values in every run of the study (capped at max_concurrent trials at once, as
    Tune's default one is); optuna: a seeded OptunaSearch whose study lives in
    `<exp_dir>/optuna.db` (the study's working copy: a study in object storage pushes it
    there), so `optuna.importance` can read it afterwards."""
    if spec.searcher != "optuna":
        from ray.tune.search import BasicVariantGenerator

        return BasicVariantGenerator(random_state=spec.searcher_seed,
                                     max_concurrent=spec.max_concurrent or 0)
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    storage = optuna.storages.RDBStorage(f"sqlite:///{exp_dir / OPTUNA_FILE}")
    return OptunaSearch(metric=spec.metric, mode=spec.mode, seed=spec.searcher_seed,
                        storage=storage, study_name=exp_dir.name)


def make_scheduler(spec: StudySpec):
    """None (FIFO) or ASHA over epochs, max_t = the trials' epochs."""
    if spec.scheduler != "asha":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch", max_t=spec.epochs, grace_period=spec.grace_period,
                         reduction_factor=spec.reduction_factor)


def asha_record(scheduler):
    """A Tune callback that keeps ASHA's rung records (each rung's metric of every trial
    that reached it) in Tune's experiment state, so a resumed study stops its trials as the
    uninterrupted one would: Tune saves a searcher's state and the callbacks' with the
    trials, but not the scheduler's, and a restored ASHA would judge the trials still to
    come against empty rungs. The callback and the scheduler come back as one object graph
    from tuner.pkl, so `set_state` refills the very scheduler the restored study runs with.
    None without a scheduler."""
    if scheduler is None:
        return None
    from ray import tune

    class ASHARecord(tune.Callback):
        def __init__(self, asha) -> None:
            self.asha = asha

        def get_state(self) -> dict:
            return {"rungs": [[(milestone, dict(recorded)) for milestone, recorded in
                               bracket._rungs] for bracket in self.asha._brackets]}

        def set_state(self, state: dict) -> None:
            for bracket, rungs in zip(self.asha._brackets, state["rungs"], strict=True):
                for (milestone, recorded), (saved_at, saved) in zip(bracket._rungs, rungs,
                                                                    strict=True):
                    if milestone == saved_at:
                        recorded.clear()
                        recorded.update(saved)

    return ASHARecord(scheduler)


def asha_rungs(spec: StudySpec) -> tuple[int, ...]:
    """The epochs at which ASHA may stop a trial (Ray's milestones: grace_period times powers
    of the reduction factor, below max_t); none without ASHA. Trials checkpoint there.

        >>> from imbtrain.study.space import StudySpec
        >>> asha_rungs(StudySpec("s", "s", base={"epochs": 9}, scheduler="asha",
        ...                      grace_period=1, reduction_factor=3))
        (1, 3, 9)
    """
    if spec.scheduler != "asha":
        return ()
    g, rf = spec.grace_period, spec.reduction_factor
    count = int(math.log(spec.epochs / g) / math.log(rf) + 1) if spec.epochs >= g else 0
    return tuple(g * rf ** k for k in range(count))


def _trainable(spec: StudySpec, study: StudyDir):
    from imbtrain.tune.trainable import make_trainable

    return make_trainable(spec.cpus_per_trial, spec.gpus_per_trial, spec.trial_metrics,
                          spec.metric, study, spec.checkpoint_every, asha_rungs(spec))


def make_tuner(spec: StudySpec, exp_dir: Path | StudyDir, callbacks: list, verbose: int,
               max_failures: int = MAX_FAILURES):
    """A `tune.Tuner` of the study in `exp_dir` (Tune writes its checkpoints and state to
    that folder's storage: a local folder, S3, ...); a trial that fails is restarted from
    its last checkpoint up to `max_failures` times (then recorded as ERROR)."""
    from ray import tune

    from imbtrain.tune.interrupt import StopOnSignal

    study = as_study_dir(exp_dir)
    searcher = make_searcher(spec, study.local)
    scheduler = make_scheduler(spec)
    record = asha_record(scheduler)
    grid = spec.searcher != "optuna"  # the grid's generator caps concurrency itself
    tune_config = tune.TuneConfig(
        metric=spec.metric, mode=spec.mode, search_alg=searcher,
        scheduler=scheduler, num_samples=spec.num_samples,
        time_budget_s=spec.time_budget_s,
        max_concurrent_trials=None if grid else spec.max_concurrent, reuse_actors=True,
        trial_name_creator=TrialNamer(with_id=False, variant_table=spec.variant_table()),
        trial_dirname_creator=TrialNamer(with_id=True, variant_table=spec.variant_table()))
    storage_path, storage_fs = study.tune_storage()
    run_config = tune.RunConfig(
        name=study.name, storage_path=storage_path, storage_filesystem=storage_fs,
        failure_config=tune.FailureConfig(max_failures=max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS),
        callbacks=[*callbacks, *([record] if record else []), StopOnSignal()],
        verbose=verbose)
    return tune.Tuner(_trainable(spec, study), param_space=param_space(spec),
                      tune_config=tune_config,
                      run_config=run_config)


def restore_tuner(spec: StudySpec, exp_dir: Path | StudyDir):
    """`Tuner.restore`: finished trials stay, unfinished and errored ones resume from their
    last checkpoints. The callbacks come back from tuner.pkl (the MLflow logger finds its
    parent run again by its tags). tuner.pkl is a pickle, so this runs only on the study
    folder the user named (--storage/--name), never on a path taken from elsewhere."""
    from ray import tune

    study = as_study_dir(exp_dir)
    # The param space again: Tune restores functions in it (an epochs knob computed from
    # the batch size: fixed-step variants) as placeholders that only it can fill.
    return tune.Tuner.restore(str(study.local) if study.is_local else study.path,
                              _trainable(spec, study), param_space=param_space(spec),
                              resume_unfinished=True, resume_errored=True,
                              storage_filesystem=None if study.is_local else study.fs)


# ---------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------

def study_dir(storage: str, name: str) -> StudyDir:
    """`<storage>/<name>`: a local folder (made absolute against this process's working
    directory: Ray wants an absolute storage path) or a folder under a URI."""
    return StudyDir.under(storage, name)


def _check_study_dir(study: StudyDir, resume: bool) -> None:
    """A new study needs an empty folder; `--resume` one in which Tune ran the study (its
    tuner.pkl and its experiment state), never one it only set up: Tune would start that
    experiment again with no trials of its own (RELIABILITY.md)."""
    has_tuner = study.is_file(TUNER_FILE)
    if resume and not has_tuner:
        raise UserError(f"--resume: no study to resume in {study.uri} (no {TUNER_FILE}); "
                        "run it without --resume first")
    started = has_tuner and experiment_started(study)
    if resume and not started:
        raise UserError(f"--resume: the study in {study.uri} never started (Tune wrote no "
                        "experiment state there); remove that folder and run the study "
                        "again without --resume")
    if resume:  # both read before Ray starts: a damaged file is one line, not a traceback
        check_pickle(study.pull(TUNER_FILE)[0], TUNER_KIND)
        _read_study_file(study)
    if not resume and study.exists() and study.names():
        if has_tuner and not started:
            raise UserError(f"{study.uri} holds a study that never started (no experiment "
                            "state); remove that folder and run again, or choose another "
                            "--name or --storage")
        raise UserError(f"{study.uri} already holds a study; add --resume to continue it, "
                        "or choose another --name or --storage")


def _write_study_file(spec: StudySpec, exp_dir: Path | StudyDir, mlflow_uri: str | None,
                      uid: str | None = None) -> dict:
    """study.yaml: the spec and options the study started with (read on --resume), the
    resolved config of its base, what ran it (imbtrain's version, the git commit) and the
    uid that finds its MLflow parent run (`uid`, None without MLflow)."""
    study = as_study_dir(exp_dir)
    meta = {"name": study.name, "space": str(spec.path), "smoke": spec.is_smoke,
            "metric": spec.metric, "mode": spec.mode, "searcher": spec.searcher,
            "scheduler": spec.scheduler, "num_trials": spec.num_trials(),
            "time_budget_s": spec.time_budget_s,
            "checkpoint_every": spec.checkpoint_every,
            "knobs": {k.key: {k.dist: list(k.values)} for k in spec.knobs.values()},
            "train_ratios": list(spec.train_ratios), "seeds": list(spec.seeds),
            "base": dict(spec.base), "mlflow_uri": mlflow_uri, STUDY_UID_KEY: uid}
    if spec.variants:
        meta["variants"] = {name: dict(over) for name, over in spec.variants.items()}
    if spec.trial_metrics:
        meta["trial_metrics"] = list(spec.trial_metrics)
    if spec.analyses:  # what `imbtrain analyze` draws when no analyses.yaml says otherwise
        meta["analyses"] = {kind: dict(opts) for kind, opts in spec.analyses.items()}
    meta["config"] = spec.base_config().to_dict()  # every trial's, before its knobs
    meta.update(provenance())
    study.local.mkdir(parents=True, exist_ok=True)
    (study.local / STUDY_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    study.push(STUDY_FILE)
    return meta


def _read_study_file(exp_dir: Path | StudyDir) -> dict:
    study = as_study_dir(exp_dir)
    if not study.is_file(STUDY_FILE):
        raise UserError(f"{study.file(STUDY_FILE)} is missing; it records the study's metric "
                        "and MLflow store, which --resume needs")
    return read_study_file(study)


def check_data(spec: StudySpec, address: str | None) -> None:
    """Load each on-disk data source of the study once, here in the driver, before anything
    is written: a missing or malformed data file then fails the study with one line instead
    of failing every trial. Local studies only (on a cluster the files may be on the workers
    alone; the trials check them there). Costs one read of the data (RELIABILITY.md)."""
    if address:
        return
    from imbtrain.data import clear_cache, load_raw
    from imbtrain.methods.m2m import check_teacher_file
    from imbtrain.pretrained import check_weights_file

    seen = set()
    for point in trial_points(spec):  # every data source a trial may read (a data_dir grid)
        cfg = spec.trial_config(point)
        if cfg.pretrained != "none":  # weights files too: their format, without loading
            check_weights_file(cfg.pretrained)
        if cfg.method == "m2m" and cfg.m2m_teacher:
            check_teacher_file(cfg.m2m_teacher, cfg.model)
        source = (cfg.dataset, cfg.data_dir, cfg.label_column, cfg.tabular_preset,
                  cfg.tabular_drop, cfg.image_size)
        if cfg.data_dir and source not in seen:
            seen.add(source)
            load_raw(cfg)
    clear_cache()  # the trials load their own copy; the driver keeps none


def _mlflow_logger(mlflow_uri: str | None, name: str, spec: StudySpec):
    """The MLflow callback of the study (`imbtrain.tune.mlflow_log`); None when MLflow
    logging is off (mlflow_uri None or empty). Its tags go on the parent and every trial
    run: the space, smoke, the metric, and imbtrain's version and git commit."""
    if not mlflow_uri:
        return None
    from imbtrain.tune.mlflow_curate import space_params
    from imbtrain.tune.mlflow_log import StudyMLflowLogger, check_writable

    tags = {"imbtrain.space": Path(spec.path).name, "imbtrain.smoke": spec.is_smoke,
            "imbtrain.metric": spec.metric, **provenance_tags()}
    logger = StudyMLflowLogger(mlflow_uri, name, tags=tags, resume=False,
                               knobs=tuple(spec.knobs), params=space_params(spec))
    check_writable(logger.tracking_uri, logger.experiment_name)
    return logger


def _console_and_quiet(run):
    """`run_study` inside the console's heartbeat (`imbtrain.study.console`), with Ray's,
    Tune's and MLflow's own output off unless `verbose` (`imbtrain.tune.quiet`)."""
    import functools
    import inspect

    signature = inspect.signature(run)

    @functools.wraps(run)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with CONSOLE.active(), quiet.quiet(bound.arguments["verbose"],
                                           new_study=not bound.arguments["resume"]):
            return run(*args, **kwargs)

    return wrapper


@_console_and_quiet
def run_study(spec: StudySpec | str | Path, name: str | None = None,
              storage: str = DEFAULT_STORAGE,
              address: str | None = None, mlflow_uri: str | None = DEFAULT_MLFLOW_URI,
              resume: bool = False, max_concurrent: int | None = None,
              gpus_per_trial: float | None = None, smoke: bool = False,
              verbose: int = 0, max_failures: int | None = None,
              register: str | None = None, checkpoint_every: int | None = None,
              dashboard: bool = False) -> StudyResult:
    """Run (or with `resume`, finish) the study `spec` and write its tables.

    `spec` is a `StudySpec`, a search-space file or the name of one of imbtrain's spaces
    (`load_space`). `name` defaults to the space's file stem (`_smoke` added with `smoke`);
    `mlflow_uri` None turns MLflow logging off; `verbose` is Ray's own output (0: only this
    module's lines: one a trial start, an epoch and a finished trial, and the console's
    heartbeat; 1: Ray's, Tune's and MLflow's own lines and tables too, `imbtrain.tune.quiet`);
    `max_failures` how often a failed trial is restarted from its last checkpoint (default
    MAX_FAILURES; a resumed study keeps its own); `register` the MLflow registered model that
    gets the best model of each train ratio; `checkpoint_every` a trial's epochs between
    checkpoints (default: the space's `checkpoint_every`; a resumed study keeps its own);
    `dashboard` starts Ray's dashboard with an in-process Ray. Returns the tables and the
    best config.
    """
    if not isinstance(spec, StudySpec):
        spec = load_space(spec)
    if smoke:
        spec = spec.with_smoke()
    if max_concurrent is not None:
        spec = replace(spec, max_concurrent=max_concurrent)
    if gpus_per_trial is not None:
        spec = replace(spec, gpus_per_trial=float(gpus_per_trial))
    spec = absolute_paths(spec)  # trials run in folders of their own, on any node
    if checkpoint_every is not None:
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
                or checkpoint_every < 1:
            raise UserError(f"--checkpoint-every must be a whole number of epochs >= 1, got "
                            f"{checkpoint_every!r}")
        spec = replace(spec, checkpoint_every=checkpoint_every)
    name = name or (f"{spec.name}_smoke" if spec.is_smoke else spec.name)
    CONSOLE.step("checking the study's inputs")
    if mlflow_uri:  # absolute, so a resume from another folder finds the same store
        from imbtrain.tune.mlflow_log import normalize_tracking_uri

        mlflow_uri = normalize_tracking_uri(mlflow_uri)
    if max_failures is not None and max_failures < 0:
        raise UserError(f"--max-failures must be 0 or more, got {max_failures}")
    if register and not mlflow_uri:
        raise UserError("--register needs MLflow: give --mlflow-uri (not none)")
    from imbtrain.tune.trainable import FAULT_ENV, parse_fault

    parse_fault(os.environ.get(FAULT_ENV))  # a malformed test-only fault fails here, not later
    study = study_dir(storage, name)
    if not resume:
        CONSOLE.say(f"study {name}: {spec.budget_text()}, {spec.searcher} search, "
                    f"{spec.scheduler} scheduler, tuning {spec.metric} ({spec.mode}); "
                    f"writing to {study.uri}")
        CONSOLE.step("checking the data")
        check_data(spec, address)
    CONSOLE.step(f"opening the MLflow store {mlflow_uri}")
    logger = None if resume else _mlflow_logger(mlflow_uri, name, spec)  # fails before Ray
    check_address(address)
    with StudyLock(study) as lock:  # one driver per study folder (a second one stops here)
        _check_study_dir(study, resume)
        meta = _read_study_file(study) if resume else None
        if resume:
            _check_recorded_mlflow(meta, name)
        try:
            tuner, meta = _prepare(spec, study, meta, logger, address, mlflow_uri,
                                   max_concurrent, gpus_per_trial, max_failures, verbose,
                                   checkpoint_every, dashboard)
        except BaseException:
            if not resume:  # a study that never started leaves no folder behind
                study.remove()
            raise
        _STUDY_UIDS[name] = meta.get(STUDY_UID_KEY)
        from imbtrain.tune.interrupt import StudySignals

        with StudySignals(on_ray_lost=lambda signum: _ray_lost(study, meta, signum,
                                                               lock)) as signals:
            tuner.fit()
        if signals.signum is not None:
            _interrupted(study, meta, signals.signum)
        CONSOLE.step("writing the result tables")
        return finish_study(study, meta.get("mlflow_uri"), meta["metric"], meta["mode"],
                            meta.get(STUDY_UID_KEY), register=register)


def _prepare(spec: StudySpec, study: StudyDir, meta: dict | None, logger,
             address: str | None, mlflow_uri: str | None, max_concurrent: int | None,
             gpus_per_trial: float | None, max_failures: int | None, verbose: int,
             checkpoint_every: int | None = None, dashboard: bool = False):
    """Ray up, every node checked, then the tuner: a new one (study.yaml written first) or
    the study's own restored (`meta`: its study.yaml)."""
    started = time.monotonic()
    CONSOLE.step(f"starting Ray ({_where(address)})")
    init_ray(address, dashboard=dashboard, verbose=verbose)
    check_resources(spec, address)
    CONSOLE.say(_ray_up(spec, address, time.monotonic() - started))
    from imbtrain.tune.preflight import preflight

    preflight(study, study_files(spec), address)
    # Checkpoints of short epochs force frequent experiment snapshots, which is what a
    # --resume after a crash needs; Ray warns about it each time.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    CONSOLE.step("waiting for the first trial to start (Ray starts its worker processes, "
                 "which load PyTorch and the data)")
    if meta is not None:
        CONSOLE.say(f"resuming study {study.name} in {study.uri}")
        _note_kept_settings(study, mlflow_uri, max_concurrent, gpus_per_trial, max_failures,
                            checkpoint_every)
        study.pull(OPTUNA_FILE)  # the searcher's study, at the path its state names
        kept = meta.get("checkpoint_every", spec.checkpoint_every)  # what it started with
        return restore_tuner(replace(spec, metric=meta["metric"], checkpoint_every=kept),
                             study), meta
    study.clear_working_copy()  # a cache of an earlier study of this URI is not this one
    meta = _write_study_file(spec, study, mlflow_uri, logger.uid if logger else None)
    callbacks = [_progress_callback(spec.num_trials(), spec.metric, spec.mode, spec.epochs),
                 *quiet.loggers()]
    tuner = make_tuner(spec, study, callbacks + ([logger] if logger else []), verbose,
                       MAX_FAILURES if max_failures is None else max_failures)
    return tuner, meta


def _where(address: str | None) -> str:
    if address:
        return f"joining the cluster at {address}"
    return f"in this process, {os.cpu_count()} CPUs, 127.0.0.1 only"


def _ray_up(spec: StudySpec, address: str | None, seconds: float) -> str:
    """The line once Ray is up: its resources, and how many trials run at once."""
    import ray

    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0.0), have.get("GPU", 0.0)
    at_once = int(cpus // spec.cpus_per_trial) if spec.cpus_per_trial else 0
    if spec.gpus_per_trial:
        at_once = min(at_once, int(gpus // spec.gpus_per_trial))
    if spec.max_concurrent:
        at_once = min(at_once, spec.max_concurrent)
    if spec.num_trials() > 0:
        at_once = min(at_once, spec.num_trials())
    at_once = max(at_once, 1)
    what = "cluster" if address else "Ray"
    gpu = f", {spec.gpus_per_trial:g} GPU" if spec.gpus_per_trial else ""
    return (f"{what} up in {seconds:.0f} s: {cpus:g} CPUs, {gpus:g} GPUs; {spec.budget_text()}"
            f", up to {at_once} at once ({spec.cpus_per_trial:g} CPU{gpu} each); "
            "waiting for the first trial to start")


def _ray_lost(study: StudyDir, meta: dict, signum: int, lock: StudyLock) -> None:
    """The signal also ended Ray's processes (SIGTERM to the process group of a local study):
    Tune cannot stop on its own, so the interruption is recorded from what Tune last saved,
    and the driver ends here, with the line and status of an interrupted study."""
    from imbtrain.study.script import interrupted_line

    status = 128 + signum
    if "imbtrain.tune.mlflow_log" in sys.modules:  # the epochs queued for MLflow, first
        sys.modules["imbtrain.tune.mlflow_log"].flush_all()
    try:
        _interrupted(study, meta, signum)
    except StudyInterrupted as e:
        print(interrupted_line(e), file=sys.stderr, flush=True)
        status = e.status
    except Exception as e:  # nothing saved yet: the study never got going
        print(f"interrupted before Tune saved the study ({_first_line(e)}); run it again",
              file=sys.stderr, flush=True)
    finally:
        lock.release()
    os._exit(status)


def _check_recorded_mlflow(meta: dict, name: str) -> None:
    """A resumed study logs to the store it started with: reachable and writable now,
    before Ray starts."""
    uri = meta.get("mlflow_uri")
    if uri:
        from imbtrain.tune.mlflow_log import check_tracking_uri, check_writable

        check_tracking_uri(uri)
        check_writable(uri, name)


def _interrupted(study: StudyDir, meta: dict, signum: int) -> None:
    """After SIGINT/SIGTERM: the study as Tune saved it (finished trials kept, the others
    waiting), MLflow told the same, no tables and no best.yaml; `StudyInterrupted`."""
    _push_searcher(study)
    done, failed = finished_trials(study)
    uri = meta.get("mlflow_uri")
    if uri and meta.get(STUDY_UID_KEY):
        from imbtrain.tune.mlflow_log import mark_interrupted

        try:
            mark_interrupted(uri, study.name, meta[STUDY_UID_KEY], done, failed)
        except Exception as e:  # MLflow is a copy; the study folder is the record
            print(f"warning: MLflow: could not mark the interrupted runs ({_first_line(e)})",
                  file=sys.stderr, flush=True)
    total = int(meta.get("num_trials") or 0)
    total = max(total, len(done)) if total > 0 else 0  # 0: until the time budget
    raise StudyInterrupted(signum, len(done), total, study.uri)


def _push_searcher(study: StudyDir) -> None:
    """optuna.db (an Optuna searcher's study, kept in the working copy) to the storage."""
    if (study.local / OPTUNA_FILE).is_file():
        study.push(OPTUNA_FILE)


def _note_kept_settings(study: StudyDir, mlflow_uri: str | None, max_concurrent: int | None,
                        gpus_per_trial: float | None, max_failures: int | None = None,
                        checkpoint_every: int | None = None) -> None:
    """A resumed study keeps the settings it started with (Tune restores them from
    tuner.pkl); say so when the command line asks for others."""
    ignored = [f for f, v in (("--max-concurrent", max_concurrent),
                              ("--gpus-per-trial", gpus_per_trial),
                              ("--max-failures", max_failures),
                              ("--checkpoint-every", checkpoint_every)) if v is not None]
    recorded = _read_study_file(study).get("mlflow_uri")
    if mlflow_uri and recorded and _same_uri(mlflow_uri, recorded) is False:
        ignored.append(f"--mlflow-uri (it keeps logging to {recorded})")
    if ignored:
        print(f"note: a resumed study keeps its settings; ignored: {', '.join(ignored)}",
              flush=True)


def _same_uri(a: str, b: str) -> bool:
    from imbtrain.tune.mlflow_log import normalize_tracking_uri

    try:
        return normalize_tracking_uri(a) == normalize_tracking_uri(b)
    except UserError:
        return False


def finish_study(exp_dir: Path | StudyDir, mlflow_uri: str | None, metric: str, mode: str,
                 uid: str | None = None, register: str | None = None) -> StudyResult:
    """Write results.parquet, history.parquet, the best configuration at each train ratio
    (best.yaml, and best_r<ratio>.yaml with several: `imbtrain.study.export`) and the best
    model of each train ratio into the study's storage; log them, the best metric of each
    ratio and the models to the parent run (the one tagged with the study's `uid`),
    registering the models as `register` when given."""
    study = as_study_dir(exp_dir)
    tables = collect(study, metric, mode)
    write_tables(tables, study)
    _push_searcher(study)
    best, best_files = None, []
    ok = tables.results[tables.results["status"] == "TERMINATED"] if len(tables.results) else []
    if len(ok) and metric in tables.results and tables.results[metric].notna().any():
        chosen, best_files = write_best(tables.results, metric, mode, study.local / BEST_FILE,
                                        title=f"study {study.name}")
        best = next(iter(chosen.values()))[0].config if len(chosen) == 1 else None
        study.push(*best_files)
    study.pull(STUDY_FILE)
    files = [study.local / f for f in (RESULTS_FILE, HISTORY_FILE, STUDY_FILE)] + best_files
    parent = log_artifacts(mlflow_uri, study.name, [f for f in files if f.is_file()], uid)
    models = save_best_models(study, tables.results, metric, mode)
    if parent:
        log_best_models(mlflow_uri, study.name, uid, parent, models, metric, register)
    status = tables.results["status"] if len(tables.results) else pd.Series(dtype=str)
    failed, diverged = int((status == "ERROR").sum()), int((status == "DIVERGED").sum())
    CONSOLE.say(f"wrote {study.file(RESULTS_FILE)} ({len(tables.results)} trials, {failed} "
                "failed" + (f", {diverged} diverged" if diverged else "") + "), "
                f"{HISTORY_FILE} ({len(tables.history)} trial-epochs)"
                + "".join(f", {f.name}" for f in best_files))
    return StudyResult(study.local, tables.results, tables.history, best, metric, mode,
                       mlflow_uri, parent, uid, storage=study)


MODELS_DIR = "models"  # <study>/models/r<ratio>/: the best trial's model folder of each ratio


def _ratio(r: float) -> str:
    return f"r{r:g}"


def save_best_models(exp_dir: Path | StudyDir, results: pd.DataFrame, metric: str,
                     mode: str) -> list[tuple[dict, Path]]:
    """The model folder of each train ratio's best trial (`best_trial_per_ratio`) copied to
    `<study>/models/r<ratio>/` (in the study's storage too): [(its row, its local folder)].
    A model that cannot be saved costs a warning line, never the study."""
    from imbtrain.study.checkpoints import save_trial_model

    if not len(results) or metric not in results or "config/train_ratio" not in results:
        return []
    study = as_study_dir(exp_dir)
    saved = []
    for row in best_trial_per_ratio(results, metric, mode).to_dict("records"):
        out = study.local / MODELS_DIR / _ratio(row["train_ratio"])
        try:
            result = StudyResult(study.local, None, None, None, "", "", None, None,
                                 storage=study)
            saved.append((row, save_trial_model(result, row["trial_id"], out)))
            study.push(out)
        except Exception as e:  # a checkpoint gone or unreadable: the tables are the record
            print(f"warning: the model of {row['trial_name']} (best at train_ratio="
                  f"{row['train_ratio']:g}) was not saved: {_first_line(e)}",
                  file=sys.stderr, flush=True)
    if saved:
        names = ", ".join(f"{MODELS_DIR}/{p.name}" for _, p in saved)
        print(f"best model of each train ratio in {study.uri}: {names} "
              f"(imbtrain predict {study.local / MODELS_DIR / saved[0][1].name} INPUT)",
              flush=True)
    return saved


def log_best_models(mlflow_uri: str, study_name: str, uid: str, parent: str,
                    models: list[tuple[dict, Path]], metric: str,
                    register: str | None = None) -> None:
    """The best `metric` of each train ratio (`best_<metric>_r<ratio>`, the mean over
    seeds) and the models of `save_best_models` on the parent run: one MLflow model a ratio,
    registered as versions of `register` (tag `imbtrain.train_ratio`, alias `r0_02`). MLflow
    failing here costs one warning line, never the study."""
    from imbtrain.tune.mlflow_log import log_study_summary
    from imbtrain.tune.mlflow_models import log_model_folder

    try:
        log_study_summary(mlflow_uri, study_name, {
            f"best_{metric}_{_ratio(row['train_ratio'])}": row["mean"] for row, _ in models},
            uid=uid)
        for row, folder in models:
            alias = _ratio(row["train_ratio"]).replace(".", "_")  # MLflow names: no dots
            tags = {"imbtrain.study": study_name,
                    "imbtrain.train_ratio": f"{row['train_ratio']:g}",
                    "imbtrain.trial_id": row["trial_id"],
                    "imbtrain.trial_name": row["trial_name"]}
            info = log_model_folder(mlflow_uri, parent, folder, name=f"model_{alias}",
                                    register=register, tags=tags, alias=alias)
            if register:
                print(f"MLflow: registered {MODELS_DIR}/{folder.name} as models:/{register}/"
                      f"{info.registered_model_version} (models:/{register}@{alias})",
                      flush=True)
    except Exception as e:  # MlflowException, connection errors: the study's files are safe
        print(f"warning: MLflow: the best models were not logged to {mlflow_uri} "
              f"({_first_line(e)}); they are in the study folder", file=sys.stderr, flush=True)


# The MLflow uid of each study this process ran, by name: for callers of `log_artifacts`
# that name the study only (their files then still go to that study's own parent run).
_STUDY_UIDS: dict[str, str | None] = {}


def log_artifacts(mlflow_uri: str | None, study_name: str, paths: list,
                  uid: str | None = None) -> str | None:
    """Attach files to the study's MLflow parent run, found by the study's `uid` (default:
    the one of the study of that name this process ran), never by its name: two studies of
    one name on one server each keep their own. Its id, or None without MLflow.

    MLflow failing here (a server gone since the study started) costs the MLflow copy only:
    one warning line, and the files stay in the study folder (RELIABILITY.md)."""
    if not mlflow_uri:
        return None
    from imbtrain.tune.mlflow_log import log_study_artifacts

    uid = uid or _STUDY_UIDS.get(study_name)
    if not uid:
        print(f"warning: MLflow: {len(paths)} file(s) not logged: study {study_name} has no "
              f"{STUDY_UID_KEY} in its {STUDY_FILE}; they are in the study folder",
              file=sys.stderr, flush=True)
        return None
    try:
        return log_study_artifacts(mlflow_uri, study_name, paths, uid=uid)
    except UserError:
        raise
    except Exception as e:  # MlflowException, connection errors: the study's files are safe
        print(f"warning: MLflow: could not log {len(paths)} file(s) to {mlflow_uri} "
              f"({_first_line(e)}); they are in the study folder", file=sys.stderr,
              flush=True)
        return None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
