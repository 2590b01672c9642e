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
from dataclasses import replace
from pathlib import Path

import pandas as pd
import yaml

from imbtrain.config import TrainConfig
from imbtrain.errors import UserError
from imbtrain.study.export import best_configs, best_trial_per_ratio
from imbtrain.study.options import DEFAULT_MLFLOW_URI, DEFAULT_STORAGE, MAX_FAILURES
from imbtrain.study.results import (
    BEST_FILE,
    HISTORY_FILE,
    RESULTS_FILE,
    STUDY_FILE,
    StudyResult,
    write_tables,
)
from imbtrain.study.space import StudySpec, load_space, trial_label
from imbtrain.tune.collect import collect
from imbtrain.tune.translate import param_space
from imbtrain.version import provenance, provenance_tags

__all__ = ["DEFAULT_MLFLOW_URI", "DEFAULT_STORAGE", "MAX_FAILURES", "StudyResult",
           "log_artifacts", "run_study"]

STUDY_UID_KEY = "mlflow_study_uid"  # in study.yaml: the tag that finds the MLflow parent run
OPTUNA_FILE = "optuna.db"
KEEP_CHECKPOINTS = 2  # the latest two: one may be half-written when a driver dies


# ---------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------

def init_ray(address: str | None) -> None:
    """Start Ray in-process with this machine's CPUs, or connect to `address`."""
    import ray

    if ray.is_initialized():
        return
    from imbtrain.tune.loopback import bind_to_loopback, is_loopback_address

    if not address or is_loopback_address(address):
        bind_to_loopback()  # nothing off this machine needs to reach it (loopback.py)
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # "local", not None: None would join any cluster `ray start` left on this machine.
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 log_to_driver=True)


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


