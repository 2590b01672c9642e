"""Table 6: tabular models under class imbalance (paper Section 4.2, Table 6).

The routine and the models: docs/methods.md, "3. The tuned routine" and "10. Tabular data and
models".

Claim under test: on imbalanced tabular data an MLP with numerical embeddings trained with
SAM-A, class-conditional smoothing and small batches matches or beats XGBoost, the plain MLP,
ResNet and FT-Transformer.

Protocol (Gorishniy et al. 2021): each model is tuned on the validation split with Optuna's
TPE (search_spaces/tabular_<model>.yaml: its knobs, `num_samples` configurations at one train
ratio and seed, ranked by val_bal_acc, never a test metric), then its best configuration is
trained again with 15 seeds (a grid study over seeds, written out as eval_<model>.yaml) and
scored on the test split: accuracy, and for binary data balanced accuracy, AUROC and AUPRC of
the minority class, mean ± standard error over the seeds. A trial's test metrics are those of
its best epoch by val_bal_acc (results.parquet's best/ columns): early stopping on the
validation split, for the trees the best number of boosting rounds.

    imbtrain study tabular                    # embedded tabular_synth at r = 0.05, < 10 min
    imbtrain study tabular --smoke            # seconds: runs/tabular_smoke/
    imbtrain study tabular --data my.csv --label-column is_fraud
    imbtrain study tabular --data adult.data --preset adult --full --address auto \\
        --storage /shared/runs --mlflow-uri http://head:5000

(`imbtrain study tabular` takes the same options.)

With no arguments the data are the embedded fraud-like `tabular_synth` (binary, balanced pools,
the exp profile at r = 0.05 on train, validation and test: 96 fraud rows to learn from); a
user's file keeps its own class balance (train_ratio = test_ratio = 1 unless --train-ratio).
Eight TPE trials a model of 15 epochs (XGBoost: up to 400 rounds) is what fits in 10 minutes
on 2 shared CPU cores (about 6 minutes here); TPE samples its first 10 trials at random, so the
default's tuning is a seeded random search. --full runs 100 trials a model and 100 epochs.

Writes under <storage>/<name>/: one study folder a stage (<name>_tune_<model>,
<name>_eval_<model>, each with results.parquet, history.parquet and best.yaml), the generated
evaluation spaces eval_<model>.yaml, and table6.md and table6.parquet (also logged to each
evaluation's MLflow parent run). Ends by printing Table 6 and the tuned configurations.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import yaml

from imbtrain.config import TrainConfig
from imbtrain.errors import UserError
from imbtrain.study.options import study_kwargs
from imbtrain.study.results import StudyResult
from imbtrain.study.script import Backend, Study
from imbtrain.study.space import StudySpec, load_space

# Table 6's rows: (key of search_spaces/tabular_<key>.yaml, label).
ROWS = {
    "xgboost": "XGBoost",
    "mlp": "MLP",
    "resnet": "ResNet",
    "ft_transformer": "FT-Transformer",
    "mlp_sam_a": "MLP-PLR + SAM-A + class smoothing + batch 16",
}
METRICS = ("acc", "bal_acc", "auroc", "auprc")
SEEDS, SMOKE_SEEDS = 15, 2


# ================================================================ setup


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The tabular study's options beyond `imbtrain study`'s (which give --dataset, a
    registered dataset of vectors instead, e.g. toy2d; --data-dir, the same as --data; and
    --full, the paper's budgets: 100 TPE trials a model, 100 epochs)."""
    p.add_argument("--data", metavar="FILE",
                   help="a CSV or Parquet file (dataset=tabular); default: embedded tabular_synth")
    p.add_argument("--label-column", help="the class column of --data")
    p.add_argument("--preset", choices=("none", "adult", "covertype", "otto"), default="none",
                   help="file layout of --data (imbtrain/data/tabular_presets.py)")
    p.add_argument("--train-ratio", type=float,
                   help="train (and test) ratio; default 0.05 embedded, 1 (as is) for --data")
    p.add_argument("--models", default=",".join(ROWS),
                   help="comma-separated rows of Table 6 (default: all: %(default)s)")
    p.add_argument("--trials", type=int, help="tuning trials a model (default: the space's)")
    p.add_argument("--seeds", type=int, help=f"evaluation seeds (default {SEEDS}, "
                                             f"{SMOKE_SEEDS} with --smoke)")


def data_file(args: argparse.Namespace) -> str | None:
    """--data, or the one file of --data-dir."""
    dirs = list(getattr(args, "data_dir", None) or [])
    if len(dirs) > 1:
        raise UserError(f"--data-dir: the tabular study reads one file, got {len(dirs)}")
    return args.data or (dirs[0] if dirs else None)


