"""The batch-size study (paper Section 3.1, Fig. 1; A.1, Fig. 5).

Claim under test: batch size matters much more when the training set is imbalanced, and small
batches are best there, while the curve of balanced data stays flat.

Setup: search_spaces/batch_size.yaml, batch sizes x train ratios x seeds; by default on the
embedded mnist5k with a small CNN, in minutes on a laptop (`make study`); `--full` runs the
paper's setting (WRN-28-10 on CIFAR with the tuned routine of Table 1) on a GPU cluster:

    python studies/batch_size.py                  # runs/batch_size/
    python studies/batch_size.py --smoke          # seconds: runs/batch_size_smoke/
    python studies/batch_size.py --full --data-dir /data/cifar10 --address auto \\
        --storage /shared/runs --mlflow-uri http://head:5000

Analysis: the percent change of test accuracy over batch size 128 at the same train ratio
and seed, mean ± standard error over seeds (imbtrain.analysis.sensitivity), written as
sensitivity.png, sensitivity.md and sensitivity.parquet next to the study's tables and logged
to the study's MLflow parent run. Ends by printing what it found and the best config.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from imbtrain.analysis import ANALYSES, record_analyses
from imbtrain.analysis.sensitivity import sensitivity_curve, sensitivity_markdown
from imbtrain.errors import UserError
from imbtrain.tune.cli import add_study_options, print_summary, study_kwargs
from imbtrain.tune.runner import log_artifacts, run_study
from imbtrain.tune.space import load_space

SPACE = Path(__file__).resolve().parent.parent / "search_spaces" / "batch_size.yaml"
KNOB, BASELINE, METRIC = "batch_size", 128, "test_acc"  # Fig. 1: over batch size 128


# ================================================================ setup


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_study_options(p)
    p.add_argument("--dataset", help="dataset of every trial (default: the space's, mnist5k; "
                                     "cifar10 with --full)")
    p.add_argument("--data-dir", help="folder of an on-disk dataset (cifar10, ...)")
    p.add_argument("--full", action="store_true",
                   help="the paper's setting: WRN-28-10 on CIFAR, the tuned routine")
    p.add_argument("--space", default=str(SPACE), help="search-space file (default %(default)s)")
    return p.parse_args(argv)


def study_spec(args: argparse.Namespace):
    spec = load_space(args.space)
    base = {k: v for k, v in (("dataset", args.dataset), ("data_dir", args.data_dir)) if v}
    if args.full:
        return spec.variant("full", base=base)
    return spec.variant(None, base=base) if base else spec


# ================================================================ analysis


def analyse(result) -> tuple[pd.DataFrame, list[Path]]:
    """Fig. 1: the sensitivity table as PNG, markdown and parquet in the study folder,
    recorded in analyses.yaml so that `imbtrain analyze <study>` draws it again."""
    options = {"knob": KNOB, "baseline": BASELINE, "metric": METRIC,
               "title": "Percent change of test accuracy over batch size 128 "
                        "(mean ± s.e. over seeds)"}
    files = ANALYSES["sensitivity"](result.results, result.history, result.path, **options)
    record_analyses(result.path, {"sensitivity": options})
    return sensitivity_curve(result.results, KNOB, BASELINE, METRIC), files


def findings(table: pd.DataFrame) -> str:
    """One paragraph: how flat the balanced curve is, and what helps most under imbalance."""
    ratios = sorted(table["train_ratio"].unique(), reverse=True)
    others = table[table[KNOB] != BASELINE]
    if others.empty:
        return f"Only the baseline {KNOB} {BASELINE} finished; nothing to compare."
    parts = []
    for r in ratios:
        rows = others[others["train_ratio"] == r]
        top = rows.loc[rows["pct_change"].idxmax()]
        spread = rows["pct_change"].abs().max()
        se = "" if math.isnan(top["pct_change_se"]) else f" ± {top['pct_change_se']:.1f}"
        parts.append(f"at r = {r:g} the largest change is {spread:.1f}%, and the best "
                     f"{KNOB} is {int(top[KNOB])} ({top['pct_change']:+.1f}%{se} over "
                     f"{BASELINE})")
    flat = others[others["train_ratio"] == ratios[0]]["pct_change"].abs().max()
    steep = others[others["train_ratio"] == ratios[-1]]["pct_change"].abs().max()
    verdict = ("batch size matters more under imbalance, as the paper reports"
               if steep > flat else "this run does not show batch size mattering more "
               "under imbalance")
    n = int(table["n"].max())
    return (f"Test accuracy relative to {KNOB} {BASELINE}, over {n} seed(s): "
            + "; ".join(parts) + f". So {verdict} (largest change {steep:.1f}% at "
            f"r = {ratios[-1]:g} vs {flat:.1f}% at r = {ratios[0]:g}).")


# ================================================================ main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        kwargs = study_kwargs(args)
        if args.name is None and args.full:
            kwargs["name"] = "batch_size_full" + ("_smoke" if args.smoke else "")
        result = run_study(study_spec(args), **kwargs)
        table, files = analyse(result)
        log_artifacts(result.mlflow_uri, result.path.name, files)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print()
    print(sensitivity_markdown(table))
    print(findings(table))
    print(f"wrote {', '.join(f.name for f in files)} in {result.path}")
    return print_summary(result)


if __name__ == "__main__":
    sys.exit(main())
