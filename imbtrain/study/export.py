"""Export the best configurations of a finished study as TrainConfig YAML.

    imbtrain export runs/batch_size --out best.yaml        # the best one
    imbtrain export runs/batch_size --top 3 --out best.yaml  # best_1.yaml .. best_3.yaml

A configuration is a trial's config without its training seed: the seeds of a study vary the
training of one configuration, not its data (`data_seed` picks the subsample; docs/methods.md,
"1. Imbalanced data"), so configs are ranked by their metric's mean over seeds, not by one
lucky seed. Only finished trials (TERMINATED, with the metric) count. The exported file is
the full TrainConfig of the configuration with its first seed, ready for
`imbtrain train --config`.

    >>> import pandas as pd
    >>> results = pd.DataFrame({
    ...     "status": ["TERMINATED"] * 4, "config/batch_size": [16, 16, 64, 64],
    ...     "config/seed": [0, 1, 0, 1], "val_bal_acc": [0.70, 0.80, 0.90, 0.50]})
    >>> rank_configs(results, "val_bal_acc")
       config/batch_size  mean  n  seed
    0                 16  0.75  2     0
    1                 64  0.70  2     0
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imbtrain.errors import UserError
from imbtrain.study.results import BEST_FILE, STUDY_FILE, read_results


def rank_configs(results: pd.DataFrame, metric: str, mode: str = "max") -> pd.DataFrame:
    """Configurations (config/* but seed) ranked by the mean of `metric` over their seeds.

    Columns: the config columns, `mean` and `n` (seeds) of the metric, `seed` (the first);
    best first; ties keep the study's order.
    """
    if metric not in results.columns:
        known = sorted(c for c in results.columns if c.startswith(("val_", "test_", "train_")))
        raise UserError(f"metric {metric!r} is not in the results; known: {', '.join(known)}")
    done = results[(results["status"] == "TERMINATED") & results[metric].notna()]
    if done.empty:
        raise UserError(f"no finished trial reports {metric}; nothing to export")
    keys = [c for c in done.columns if c.startswith("config/") and c != "config/seed"]
    grouped = done.groupby(keys, sort=False, dropna=False)
    table = grouped.agg(mean=(metric, "mean"), n=(metric, "size"), seed=("config/seed", "min"))
    return table.sort_values("mean", ascending=(mode == "min"), kind="stable").reset_index()


def best_configs(results: pd.DataFrame, metric: str, mode: str = "max", top: int = 1):
    """The TrainConfigs of the `top` best configurations, best first."""
    from imbtrain.config import TrainConfig

    ranked = rank_configs(results, metric, mode).head(top)
    out = []
    for _, row in ranked.iterrows():
        d = {c.removeprefix("config/"): _plain(row[c]) for c in ranked.columns
             if c.startswith("config/")}
        out.append(TrainConfig(**{**d, "seed": int(row["seed"])}))
    return out


def _plain(v):
    """numpy scalars to Python ones, so the YAML holds plain values."""
    return v.item() if hasattr(v, "item") else v


def export(results_dir: str, metric: str | None = None, top: int = 1,
           out: str | None = None, mode: str = "max") -> list[Path]:
    """Write the best configs of the study in `results_dir`; returns the files written.

    `metric` defaults to the study's metric (recorded in study.yaml; else val_bal_acc).
    `out` defaults to `<results_dir>/best.yaml`; with `top` > 1, `best_1.yaml`, ... beside it.
    """
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    results = read_results(results_dir)
    if metric is None:
        metric, mode = study_metric(results_dir)
    configs = best_configs(results, metric, mode, top)
    out_path = Path(out) if out else Path(results_dir) / BEST_FILE
    paths = [out_path] if top == 1 else [
        out_path.with_name(f"{out_path.stem}_{i}{out_path.suffix or '.yaml'}")
        for i in range(1, len(configs) + 1)]
    for cfg, path in zip(configs, paths, strict=False):
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg.save(path)
    return paths


def study_metric(results_dir: str) -> tuple[str, str]:
    """The metric and mode the study tuned (its study.yaml), else val_bal_acc / max."""
    import yaml

    path = Path(results_dir) / STUDY_FILE
    if path.is_file():
        meta = yaml.safe_load(path.read_text()) or {}
        return meta.get("metric", "val_bal_acc"), meta.get("mode", "max")
    return "val_bal_acc", "max"


def best_trial_per_ratio(results: pd.DataFrame, metric: str, mode: str = "max") -> pd.DataFrame:
    """The best configuration at each train ratio and the trial that stands for it.

    The train ratio is a condition of the data, not a knob: each ratio gets its own best
    configuration, ranked as `rank_configs` ranks them (the mean of `metric` over seeds), and
    its trial is the one of its first seed, the config `export` writes (so training that
    config again gives that trial's model). One row a ratio with a finished trial, in the
    results' order: `train_ratio`, `trial_id`, `trial_name`, `mean`, `n`, `seed`.

        >>> results = pd.DataFrame({
        ...     "trial_id": list("abcdef"), "trial_name": list("ABCDEF"),
        ...     "status": ["TERMINATED"] * 6, "config/train_ratio": [1.0] * 4 + [0.1] * 2,
        ...     "config/batch_size": [16, 16, 64, 64, 16, 64], "config/seed": [0, 1] * 3,
        ...     "val_bal_acc": [0.70, 0.80, 0.90, 0.50, 0.4, 0.3]})
        >>> best_trial_per_ratio(results, "val_bal_acc")
           train_ratio trial_id trial_name  mean  n  seed
        0          1.0        a          A  0.75  2     0
        1          0.1        e          E  0.40  1     0
    """
    rows = []
    for ratio, part in results.groupby("config/train_ratio", sort=False):
        try:
            top = rank_configs(part, metric, mode).iloc[0]
        except UserError:  # no finished trial at this ratio
            continue
        match = (part["status"] == "TERMINATED") & (part["config/seed"] == top["seed"])
        for key in (c for c in top.index if c.startswith("config/")):
            match &= (part[key] == top[key]) | (part[key].isna() & pd.isna(top[key]))
        trial = part[match].iloc[0]
        rows.append({"train_ratio": float(ratio), "trial_id": trial["trial_id"],
                     "trial_name": trial["trial_name"], "mean": float(top["mean"]),
                     "n": int(top["n"]), "seed": int(top["seed"])})
    return pd.DataFrame(rows, columns=["train_ratio", "trial_id", "trial_name", "mean", "n",
                                       "seed"])
