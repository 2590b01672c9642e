"""Which knobs matter: hyperparameter importance of a study (beyond the paper).

Two sources, the first that applies:

1. **Optuna storage.** A study searched with `searcher: optuna` keeps its Optuna study in
   `<study dir>/optuna.db` (sqlite), named after the study folder
   (`imbtrain.tune.runner.make_searcher`). Its importances come from
   `optuna.importance.get_param_importances` with a seeded `FanovaImportanceEvaluator`
   (functional ANOVA on a random forest, Hutter et al. 2014; `evaluator="ped_anova"` for
   PED-ANOVA), normalised to sum to 1. Its target is the study's own metric.
2. **The results table alone** (grid studies, or no storage): a variance decomposition.
   For each knob k that varies, the share of the metric's variance explained by k's main
   effect (first-order effect, eta squared):

       eta2(k) = sum_v n_v (mean_v - mean)^2 / sum_i (y_i - mean)^2

   over the finished trials, n_v and mean_v the count and mean metric of the trials with
   k = v. On a full grid this is the main-effect share that fANOVA estimates. `importance`
   is eta2 normalised to sum to 1 over the knobs. With `by="train_ratio"` (the default when
   the study crosses train ratios) it is computed at each train ratio apart, which shows
   which knobs matter more under imbalance.

    >>> import pandas as pd
    >>> results = pd.DataFrame({"config/lr": [0.1, 0.1, 0.2, 0.2],
    ...     "config/batch_size": [16, 32, 16, 32], "test_acc": [0.5, 0.5, 0.7, 0.7]})
    >>> t = variance_importance(results, metric="test_acc")
    >>> t[["knob", "eta2", "importance"]].values.tolist()
    [['lr', 1.0, 1.0], ['batch_size', 0.0, 0.0]]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imbtrain.analysis.common import (
    column,
    figure,
    finished,
    markdown_table,
    save_figure,
    write_table,
)
from imbtrain.analysis.registry import register_analysis
from imbtrain.errors import UserError

OPTUNA_FILE = "optuna.db"  # imbtrain.tune.runner.OPTUNA_FILE
# Config keys that are axes of every study, not knobs whose importance is asked.
NOT_KNOBS = ("train_ratio", "seed", "data_seed", "test_ratio", "data_dir", "device",
             "num_workers")


def knobs_of(results: pd.DataFrame, exclude=NOT_KNOBS) -> list[str]:
    """The config keys that vary across the finished trials, axes excluded."""
    return [c.removeprefix("config/") for c in results.columns
            if str(c).startswith("config/") and c.removeprefix("config/") not in exclude
            and results[c].nunique(dropna=False) > 1]


def eta_squared(values: pd.Series, y: pd.Series) -> float:
    """Share of Var(y) explained by the groups of `values` (module formula); 0 when y is
    constant."""
    y = y.astype(float)
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0.0:
        return 0.0
    g = y.groupby(values.astype(str).to_numpy())
    between = float((g.size() * (g.mean() - y.mean()) ** 2).sum())
    return between / total


def variance_importance(results: pd.DataFrame, metric: str = "test_acc",
                        knobs: list[str] | None = None, by: str | None = None) -> pd.DataFrame:
    """Columns (by,) knob, eta2, importance (eta2 / sum of eta2), n_values, n_trials; sorted
    by importance, largest first (per value of `by`)."""
    ok = finished(results, metric)
    knobs = knobs or knobs_of(ok, NOT_KNOBS + ((by,) if by else ()))
    if not knobs:
        raise UserError("no knob varies across the finished trials; nothing to rank")
    parts = ok.groupby(ok[column(ok, by)].to_numpy()) if by else [(None, ok)]
    rows = []
    for value, part in parts:
        eta = {k: eta_squared(part[column(part, k)], part[metric]) for k in knobs}
        total = sum(eta.values())
        for k in knobs:
            rows.append({**({by: value} if by else {}), "knob": k, "eta2": eta[k],
                         "importance": eta[k] / total if total > 0 else 0.0,
                         "n_values": int(part[column(part, k)].nunique()),
                         "n_trials": len(part)})
    table = pd.DataFrame(rows)
    keys = ([by] if by else []) + ["importance"]
    table = table.sort_values(keys, ascending=[True] * (len(keys) - 1) + [False],
                              kind="stable", ignore_index=True)
    table.attrs.update(source="variance decomposition (eta squared)", metric=metric, by=by)
    return table


def optuna_importance(storage_path: str | Path, study_name: str | None = None,
                      evaluator: str = "fanova", seed: int = 0) -> pd.DataFrame:
    """Columns knob, importance from the Optuna study in `storage_path` (a sqlite file);
    `study_name` defaults to the only study stored there."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{Path(storage_path).resolve()}"
    names = optuna.get_all_study_names(storage=url)
    if study_name is None:
        if len(names) != 1:
            raise UserError(f"{storage_path} holds {len(names)} Optuna studies "
                            f"({', '.join(names)}); give option study_name")
        study_name = names[0]
    elif study_name not in names:
        raise UserError(f"{storage_path} has no Optuna study {study_name!r}; studies: "
                        f"{', '.join(names)}")
    study = optuna.load_study(study_name=study_name, storage=url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2:
        raise UserError(f"Optuna study {study_name} has {len(done)} completed trial(s); "
                        "importance needs at least 2")
    evaluators = {"fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=seed),
                  "ped_anova": optuna.importance.PedAnovaImportanceEvaluator}
    if evaluator not in evaluators:
        raise UserError(f"importance evaluator must be fanova or ped_anova, got {evaluator!r}")
    imp = optuna.importance.get_param_importances(study, evaluator=evaluators[evaluator]())
    table = pd.DataFrame({"knob": list(imp), "importance": [float(v) for v in imp.values()]})
    table["n_trials"] = len(done)
    table.attrs.update(source=f"Optuna {evaluator} on {Path(storage_path).name}:{study_name}",
                       metric=study.direction.name.lower() + " objective", by=None)
    return table


def knob_importance(results: pd.DataFrame, results_dir: str | Path | None = None,
                    metric: str | None = None, by: str | None = None,
                    evaluator: str = "fanova", seed: int = 0,
                    study_name: str | None = None) -> pd.DataFrame:
    """Optuna importances when `results_dir` holds optuna.db, else `variance_importance`
    of `metric` (default the study's val_bal_acc when present, else test_acc) per `by`
    (default train_ratio when the study crosses several)."""
    db = Path(results_dir) / OPTUNA_FILE if results_dir is not None else None
    if db is not None and db.is_file():
        name = study_name or (Path(results_dir).resolve().name if _has_study(
            db, Path(results_dir).resolve().name) else None)
        return optuna_importance(db, name, evaluator, seed)
    metric = metric or ("val_bal_acc" if "val_bal_acc" in results.columns else "test_acc")
    if by is None and "config/train_ratio" in results.columns and results[
            "config/train_ratio"].nunique() > 1:
        by = "train_ratio"
    return variance_importance(results, metric, by=by)


def _has_study(db: Path, name: str) -> bool:
    import optuna

    return name in optuna.get_all_study_names(storage=f"sqlite:///{db.resolve()}")


def plot_importance(table: pd.DataFrame, out_dir: str | Path, stem: str = "importance") -> Path:
    """Horizontal bars of importance per knob; one bar colour per value of `by`."""
    by = table.attrs.get("by")
    knobs = list(dict.fromkeys(table["knob"]))
    groups = list(table.groupby(by, sort=True)) if by else [(None, table)]
    height = 0.8 / len(groups)
    fig, axes = figure(ncols=1, size=(6.0, 0.45 * len(knobs) * max(1, len(groups) / 2) + 1.5))
    ax = axes[0, 0]
    for g, (value, part) in enumerate(groups):
        pos = np.array([knobs.index(k) for k in part["knob"]]) + g * height
        ax.barh(pos, part["importance"], height,
                label=None if value is None else f"{by} {value:g}"
                if isinstance(value, float) else f"{by} {value}")
    ax.set_yticks(np.arange(len(knobs)) + height * (len(groups) - 1) / 2, knobs)
    ax.invert_yaxis()
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title(table.attrs.get("source", ""), fontsize=9)
    if by:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return save_figure(fig, out_dir, stem)


def ranks_knobs(results: pd.DataFrame, history: pd.DataFrame, **options) -> str | None:
    """Why importance would be trivial for this study (one bar of importance 1), else None:
    a study picks the analyses it draws with this (`imbtrain.analysis.registry.fits`)."""
    knobs = knobs_of(results)  # those varying across the trials, Optuna's sampled ones too
    if len(knobs) < 2:
        return (f"importance ranks knobs against each other; the study varies "
                f"{'only ' + knobs[0] if knobs else 'none'}")
    return None


@register_analysis("importance", fits=ranks_knobs)
def importance_analysis(results: pd.DataFrame, history: pd.DataFrame, out_dir: str | Path,
                        results_dir: str | None = None, metric: str | None = None,
                        by: str | None = None, evaluator: str = "fanova", seed: int = 0,
                        study_name: str | None = None, stem: str = "importance") -> list[Path]:
    """Knob importance: Optuna fANOVA, else eta squared of the results (beyond the paper).

    Writes `<stem>.png` and table `<stem>` (`knob_importance`). Drawn for a study only when
    it varies two knobs or more (`ranks_knobs`)."""
    table = knob_importance(results, results_dir, metric, by, evaluator, seed, study_name)
    md = markdown_table(table, 4, caption=f"Knob importance ({table.attrs['source']}; "
                                          f"{table.attrs['metric']}).")
    return [plot_importance(table, out_dir, stem), *write_table(table, out_dir, stem, md)]
