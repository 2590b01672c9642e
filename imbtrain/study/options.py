"""The options of `imbtrain study`, shared by every study (`imbtrain study NAME`, the
`studies/*.py` scripts) and turned into `run_study`'s keyword arguments.

    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_study_options(p)
    >>> kwargs = study_kwargs(p.parse_args(["--smoke", "--mlflow-uri", "none"]))
    >>> kwargs["smoke"], kwargs["mlflow_uri"], kwargs["storage"]
    (True, None, 'runs')
"""

from __future__ import annotations

import argparse
import os

from imbtrain.errors import UserError

DEFAULT_STORAGE = "runs"
DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"
# Defaults of --storage and --mlflow-uri a cluster sets for every study started on it
# (cluster.yaml: its S3 storage and the head's MLflow server).
STORAGE_ENV, MLFLOW_URI_ENV = "IMBTRAIN_STORAGE", "IMBTRAIN_MLFLOW_URI"
MAX_FAILURES = 2  # a trial whose worker died (a lost spot node) restarts from its checkpoint


def add_study_options(p: argparse.ArgumentParser) -> None:
    """The options of `imbtrain study` (all but the search space)."""
    p.add_argument("--smoke", action="store_true",
                   help="the seconds-long version: the space's smoke section applied")
    p.add_argument("--name", help="study name, the folder under --storage "
                                  "(default: the space's file name, _smoke added with --smoke)")
    p.add_argument("--address", help="Ray cluster to join (e.g. auto on a cluster's head); "
                                     "default: Ray in this process with this machine's CPUs")
    p.add_argument("--storage", default=os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE,
                   help=f"folder or URI the study is written to (default ${STORAGE_ENV}, "
                        f"else {DEFAULT_STORAGE}): a path, s3://bucket/prefix, gs://..., any "
                        "URI pyarrow opens; on a cluster a storage every node reaches")
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
    p.add_argument("--register", metavar="NAME",
                   help="register the best model of each train ratio in the MLflow model "
                        "registry: one version of NAME a ratio, with the alias r<ratio> "
                        "(r0_02 for 0.02)")
    p.add_argument("--verbose", action="store_true",
                   help="Ray's, Tune's and MLflow's own output too (start-up banners and "
                        "warnings, Tune's status tables, the workers' lines); default: the "
                        "study's own lines only")
    p.add_argument("--max-failures", type=int, metavar="N",
                   help=f"restart a failed trial (an error, a lost node) from its last "
                        f"checkpoint up to N times before recording it as ERROR (default "
                        f"{MAX_FAILURES}; 0: never)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="a trial's checkpoint every N epochs, at its last epoch and at ASHA's "
                        "rungs (default: the space's checkpoint_every, else 5); --resume "
                        "continues from the last one")
    p.add_argument("--dashboard", action="store_true",
                   help="start Ray's dashboard with the in-process Ray (off by default)")


def add_script_options(p: argparse.ArgumentParser) -> None:
    """`add_study_options`, and what a study of the paper adds: its data and its scale."""
    add_study_options(p)
    p.add_argument("--dataset", help="dataset of every trial (default: the space's; with "
                                     "--full, the paper's)")
    p.add_argument("--data-dir", nargs="+", metavar="DIR",
                   help="folder of an on-disk dataset (cifar100, ...); several folders make "
                        "data_dir a grid knob (one dataset a folder: cross-dataset studies)")
    p.add_argument("--full", action="store_true",
                   help="the paper's setting: its scale and the tuned routine (the space's "
                        "full section; a GPU cluster)")
    p.add_argument("--section", metavar="NAME",
                   help="apply the space's named section NAME (its `sections:`, e.g. mnist5k: "
                        "the study on other data); the study is then <space>_<NAME>")


MLFLOW_URI_WHAT = ("an MLflow tracking URI (sqlite:///mlflow.db, http://host:port) or none to "
                   "turn MLflow off")


def study_kwargs(args: argparse.Namespace) -> dict:
    """`run_study` keyword arguments from the parsed options."""
    for flag, value, what in (("--name", args.name, "a folder name under --storage"),
                              ("--storage", args.storage, "the folder studies are written to"),
                              ("--address", args.address, "a Ray cluster's address (auto on "
                                                          "its head)"),
                              ("--mlflow-uri", args.mlflow_uri, MLFLOW_URI_WHAT)):
        if value is not None and not str(value).strip():  # an unset shell variable, say
            raise UserError(f"{flag} is empty; give {what}, or leave the option out")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UserError(f"--max-concurrent must be at least 1, got {args.max_concurrent}")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise UserError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    if args.max_failures is not None and args.max_failures < 0:
        raise UserError(f"--max-failures must be 0 or more, got {args.max_failures}")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise UserError(f"--checkpoint-every must be at least 1, got {args.checkpoint_every}")
    uri = None if str(args.mlflow_uri).lower() == "none" else args.mlflow_uri
    return {"name": args.name, "storage": args.storage, "address": args.address,
            "mlflow_uri": uri, "resume": args.resume, "max_concurrent": args.max_concurrent,
            "gpus_per_trial": args.gpus_per_trial, "smoke": args.smoke,
            "max_failures": args.max_failures, "register": getattr(args, "register", None),
            "checkpoint_every": args.checkpoint_every, "dashboard": args.dashboard,
            "verbose": int(getattr(args, "verbose", 0))}
