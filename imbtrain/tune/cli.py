"""`imbtrain study` and `imbtrain export`: arguments and handlers (registered in imbtrain.cli).

`add_study_options` is shared with the study scripts (`studies/*.py`), which accept every
option of `imbtrain study` (DESIGN.md, "Commands"). Heavy imports (Ray, MLflow) wait for the
handler, so `imbtrain --help` stays fast.
"""

from __future__ import annotations

import argparse
import os

from imbtrain.errors import UserError

# Defaults of --storage and --mlflow-uri a cluster sets for every study started on it
# (cluster.yaml: its S3 storage and the head's MLflow server).
STORAGE_ENV, MLFLOW_URI_ENV = "IMBTRAIN_STORAGE", "IMBTRAIN_MLFLOW_URI"


def add_study_options(p: argparse.ArgumentParser) -> None:
    """The options of `imbtrain study` (all but the search-space file)."""
    from imbtrain.tune.runner import DEFAULT_MLFLOW_URI, DEFAULT_STORAGE, MAX_FAILURES

    p.add_argument("--smoke", action="store_true",
                   help="the seconds-long version: the space's smoke section applied")
    p.add_argument("--name", help="study name, the folder under --storage "
                                  "(default: the space's file name, _smoke added with --smoke)")
    p.add_argument("--address", help="Ray cluster to join (e.g. auto on a cluster's head); "
                                     "default: Ray in this process with this machine's CPUs")
    p.add_argument("--storage", default=os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE,
                   help=f"folder the study is written to (default ${STORAGE_ENV}, else "
                        f"{DEFAULT_STORAGE}); on a cluster a storage every node reaches")
    p.add_argument("--mlflow-uri", default=os.environ.get(MLFLOW_URI_ENV) or DEFAULT_MLFLOW_URI,
                   help=f"MLflow tracking URI (default ${MLFLOW_URI_ENV}, else "
                        f"{DEFAULT_MLFLOW_URI}; on a cluster http://host:port); 'none' turns "
                        "MLflow logging off")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted study: finished trials are kept, the others "
                        "continue from their last checkpoint. It unpickles the study's "
                        "tuner.pkl (Ray's Tuner.restore): resume only studies in storage "
                        "you own, never a folder someone else can write to")
    p.add_argument("--max-concurrent", type=int, metavar="K",
                   help="at most K trials at once (default: as many as the CPUs hold)")
    p.add_argument("--gpus-per-trial", type=float, metavar="F",
                   help="GPUs a trial asks for, fractions allowed (default: the space's)")
    p.add_argument("--max-failures", type=int, metavar="N",
                   help=f"restart a failed trial (an error, a lost node) from its last "
                        f"checkpoint up to N times before recording it as ERROR (default "
                        f"{MAX_FAILURES}; 0: never)")


def study_kwargs(args: argparse.Namespace) -> dict:
    """`run_study` keyword arguments from the parsed options."""
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UserError(f"--max-concurrent must be at least 1, got {args.max_concurrent}")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise UserError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    if args.max_failures is not None and args.max_failures < 0:
        raise UserError(f"--max-failures must be 0 or more, got {args.max_failures}")
    uri = None if str(args.mlflow_uri).lower() in ("", "none") else args.mlflow_uri
    return {"name": args.name, "storage": args.storage, "address": args.address,
            "mlflow_uri": uri, "resume": args.resume, "max_concurrent": args.max_concurrent,
            "gpus_per_trial": args.gpus_per_trial, "smoke": args.smoke,
            "max_failures": args.max_failures}


def add_study_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run a Ray Tune study of a search space",
                       description="Run a Ray Tune study: the knobs of SPACE crossed with "
                                   "train ratios and seeds; every trial logged to MLflow; "
                                   "results.parquet, history.parquet and best.yaml written "
                                   "under <storage>/<name>/.")
    p.add_argument("space", metavar="SPACE.yaml", help="a search-space file (search_spaces/)")
    add_study_options(p)
    p.set_defaults(handler=run_study_command)