def data_overrides(args: argparse.Namespace) -> dict:
    """Base overrides for every trial: the user's file or dataset and the train ratio."""
    base: dict = {}
    data = data_file(args)
    if data:
        base.update(dataset="tabular", data_dir=str(Path(data).expanduser().resolve()),
                    tabular_preset=args.preset, train_ratio=1.0, test_ratio=1.0)
        if args.label_column:
            base["label_column"] = args.label_column
    elif args.dataset:
        base.update(dataset=args.dataset, train_ratio=1.0, test_ratio=1.0)
    if args.train_ratio is not None:
        base.update(train_ratio=args.train_ratio, test_ratio=args.train_ratio)
    return base


def tune_spec(key: str, args: argparse.Namespace) -> StudySpec:
    """search_spaces/tabular_<key>.yaml with --full / --smoke, the data and the budget."""
    spec = load_space(f"tabular_{key}")
    spec = spec.variant("full" if args.full else None, base=data_overrides(args))
    if args.smoke:
        spec = spec.with_smoke()
    if args.trials is not None:
        if args.trials < 1:
            raise UserError(f"--trials must be at least 1, got {args.trials}")
        spec = replace(spec, num_samples=args.trials)
    return spec


def eval_space(best: TrainConfig, tuned: StudySpec, seeds: int, label: str) -> dict:
    """A grid space: the tuned configuration (fields that differ from the defaults) over
    `seeds` training seeds. Its one knob is the model itself (a space needs one)."""
    defaults = TrainConfig().to_dict()
    base = {k: v for k, v in best.to_dict().items()
            if v != defaults[k] and k not in ("seed", "train_ratio")}
    space = {"description": f"Table 6 - {label}: the configuration tuned in "
                            f"{Path(tuned.path).name}, over {seeds} seeds",
             "base": base, "knobs": {"model": {"grid": [best.model]}},
             "train_ratios": [best.train_ratio], "seeds": list(range(seeds)),
             "searcher": "grid", "scheduler": "none", "metric": tuned.metric,
             "mode": tuned.mode,
             "resources": {"cpus": tuned.cpus_per_trial, "gpus": tuned.gpus_per_trial}}
    if tuned.max_concurrent:
        space["max_concurrent"] = tuned.max_concurrent
    return space


# ================================================================ running


def run_stage(spec: StudySpec, name: str, out: Path, kwargs: dict,
              backend: Backend) -> StudyResult:
    """One study under `out`; with --resume it continues a stage that was started."""
    resume = kwargs["resume"] and (out / name / "tuner.pkl").is_file()
    return backend.run_study(spec, **{**kwargs, "name": name, "storage": str(out),
                                      "resume": resume, "smoke": False})


def tune_and_evaluate(key: str, args: argparse.Namespace, out: Path, prefix: str,
                      kwargs: dict, backend: Backend) -> tuple[StudyResult, StudyResult | None]:
    """Stage 1: TPE on validation. Stage 2: the best configuration over the seeds."""
    spec = tune_spec(key, args)
    tuned = run_stage(spec, f"{prefix}_tune_{key}", out, kwargs, backend)
    if tuned.best is None:
        print(f"{ROWS[key]}: no tuning trial finished; see {tuned.path}", flush=True)
        return tuned, None
    seeds = args.seeds or (SMOKE_SEEDS if args.smoke else SEEDS)
    path = out / f"eval_{key}.yaml"
    path.write_text(f"# Written by the tabular study: evaluation of {ROWS[key]}.\n"
                    + yaml.safe_dump(eval_space(tuned.best, spec, seeds, ROWS[key]),
                                     sort_keys=False))
    return tuned, run_stage(load_space(path), f"{prefix}_eval_{key}", out, kwargs,
                            backend)


# ================================================================ analysis


def _column(results: pd.DataFrame, metric: str) -> pd.Series:
    """The test metric at each trial's best epoch by the study metric (else its final one)."""
    done = results[results["status"] == "TERMINATED"]
    for col in (f"best/test_{metric}", f"test_{metric}"):
        if col in done and done[col].notna().any():
            return done[col].dropna()
    return pd.Series(dtype=float)


