"""Export the best configurations of a finished study, at each train ratio, as TrainConfig YAML.

    imbtrain export runs/batch_size --train-ratio 0.02 --out best.yaml   # the best at r = 0.02
    imbtrain export runs/batch_size             # best_r1.yaml, best_r0.1.yaml, best_r0.02.yaml
    imbtrain export runs/batch_size --train-ratio 0.02 --top 3 --out best.yaml  # best_1..3.yaml

The train ratio is a condition of the data (how imbalanced the training set is), not a knob
to pick: on balanced data (r = 1) every configuration scores higher, so a best taken over all
ratios is always the balanced one. Configurations are therefore ranked at each train ratio
apart. A configuration is a trial's config without its training seed: the seeds of a study
vary the training of one configuration, not its data (`data_seed` picks the subsample;
docs/methods.md, "1. Imbalanced data"), so configs are ranked by their metric's mean over
seeds, not by one lucky seed. Only finished trials (TERMINATED, with the metric) count. An
exported file is the full TrainConfig of the configuration with its first seed, ready for
`imbtrain train --config`.

Selection uses the validation split: a metric of the test split (`test_*`, `best/test_*`,
`ncc_acc_test`) is refused, since choosing a configuration by it leaks the test split into
model selection. A `train_*` metric is allowed (it holds no test data, and a space may tune
on one), though it rewards fitting the training set rather than generalising.

Files. A study with one train ratio writes `best.yaml`, its best configuration. A study with
several writes `best_r<ratio>.yaml` for each (`best_r0.02.yaml`: the ratio as in trial names)
and `best.yaml` as their index (`per_train_ratio`: each ratio's file, score, seeds, knobs and
trials), which `imbtrain train --config` refuses with the list of the files to train instead.

    >>> import pandas as pd
    >>> results = pd.DataFrame({
    ...     "trial_id": ["a", "b", "c", "d", "e", "f"], "status": ["TERMINATED"] * 6,
    ...     "config/batch_size": [16, 16, 64, 64, 16, 64],
    ...     "config/train_ratio": [0.1, 0.1, 0.1, 0.1, 1.0, 1.0],
    ...     "config/seed": [0, 1, 0, 1, 0, 0], "val_bal_acc": [0.70, 0.80, 0.90, 0.50, 0.9, 0.95]})
    >>> rank_configs(results[results["config/train_ratio"] == 0.1], "val_bal_acc")
       config/batch_size  config/train_ratio  mean  n  seed
    0                 16                 0.1  0.75  2     0
    1                 64                 0.1  0.70  2     0
    >>> {r: (b.config.batch_size, b.mean, b.n, b.trial_ids)
    ...  for r, b in best_per_ratio(results, "val_bal_acc").items()}
    {1.0: (64, 0.95, 1, ['f']), 0.1: (16, 0.75, 2, ['b', 'a'])}
    >>> rank_configs(results, "test_acc")
    Traceback (most recent call last):
    ...
    imbtrain.errors.UserError: metric test_acc is of the test split: model selection never ...
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from imbtrain.errors import UserError
from imbtrain.study.results import BEST_FILE, STUDY_FILE, read_results
from imbtrain.study.storage import StudyDir, as_study_dir

RATIO = "config/train_ratio"
INDEX_KEY = "per_train_ratio"  # the key of best.yaml as an index (imbtrain.config refuses it)


class Best(NamedTuple):
    """The best configuration at one train ratio: its TrainConfig (first seed), the mean of
    the metric over its seeds, the number of seeds, and its trials, best first."""

    config: Any  # TrainConfig
    mean: float
    n: int
    trial_ids: list[str]


def is_test_metric(metric: str) -> bool:
    """A metric of the test split: `test_acc`, `best/test_acc`, `ncc_acc_test`."""
    return "test" in metric.removeprefix("best/").split("_")


def check_selection_metric(metric: str) -> None:
    """Refuse a test-split metric for model selection (module doc)."""
    if is_test_metric(metric):
        raise UserError(f"metric {metric} is of the test split: model selection never uses "
                        "the test split (it would leak it into the choice); rank by a "
                        "validation metric, e.g. val_bal_acc")


def rank_configs(results: pd.DataFrame, metric: str, mode: str = "max") -> pd.DataFrame:
    """Configurations (config/* but seed) ranked by the mean of `metric` over their seeds.

    Columns: the config columns, `mean` and `n` (seeds) of the metric, `seed` (the first);
    best first; ties keep the study's order. Rank one train ratio at a time
    (`best_per_ratio`): across ratios the balanced data always wins.
    """
    check_selection_metric(metric)
    if metric not in results.columns:
        known = sorted(c for c in results.columns if c.startswith(("val_", "test_", "train_")))
        near = difflib.get_close_matches(metric, known, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise UserError(f"metric {metric!r} is not in the results{hint}; known: "
                        f"{', '.join(known)}")
    done = results[(results["status"] == "TERMINATED") & results[metric].notna()]
    if done.empty:
        raise UserError(f"no finished trial reports {metric}; nothing to export")
    keys = [c for c in done.columns if c.startswith("config/") and c != "config/seed"]
    grouped = done.groupby(keys, sort=False, dropna=False)
    table = grouped.agg(mean=(metric, "mean"), n=(metric, "size"), seed=("config/seed", "min"))
    return table.sort_values("mean", ascending=(mode == "min"), kind="stable").reset_index()


def train_ratios(results: pd.DataFrame) -> list[float]:
    """The train ratios a study ran, largest (balanced) first."""
    if RATIO not in results.columns:
        from imbtrain.config import TrainConfig

        return [TrainConfig().train_ratio]
    return sorted({float(r) for r in results[RATIO].dropna()}, reverse=True)


def at_ratio(results: pd.DataFrame, ratio: float) -> pd.DataFrame:
    """The trials of one train ratio."""
    if RATIO not in results.columns:
        return results
    return results[results[RATIO].astype(float).map(lambda r: math.isclose(r, ratio))]


def ratio_label(ratio: float) -> str:
    """0.02 -> "0.02", 1.0 -> "1": as trial names write it (mnist5k_r0.02_bs16_s0)."""
    return f"{ratio:g}"


def best_configs(results: pd.DataFrame, metric: str, mode: str = "max", top: int = 1):
    """The TrainConfigs of the `top` best configurations of `results`, best first (rank one
    train ratio's trials: `at_ratio`)."""
    return [b.config for b in _ranked(results, metric, mode, top)]


def _ranked(results: pd.DataFrame, metric: str, mode: str, top: int) -> list[Best]:
    from imbtrain.config import TrainConfig

    ranked = rank_configs(results, metric, mode).head(top)
    done = results[(results["status"] == "TERMINATED") & results[metric].notna()]
    out = []
    for _, row in ranked.iterrows():
        d = {c.removeprefix("config/"): _plain(row[c]) for c in ranked.columns
             if c.startswith("config/")}
        same = pd.Series(True, index=done.index)
        for c in ranked.columns:
            if c.startswith("config/"):
                same &= (done[c] == row[c]) | (done[c].isna() & pd.isna(row[c]))
        trials = done[same].sort_values([metric, "config/seed"], ascending=[mode == "min", True],
                                         kind="stable")
        ids = [str(t) for t in trials["trial_id"]] if "trial_id" in trials else []
        out.append(Best(TrainConfig(**{**d, "seed": int(row["seed"])}), float(row["mean"]),
                        int(row["n"]), ids))
    return out


def best_per_ratio(results: pd.DataFrame, metric: str, mode: str = "max") -> dict[float, Best]:
    """The best configuration at each train ratio (largest ratio first): `Best(config, mean,
    n, trial_ids)`, ranked by the mean of `metric` over seeds among that ratio's finished
    trials, its trials best first. A ratio none of whose trials finished is left out; a
    test-split metric is refused (`UserError`). `best_per_ratio_top` gives the runners-up."""
    return {r: bests[0] for r, bests in best_per_ratio_top(results, metric, mode).items()}


def best_per_ratio_top(results: pd.DataFrame, metric: str, mode: str = "max",
                       top: int = 1) -> dict[float, list[Best]]:
    """The `top` best configurations at each train ratio, best first."""
    check_selection_metric(metric)
    out = {}
    for r in train_ratios(results):
        part = at_ratio(results, r)
        done = part[(part["status"] == "TERMINATED")]
        if metric in part.columns and done[metric].notna().any():
            out[r] = _ranked(part, metric, mode, top)
    if not out:
        rank_configs(results, metric, mode)  # raises the reason (unknown metric, none done)
    return out


def _plain(v):
    """numpy scalars to Python ones, so the YAML holds plain values."""
    return v.item() if hasattr(v, "item") else v


# ================================================================ files


def varying_knobs(results: pd.DataFrame) -> list[str]:
    """The config keys that take several values across the study's trials, but the seed and
    the train ratio: what tells its configurations apart."""
    return [c.removeprefix("config/") for c in results.columns
            if c.startswith("config/") and c not in ("config/seed", RATIO)
            and results[c].nunique(dropna=False) > 1]


def knobs_of(best: Best, results: pd.DataFrame) -> dict[str, Any]:
    """The values of the study's varying knobs in a best configuration."""
    cfg = best.config.to_dict()
    return {k: cfg[k] for k in varying_knobs(results) if k in cfg}


def ratio_file(out: Path, ratio: float) -> Path:
    """best.yaml -> best_r0.02.yaml beside it."""
    return out.with_name(f"{out.stem}_r{ratio_label(ratio)}{out.suffix or '.yaml'}")


def _numbered(path: Path, i: int) -> Path:
    return path.with_name(f"{path.stem}_{i}{path.suffix or '.yaml'}")


def write_best(results: pd.DataFrame, metric: str, mode: str, out: Path,
               train_ratio: float | None = None, top: int = 1,
               title: str = "") -> tuple[dict[float, list[Best]], list[Path]]:
    """Write the best configurations (module doc, "Files") to `out` and beside it: the one
    ratio asked for (or the study's only one) as `out`, else one `<out stem>_r<ratio>.yaml` a
    ratio and the index as `out`; with `top` > 1, `_1`, `_2`, ... before the suffix.
    Every check comes before the first file is written. Returns what was chosen, per ratio,
    and the files written (the index last)."""
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    ratios = train_ratios(results)
    if train_ratio is not None:
        match = [r for r in ratios if math.isclose(r, float(train_ratio))]
        if not match:
            raise UserError(f"--train-ratio {train_ratio:g}: the study ran train ratio(s) "
                            f"{', '.join(map(ratio_label, ratios))}")
        chosen = best_per_ratio_top(at_ratio(results, match[0]), metric, mode, top)
        if not chosen:
            raise UserError(f"no finished trial at train ratio {train_ratio:g} reports "
                            f"{metric}; nothing to export")
    else:
        chosen = best_per_ratio_top(results, metric, mode, top)
    single = train_ratio is not None or len(ratios) == 1
    files: list[tuple[Path, Any]] = []
    for r, bests in chosen.items():
        base = out if single else ratio_file(out, r)
        paths = [base] if top == 1 else [_numbered(base, i) for i in range(1, len(bests) + 1)]
        files += list(zip(paths, (b.config for b in bests), strict=True))
    for path, cfg in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg.save(path)
    written = [p for p, _ in files]
    if not single:
        written.append(write_index(out, chosen, files, results, metric, mode, title))
    return chosen, written


def write_index(out: Path, chosen: dict[float, list[Best]], files: list[tuple[Path, Any]],
                results: pd.DataFrame, metric: str, mode: str, title: str = "") -> Path:
    """best.yaml of a study with several train ratios: where each ratio's best config is."""
    import yaml

    names = iter(p.name for p, _ in files)
    last = files[-len(chosen[min(chosen)])][0].name  # the most imbalanced ratio's (first) file
    entries = []
    for r, bests in chosen.items():
        for rank, b in enumerate(bests, 1):
            entry = {"train_ratio": r, "config": next(names), metric: round(b.mean, 6),
                     "seeds": b.n, "knobs": knobs_of(b, results), "trials": b.trial_ids}
            entries.append({**({"rank": rank} if len(bests) > 1 else {}), **entry})
    head = (f"# The best configuration{f' of {title}' if title else ''} at each train ratio, by "
            f"the mean of {metric} over seeds.\n# The train ratio is a condition of the data, "
            f"not a knob: train the one you need, e.g.\n#   imbtrain train --config "
            f"{out.parent / last}\n")
    out.write_text(head + yaml.safe_dump({INDEX_KEY: entries, "metric": metric, "mode": mode},
                                         sort_keys=False))
    return out


def export(results_dir: str | Path | StudyDir, metric: str | None = None, top: int = 1,
           out: str | None = None, mode: str = "max",
           train_ratio: float | None = None) -> list[Path]:
    """Write the best configs of the study in `results_dir` (a folder, a URI or a
    `StudyDir`; module doc, "Files"); returns the files written (on this machine).

    `metric` defaults to the study's metric (recorded in study.yaml; else val_bal_acc).
    `train_ratio` the one ratio to export (`out` default `<results_dir>/best_r<ratio>.yaml`);
    None: every ratio (`out` default `<results_dir>/best.yaml`). Written by default into the
    study's storage (its working copy, pushed); `out` is a file on this machine.
    """
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    study = as_study_dir(results_dir)
    if metric is None:
        metric, mode = study_metric(study)
    check_selection_metric(metric)
    results = read_results(study)
    default = (f"best_r{ratio_label(float(train_ratio))}.yaml" if train_ratio is not None
               else BEST_FILE)
    out_path = Path(out) if out else study.local / default
    written = write_best(results, metric, mode, out_path, train_ratio, top,
                         title=f"study {study.name}")[1]
    if not out:
        study.push(*written)
    return written


def is_index(path: Path) -> bool:
    """Whether a best.yaml is the index of several train ratios' files."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    return isinstance(data, dict) and INDEX_KEY in data


def study_metric(results_dir: str | Path | StudyDir) -> tuple[str, str]:
    """The metric and mode the study tuned (its study.yaml), else val_bal_acc / max."""
    from imbtrain.study.results import read_study_file

    study = as_study_dir(results_dir)
    path = study.pull(STUDY_FILE)[0]
    if path is not None and path.is_file():
        meta = read_study_file(study.local)
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