def _progress_callback(total: int, metric: str, mode: str, epochs: int):
    """A Tune callback that prints one line an epoch and one a finished trial (the
    driver's view of the study; Ray's own tables list every metric and are set quiet)."""
    from ray import tune

    class StudyProgress(tune.Callback):
        def _done(self, trials, trial=None) -> str:
            done = sum(t.status in ("TERMINATED", "ERROR") for t in trials if t is not trial)
            done += trial is not None
            return f"[{done:>{len(str(total))}}/{max(total, len(trials))} done]"

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            if result.get("diverged"):  # said by on_trial_complete
                return
            value = result.get(metric, float("nan"))
            test = result.get("test_acc", float("nan"))
            print(f"{self._done(trials)} {trial}  epoch {int(result.get('epoch', 0))}/{epochs}"
                  f"  {metric} {value:.4f}  test_acc {test:.4f}", flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            last = trial.last_result or {}
            if last.get("diverged"):
                print(f"{self._done(trials, trial)} DIVERGED {trial} at epoch "
                      f"{int(last['epoch'])} (train loss {last.get('train_loss')}); "
                      "recorded, the study goes on", flush=True)
                return
            value = last.get(metric, float("nan"))
            print(f"{self._done(trials, trial)} finished {trial}: {metric} {value:.4f}"
                  f"{_best_so_far(trials, trial)}", flush=True)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            print(f"{self._done(trials, trial)} FAILED {trial}: see {trial.path}/error.txt",
                  flush=True)

        def on_trial_recover(self, iteration, trials, trial, **info) -> None:
            # A trial raised or lost its worker (a dead node); Tune restarts it.
            failures = trial.num_failures
            print(f"{self._done(trials)} RETRY {trial} (failure {failures}): it restarts "
                  "from its last checkpoint", flush=True)

    def _best_so_far(trials, current) -> str:
        scored = [(t.last_result[metric], str(t)) for t in trials
                  if (t is current or t.status == "TERMINATED")
                  and isinstance((t.last_result or {}).get(metric), float)
                  and not math.isnan(t.last_result[metric])]
        if not scored:
            return ""
        value, name = (max if mode == "max" else min)(scored)
        return f"; best so far {name} {value:.4f}"

    return StudyProgress()


def make_searcher(spec: StudySpec, exp_dir: Path):
    """Grid: Tune's BasicVariantGenerator, seeded, so `choice` and `uniform` knobs draw the
    same values in every run of the study (capped at max_concurrent trials at once, as
    Tune's default one is); optuna: a seeded OptunaSearch whose study lives in
    `<exp_dir>/optuna.db`, so `optuna.importance` can read it afterwards."""
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


def make_tuner(spec: StudySpec, exp_dir: Path, callbacks: list, verbose: int,
               max_failures: int = MAX_FAILURES):
    """A `tune.Tuner` of the study; a trial that fails is restarted from its last checkpoint
    up to `max_failures` times (then recorded as ERROR)."""
    from ray import tune

    from imbtrain.tune.trainable import make_trainable

    searcher = make_searcher(spec, exp_dir)
    grid = spec.searcher != "optuna"  # the grid's generator caps concurrency itself
    tune_config = tune.TuneConfig(
        metric=spec.metric, mode=spec.mode, search_alg=searcher,
        scheduler=make_scheduler(spec), num_samples=spec.num_samples,
        max_concurrent_trials=None if grid else spec.max_concurrent, reuse_actors=True,
        trial_name_creator=TrialNamer(with_id=False, variant_table=spec.variant_table()),
        trial_dirname_creator=TrialNamer(with_id=True, variant_table=spec.variant_table()))
    run_config = tune.RunConfig(
        name=exp_dir.name, storage_path=str(exp_dir.parent),
        failure_config=tune.FailureConfig(max_failures=max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS),
        callbacks=callbacks, verbose=verbose)
    return tune.Tuner(make_trainable(spec.cpus_per_trial, spec.gpus_per_trial,
                                     spec.trial_metrics, spec.metric),
                      param_space=param_space(spec), tune_config=tune_config,
                      run_config=run_config)


def restore_tuner(spec: StudySpec, exp_dir: Path):
    """`Tuner.restore`: finished trials stay, unfinished and errored ones resume from their
    last checkpoints. The callbacks come back from tuner.pkl (the MLflow logger finds its
    parent run again by its tags). tuner.pkl is a pickle, so this runs only on the study
    folder the user named (--storage/--name), never on a path taken from elsewhere."""
    from ray import tune

    from imbtrain.tune.trainable import make_trainable

    return tune.Tuner.restore(str(exp_dir),
                              make_trainable(spec.cpus_per_trial, spec.gpus_per_trial,
                                             spec.trial_metrics, spec.metric),
                              resume_unfinished=True, resume_errored=True)


# ---------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------

def study_dir(storage: str, name: str) -> Path:
    """`<storage>/<name>`, absolute (Ray wants an absolute storage path)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UserError(f"--name {name!r}: a study name is one folder name under --storage "
                        "(no '/', not '.' or '..')")
    if "://" in str(storage):
        raise UserError(f"--storage {storage}: this version writes studies to a local or "
                        "shared (mounted) folder; mount the bucket and pass its path")
    return Path(storage).expanduser().resolve() / name


def _check_study_dir(exp_dir: Path, resume: bool) -> None:
    exists = (exp_dir / "tuner.pkl").is_file()
    if resume and not exists:
        raise UserError(f"--resume: no study to resume in {exp_dir} (no tuner.pkl); "
                        "run it without --resume first")
    if not resume and exp_dir.exists() and any(exp_dir.iterdir()):
        raise UserError(f"{exp_dir} already holds a study; add --resume to continue it, or "
                        "choose another --name or --storage")


def _write_study_file(spec: StudySpec, exp_dir: Path, mlflow_uri: str | None,
                      uid: str | None = None) -> dict:
    """study.yaml: the spec and options the study started with (read on --resume), the
    resolved config of its base, what ran it (imbtrain's version, the git commit) and the
    uid that finds its MLflow parent run (`uid`, None without MLflow)."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    meta = {"name": exp_dir.name, "space": str(spec.path), "smoke": spec.is_smoke,
            "metric": spec.metric, "mode": spec.mode, "searcher": spec.searcher,
            "scheduler": spec.scheduler, "num_trials": spec.num_trials(),
            "knobs": {k.key: {k.dist: list(k.values)} for k in spec.knobs.values()},
            "train_ratios": list(spec.train_ratios), "seeds": list(spec.seeds),
            "base": dict(spec.base), "mlflow_uri": mlflow_uri, STUDY_UID_KEY: uid}
    if spec.variants:
        meta["variants"] = {name: dict(over) for name, over in spec.variants.items()}
    if spec.trial_metrics:
        meta["trial_metrics"] = list(spec.trial_metrics)
    meta["config"] = TrainConfig(**spec.base).to_dict()  # every trial's, before its knobs
    meta.update(provenance())
    (exp_dir / STUDY_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    return meta


def _read_study_file(exp_dir: Path) -> dict:
    path = exp_dir / STUDY_FILE
    meta = yaml.safe_load(path.read_text()) if path.is_file() else None
    if not isinstance(meta, dict) or "metric" not in meta:
        raise UserError(f"{path} is missing or damaged; it records the study's metric and "
                        "MLflow store, which --resume needs")
    return meta


def check_data(spec: StudySpec, address: str | None) -> None:
    """Load each on-disk data source of the study once, here in the driver, before anything
    is written: a missing or malformed data file then fails the study with one line instead
    of failing every trial. Local studies only (on a cluster the files may be on the workers
    alone; the trials check them there). Costs one read of the data (RELIABILITY.md)."""
    if address:
        return
    from imbtrain.data import clear_cache, load_raw

    first = {k.key: k.values[0] for k in spec.knobs.values()}
    seen = set()
    for over in (spec.variants or {None: {}}).values():
        cfg = spec.trial_config({**first, "train_ratio": spec.train_ratios[0],
                                 "seed": spec.seeds[0], **over})
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
    from imbtrain.tune.mlflow_log import StudyMLflowLogger

    tags = {"imbtrain.space": Path(spec.path).name, "imbtrain.smoke": spec.is_smoke,
            "imbtrain.metric": spec.metric, **provenance_tags()}
    return StudyMLflowLogger(mlflow_uri, name, tags=tags, resume=False,
                             knobs=tuple(spec.knobs), params=space_params(spec))


def run_study(spec: StudySpec | str | Path, name: str | None = None,
              storage: str = DEFAULT_STORAGE,
              address: str | None = None, mlflow_uri: str | None = DEFAULT_MLFLOW_URI,
              resume: bool = False, max_concurrent: int | None = None,
              gpus_per_trial: float | None = None, smoke: bool = False,
              verbose: int = 0, max_failures: int | None = None,
              register: str | None = None) -> StudyResult:
    """Run (or with `resume`, finish) the study `spec` and write its tables.

    `spec` is a `StudySpec`, a search-space file or the name of one of imbtrain's spaces
    (`load_space`). `name` defaults to the space's file stem (`_smoke` added with `smoke`);
    `mlflow_uri` None turns MLflow logging off; `verbose` is Ray's own output (0: only this
    module's one line an epoch and a trial; 1: Ray's status tables too); `max_failures` how
    often a failed trial is restarted from its last checkpoint (default MAX_FAILURES; a
    resumed study keeps its own); `register` the MLflow registered model that gets the best
    model of each train ratio. Returns the tables and the best config.
    """
    if not isinstance(spec, StudySpec):
        spec = load_space(spec)
    if smoke:
        spec = spec.with_smoke()
    if max_concurrent is not None:
        spec = replace(spec, max_concurrent=max_concurrent)
    if gpus_per_trial is not None:
        spec = replace(spec, gpus_per_trial=float(gpus_per_trial))
    name = name or (f"{spec.name}_smoke" if spec.is_smoke else spec.name)
    if mlflow_uri:  # absolute, so a resume from another folder finds the same store
        from imbtrain.tune.mlflow_log import normalize_tracking_uri

        mlflow_uri = normalize_tracking_uri(mlflow_uri)
    if max_failures is not None and max_failures < 0:
        raise UserError(f"--max-failures must be 0 or more, got {max_failures}")
    if register and not mlflow_uri:
        raise UserError("--register needs MLflow: give --mlflow-uri (not none)")
    from imbtrain.tune.trainable import FAULT_ENV, parse_fault

    parse_fault(os.environ.get(FAULT_ENV))  # a malformed test-only fault fails here, not later
    exp_dir = study_dir(storage, name)
    _check_study_dir(exp_dir, resume)
    if not resume:
        check_data(spec, address)
    logger = None if resume else _mlflow_logger(mlflow_uri, name, spec)  # fails before Ray
    init_ray(address)
    check_resources(spec, address)
    if resume:
        print(f"resuming study {name} in {exp_dir}", flush=True)
        _note_kept_settings(exp_dir, mlflow_uri, max_concurrent, gpus_per_trial, max_failures)
        meta = _read_study_file(exp_dir)  # what the study started with, not today's file
        tuner = restore_tuner(replace(spec, metric=meta["metric"]), exp_dir)
    else:
        meta = _write_study_file(spec, exp_dir, mlflow_uri, logger.uid if logger else None)
        print(f"study {name}: {spec.num_trials()} trials, {spec.searcher} search, "
              f"{spec.scheduler} scheduler, tuning {spec.metric} ({spec.mode}); "
              f"writing to {exp_dir}", flush=True)
        callbacks = [_progress_callback(spec.num_trials(), spec.metric, spec.mode,
                                        spec.epochs)]
        tuner = make_tuner(spec, exp_dir, callbacks + ([logger] if logger else []), verbose,
                           MAX_FAILURES if max_failures is None else max_failures)
    # Checkpoints of short epochs force frequent experiment snapshots, which is what a
    # --resume after a crash needs; Ray warns about it each time.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    _STUDY_UIDS[name] = meta.get(STUDY_UID_KEY)
    tuner.fit()
    return finish_study(exp_dir, meta.get("mlflow_uri"), meta["metric"], meta["mode"],
                        meta.get(STUDY_UID_KEY), register=register)


def _note_kept_settings(exp_dir: Path, mlflow_uri: str | None, max_concurrent: int | None,
                        gpus_per_trial: float | None, max_failures: int | None = None) -> None:
    """A resumed study keeps the settings it started with (Tune restores them from
    tuner.pkl); say so when the command line asks for others."""
    ignored = [f for f, v in (("--max-concurrent", max_concurrent),
                              ("--gpus-per-trial", gpus_per_trial),
                              ("--max-failures", max_failures)) if v is not None]
    recorded = _read_study_file(exp_dir).get("mlflow_uri")
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


def finish_study(exp_dir: Path, mlflow_uri: str | None, metric: str, mode: str,
                 uid: str | None = None, register: str | None = None) -> StudyResult:
    """Write results.parquet, history.parquet, best.yaml and the best model of each train
    ratio; log them, the best metric of each ratio and the models to the parent run (the one
    tagged with the study's `uid`), registering the models as `register` when given."""
    tables = collect(str(exp_dir), metric, mode)
    write_tables(tables, str(exp_dir))
    best = None
    ok = tables.results[tables.results["status"] == "TERMINATED"] if len(tables.results) else []
    if len(ok) and metric in tables.results:
        best = best_configs(tables.results, metric, mode)[0]
        best.save(exp_dir / BEST_FILE)
    files = [exp_dir / f for f in (RESULTS_FILE, HISTORY_FILE, BEST_FILE, STUDY_FILE)]
    parent = log_artifacts(mlflow_uri, exp_dir.name, [f for f in files if f.is_file()], uid)
    models = save_best_models(exp_dir, tables.results, metric, mode)
    if parent:
        log_best_models(mlflow_uri, exp_dir.name, uid, parent, models, metric, register)
    status = tables.results["status"] if len(tables.results) else pd.Series(dtype=str)
    failed, diverged = int((status == "ERROR").sum()), int((status == "DIVERGED").sum())
    print(f"wrote {exp_dir}/{RESULTS_FILE} ({len(tables.results)} trials, {failed} failed"
          + (f", {diverged} diverged" if diverged else "") + "), "
          f"{HISTORY_FILE} ({len(tables.history)} trial-epochs)"
          + (f", {BEST_FILE}" if best is not None else ""), flush=True)
    return StudyResult(exp_dir, tables.results, tables.history, best, metric, mode,
                       mlflow_uri, parent, uid)


MODELS_DIR = "models"  # <study>/models/r<ratio>/: the best trial's model folder of each ratio


def _ratio(r: float) -> str:
    return f"r{r:g}"


def save_best_models(exp_dir: Path, results: pd.DataFrame, metric: str,
                     mode: str) -> list[tuple[dict, Path]]:
    """The model folder of each train ratio's best trial (`best_trial_per_ratio`) copied to
    `<study>/models/r<ratio>/`: [(its row, its folder)]. A model that cannot be saved costs
    a warning line, never the study."""
    from imbtrain.study.checkpoints import save_trial_model

    if not len(results) or metric not in results or "config/train_ratio" not in results:
        return []
    saved = []
    for row in best_trial_per_ratio(results, metric, mode).to_dict("records"):
        out = exp_dir / MODELS_DIR / _ratio(row["train_ratio"])
        try:
            saved.append((row, save_trial_model(exp_dir, row["trial_id"], out)))
        except Exception as e:  # a checkpoint gone or unreadable: the tables are the record
            print(f"warning: the model of {row['trial_name']} (best at train_ratio="
                  f"{row['train_ratio']:g}) was not saved: {_first_line(e)}",
                  file=sys.stderr, flush=True)
    if saved:
        names = ", ".join(f"{MODELS_DIR}/{p.name}" for _, p in saved)
        print(f"best model of each train ratio in {exp_dir}: {names} "
              f"(imbtrain predict {exp_dir / MODELS_DIR / saved[0][1].name} INPUT)",
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
