"""`imbtrain ...`: the command line.

Each subcommand is a small `add_<name>(subparsers)` function that registers its arguments and
its handler; `main` dispatches. Bad input (a `UserError`) prints one line, `error: ...`, and
exits with status 2 before any output is written; a run that diverges (`DivergedError`, a NaN
or infinite train loss) prints one line and exits with status 1 (RELIABILITY.md).

This is the top of the layers: the only module that hands the Ray side (`imbtrain.tune`) to
a study (`imbtrain.study`). Heavy imports (torch, Ray, MLflow) wait for the handler, so
`imbtrain --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from imbtrain.errors import DivergedError, UserError
from imbtrain.files import check_writable

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(fn: Callable[[argparse._SubParsersAction], None]):
    """Register a function that adds one subcommand to the parser."""
    COMMANDS.append(fn)
    return fn


def _config_from_args(args: argparse.Namespace):
    from imbtrain.config import TrainConfig, load_config, parse_overrides

    overrides = parse_overrides(args.overrides)
    if args.config:
        return load_config(args.config, overrides)
    return TrainConfig(**overrides)


FINAL_KEYS = ("test_acc", "test_bal_acc", "test_minority_acc", "test_majority_acc",
              "test_few_acc", "test_med_acc", "test_many_acc", "test_macro_f1", "val_bal_acc",
              "test_auroc", "test_auprc")


# ================================================================ train


@command
def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one model (no Ray)",
                       description="Train one model. Config keys as key=value; "
                                   "`imbtrain keys` lists them with their documentation.")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--config", help="a TrainConfig YAML file (overrides apply on top)")
    p.add_argument("--out", help="output folder (default runs/train/<trial name>)")
    p.add_argument("--mlflow-uri", metavar="URI",
                   help="log the run and its model to this MLflow store (sqlite:///mlflow.db, "
                        "http://host:port); default: no MLflow")
    p.add_argument("--experiment", default="train",
                   help="MLflow experiment of the run (default: train)")
    p.add_argument("--register", metavar="NAME",
                   help="register the model in the MLflow model registry as a new version "
                        "of NAME (needs --mlflow-uri)")
    p.set_defaults(handler=run_train)


RUN_FILE = "run.yaml"  # beside config.yaml: what ran it (imbtrain's version, the git commit)


def run_train(args: argparse.Namespace) -> int:
    import time

    import pandas as pd
    import yaml

    from imbtrain.console import EpochProgress, data_summary, model_summary
    from imbtrain.data import build_data
    from imbtrain.saved import write_model_folder
    from imbtrain.train import resolve_device, train
    from imbtrain.version import provenance

    _not_empty("--out", args.out, "a folder (default runs/train/<trial name>)")
    _not_empty("--mlflow-uri", args.mlflow_uri, "an MLflow tracking URI (sqlite:///mlflow.db, "
                                                "http://host:port)")
    cfg = _config_from_args(args)
    out = Path(args.out or Path("runs") / "train" / cfg.trial_name())
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"output folder {out} is not empty; choose another --out")
    if args.register and not args.mlflow_uri:
        raise UserError("--register needs --mlflow-uri, the MLflow store that holds the "
                        "model registry")
    uri = _mlflow_store(args.mlflow_uri) if args.mlflow_uri else None  # before any work
    check_writable(out, "--out")  # before training, which would otherwise be lost
    device = resolve_device(cfg.device)
    start = time.perf_counter()
    data = build_data(cfg)
    for line in data_summary(data, time.perf_counter() - start, device.type):
        print(line, flush=True)
    print(model_summary(cfg, data), flush=True)
    result = train(cfg, data=data, progress=EpochProgress())
    metrics = {**result.metrics, "train_counts": result.train_counts}
    with _folder_written_whole(out) as tmp:
        model_files = write_model_folder(tmp, result.model, cfg, data)  # config.yaml too
        (tmp / RUN_FILE).write_text(yaml.safe_dump(
            {**provenance(), "config": "config.yaml", "command": "imbtrain train"},
            sort_keys=False))
        (tmp / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2))
        pd.DataFrame(result.history).to_parquet(tmp / "history.parquet", index=False)
    print("final metrics:")
    for key in (k for k in FINAL_KEYS if k in result.metrics):
        print(f"  {key:<20} {result.metrics.get(key, float('nan')):.4f}")
    print(f"train counts: {result.train_counts}")
    rest = [f for f in model_files if f != "config.yaml"]
    print(f"wrote {out}/config.yaml, {RUN_FILE}, metrics.json, history.parquet, "
          f"{', '.join(rest)}; predict with: imbtrain predict {out} INPUT")
    if uri:
        return _log_train_run(uri, out, cfg, result, data.class_names, args)
    return 0


def _mlflow_store(uri: str) -> str:
    from imbtrain.tune.mlflow_models import check_store

    return check_store(uri)


def _log_train_run(uri: str, out: Path, cfg, result, class_names, args) -> int:
    """The run in MLflow; a store that fails now costs the MLflow copy only (status 1)."""
    from imbtrain.tune.mlflow_models import log_train_run

    try:
        run_id, info = log_train_run(uri, out, cfg, result, class_names,
                                     experiment=args.experiment, register=args.register)
    except UserError:
        raise
    except Exception as e:  # MLflow's or the connection's: one line, the run folder is whole
        text = str(e).strip()
        print(f"error: MLflow logging to {uri} failed "
              f"({text.splitlines()[0][:300] if text else type(e).__name__}); the run "
              f"folder {out} is complete", file=sys.stderr)
        return 1
    registered = (f"; registered as models:/{args.register}/{info.registered_model_version}"
                  if args.register else "")
    print(f"MLflow: run {run_id} in experiment {args.experiment!r} on {uri}; model "
          f"{info.model_uri}{registered}")
    return 0


# ================================================================ predict


@command
def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="apply a saved model to images or table rows",
                       description="Apply a model folder (what `imbtrain train` wrote) to an "
                                   "image, a folder of images, or a CSV or Parquet file of "
                                   "rows. Writes one row an input: id (the file path, or the "
                                   "row index from 0), one probability column a class and "
                                   "the predicted class name.")
    p.add_argument("model", metavar="MODEL", help="a model folder, e.g. runs/train/<name>")
    p.add_argument("input", metavar="INPUT",
                   help="an image, a folder of images (searched recursively), or a CSV or "
                        "Parquet file")
    p.add_argument("--out", default="predictions.parquet", metavar="FILE",
                   help="predictions file, .parquet or .csv (default predictions.parquet)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.set_defaults(handler=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from collections import Counter

    from imbtrain.saved import PREDICTED_COLUMN, load_model

    out = Path(args.out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise UserError(f"--out {out}: the predictions file ends in .parquet or .csv")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name (predictions.parquet)")
    model = load_model(args.model, device=args.device)
    table = model.predictions(args.input)  # every input read and checked before writing
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        if out.suffix.lower() == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    counts = Counter(table[PREDICTED_COLUMN])
    shown = ", ".join(f"{name} {counts[name]:,}" for name in model.class_names if counts[name])
    print(f"predicted {len(table):,} input(s) with {args.model}: {shown}")
    print(f"wrote {out}")
    return 0


@contextlib.contextmanager
def _folder_written_whole(out: Path):
    """A hidden sibling folder to write into, renamed to `out` only when every file is in:
    a run that fails while writing (a full disk) leaves no half-written `out`."""
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)  # not mkdtemp: its 0700 mode would stay on `out`
    try:
        yield tmp
        os.replace(tmp, out)  # atomic; `out` may exist only as an empty folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _not_empty(flag: str, value: str | None, what: str) -> None:
    """An option given as an empty string (`--out ""`, an unset shell variable) is refused:
    it would silently mean the default."""
    if value is not None and not value.strip():
        raise UserError(f"{flag} is empty; give {what}, or leave the option out")


def _jsonable(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


# ================================================================ pretrain


@command
def add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pre-training of a backbone",
                       description="Pre-train a backbone without labels (VICReg or SimCLR) "
                                   "and write weights that `pretrained=` accepts.")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--config", help="a TrainConfig YAML file (overrides apply on top)")
    p.add_argument("--objective", choices=("vicreg", "simclr"), default="vicreg")
    p.add_argument("--out", help="output folder (default runs/pretrain/<dataset>_<model>)")
    p.set_defaults(handler=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    from imbtrain.pretrain import pretrain

    cfg = _config_from_args(args)
    out = Path(args.out or Path("runs") / "pretrain" /
               f"{cfg.dataset}_{cfg.model.replace('/', '-')}_{args.objective}")
    path = pretrain(cfg, out, objective=args.objective)
    print(f"wrote {path}; use it with `imbtrain train pretrained={path}`")
    return 0


# ================================================================ keys


@command
def add_keys(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="list the config keys with their defaults and docs")
    p.set_defaults(handler=run_keys)


def run_keys(args: argparse.Namespace) -> int:
    import dataclasses

    from imbtrain.config import FIELDS, allowed_values, describe

    for name, f in FIELDS.items():
        allowed = allowed_values(name)  # registry names: every registered plug-in is listed
        extra = f" ({'|'.join(allowed)})" if allowed else ""
        default = f.default if f.default is not dataclasses.MISSING else ""
        print(f"{name}={default!s}{extra}\n    {describe(name)}")
    return 0


# ================================================================ study


@command
def add_study(sub: argparse._SubParsersAction) -> None:
    from imbtrain.study.options import add_script_options

    p = sub.add_parser(
        "study", help="run a Ray Tune study: a study of the paper by name, or a search space",
        allow_abbrev=False,  # a study's own options (tabular's --data) pass through whole
        add_help=False,  # `imbtrain study NAME --help` lists the study's own options too
        description="Run a Ray Tune study: the knobs of a search space crossed with train "
                    "ratios and seeds; every trial logged to MLflow; results.parquet, "
                    "history.parquet and best.yaml written under <storage>/<name>/. A study "
                    "of the paper (batch_size, sam_a, ..., or its space file, "
                    "search_spaces/batch_size.yaml) adds its analysis, figures and "
                    "findings; `imbtrain study --list` lists them. A study's own options "
                    "(the tabular study's --data, --models, ...) follow its name.")
    p.add_argument("-h", "--help", action="store_true",
                   help="show this help (with SPACE: the study's, with its own options)")
    p.add_argument("space", metavar="SPACE", nargs="?",
                   help="a study's name (batch_size) or a search-space file")
    p.add_argument("--list", action="store_true",
                   help="list the studies and search spaces that ship with imbtrain")
    add_script_options(p)
    p.set_defaults(handler=run_study_command, takes_extra=True, study_parser=p)


def run_study_command(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    from imbtrain.study import paper
    from imbtrain.study.catalog import space_names

    if args.list:
        print("studies of the paper: " + ", ".join(paper.names()))
        print("search spaces: " + ", ".join(space_names()))
        return 0
    if args.help and not args.space:
        args.study_parser.print_help()
        return 0
    if not args.space:
        raise UserError("give SPACE, a study's name (imbtrain study --list) or a "
                        "search-space file")
    study, space = paper.resolve(args.space)
    if args.help:
        study.parser(prog=f"imbtrain study {args.space}").print_help()
        return 0
    own = argparse.ArgumentParser(prog=f"imbtrain study {args.space}", add_help=False)
    study.add_arguments(own)
    if space is not None:
        args.space = str(space)
    own.parse_args(extra or [], namespace=args)
    return study.run(args, _backend())


def study_main(name: str, argv: list[str] | None = None) -> int:
    """`python studies/<name>.py [options]`: the study of the paper `name`, run as
    `imbtrain study <name> [options]` runs it."""
    from imbtrain.study import paper

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights at run time
    status = paper.get(name).main(argv, _backend())
    if argv is None:  # the script's own process (`sys.argv`): it ends here (`exit_now`)
        exit_now(status)
    return status


class _Backend:
    """The Ray side a study runs on, `imbtrain.tune`, imported when the study first calls it:
    the study says what it is starting before PyTorch and Ray load (seconds on a busy
    machine)."""

    def __getattr__(self, name: str):
        import imbtrain.tune

        return getattr(imbtrain.tune, name)


def _backend():
    """The Ray side a study runs on (`_Backend`)."""
    return _Backend()


# ================================================================ export


@command
def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a study's best configs, per train ratio, as YAML",
                       description="Write the best configuration of a finished study at each "
                                   "train ratio (a condition of the data, not a knob), ranked "
                                   "by the mean of a validation metric over seeds, as "
                                   "TrainConfig YAML for `imbtrain train --config`. A study of "
                                   "one train ratio: FILE; of several: FILE_r<ratio>.yaml for "
                                   "each, and FILE as their index. A test-split metric is "
                                   "refused: model selection never uses the test split.")
    p.add_argument("results_dir", metavar="RESULTS_DIR",
                   help="a finished study's folder, e.g. runs/batch_size, or its URI "
                        "(s3://bucket/runs/batch_size)")
    p.add_argument("--train-ratio", type=float, metavar="R",
                   help="the best at this train ratio only, written to FILE (default "
                        "<RESULTS_DIR>/best_r<R>.yaml)")
    p.add_argument("--metric", help="metric to rank by, of the validation split (default: the "
                                    "study's, val_bal_acc); a train_ metric ranks by fit")
    p.add_argument("--mode", choices=("max", "min"), help="default: the study's (max)")
    p.add_argument("--top", type=int, default=1, metavar="K",
                   help="write the K best (FILE_1.yaml ... FILE_K.yaml)")
    p.add_argument("--out", metavar="FILE", help="default <RESULTS_DIR>/best.yaml")
    p.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from imbtrain.study.export import check_selection_metric, export, is_index, study_metric
    from imbtrain.study.storage import StudyDir

    _not_empty("--out", args.out, "a YAML file to write (default <RESULTS_DIR>/best.yaml)")
    _not_empty("--metric", args.metric, "a metric of the study's results (default: its own)")
    if args.out:
        if Path(args.out).is_dir():
            raise UserError(f"--out {args.out} is a folder; give the YAML file to write "
                            "(e.g. best.yaml)")
        check_writable(Path(args.out), "--out")
    study = StudyDir.parse(args.results_dir, "RESULTS_DIR")  # a folder or a URI (s3://...)
    metric, mode = study_metric(study)
    metric = args.metric or metric
    check_selection_metric(metric)  # before anything is read or written
    if metric.removeprefix("best/").startswith("train_"):
        print(f"note: {metric} is of the training split: it ranks how well a configuration "
              "fits the data it trained on, not how it generalises (val_ metrics do that)",
              file=sys.stderr)
    paths = export(study, metric=metric, top=args.top, out=args.out,
                   mode=args.mode or mode, train_ratio=args.train_ratio)
    for path in paths:
        print(f"wrote {path if args.out else study.shown(path)}")
    index = len(paths) > 1 and is_index(paths[-1])  # several ratios: their files, then it
    configs = paths[:-1] if index else paths
    # several ratios: the most imbalanced one's, the condition imbalance studies are about
    best = configs[-args.top] if index else configs[0]
    print(f"train it with: imbtrain train --config {best}")
    return 0


# ================================================================ analyze


@command
def add_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="re-draw the analyses of a finished study",
                       description="Draw analyses (PNG, Parquet and Markdown tables) from a "
                                   "study's results.parquet / history.parquet. Without "
                                   "--kind: those the study recorded in analyses.yaml, else "
                                   "every kind its results can feed.")
    p.add_argument("results_dir", metavar="RESULTS_DIR", nargs="?",
                   help="the study folder, <storage>/<name>, or its URI (s3://...)")
    p.add_argument("--kind", action="append", metavar="K",
                   help="an analysis kind (repeatable); --list shows them")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="an analysis option, the value read as YAML (e.g. baseline=128, "
                        "metrics=[test_acc]); KIND.KEY=VALUE for one kind only")
    p.add_argument("--out", help="output folder (default: RESULTS_DIR)")
    p.add_argument("--list", action="store_true", help="list the kinds and their options")
    p.set_defaults(handler=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    import inspect

    import yaml

    from imbtrain.analysis import ANALYSES, run_analysis
    from imbtrain.analysis.registry import analysis_options
    from imbtrain.files import load_yaml, yaml_problem

    if args.list:
        for kind in sorted(ANALYSES):
            opts = ", ".join(k if v is inspect.Parameter.empty else f"{k}={v!r}"
                             for k, v in analysis_options(kind).items())
            doc = (ANALYSES[kind].__doc__ or "").strip().splitlines()[0]
            print(f"{kind}: {doc}\n    options: {opts or 'none'}")
        return 0
    if not args.results_dir:
        raise UserError("give RESULTS_DIR, the folder of a finished study (or --list)")
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--option {item!r} is not KEY=VALUE")
        try:
            options[key.strip()] = load_yaml(value, f"--option {key.strip()}")
        except yaml.YAMLError as e:
            raise UserError(f"--option {item!r}: the value is not valid YAML "
                            f"({yaml_problem(e)[2]}); e.g. baseline=128, metrics=[test_acc], "
                            "title='a b'") from None
    if args.out is not None:
        _not_empty("--out", args.out, "the folder to draw into (default: RESULTS_DIR)")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise UserError(f"--out {args.out} is a file; give a folder to draw into")
        check_writable(Path(args.out) / "analysis", "--out")
    written = run_analysis(args.results_dir, args.kind, options, args.out)
    if not written:
        raise UserError(f"no analysis could be drawn from {args.results_dir}")
    return 0


# ================================================================ autotune


@command
def add_autotune(sub: argparse._SubParsersAction) -> None:
    from imbtrain.study.options import DEFAULT_MLFLOW_URI, DEFAULT_STORAGE

    p = sub.add_parser("autotune", help="tune the paper's prescription on your own data",
                       description="Hold out stratified validation and test splits of an "
                                   "image folder (one subfolder a class) or a CSV/Parquet "
                                   "table, search the paper's prescription (batch size, "
                                   "augmentation, label smoothing, SAM-A, SSL, the "
                                   "specialised methods beside ERM) with Optuna and ASHA, "
                                   "compare it with simple baselines, train the best on "
                                   "train + validation, save it (imbtrain predict), log it "
                                   "to MLflow and write report.html.")
    p.add_argument("data", metavar="DATA", help="an image folder or a CSV or Parquet file")
    p.add_argument("--label-column", default="", metavar="C",
                   help="tables: the column that holds the class")
    p.add_argument("--budget-trials", type=int, metavar="N",
                   help="trials of the search (default 20 when no budget is given)")
    p.add_argument("--budget-hours", type=float, metavar="H",
                   help="hours of search: trials start until then (with --budget-trials: "
                        "whichever ends first)")
    p.add_argument("--max-concurrent", type=int, metavar="N",
                   help="trials at once (default: as many as the CPUs allow; 1 makes the "
                        "search repeatable, resumed or not)")
    p.add_argument("--epochs", type=int, default=10,
                   help="epochs of each trial and of the final model (default 10)")
    p.add_argument("--name", help="study name (default autotune_<DATA's name>)")
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help=f"folder of the study (default {DEFAULT_STORAGE})")
    p.add_argument("--address", help="a Ray cluster to run the trials on")
    p.add_argument("--mlflow-uri", default=DEFAULT_MLFLOW_URI, metavar="URI",
                   help=f"MLflow store (default {DEFAULT_MLFLOW_URI}; none turns it off)")
    p.add_argument("--register", metavar="NAME",
                   help="register the final model as a new version of NAME")
    p.add_argument("--resume", action="store_true", help="continue an interrupted autotune")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits and the search")
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.set_defaults(handler=run_autotune_command)


def run_autotune_command(args: argparse.Namespace) -> int:
    from imbtrain.errors import StudyInterrupted
    from imbtrain.study.options import MLFLOW_URI_WHAT
    from imbtrain.study.script import interrupted_line
    from imbtrain.tune.autotune import run_autotune

    _not_empty("--mlflow-uri", args.mlflow_uri, MLFLOW_URI_WHAT)
    uri = None if str(args.mlflow_uri).lower() == "none" else args.mlflow_uri
    try:
        summary = run_autotune(args.data, label_column=args.label_column,
                               budget_trials=args.budget_trials, epochs=args.epochs,
                               storage=args.storage, name=args.name, address=args.address,
                               mlflow_uri=uri, register=args.register, resume=args.resume,
                               seed=args.seed, gpus_per_trial=args.gpus_per_trial,
                               budget_hours=args.budget_hours,
                               max_concurrent=args.max_concurrent)
    except StudyInterrupted as e:
        print(interrupted_line(e), file=sys.stderr, flush=True)
        return e.status
    print(f"final model: {summary['model_folder']}; predict with: imbtrain predict "
          f"{summary['model_folder']} {summary['test_input']}")
    return 0


# ================================================================ report


@command
def add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="draw a finished study's report.html (plots embedded)",
                       description="Write report.html, one static page with its plots "
                                   "embedded, from a finished study's folder (a study of "
                                   "`imbtrain study` or of `imbtrain autotune`): class "
                                   "counts, what was searched and its compute, the best "
                                   "configuration, per-class accuracy, learning curves of "
                                   "the best trials, the sensitivity of the metric to each "
                                   "knob.")
    p.add_argument("study_dir", metavar="STUDY_DIR",
                   help="a finished study's folder, e.g. runs/batch_size")
    p.add_argument("--out", metavar="FILE", help="default <STUDY_DIR>/report.html")
    p.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from imbtrain.study.report import write_report

    path = write_report(args.study_dir, args.out)
    print(f"wrote {path}")
    return 0


# ================================================================ check-cluster


@command
def add_check_cluster(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-cluster", help="validate a Ray cluster file offline",
                       description="Validate a `ray up` cluster file against the JSON schema "
                                   "that ships inside Ray, without contacting the cloud; "
                                   "every REPLACE placeholder left and a study storage the "
                                   "runner refuses are errors (exit status 2), a head "
                                   "without an MLflow server or workers that pip-install "
                                   "torch at boot are warnings.")
    p.add_argument("cluster_file", metavar="CLUSTER.yaml")
    p.set_defaults(handler=run_check_cluster)


def run_check_cluster(args: argparse.Namespace) -> int:
    from imbtrain.tune.cluster import check_cluster_file

    report = check_cluster_file(args.cluster_file)
    for line in report.errors:  # one line a problem, each naming the key path
        print(f"error: {line}", file=sys.stderr)
    for line in report.warnings:  # printed; the file still passes
        print(f"warning: {line}", file=sys.stderr)
    if report.errors:
        return 2
    print(f"{args.cluster_file}: ok")
    return 0


# ================================================================ cluster-local (imbtrain.tune)


@command
def add_cluster_local(sub: argparse._SubParsersAction) -> None:
    from imbtrain.tune.local_cluster import add_cluster_local_parser

    add_cluster_local_parser(sub)


# ================================================================ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imbtrain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights at run time
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if getattr(args, "takes_extra", False):
            return args.handler(args, extra)
        return args.handler(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DivergedError as e:  # the run failed, not the input: status 1, nothing written
        print(f"error: {e}; nothing was written (lower lr, or add warmup_epochs)",
              file=sys.stderr)
        return 1
    except BrokenPipeError:  # `imbtrain keys | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The `imbtrain` command and `python -m imbtrain.cli`: `main`, then `exit_now`."""
    exit_now(main())


def exit_now(status: int) -> None:
    """End the process with `status`. After a command that loaded Ray (a study), the output
    is flushed and the process ends at once (`os._exit`): everything is written, logged to
    MLflow and Ray is stopped, and the interpreter's teardown of Ray's and PyTorch's native
    libraries would otherwise hold the prompt for 15 s or more with nothing on the console
    (measured on a busy 2-core machine after a smoke study)."""
    if "ray" not in sys.modules:
        sys.exit(status)
    import logging

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(status)


if __name__ == "__main__":
    entry()