def run_study_command(args: argparse.Namespace) -> int:
    from imbtrain.tune.runner import run_study
    from imbtrain.tune.space import load_space

    result = run_study(load_space(args.space), **study_kwargs(args))
    return print_summary(result)


def print_summary(result) -> int:
    """The end of a study: where its files are and the best configuration. Returns the exit
    status: 1 when a trial failed (its error is in results.parquet and its error.txt); a
    diverged trial is a result of its settings (listed, status DIVERGED), not a failure."""
    res = result.results
    ok = int((res["status"] == "TERMINATED").sum()) if len(res) else 0
    print(f"study {result.path.name}: {ok}/{len(res)} trials finished; files in {result.path}")
    failed = res[res["status"] == "ERROR"] if len(res) else res
    if result.best is not None:
        knobs = {k: v for k, v in result.best.to_dict().items() if k != "seed"
                 and f"config/{k}" in res and res[f"config/{k}"].nunique() > 1}
        what = ", ".join(f"{k}={v}" for k, v in knobs.items()) or "the only configuration"
        variant = _variant_of(res, result.best)
        what = f"variant {variant} ({what})" if variant else what
        print(f"best configuration by mean {result.metric} over seeds: {what} -> "
              f"{result.path}/best.yaml")
    if result.mlflow_parent_run_id:
        from imbtrain.tune.mlflow_log import normalize_tracking_uri

        uri = normalize_tracking_uri(result.mlflow_uri)
        if uri.startswith(("http://", "https://")):  # a server: its UI is at its own URL
            print(f"MLflow: parent run {result.mlflow_parent_run_id} on {uri}; open {uri} "
                  "in a browser")
        else:
            print(f"MLflow: parent run {result.mlflow_parent_run_id} in {uri}; browse it "
                  f"with `mlflow ui --backend-store-uri {uri} --host 127.0.0.1`")
    for row in failed.itertuples():
        print(f"FAILED {row.trial_name} ({row.trial_id}): {row.error}")
    for row in (res[res["status"] == "DIVERGED"] if len(res) else res).itertuples():
        print(f"DIVERGED {row.trial_name} ({row.trial_id}): {row.error}")
    return 1 if len(failed) else 0


def _variant_of(res, best) -> str | None:
    """The variant (studies with `variants`) whose trials have the best configuration."""
    if "variant" not in res.columns:
        return None
    same = res["status"] == "TERMINATED"
    for key, value in best.to_dict().items():
        if key != "seed" and f"config/{key}" in res.columns:
            same &= res[f"config/{key}"] == value
    names = res.loc[same, "variant"].dropna().unique()
    return str(names[0]) if len(names) else None


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a study's best configs as TrainConfig YAML",
                       description="Write the best configurations of a finished study (ranked "
                                   "by the mean of the metric over seeds) as TrainConfig YAML "
                                   "for `imbtrain train --config`.")
    p.add_argument("results_dir", metavar="RESULTS_DIR",
                   help="a finished study's folder, e.g. runs/batch_size")
    p.add_argument("--metric", help="metric to rank by (default: the study's, val_bal_acc)")
    p.add_argument("--mode", choices=("max", "min"), help="default: the study's (max)")
    p.add_argument("--top", type=int, default=1, metavar="K",
                   help="write the K best (FILE_1.yaml ... FILE_K.yaml)")
    p.add_argument("--out", metavar="FILE", help="default <RESULTS_DIR>/best.yaml")
    p.set_defaults(handler=run_export_command)


def run_export_command(args: argparse.Namespace) -> int:
    from imbtrain.tune.export import export, study_metric

    metric, mode = study_metric(args.results_dir)
    paths = export(args.results_dir, metric=args.metric or metric, top=args.top,
                   out=args.out, mode=args.mode or mode)
    for path in paths:
        print(f"wrote {path}")
    print(f"train it with: imbtrain train --config {paths[0]}")
    return 0
