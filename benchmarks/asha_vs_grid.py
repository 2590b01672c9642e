"""ASHA against the full grid on the batch-size space: compute spent, and the best config.

The space is search_spaces/batch_size.yaml (its base: mnist5k, the cnn, 4 epochs, SGD,
cosine; its knob: batch sizes 16 to 128), narrowed to one train ratio and a few seeds so
that both studies fit in minutes here. Both run through the real platform (`run_study`):
once as the grid (every trial trains all epochs), once with ASHA over epochs (grace period
1, reduction factor 2: a trial below the median at its rung stops). On CPU a trial's training
is deterministic, so a config trained in both studies gives the same numbers, and ASHA's
chosen config can be scored by the grid's full-budget result: is it within 0.5 points
(val_bal_acc, mean over seeds) of the grid's best?

    python benchmarks/asha_vs_grid.py                   # r = 0.1, seeds 0 1, ~3 min
    python benchmarks/asha_vs_grid.py --seeds 0 1 2 --train-ratio 0.02
    python benchmarks/asha_vs_grid.py --quick           # 2 batch sizes, 2 epochs: a check
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import yaml
from common import footer, header, timed_study, write_space

from imbtrain.study.export import rank_configs

SPACE = Path(__file__).resolve().parent.parent / "search_spaces" / "batch_size.yaml"


def space(args, scheduler) -> dict:
    raw = yaml.safe_load(SPACE.read_text())
    raw = {k: v for k, v in raw.items() if k not in ("smoke", "full")}
    raw["train_ratios"] = [args.train_ratio]
    raw["seeds"] = list(args.seeds)
    raw["scheduler"] = scheduler
    raw["max_concurrent"] = args.concurrency
    if args.quick:  # two batch sizes, two epochs
        raw["base"] = {**raw["base"], "epochs": 2}
        raw["knobs"] = {"batch_size": {"grid": [64, 128]}}
    return raw


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-ratio", type=float, default=0.1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--reduction-factor", type=int, default=2)
    p.add_argument("--quick", action="store_true",
                   help="a check of the script: r = 0.02, seed 0, 2 batch sizes, 2 epochs")
    args = p.parse_args()
    if args.quick:
        args.train_ratio, args.seeds = 0.02, [0]
    header(f"ASHA vs grid on {SPACE.name} at r = {args.train_ratio}, seeds {args.seeds}, "
           f"{args.concurrency} trials at once", threads=1)
    studies = {"grid": "none",
               "asha": {"type": "asha", "grace_period": 1,
                        "reduction_factor": args.reduction_factor}}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        from imbtrain.tune.runner import init_ray

        init_ray(None)
        for name, scheduler in studies.items():
            path = write_space(tmp, name, space(args, scheduler))
            uri = f"sqlite:///{os.path.join(tmp, 'mlflow.db')}"
            out[name] = timed_study(path, os.path.join(tmp, "runs"), uri,
                                    os.path.join(tmp, "study.log"))
    metric = out["grid"][0].metric
    ranked = {n: rank_configs(r.results, metric) for n, (r, _) in out.items()}
    print(f"{'':<8}{'trials':>8}{'trial-epochs':>14}{'trainable s':>13}{'wall s':>9}"
          f"{'best batch':>12}")
    for name, (result, wall) in out.items():
        res = result.results
        print(f"{name:<8}{len(res):>8}{int(res['epochs_run'].sum()):>14}"
              f"{res['time_total_s'].sum():>13.1f}{wall:>9.1f}"
              f"{int(result.best.batch_size):>12}")
    grid, asha = out["grid"][0].results, out["asha"][0].results
    print(f"ASHA spent {asha['epochs_run'].sum() / grid['epochs_run'].sum():.0%} of the "
          f"grid's trial-epochs, {asha['time_total_s'].sum() / grid['time_total_s'].sum():.0%}"
          f" of its trainable time, {out['asha'][1] / out['grid'][1]:.0%} of its wall time")
    full = ranked["grid"].set_index("config/batch_size")["mean"]
    print(f"grid, {metric} (mean over seeds, full budget) by batch size: "
          + ", ".join(f"{int(b)}: {v:.4f}" for b, v in full.items()))
    chosen = int(out["asha"][0].best.batch_size)
    gap = 100 * (full.max() - full[chosen])
    print(f"ASHA's best batch size {chosen} scores {full[chosen]:.4f} at full budget, "
          f"{gap:.2f} points below the grid's best {full.max():.4f} (batch size "
          f"{int(full.idxmax())}): {'within' if gap <= 0.5 else 'NOT within'} 0.5 points")
    footer()


if __name__ == "__main__":
    main()