def table6(evals: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row a model: seeds, and mean and standard error (std / sqrt(n)) of each metric."""
    rows = []
    for label, results in evals.items():
        row: dict = {"model": label, "seeds": 0}
        for m in METRICS:
            values = _column(results, m)
            n = len(values)
            row["seeds"] = max(row["seeds"], n)
            row[m] = float(values.mean()) if n else math.nan
            row[f"{m}_se"] = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def is_binary(table: pd.DataFrame) -> bool:
    return bool(table["auroc"].notna().any())


def table6_markdown(table: pd.DataFrame) -> str:
    """Table 6 as markdown: mean ± s.e. over seeds (binary data: all four metrics)."""
    metrics = METRICS if is_binary(table) else ("acc", "bal_acc")
    head = "| model | seeds | " + " | ".join(f"test {m}" for m in metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for _, r in table.iterrows():
        cells = [_mean_se(r[m], r[f"{m}_se"]) for m in metrics]
        lines.append(f"| {r['model']} | {int(r['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_se(mean: float, se: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.4f}" if math.isnan(se) else f"{mean:.4f} ± {se:.4f}"


def findings(table: pd.DataFrame) -> str:
    """Which model ranks first on each metric, and the routine against the plain MLP."""
    metrics = METRICS if is_binary(table) else ("acc", "bal_acc")
    done = table[table["seeds"] > 0]
    if done.empty:
        return "No model finished; nothing to compare."
    parts = [f"best {m}: {done.loc[done[m].idxmax(), 'model']}" for m in metrics
             if done[m].notna().any()]
    text = "; ".join(parts) + "."
    mlp, routine = ROWS["mlp"], ROWS["mlp_sam_a"]
    if {mlp, routine} <= set(done["model"]):
        a = done.set_index("model").loc[mlp]
        b = done.set_index("model").loc[routine]
        diffs = ", ".join(f"{m} {b[m] - a[m]:+.4f}" for m in metrics if not math.isnan(b[m]))
        text += f" The routine against the plain MLP: {diffs}."
    return text


def tuned_summary(key: str, tuned: StudyResult, spec_knobs: list[str]) -> str:
    """One line: the tuned values of the space's knobs and their validation score."""
    if tuned.best is None:
        return f"{ROWS[key]}: not tuned"
    values = ", ".join(f"{k}={_short(getattr(tuned.best, k))}" for k in spec_knobs)
    return f"{ROWS[key]}: {values}"


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_table(table: pd.DataFrame, out: Path) -> list[Path]:
    md, pq = out / "table6.md", out / "table6.parquet"
    md.write_text("# Table 6 (test split, mean ± standard error over seeds)\n\n"
                  + table6_markdown(table))
    table.to_parquet(pq, index=False)
    return [md, pq]


# ================================================================ main


DOC = __doc__  # (inside the class, __doc__ is the class's own)


class TabularStudy(Study):
    """Table 6: five models, each tuned (stage 1) and evaluated over seeds (stage 2)."""

    name = "tabular"
    doc = DOC

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        add_arguments(p)

    def run(self, args: argparse.Namespace, backend: Backend) -> int:
        return run(args, backend)


def run(args: argparse.Namespace, backend: Backend) -> int:
    """The study: every row's two stages, then Table 6."""
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    try:
        unknown = [k for k in keys if k not in ROWS]
        if unknown or not keys:
            raise UserError(f"--models: unknown row(s) {', '.join(unknown) or '(none)'}; "
                            f"choose from {', '.join(ROWS)}")
        kwargs = study_kwargs(args)
        prefix = args.name or ("tabular" + ("_full" if args.full else "")
                               + ("_smoke" if args.smoke else ""))
        out = Path(args.storage).expanduser().resolve() / prefix
        out.mkdir(parents=True, exist_ok=True)
        evals, lines = {}, []
        for key in keys:
            tuned, evaluated = tune_and_evaluate(key, args, out, prefix, kwargs, backend)
            lines.append(tuned_summary(key, tuned, list(tune_spec(key, args).knobs)))
            evals[ROWS[key]] = evaluated.results if evaluated else pd.DataFrame(
                columns=["status"])
        table = table6(evals)
        files = write_table(table, out)
        for key in keys:
            if kwargs["mlflow_uri"] and (out / f"{prefix}_eval_{key}").is_dir():
                backend.log_artifacts(kwargs["mlflow_uri"], f"{prefix}_eval_{key}", files)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\nTable 6 (test split, mean ± standard error over seeds; each trial at its best "
          "epoch by val_bal_acc)\n")
    print(table6_markdown(table))
    print(findings(table))
    print("\nTuned configurations (Optuna TPE on val_bal_acc):")
    for line in lines:
        print(f"  {line}")
    print(f"wrote {', '.join(f.name for f in files)} and the stage folders in {out}")
    return 0


STUDY = TabularStudy()
